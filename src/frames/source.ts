/**
 * Sources of frames to publish (the encode half of the frame API; docs/frames.md,
 * "Publishing frames"): {@link VideoSource} and {@link AudioSource} take frames with
 * `captureFrame()` and hand their bytes to the encoder they are published with
 * (publish.ts `publish`, save-mp4.ts `saveMp4`), in the shape of LiveKit's
 * `VideoSource.captureFrame` / `AudioSource.captureFrame`.
 *
 * Timing. The encoder runs at a constant frame rate (media/raw-encoder.ts): frame n of the
 * output is shown at n / frameRate s. A source places each frame on that grid by its pts,
 * relative to its first frame: slot = round((pts − first pts) × frameRate), in seconds of
 * its timeBase. A frame for a slot already written is skipped (`skippedFrames`: input faster
 * than `frameRate`); a gap of up to {@link MAX_FILL_SEC} is filled by repeating the previous
 * frame (`repeatedFrames`: frames dropped upstream, e.g. by a slow consumer's track, keep
 * the output's timing); a jump of more than that either way is a discontinuity: the grid
 * restarts at that frame, without filling. Audio is placed by sample count the same way: a
 * gap of up to {@link MAX_FILL_SEC} is filled with silence (`silenceSamples`), samples are
 * never dropped. Each track's timeline starts at its own first frame.
 *
 * Backpressure: `captureFrame` resolves once the encoder's pipe took the bytes, so a
 * producer that awaits it runs at the encoder's pace and nothing queues in memory (calls
 * that are not awaited are queued in call order). Before the source is published,
 * `captureFrame` waits for it. With audio and video in one publication, feed them
 * concurrently (one loop each): the encoder reads its two inputs in step.
 */
import { MediaStreamError, videoFrameBytes, type AudioFrame, type Rational, type VideoFrame, type VideoPixelFormat } from './frame-types.ts';

/** Longest gap filled by repeated frames or silence, seconds; longer jumps restart the grid. */
export const MAX_FILL_SEC = 1;

/** Where a published source writes its bytes (implemented by publish.ts over the encoder). @internal */
export interface FrameSink {
  /** Resolves when the encoder took the bytes; rejects with a MediaStreamError when it cannot. */
  write(bytes: Buffer): Promise<void>;
  /** No more bytes. */
  end(): void;
}

/** The key of a source's package-internal attach method (not re-exported from index.ts). @internal */
export const ATTACH_SINK = Symbol('attachSink');

export interface VideoSourceOptions {
  /** Pixels, positive integers (odd sizes are padded by one pixel when encoded). */
  readonly width: number;
  readonly height: number;
  /** Pixel layout of the frames given; default `yuv420p`. */
  readonly format?: VideoPixelFormat;
  /** Frames per second of the output, in (0, 240]. */
  readonly frameRate: number;
}

export interface AudioSourceOptions {
  /** Hz; default 48000. */
  readonly sampleRate?: number;
  /** 1 or 2; default 2. */
  readonly channels?: number;
}

/** The common part: queueing of captures, attaching to a sink, close. */
abstract class FrameSourceBase<F> {
  #sink: FrameSink | undefined;
  #whenAttached: Promise<FrameSink>;
  #resolveAttached!: (sink: FrameSink) => void;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #attached = false;

