/**
 * Our MPEG-TS muxer (ISO/IEC 13818-1 transport stream) for one program with at most one
 * H.264 video and one AAC audio stream: what the in-process segmenter (ts-segmenter.ts)
 * writes from RTMP packets. docs/architecture.md "The MPEG-TS muxer" explains the choices.
 *
 * What it writes:
 *  - PAT (PID 0, §2.4.4.3) naming program 1 on PMT PID 0x1000, and the PMT (§2.4.4.8) with
 *    H.264 (stream_type 0x1B) on PID 0x100 and ADTS AAC (0x0F) on PID 0x101; PCR_PID is the
 *    video PID, or the audio PID without video. A change of streams bumps version_number.
 *  - One PES packet (§2.4.3.6) per access unit / AAC frame: video stream_id 0xE0 with
 *    PES_packet_length 0 (unbounded, allowed for video in a TS) and data_alignment_indicator;
 *    audio stream_id 0xC0 with its length. PTS always; DTS only when it differs from PTS.
 *  - The first TS packet of each PES on the PCR PID carries a PCR (§2.4.3.4, 27 MHz: base in
 *    90 kHz, extension 0) of the caller's value; random_access_indicator on keyframes.
 *  - continuity_counter per PID, +1 mod 16 on every packet (all our packets carry payload),
 *    kept for the muxer's life: consecutive outputs concatenate into one valid stream.
 *  - The last packet of a PES is filled with adaptation-field stuffing (§2.4.3.5), never
 *    with payload padding.
 * Timestamps are 33-bit: every value is taken modulo 2^33 (the wrap after 26.5 hours).
 */
import { crc32Mpeg2, STREAM_TYPE_ADTS_AAC, STREAM_TYPE_H264 } from './ts-measure.ts';

/** Transport packet size in bytes (§2.4.3.2). */
export const TS_PACKET_BYTES = 188;
/** PIDs we assign (any value in 0x0010-0x1FFE is allowed; these are ffmpeg's defaults, familiar in tools). */
export const PMT_PID = 0x1000;
export const VIDEO_PID = 0x100;
export const AUDIO_PID = 0x101;
/** 2^33: PTS, DTS and the PCR base are 33-bit counters of a 90 kHz clock. */
export const TIMESTAMP_WRAP_90K = 2 ** 33;

const SYNC = 0x47;
const PROGRAM_NUMBER = 1;
const TRANSPORT_STREAM_ID = 1;
const PAYLOAD_BYTES = TS_PACKET_BYTES - 4;

/** The elementary streams in the program. */
export interface TsStreams {
  readonly video: boolean;
  readonly audio: boolean;
}

/** One video access unit to write. */
export interface TsVideoFrame {
  /** Decoding time, 90 kHz ticks (taken mod 2^33). */
  readonly dts90k: number;
  /** Presentation time, 90 kHz ticks (mod 2^33); ≥ dts90k for a valid stream. */
  readonly pts90k: number;
  /** Sets random_access_indicator on the PES's first TS packet. */
  readonly keyframe: boolean;
  /** The NAL units of the access unit in order, without start codes; written as Annex B with 4-byte start codes. */
  readonly nalUnits: readonly Uint8Array[];
  /** PCR to write in the first TS packet (90 kHz ticks, mod 2^33); only honoured when video is the PCR PID. */
  readonly pcr90k?: number;
}

/** One audio frame to write (already ADTS-framed, or pieces of it: header then raw frame). */
export interface TsAudioFrame {
  /** Presentation time, 90 kHz ticks (mod 2^33). */
  readonly pts90k: number;
  /** The bytes of the frame, concatenated in order (e.g. `[adtsHeader, rawFrame]`). */
  readonly parts: readonly Uint8Array[];
  /** PCR to write in the first TS packet (90 kHz, mod 2^33); only honoured when audio is the PCR PID (no video). */
  readonly pcr90k?: number;
}

function wrap(ts: number): number {
  const v = Math.round(ts) % TIMESTAMP_WRAP_90K;
  return v < 0 ? v + TIMESTAMP_WRAP_90K : v;
}

