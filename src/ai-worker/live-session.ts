/**
 * One live video-to-video stream on the reference worker: the runner side of Livepeer's live
 * pipeline (docs/operations.md "The reference live worker"; wire in docs/wire-contract.md).
 *
 * Data path, all in this process except the two ffmpeg children of the frame API:
 *   input channel (trickle subscribe, MPEG-TS segments concatenated)
 *     → frames/ `openTracks` (one ffmpeg: rgb24 video frames, 48 kHz stereo audio frames)
 *     → per video frame: sharp filter (live-filter.ts) with the parameters current when the
 *       frame arrives (a control message applies from the next frame)
 *     → frames/ `publish({ mpegts: true })` (one ffmpeg: H.264 ultrafast/zerolatency at the
 *       input's size and frame rate, the audio re-encoded to AAC)
 *     → media/ TsKeyframeSplitter → one output trickle segment per keyframe interval
 *       (`keyframeIntervalSec`, default 2 s, the length of a gateway's source segments),
 *       streamed while it is encoded.
 * Control channel: each segment is one JSON params dict (complete, as ai-runner); the
 * gateway's `{"keep":"alive"}` is ignored. Events channel: a status event every
 * `statusIntervalMs` (10 s), at start, and when the parameters change (live-status.ts).
 *
 * The session ends when the input channel is closed (the gateway's DELETE of publish_url)
 * and everything received was processed; when no input segment arrived for
 * `inputTimeoutMs` (60 s, as ai-runner stops an idle stream); on {@link LiveSession.stop};
 * or when the media fails. Ending closes the output and events channels (subscribers see
 * `Lp-Trickle-Closed`) and stops both ffmpeg children.
 */
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import { MediaStreamError, type AudioFrame, type VideoFrame } from '../frames/frame-types.ts';
import { AudioSource, openTracks, publish, VideoSource, type AudioTrack, type OpenedTracks, type Publication, type VideoTrack } from '../frames/index.ts';
import { TsKeyframeSplitter } from '../media/ts-keyframe-splitter.ts';
import { frameRateFromSpan } from '../media/ts-segmenter.ts';
import { MIME_JSON, TricklePublisher, TrickleSubscriber, TrickleError, type TrickleSegmentWriter } from '../trickle/index.ts';
import { applyLiveFilter } from './live-filter.ts';
import { isKeepAlive, parseLiveParams, paramsHash, type LiveFilterParams } from './live-params.ts';
import { FpsMeter, LIVE_EVENTS_QUEUE_TYPE, liveState, type LivePipelineState, type LiveStatusEvent } from './live-status.ts';

/** The channels as the runner sees them: it subscribes to input and control, publishes output and events. */
export interface LiveSessionChannels {
  readonly inputUrl: string;
  readonly outputUrl: string;
  readonly controlUrl: string;
  readonly eventsUrl: string;
}

export interface LiveSessionOptions {
  readonly manifestID: string;
  readonly modelID: string;
  /** The params dict as received (reported in status events). */
  readonly rawParams: unknown;
  readonly params: LiveFilterParams;
  readonly channels: LiveSessionChannels;
  /** Status event period, ms; default 10000 (ai-runner). */
  readonly statusIntervalMs?: number;
  /** Output keyframe interval = output segment length, s; default 2. */
  readonly keyframeIntervalSec?: number;
  /** End the session when no input segment arrived for this long, ms; default 60000 (ai-runner). */
  readonly inputTimeoutMs?: number;
  readonly logger: Logger;
}

/** What went through a session. */
export interface LiveSessionCounters {
  readonly inputSegments: number;
  readonly inputFrames: number;
  readonly outputFrames: number;
  readonly outputSegments: number;
  readonly filterErrors: number;
  /** Decoded frames dropped because the filter/encoder fell behind (the decoder's bounded queue). */
  readonly droppedFrames: number;
}

/** Largest control message read, bytes. */
const MAX_CONTROL_BYTES = 1024 * 1024;
/** Video frames being filtered at once (sharp runs them on libuv's pool while the next is decoded). */
const FILTERS_IN_FLIGHT = 2;
const AUDIO = { sampleRate: 48_000, channels: 2 } as const;
/** No output frame for this long while input segments arrive ends the stream as failed, ms. */
const STALL_TIMEOUT_MS = 15_000;
/** Input is handed to the decoder in pieces of at most this many bytes. */
const INPUT_WRITE_BYTES = 8192;
/** Decoded frames that may wait for the filter before the oldest is dropped. */
const MAX_QUEUED_VIDEO_FRAMES = 24;

