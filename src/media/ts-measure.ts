/**
 * Measures an H.264 MPEG-TS segment written by our own ffmpeg (a rendition output) without
 * spawning ffprobe: the video frame count, the file size, the RFC 6381 `avc1` codecs part
 * and the coded picture size from the first SPS. Used by the transcoder in place of
 * `probeSegment` on its outputs; anything this parser does not expect raises
 * {@link TsMeasureError} and the caller probes the file with ffprobe instead, so a result is
 * either exact or absent, never a guess.
 *
 * Hand-written rather than an ffprobe run or a general demuxer library because it is on the
 * hot path: it runs on every rendition segment, and walking the packets of a file already in
 * memory costs a fraction of spawning ffprobe, without a general demuxer's per-packet objects.
 *
 * Format facts relied on (and checked, where a check is cheap):
 *  - Transport stream (ISO/IEC 13818-1 §2.4.3.2-2.4.3.5): fixed 188-byte packets, each
 *    starting with the sync byte 0x47; then transport_error_indicator, payload_unit_start_indicator
 *    (PUSI), a 13-bit PID, transport_scrambling_control, adaptation_field_control (01 payload
 *    only, 10 adaptation field only, 11 both) and a 4-bit continuity_counter that increments
 *    on every packet of a PID that carries payload. An adaptation field is its length byte
 *    plus that many bytes. (ffmpeg's mpegts muxer writes plain 188-byte packets; M2TS
 *    192-byte packets are refused.)
 *  - PSI (§2.4.4): PID 0 carries the program_association_section (table_id 0x00), which
 *    names each program's PMT PID; the TS_program_map_section (table_id 0x02) lists the
 *    elementary streams as stream_type + elementary_PID (Table 2-34: 0x1B = AVC/H.264,
 *    0x24 = HEVC, 0x0F = ADTS AAC). A packet with PUSI starts its payload with a
 *    pointer_field; a section may continue in the next packets of the PID; every section
 *    ends with a CRC_32 (Annex A, polynomial 0x04C11DB7), verified here.
 *  - PES (§2.4.3.6-2.4.3.7): a PES packet starts (PUSI set) with 00 00 01, stream_id
 *    (0xE0-0xEF for video), PES_packet_length (0 = unbounded, as ffmpeg writes for video),
 *    then '10' marker bits, the flag bytes and PES_header_data_length; the elementary
 *    stream bytes follow. ffmpeg's mpegts muxer (libavformat/mpegtsenc.c) writes each
 *    video packet — one H.264 access unit — as its own PES packet, so PES packets started
 *    on the video PID = frames; this equals ffprobe's `-count_packets` nb_read_packets on
 *    our outputs (test/integration/media/ts-measure.test.ts checks it on real ones).
 *  - H.264 byte stream (ITU-T H.264 Annex B): NAL units behind 00 00 01 start codes; the
 *    SPS is nal_unit_type 7. x264 repeats SPS/PPS before every IDR frame, and every
 *    rendition segment starts with one, so the first PES packet holds the SPS.
 *  - seq_parameter_set_data (ITU-T H.264 §7.3.2.1.1): profile_idc, the constraint_set
 *    flags byte and level_idc are its first three bytes (never escaped, profile_idc is
 *    non-zero); the size fields further on are Exp-Golomb coded (§9.1) in the RBSP, i.e.
 *    after removing emulation-prevention bytes (§7.4.1). Width and height as ffprobe reports
 *    them: macroblocks × 16 minus the frame cropping (§7.4.2.1.1, CropUnitX/CropUnitY).
 *  - RFC 6381 §3.3: `avc1.PPCCLL` = hex of those three bytes (formatted by
 *    `h264CodecString` in h264.ts, the same function the ffprobe path uses; the SPS
 *    parsing lives there too).
 */
import { readFile, stat } from 'node:fs/promises';
import { findH264Sps, h264CodecString, h264SpsPictureSize, H264SpsError } from './h264.ts';