/** Writes a 5-byte PTS or DTS field (§2.4.3.7): 4-bit prefix, then 3 + 15 + 15 bits with marker bits. */
function writeTimestamp(buf: Buffer, at: number, prefix: number, ts90k: number): void {
  const high = Math.floor(ts90k / 2 ** 30) & 0x07; // bits 32..30
  const low = ts90k % 2 ** 30; // bits 29..0
  buf[at] = (prefix << 4) | (high << 1) | 1;
  buf[at + 1] = (low >>> 22) & 0xff;
  buf[at + 2] = (((low >>> 15) & 0x7f) << 1) | 1;
  buf[at + 3] = (low >>> 7) & 0xff;
  buf[at + 4] = ((low & 0x7f) << 1) | 1;
}

/** Writes a 6-byte PCR (§2.4.3.5): 33-bit base, 6 reserved bits, 9-bit extension 0. */
function writePcr(buf: Buffer, at: number, pcr90k: number): void {
  const high = Math.floor(pcr90k / 2 ** 25); // bits 32..25
  const low = pcr90k % 2 ** 25; // bits 24..0
  buf[at] = high & 0xff;
  buf[at + 1] = (low >>> 17) & 0xff;
  buf[at + 2] = (low >>> 9) & 0xff;
  buf[at + 3] = (low >>> 1) & 0xff;
  buf[at + 4] = ((low & 1) << 7) | 0x7e;
  buf[at + 5] = 0x00;
}