  constructor() {
    this.#whenAttached = new Promise((resolve) => { this.#resolveAttached = resolve; });
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True once the source was given to a publication (a source feeds one). */
  get published(): boolean {
    return this.#attached;
  }

  /**
   * Takes one frame.
   * @returns resolves when the encoder took its bytes (see the module doc: backpressure)
   * @throws TypeError when the frame does not match the source (kind, size, format, rate,
   *   byte length); MediaStreamError `ENDED` after `close()` or once the publication
   *   stopped, `MEDIA_FAILED` (with ffmpeg's reason) when the encoder failed
   */
  captureFrame(frame: F): Promise<void> {
    if (this.#closed) return Promise.reject(new MediaStreamError('ENDED', 'the source is closed'));
    try {
      this.check(frame);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#queue.then(async () => {
      const sink = this.#sink ?? await this.#whenAttached;
      for (const bytes of this.place(frame)) await sink.write(bytes);
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** No more frames: the encoder's input for this source ends once the queued captures are written. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    void this.#queue.then(() => this.#sink?.end());
  }

  /** @internal publish.ts: connects the source to an encoder's input. @throws Error when already published. */
  [ATTACH_SINK](sink: FrameSink): void {
    if (this.#attached) throw new Error('this source is already published; a source feeds one publication');
    this.#attached = true;
    this.#sink = sink;
    this.#resolveAttached(sink);
    if (this.#closed) void this.#queue.then(() => sink.end());
  }

  /** @throws TypeError when the frame does not fit the source. */
  protected abstract check(frame: F): void;
  /** The byte chunks to write for this frame (none when skipped; repeats or silence first). */
  protected abstract place(frame: F): Buffer[];
}

/** Seconds of `pts` in `timeBase`. */
function seconds(pts: number, timeBase: Rational): number {
  return (pts * timeBase.num) / timeBase.den;
}

/** Video frames to publish (see the module doc). */
export class VideoSource extends FrameSourceBase<VideoFrame> {
  readonly kind = 'video' as const;
  readonly width: number;
  readonly height: number;
  readonly format: VideoPixelFormat;
  readonly frameRate: number;
  /** Bytes of one frame. */
  readonly frameBytes: number;
  #firstSec: number | undefined;
  #nextSlot = 0;
  #last: Buffer | undefined;
  #skipped = 0;
  #repeated = 0;

  /** @throws RangeError for a bad size, format or frame rate. */
  constructor(options: VideoSourceOptions) {
    super();
    const format = options.format ?? 'yuv420p';
    if (!(Number.isInteger(options.width) && options.width > 0 && Number.isInteger(options.height) && options.height > 0)) {
      throw new RangeError(`width and height must be positive integers, got ${options.width}x${options.height}`);
    }
    if (!['yuv420p', 'rgb24', 'rgba'].includes(format)) throw new RangeError(`format must be yuv420p, rgb24 or rgba, got ${String(format)}`);
    if (!(Number.isFinite(options.frameRate) && options.frameRate > 0 && options.frameRate <= 240)) throw new RangeError(`frameRate must be in (0, 240], got ${options.frameRate}`);
    this.width = options.width;
    this.height = options.height;
    this.format = format;
    this.frameRate = options.frameRate;
    this.frameBytes = videoFrameBytes(this.width, this.height, format);
  }

  /** Frames not written because their slot was already written (input faster than `frameRate`). */
  get skippedFrames(): number {
    return this.#skipped;
  }

  /** Frames written again to fill a gap in the pts. */
  get repeatedFrames(): number {
    return this.#repeated;
  }

  /** Frames given to the encoder so far, repeats included (= output frames). */
  get framesWritten(): number {
    return this.#nextSlot;
  }

  protected check(frame: VideoFrame): void {
    if (frame?.kind !== 'video') throw new TypeError('a VideoSource takes video frames');
    if (frame.width !== this.width || frame.height !== this.height || frame.format !== this.format) {
      throw new TypeError(`frame is ${frame.width}x${frame.height} ${frame.format}, the source is ${this.width}x${this.height} ${this.format}`);
    }
    if (frame.data.length !== this.frameBytes) throw new TypeError(`frame data is ${frame.data.length} bytes, ${this.frameBytes} expected for ${this.width}x${this.height} ${this.format}`);
    if (!Number.isFinite(frame.pts)) throw new TypeError(`frame pts must be a finite number, got ${frame.pts}`);
  }

  protected place(frame: VideoFrame): Buffer[] {
    const sec = seconds(frame.pts, frame.timeBase);
    this.#firstSec ??= sec;
    let slot = Math.round((sec - this.#firstSec) * this.frameRate);
    const maxFill = Math.ceil(MAX_FILL_SEC * this.frameRate);
    if (slot - this.#nextSlot > maxFill || this.#nextSlot - slot > maxFill) {
      // A discontinuity: restart the grid at this frame.
      this.#firstSec = sec - this.#nextSlot / this.frameRate;
      slot = this.#nextSlot;
    }
    if (slot < this.#nextSlot) {
      this.#skipped++;
      return [];
    }
    const out: Buffer[] = [];
    for (; this.#nextSlot < slot && this.#last; this.#nextSlot++, this.#repeated++) out.push(this.#last);
    this.#nextSlot = slot + 1;
    // Copied: the caller may reuse its buffer once captureFrame resolved, and a later gap repeats this one.
    this.#last = Buffer.from(frame.data);
    out.push(this.#last);
    return out;
  }
}

/** Audio frames to publish: interleaved s16 PCM (see the module doc). */
export class AudioSource extends FrameSourceBase<AudioFrame> {
  readonly kind = 'audio' as const;
  readonly sampleRate: number;
  readonly channels: number;
  #firstSample: number | undefined;
  #samplesWritten = 0;
  #silence = 0;

  /** @throws RangeError for a bad sample rate or channel count. */
  constructor(options: AudioSourceOptions = {}) {
    super();
    this.sampleRate = options.sampleRate ?? 48_000;
    this.channels = options.channels ?? 2;
    if (!(Number.isInteger(this.sampleRate) && this.sampleRate >= 8000 && this.sampleRate <= 192_000)) throw new RangeError(`sampleRate must be an integer 8000-192000, got ${this.sampleRate}`);
    if (this.channels !== 1 && this.channels !== 2) throw new RangeError(`channels must be 1 or 2, got ${this.channels}`);
  }

  /** Samples per channel of silence written to fill gaps in the pts. */
  get silenceSamples(): number {
    return this.#silence;
  }

  /** Samples per channel given to the encoder so far, silence included. */
  get samplesWritten(): number {
    return this.#samplesWritten;
  }

  protected check(frame: AudioFrame): void {
    if (frame?.kind !== 'audio') throw new TypeError('an AudioSource takes audio frames');
    if (frame.sampleRate !== this.sampleRate || frame.channels !== this.channels || frame.format !== 's16') {
      throw new TypeError(`frame is ${frame.sampleRate} Hz ${frame.channels} ch ${frame.format}, the source is ${this.sampleRate} Hz ${this.channels} ch s16`);
    }
    if (frame.data.length !== frame.samplesPerChannel * frame.channels * 2) {
      throw new TypeError(`frame data is ${frame.data.length} bytes, ${frame.samplesPerChannel * frame.channels * 2} expected for ${frame.samplesPerChannel} samples × ${frame.channels} ch`);
    }
    if (!Number.isFinite(frame.pts)) throw new TypeError(`frame pts must be a finite number, got ${frame.pts}`);
  }

  protected place(frame: AudioFrame): Buffer[] {
    const at = Math.round(seconds(frame.pts, frame.timeBase) * this.sampleRate);
    this.#firstSample ??= at;
    let gap = at - this.#firstSample - this.#samplesWritten;
    if (Math.abs(gap) > MAX_FILL_SEC * this.sampleRate) {
      this.#firstSample = at - this.#samplesWritten;
      gap = 0;
    }
    const out: Buffer[] = [];
    if (gap > 0) {
      out.push(Buffer.alloc(gap * this.channels * 2));
      this.#silence += gap;
      this.#samplesWritten += gap;
    }
    // Copied: the caller may reuse its buffer once captureFrame resolved.
    out.push(Buffer.from(frame.data));
    this.#samplesWritten += frame.samplesPerChannel;
    return out;
  }
}
