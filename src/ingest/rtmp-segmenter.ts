/**
 * Source segmenter of one RTMP publish, inside the gateway process (docs/architecture.md, live
 * stream step 2): the publish's FLV tags as node-media-server hands them to an internal
 * subscriber (rtmp/packet-tap.ts; each audio/video frame without a tag around it while
 * nothing else reads the publish) → `parseFlvTag`/`parseFlvBody` (media/flv-packets.ts) → `TsSegmenter`
 * (media/ts-segmenter.ts), which muxes MPEG-TS and cuts at the first video keyframe at or after
 * each target. Each segment is written to `<workDir>/<seq>.ts` as it is muxed (every chunk is
 * appended to the file, synchronously, when it is produced; no segment is held in memory) and reported once
 * closed with what it holds (frames, duration, the stream's codecs and picture size read from
 * its SPS), so no ffmpeg and no ffprobe runs per stream. The muxed bytes are also reported as
 * they are produced (`chunk`), for a live transcoding session to be fed before the segment closes.
 */
import { EventEmitter } from 'node:events';
import { close, closeSync, mkdirSync, open, openSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { parseFlvBody, parseFlvTag } from '../media/flv-packets.ts';
import { h264ProfileName } from '../media/h264.ts';
import { TsSegmenter, type SourceStreamInfo, type TsChunk, type TsSegment } from '../media/ts-segmenter.ts';
import type { ProbedSegment, SegmenterHandle } from './ingest-ports.ts';
import { readFlvMetadata } from './rtmp/flv-metadata.ts';
import type { FlvTagSource } from './rtmp/packet-tap.ts';

/** One completed source segment. */
export interface SegmentInfo {
  /** 0, 1, 2, ... in stream order; the file is `<workDir>/<seq>.ts`. */
  readonly seq: number;
  /** Absolute path of the written MPEG-TS file. */
  readonly path: string;
  /** Start on the stream timeline in ms, 0 at the publish's first packet. */
  readonly startMs: number;
  /** Duration in ms: from this segment's cut to the next one (the last: to its last packet). */
  readonly durationMs: number;
  readonly bytes: number;
  /** What the segment holds, measured in process: the same shape (and values) as an ffprobe of the file. */
  readonly probed: ProbedSegment;
}

/** Emitted once per stream, on the first segment longer than {@link LONG_SEGMENT_FACTOR} × the target. */
export interface LongSegmentInfo {
  readonly seq: number;
  readonly durationMs: number;
  readonly segmentTargetMs: number;
}

/**
 * Why the segmenter ended: `inputEnded` the publish ended (publisher left, kicked, refused,
 * or the RTMP server closed); `stopped` by `stop()`; `failed` the publisher's media could not
 * be segmented (`detail` says why).
 */
export type SegmenterEndReason = 'inputEnded' | 'stopped' | 'failed';

export interface SegmenterEndInfo {
  readonly reason: SegmenterEndReason;
  /** Segments reported with `segment`. */
  readonly segments: number;
  /** Of those, how many exceeded {@link LONG_SEGMENT_FACTOR} × the target. */
  readonly longSegments: number;
  /** For `failed`: what went wrong. */
  readonly detail?: string;
}

/**
 * The stream's codecs and picture size (media/ts-segmenter.ts), plus what the publisher
 * declared in its `onMetaData` script tag (rtmp/flv-metadata.ts) when that tag came before.
 */
export interface RtmpSourceInfo extends SourceStreamInfo {
  /**
   * (videodatarate + audiodatarate) × 1000, bit/s, from the last `onMetaData` tag seen; absent
   * when none came, or it declared no video rate > 0. The publisher's word, not a measurement.
   */
  readonly declaredBitrateBps?: number;
}

/** The typed event map. */
export interface SegmenterEvents {
  /**
   * The stream's codecs and picture size, once known (before the first `segment`); again when
   * the frame rate is final. Publishers send `onMetaData` before their media, so its declared
   * bitrate is normally on the first `info`.
   */
  info: [RtmpSourceInfo];
  /**
   * Muxed bytes of segment `seq` as they are produced (media/ts-segmenter.ts `TsChunk`); all
   * chunks in order form one continuous MPEG-TS stream. `bytes` is a view of the muxer's output
   * buffer, valid only until the listeners return: a listener copies what it keeps.
   */
  chunk: [TsChunk];
  /** A segment file was written and closed; strictly in seq order, after all of its chunks. */
  segment: [SegmentInfo];
  /** The first long segment of the stream (a publisher with a long keyframe interval). */
  longSegment: [LongSegmentInfo];
  /** Exactly once, after the last `segment`. */
  end: [SegmenterEndInfo];
}

export interface RtmpSegmenterOptions {
  /** The publish's FLV tags (RtmpServer `flvTags`); read from `start()`. */
  tags: FlvTagSource;
  /** Absolute directory for `<seq>.ts`; created if missing. Should be empty (files are overwritten). */
  workDir: string;
  logger: Logger;
  /** Target segment duration, ms; default 2000 (docs/wire-contract.md §3). Cuts happen at keyframes only. */
  segmentTargetMs?: number;
}

/** The file a segment is written to while it is muxed. */
interface SegmentFile {
  readonly seq: number;
  readonly path: string;
  /** Its descriptor while open; undefined once closed (or when the open failed). */
  fd: number | undefined;
  /** The first open or write error; the segment is then not reported. */
  error: Error | undefined;
  /** Bytes of the segment's chunks gathered in the segmenter's write buffer, not yet written. */
  buffered: number;
}

/**
 * The next segment's file, created (O_EXCL) through libuv's thread pool while the segment before
 * it is muxed, so that the main thread makes no blocking open(2) at a cut (it was ~0.1 ms per
 * publisher per media second of the main thread with 128 publishers, bench/README.md section 3).
 */
interface OpenAhead {
  readonly seq: number;
  readonly path: string;
  /** The descriptor once opened and not taken or discarded. */
  fd: number | undefined;
  /** Not to be used: its descriptor is closed as soon as the open completes (and the file removed when `removeFile`). */
  abandoned: boolean;
  removeFile: boolean;
  /** Resolves once the open has completed and, if abandoned, its descriptor is closed (never rejects). */
  readonly settled: Promise<void>;
}

/**
 * A segment's chunks are gathered in a buffer of this many bytes, one per segmenter for the
 * stream's life, and written with one write(2) when it is full, {@link SEGMENT_WRITE_DELAY_MS}
 * after the first byte gathered since the last write, or when the segment closes, instead of
 * one write per chunk (one per video frame, ~25 a second). A 360p stream at ~520 kb/s fills
 * ~10 KB in the delay: ~7 writes a second (a write call cost ~20 µs of the main thread on a
 * busy machine, ~10 % of it with 128 publishers, bench/README.md section 3). A chunk at least
 * this large (a keyframe, a high-bitrate stream) is written at once, with what was gathered.
 */
export const SEGMENT_WRITE_BUFFER_BYTES = 16 * 1024;
/** Longest a gathered chunk waits for its write, ms: the open segment's file lags its chunks by at most this. */
export const SEGMENT_WRITE_DELAY_MS = 150;

/** Segments longer than this × the target are "long" (a GOP longer than the target). */
export const LONG_SEGMENT_FACTOR = 1.5;

const DEFAULT_SEGMENT_TARGET_MS = 2000;
/** FLV tag type of script data (Adobe FLV specification v10.1, E.4.1). */
const FLV_TAG_SCRIPT = 18;

/** In-process source segmenter of one RTMP publish; see the module comment. */
export class RtmpSegmenter extends EventEmitter<SegmenterEvents> implements SegmenterHandle {
  readonly #tags: FlvTagSource;
  readonly #workDir: string;
  readonly #segmentTargetMs: number;
  readonly #log: Logger;
  readonly #ts: TsSegmenter;
  #info: SourceStreamInfo | undefined;
  #declaredBitrateBps: number | undefined;
  #started = false;
  /** Set by the first ending (input end, stop, failure): no tag is pushed after it. */
  #ended = false;
  #segments = 0;
  #longSegments = 0;
  /** The file of the segment being muxed: its chunks are appended as they come. */
  #file: SegmentFile | undefined;
  /** The next segment's file, opened ahead (see {@link OpenAhead}). */
  #ahead: OpenAhead | undefined;
  /** Gathers the open file's small chunks (SEGMENT_WRITE_BUFFER_BYTES); made at the first chunk, dropped at the end. */
  #writeBuffer: Buffer | undefined;
  /** Writes the gathered bytes SEGMENT_WRITE_DELAY_MS after the first (one timer, re-armed; unref'd). */
  #writeTimer: NodeJS.Timeout | undefined;
  #writeTimerArmed = false;
  /** Segment files are closed and reported in seq order through this chain; `end` is queued last. */
  #queue: Promise<void> = Promise.resolve();
  readonly #done: Promise<SegmenterEndInfo>;
  #resolveDone!: (info: SegmenterEndInfo) => void;

  /** @throws GatewayError CONFIG_INVALID when `workDir` is not absolute or `segmentTargetMs` is not positive */
  constructor(options: RtmpSegmenterOptions) {
    super();
    if (!path.isAbsolute(options.workDir)) throw new GatewayError('CONFIG_INVALID', 'segmenter workDir must be an absolute directory');
    const segmentTargetMs = options.segmentTargetMs ?? DEFAULT_SEGMENT_TARGET_MS;
    if (!(segmentTargetMs > 0)) throw new GatewayError('CONFIG_INVALID', 'segmentTargetMs must be > 0');
    this.#tags = options.tags;
    this.#workDir = options.workDir;
    this.#segmentTargetMs = segmentTargetMs;
    this.#log = options.logger.child({ component: 'segmenter' });
    // The chunks go to the segment file as they come; the muxer keeps no copy of the segment.
    this.#ts = new TsSegmenter({ segmentTargetMs, keepSegmentBytes: false, chunkViews: true });
    this.#ts.on('info', (info) => {
      this.#info = info;
      const declaredBitrateBps = this.#declaredBitrateBps;
      this.emit('info', declaredBitrateBps !== undefined ? { ...info, declaredBitrateBps } : info);
    });
    this.#ts.on('chunk', (chunk) => {
      // chunk.bytes is the muxer's reused output (chunkViews): copied into the write buffer (or
      // written) now; `chunk` listeners get the same view and copy what they keep (the live
      // feed copies it into its entry: one copy, where a copy made here was copied again).
      this.#write(this.#fileOf(chunk.seq), chunk.bytes);
      this.emit('chunk', chunk);
    });
    this.#ts.on('segment', (segment) => this.#onSegment(segment));
    // Media dropped or ignored (other codecs than H.264 and AAC, bad configs, timestamps that go back): once per kind.
    this.#ts.on('warning', (w) => this.#log.warn({ code: w.code, detail: w.detail }, 'publisher media not segmented as sent'));
    this.#done = new Promise((resolve) => { this.#resolveDone = resolve; });
  }

  /** The bitrate the publisher's last `onMetaData` declared, bit/s (see {@link RtmpSourceInfo}); undefined when none did. */
  get declaredBitrateBps(): number | undefined {
    return this.#declaredBitrateBps;
  }

  /** Resolves with the `end` info once the segmenter has ended (never rejects). */
  get done(): Promise<SegmenterEndInfo> {
    return this.#done;
  }

  /**
   * Starts reading the publish's tags (those that arrived before are replayed first, so the
   * first segment starts at the publish's first keyframe).
   * @throws GatewayError INTERNAL when called twice or after `stop()`
   */
  start(): void {
    if (this.#started || this.#ended) throw new GatewayError('INTERNAL', 'segmenter already started or stopped');
    this.#started = true;
    mkdirSync(this.#workDir, { recursive: true });
    this.#openAhead(0);
    this.#tags.read({ tag: (tag) => this.#onTag(tag), frame: (tagType, dtsMs, body) => this.#onFrame(tagType, dtsMs, body), end: () => this.#finish('inputEnded') });
    this.#log.debug({ segmentTargetMs: this.#segmentTargetMs }, 'segmenter started');
  }

  /**
   * Closes the segment in progress (it is written and reported like the others) and ends with
   * reason `stopped`; tags arriving later are ignored. Idempotent; resolves after `end`.
   */
  async stop(): Promise<void> {
    this.#finish('stopped');
    await this.#done;
  }

  /** Same as `stop()`, for owners that close their components uniformly. */
  close(): Promise<void> {
    return this.stop();
  }

  /**
   * Removes the work dir with any segment files still in it. Call after `end`, once every
   * reported segment has been consumed (the caller deletes each file as it is stored).
   */
  async cleanup(): Promise<void> {
    await rm(this.#workDir, { recursive: true, force: true });
  }

  /** Runs inside node-media-server's socket handler: parse and mux synchronously, never throw. */
  #onTag(tag: Buffer): void {
    if (this.#ended) return;
    // Script data: nothing an MPEG-TS segment carries; onMetaData's declared bitrate is kept for `info`.
    if ((tag[0]! & 0x1f) === FLV_TAG_SCRIPT) {
      const metadata = readFlvMetadata(tag);
      if (metadata !== undefined) {
        this.#declaredBitrateBps = metadata.declaredBitrateBps;
        this.#log.debug({ declaredBitrateBps: metadata.declaredBitrateBps }, 'publisher metadata');
      }
      return;
    }
    try {
      const packet = parseFlvTag(tag);
      if (packet !== undefined) this.#ts.push(packet);
    } catch (err) {
      this.#finish('failed', (err as Error).message);
    }
  }

  /** An audio/video frame without its FLV tag (packet-tap.ts `frame`): muxed at once, nothing of `body` kept. */
  #onFrame(tagType: 8 | 9, dtsMs: number, body: Buffer): void {
    if (this.#ended) return;
    try {
      this.#ts.push(parseFlvBody(tagType, dtsMs, body));
    } catch (err) {
      this.#finish('failed', (err as Error).message);
    }
  }

  /**
   * The open file of segment `seq`, at its first chunk: the one opened ahead while the segment
   * before was muxed, or, when that open has not completed or failed, created now. Writes are
   * synchronous on purpose: a chunk is a few KB appended to a local file (the page cache), which
   * costs less CPU on this thread than handing it to libuv's thread pool (a queued request, a
   * thread wake-up and a callback per chunk: ~30 % of the main thread's time with 64
   * publishers, bench/README.md "CPU per publisher"); the open, once per segment, goes through
   * the pool ahead of time. A file of that name left in the work dir (a resumed publish of the
   * same session) is unlinked first, never truncated: the object store may have linked it into
   * place (SourceStorage `sourceFinal`); the open ahead (O_EXCL) fails on it and the file is
   * replaced here.
   */
  #fileOf(seq: number): SegmentFile {
    if (this.#file?.seq === seq) return this.#file;
    this.#closeFile();
    const file = path.join(this.#workDir, `${seq}.ts`);
    const entry: SegmentFile = { seq, path: file, fd: undefined, error: undefined, buffered: 0 };
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead?.seq === seq && ahead.fd !== undefined) {
      entry.fd = ahead.fd;
      ahead.fd = undefined;
    } else {
      // Still opening, or failed: created here. An open of this name completing later is closed
      // and its file left alone (this open replaced it); one of another seq is removed.
      if (ahead) abandon(ahead, ahead.seq !== seq);
      try {
        entry.fd = openNew(file);
      } catch (err) {
        entry.error = err as Error;
      }
    }
    this.#file = entry;
    if (!this.#ended) this.#openAhead(seq + 1);
    return entry;
  }

  /** Starts creating segment `seq`'s file through the thread pool (see {@link OpenAhead}). */
  #openAhead(seq: number): void {
    const file = path.join(this.#workDir, `${seq}.ts`);
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => { settle = resolve; });
    const ahead: OpenAhead = { seq, path: file, fd: undefined, abandoned: false, removeFile: false, settled };
    open(file, 'wx', (err, fd) => {
      if (!err) {
        if (ahead.abandoned) discard(ahead, fd);
        else ahead.fd = fd;
      }
      settle();
    });
    this.#ahead = ahead;
  }

  /**
   * Appends `bytes` to the segment's file through the write buffer; the first error is kept on
   * the file and later chunks are skipped.
   */
  #write(file: SegmentFile, bytes: Buffer): void {
    if (file.fd === undefined || file.error) return;
    const buffer = (this.#writeBuffer ??= Buffer.allocUnsafeSlow(SEGMENT_WRITE_BUFFER_BYTES));
    try {
      if (file.buffered + bytes.length <= buffer.length) {
        bytes.copy(buffer, file.buffered);
        file.buffered += bytes.length;
        if (file.buffered === buffer.length) this.#flushFile(file);
        else this.#armWriteTimer();
        return;
      }
      if (bytes.length < buffer.length) {
        this.#flushFile(file);
        bytes.copy(buffer, 0);
        file.buffered = bytes.length;
        this.#armWriteTimer();
        return;
      }
      // A large chunk (a keyframe, a high-bitrate stream): written at once with what was gathered.
      const gathered = file.buffered;
      file.buffered = 0;
      writeAll(file.fd, gathered > 0 ? [buffer.subarray(0, gathered), bytes] : [bytes]);
    } catch (err) {
      file.buffered = 0;
      file.error = err as Error;
    }
  }

  #armWriteTimer(): void {
    if (this.#writeTimerArmed) return;
    this.#writeTimerArmed = true;
    if (this.#writeTimer) {
      this.#writeTimer.refresh();
      return;
    }
    this.#writeTimer = setTimeout(() => {
      this.#writeTimerArmed = false;
      if (this.#file) this.#flushFile(this.#file);
    }, SEGMENT_WRITE_DELAY_MS);
    this.#writeTimer.unref();
  }

  /** Writes what the write buffer holds for `file`; the first error is kept on the file. */
  #flushFile(file: SegmentFile): void {
    const gathered = file.buffered;
    file.buffered = 0;
    // The next byte gathered waits at most the delay from now, not from the first byte of this write.
    if (gathered > 0 && this.#writeTimerArmed) this.#writeTimer!.refresh();
    if (gathered === 0 || file.fd === undefined || file.error) return;
    try {
      writeAll(file.fd, [this.#writeBuffer!.subarray(0, gathered)]);
    } catch (err) {
      file.error = err as Error;
    }
  }

  /** Closes the open segment file, if any, after writing what is buffered (its write or close error, if first, keeps it from being reported). */
  #closeFile(): SegmentFile | undefined {
    const file = this.#file;
    this.#file = undefined;
    if (file) this.#flushFile(file);
    if (file?.fd !== undefined) {
      const fd = file.fd;
      file.fd = undefined;
      try {
        closeSync(fd);
      } catch (err) {
        file.error ??= err as Error;
      }
    }
    return file;
  }

  #onSegment(segment: TsSegment): void {
    const info = this.#info;
    this.#fileOf(segment.seq);
    const file = this.#closeFile()!;
    const probed = probedSegment(info ?? {}, segment);
    this.#queue = this.#queue.then(() => {
      if (file.error) {
        this.#log.error({ seq: segment.seq, err: { message: file.error.message } }, 'cannot write segment file');
        return;
      }
      this.#segments += 1;
      this.#log.debug({ seq: segment.seq, durationMs: segment.durationMs, frames: segment.frames, bytes: segment.byteLength }, 'segment written');
      this.emit('segment', { seq: segment.seq, path: file.path, startMs: segment.startMs, durationMs: segment.durationMs, bytes: segment.byteLength, probed });
      if (segment.durationMs > LONG_SEGMENT_FACTOR * this.#segmentTargetMs) {
        this.#longSegments += 1;
        if (this.#longSegments === 1) {
          this.#log.warn({ seq: segment.seq, durationMs: segment.durationMs, segmentTargetMs: this.#segmentTargetMs }, 'long segment: publisher keyframe interval exceeds the segment target');
          this.emit('longSegment', { seq: segment.seq, durationMs: segment.durationMs, segmentTargetMs: this.#segmentTargetMs });
        }
      }
    }).catch((err: unknown) => {
      this.#log.error({ err: { message: String(err) } }, 'segment listener failed');
    });
  }

  #finish(reason: SegmenterEndReason, detail?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    // The segment in progress closes now (a `segment` event, queued before `end`), also on failure.
    try {
      if (this.#started) this.#ts.end();
    } catch (err) {
      this.#log.warn({ err: { message: (err as Error).message } }, 'cannot close the last segment');
    }
    this.#closeFile();
    // The file opened ahead for a segment that will not come: closed and removed before `end`.
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead) abandon(ahead, true);
    this.#writeBuffer = undefined;
    clearTimeout(this.#writeTimer);
    this.#writeTimerArmed = false;
    this.#queue = this.#queue.then(async () => {
      if (ahead) await ahead.settled;
      const info: SegmenterEndInfo = { reason, segments: this.#segments, longSegments: this.#longSegments, ...(detail ? { detail } : {}) };
      this.#log[reason === 'failed' ? 'warn' : 'info']({ reason, segments: info.segments, longSegments: info.longSegments, detail }, 'segmenter ended');
      this.emit('end', info);
      this.#resolveDone(info);
    });
  }
}

