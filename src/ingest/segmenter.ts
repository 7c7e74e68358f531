/**
 * Source segmenter: one ffmpeg per live stream that pulls the stream from our own RTMP
 * server over loopback and cuts it, without re-encoding, into MPEG-TS source segments
 * (docs/architecture.md, live stream step 2). Its ffmpeg command line and segment-list
 * parsing are in segmenter-args.ts.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { assertStreamName } from '../domain/stream-name.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { onLines, oneRunSupervisor, type ChildSupervisor, type SupervisedChild } from '../media/child-supervisor.ts';
import { redactSecrets } from '../log/redact.ts';
import { buildSegmenterArgs, parseSegmentListLine } from './segmenter-args.ts';

/** One completed source segment. */
export interface SegmentInfo {
  /** 0, 1, 2, ... in stream order; the file is `<workDir>/<seq>.ts`. */
  readonly seq: number;
  /** Absolute path of the closed MPEG-TS file. */
  readonly path: string;
  /**
   * Start on the stream timeline in ms, 0 at the first packet the segmenter received (from
   * the segment list). The PTS inside the file are `startMs + 1400` ms: ffmpeg's mpegts
   * muxer adds 2 × max_delay (0.7 s) to every timestamp, the same for every segment.
   */
  readonly startMs: number;
  /** Duration in ms (segment list end - start: last packet's pts + duration, so ~1 ms short of the next start). */
  readonly durationMs: number;
  readonly bytes: number;
}

/** Emitted once per stream, on the first segment longer than 1.5 × the target. */
export interface LongSegmentInfo {
  readonly seq: number;
  readonly durationMs: number;
  readonly segmentTargetMs: number;
}

/**
 * Why the segmenter ended: `inputEnded` ffmpeg exited 0 by itself (publisher gone and the
 * RTMP server closed our pull, or no data for `rwTimeoutMs`); `stopped` by `stop()`;
 * `killed` SIGKILL after `stop()` timed out; `failed` any other exit (could not connect,
 * no video stream, spawn error...).
 */
export type SegmenterEndReason = 'inputEnded' | 'stopped' | 'killed' | 'failed';

export interface SegmenterEndInfo {
  readonly reason: SegmenterEndReason;
  /** ffmpeg's exit code; null when killed by a signal or never spawned (255 after SIGINT is normal). */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Segments reported with `segment`. */
  readonly segments: number;
  /** Of those, how many exceeded 1.5 × the target. */
  readonly longSegments: number;
  /** For `failed`: the spawn error or ffmpeg's last stderr line (stream key redacted). */
  readonly detail?: string;
}

/** The typed event map. */
export interface SegmenterEvents {
  /** A segment file was completed and closed; strictly in seq order. */
  segment: [SegmentInfo];
  /** The first long segment of the stream (a publisher with a long keyframe interval). */
  longSegment: [LongSegmentInfo];
  /** Exactly once, after the last `segment`. */
  end: [SegmenterEndInfo];
}

/** Where to pull from: our RTMP server by port and key, or the equivalent URL. */
export type SegmenterInput =
  | {
    /** The stream key to pull (`[A-Za-z0-9_-]{1,64}`). A secret: never logged. */
    streamKey: string;
    /** Port of our RTMP server. */
    rtmpPort: number;
    /** Host of our RTMP server; default `127.0.0.1`. */
    rtmpHost?: string;
  }
  | {
    /** `rtmp://<host>:<port>/live/<streamKey>`; the key is validated and redacted from logs like `streamKey`. */
    inputUrl: string;
  };

