/**
 * Cuts one live stream's RTMP/FLV packets (flv-packets.ts) into MPEG-TS source segments in
 * process, with our muxer (ts-muxer.ts): no ffmpeg, no ffprobe. docs/architecture.md "The
 * MPEG-TS muxer" describes what it writes and why.
 *
 * Rules:
 *  - Cuts: segment `firstSeq` starts at the first video keyframe; the k-th cut after it is
 *    at the first keyframe whose DTS is ≥ the stream's first DTS + k × `segmentTargetMs` (a
 *    fixed grid of targets, as ffmpeg's segment muxer cuts with `-segment_time`). Regular
 *    GOPs give one segment per GOP multiple either way; after a GOP longer than the target,
 *    the following keyframes cut until the grid is caught up, so the stream's segment count
 *    keeps following its duration (a lag of more than 10 targets, a clock jump, restarts the
 *    grid at that segment instead). Audio-only streams cut on the first audio frame at or
 *    past each target the same way.
 *    Audio frames go to the segment current when they arrive.
 *  - Video or audio-only: the stream is a video stream as soon as an AVC config arrives.
 *    Audio arriving before that is held; when `audioOnlyAfterMs` of audio has been held
 *    without an AVC config, the stream is audio-only for good (a later AVC config is ignored
 *    with a `warning`). Video frames before the first keyframe are dropped, and so is held
 *    audio older than the first keyframe.
 *  - Timestamps: 90 kHz = ms × 90, rebased so that the stream's first written packet has
 *    DTS {@link TS_START_90K} (1.4 s): `dts90k = 126000 + (dtsMs − firstDtsMs) × 90`,
 *    `pts90k = dts90k + ctsMs × 90`, modulo 2^33. The same constant ffmpeg's mpegts muxer
 *    adds, so segment timestamps read as they did with ffmpeg segmenting; it keeps PCR
 *    (= DTS − 0.7 s) and PTS positive for composition offsets down to −1.4 s.
 *  - PCR: on the first TS packet of every video PES (audio PES without video), plus a
 *    PCR-only packet when audio has advanced 100 ms past the last PCR between video frames
 *    (ISO/IEC 13818-1 §2.7.2 asks for at most 100 ms between PCRs).
 *  - A timestamp at or before the previous one (video; audio in audio-only streams) shifts
 *    every later timestamp so the stream goes on one frame later (`warning` timestamp-jump);
 *    audio that goes back in a video stream is dropped until video's shift covers it.
 *  - Frame rate (for `info`): first an estimate from the first 4 frames (the nearest integer
 *    rate, `fpsFinal` false) so consumers can start early; then from the video DTS over the
 *    first 2 s of frames (or up to the first cut, if earlier), `fpsFinal` true: n intervals spanning S ms give the standard rate (integer 1-240,
 *    or 24, 30, 48, 60, 120 × 1000/1001) whose n intervals last closest to S, when within
 *    1 ms + 0.1 % (the error of FLV's millisecond timestamps); otherwise the measured rate as
 *    a fraction over 1000.
 *
 * Pure: no I/O, no timers; every event is emitted synchronously from `push` or `end`.
 */
import { EventEmitter } from 'node:events';
import { AacConfigError, adtsHeader, aacCodecString, parseAudioSpecificConfig, type AacConfig } from './aac.ts';
import type { FlvPacket } from './flv-packets.ts';
import { h264CodecString, H264SpsError, h264SpsPictureSize, parseAvcDecoderConfig, splitAvcc, type AvcDecoderConfig } from './h264.ts';
import { TIMESTAMP_WRAP_90K, TsMuxer, TsOutput } from './ts-muxer.ts';

/** DTS of the stream's first packet, 90 kHz ticks (1.4 s, ffmpeg's mpegts muxer's start). */
export const TS_START_90K = 126_000;
/** PCR = DTS − this (0.7 s, ffmpeg's default max_delay): the decoder's buffering headroom. */
export const PCR_DELAY_90K = 63_000;
/** Longest gap between PCRs we let pass while audio keeps arriving (§2.7.2: ≤ 100 ms). */
const PCR_INTERVAL_90K = 9_000;
/** Video DTS span used to measure the frame rate. */
const FPS_WINDOW_MS = 2000;
/** Frame intervals of the early frame-rate estimate (`fpsFinal` false). */
const EARLY_FPS_INTERVALS = 3;
/** Held audio kept while waiting for the first keyframe (at least `audioOnlyAfterMs`). */
const HELD_AUDIO_MS = 1000;
/**
 * Bytes of the output buffer a segmenter keeps for its life, the muxed frames' bytes until they are emitted: what
 * one flush usually holds (a 360p inter frame with the audio since the last is 1-4 KB); a
 * larger flush (a keyframe) grows it for that flush only.
 */
