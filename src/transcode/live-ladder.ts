/**
 * A live stream's whole ladder made by ONE long-running ffmpeg (docs/architecture.md, "The
 * live ladder"): the source MPEG-TS is written to its stdin as it arrives (chunks of source
 * segments, see {@link LiveLadderChunk}), each rendition comes back as one continuous MPEG-TS
 * on its own pipe, and Node cuts every rendition at the source segment boundaries
 * (media/ts-cutter.ts), so rendition segment N covers exactly source segment N:
 *
 *  - `-copyts` and the per-segment jobs' encoder options (ladder-args.ts `buildLiveLadderArgs`):
 *    output PTS equal source PTS; `-force_key_frames source`: an output keyframe at every
 *    source keyframe, hence at every boundary (a source segment starts at a keyframe);
 *  - the cut of seq N is the first video PES with PTS ≥ startPts90k(N) − half a frame; audio
 *    goes by its PTS; each segment starts with PAT/PMT;
 *  - early close: the source's video frames are counted per seq as they are written
 *    (media/ts-cutter.ts `TsFrameCounter`); a rendition at the source's frame rate has one
 *    output frame per source frame, so its segment N is complete once it holds that many,
 *    without waiting for seq N+1's keyframe to leave the encoder (renditions that change the
 *    frame rate wait for it).
 *
 * Each (seq, rendition) is emitted once complete, in seq order per rendition, with the
 * measurements the per-segment path reports (the MPEG-TS read in process: ts-measure.ts);
 * `complete` follows when every rendition of the seq was emitted (or failed).
 *
 * Lifecycle: `write()` while running; `end()` closes stdin and resolves once ffmpeg has
 * flushed and exited and the last seq was emitted; `close()` stops ffmpeg (SIGTERM, SIGKILL
 * after the supervisor's grace) without emitting more. An ffmpeg that exits by itself (crash,
 * kill, bad input) gives `error` (GatewayError TRANSCODE_FAILED) then `exit` (with no `error`
 * listener the failure is only logged; `end()` rejects with it either way).
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import type { FittedRendition } from '../domain/profile.ts';
import type { SourceSegmentInfo } from '../domain/segment.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import type { ChildExit, ChildSupervisor, SupervisedChild } from '../media/child-supervisor.ts';
import { TsCutter, TsFrameCounter, type TsCut } from '../media/ts-cutter.ts';
import { measureTs, TsMeasureError } from '../media/ts-measure.ts';
import { buildLiveLadderArgs, LIVE_FIRST_OUTPUT_FD, type LadderWatermark, type LiveEncoderTuning, type X264Preset } from './ladder-args.ts';
import { h264OutputMeasured, type Measured } from './segment-transcoder.ts';

/**
 * Muxed bytes of source segment `seq` as they are produced (the ingest segmenter's chunk:
 * media/ts-segmenter.ts `TsChunk` has this shape). All chunks of all seqs, in order, form one
 * continuous MPEG-TS stream; the first chunk of a seq starts at a source keyframe.
 */
export interface LiveLadderChunk {
  readonly seq: number;
  /** True for the first chunk of `seq`. */
  readonly first: boolean;
  /** PTS of the seq's first video frame (its keyframe), 90 kHz; required when `first`. */
  readonly startPts90k?: number;
  readonly bytes: Uint8Array;
}

/** One rendition segment, complete. */
export interface LiveRenditionSegment {
  readonly seq: number;
  /** Rendition (profile) name. */
  readonly rendition: string;
  /** The whole MPEG-TS segment: PAT/PMT, then video starting with a keyframe, and audio. */
  readonly bytes: Buffer;
  /**
   * Source segment duration, ms: to the next seq's start; for the last seq (at `end()`), from its
   * start to the last video frame's PTS plus one frame.
   */
  readonly durationMs: number;
  /** PTS of the segment's first video frame, 90 kHz (= the source seq's start within half a frame). */
  readonly startPts90k: number;
  /** As the per-segment path reports them (segment-transcoder.ts): picture size, frames, bytes, RFC 6381 codecs, frame rate. */
  readonly measured: Measured;
  /** Wall time from the seq's first chunk written to this segment emitted, ms. */
  readonly elapsedMs: number;
}