/** Gives up a file opened ahead: its descriptor is closed now or once its open completes; `removeFile` also removes the file it created. */
function abandon(ahead: OpenAhead, removeFile: boolean): void {
  ahead.abandoned = true;
  ahead.removeFile = removeFile;
  const fd = ahead.fd;
  ahead.fd = undefined;
  if (fd !== undefined) discard(ahead, fd);
}

/** Closes the descriptor of an abandoned open (and removes its file when asked); errors ignored: nothing was written to it. */
function discard(ahead: OpenAhead, fd: number): void {
  close(fd, () => undefined);
  if (ahead.removeFile) {
    try {
      unlinkSync(ahead.path);
    } catch {
      // already gone (the work dir removed)
    }
  }
}

/** Creates `file` for writing (O_EXCL); one left from before is unlinked first, never truncated. */
function openNew(file: string): number {
  try {
    return openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    unlinkSync(file);
    return openSync(file, 'wx');
  }
}

/** Writes every byte of `parts` in order at the file's position: one writev(2), then write(2) for any rest. */
function writeAll(fd: number, parts: readonly Buffer[]): void {
  let total = 0;
  for (const p of parts) total += p.length;
  let written = parts.length === 1 ? writeSync(fd, parts[0]!) : writevSync(fd, parts as Buffer[]);
  if (written === total) return;
  for (const p of parts) {
    if (written >= p.length) {
      written -= p.length;
      continue;
    }
    for (let at = written; at < p.length;) at += writeSync(fd, p, at, p.length - at);
    written = 0;
  }
}

