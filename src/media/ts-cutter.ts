/**
 * Cuts one continuous MPEG-TS stream (ISO/IEC 13818-1), fed as it is produced, into segments
 * at given presentation times: segment `seq` starts at the first video PES whose PTS is at or
 * after that seq's boundary (within half a frame); audio (every other elementary stream) goes
 * to a segment by its own PES PTS. Pure: no I/O; bytes in, whole segments out.
 *
 * Used on the output of a long-running ffmpeg (transcode/live-ladder.ts), whose mpegts muxer
 * writes each PES packet in one run of transport packets, PAT and PMT right before every video
 * keyframe, and one audio frame per PES (with `-muxdelay 0`). What each segment holds:
 *  - first, the PSI packets (PAT, PMT, SDT) that came right before its first video PES, or
 *    copies of the last PAT and PMT when none did, so every segment can be read alone;
 *  - its video PES packets, from the cut on, in stream order;
 *  - the audio PES packets whose PTS falls in `[boundary(seq), boundary(next seq))`; audio of
 *    a segment whose video has not started yet (the encoder holds video longer than audio)
 *    is kept until it does and placed after the first video packet. Transport packets of
 *    different PIDs may interleave freely, so this is still a valid stream.
 * continuity_counter stays consistent within a segment: its ES packets are contiguous runs of
 * their PID, and the PSI packets of a segment are renumbered from the first one's counter.
 *
 * A segment is complete (returned) once its video and its audio are:
 *  - video: the video of a later segment has started, or (early close) the segment holds the
 *    number of frames given by {@link TsCutter.setFrameCount} and its last video PES is whole
 *    (see below), so it need not wait for the encoder to put out the next seq's keyframe;
 *  - audio, per audio PID: a PES with PTS ≥ the next boundary came, or the last one is whole
 *    and the next frame (its PTS plus the PID's frame duration, taken from consecutive PES)
 *    would start at or after the boundary; or the video is `audioWait90k` past the boundary
 *    with neither (a stream whose audio stopped);
 * or at {@link end}. A PES is whole once a packet of another PID follows it (the muxer writes
 * each PES in one run) or its last packet ends in adaptation-field stuffing (the muxer pads the
 * last packet of a PES, ISO/IEC 13818-1 §2.4.3.5). Video PES of an early-closed segment that
 * still come (more frames than announced) are dropped and counted in `droppedPackets`.
 *
 * PTS are compared modulo 2^33 (the 33-bit PTS wraps after ~26.5 h), within ±2^32 ticks.
 */
import {
  malformed, packetAt, payloadOffset, pidAt, pmtPidOf, pusiAt, randomAccessAt, SectionAssembler, streamsOf, TS_PACKET_BYTES, VIDEO_STREAM_TYPES,
} from './ts-measure.ts';

/** One cut segment. */
export interface TsCut {
  readonly seq: number;
  /** Whole transport packets: PSI first, then the segment's video and audio. */
  readonly bytes: Buffer;
  /** The boundary it was cut at (the seq's start), 90 kHz. */
  readonly boundaryPts90k: number;
  /** Smallest and largest video PTS in the segment, 90 kHz; undefined when it has no video. */
  readonly firstVideoPts90k: number | undefined;
  readonly lastVideoPts90k: number | undefined;
  /** Video PES packets (= frames for ffmpeg's muxer). */
  readonly videoFrames: number;
  /** Whether the first video PES carries random_access_indicator (a keyframe). */
  readonly startsWithKeyframe: boolean;
}

export interface TsCutterOptions {
  /** Duration of one video frame of the stream, 90 kHz ticks (e.g. 3000 at 30 fps): a PES up to half of it before a boundary still starts the segment. */
  readonly frameDuration90k: number;
  /** How far the video may run past a boundary while the audio has not reached it before the segment is closed anyway, 90 kHz; default 90000 (1 s). */
  readonly audioWait90k?: number;
}

/** Per audio PID: the newest PES PTS and the frame duration seen between consecutive PES, 90 kHz. */
interface AudioTrack {
  maxPts: number;
  frameTicks: number | undefined;
}