export const TS_OUTPUT_BYTES = 8 * 1024;
/** Flush muxed audio as a chunk when no video frame came for this long. */
const AUDIO_FLUSH_90K = 9_000;
/** access_unit_delimiter NAL unit: nal_unit_type 9, primary_pic_type 7 (any), stop bit (ITU-T H.264 §7.3.2.4). */
const AUD_NAL = Uint8Array.from([0x09, 0xf0]);

/** What the stream carries, measured in process (no ffprobe). */
export interface SourceStreamInfo {
  readonly video?: {
    readonly codec: 'h264';
    /** RFC 6381 `avc1.PPCCLL` from the SPS. */
    readonly codecString: string;
    /** Picture size in pixels from the SPS (cropping applied), as ffprobe reports it. */
    readonly width: number;
    readonly height: number;
    /** Frame rate fraction measured from the DTS (module docs). */
    readonly fpsNum: number;
    readonly fpsDen: number;
    /**
     * false: an early estimate from the first 4 frames (the nearest integer rate), so `info`
     * comes ~0.1 s after the first keyframe; true: measured over the 2 s window (or up to the
     * first cut). The last `info` before the first `segment` always has it true.
     */
    readonly fpsFinal: boolean;
  };
  readonly audio?: {
    readonly codec: 'aac';
    /** RFC 6381 `mp4a.40.N`, N = the AudioSpecificConfig's first object type. */
    readonly codecString: string;
    /** Output sample rate in Hz. */
    readonly sampleRate: number;
    readonly channels: number;
  };
}

/** Muxed bytes of segment `seq` as they are produced. */
export interface TsChunk {
  readonly seq: number;
  /** The segment's first chunk: starts with PAT/PMT and the keyframe (audio frame without video). */
  readonly first: boolean;
  /** PTS of the segment's first frame (90 kHz, as written: mod 2^33); on first chunks only. */
  readonly startPts90k?: number;
  /**
   * The muxed bytes. From a segmenter made with `chunkViews: true`, a view of its reused
   * output buffer, valid only until the `chunk` listeners return (copy it to keep it);
   * otherwise a Buffer of its own.
   */
  readonly bytes: Buffer;
}

/** One closed segment. */
export interface TsSegment {
  readonly seq: number;
  /**
   * The whole segment: the concatenation of its chunks. Empty when the segmenter was made with
   * `keepSegmentBytes: false` (the chunks are then the only copy; see {@link TsSegmenterOptions}).
   */
  readonly bytes: Buffer;
  /** Bytes in the segment (the sum of its chunks' lengths), also without `keepSegmentBytes`. */
  readonly byteLength: number;
  /** PTS of its first frame, 90 kHz as written (mod 2^33). */
  readonly startPts90k: number;
  /** Start in ms on the stream timeline, 0 at the stream's first segment (PTS-based). */
  readonly startMs: number;
  /** ms to the next segment's start; for the last one (`end()`), to the end of its last frame. */
  readonly durationMs: number;
  /** Video frames (access units); 0 for audio-only. */
  readonly frames: number;
  /** AAC frames. */
  readonly audioFrames: number;
}

/** Something dropped or ignored; the stream goes on. */
export interface TsSegmenterWarning {
  /** Static kind, for logs and metrics. */
  readonly code: 'bad-avc-config' | 'bad-aac-config' | 'late-video-ignored' | 'video-before-config' | 'audio-before-config' | 'unsupported'
    | 'timestamp-jump' | 'audio-timestamp-back';
  readonly detail: string;
}

/** The typed event map. */
export interface TsSegmenterEvents {
  /**
   * When the configs and a frame rate are known: ~4 frames after the first keyframe with an
   * estimated rate, again with the measured one (before the first `segment`), and again if a
   * new config changes anything.
   */
  info: [SourceStreamInfo];
  /** Muxed bytes, at least once per video frame, in order. */
  chunk: [TsChunk];
  /** A segment closed (strictly in seq order, after its last chunk). */
  segment: [TsSegment];
  /** A packet dropped or a config refused. Each code is reported once per segmenter. */
  warning: [TsSegmenterWarning];
}