/** Why a file could not be measured here: the caller falls back to ffprobe. */
export type TsMeasureFailure =
  /** Not a well-formed transport stream as ffmpeg writes it (bad sync, length, CRC, PES header, continuity, ...). */
  | 'malformed'
  /** Well-formed, but not what this parser measures (no H.264 video stream, e.g. an HEVC rendition; several video streams). */
  | 'unsupported'
  /** H.264 video without the data needed: no frame, or no SPS in the first PES packet. */
  | 'incomplete';

/** The file cannot be measured without ffprobe; `failure` says why, the message names the detail. */
export class TsMeasureError extends Error {
  readonly failure: TsMeasureFailure;
  constructor(failure: TsMeasureFailure, message: string) {
    super(message);
    this.name = 'TsMeasureError';
    this.failure = failure;
  }
}

/** One elementary stream of the PMT. */
export interface TsElementaryStream {
  readonly pid: number;
  /** ISO/IEC 13818-1 Table 2-34 stream_type, e.g. 0x1B H.264, 0x0F ADTS AAC. */
  readonly streamType: number;
}

export interface TsVideoMeasurement {
  /** Video frames: PES packets started on the H.264 PID (= ffprobe `-count_packets` nb_read_packets for ffmpeg's mpegts muxer). */
  readonly frames: number;
  /** File size in bytes. */
  readonly bytes: number;
  /** RFC 6381 codecs part of the video from its first SPS, e.g. `avc1.64001f`. */
  readonly videoCodecs: string;
  /** Picture size in pixels from the first SPS (cropping applied), as ffprobe reports it. */
  readonly width: number;
  readonly height: number;
  /** Elementary streams of the (first) program, in PMT order; the H.264 video one included. */
  readonly streams: readonly TsElementaryStream[];
}

/** Size of one transport packet in bytes (ISO/IEC 13818-1 §2.4.3.2). */
export const TS_PACKET_BYTES = 188;
const PACKET = TS_PACKET_BYTES;
const SYNC = 0x47;
/** stream_type of H.264 video and of ADTS AAC audio (ISO/IEC 13818-1 Table 2-34); ffmpeg muxes AAC as ADTS. */
export const STREAM_TYPE_H264 = 0x1b;
export const STREAM_TYPE_ADTS_AAC = 0x0f;
/** stream_types of video codecs (Table 2-34): MPEG-1/2 video, MPEG-4 part 2, H.264, HEVC. */
export const VIDEO_STREAM_TYPES: ReadonlySet<number> = new Set([0x01, 0x02, 0x10, STREAM_TYPE_H264, 0x24]);
/** Larger inputs are not segments; refuse rather than read them. */
const MAX_BYTES = 512 * 1024 * 1024;

/** A {@link TsMeasureError} of failure `malformed`. */
export function malformed(message: string): TsMeasureError {
  return new TsMeasureError('malformed', message);
}

// ---------------------------------------------------------------------------------------
// CRC-32/MPEG-2 (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7, initial 0xFFFFFFFF, no
// reflection, no final XOR; over a whole section including its CRC_32 field it gives 0.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = (c & 0x80000000) !== 0 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32/MPEG-2 of `data` (ISO/IEC 13818-1 Annex A); the muxer (ts-muxer.ts) writes its PSI sections' CRC_32 with it. */
export function crc32Mpeg2(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ data[i]!) & 0xff]!) >>> 0;
  return crc;
}

// ---------------------------------------------------------------------------------------
// Transport packets

/** One parsed transport packet (views into the caller's buffer, nothing copied). */
export interface TsPacket {
  readonly pid: number;
  /** payload_unit_start_indicator: a PES packet or a section starts in this packet. */
  readonly pusi: boolean;
  /** continuity_counter, 0-15. */
  readonly cc: number;
  /** discontinuity_indicator of the adaptation field. */
  readonly discontinuity: boolean;
  /** random_access_indicator of the adaptation field: ffmpeg's mpegts muxer sets it on the first packet of a video keyframe's PES. */
  readonly randomAccess: boolean;
  /** Payload bytes (empty when the packet has an adaptation field only). */
  readonly payload: Uint8Array;
  readonly hasPayload: boolean;
}

