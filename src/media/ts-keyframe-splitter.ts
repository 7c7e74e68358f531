/**
 * Splits one continuous MPEG-TS stream (ISO/IEC 13818-1), fed as it is produced, into
 * segments that each start at a video keyframe, handing the bytes on as they come so a
 * segment can be streamed before it is complete (e.g. one trickle segment per keyframe
 * interval of an encoder's output).
 *
 * A segment starts at a video packet with payload_unit_start_indicator and
 * random_access_indicator (ffmpeg's mpegts muxer marks the first packet of every keyframe's
 * PES so), together with the PAT/PMT packets that came right before it (the muxer repeats
 * them, and the SDT, before keyframes); every other packet goes to the current segment in stream order.
 * Packets before the first keyframe are dropped (counted in `droppedPackets`), except the
 * PAT/PMT, which are also copied to the head of a segment that has none of its own, so every
 * segment can be decoded alone. An audio-only stream (no video in the PMT) is one segment.
 *
 * Pure: bytes in, {@link SplitEvent}s out.
 */
import { packetAt, pmtPidOf, SectionAssembler, streamsOf, TS_PACKET_BYTES, VIDEO_STREAM_TYPES } from './ts-measure.ts';

/** PID of the service description table (ISO/IEC 13818-1 Table 2-3; ffmpeg writes it before keyframes too). */
const SDT_PID = 0x11;

/** `start`: a new segment begins (the previous one, if any, is complete); `data`: bytes of the current segment. */
export type SplitEvent = { readonly kind: 'start' } | { readonly kind: 'data'; readonly bytes: Buffer };

export class TsKeyframeSplitter {
  #rest: Buffer = Buffer.alloc(0);
  #pmtPid: number | undefined;
  #videoPid: number | undefined;
  #audioOnly = false;
  readonly #pat = new SectionAssembler();
  readonly #pmt = new SectionAssembler();
  /** The newest PAT and PMT packets (whole single-packet sections, as ffmpeg writes them). */
  #lastPat: Buffer | undefined;
  #lastPmt: Buffer | undefined;
  /** PSI packets waiting to learn whether a keyframe (new segment) follows them. */
  #heldPsi: Buffer[] = [];
  #started = false;
  #dropped = 0;
  #segments = 0;

  /** Packets dropped before the first keyframe. */
  get droppedPackets(): number { return this.#dropped; }
  /** Segments started so far. */
  get segments(): number { return this.#segments; }

  /**
   * Feeds the next bytes (any length; a partial packet is kept for the next call).
   * @throws TsMeasureError `malformed` for a broken packet.
   */
  push(bytes: Uint8Array): SplitEvent[] {
    let data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#rest.length > 0) data = Buffer.concat([this.#rest, data]);
    const whole = data.length - (data.length % TS_PACKET_BYTES);
    const events: SplitEvent[] = [];
    let run: Buffer[] = [];
    const flushRun = (): void => {
      if (run.length > 0) events.push({ kind: 'data', bytes: Buffer.concat(run) });
      run = [];
    };
    for (let off = 0; off < whole; off += TS_PACKET_BYTES) {
      // Copy: `bytes` may be reused by its owner, and the events outlive this call.
      const raw = Buffer.from(data.subarray(off, off + TS_PACKET_BYTES));
      const p = packetAt(raw, 0);
      if (p.pid === 0 || p.pid === this.#pmtPid || p.pid === SDT_PID) {
        if (p.pid === SDT_PID) {
          // Service description: goes with what follows, like the PAT/PMT.
        } else if (p.pid === 0) {
          const section = this.#pat.push(p);
          if (section) this.#pmtPid = pmtPidOf(section);
          this.#lastPat = raw;
        } else {
          const section = this.#pmt.push(p);
          if (section) {
            const streams = streamsOf(section);
            this.#videoPid ??= streams.find((s) => VIDEO_STREAM_TYPES.has(s.streamType))?.pid;
            if (this.#videoPid === undefined && !this.#started) {
              // Audio only: one segment from here on.
              this.#audioOnly = true;
            }
          }
          this.#lastPmt = raw;
        }
        this.#heldPsi.push(raw);
        continue;
      }
      const keyframe = p.pid === this.#videoPid && p.pusi && p.randomAccess;
      if (keyframe || (this.#audioOnly && !this.#started)) {
        flushRun();
        events.push({ kind: 'start' });
        this.#started = true;
        this.#segments += 1;
        const psi = this.#heldPsi.length > 0 ? this.#heldPsi : [this.#lastPat, this.#lastPmt].filter((b): b is Buffer => b !== undefined);
        run.push(...psi, raw);
        this.#heldPsi = [];
        continue;
      }
      if (!this.#started) {
        this.#dropped += 1;
        this.#heldPsi = this.#heldPsi.filter((b) => b === this.#lastPat || b === this.#lastPmt).slice(-2);
        continue;
      }
      run.push(...this.#heldPsi, raw);
      this.#heldPsi = [];
    }
    flushRun();
    this.#rest = Buffer.from(data.subarray(whole));
    return events;
  }

  /** The end of the stream: held PSI packets go to the current segment. */
  end(): SplitEvent[] {
    const out: SplitEvent[] = [];
    if (this.#started && this.#heldPsi.length > 0) out.push({ kind: 'data', bytes: Buffer.concat(this.#heldPsi) });
    this.#heldPsi = [];
    this.#rest = Buffer.alloc(0);
    return out;
  }
}