/** A rendition segment that could not be made (no video for that seq, or unreadable output). */
export interface LiveRenditionFailure {
  readonly seq: number;
  readonly rendition: string;
  readonly reason: string;
}

export interface LiveLadderEvents {
  segment: [LiveRenditionSegment];
  failed: [LiveRenditionFailure];
  /** Every rendition of `seq` was emitted (`segment` or `failed`). */
  complete: [{ seq: number }];
  /** ffmpeg failed (exited by itself, was killed, or its output was unreadable); `exit` follows. */
  error: [GatewayError];
  /** ffmpeg exited (after `end()`, `close()` or a failure). */
  exit: [ChildExit];
}

export interface LiveLadderOptions {
  /** The fitted ladder (domain/profile.ts `fitRendition` against the source), in ladder order; H.264 only (see {@link liveLadderSupports}). */
  readonly renditions: readonly FittedRendition[];
  /** The source's measurement: rotation and audio codec shape the command and the codecs strings. */
  readonly source: SourceSegmentInfo;
  /** libx264 preset; default ladder-args.ts `DEFAULT_X264_PRESET`. */
  readonly x264Preset?: X264Preset;
  /** Decoder and encoder tuning (`transcode.liveEncoderTuning`); default `latency`. */
  readonly tuning?: LiveEncoderTuning;
  /** Spawns and owns the ffmpeg process; closing it stops ffmpeg. */
  readonly supervisor: ChildSupervisor;
  readonly logger: Logger;
  /** ffmpeg executable; default `ffmpeg` from PATH. */
  readonly ffmpegPath?: string;
  /** How long the video may run past a boundary while the audio has not reached it before the seq is emitted anyway, ms; default 1000. */
  readonly audioWaitMs?: number;
  /** A watermark drawn on every rendition (its image file must stay until the ladder exits); absent: none. */
  readonly watermark?: LadderWatermark;
}

/** Whether {@link LiveLadder} can make this ladder: H.264 renditions only (HEVC outputs are measured with ffprobe, per segment). */
export function liveLadderSupports(renditions: readonly FittedRendition[]): boolean {
  return renditions.length > 0 && renditions.every((r) => r.profile.encoder === 'H.264');
}

const EMPTY = Buffer.alloc(0);

/** stderr lines kept for the error message. */
const STDERR_TAIL_LINES = 10;

interface RenditionState {
  readonly rendition: FittedRendition;
  readonly cutter: TsCutter;
  readonly frameDuration90k: number;
  /** Output pipe ended. */
  ended: boolean;
  /** Last seq emitted (segment or failed). */
  lastSeq: number | undefined;
}

/** See the module comment. */
export class LiveLadder extends EventEmitter<LiveLadderEvents> {
  readonly #child: SupervisedChild;
  readonly #stdin: Writable;
  readonly #states: RenditionState[];
  readonly #source: SourceSegmentInfo;
  readonly #logger: Logger;
  readonly #stderrTail: string[] = [];
  /** Start PTS of each seq announced, for durations. */
  readonly #starts = new Map<number, number>();
  /** Wall time of each seq's first chunk, ms (performance.now()). */
  readonly #startedAt = new Map<number, number>();
  /** Renditions still to emit, per seq. */
  readonly #pending = new Map<number, number>();
  #lastSeq: number | undefined;
  #ending: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #failed = false;
  #exited = false;
  readonly #outputsEnded: Promise<void>;
  /** Counts the source's frames per seq, for the renditions that keep its frame rate (early close); undefined when none does. */
  #sourceFrames: TsFrameCounter | undefined;