/**
 * Checks the header of the transport packet at `offset` as {@link packetAt} does, and returns
 * where its payload starts (after the 4-byte header and any adaptation field; `offset + 188`
 * for a packet with an adaptation field only). Builds nothing: the per-packet loops (measureTs,
 * media/ts-cutter.ts) read the few fields they need from the bytes themselves.
 * @throws TsMeasureError `malformed` as {@link packetAt}.
 */
export function payloadOffset(data: Uint8Array, offset: number): number {
  if (data[offset] !== SYNC) throw malformed(`no sync byte 0x47 at offset ${offset}`);
  const b1 = data[offset + 1]!;
  const b3 = data[offset + 3]!;
  if ((b1 & 0x80) !== 0) throw malformed(`transport_error_indicator set at offset ${offset}`);
  if ((b3 & 0xc0) !== 0) throw malformed(`scrambled packet at offset ${offset}`);
  const afc = (b3 >> 4) & 0x03;
  if (afc === 0) throw malformed(`reserved adaptation_field_control 00 at offset ${offset}`);
  if ((afc & 0x02) === 0) return offset + 4;
  const afLength = data[offset + 4]!;
  const max = afc === 0x02 ? 183 : 182;
  if (afLength > max || (afc === 0x02 && afLength !== 183)) throw malformed(`adaptation_field_length ${afLength} at offset ${offset}`);
  return offset + 5 + afLength;
}

/** PID of the transport packet at `offset` (header bytes 1-2; unchecked: see {@link payloadOffset}). */
export function pidAt(data: Uint8Array, offset: number): number {
  return ((data[offset + 1]! & 0x1f) << 8) | data[offset + 2]!;
}

/**
 * payload_unit_start_indicator of the transport packet at `offset` (§2.4.3.2: bit 0x40 of
 * packet byte 1): a PES packet or a PSI section starts in its payload. The header's own
 * field, so a packet without an adaptation field has it like any other. Unchecked: see
 * {@link payloadOffset}.
 */
export function pusiAt(data: Uint8Array, offset: number): boolean {
  return (data[offset + 1]! & 0x40) !== 0;
}

/**
 * random_access_indicator of the transport packet at `offset` (§2.4.3.4-2.4.3.5: bit 0x40 of
 * the adaptation field's flags byte, packet byte 5, present when adaptation_field_control has
 * bit 0x20 and adaptation_field_length is above 0). ffmpeg's mpegts muxer
 * (libavformat/mpegtsenc.c) sets it on the first packet of a video keyframe's PES. False for a
 * packet without an adaptation field, or with one of length 0 (no flags byte). Unchecked: see
 * {@link payloadOffset}.
 */
export function randomAccessAt(data: Uint8Array, offset: number): boolean {
  return (data[offset + 3]! & 0x20) !== 0 && data[offset + 4]! > 0 && (data[offset + 5]! & 0x40) !== 0;
}

/**
 * discontinuity_indicator of the transport packet at `offset` (§2.4.3.4-2.4.3.5: bit 0x80 of
 * the adaptation field's flags byte, packet byte 5; when set, the continuity counter may
 * jump). False without an adaptation field or with one of length 0. Unchecked: see
 * {@link payloadOffset}.
 */
export function discontinuityAt(data: Uint8Array, offset: number): boolean {
  return (data[offset + 3]! & 0x20) !== 0 && data[offset + 4]! > 0 && (data[offset + 5]! & 0x80) !== 0;
}

/**
 * Parses the transport packet at `offset` (§2.4.3.2-2.4.3.5).
 * @throws TsMeasureError `malformed` for a missing sync byte, the transport error or scrambling flags, or a bad adaptation field.
 */
export function packetAt(data: Uint8Array, offset: number): TsPacket {
  const start = payloadOffset(data, offset);
  const b3 = data[offset + 3]!;
  const hasPayload = (b3 & 0x10) !== 0;
  return {
    pid: pidAt(data, offset), pusi: pusiAt(data, offset), cc: b3 & 0x0f, discontinuity: discontinuityAt(data, offset), randomAccess: randomAccessAt(data, offset),
    payload: hasPayload ? data.subarray(start, offset + PACKET) : data.subarray(0, 0), hasPayload,
  };
}