/** A long-form PSI section with its CRC_32 (§2.4.4.10-11); `body` is what follows the 8-byte header. */
function psiSection(tableId: number, tableIdExtension: number, version: number, body: number[]): Buffer {
  const sectionLength = 5 + body.length + 4; // header after section_length + body + CRC
  const s = Buffer.alloc(3 + sectionLength);
  s[0] = tableId;
  s[1] = 0xb0 | (sectionLength >> 8); // section_syntax_indicator 1, '0', reserved '11'
  s[2] = sectionLength & 0xff;
  s[3] = tableIdExtension >> 8;
  s[4] = tableIdExtension & 0xff;
  s[5] = 0xc1 | ((version & 0x1f) << 1); // reserved '11', version_number, current_next_indicator 1
  s[6] = 0; // section_number
  s[7] = 0; // last_section_number
  Buffer.from(body).copy(s, 8);
  s.writeUInt32BE(crc32Mpeg2(s.subarray(0, s.length - 4)), s.length - 4);
  return s;
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

/**
 * A byte buffer the muxer appends whole TS packets to (the `write*` methods), reused from
 * call to call so that muxing a frame allocates nothing: the in-process segmenter muxes every
 * frame into one of these and hands the bytes on before the next frame (ts-segmenter.ts). It
 * keeps a buffer of `baseBytes` for its life; a write that needs more (a large keyframe) gets
 * a larger one, let go again at the next `clear()`.
 */
export class TsOutput {
  readonly #base: Buffer;
  #buffer: Buffer;
  #length = 0;

  /** @param baseBytes size of the buffer kept for the output's life (default 8 KiB; 0 allocates per use) */
  constructor(baseBytes = 8 * 1024) {
    this.#base = Buffer.allocUnsafeSlow(baseBytes);
    this.#buffer = this.#base;
  }

  /** Bytes written since the last `clear()`. */
  get length(): number {
    return this.#length;
  }

  /** The bytes written since the last `clear()`: a view of the output's buffer, valid until its next write or `clear()`. */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  /** Forgets the bytes written (the buffer is reused by the next write). */
  clear(): void {
    this.#length = 0;
    this.#buffer = this.#base;
  }

  /** The buffer the bytes are in; after `reserve`, the one to write the reserved bytes in (until the next `reserve` or `clear`). */
  get buffer(): Buffer {
    return this.#buffer;
  }

  /**
   * Extends the output by `bytes` uninitialized bytes, growing its buffer when needed; write
   * them in {@link buffer}.
   * @returns the offset in {@link buffer} they start at
   */
  reserve(bytes: number): number {
    const at = this.#length;
    const need = at + bytes;
    if (need > this.#buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, 2 * this.#buffer.length));
      this.#buffer.copy(grown, 0, 0, at);
      this.#buffer = grown;
    }
    this.#length = need;
    return at;
  }
}

/**
 * The muxer of one transport stream. Each method writes whole 188-byte TS packets: the
 * `write*` methods append them to a {@link TsOutput}, the others return them in a new Buffer
 * (the same bytes). The continuity counters carry over from call to call, so the outputs of
 * one muxer, in call order, are one continuous stream (cut it anywhere between calls into
 * segments).
 *
 * Not safe for interleaved use by several streams: one muxer per output stream.
 */
export class TsMuxer {
  #streams: TsStreams;
  #pmtVersion = 0;
  readonly #cc = new Map<number, number>();
  /** The video PES header being written (14 or 19 bytes: with DTS), reused from frame to frame. */
  readonly #pesHeader = Buffer.allocUnsafeSlow(19);
  readonly #videoHeaderPtsOnly = this.#pesHeader.subarray(0, 14);
  /** The audio PES header being written (14 bytes), reused from frame to frame. */
  readonly #audioHeader = Buffer.allocUnsafeSlow(14);
  /** The PES's pieces (header, start codes, NAL units) while it is packetized; empty between calls. */
  readonly #parts: Uint8Array[] = [];

  /** @param streams the program's elementary streams (at least one). */
  constructor(streams: TsStreams) {
    this.#streams = { ...streams };
  }

  get streams(): TsStreams {
    return this.#streams;
  }

  /** The PID whose packets carry the PCR: the video PID, or the audio PID in an audio-only program. */
  get pcrPid(): number {
    return this.#streams.video ? VIDEO_PID : AUDIO_PID;
  }

  /**
   * Changes the program's streams; the PMT's version_number is bumped (mod 32) when they
   * differ. Write {@link tables} next so receivers see the new PMT.
   * @returns whether anything changed
   */
  setStreams(streams: TsStreams): boolean {
    if (streams.video === this.#streams.video && streams.audio === this.#streams.audio) return false;
    this.#streams = { ...streams };
    this.#pmtVersion = (this.#pmtVersion + 1) & 0x1f;
    return true;
  }

  /** The PAT and the PMT, one TS packet each (376 bytes). Write them at the start of every segment. */
  tables(): Buffer {
    return this.#once((out) => this.writeTables(out));
  }

  /** {@link tables}, appended to `out`. */
  writeTables(out: TsOutput): void {
    const pat = psiSection(0x00, TRANSPORT_STREAM_ID, 0, [
      PROGRAM_NUMBER >> 8, PROGRAM_NUMBER & 0xff, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff,
    ]);
    const entries: number[] = [];
    const entry = (streamType: number, pid: number): void => {
      entries.push(streamType, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0x00); // reserved bits, ES_info_length 0
    };
    if (this.#streams.video) entry(STREAM_TYPE_H264, VIDEO_PID);
    if (this.#streams.audio) entry(STREAM_TYPE_ADTS_AAC, AUDIO_PID);
    const pcrPid = this.pcrPid;
    const pmt = psiSection(0x02, PROGRAM_NUMBER, this.#pmtVersion, [
      0xe0 | (pcrPid >> 8), pcrPid & 0xff, 0xf0, 0x00, // reserved, PCR_PID, reserved, program_info_length 0
      ...entries,
    ]);
    this.#sectionPacket(out, 0, pat);
    this.#sectionPacket(out, PMT_PID, pmt);
  }

  /** One video access unit as a PES in TS packets (with AUD/parameter sets as the caller put them in `nalUnits`). */
  video(frame: TsVideoFrame): Buffer {
    return this.#once((out) => this.writeVideo(frame, out));
  }

  /** {@link video}, appended to `out`. */
  writeVideo(frame: TsVideoFrame, out: TsOutput): void {
    const pts = wrap(frame.pts90k);
    const dts = wrap(frame.dts90k);
    const withDts = pts !== dts;
    const headerBytes = 9 + (withDts ? 10 : 5);
    let payloadBytes = 0;
    for (const nal of frame.nalUnits) payloadBytes += START_CODE.length + nal.length;
    // The PES header; the payload is packetized straight from the NAL units (no PES copy).
    const header = this.#pesHeader;
    header[0] = 0; header[1] = 0; header[2] = 1; header[3] = 0xe0;
    header[4] = 0; header[5] = 0; // PES_packet_length 0: unbounded (video only, §2.4.3.7)
    header[6] = 0x84; // '10', not scrambled, data_alignment_indicator 1
    header[7] = withDts ? 0xc0 : 0x80; // PTS_DTS_flags
    header[8] = headerBytes - 9;
    writeTimestamp(header, 9, withDts ? 0x3 : 0x2, pts);
    if (withDts) writeTimestamp(header, 14, 0x1, dts);
    const parts = this.#parts;
    parts.length = 0;
    parts.push(withDts ? header : this.#videoHeaderPtsOnly);
    for (const nal of frame.nalUnits) parts.push(START_CODE, nal);
    const pcr = this.pcrPid === VIDEO_PID && frame.pcr90k !== undefined ? wrap(frame.pcr90k) : undefined;
    this.#packetize(out, VIDEO_PID, parts, headerBytes + payloadBytes, pcr, frame.keyframe);
    parts.length = 0; // holds no frame's bytes between calls
  }

  /** One audio frame as a PES in TS packets. */
  audio(frame: TsAudioFrame): Buffer {
    return this.#once((out) => this.writeAudio(frame, out));
  }

  /** {@link audio}, appended to `out`. */
  writeAudio(frame: TsAudioFrame, out: TsOutput): void {
    let payloadBytes = 0;
    for (const part of frame.parts) payloadBytes += part.length;
    const headerBytes = 14;
    const pesPacketLength = headerBytes - 6 + payloadBytes;
    if (pesPacketLength > 0xffff) throw new RangeError(`audio PES of ${pesPacketLength} bytes exceeds PES_packet_length`);
    const header = this.#audioHeader;
    header[0] = 0; header[1] = 0; header[2] = 1; header[3] = 0xc0;
    header.writeUInt16BE(pesPacketLength, 4);
    header[6] = 0x84; // '10', data_alignment_indicator 1 (each PES starts with an ADTS header)
    header[7] = 0x80; // PTS only
    header[8] = 5;
    writeTimestamp(header, 9, 0x2, wrap(frame.pts90k));
    const parts = this.#parts;
    parts.length = 0;
    parts.push(header);
    for (const part of frame.parts) parts.push(part);
    const pcr = this.pcrPid === AUDIO_PID && frame.pcr90k !== undefined ? wrap(frame.pcr90k) : undefined;
    this.#packetize(out, AUDIO_PID, parts, headerBytes + payloadBytes, pcr, pcr !== undefined);
    parts.length = 0;
  }

  /**
   * A packet on the PCR PID with an adaptation field only (adaptation_field_control '10'):
   * a PCR between PES packets. Its continuity_counter repeats the PID's last one (§2.4.3.3:
   * not incremented without payload).
   */
  pcrOnly(pcr90k: number): Buffer {
    return this.#once((out) => this.writePcrOnly(pcr90k, out));
  }

  /** {@link pcrOnly}, appended to `out`. */
  writePcrOnly(pcr90k: number, out: TsOutput): void {
    const pid = this.pcrPid;
    const at = out.reserve(TS_PACKET_BYTES);
    const p = out.buffer;
    p.fill(0xff, at, at + TS_PACKET_BYTES);
    p[at] = SYNC;
    p[at + 1] = pid >> 8;
    p[at + 2] = pid & 0xff;
    p[at + 3] = 0x20 | ((((this.#cc.get(pid) ?? 0) - 1) & 0x0f));
    p[at + 4] = 183; // adaptation_field_length: the rest of the packet
    p[at + 5] = 0x10; // PCR_flag
    writePcr(p, at + 6, wrap(pcr90k));
  }

  /** What `write` appends, in a Buffer of its own. */
  #once(write: (out: TsOutput) => void): Buffer {
    const out = new TsOutput(0);
    write(out);
    return out.bytes();
  }

  #nextCc(pid: number): number {
    const cc = this.#cc.get(pid) ?? 0;
    this.#cc.set(pid, (cc + 1) & 0x0f);
    return cc;
  }

  /** A PSI section in one TS packet: pointer_field 0, the section, 0xFF filler (§2.4.4.1). */
  #sectionPacket(out: TsOutput, pid: number, section: Buffer): void {
    const at = out.reserve(TS_PACKET_BYTES);
    const p = out.buffer;
    p.fill(0xff, at, at + TS_PACKET_BYTES);
    p[at] = SYNC;
    p[at + 1] = 0x40 | (pid >> 8); // payload_unit_start_indicator
    p[at + 2] = pid & 0xff;
    p[at + 3] = 0x10 | this.#nextCc(pid); // payload only
    p[at + 4] = 0; // pointer_field
    section.copy(p, at + 5);
  }

  /**
   * Splits a PES packet, given as its parts in order (header, payload pieces; `pesBytes` in all),
   * into TS packets (§2.4.3.2) appended to `output`: PUSI on the first, an adaptation field on
   * the first when it carries a PCR or random_access_indicator, stuffing in the adaptation
   * field of the last so every packet is exactly 188 bytes.
   */
  #packetize(output: TsOutput, pid: number, parts: readonly Uint8Array[], pesBytes: number, pcr90k: number | undefined, randomAccess: boolean): void {
    let part = 0;
    let partAt = 0;
    const firstAf = pcr90k !== undefined || randomAccess ? 2 + (pcr90k !== undefined ? 6 : 0) : 0; // length + flags (+ PCR)
    const firstCapacity = PAYLOAD_BYTES - firstAf;
    const count = pesBytes <= firstCapacity ? 1 : 1 + Math.ceil((pesBytes - firstCapacity) / PAYLOAD_BYTES);
    const start = output.reserve(count * TS_PACKET_BYTES);
    const out = output.buffer;
    // The PID's continuity counter, read once and stored once per PES (not a Map lookup per packet).
    let cc = this.#cc.get(pid) ?? 0;
    let pos = 0;
    for (let n = 0; n < count; n++) {
      const p = start + n * TS_PACKET_BYTES;
      const first = n === 0;
      const afContent = first ? firstAf : 0; // bytes of a mandatory adaptation field
      const capacity = PAYLOAD_BYTES - afContent;
      const remaining = pesBytes - pos;
      const take = Math.min(capacity, remaining);
      const stuffing = capacity - take;
      const afBytes = afContent + stuffing; // whole adaptation field incl. its length byte
      out[p] = SYNC;
      out[p + 1] = (first ? 0x40 : 0) | (pid >> 8);
      out[p + 2] = pid & 0xff;
      out[p + 3] = (afBytes > 0 ? 0x30 : 0x10) | cc;
      cc = (cc + 1) & 0x0f;
      if (afBytes > 0) {
        out[p + 4] = afBytes - 1; // adaptation_field_length
        if (afBytes > 1) {
          out[p + 5] = (randomAccess && first ? 0x40 : 0) | (first && pcr90k !== undefined ? 0x10 : 0);
          let at = p + 6;
          if (first && pcr90k !== undefined) {
            writePcr(out, at, pcr90k);
            at += 6;
          }
          out.fill(0xff, at, p + 4 + afBytes);
        }
      }
      // Copy `take` bytes of the PES, gathered from its parts, after the packet's header.
      let to = p + 4 + afBytes;
      for (let left = take; left > 0;) {
        const from = parts[part]!;
        const k = Math.min(left, from.length - partAt);
        out.set(k === from.length && partAt === 0 ? from : from.subarray(partAt, partAt + k), to);
        to += k;
        left -= k;
        partAt += k;
        if (partAt === from.length) {
          part += 1;
          partAt = 0;
        }
      }
      pos += take;
    }
    this.#cc.set(pid, cc);
  }
}
