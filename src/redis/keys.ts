/**
 * Redis key names: `<redis.keyPrefix>:<scope>:<part>:<part>…`. Every store builds its keys
 * here, so one deployment prefix separates deployments sharing a Redis and each feature's
 * keys sit under their own scope (`pay`, `hls`, `ingest`, `transcode`, `events`, `control`, `rec`).
 */

/** Builds keys under one prefix. Immutable: `scope()` returns a new builder. */
export class RedisKeys {
  readonly #prefix: string;

  /**
   * @param prefix The deployment prefix (`redis.keyPrefix`, e.g. `mediagate`) or an already
   *   scoped prefix; non-empty.
   * @throws RangeError when empty.
   */
  constructor(prefix: string) {
    if (prefix === '') throw new RangeError('redis key prefix must not be empty');
    this.#prefix = prefix;
  }

  /** The prefix every key of this builder starts with (no trailing colon). */
  get prefix(): string { return this.#prefix; }

  /** A builder for the keys under `<prefix>:<name>`. */
  scope(name: string): RedisKeys { return new RedisKeys(this.key(name)); }

  /** `<prefix>:<parts joined by ':'>`; each part must be non-empty. */
  key(...parts: readonly (string | number)[]): string {
    for (const part of parts) {
      if (String(part) === '') throw new RangeError(`empty part in redis key under ${this.#prefix}`);
    }
    return [this.#prefix, ...parts].join(':');
  }
}