export interface TsSegmenterOptions {
  /** Target segment duration, ms (> 0). Cuts happen at keyframes only. */
  segmentTargetMs: number;
  /** seq of the first segment; default 0. */
  firstSeq?: number;
  /** Audio held this long (ms) with no AVC config makes the stream audio-only; default 1000. */
  audioOnlyAfterMs?: number;
  /**
   * Keep each open segment's chunks to hand the whole segment over in `segment.bytes`; default
   * true. false: a chunk is forgotten once emitted and `segment.bytes` is empty, so a consumer
   * that stores the chunks as they come (rtmp-segmenter.ts appends them to the segment file)
   * keeps no segment in memory: at the ~520 kb/s of a 360p stream a 2 s segment is ~140 KB,
   * and its per-frame chunks are small allocations from Node's shared 8 KiB Buffer pool, each
   * keeping its whole pool slab alive until the segment closes.
   */
  keepSegmentBytes?: boolean;
  /**
   * Emit each chunk's bytes as a view of the segmenter's output buffer, reused for its life
   * ({@link TS_OUTPUT_BYTES}), instead of a copy: `chunk.bytes` is then valid only while the
   * `chunk` listeners run, and muxing a frame allocates no Buffer. Default false; true needs
   * `keepSegmentBytes: false` (a consumer that writes each chunk out as it comes).
   */
  chunkViews?: boolean;
}

interface HeldAudio { readonly dtsMs: number; readonly data: Buffer }

interface OpenSegment {
  readonly seq: number;
  readonly startDtsMs: number;
  readonly startPts90k: number;
  readonly startMs: number;
  readonly chunks: Buffer[];
  byteLength: number;
  frames: number;
  audioFrames: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

const STANDARD_RATES: ReadonlyArray<readonly [number, number]> = [
  ...Array.from({ length: 240 }, (_, i) => [i + 1, 1] as const),
  ...[24, 30, 48, 60, 120].map((r) => [r * 1000, 1001] as const),
];

/**
 * Frame rate of `intervals` frame intervals spanning `spanMs` (module docs for the rule).
 * @returns `[num, den]`; `[0, 1]` when there is no interval to measure.
 */
export function frameRateFromSpan(intervals: number, spanMs: number): [number, number] {
  if (intervals <= 0 || spanMs <= 0) return [0, 1];
  let best: readonly [number, number] | undefined;
  let bestError = Infinity;
  for (const rate of STANDARD_RATES) {
    const error = Math.abs((intervals * 1000 * rate[1]) / rate[0] - spanMs);
    if (error < bestError - 1e-9) {
      best = rate;
      bestError = error;
    }
  }
  if (best && bestError <= 1 + spanMs * 0.001) return [best[0], best[1]];
  const num = Math.round((intervals * 1_000_000) / spanMs);
  const g = gcd(num, 1000);
  return [num / g, 1000 / g];
}

/**
 * See the module docs. Usage: `push()` every packet of one stream in arrival order, then
 * `end()`; listen to `chunk` / `segment` / `info` / `warning`.
 */
/**
 * How far (in targets) the cut grid may lag behind a new segment's start before it is started
 * again at that segment: a long GOP catches up with the grid; a clock jump does not make every
 * following keyframe a cut.
 */
const GRID_REANCHOR_TARGETS = 10;

export class TsSegmenter extends EventEmitter<TsSegmenterEvents> {
  readonly #targetMs: number;
  readonly #audioOnlyAfterMs: number;
  #nextSeq: number;
  #muxer: TsMuxer | undefined;
  #mode: 'waiting' | 'video' | 'audio' = 'waiting';
  #ended = false;

  #avc: AvcDecoderConfig | undefined;
  #avcInfo: { codecString: string; width: number; height: number } | undefined;
  #aac: AacConfig | undefined;
  #held: HeldAudio[] = [];