/**
 * What an ffprobe of a segment would report, from the stream's info (SPS, AudioSpecificConfig)
 * and the segment's own frame count and duration: ffprobe names for codec and profile
 * (`h264`/`High`, `aac`/`LC`), RFC 6381 codecs of video then audio. The pixel format is known
 * from the profile alone for the 8-bit 4:2:0 profiles (Baseline, Main, Extended, High); ''
 * (unknown) for the others, whose profile name already says what the source lint needs.
 */
export function probedSegment(info: SourceStreamInfo, segment: Pick<TsSegment, 'frames' | 'durationMs'>): ProbedSegment {
  const { video, audio } = info;
  // avc1.PPCCLL: profile_idc, constraint flags, level_idc in hex (RFC 6381 §3.3)
  const profile = video ? h264ProfileName(Number.parseInt(video.codecString.slice(5, 7), 16), Number.parseInt(video.codecString.slice(7, 9), 16)) : '';
  return {
    ...(video ? {
      video: {
        width: video.width, height: video.height, fpsNum: video.fpsNum, fpsDen: video.fpsDen, frames: segment.frames, codec: 'h264',
        profile, pixelFormat: EIGHT_BIT_420_PROFILES.has(profile) ? 'yuv420p' : '',
      },
    } : {}),
    ...(audio ? { audio: { codec: 'aac', profile: AAC_PROFILE_NAMES[audio.codecString] ?? '' } } : {}),
    codecs: [video?.codecString, audio?.codecString].filter((c): c is string => c !== undefined).join(','),
    frameRate: video ? video.fpsNum / video.fpsDen : 0,
    durationMs: segment.durationMs,
  };
}

/** H.264 profiles that only allow 8-bit 4:2:0 pictures (ITU-T H.264 Annex A; 4:0:0 High is not seen from publishers). */
const EIGHT_BIT_420_PROFILES: ReadonlySet<string> = new Set(['Constrained Baseline', 'Baseline', 'Main', 'Extended', 'High']);

/** ffprobe's AAC profile names by RFC 6381 codec string (MPEG-4 audio object type). */
const AAC_PROFILE_NAMES: Readonly<Record<string, string>> = {
  'mp4a.40.1': 'Main', 'mp4a.40.2': 'LC', 'mp4a.40.4': 'LTP', 'mp4a.40.5': 'HE-AAC', 'mp4a.40.29': 'HE-AACv2',
};
