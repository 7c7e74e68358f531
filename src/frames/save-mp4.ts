/**
 * `saveMp4`: frames to an MP4 file (H.264 + AAC) through the same encoder as `publish`
 * (publish.ts, media/raw-encoder.ts), written under a temporary name beside `path` and
 * renamed only when ffmpeg finished, so a failure never leaves a partial file at `path`.
 */
import { randomUUID } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AudioFrame, VideoFrame } from './frame-types.ts';
import { startEncoding, type PublishOptions } from './publish.ts';
import { AudioSource, VideoSource } from './source.ts';

export interface SaveMp4Options extends Omit<PublishOptions, 'preset'> {
  /**
   * Output frames per second; default from the first two video frames' pts difference
   * (rounded to 1/1000 fps), 30 when there is only one frame.
   */
  readonly frameRate?: number;
  /** x264 preset; default `veryfast` (a file is not latency bound). */
  readonly preset?: string;
}

/** What a file can hold: video frames, audio frames, or both (read concurrently). */
export interface SaveMp4Sources {
  readonly video?: AsyncIterable<VideoFrame>;
  readonly audio?: AsyncIterable<AudioFrame>;
}

const DEFAULT_FRAME_RATE = 30;

/**
 * Encodes the frames into an MP4 at `path` (replaced if it exists). The video's size, pixel
 * format and (unless given) frame rate come from its first frames; the audio's rate and
 * channels from its first frame. Frames are timed by their pts on a constant-rate grid
 * (source.ts). The iterables are read to their end (or returned early on failure).
 * @returns the number of video frames and audio samples per channel written
 * @throws TypeError when neither iterable is given, or a frame differs from the first one's
 *   shape; MediaStreamError `MEDIA_FAILED` when ffmpeg fails; whatever an iterable throws.
 *   In every failure case nothing is left at `path` (nor a temporary file).
 */
export async function saveMp4(path: string, sources: SaveMp4Sources, options: SaveMp4Options = {}): Promise<{ videoFrames: number; audioSamples: number }> {
  if (!sources.video && !sources.audio) throw new TypeError('saveMp4 needs video frames, audio frames or both');
  const videoIt = sources.video?.[Symbol.asyncIterator]();
  const audioIt = sources.audio?.[Symbol.asyncIterator]();
  const temp = join(dirname(path), `.${basename(path)}.${randomUUID()}.partial.mp4`);
  let stopEncoder: (() => Promise<void>) | undefined;
  try {
    // The first frames of both at once: one decoder may be producing both (and never drops audio).
    const [v0, a0] = await Promise.all([videoIt?.next(), audioIt?.next()]);
    const firstVideo = v0 && !v0.done ? v0.value : undefined;
    const firstAudio = a0 && !a0.done ? a0.value : undefined;
    if (!firstVideo && !firstAudio) throw new TypeError('saveMp4 got no frames');
    let secondVideo: VideoFrame | undefined;
    let frameRate = options.frameRate;
    if (firstVideo && frameRate === undefined) {
      const v1 = await videoIt!.next();
      secondVideo = v1.done ? undefined : v1.value;
      const deltaSec = secondVideo ? ((secondVideo.pts - firstVideo.pts) * firstVideo.timeBase.num) / firstVideo.timeBase.den : 0;
      frameRate = deltaSec > 0 ? Math.round(1000 / deltaSec) / 1000 : DEFAULT_FRAME_RATE;
    }
    const video = firstVideo ? new VideoSource({ width: firstVideo.width, height: firstVideo.height, format: firstVideo.format, frameRate: frameRate! }) : undefined;
    const audio = firstAudio ? new AudioSource({ sampleRate: firstAudio.sampleRate, channels: firstAudio.channels }) : undefined;
    const { publication } = startEncoding({ kind: 'mp4', path: temp }, { ...(video ? { video } : {}), ...(audio ? { audio } : {}) }, {
      preset: 'veryfast', zeroLatency: false, ...options,
    });
    stopEncoder = () => publication.stop();
    const pump = async <F>(source: VideoSource | AudioSource | undefined, first: F[], rest: AsyncIterator<F> | undefined): Promise<void> => {
      if (!source || !rest) return;
      const capture = source.captureFrame.bind(source) as (f: F) => Promise<void>;
      for (const f of first) await capture(f);
      for (let r = await rest.next(); !r.done; r = await rest.next()) await capture(r.value);
      source.close();
    };
    const pumps = Promise.all([
      pump(video, [firstVideo, secondVideo].filter((f) => f !== undefined), videoIt),
      pump(audio, firstAudio ? [firstAudio] : [], audioIt),
    ]);
    // An encoder failure ends the pumps too (their captureFrame rejects); wait for both sides.
    await Promise.all([pumps, publication.done]);
    await rename(temp, path);
    return { videoFrames: video?.framesWritten ?? 0, audioSamples: audio?.samplesWritten ?? 0 };
  } catch (err) {
    await stopEncoder?.();
    await Promise.allSettled([videoIt?.return?.(), audioIt?.return?.()]);
    await rm(temp, { force: true });
    throw err;
  }
}