/** Longest gap between consecutive audio PES taken as one frame's duration, 90 kHz (0.5 s). */
const MAX_AUDIO_FRAME_90K = 45_000;
/** Rounding slack of audio PTS against their frame duration, 90 kHz ticks. */
const AUDIO_PTS_SLACK_90K = 2;

/**
 * Whether the transport packet at `off` ends its PES for ffmpeg's muxer: an adaptation field
 * with stuffing bytes (0xFF after the fields its flags announce). Undefined flags we do not
 * parse (private data, extension) give false.
 */
function endsWithStuffing(data: Uint8Array, off: number): boolean {
  if ((data[off + 3]! & 0x20) === 0) return false;
  const afLength = data[off + 4]!;
  if (afLength === 0) return true; // a single stuffing byte (the length field itself)
  const flags = data[off + 5]!;
  if (flags & 0x03) return false;
  const used = 1 + (flags & 0x10 ? 6 : 0) + (flags & 0x08 ? 6 : 0) + (flags & 0x04 ? 1 : 0);
  return afLength > used;
}

/** A copy of the transport packet at `off` (kept past the pushed bytes it came in). */
function copyPacket(data: Buffer, off: number): Buffer {
  const copy = Buffer.allocUnsafe(TS_PACKET_BYTES);
  data.copy(copy, 0, off, off + TS_PACKET_BYTES);
  return copy;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * Calls `packet(data, offset)` for every whole transport packet of `rest` followed by `bytes`,
 * in order. Only the packet that straddles the two is assembled (188 bytes copied); the
 * others are read in place, in `bytes`.
 * @returns the new tail: the bytes after the last whole packet (a copy, under 188 bytes).
 */
function forEachPacket(rest: Buffer, bytes: Uint8Array, packet: (data: Buffer, offset: number) => void): Buffer {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  if (rest.length > 0) {
    const need = TS_PACKET_BYTES - rest.length;
    if (data.length < need) return Buffer.concat([rest, data]);
    packet(Buffer.concat([rest, data.subarray(0, need)]), 0);
    off = need;
  }
  const end = data.length - ((data.length - off) % TS_PACKET_BYTES);
  for (; off < end; off += TS_PACKET_BYTES) packet(data, off);
  // The tail (under 188 bytes) is copied, so it does not keep `bytes` alive.
  return end === data.length ? NO_BYTES : Buffer.from(data.subarray(end));
}

const PTS_MODULO = 2 ** 33;
const HALF_MODULO = 2 ** 32;

/** `a - b` for 33-bit PTS, in (-2^32, 2^32]. */
function ptsDiff(a: number, b: number): number {
  let d = (a - b) % PTS_MODULO;
  if (d > HALF_MODULO) d -= PTS_MODULO;
  else if (d <= -HALF_MODULO) d += PTS_MODULO;
  return d;
}

/**
 * PTS of a PES packet from the payload of its first transport packet (§2.4.3.6-2.4.3.7), or
 * undefined when it has none (PTS_DTS_flags 00) or the header is not in this packet.
 */
export function pesPts90k(payload: Uint8Array): number | undefined {
  return ptsAt(payload, 0, payload.length);
}

/** {@link pesPts90k} of the payload `data[start..end)`, read in place. */
function ptsAt(b: Uint8Array, start: number, end: number): number | undefined {
  if (end - start < 14 || b[start] !== 0 || b[start + 1] !== 0 || b[start + 2] !== 1) return undefined;
  if ((b[start + 7]! & 0x80) === 0) return undefined;
  // 33 bits: 3 + 15 + 15, each group followed by a marker bit. Arithmetic, not 32-bit bitwise.
  return ((b[start + 9]! >> 1) & 0x07) * 2 ** 30 + (b[start + 10]! << 22) + ((b[start + 11]! >> 1) << 15) + (b[start + 12]! << 7) + (b[start + 13]! >> 1);
}

/** Bytes `start..end` of `buf`: consecutive transport packets of one pushed chunk that went to one segment. */
interface Run {
  readonly buf: Buffer;
  readonly start: number;
  end: number;
}

interface Segment {
  readonly seq: number;
  readonly boundary: number;
  /** PSI + the first video packet, once the video started. */
  head: Buffer[];
  /** Everything else, in stream order, as runs of adjacent packets (copied once, when the segment is cut). */
  body: Run[];
  videoStarted: boolean;
  startsWithKeyframe: boolean;
  firstPts: number | undefined;
  lastPts: number | undefined;
  frames: number;
}

/** See the module comment. */
export class TsCutter {
  readonly #half: number;
  readonly #audioWait: number;
  #rest: Buffer = Buffer.alloc(0);
  #pmtPid: number | undefined;
  #videoPid: number | undefined;
  readonly #audioPids = new Set<number>();
  readonly #pat = new SectionAssembler();
  readonly #pmt = new SectionAssembler();
  #lastPat: Buffer | undefined;
  #lastPmt: Buffer | undefined;
  /** Known boundaries not yet emitted, in seq order. */
  readonly #bounds: { seq: number; pts: number }[] = [];
  readonly #segments = new Map<number, Segment>();
  /** Seq whose video is being written, once the first cut happened. */
  #videoSeq: number | undefined;
  /** Seq each ES PID's current PES goes to. */
  readonly #route = new Map<number, number>();
  #pendingPsi: Buffer[] = [];
  #maxAudioPts: number | undefined;
  #maxVideoPts: number | undefined;
  /** Packets dropped because they came before the first boundary's video (or after an early close). */
  #dropped = 0;
  /** Frames announced per seq ({@link setFrameCount}). */
  readonly #frameCounts = new Map<number, number>();
  /** Highest seq returned so far. */
  #closedSeq: number | undefined;
  readonly #audioTracks = new Map<number, AudioTrack>();
  /**
   * Whether each ES PID's current PES is whole (see the module comment): every ES PID seen is,
   * but `#openPid`, the PID of the last packet when it was an ES packet not ending its PES (a
   * packet of any other PID makes every other PES whole, so at most one is not). -1: none.
   */
  readonly #esSeen = new Set<number>();
  #openPid = -1;

  constructor(options: TsCutterOptions) {
    if (!(options.frameDuration90k > 0)) throw new RangeError(`frameDuration90k must be positive, got ${options.frameDuration90k}`);
    this.#half = options.frameDuration90k / 2;
    this.#audioWait = options.audioWait90k ?? 90_000;
  }

  /** Video packets dropped so far because they came before the first boundary (normally 0). */
  get droppedPackets(): number {
    return this.#dropped;
  }

  /**
   * Declares where segment `seq` starts (the PTS of its first video frame in the stream,
   * 90 kHz). Call before the stream's bytes of that time are pushed; seqs strictly increasing.
   * @throws RangeError when `seq` is not above the last one.
   */
  addBoundary(seq: number, pts90k: number): void {
    const last = this.#bounds[this.#bounds.length - 1];
    if (last && seq <= last.seq) throw new RangeError(`boundary seq ${seq} is not above ${last.seq}`);
    this.#bounds.push({ seq, pts: pts90k });
  }

  /**
   * Announces how many video frames (PES) segment `seq` holds, once that is known (e.g. from
   * the source the stream is encoded from, one output frame per source frame): with the next
   * boundary known, the segment is complete as soon as it holds them (module comment).
   * Ignored for a seq already returned.
   */
  setFrameCount(seq: number, frames: number): void {
    if (this.#closedSeq !== undefined && seq <= this.#closedSeq) return;
    this.#frameCounts.set(seq, frames);
  }

  /**
   * Feeds the next bytes of the stream (any length; a partial packet is kept for the next call).
   * Their packets are read in place and held as views until their segment is returned (then
   * copied into its `bytes`, once): the caller must not overwrite `bytes` (a pipe's `data`
   * chunks are never reused).
   * @returns the segments completed by them, in seq order.
   * @throws TsMeasureError `malformed` for a bad packet or PSI section.
   */
  push(bytes: Uint8Array): TsCut[] {
    this.#rest = forEachPacket(this.#rest, bytes, this.#onPacket);
    return this.#completed(false);
  }

  readonly #onPacket = (data: Buffer, off: number): void => this.#packet(data, off);

  /**
   * The stream ended: every open segment is complete.
   * @returns the remaining segments in seq order (those with video; a boundary the stream never reached gives nothing).
   * @throws TsMeasureError `malformed` when a partial packet is left.
   */
  end(): TsCut[] {
    if (this.#rest.length > 0) throw malformed(`stream ended inside a transport packet (${this.#rest.length} bytes left)`);
    return this.#completed(true);
  }

  /** One transport packet, `data[off..off + 188)`: read in place; kept as a view until its segment is cut. */
  #packet(data: Buffer, off: number): void {
    const start = payloadOffset(data, off);
    const pid = pidAt(data, off);
    const video = pid === this.#videoPid;
    const audio = !video && this.#audioPids.has(pid);
    // The muxer writes a PES in one run: a packet of any other PID means every other PES is whole.
    if (this.#openPid !== pid) this.#openPid = -1;
    if (video || audio) {
      this.#esSeen.add(pid);
      this.#openPid = endsWithStuffing(data, off) ? -1 : pid;
    }
    if (pid === 0) {
      const section = this.#pat.push(packetAt(data, off));
      if (section) this.#pmtPid = pmtPidOf(section);
      this.#lastPat = copyPacket(data, off);
      this.#pendingPsi.push(this.#lastPat);
      return;
    }
    if (pid === this.#pmtPid) {
      const section = this.#pmt.push(packetAt(data, off));
      if (section) this.#learnStreams(section);
      this.#lastPmt = copyPacket(data, off);
      this.#pendingPsi.push(this.#lastPmt);
      return;
    }
    if (video) this.#video(data, off, start);
    else if (audio) this.#audio(data, off, start, pid);
    else this.#pendingPsi.push(copyPacket(data, off)); // SDT and other tables; also anything before the PMT
  }

  /** Whether ES PID `pid`'s current PES is whole (module comment). */
  #isWhole(pid: number): boolean {
    return this.#esSeen.has(pid) && this.#openPid !== pid;
  }

  /** Adds the packet at `off` to the segment's body, extending its last run when the packet follows it in the same bytes. */
  #append(seg: Segment, data: Buffer, off: number): void {
    const last = seg.body[seg.body.length - 1];
    if (last !== undefined && last.buf === data && last.end === off) last.end = off + TS_PACKET_BYTES;
    else seg.body.push({ buf: data, start: off, end: off + TS_PACKET_BYTES });
  }

  #learnStreams(pmt: Uint8Array): void {
    this.#audioPids.clear();
    for (const s of streamsOf(pmt)) {
      if (VIDEO_STREAM_TYPES.has(s.streamType)) this.#videoPid ??= s.pid;
      else this.#audioPids.add(s.pid);
    }
  }

  #segment(seq: number): Segment {
    let seg = this.#segments.get(seq);
    if (!seg) {
      const bound = this.#bounds.find((b) => b.seq === seq)!;
      seg = { seq, boundary: bound.pts, head: [], body: [], videoStarted: false, startsWithKeyframe: false, firstPts: undefined, lastPts: undefined, frames: 0 };
      this.#segments.set(seq, seg);
    }
    return seg;
  }

  /** The open seq a PTS belongs to: the last known boundary at or before it (the first open one if none). */
  #seqAt(pts: number): number | undefined {
    for (let i = this.#bounds.length - 1; i >= 0; i--) {
      if (ptsDiff(pts, this.#bounds[i]!.pts) >= 0) return this.#bounds[i]!.seq;
    }
    return this.#bounds[0]?.seq;
  }

  #video(data: Buffer, off: number, start: number): void {
    if (pusiAt(data, off)) {
      const pts = ptsAt(data, start, off + TS_PACKET_BYTES);
      if (pts !== undefined) {
        this.#maxVideoPts = this.#maxVideoPts === undefined || ptsDiff(pts, this.#maxVideoPts) > 0 ? pts : this.#maxVideoPts;
        // The last boundary (after the current video seq) this frame reaches starts a segment.
        let cut: number | undefined;
        for (const b of this.#bounds) {
          if (this.#videoSeq !== undefined && b.seq <= this.#videoSeq) continue;
          if (ptsDiff(pts, b.pts) >= -this.#half) cut = b.seq;
          else break;
        }
        if (cut !== undefined) {
          this.#videoSeq = cut;
          const seg = this.#segment(cut);
          const psi = this.#pendingPsi;
          this.#pendingPsi = [];
          const hasTables = psi.some((b) => b === this.#lastPat) && psi.some((b) => b === this.#lastPmt);
          const tables = hasTables || !this.#lastPat || !this.#lastPmt ? [] : [this.#lastPat, this.#lastPmt];
          seg.head = [...tables, ...psi, data.subarray(off, off + TS_PACKET_BYTES)];
          seg.videoStarted = true;
          seg.startsWithKeyframe = randomAccessAt(data, off);
          seg.firstPts = pts;
          seg.lastPts = pts;
          seg.frames = 1;
          this.#route.set(this.#videoPid!, cut);
          return;
        }
      }
      if (this.#videoSeq === undefined || this.#isClosed(this.#videoSeq)) {
        this.#dropped++;
        return;
      }
      const seg = this.#segment(this.#videoSeq);
      seg.frames++;
      if (pts !== undefined) {
        if (seg.firstPts === undefined || ptsDiff(pts, seg.firstPts) < 0) seg.firstPts = pts;
        if (seg.lastPts === undefined || ptsDiff(pts, seg.lastPts) > 0) seg.lastPts = pts;
      }
      this.#flushPsiTo(seg);
      this.#append(seg, data, off);
      return;
    }
    if (this.#videoSeq === undefined || this.#isClosed(this.#videoSeq)) {
      this.#dropped++;
      return;
    }
    const seg = this.#segment(this.#videoSeq);
    this.#flushPsiTo(seg);
    this.#append(seg, data, off);
  }

  #isClosed(seq: number): boolean {
    return this.#closedSeq !== undefined && seq <= this.#closedSeq;
  }

  #audio(data: Buffer, off: number, start: number, pid: number): void {
    let seq = this.#route.get(pid);
    if (pusiAt(data, off)) {
      const pts = ptsAt(data, start, off + TS_PACKET_BYTES);
      if (pts !== undefined) {
        this.#maxAudioPts = this.#maxAudioPts === undefined || ptsDiff(pts, this.#maxAudioPts) > 0 ? pts : this.#maxAudioPts;
        const track = this.#audioTracks.get(pid);
        if (!track) this.#audioTracks.set(pid, { maxPts: pts, frameTicks: undefined });
        else if (ptsDiff(pts, track.maxPts) > 0) {
          const step = ptsDiff(pts, track.maxPts);
          if (step <= MAX_AUDIO_FRAME_90K) track.frameTicks = track.frameTicks === undefined ? step : Math.min(track.frameTicks, step);
          track.maxPts = pts;
        }
        seq = this.#seqAt(pts);
      }
      seq ??= this.#videoSeq ?? this.#bounds[0]?.seq;
      if (seq !== undefined) this.#route.set(pid, seq);
    }
    if (seq === undefined || !this.#segments.has(seq) && !this.#bounds.some((b) => b.seq === seq)) {
      // No boundary known yet, or the PES continues in a segment already emitted: nothing to attach it to.
      return;
    }
    const seg = this.#segment(seq);
    if (this.#videoSeq !== undefined && !this.#isClosed(this.#videoSeq)) {
      const current = this.#segment(this.#videoSeq);
      this.#flushPsiTo(current);
    }
    this.#append(seg, data, off);
  }

  /** Early close: segment `seq` is the one being written, holds its announced frames, and its last video PES is whole. */
  #videoWhole(seq: number): boolean {
    const frames = this.#frameCounts.get(seq);
    const seg = this.#segments.get(seq);
    return frames !== undefined && this.#videoSeq === seq && seg !== undefined && seg.videoStarted && seg.frames >= frames
      && this.#isWhole(this.#videoPid!);
  }

  /** Whether audio PID `pid` has nothing more before `boundary`: a PES at or after it, or a whole last PES whose next frame would be. */
  #audioReached(pid: number, boundary: number): boolean {
    const track = this.#audioTracks.get(pid);
    if (!track) return false;
    if (ptsDiff(track.maxPts, boundary) >= 0) return true;
    return track.frameTicks !== undefined && this.#isWhole(pid)
      && ptsDiff(track.maxPts + track.frameTicks - AUDIO_PTS_SLACK_90K, boundary) >= 0;
  }

  #flushPsiTo(seg: Segment): void {
    if (this.#pendingPsi.length === 0) return;
    for (const psi of this.#pendingPsi) seg.body.push({ buf: psi, start: 0, end: TS_PACKET_BYTES });
    this.#pendingPsi = [];
  }

  #completed(ended: boolean): TsCut[] {
    const out: TsCut[] = [];
    while (this.#bounds.length > 0) {
      const bound = this.#bounds[0]!;
      const next = this.#bounds[1];
      if (!ended) {
        if (!next || this.#videoSeq === undefined) break;
        if (this.#videoSeq < next.seq && !this.#videoWhole(bound.seq)) break;
        const audioDone = this.#audioPids.size === 0
          || (this.#maxAudioPts !== undefined && ptsDiff(this.#maxAudioPts, next.pts) >= 0)
          || (this.#maxVideoPts !== undefined && ptsDiff(this.#maxVideoPts, next.pts) >= this.#audioWait)
          || [...this.#audioPids].every((pid) => this.#audioReached(pid, next.pts));
        if (!audioDone) break;
      }
      this.#bounds.shift();
      this.#closedSeq = bound.seq;
      this.#frameCounts.delete(bound.seq);
      const seg = this.#segments.get(bound.seq);
      this.#segments.delete(bound.seq);
      if (seg?.videoStarted) out.push(cutOf(seg, (pid) => pid !== this.#videoPid && !this.#audioPids.has(pid)));
      else if (!ended || seg) out.push(emptyCut(bound.seq, bound.pts));
    }
    return out;
  }
}

function emptyCut(seq: number, boundary: number): TsCut {
  return { seq, bytes: Buffer.alloc(0), boundaryPts90k: boundary, firstVideoPts90k: undefined, lastVideoPts90k: undefined, videoFrames: 0, startsWithKeyframe: false };
}

/** Builds a segment's bytes; PSI packets (PAT, PMT, SDT) get consecutive continuity counters from the first one's. */
function cutOf(seg: Segment, isPsi: (pid: number) => boolean): TsCut {
  let length = 0;
  for (const b of seg.head) length += b.length;
  for (const r of seg.body) length += r.end - r.start;
  const bytes = Buffer.allocUnsafe(length);
  let at = 0;
  for (const b of seg.head) at += b.copy(bytes, at);
  for (const r of seg.body) at += r.buf.copy(bytes, at, r.start, r.end);
  const next = new Map<number, number>();
  for (let off = 0; off < bytes.length; off += TS_PACKET_BYTES) {
    const pid = pidAt(bytes, off);
    if (!isPsi(pid)) continue;
    const cc = next.get(pid) ?? (bytes[off + 3]! & 0x0f);
    bytes[off + 3] = (bytes[off + 3]! & 0xf0) | cc;
    next.set(pid, (cc + 1) & 0x0f);
  }
  return {
    seq: seg.seq, bytes, boundaryPts90k: seg.boundary, firstVideoPts90k: seg.firstPts, lastVideoPts90k: seg.lastPts,
    videoFrames: seg.frames, startsWithKeyframe: seg.startsWithKeyframe,
  };
}

/**
 * DTS of a PES packet from the payload of its first transport packet (§2.4.3.7: PTS_DTS_flags
 * 11), else its PTS (a PES without DTS is decoded at its PTS), else undefined.
 */
export function pesDts90k(payload: Uint8Array): number | undefined {
  const pts = pesPts90k(payload);
  if (pts === undefined || (payload[7]! & 0x40) === 0 || payload.length < 19) return pts;
  const b = payload;
  return ((b[14]! >> 1) & 0x07) * 2 ** 30 + (b[15]! << 22) + ((b[16]! >> 1) << 15) + (b[17]! << 7) + (b[18]! >> 1);
}

export interface TsFrameCounterOptions {
  /** Duration of one video frame, 90 kHz: a frame up to half of it before a boundary counts in that seq (as {@link TsCutter} cuts). */
  readonly frameDuration90k: number;
  /** Called once per seq when its frame count is final (in seq order). */
  readonly onCount: (seq: number, frames: number) => void;
}

/**
 * Counts the video frames (PES) of each seq in an MPEG-TS stream fed in order (the source a
 * ladder encodes), by PTS against the same boundaries as {@link TsCutter}. Seq N's count is final
 * once a frame whose DTS reaches seq N+1's boundary came: every later frame is decoded, hence
 * presented, at or after it (PTS ≥ DTS, DTS increasing). Frames before the first boundary are
 * not counted. Pure: bytes in, counts out through `onCount`.
 */
export class TsFrameCounter {
  readonly #half: number;
  readonly #onCount: (seq: number, frames: number) => void;
  #rest: Buffer = Buffer.alloc(0);
  #pmtPid: number | undefined;
  #videoPid: number | undefined;
  readonly #pat = new SectionAssembler();
  readonly #pmt = new SectionAssembler();
  /** Boundaries whose count is not final yet, in seq order, with their frames so far. */
  readonly #open: { seq: number; pts: number; frames: number }[] = [];

  constructor(options: TsFrameCounterOptions) {
    if (!(options.frameDuration90k > 0)) throw new RangeError(`frameDuration90k must be positive, got ${options.frameDuration90k}`);
    this.#half = options.frameDuration90k / 2;
    this.#onCount = options.onCount;
  }

  /** Declares where seq `seq` starts, 90 kHz, before its bytes are pushed; seqs increasing. */
  addBoundary(seq: number, pts90k: number): void {
    const last = this.#open[this.#open.length - 1];
    if (last && seq <= last.seq) throw new RangeError(`boundary seq ${seq} is not above ${last.seq}`);
    this.#open.push({ seq, pts: pts90k, frames: 0 });
  }

  /**
   * Feeds the next bytes (any length).
   * @throws TsMeasureError `malformed` for a bad packet or PSI section.
   */
  push(bytes: Uint8Array): void {
    this.#rest = forEachPacket(this.#rest, bytes, this.#onPacket);
  }

  readonly #onPacket = (data: Buffer, off: number): void => {
    const start = payloadOffset(data, off);
    const pid = pidAt(data, off);
    if (pid === 0) {
      const section = this.#pat.push(packetAt(data, off));
      if (section) this.#pmtPid = pmtPidOf(section);
    } else if (pid === this.#pmtPid) {
      const section = this.#pmt.push(packetAt(data, off));
      if (section) this.#videoPid ??= streamsOf(section).find((s) => VIDEO_STREAM_TYPES.has(s.streamType))?.pid;
    } else if (pid === this.#videoPid && pusiAt(data, off)) {
      const payload = data.subarray(start, off + TS_PACKET_BYTES);
      const pts = pesPts90k(payload);
      if (pts !== undefined) this.#frame(pts, pesDts90k(payload) ?? pts);
    }
  };

  #frame(pts: number, dts: number): void {
    for (let i = this.#open.length - 1; i >= 0; i--) {
      if (ptsDiff(pts, this.#open[i]!.pts) >= -this.#half) {
        this.#open[i]!.frames++;
        break;
      }
    }
    while (this.#open.length >= 2 && ptsDiff(dts, this.#open[1]!.pts) >= -this.#half) {
      const done = this.#open.shift()!;
      this.#onCount(done.seq, done.frames);
    }
  }
}
