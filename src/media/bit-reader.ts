/**
 * A most-significant-bit-first reader over bytes, for the bit-packed headers of codec
 * configurations: fixed-width fields (`u(n)`) and the Exp-Golomb codes of H.264 (ITU-T H.264
 * §9.1: `ue`, `se`). Used by h264.ts (SPS) and aac.ts (AudioSpecificConfig).
 */
export class BitReader {
  #bit = 0;
  readonly #bytes: Uint8Array;
  readonly #what: string;
  readonly #error: (message: string) => Error;

  /**
   * @param what the structure's name for error messages (e.g. `SPS`)
   * @param error builds the error thrown when the data ends early or a code is too long
   */
  constructor(bytes: Uint8Array, what: string, error: (message: string) => Error) {
    this.#bytes = bytes;
    this.#what = what;
    this.#error = error;
  }

  /** The next `n` bits as an unsigned number (n ≤ 53). */
  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#bytes[this.#bit >> 3];
      if (byte === undefined) throw this.#error(`${this.#what} ends early`);
      v = v * 2 + ((byte >> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return v;
  }

  /** ue(v): unsigned Exp-Golomb (§9.1), at most 32 leading zeros. */
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) {
      if (++zeros > 31) throw this.#error(`${this.#what} Exp-Golomb code longer than 32 bits`);
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }

  /** se(v): signed Exp-Golomb (§9.1.1). */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
