/**
 * Test sources, as aiortc's `VideoStreamTrack`/`AudioStreamTrack` defaults: a 640×480 green
 * picture at 30 fps (all-zero yuv420p is green: Y = U = V = 0) and 20 ms frames of silence at
 * 48 kHz, both paced in real time from the moment they are created. They never end by
 * themselves: `stop()` them.
 */
import { VIDEO_TIME_BASE, videoFrameBytes, type AudioFrame, type VideoFrame } from './frame-types.ts';
import { AudioTrack, VideoTrack, type FrameFeed } from './track.ts';
import { DEFAULT_MAX_QUEUED_VIDEO_FRAMES } from './open.ts';

export interface TestVideoTrackOptions {
  /** Pixels; default 640. */
  readonly width?: number;
  /** Pixels; default 480. */
  readonly height?: number;
  /** Default 30. */
  readonly frameRate?: number;
  /** Default {@link DEFAULT_MAX_QUEUED_VIDEO_FRAMES}; older frames are dropped when the consumer is behind. */
  readonly maxQueuedVideoFrames?: number;
}

export interface TestAudioTrackOptions {
  /** Hz, a multiple of 50; default 48000. */
  readonly sampleRate?: number;
  /** Default 2. */
  readonly channels?: number;
}

/**
 * Runs `tick(n)` at `n * periodMs` after the start (no drift: each delay is computed from the
 * start time); `stop()` ends it.
 */
function pacer(periodMs: number, tick: (n: number) => void): { stop(): void; pause(): void; resume(): void } {
  const startMs = performance.now();
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let paused = false;
  const schedule = (): void => {
    if (stopped || paused) return;
    timer = setTimeout(() => {
      tick(n++);
      schedule();
    }, Math.max(0, startMs + n * periodMs - performance.now()));
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
    pause: () => {
      paused = true;
      clearTimeout(timer);
    },
    resume: () => {
      if (!paused) return;
      paused = false;
      schedule();
    },
  };
}

/** A paced 640×480 green yuv420p track at 30 fps (pts n × 3000 on 1/90000). */
export function testVideoTrack(options: TestVideoTrackOptions = {}): VideoTrack {
  const width = options.width ?? 640;
  const height = options.height ?? 480;
  const frameRate = options.frameRate ?? 30;
  const data = Buffer.alloc(videoFrameBytes(width, height, 'yuv420p'));
  let feed: FrameFeed<VideoFrame> | undefined;
  const clock = pacer(1000 / frameRate, (n) => {
    feed!.push({ kind: 'video', width, height, format: 'yuv420p', data, pts: Math.round((n * 90000) / frameRate), timeBase: VIDEO_TIME_BASE });
  });
  return new VideoTrack({
    producer: { stop: async () => clock.stop() },
    maxQueued: options.maxQueuedVideoFrames ?? DEFAULT_MAX_QUEUED_VIDEO_FRAMES,
    overflow: 'drop-oldest',
    attach: (f) => (feed = f),
  });
}

/** A paced track of 20 ms silent s16 frames (48 kHz stereo by default; pts n × sampleRate/50 on 1/sampleRate). */
export function testAudioTrack(options: TestAudioTrackOptions = {}): AudioTrack {
  const sampleRate = options.sampleRate ?? 48000;
  const channels = options.channels ?? 2;
  if (!Number.isInteger(sampleRate) || sampleRate % 50 !== 0) throw new RangeError(`sampleRate must be a multiple of 50, got ${sampleRate}`);
  const samples = sampleRate / 50;
  const data = Buffer.alloc(samples * channels * 2);
  let feed: FrameFeed<AudioFrame> | undefined;
  const clock = pacer(20, (n) => {
    feed!.push({ kind: 'audio', sampleRate, channels, samplesPerChannel: samples, format: 's16', data, pts: n * samples, timeBase: { num: 1, den: sampleRate } });
  });
  return new AudioTrack({
    producer: { stop: async () => clock.stop(), pause: () => clock.pause(), resume: () => clock.resume() },
    maxQueued: 50,
    overflow: 'wait',
    attach: (f) => (feed = f),
  });
}
