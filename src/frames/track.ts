/**
 * Tracks: a queue of decoded frames between one producer (an ffmpeg decoder, a test
 * generator) and one consumer, shaped like aiortc's `MediaStreamTrack` (`recv()`,
 * `readyState`, `stop()`, an `ended` event) with async iteration as LiveKit's streams have.
 *
 * Backpressure (docs/frames.md "Backpressure"):
 * - video (`overflow: 'drop-oldest'`, the default): at most `maxQueued` frames wait; a new
 *   frame beyond that drops the oldest waiting one and counts it in `droppedFrames`. The
 *   producer is never slowed, so a live source stays live.
 * - audio (and video with `overflow: 'wait'`): nothing is dropped; when `maxQueued` frames
 *   wait the producer is paused (for ffmpeg: its pipe is no longer read, so it blocks on
 *   write) and resumed once the queue is down to half.
 * Either way memory is bounded by `maxQueued` frames plus the producer's pipe buffers.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { MediaStreamError, type AudioFrame, type Frame, type TrackState, type VideoFrame } from './frame-types.ts';

/** What a track needs from whoever produces its frames. */
export interface TrackProducer {
  /** Stop producing for this track (kill the decoder once no track needs it); resolves when done. */
  stop(): Promise<void>;
  /** Stop delivering until `resume()` (overflow `wait` only). */
  pause?(): void;
  resume?(): void;
}

/** How a producer hands frames to its track. */
export interface FrameFeed<F extends Frame> {
  /** Queues one frame (ignored after `stop()` or the end). */
  push(frame: F): void;
  /** No more frames: the end of media, or `failure` (MEDIA_FAILED). Frames already queued are still delivered. Idempotent. */
  end(failure?: MediaStreamError): void;
  /** False once the consumer stopped the track: the producer may discard its frames. */
  readonly wanted: boolean;
}

/** What happens when `maxQueued` frames wait and another arrives. */
export type TrackOverflow = 'drop-oldest' | 'wait';

export interface TrackInit<F extends Frame> {
  readonly producer: TrackProducer;
  /** Frames that may wait for the consumer, ≥ 1. */
  readonly maxQueued: number;
  readonly overflow: TrackOverflow;
  /** Receives the feed the producer pushes into (called once, synchronously). */
  readonly attach: (feed: FrameFeed<F>) => void;
}

export interface TrackEvents {
  /** The track has ended: `stop()`, or the end of media/a failure once every queued frame was received. */
  ended: [];
}

/** The common queue of {@link VideoTrack} and {@link AudioTrack}. */
abstract class FrameTrack<F extends Frame> extends EventEmitter<TrackEvents> {
  /** A random UUID. */
  readonly id: string = randomUUID();
  abstract readonly kind: F['kind'];
  readonly #producer: TrackProducer;
  readonly #maxQueued: number;
  readonly #overflow: TrackOverflow;
  #queue: F[] = [];
  #waiters: { resolve: (frame: F) => void; reject: (err: MediaStreamError) => void }[] = [];
  #sourceEnded = false;
  #failure: MediaStreamError | undefined;
  #stopped = false;
  #state: TrackState = 'live';
  #paused = false;
  #dropped = 0;
  #stopping: Promise<void> | undefined;

  /** @internal Tracks are made by openTracks()/openVideoTrack()/openAudioTrack()/testVideoTrack()/testAudioTrack(). */
  constructor(init: TrackInit<F>) {
    super();
    if (!Number.isInteger(init.maxQueued) || init.maxQueued < 1) throw new RangeError(`maxQueued must be an integer ≥ 1, got ${init.maxQueued}`);
    this.#producer = init.producer;
    this.#maxQueued = init.maxQueued;
    this.#overflow = init.overflow;
    const track = this;
    init.attach({
      push: (frame) => this.#push(frame),
      end: (failure) => this.#end(failure),
      get wanted() {
        return !track.#stopped;
      },
    });
  }