  #baseDtsMs = 0;
  /** The cut grid: the next cut's target is `#gridOriginMs + #cuts × #targetMs` (ms, the incoming timeline). */
  #gridOriginMs = 0;
  #cuts = 0;
  #firstStartPts90k: number | undefined;
  /** The next flush starts a segment. */
  #chunkStart = false;
  #segment: OpenSegment | undefined;
  /** Muxed bytes not yet emitted as a chunk (audio between video frames, PSI updates). */
  readonly #out: TsOutput;
  readonly #keepSegmentBytes: boolean;
  readonly #chunkViews: boolean;
  #pendingSince90k: number | undefined;
  #lastPcr90k: number | undefined;
  /** Added to every incoming timestamp since a backward jump, so DTS keeps increasing (ms). */
  #shiftMs = 0;

  #firstVideoDtsMs: number | undefined;
  #lastVideoDtsMs: number | undefined;
  #lastVideoDeltaMs = 0;
  #videoFrames = 0;
  #fps: [number, number] | undefined;
  #fpsFinal = false;
  #lastAudioDtsMs: number | undefined;
  #infoKey: string | undefined;
  readonly #warned = new Set<string>();

  /** @throws RangeError when `segmentTargetMs` is not > 0, `firstSeq` is not a non-negative integer, or `chunkViews` is set with segments kept. */
  constructor(options: TsSegmenterOptions) {
    super();
    if (!(options.segmentTargetMs > 0)) throw new RangeError('segmentTargetMs must be > 0');
    const firstSeq = options.firstSeq ?? 0;
    if (!Number.isSafeInteger(firstSeq) || firstSeq < 0) throw new RangeError('firstSeq must be a non-negative integer');
    this.#targetMs = options.segmentTargetMs;
    this.#audioOnlyAfterMs = options.audioOnlyAfterMs ?? 1000;
    this.#nextSeq = firstSeq;
    this.#keepSegmentBytes = options.keepSegmentBytes ?? true;
    this.#chunkViews = options.chunkViews ?? false;
    if (this.#chunkViews && this.#keepSegmentBytes) throw new RangeError('chunkViews needs keepSegmentBytes: false');
    this.#out = new TsOutput(TS_OUTPUT_BYTES);
  }

  /** Feeds one packet (arrival order). Ignored after `end()`. Never throws for bad media: see `warning`. */
  push(packet: FlvPacket): void {
    if (this.#ended) return;
    switch (packet.type) {
      case 'avc-config': this.#onAvcConfig(packet.avcC); break;
      case 'aac-config': this.#onAacConfig(packet.asc); break;
      case 'video': this.#onVideo(packet.dtsMs + this.#shiftMs, packet.ctsMs, packet.keyframe, packet.data); break;
      case 'audio': this.#onAudio(packet.dtsMs + this.#shiftMs, packet.data); break;
      case 'video-end': break;
      case 'unsupported': this.#warn('unsupported', packet.what); break;
    }
  }

  /** Closes the last segment (emits its last chunk and `segment`). Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const seg = this.#segment;
    if (!seg) return;
    this.#emitInfoIfReady(true);
    let endMs: number;
    if (this.#mode === 'video') {
      const frameMs = this.#lastVideoDeltaMs || (this.#fps && this.#fps[0] > 0 ? (1000 * this.#fps[1]) / this.#fps[0] : 0);
      endMs = this.#lastVideoDtsMs! + frameMs - this.#baseDtsMs;
    } else {
      endMs = this.#lastAudioDtsMs! + this.#aacFrameMs() - this.#baseDtsMs;
    }
    this.#closeSegment(Math.round(endMs));
  }

  // ---- configs

  #onAvcConfig(avcC: Buffer): void {
    if (this.#mode === 'audio') {
      this.#warn('late-video-ignored', 'AVC config after the stream went audio-only');
      return;
    }
    let config: AvcDecoderConfig;
    let described: { codecString: string; width: number; height: number };
    try {
      config = parseAvcDecoderConfig(avcC);
      const sps = config.sps[0]!;
      described = { codecString: h264CodecString(sps), ...h264SpsPictureSize(sps) };
    } catch (err) {
      if (err instanceof H264SpsError || err instanceof RangeError) {
        this.#warn('bad-avc-config', err.message);
        return;
      }
      throw err;
    }
    // Copy: the config outlives the RTMP server's buffer it came in.
    this.#avc = { nalLengthBytes: config.nalLengthBytes, sps: config.sps.map((s) => Uint8Array.from(s)), pps: config.pps.map((p) => Uint8Array.from(p)) };
    this.#avcInfo = described;
    if (this.#mode === 'video') this.#emitInfoIfReady(false);
  }

  #onAacConfig(asc: Buffer): void {
    let config: AacConfig;
    try {
      config = parseAudioSpecificConfig(asc);
    } catch (err) {
      if (err instanceof AacConfigError) {
        this.#warn('bad-aac-config', err.message);
        return;
      }
      throw err;
    }
    this.#aac = config;
    if (this.#muxer && !this.#muxer.streams.audio) {
      this.#muxer.setStreams({ video: this.#muxer.streams.video, audio: true });
      this.#muxer.writeTables(this.#out);
    }
    if (this.#mode !== 'waiting') this.#emitInfoIfReady(false);
  }

  // ---- frames

  #onVideo(dtsMs: number, ctsMs: number, keyframe: boolean, data: Buffer): void {
    if (this.#mode === 'audio') {
      this.#warn('late-video-ignored', 'video frame after the stream went audio-only');
      return;
    }
    const avc = this.#avc;
    if (!avc) {
      this.#warn('video-before-config', 'video frame before the AVC config: dropped');
      return;
    }
    if (this.#mode === 'waiting') {
      if (!keyframe) return; // nothing decodable before the first keyframe
      this.#startStream('video', dtsMs);
    }
    if (this.#lastVideoDtsMs !== undefined && dtsMs <= this.#lastVideoDtsMs) dtsMs += this.#shiftAfterJump(dtsMs, this.#lastVideoDtsMs, this.#lastVideoDeltaMs);
    const dts90k = this.#to90k(dtsMs);
    const pts90k = this.#to90k(dtsMs + ctsMs);
    let seg = this.#segment;
    if (keyframe && (!seg || this.#cutDue(dtsMs))) {
      if (seg) this.#closeSegment(Math.round((pts90k - seg.startPts90k) / 90) + seg.startMs);
      seg = this.#openSegment(dtsMs, pts90k);
    }
    if (!seg) return;
    if (this.#lastVideoDtsMs !== undefined) this.#lastVideoDeltaMs = dtsMs - this.#lastVideoDtsMs;
    this.#lastVideoDtsMs = dtsMs;
    this.#firstVideoDtsMs ??= dtsMs;
    this.#videoFrames++;
    this.#measureFps(dtsMs, false);

    const nals = splitAvcc(data, avc.nalLengthBytes);
    let hasAud = false;
    let hasSps = false;
    let hasIdr = false;
    for (let i = 0; i < nals.length; i++) {
      const type = nals[i]![0]! & 0x1f;
      if (type === 9 && i === 0) hasAud = true;
      else if (type === 7) hasSps = true;
      else if (type === 5) hasIdr = true;
    }
    const unit: Uint8Array[] = [hasAud ? nals[0]! : AUD_NAL];
    if ((keyframe || hasIdr) && !hasSps) unit.push(...avc.sps, ...avc.pps);
    for (let i = hasAud ? 1 : 0; i < nals.length; i++) unit.push(nals[i]!);
    const pcr90k = Math.max(dts90k - PCR_DELAY_90K, this.#lastPcr90k ?? 0);
    this.#muxer!.writeVideo({ dts90k, pts90k, keyframe, nalUnits: unit, pcr90k }, this.#out);
    this.#lastPcr90k = pcr90k;
    seg.frames++;
    if (this.#held.length > 0) {
      // Audio held while waiting for the first keyframe: from the keyframe's DTS on, it goes
      // into the first segment right after the keyframe; older audio is dropped.
      const held = this.#held;
      this.#held = [];
      for (const h of held) if (h.dtsMs >= dtsMs) this.#writeAudio(h.dtsMs, h.data);
    }
    this.#flush();
  }

  #onAudio(dtsMs: number, data: Buffer): void {
    if (!this.#aac) {
      this.#warn('audio-before-config', 'AAC frame before the AudioSpecificConfig: dropped');
      return;
    }
    if (this.#mode === 'waiting') {
      this.#held.push({ dtsMs, data: Buffer.from(data) });
      const first = this.#held[0]!.dtsMs;
      if (!this.#avc && dtsMs - first >= this.#audioOnlyAfterMs) {
        this.#startStream('audio', first);
        const held = this.#held;
        this.#held = [];
        for (const h of held) this.#writeAudio(h.dtsMs, h.data);
        return;
      }
      const keepMs = Math.max(HELD_AUDIO_MS, this.#audioOnlyAfterMs);
      while (this.#held.length > 1 && dtsMs - this.#held[0]!.dtsMs > keepMs) this.#held.shift();
      return;
    }
    this.#writeAudio(dtsMs, data);
  }

  #writeAudio(dtsMs: number, data: Uint8Array): void {
    const aac = this.#aac!;
    const muxer = this.#muxer!;
    if (!muxer.streams.audio) return; // the PMT has no audio yet (cannot happen: config arrives first)
    if (this.#lastAudioDtsMs !== undefined && dtsMs <= this.#lastAudioDtsMs) {
      if (this.#mode === 'video') {
        // Video leads the timeline; audio that went back with it waits for video's shift.
        this.#warn('audio-timestamp-back', `AAC frame at ${dtsMs} ms after one at ${this.#lastAudioDtsMs} ms: dropped`);
        return;
      }
      dtsMs += this.#shiftAfterJump(dtsMs, this.#lastAudioDtsMs, Math.round(this.#aacFrameMs()));
    }
    const pts90k = this.#to90k(dtsMs);
    if (this.#mode === 'audio') {
      const seg = this.#segment;
      if (!seg || this.#cutDue(dtsMs)) {
        if (seg) this.#closeSegment(Math.round((pts90k - seg.startPts90k) / 90) + seg.startMs);
        this.#openSegment(dtsMs, pts90k);
      }
    }
    const seg = this.#segment!;
    this.#lastAudioDtsMs = dtsMs;
    if (this.#mode === 'video' && this.#lastPcr90k !== undefined) {
      // Keep PCRs ≤ 100 ms apart while video frames are sparse (or stalled): a PCR-only
      // packet once the gap could exceed 100 ms before the next audio frame.
      const pcr90k = pts90k - PCR_DELAY_90K;
      if (pcr90k - this.#lastPcr90k > PCR_INTERVAL_90K - this.#aacFrameMs() * 90) {
        muxer.writePcrOnly(pcr90k, this.#out);
        this.#lastPcr90k = pcr90k;
      }
    }
    const pcr90k = this.#mode === 'audio' ? pts90k - PCR_DELAY_90K : undefined;
    muxer.writeAudio({ pts90k, parts: [adtsHeader(aac, data.length), data], ...(pcr90k !== undefined ? { pcr90k } : {}) }, this.#out);
    seg.audioFrames++;
    this.#pendingSince90k ??= pts90k;
    if (this.#mode === 'audio' || pts90k - this.#pendingSince90k >= AUDIO_FLUSH_90K) this.#flush();
  }

  // ---- segments

  /** Whether a cut (at a keyframe, or an audio frame in audio-only mode) at `dtsMs` is due: the grid's next target is reached. */
  #cutDue(dtsMs: number): boolean {
    return dtsMs >= this.#gridOriginMs + this.#cuts * this.#targetMs;
  }

  #startStream(mode: 'video' | 'audio', firstDtsMs: number): void {
    this.#mode = mode;
    this.#baseDtsMs = firstDtsMs;
    this.#muxer = new TsMuxer({ video: mode === 'video', audio: this.#aac !== undefined });
    this.#emitInfoIfReady(false);
  }