function checkedLength(data: Uint8Array): number {
  if (data.length === 0) throw malformed('empty file');
  if (data.length % PACKET !== 0) throw malformed(`${data.length} bytes is not a whole number of ${PACKET}-byte transport packets (truncated, or not MPEG-TS)`);
  return data.length / PACKET;
}

// ---------------------------------------------------------------------------------------
// PSI: PAT and PMT

/** Collects the first complete section on one PID from its packets (pointer_field, continuation across packets). */
export class SectionAssembler {
  /** Bytes of the section being gathered: the first `#length` of `#store` (grown as needed); `#open` false when none is. */
  #store: Uint8Array | undefined;
  #length = 0;
  #open = false;
  #expected = -1;

  /** Feeds one packet of the PID; returns the complete section (header to CRC_32 included, a copy) once it is. */
  push(p: TsPacket): Uint8Array | undefined {
    if (!p.hasPayload || p.payload.length === 0) return undefined;
    let bytes = p.payload;
    if (p.pusi) {
      const pointer = bytes[0]!;
      if (1 + pointer > bytes.length) throw malformed(`pointer_field ${pointer} beyond the packet on PID ${p.pid}`);
      // The bytes before the pointer end a previous section: complete it if one is open.
      if (this.#open) this.#append(bytes.subarray(1, 1 + pointer));
      const done = this.#complete();
      if (done) return done;
      this.#open = true;
      this.#length = 0;
      this.#expected = -1;
      bytes = bytes.subarray(1 + pointer);
    } else if (!this.#open) {
      return undefined; // a continuation without its start: ignore
    }
    this.#append(bytes);
    return this.#complete();
  }

  #append(bytes: Uint8Array): void {
    let store = this.#store;
    if (store === undefined || this.#length + bytes.length > store.length) {
      // PAT and PMT sections fit one packet: 256 bytes first, doubled for longer ones (at most 1024 + a packet).
      const bigger = new Uint8Array(Math.max(2 * (store?.length ?? 128), this.#length + bytes.length));
      if (store !== undefined) bigger.set(store.subarray(0, this.#length));
      this.#store = store = bigger;
    }
    store.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  #complete(): Uint8Array | undefined {
    if (!this.#open || this.#length < 3) return undefined;
    const buf = this.#store!;
    if (this.#expected < 0) {
      if (buf[0] === 0xff) { this.#open = false; return undefined; } // stuffing
      const sectionLength = ((buf[1]! & 0x0f) << 8) | buf[2]!;
      if (sectionLength > 1021) throw malformed(`section_length ${sectionLength} above 1021`);
      this.#expected = 3 + sectionLength;
    }
    if (this.#length < this.#expected) return undefined;
    const section = buf.slice(0, this.#expected);
    this.#open = false;
    this.#expected = -1;
    return section;
  }
}

/** Checks a long-form section (section_syntax_indicator 1, CRC) and returns its body between the 8-byte header and the CRC. */
function sectionBody(section: Uint8Array, tableId: number, what: string): Uint8Array {
  if (section[0] !== tableId) throw malformed(`${what}: table_id ${section[0]} instead of ${tableId}`);
  if ((section[1]! & 0x80) === 0) throw malformed(`${what}: section_syntax_indicator is 0`);
  if (section.length < 12) throw malformed(`${what}: section of ${section.length} bytes is too short`);
  if (crc32Mpeg2(section) !== 0) throw malformed(`${what}: CRC_32 mismatch`);
  return section.subarray(8, section.length - 4);
}

/**
 * PAT (§2.4.4.3): the PMT PID of the first program (program_number ≠ 0).
 * @throws TsMeasureError `malformed` for a bad section (table_id, CRC) or a PAT without a program.
 */
export function pmtPidOf(pat: Uint8Array): number {
  const body = sectionBody(pat, 0x00, 'PAT');
  for (let i = 0; i + 4 <= body.length; i += 4) {
    const programNumber = (body[i]! << 8) | body[i + 1]!;
    if (programNumber !== 0) return ((body[i + 2]! & 0x1f) << 8) | body[i + 3]!;
  }
  throw malformed('PAT lists no program');
}

/**
 * PMT (§2.4.4.8): the elementary streams, in order.
 * @throws TsMeasureError `malformed` for a bad section (table_id, CRC, lengths).
 */
export function streamsOf(pmt: Uint8Array): TsElementaryStream[] {
  const body = sectionBody(pmt, 0x02, 'PMT');
  if (body.length < 4) throw malformed('PMT too short');
  const programInfoLength = ((body[2]! & 0x0f) << 8) | body[3]!;
  let i = 4 + programInfoLength;
  const streams: TsElementaryStream[] = [];
  while (i < body.length) {
    if (i + 5 > body.length) throw malformed('PMT elementary stream entry truncated');
    const streamType = body[i]!;
    const pid = ((body[i + 1]! & 0x1f) << 8) | body[i + 2]!;
    const esInfoLength = ((body[i + 3]! & 0x0f) << 8) | body[i + 4]!;
    i += 5 + esInfoLength;
    if (i > body.length) throw malformed('PMT ES_info beyond the section');
    streams.push({ pid, streamType });
  }
  return streams;
}

/** Finds the PAT, then the PMT it names, in the first `packets` packets; the PMT's streams, or the PMT PID seen so far. */
function scanProgram(data: Uint8Array, packets: number): { streams?: TsElementaryStream[]; pmtPid?: number } {
  const pat = new SectionAssembler();
  const pmt = new SectionAssembler();
  let pmtPid: number | undefined;
  for (let n = 0; n < packets; n++) {
    const p = packetAt(data, n * PACKET);
    if (p.pid === 0 && pmtPid === undefined) {
      const section = pat.push(p);
      if (section) pmtPid = pmtPidOf(section);
    } else if (pmtPid !== undefined && p.pid === pmtPid) {
      const section = pmt.push(p);
      if (section) return { streams: streamsOf(section), pmtPid };
    }
  }
  return pmtPid === undefined ? {} : { pmtPid };
}

/** Finds the PAT, then the PMT it names; returns the PMT's streams. */
function readProgram(data: Uint8Array, packets: number): TsElementaryStream[] {
  const { streams, pmtPid } = scanProgram(data, packets);
  if (streams) return streams;
  throw malformed(pmtPid === undefined ? 'no PAT (program_association_section on PID 0)' : `no PMT on PID ${pmtPid}`);
}

/**
 * The first program's elementary streams from the head of a transport stream being received
 * (a byte stream whose first packet starts at byte 0), or undefined while the complete whole
 * packets of `head` do not yet hold the PAT and the PMT it names.
 * @throws TsMeasureError `malformed` when a packet of `head` is broken (no sync byte ...).
 */
export function programStreamsOfHead(head: Uint8Array): TsElementaryStream[] | undefined {
  return scanProgram(head, Math.floor(head.length / PACKET)).streams;
}

// ---------------------------------------------------------------------------------------
// PES and the SPS

/** The elementary stream bytes of a whole PES packet (§2.4.3.6), checked to be a video PES. */
function pesPayload(pes: Uint8Array): Uint8Array {
  if (pes.length < 9 || pes[0] !== 0 || pes[1] !== 0 || pes[2] !== 1) throw malformed('video PES packet without packet_start_code_prefix');
  const streamId = pes[3]!;
  if (streamId < 0xe0 || streamId > 0xef) throw malformed(`video PES stream_id 0x${streamId.toString(16)} is not a video stream_id`);
  if ((pes[6]! & 0xc0) !== 0x80) throw malformed('video PES header without its 10 marker bits');
  const start = 9 + pes[8]!;
  const packetLength = (pes[4]! << 8) | pes[5]!;
  const end = packetLength === 0 ? pes.length : 6 + packetLength;
  if (start > end || end > pes.length) throw malformed('video PES header or packet length beyond the data');
  return pes.subarray(start, end);
}

// ---------------------------------------------------------------------------------------
// Entry points

/**
 * Measures the H.264 video of an MPEG-TS segment held in memory.
 *
 * @param data the whole file
 * @returns frames (PES packets on the video PID), bytes (`data.length`), the `avc1` codecs
 *   part and picture size from the first SPS, and the PMT's elementary streams
 * @throws TsMeasureError — `malformed`: not whole 188-byte packets, a missing sync byte,
 *   transport error or scrambling flags, no PAT/PMT, a CRC mismatch, a broken PES header or a
 *   continuity_counter jump on the video PID (a lost packet); `unsupported`: no H.264 video
 *   stream (e.g. HEVC), or more than one video stream; `incomplete`: no video frame, or no
 *   SPS in the first video PES packet. Never a partial or approximate result.
 */
export function measureTs(data: Uint8Array): TsVideoMeasurement {
  const packets = checkedLength(data);
  const streams = readProgram(data, packets);
  const video = streams.filter((s) => VIDEO_STREAM_TYPES.has(s.streamType));
  if (video.length !== 1) throw new TsMeasureError('unsupported', `${video.length} video streams in the PMT (expected one)`);
  if (video[0]!.streamType !== STREAM_TYPE_H264) {
    throw new TsMeasureError('unsupported', `video stream_type 0x${video[0]!.streamType.toString(16)} is not H.264 (0x1b)`);
  }
  const videoPid = video[0]!.pid;

  let frames = 0;
  let lastCc = -1;
  const firstPes: Uint8Array[] = [];
  let collecting = false;
  // The fields of packetAt read in place: this loop runs over every packet of every rendition segment.
  for (let n = 0, off = 0; n < packets; n++, off += PACKET) {
    const start = payloadOffset(data, off);
    const b3 = data[off + 3]!;
    if (pidAt(data, off) !== videoPid || (b3 & 0x10) === 0) continue;
    const cc = b3 & 0x0f;
    const discontinuity = discontinuityAt(data, off);
    // continuity_counter (§2.4.3.3): +1 mod 16 per payload packet, unless the adaptation field flags a discontinuity.
    if (lastCc >= 0 && !discontinuity && cc !== ((lastCc + 1) & 0x0f)) {
      throw malformed(`continuity_counter jumps from ${lastCc} to ${cc} on the video PID at packet ${n} (a packet is missing or repeated)`);
    }
    lastCc = cc;
    if (pusiAt(data, off)) {
      if (off + PACKET - start < 4 || data[start] !== 0 || data[start + 1] !== 0 || data[start + 2] !== 1 || data[start + 3]! < 0xe0 || data[start + 3]! > 0xef) {
        throw malformed(`video packet ${n} starts a payload unit without a video PES header`);
      }
      frames++;
      collecting = frames === 1;
    } else if (frames === 0) {
      continue; // the tail of a PES packet that began before this file
    }
    if (collecting) firstPes.push(data.subarray(start, off + PACKET));
  }
  if (frames === 0) throw new TsMeasureError('incomplete', 'no video PES packet');
  const payload = pesPayload(Buffer.concat(firstPes));
  const sps = findH264Sps(payload);
  if (!sps) throw new TsMeasureError('incomplete', 'no SPS (nal_unit_type 7) in the first video PES packet');
  let size: { width: number; height: number };
  try {
    size = h264SpsPictureSize(sps);
  } catch (err) {
    if (err instanceof H264SpsError) throw malformed(err.message);
    throw err;
  }
  const { width, height } = size;
  return { frames, bytes: data.length, videoCodecs: h264CodecString(sps), width, height, streams };
}

/**
 * Reads and measures one MPEG-TS file ({@link measureTs}).
 * @throws TsMeasureError as {@link measureTs}, `malformed` for a file above 512 MiB;
 *   the file system's error when it cannot be read.
 */
export async function measureTsFile(path: string): Promise<TsVideoMeasurement> {
  const { size } = await stat(path);
  if (size > MAX_BYTES) throw malformed(`${size} bytes is too large for a segment`);
  return measureTs(await readFile(path));
}