  /** `live` while frames may still be received; `ended` after `stop()`, or once the end of media (or a failure) was reached and every queued frame received. */
  get readyState(): TrackState {
    return this.#state;
  }

  /** Frames waiting to be received now (≤ the queue bound, except briefly while a paused producer flushes). */
  get queuedFrames(): number {
    return this.#queue.length;
  }

  /** Frames dropped because the consumer was behind (overflow `drop-oldest` only; else always 0). */
  protected get dropped(): number {
    return this.#dropped;
  }

  /**
   * The next frame, in order.
   * @throws MediaStreamError `ENDED` once the track has ended (end of media or `stop()`);
   *   `MEDIA_FAILED` (with ffmpeg's reason) when the media failed, after the frames received before the failure.
   */
  recv(): Promise<F> {
    const frame = this.#queue.shift();
    if (frame !== undefined) {
      this.#afterTake();
      return Promise.resolve(frame);
    }
    if (this.#stopped || this.#sourceEnded) {
      this.#markEnded();
      return Promise.reject(this.#terminalError());
    }
    return new Promise<F>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Ends the track now: queued frames are discarded, pending `recv()` calls reject `ENDED`,
   * and the producer is stopped (an ffmpeg is killed once no track of its open needs it).
   * Idempotent; resolves once the producer has stopped (no child process left).
   */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopped = true;
    this.#queue = [];
    // A paused producer may still feed another track of the same decoder.
    if (this.#paused) {
      this.#paused = false;
      this.#producer.resume?.();
    }
    this.#markEnded();
    this.#rejectWaiters();
    this.#stopping = this.#producer.stop();
    return this.#stopping;
  }

  /**
   * Frames until the end of media; the loop ends cleanly at the end and throws
   * MediaStreamError `MEDIA_FAILED` on a failure. Leaving the loop early (`break`, an
   * exception) stops the track.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<F, void, undefined> {
    try {
      for (;;) {
        let frame: F;
        try {
          frame = await this.recv();
        } catch (err) {
          if (err instanceof MediaStreamError && err.code === 'ENDED') return;
          throw err;
        }
        yield frame;
      }
    } finally {
      await this.stop();
    }
  }

  #push(frame: F): void {
    if (this.#stopped || this.#sourceEnded) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve(frame);
      return;
    }
    this.#queue.push(frame);
    if (this.#queue.length > this.#maxQueued && this.#overflow === 'drop-oldest') {
      this.#queue.shift();
      this.#dropped++;
    } else if (this.#queue.length >= this.#maxQueued && this.#overflow === 'wait' && !this.#paused) {
      this.#paused = true;
      this.#producer.pause?.();
    }
  }

  #afterTake(): void {
    if (this.#paused && this.#queue.length <= this.#maxQueued / 2) {
      this.#paused = false;
      this.#producer.resume?.();
    }
    if (this.#sourceEnded && this.#queue.length === 0) this.#markEnded();
  }

  #end(failure?: MediaStreamError): void {
    if (this.#sourceEnded || this.#stopped) return;
    this.#sourceEnded = true;
    this.#failure = failure;
    if (this.#queue.length === 0) {
      this.#markEnded();
      this.#rejectWaiters();
    }
  }

  #terminalError(): MediaStreamError {
    if (this.#failure && !this.#stopped) return this.#failure;
    return new MediaStreamError('ENDED', `${this.kind} track ${this.id} has ended`);
  }

  #rejectWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#terminalError());
  }

  #markEnded(): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    this.emit('ended');
  }
}

/** A track of decoded {@link VideoFrame}s (90 kHz pts). */
export class VideoTrack extends FrameTrack<VideoFrame> {
  readonly kind = 'video' as const;

  /** Frames dropped oldest-first because the consumer was behind (0 with overflow `wait`). */
  get droppedFrames(): number {
    return this.dropped;
  }
}

/** A track of 20 ms {@link AudioFrame}s (the last may be shorter); never drops: a slow consumer pauses the producer. */
export class AudioTrack extends FrameTrack<AudioFrame> {
  readonly kind = 'audio' as const;
}