  #openSegment(dtsMs: number, pts90k: number): OpenSegment {
    this.#firstStartPts90k ??= pts90k;
    this.#cuts++;
    if (this.#cuts === 1 || dtsMs >= this.#gridOriginMs + (this.#cuts + GRID_REANCHOR_TARGETS) * this.#targetMs) {
      // The stream's first segment, or a jump forward of the publisher's clock: the grid starts
      // here (instead of cutting at every keyframe until it catches up after a jump).
      this.#gridOriginMs = dtsMs;
      this.#cuts = 1;
    }
    const seg: OpenSegment = {
      seq: this.#nextSeq++,
      startDtsMs: dtsMs,
      startPts90k: ((pts90k % TIMESTAMP_WRAP_90K) + TIMESTAMP_WRAP_90K) % TIMESTAMP_WRAP_90K,
      startMs: Math.round((pts90k - this.#firstStartPts90k) / 90),
      chunks: [],
      byteLength: 0,
      frames: 0,
      audioFrames: 0,
    };
    this.#segment = seg;
    this.#muxer!.writeTables(this.#out);
    this.#chunkStart = true;
    return seg;
  }

  /** Emits the pending bytes as a chunk of the current segment. */
  #flush(): void {
    const seg = this.#segment;
    if (!seg || this.#out.length === 0) return;
    // With chunkViews the listeners get a view of the output, reused after them; otherwise a copy.
    const bytes = this.#chunkViews ? this.#out.bytes() : Buffer.from(this.#out.bytes());
    this.#pendingSince90k = undefined;
    if (this.#keepSegmentBytes) seg.chunks.push(bytes);
    seg.byteLength += bytes.length;
    const first = this.#chunkStart;
    this.#chunkStart = false;
    try {
      this.emit('chunk', first ? { seq: seg.seq, first, startPts90k: seg.startPts90k, bytes } : { seq: seg.seq, first, bytes });
    } finally {
      this.#out.clear();
    }
  }

  #closeSegment(endMs: number): void {
    this.#flush();
    const seg = this.#segment!;
    this.#segment = undefined;
    this.#measureFps(this.#lastVideoDtsMs ?? 0, true);
    this.#emitInfoIfReady(true);
    this.emit('segment', {
      seq: seg.seq,
      bytes: seg.chunks.length === 1 ? seg.chunks[0]! : Buffer.concat(seg.chunks),
      byteLength: seg.byteLength,
      startPts90k: seg.startPts90k,
      startMs: seg.startMs,
      durationMs: Math.max(0, endMs - seg.startMs),
      frames: seg.frames,
      audioFrames: seg.audioFrames,
    });
  }

  // ---- info

  #measureFps(dtsMs: number, final: boolean): void {
    if (this.#fpsFinal || this.#firstVideoDtsMs === undefined) return;
    const intervals = this.#videoFrames - 1;
    const span = dtsMs - this.#firstVideoDtsMs;
    if (span >= FPS_WINDOW_MS || (final && intervals > 0)) {
      this.#fps = frameRateFromSpan(intervals, span);
      this.#fpsFinal = true;
      this.#emitInfoIfReady(false);
    } else if (!this.#fps && intervals >= EARLY_FPS_INTERVALS && span > 0) {
      this.#fps = [Math.max(1, Math.round((intervals * 1000) / span)), 1];
      this.#emitInfoIfReady(false);
    }
  }

  /** Emits `info` when it is complete (or `force`d at a cut/end) and differs from the last one. */
  #emitInfoIfReady(force: boolean): void {
    if (this.#mode === 'waiting') return;
    if (this.#mode === 'video' && !this.#fps && !force) return;
    const info: { video?: SourceStreamInfo['video']; audio?: SourceStreamInfo['audio'] } = {};
    if (this.#mode === 'video' && this.#avcInfo) {
      const [fpsNum, fpsDen] = this.#fps ?? [0, 1];
      info.video = { codec: 'h264', ...this.#avcInfo, fpsNum, fpsDen, fpsFinal: this.#fpsFinal };
    }
    if (this.#aac) {
      info.audio = { codec: 'aac', codecString: aacCodecString(this.#aac), sampleRate: this.#aac.sampleRateHz, channels: this.#aac.channels };
    }
    const key = JSON.stringify(info);
    if (key === this.#infoKey) return;
    this.#infoKey = key;
    this.emit('info', info);
  }

  // ---- helpers

  #to90k(ms: number): number {
    return TS_START_90K + (ms - this.#baseDtsMs) * 90;
  }

  /**
   * A timestamp at or before the last one (a publisher restarting its clock): from now on
   * every timestamp is shifted so this one lands one frame after the last.
   * @returns the added shift (ms)
   */
  #shiftAfterJump(dtsMs: number, lastMs: number, frameMs: number): number {
    const shift = lastMs + Math.max(1, frameMs) - dtsMs;
    this.#shiftMs += shift;
    this.#warn('timestamp-jump', `timestamp went back from ${lastMs} to ${dtsMs} ms: later timestamps shifted by ${this.#shiftMs} ms`);
    return shift;
  }

  #aacFrameMs(): number {
    return this.#aac ? (1024 * 1000) / this.#aac.sampleRateHz : 0;
  }

  #warn(code: TsSegmenterWarning['code'], detail: string): void {
    if (this.#warned.has(code)) return;
    this.#warned.add(code);
    this.emit('warning', { code, detail });
  }
}