  /**
   * Starts ffmpeg at once (it waits for input on stdin).
   * @throws GatewayError INTERNAL when the ladder is empty or not all H.264 ({@link liveLadderSupports});
   *   CONFIG_INVALID for an unknown preset; Error when the supervisor is closed.
   */
  constructor(options: LiveLadderOptions) {
    super();
    if (!liveLadderSupports(options.renditions)) throw new GatewayError('INTERNAL', 'live ladder needs at least one rendition, all H.264');
    this.#source = options.source;
    this.#logger = options.logger.child({ component: 'live-ladder' });
    const args = buildLiveLadderArgs({
      renditions: options.renditions, sourceAudioCodec: options.source.audio?.codec,
      ...(options.x264Preset ? { x264Preset: options.x264Preset } : {}),
      ...(options.tuning ? { tuning: options.tuning } : {}),
      ...(options.source.video.rotationDeg ? { sourceRotationDeg: options.source.video.rotationDeg } : {}),
      ...(options.watermark ? { watermark: options.watermark } : {}),
    });
    const audioWait90k = (options.audioWaitMs ?? 1000) * 90;
    this.#states = options.renditions.map((rendition) => {
      const frameDuration90k = (90_000 * rendition.fpsDen) / rendition.fpsNum;
      return { rendition, frameDuration90k, cutter: new TsCutter({ frameDuration90k, audioWait90k }), ended: false, lastSeq: undefined };
    });
    // A rendition at the source's frame rate has one output frame per source frame: once the
    // source has passed a boundary, each seq's frame count closes its rendition segments without
    // waiting for the next keyframe to come out of the encoder (media/ts-cutter.ts).
    const sameRate = this.#states.filter((s) => !s.rendition.changesFps);
    const { fpsNum, fpsDen } = options.source.video;
    this.#sourceFrames = sameRate.length === 0 || !(fpsNum > 0 && fpsDen > 0) ? undefined : new TsFrameCounter({
      frameDuration90k: (90_000 * fpsDen) / fpsNum,
      onCount: (seq, frames) => {
        for (const state of sameRate) {
          state.cutter.setFrameCount(seq, frames);
          this.#output(state, EMPTY);
        }
      },
    });
    const outputs = this.#states.map(() => 'pipe' as const);
    this.#child = options.supervisor.spawn(options.ffmpegPath ?? 'ffmpeg', args, {
      name: 'live-ladder',
      stdio: ['pipe', 'ignore', 'pipe', ...outputs],
      logger: this.#logger,
      onStderrLine: (line) => {
        this.#stderrTail.push(line);
        if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
      },
    });
    this.#stdin = this.#child.process.stdin!;
    // EPIPE when ffmpeg died: the exit reports it.
    this.#stdin.on('error', (err) => this.#logger.debug({ err: err.message }, 'ffmpeg stdin error'));
    this.#outputsEnded = Promise.all(this.#states.map((state, i) => {
      const pipe = this.#child.process.stdio[LIVE_FIRST_OUTPUT_FD + i] as Readable;
      return new Promise<void>((resolve) => {
        pipe.on('data', (data: Buffer) => this.#output(state, data));
        pipe.on('error', (err) => this.#logger.debug({ err: err.message, rendition: state.rendition.profile.name }, 'rendition pipe error'));
        pipe.on('close', () => { state.ended = true; resolve(); });
      });
    })).then(() => undefined);
    void this.#child.exited.then((exit) => this.#onExit(exit));
    this.#logger.debug({ pid: this.#child.process.pid, renditions: this.#states.length }, 'live ladder started');
  }

  /** ffmpeg's pid (undefined if it could not be started). */
  get pid(): number | undefined {
    return this.#child.process.pid;
  }

  /** Bytes written to ffmpeg's stdin and not yet taken by it (grows when ffmpeg is slower than real time). */
  get bufferedBytes(): number {
    return this.#stdin.writableLength;
  }

  /**
   * Feeds the next chunk. Chunks come in stream order; a seq's first chunk (`first`) announces
   * its boundary. Chunks before the first `first` chunk are dropped (a stream taken over mid-seq).
   * @throws GatewayError INTERNAL after `end()`/`close()` or a failure, when a first chunk has no
   *   `startPts90k`, or when seqs do not increase.
   */
  write(chunk: LiveLadderChunk): void {
    if (this.#ending || this.#closing || this.#failed || this.#exited) throw new GatewayError('INTERNAL', 'live ladder is not accepting input');
    if (chunk.first) {
      if (chunk.startPts90k === undefined) throw new GatewayError('INTERNAL', `first chunk of seq ${chunk.seq} has no startPts90k`);
      if (this.#lastSeq !== undefined && chunk.seq <= this.#lastSeq) throw new GatewayError('INTERNAL', `seq ${chunk.seq} after seq ${this.#lastSeq}`);
      this.#lastSeq = chunk.seq;
      this.#starts.set(chunk.seq, chunk.startPts90k);
      this.#startedAt.set(chunk.seq, performance.now());
      this.#pending.set(chunk.seq, this.#states.length);
      for (const s of this.#states) s.cutter.addBoundary(chunk.seq, chunk.startPts90k);
      this.#sourceFrames?.addBoundary(chunk.seq, chunk.startPts90k);
    } else if (this.#lastSeq === undefined) {
      return;
    } else if (chunk.seq !== this.#lastSeq) {
      throw new GatewayError('INTERNAL', `chunk of seq ${chunk.seq} without its first chunk (current seq ${this.#lastSeq})`);
    }
    this.#stdin.write(chunk.bytes);
    try {
      this.#sourceFrames?.push(chunk.bytes);
    } catch (err) {
      // Unreadable input: ffmpeg says what it makes of it; segments then close at the next keyframe.
      this.#logger.warn({ err: (err as Error).message, seq: chunk.seq }, 'cannot count source frames; early close off');
      this.#sourceFrames = undefined;
    }
  }

  /**
   * No more input: ffmpeg drains its encoders, and the last seq is emitted.
   * Resolves once ffmpeg has exited and every seq written was emitted; idempotent.
   * @throws GatewayError TRANSCODE_FAILED when ffmpeg failed (the `error` event carries the same).
   */
  end(): Promise<void> {
    this.#ending ??= (async () => {
      this.#stdin.end();
      const [exit] = await Promise.all([this.#child.exited, this.#outputsEnded]);
      if (this.#failed || this.#closing) throw this.#exitError(exit);
      for (const state of this.#states) {
        let cuts: TsCut[];
        try {
          cuts = state.cutter.end();
        } catch (err) {
          this.#fail(new GatewayError('TRANSCODE_FAILED', `output of rendition ${state.rendition.profile.name} is not a whole MPEG-TS stream`, { cause: err }));
          throw this.#exitError(exit);
        }
        for (const cut of cuts) this.#emitCut(state, cut, true);
      }
      // Seqs announced but never reached by any output (no frame decoded): failed.
      for (const seq of [...this.#pending.keys()]) {
        for (const state of this.#states) if (state.lastSeq === undefined || state.lastSeq < seq) this.#fail1(seq, state, 'no output for this seq');
      }
    })();
    return this.#ending;
  }

  /** Stops ffmpeg without emitting more; resolves once it has exited. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stdin.destroy();
      await this.#child.stop();
      await this.#outputsEnded;
    })();
    return this.#closing;
  }

  #output(state: RenditionState, data: Buffer): void {
    if (this.#failed || this.#closing) return;
    let cuts: TsCut[];
    try {
      cuts = state.cutter.push(data);
    } catch (err) {
      this.#fail(new GatewayError('TRANSCODE_FAILED', `output of rendition ${state.rendition.profile.name} is unreadable: ${(err as Error).message}`, { cause: err }));
      void this.#child.stop();
      return;
    }
    for (const cut of cuts) this.#emitCut(state, cut, false);
  }

  #emitCut(state: RenditionState, cut: TsCut, last: boolean): void {
    const name = state.rendition.profile.name;
    if (cut.videoFrames === 0 || cut.firstVideoPts90k === undefined) {
      this.#fail1(cut.seq, state, 'no video frame for this seq in the output');
      return;
    }
    if (!cut.startsWithKeyframe) this.#logger.warn({ seq: cut.seq, rendition: name }, 'rendition segment does not start with a keyframe');
    let measured: Measured;
    try {
      measured = h264OutputMeasured(state.rendition, measureTs(cut.bytes), this.#source);
    } catch (err) {
      const reason = err instanceof TsMeasureError ? `${err.failure}: ${err.message}` : String(err);
      this.#fail1(cut.seq, state, `rendition segment not measurable: ${reason}`);
      return;
    }
    const start = this.#starts.get(cut.seq) ?? cut.boundaryPts90k;
    const next = this.#starts.get(cut.seq + 1) ?? [...this.#starts.entries()].find(([seq]) => seq > cut.seq)?.[1];
    const end90k = !last && next !== undefined ? next : (cut.lastVideoPts90k ?? start) + state.frameDuration90k;
    const durationMs = Math.round(ptsSpan(start, end90k) / 90);
    const startedAt = this.#startedAt.get(cut.seq);
    state.lastSeq = cut.seq;
    this.emit('segment', {
      seq: cut.seq, rendition: name, bytes: cut.bytes, durationMs, startPts90k: cut.firstVideoPts90k, measured,
      elapsedMs: startedAt === undefined ? 0 : Math.round(performance.now() - startedAt),
    });
    this.#done(cut.seq);
  }

  #fail1(seq: number, state: RenditionState, reason: string): void {
    this.#logger.warn({ seq, rendition: state.rendition.profile.name, reason }, 'rendition segment failed');
    state.lastSeq = seq;
    this.emit('failed', { seq, rendition: state.rendition.profile.name, reason });
    this.#done(seq);
  }

  #done(seq: number): void {
    const left = (this.#pending.get(seq) ?? 1) - 1;
    if (left > 0) {
      this.#pending.set(seq, left);
      return;
    }
    this.#pending.delete(seq);
    // Older seqs' bookkeeping is no longer needed (the newest start stays for durations).
    for (const s of [...this.#starts.keys()]) if (s < seq) { this.#starts.delete(s); this.#startedAt.delete(s); }
    this.emit('complete', { seq });
  }

  #fail(err: GatewayError): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#logger.warn({ err: err.message }, 'live ladder failed');
    // An unheard `error` would throw out of a pipe or exit callback and end the process.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #exitError(exit: ChildExit): GatewayError {
    const tail = this.#stderrTail.join('\n').slice(-500);
    const what = exit.spawnError ? `ffmpeg could not be started: ${exit.spawnError.message}`
      : exit.signal ? `ffmpeg killed by ${exit.signal}` : `ffmpeg exited with code ${exit.code}`;
    return new GatewayError('TRANSCODE_FAILED', tail ? `${what}: ${tail}` : what);
  }

  #onExit(exit: ChildExit): void {
    this.#exited = true;
    const expected = this.#closing !== undefined || (this.#ending !== undefined && exit.code === 0);
    if (!expected) this.#fail(this.#exitError(exit));
    this.#logger.debug({ code: exit.code, signal: exit.signal }, 'live ladder exited');
    // After the outputs drained, so `exit` comes after the last segment.
    void this.#outputsEnded.then(() => this.emit('exit', exit));
  }
}

/** `b - a` in 90 kHz ticks across the 33-bit wrap. */
function ptsSpan(a: number, b: number): number {
  const d = (b - a) % 2 ** 33;
  return d < 0 ? d + 2 ** 33 : d;
}