export type SegmenterOptions = SegmenterInput & {
  /** Absolute directory for `<seq>.ts`; created if missing. Should be empty (files are overwritten). */
  workDir: string;
  logger: Logger;
  /** Target segment duration, ms; default 2000 (docs/wire-contract.md §3). Cuts happen at keyframes only. */
  segmentTargetMs?: number;
  /** ffmpeg binary; default `ffmpeg` from PATH. */
  ffmpegPath?: string;
  /** Input I/O timeout (`-rw_timeout`), ms: connect/handshake and any read stall; default 10000. */
  rwTimeoutMs?: number;
  /**
   * How long ffmpeg probes the input for streams (`-analyzeduration`), ms; default 1000.
   * ffmpeg's RTMP client announces no streams, so its default (5 s) delays an audio-less
   * publish by 5 s waiting for audio that never comes.
   */
  probeDurationMs?: number;
  /** After `stop()`'s SIGINT, wait this long before SIGKILL, ms; default 5000. */
  stopTimeoutMs?: number;
  /** Supervisor of the ffmpeg child; default one of its own (media/child-supervisor.ts `oneRunSupervisor`). */
  supervisor?: ChildSupervisor;
};

/** Segments longer than this × the target are "long" (a GOP longer than the target). */
export const LONG_SEGMENT_FACTOR = 1.5;

const DEFAULTS = {
  rtmpHost: '127.0.0.1',
  segmentTargetMs: 2000,
  ffmpegPath: 'ffmpeg',
  rwTimeoutMs: 10_000,
  probeDurationMs: 1000,
  stopTimeoutMs: 5000,
} as const;

/**
 * Cuts one live stream into `<workDir>/<seq>.ts` source segments with ffmpeg `-c copy`,
 * pulling `rtmp://<rtmpHost>:<rtmpPort>/live/<streamKey>`.
 *
 * Segments are cut at keyframes near `segmentTargetMs` (default 2 s). A publisher whose
 * keyframes are further apart (OBS "auto" keyframe interval; the test clip has 10 s GOPs)
 * gets longer segments: that is the accepted behaviour (a copy segmenter cannot cut
 * between keyframes, and re-encoding the source is the transcoder's job). The first
 * segment over 1.5 × the target emits `longSegment` so the gateway can warn the publisher;
 * `end` carries the count.
 *
 * Events (see {@link SegmenterEvents}): `segment` for each completed file, in seq order;
 * `longSegment` once; `end` exactly once, after the last `segment`. When the publisher
 * stops, RtmpServer closes our pull, ffmpeg flushes the last (partial) segment and exits 0.
 *
 * ffmpeg's stderr goes to the logger at debug, line by line, with the stream key redacted.
 * The key is still on ffmpeg's command line (visible to local users via `ps`), like any
 * RTMP pull; the gateway host is trusted.
 */
export class Segmenter extends EventEmitter<SegmenterEvents> {
  readonly #streamKey: string;
  readonly #inputUrl: string;
  readonly #workDir: string;
  readonly #segmentTargetMs: number;
  readonly #ffmpegPath: string;
  readonly #rwTimeoutMs: number;
  readonly #probeDurationMs: number;
  readonly #stopTimeoutMs: number;
  readonly #log: Logger;

  #child: SupervisedChild | undefined;
  readonly #supervisor: ChildSupervisor;
  #started = false;
  #stopRequested = false;
  #sigkilled = false;
  #nextSeq = 0;
  #segments = 0;
  #longSegments = 0;
  #spawnError: Error | undefined;
  #lastStderrLine = '';
  /** Serializes segment reporting (stat is async) so events keep seq order and `end` comes last. */
  #queue: Promise<void> = Promise.resolve();
  readonly #done: Promise<SegmenterEndInfo>;
  #resolveDone!: (info: SegmenterEndInfo) => void;
  #ended = false;