async function readText(body: Readable, maxBytes: number): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy();
      throw new Error(`control message larger than ${maxBytes} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

function isEnded(err: unknown): boolean {
  return err instanceof MediaStreamError && err.code === 'ENDED';
}

/** A running live stream (see the module docs). */
export class LiveSession {
  readonly manifestID: string;
  readonly modelID: string;
  /** Settles when the session has fully ended (children stopped, channels closed); never rejects. */
  readonly done: Promise<void>;
  readonly #log: Logger;
  readonly #statusIntervalMs: number;
  readonly #keyframeIntervalSec: number;
  readonly #inputTimeoutMs: number;
  readonly #startMs = Date.now();
  readonly #abort = new AbortController();
  readonly #input = new PassThrough({ highWaterMark: 64 * 1024 });
  readonly #inputSub: TrickleSubscriber;
  readonly #controlSub: TrickleSubscriber;
  readonly #outputPub: TricklePublisher;
  readonly #eventsPub: TricklePublisher;
  readonly #inputFps: FpsMeter;
  readonly #outputFps: FpsMeter;
  #params: LiveFilterParams;
  #rawParams: unknown;
  #paramsUpdateMs: number | undefined;
  #lastInputMs: number | undefined;
  #lastOutputMs: number | undefined;
  #lastInputSegmentMs: number;
  #lastError: string | undefined;
  #lastErrorMs: number | undefined;
  #failed = false;
  #stopped = false;
  #stopReason: string | undefined;
  #state: LivePipelineState = 'LOADING';
  #stateUpdateMs: number | null = null;
  #lastStatusMs: number | undefined;
  #tracks: OpenedTracks | undefined;
  #publication: Publication | undefined;
  #timer: NodeJS.Timeout | undefined;
  #events: Promise<void> = Promise.resolve();
  #counters = { inputSegments: 0, inputFrames: 0, outputFrames: 0, outputSegments: 0, filterErrors: 0 };

  constructor(options: LiveSessionOptions) {
    this.manifestID = options.manifestID;
    this.modelID = options.modelID;
    this.#params = options.params;
    this.#rawParams = options.rawParams ?? {};
    this.#statusIntervalMs = options.statusIntervalMs ?? 10_000;
    this.#keyframeIntervalSec = options.keyframeIntervalSec ?? 2;
    this.#inputTimeoutMs = options.inputTimeoutMs ?? 60_000;
    this.#lastInputSegmentMs = this.#startMs;
    this.#log = options.logger.child({ component: 'live-session', manifestID: options.manifestID });
    this.#inputFps = new FpsMeter(10_000, this.#startMs);
    this.#outputFps = new FpsMeter(10_000, this.#startMs);
    const { channels } = options;
    const signal = this.#abort.signal;
    const logger = this.#log;
    this.#inputSub = new TrickleSubscriber(channels.inputUrl, { start: 0, signal, logger });
    this.#controlSub = new TrickleSubscriber(channels.controlUrl, { start: 0, signal, logger });
    this.#outputPub = new TricklePublisher(channels.outputUrl, { logger });
    this.#eventsPub = new TricklePublisher(channels.eventsUrl, { contentType: MIME_JSON, logger });
    this.done = this.#run();
  }

  /** What has gone through so far. */
  get counters(): LiveSessionCounters {
    return { ...this.#counters, droppedFrames: this.#tracks?.video?.droppedFrames ?? 0 };
  }

  get params(): LiveFilterParams {
    return this.#params;
  }

  /** True once the session is ending or ended. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Ends the session now (idempotent); resolves when it has ended. */
  stop(reason: string): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#stopReason = reason;
      this.#log.info({ reason }, 'live session stopping');
      this.#abort.abort();
      this.#input.end();
      void this.#tracks?.video?.stop();
      void this.#tracks?.audio?.stop();
      void this.#publication?.stop();
    }
    return this.done;
  }

  /** The status event as it would be sent now. */
  status(nowMs = Date.now()): LiveStatusEvent {
    const inputFps = this.#inputFps.fps(nowMs);
    const inferenceFps = this.#outputFps.fps(nowMs);
    const state = liveState({
      nowMs, startMs: this.#startMs, lastInputMs: this.#lastInputMs, lastOutputMs: this.#lastOutputMs, inputFps, inferenceFps,
      lastErrorMs: this.#lastErrorMs, failed: this.#failed, stopped: this.#stopped,
    });
    if (state !== this.#state) {
      this.#state = state;
      this.#stateUpdateMs = nowMs;
    }
    return {
      type: 'status',
      pipeline: this.modelID,
      start_time: this.#startMs,
      state,
      last_state_update_time: this.#stateUpdateMs,
      input_status: { fps: inputFps, last_input_time: this.#lastInputMs ?? null },
      inference_status: {
        fps: inferenceFps,
        last_output_time: this.#lastOutputMs ?? null,
        last_params_update_time: this.#paramsUpdateMs ?? null,
        last_params: this.#rawParams,
        last_params_hash: paramsHash(this.#rawParams),
        last_error_time: this.#lastErrorMs ?? null,
        last_error: this.#lastError ?? null,
        last_restart_time: null,
        last_restart_logs: null,
        restart_count: 0,
      },
      last_status_timestamp: this.#lastStatusMs ?? this.#startMs,
      timestamp: nowMs,
    };
  }

  #error(message: string): void {
    this.#lastError = message;
    this.#lastErrorMs = Date.now();
  }

  /** Queues a status event on the events channel (in order, never concurrently). */
  #sendStatus(): void {
    const now = Date.now();
    const message = JSON.stringify({ queue_event_type: LIVE_EVENTS_QUEUE_TYPE, event: this.status(now) });
    this.#lastStatusMs = now;
    this.#events = this.#events.then(async () => {
      if (this.#eventsPub.closed) return;
      await this.#eventsPub.write(message);
    }).catch((err: unknown) => {
      this.#log.debug({ err: err instanceof Error ? err.message : String(err) }, 'status event not sent');
    });
  }

  async #run(): Promise<void> {
    this.#sendStatus();
    let nextStatusMs = this.#startMs + this.#statusIntervalMs;
    this.#timer = setInterval(() => {
      const now = Date.now();
      if (now >= nextStatusMs) {
        nextStatusMs = now + this.#statusIntervalMs;
        this.#sendStatus();
      }
      if (now - this.#lastInputSegmentMs > this.#inputTimeoutMs) void this.stop('no input');
      // Input keeps coming but nothing comes out: the pipeline is stuck. End the stream with
      // an error (state ERROR) so the gateway moves it to another worker, rather than hang.
      const lastOut = this.#lastOutputMs ?? this.#startMs;
      if (this.#lastInputSegmentMs > lastOut && now - lastOut > STALL_TIMEOUT_MS && !this.#stopped) {
        this.#failed = true;
        this.#error('the pipeline stopped producing frames');
        this.#log.warn({ ...this.counters }, 'live pipeline stalled');
        void this.stop('stalled');
      }
    }, Math.min(1000, this.#statusIntervalMs));
    const control = this.#controlLoop();
    const feeding = this.#feedInput();
    try {
      await this.#process();
      this.#log.info({ ...this.counters }, 'live session input ended');
    } catch (err) {
      const noInput = this.#counters.inputSegments === 0 && this.#input.writableEnded;
      if (noInput) {
        this.#log.info('live session ended before any input');
      } else if (!this.#stopped || !isEnded(err)) {
        this.#failed = true;
        this.#error(err instanceof Error ? err.message : String(err));
        this.#log.warn({ err: this.#lastError, ...this.counters }, 'live session failed');
      }
    }
    clearInterval(this.#timer);
    this.#stopped = true;
    this.#stopReason ??= this.#failed ? 'failed' : 'input ended';
    this.#abort.abort();
    this.#input.end();
    await Promise.allSettled([
      this.#tracks?.video?.stop(), this.#tracks?.audio?.stop(), this.#publication?.stop(), control, feeding,
    ]);
    this.#sendStatus();
    await this.#events;
    await Promise.allSettled([this.#outputPub.close(), this.#eventsPub.close()]);
    this.#log.info({ reason: this.#stopReason, ...this.counters }, 'live session ended');
  }

  /** Input trickle segments → one continuous MPEG-TS byte stream for the decoder. */
  async #feedInput(): Promise<void> {
    try {
      for await (const segment of this.#inputSub) {
        this.#lastInputSegmentMs = Date.now();
        this.#counters.inputSegments += 1;
        for await (const chunk of segment.body as AsyncIterable<Buffer>) {
          if (this.#stopped) break;
          for (let off = 0; off < chunk.length; off += INPUT_WRITE_BYTES) {
            if (!this.#input.write(chunk.subarray(off, off + INPUT_WRITE_BYTES))) {
              await once(this.#input, 'drain', { signal: this.#abort.signal }).catch(() => undefined);
            }
          }
        }
      }
    } catch (err) {
      if (!this.#stopped) {
        this.#error(`input: ${err instanceof Error ? err.message : String(err)}`);
        this.#log.warn({ err: this.#lastError }, 'live input subscription failed');
      }
    } finally {
      this.#input.end();
    }
  }

  /** Control segments → new params from the next frame on. */
  async #controlLoop(): Promise<void> {
    try {
      for await (const segment of this.#controlSub) {
        let value: unknown;
        try {
          value = JSON.parse(await readText(segment.body, MAX_CONTROL_BYTES));
        } catch (err) {
          this.#error(`control message: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        if (isKeepAlive(value)) continue;
        try {
          this.#params = parseLiveParams(value);
        } catch (err) {
          this.#error(`control message: ${(err as Error).message}`);
          this.#log.info({ err: this.#lastError }, 'live params refused');
          continue;
        }
        this.#rawParams = value;
        this.#paramsUpdateMs = Date.now();
        this.#log.info({ params: value, hash: paramsHash(value) }, 'live params updated');
        this.#sendStatus();
      }
    } catch (err) {
      if (!this.#stopped && !(err instanceof TrickleError && err.code === 'ABORTED')) {
        this.#log.debug({ err: err instanceof Error ? err.message : String(err) }, 'live control subscription ended');
      }
    }
  }

  /** Decode → filter → encode → output segments, until the input ends. */
  async #process(): Promise<void> {
    const tracks = await openTracks({ stream: this.#input, format: 'mpegts' }, {
      // Input arrives a whole segment at a time; decoded at its own pace (`realtime`, ffmpeg -re)
      // the frames come evenly instead of in bursts that would overflow the queue. A filter or
      // encoder slower than real time loses the oldest frames (counted, reported as a lower
      // inference fps) and the stream stays live, as ai-runner does. Not `wait`: one decoder
      // gives both audio and video, and the encoder reads the two in step, so a video queue that
      // stalls the decoder can starve the audio the encoder is waiting for.
      // The queue holds 1 s at 24 fps (24 × w × h × 3 bytes: 16.6 MB at 640×360), enough to
      // ride out the encoder's start and a slow frame.
      video: { format: 'rgb24' }, audio: { ...AUDIO }, realtime: true, maxQueuedVideoFrames: MAX_QUEUED_VIDEO_FRAMES, logger: this.#log,
    });
    this.#tracks = tracks;
    if (this.#stopped) return;
    const videoTrack = tracks.video;
    if (videoTrack === undefined) throw new Error('the input has no video');
    const frames = videoTrack[Symbol.asyncIterator]();
    const first = await frames.next();
    if (first.done) return;
    this.#onInputFrame();
    const second = await frames.next();
    if (!second.done) this.#onInputFrame();
    const stepPts = second.done ? 0 : second.value.pts - first.value.pts;
    const [num, den] = stepPts > 0 ? frameRateFromSpan(1, stepPts / 90) : [24, 1];
    const frameRate = num / den;
    const video = new VideoSource({ width: first.value.width, height: first.value.height, format: 'rgb24', frameRate });
    const audio = tracks.audio ? new AudioSource({ ...AUDIO }) : undefined;
    const publication = publish({ mpegts: true }, { video, ...(audio ? { audio } : {}) }, { keyframeIntervalSec: this.#keyframeIntervalSec, logger: this.#log });
    this.#publication = publication;
    if (this.#stopped) void publication.stop();
    this.#log.info({ width: first.value.width, height: first.value.height, frameRate, audio: audio !== undefined, encoderPid: publication.pid }, 'live session media started');
    const output = this.#pumpOutput(publication.output!);
    const audioLoop = audio ? this.#pumpAudio(tracks.audio!, audio) : Promise.resolve();
    const head = second.done ? [first.value] : [first.value, second.value];
    const videoLoop = this.#pumpVideo(head, frames, videoTrack, video);
    const results = await Promise.allSettled([videoLoop, audioLoop]);
    await publication.done.catch((err: unknown) => { if (!this.#stopped) throw err; });
    await output;
    for (const r of results) if (r.status === 'rejected' && !isEnded(r.reason) && !this.#stopped) throw r.reason;
  }

  #onInputFrame(): void {
    const now = Date.now();
    this.#lastInputMs = now;
    this.#inputFps.record(now);
    this.#counters.inputFrames += 1;
  }

  /**
   * Decoded frames → filter → encoder, in order, with up to {@link FILTERS_IN_FLIGHT} frames
   * between the decoder and the encoder. Each filtered frame goes to the encoder as soon as
   * its filter (and the frames before it) are done, not when the next decoded frame arrives:
   * when input pauses, everything decoded so far comes out.
   */
  async #pumpVideo(head: VideoFrame[], rest: AsyncIterator<VideoFrame>, track: VideoTrack, source: VideoSource): Promise<void> {
    const filter = (frame: VideoFrame): Promise<VideoFrame> => applyLiveFilter(frame, this.#params).catch((err: unknown) => {
      this.#counters.filterErrors += 1;
      this.#error(`filter: ${err instanceof Error ? err.message : String(err)}`);
      return frame;
    });
    // One promise per frame in flight, settled once it was given to the encoder; each waits for the one before.
    const pending: Promise<void>[] = [];
    let last: Promise<void> = Promise.resolve();
    const start = (frame: VideoFrame): void => {
      const filtered = filter(frame);
      last = last.then(async () => {
        await source.captureFrame(await filtered);
        const now = Date.now();
        this.#lastOutputMs = now;
        this.#outputFps.record(now);
        this.#counters.outputFrames += 1;
      });
      last.catch(() => undefined); // awaited below; a failure is thrown from there
      pending.push(last);
    };
    try {
      for (const frame of head) {
        while (pending.length >= FILTERS_IN_FLIGHT) await pending.shift();
        start(frame);
      }
      for (;;) {
        while (pending.length >= FILTERS_IN_FLIGHT) await pending.shift();
        const next = await rest.next();
        if (next.done) break;
        this.#onInputFrame();
        start(next.value);
      }
      await last;
    } finally {
      source.close();
      if (this.#stopped) void track.stop();
    }
  }

  async #pumpAudio(track: AudioTrack, source: AudioSource): Promise<void> {
    try {
      for await (const frame of track as AsyncIterable<AudioFrame>) await source.captureFrame(frame);
    } finally {
      source.close();
    }
  }

  /** Encoder output → one trickle segment per keyframe, each streamed as it is encoded. */
  async #pumpOutput(output: Readable): Promise<void> {
    const splitter = new TsKeyframeSplitter();
    let writer: TrickleSegmentWriter | undefined;
    const ends: Promise<void>[] = [];
    const finish = (w: TrickleSegmentWriter): void => {
      ends.push(w.end().then(() => { this.#counters.outputSegments += 1; }).catch((err: unknown) => {
        if (err instanceof TrickleError && err.code === 'CLOSED') {
          void this.stop('output channel closed');
          return;
        }
        if (!this.#stopped) this.#log.warn({ seq: w.seq, err: err instanceof Error ? err.message : String(err) }, 'output segment not delivered');
      }));
    };
    const handle = async (events: ReturnType<TsKeyframeSplitter['push']>): Promise<void> => {
      for (const e of events) {
        if (e.kind === 'start') {
          if (writer) finish(writer);
          writer = this.#outputPub.closed ? undefined : this.#outputPub.next();
        } else if (writer) {
          await writer.write(e.bytes);
        }
      }
    };
    try {
      for await (const chunk of output as AsyncIterable<Buffer>) await handle(splitter.push(chunk));
      await handle(splitter.end());
    } finally {
      if (writer) finish(writer);
      await Promise.all(ends);
    }
  }
}