  /**
   * @throws GatewayError INVALID_NAME for a malformed stream key (not echoed);
   *   CONFIG_INVALID for a relative `workDir` or a non-positive `segmentTargetMs`
   */
  constructor(options: SegmenterOptions) {
    super();
    const input = resolveInput(options);
    this.#streamKey = input.streamKey;
    this.#inputUrl = input.url;
    if (!path.isAbsolute(options.workDir)) {
      throw new GatewayError('CONFIG_INVALID', 'segmenter workDir must be an absolute directory');
    }
    const segmentTargetMs = options.segmentTargetMs ?? DEFAULTS.segmentTargetMs;
    if (!(segmentTargetMs > 0)) throw new GatewayError('CONFIG_INVALID', 'segmentTargetMs must be > 0');
    this.#workDir = options.workDir;
    this.#segmentTargetMs = segmentTargetMs;
    this.#ffmpegPath = options.ffmpegPath ?? DEFAULTS.ffmpegPath;
    this.#rwTimeoutMs = options.rwTimeoutMs ?? DEFAULTS.rwTimeoutMs;
    this.#probeDurationMs = options.probeDurationMs ?? DEFAULTS.probeDurationMs;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? DEFAULTS.stopTimeoutMs;
    this.#log = options.logger.child({ component: 'segmenter' });
    this.#supervisor = options.supervisor ?? oneRunSupervisor();
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Resolves with the `end` info once the segmenter has ended (never rejects). */
  get done(): Promise<SegmenterEndInfo> {
    return this.#done;
  }

  /** ffmpeg's pid while running. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Spawns ffmpeg. Failures to spawn surface as `end` with reason `failed`.
   * @throws GatewayError INTERNAL when called twice or after `stop()`
   */
  start(): void {
    if (this.#started || this.#stopRequested) throw new GatewayError('INTERNAL', 'segmenter already started or stopped');
    this.#started = true;
    mkdirSync(this.#workDir, { recursive: true });
    const args = buildSegmenterArgs({
      inputUrl: this.#inputUrl,
      workDir: this.#workDir,
      segmentTargetMs: this.#segmentTargetMs,
      rwTimeoutMs: this.#rwTimeoutMs,
      probeDurationMs: this.#probeDurationMs,
    });
    // The supervisor logs each stderr line (redacted) at debug with the pid, and stops the
    // child with SIGINT (ffmpeg flushes the partial last segment), SIGKILL after stopTimeoutMs.
    const child = this.#supervisor.spawn(this.#ffmpegPath, args, {
      name: 'segmenter',
      gracefulSignal: 'SIGINT',
      killGraceMs: this.#stopTimeoutMs,
      logger: this.#log,
      redact: (line) => this.#redact(line),
      onStderrLine: (line) => {
        this.#lastStderrLine = line;
      },
      onKill: () => {
        this.#sigkilled = true;
      },
    });
    this.#child = child;
    child.process.stdout!.setEncoding('utf8');
    onLines(child.process.stdout!, (line) => this.#onListLine(line));
    void child.exited.then(({ code, signal, spawnError }) => {
      // spawn failure (ENOENT...) ends as 'failed' with its message
      if (spawnError) this.#spawnError = spawnError;
      this.#onClose(code, signal);
    });
    this.#log.debug({ pid: child.pid, segmentTargetMs: this.#segmentTargetMs }, 'segmenter started');
  }

  /**
   * Removes the work dir with any segment files still in it. Call after `end`, once every
   * reported segment has been consumed (stored elsewhere); the caller deletes each segment
   * file as it is consumed, so this only clears the directory and a segment that was lost.
   */
  async cleanup(): Promise<void> {
    await rm(this.#workDir, { recursive: true, force: true });
  }

  /**
   * Graceful stop: SIGINT (ffmpeg flushes and reports the partial last segment, exit 255),
   * then SIGKILL after `stopTimeoutMs`. Idempotent; resolves after `end` was emitted (the
   * end info is on `done` and the `end` event).
   */
  async stop(): Promise<void> {
    if (!this.#stopRequested) {
      this.#stopRequested = true;
      const child = this.#child;
      if (!this.#started) {
        this.#finish({ reason: 'stopped', exitCode: null, signal: null });
      } else if (child && !child.hasExited) {
        void child.stop();
      }
    }
    await this.#done;
  }

  /** Same as `stop()`, for owners that close their components uniformly. */
  close(): Promise<void> {
    return this.stop();
  }

  #redact(text: string): string {
    return redactSecrets(text, [this.#streamKey]);
  }

  #onListLine(line: string): void {
    const entry = parseSegmentListLine(line);
    if (!entry) {
      if (line.trim() !== '') this.#log.warn({ line: this.#redact(line) }, 'unexpected segment list line');
      return;
    }
    const seq = Number.parseInt(entry.file, 10);
    if (!Number.isInteger(seq) || seq !== this.#nextSeq) {
      this.#log.warn({ file: entry.file, expectedSeq: this.#nextSeq }, 'segment out of sequence');
    }
    this.#nextSeq = (Number.isInteger(seq) ? seq : this.#nextSeq) + 1;
    const filePath = path.join(this.#workDir, path.basename(entry.file));
    const durationMs = entry.endMs - entry.startMs;
    this.#queue = this.#queue.then(async () => {
      let bytes = 0;
      try {
        bytes = (await stat(filePath)).size;
      } catch (err) {
        this.#log.error({ seq, err: { message: (err as Error).message } }, 'segment file missing');
        return;
      }
      const info: SegmentInfo = { seq, path: filePath, startMs: entry.startMs, durationMs, bytes };
      this.#segments += 1;
      this.emit('segment', info);
      if (durationMs > LONG_SEGMENT_FACTOR * this.#segmentTargetMs) {
        this.#longSegments += 1;
        if (this.#longSegments === 1) {
          this.#log.warn({ seq, durationMs, segmentTargetMs: this.#segmentTargetMs }, 'long segment: publisher keyframe interval exceeds the segment target');
          this.emit('longSegment', { seq, durationMs, segmentTargetMs: this.#segmentTargetMs });
        }
      }
    }).catch((err: unknown) => {
      this.#log.error({ err: { message: String(err) } }, 'segment listener failed');
    });
  }

  #onClose(code: number | null, signal: NodeJS.Signals | null): void {
    let reason: SegmenterEndReason;
    if (this.#sigkilled) reason = 'killed';
    else if (this.#stopRequested && !this.#spawnError) reason = 'stopped';
    else if (code === 0) reason = 'inputEnded';
    else reason = 'failed';
    const detail = reason === 'failed' ? (this.#spawnError?.message ?? this.#lastStderrLine) : undefined;
    this.#finish({ reason, exitCode: code, signal, ...(detail ? { detail } : {}) });
  }

  #finish(partial: Pick<SegmenterEndInfo, 'reason' | 'exitCode' | 'signal' | 'detail'>): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#queue = this.#queue.then(() => {
      const info: SegmenterEndInfo = { ...partial, segments: this.#segments, longSegments: this.#longSegments };
      const level = info.reason === 'failed' || info.reason === 'killed' ? 'warn' : 'info';
      this.#log[level]({ reason: info.reason, exitCode: info.exitCode, signal: info.signal, segments: info.segments, longSegments: info.longSegments, detail: info.detail }, 'segmenter ended');
      this.#child = undefined;
      this.emit('end', info);
      this.#resolveDone(info);
    });
  }
}

/** Validates the input and returns the pull URL and the key to redact. */
function resolveInput(input: SegmenterInput): { streamKey: string; url: string } {
  if ('inputUrl' in input) {
    let url: URL;
    try {
      url = new URL(input.inputUrl);
    } catch {
      throw new GatewayError('CONFIG_INVALID', 'segmenter inputUrl is not a URL');
    }
    const m = /^\/live\/([^/]*)$/.exec(url.pathname);
    if (url.protocol !== 'rtmp:' || !m || url.search !== '') {
      throw new GatewayError('CONFIG_INVALID', 'segmenter inputUrl must be rtmp://<host>:<port>/live/<streamKey>');
    }
    const streamKey = assertStreamName(m[1], 'stream key');
    return { streamKey, url: url.href };
  }
  const streamKey = assertStreamName(input.streamKey, 'stream key');
  const host = input.rtmpHost ?? DEFAULTS.rtmpHost;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { streamKey, url: `rtmp://${hostPart}:${input.rtmpPort}/live/${streamKey}` };
}
