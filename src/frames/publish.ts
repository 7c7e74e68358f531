/**
 * Publishing frames (docs/frames.md, "Publishing frames"): one ffmpeg per publication
 * (media/raw-encoder.ts) encodes a {@link VideoSource} and/or an {@link AudioSource} to
 * H.264 (+AAC) and sends it
 * - `{ rtmpUrl }`: as an RTMP publish, e.g. to mediagate's own ingest
 *   (`rtmp://<gateway>:<rtmp port>/live/<stream key>`), so the new stream gets a ladder, HLS,
 *   a recording and billing like any other publish; the stream key never appears on
 *   ffmpeg's command line or in logs;
 * - `{ mpegts: true }`: as an MPEG-TS byte stream on {@link Publication.output} (e.g. for
 *   trickle segments or a file).
 * Both use low-latency x264 (`ultrafast`, `zerolatency`, no B-frames) and a keyframe every
 * `keyframeIntervalSec` (default 2 s).
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { RawEncoder, RawEncoderError, type RawEncoderTarget } from '../media/raw-encoder.ts';
import { MediaStreamError } from './frame-types.ts';
import { ATTACH_SINK, type AudioSource, type FrameSink, type VideoSource } from './source.ts';

/** Where a publication goes. */
export type PublishTarget =
  /** An RTMP URL with the stream key as its last path segment, e.g. `rtmp://127.0.0.1:1935/live/<key>`. */
  | { readonly rtmpUrl: string }
  /** An MPEG-TS byte stream on {@link Publication.output}. */
  | { readonly mpegts: true };

export interface PublishOptions {
  /** Seconds between keyframes, > 0; default 2 (mediagate cuts its segments at keyframes). */
  readonly keyframeIntervalSec?: number;
  /** Video bitrate, kbit/s; default none (x264 CRF 23). */
  readonly videoBitrateKbps?: number;
  /** AAC bitrate, kbit/s; default 128. */
  readonly audioBitrateKbps?: number;
  /** x264 preset; default `ultrafast`. */
  readonly preset?: string;
  /** Owner of the ffmpeg child (closing it stops the publication); default one of its own. */
  readonly supervisor?: ChildSupervisor;
  readonly logger?: Logger;
  /** The ffmpeg program; default `ffmpeg` on PATH. */
  readonly ffmpegPath?: string;
}

/** A running publication. */
export interface Publication {
  /**
   * Resolves when the media ended (every source closed and ffmpeg finished) or after
   * {@link stop}; rejects with MediaStreamError `MEDIA_FAILED` carrying ffmpeg's reason
   * (e.g. the RTMP server refused the publish or went away).
   */
  readonly done: Promise<void>;
  /** The MPEG-TS bytes (target `{ mpegts: true }` only). Read it: an unread stream stalls the encoder and so `captureFrame`. */
  readonly output?: Readable;
  /** The encoder's process id. */
  readonly pid: number | undefined;
  /**
   * Stops now: ffmpeg gets SIGTERM (SIGKILL after 2 s) and the sources' further
   * `captureFrame` calls reject with MediaStreamError `ENDED`. Idempotent; resolves once
   * ffmpeg has exited.
   */
  stop(): Promise<void>;
}

/** The sources of a publication; at least one. */
export interface PublishSources {
  readonly video?: VideoSource;
  readonly audio?: AudioSource;
}

/**
 * Starts publishing `sources` to `target` (see the module doc).
 * @throws TypeError when there is no source or the target is neither `{ rtmpUrl }` nor
 *   `{ mpegts: true }`; Error when a source is already published
 */
export function publish(target: PublishTarget, sources: PublishSources, options: PublishOptions = {}): Publication {
  const encoderTarget = toEncoderTarget(target);
  return startEncoding(encoderTarget, sources, options).publication;
}

/** @internal publish and saveMp4: one encoder fed by the sources. */
export function startEncoding(target: RawEncoderTarget, sources: PublishSources, options: PublishOptions & { zeroLatency?: boolean }): { publication: Publication } {
  const { video, audio } = sources;
  if (!video && !audio) throw new TypeError('publish needs a video source, an audio source or both');
  if (video?.published || audio?.published) throw new Error('this source is already published; a source feeds one publication');
  const encoder = new RawEncoder({
    target,
    ...(video ? { video: { width: video.width, height: video.height, pixelFormat: video.format, frameRate: video.frameRate } } : {}),
    ...(audio ? { audio: { sampleRate: audio.sampleRate, channels: audio.channels } } : {}),
    ...pick(options),
  });
  const toMediaError = (err: unknown): MediaStreamError => (
    err instanceof RawEncoderError && err.reason !== 'ended'
      ? new MediaStreamError('MEDIA_FAILED', `the encoder failed: ${err.message}`, { cause: err })
      : new MediaStreamError('ENDED', 'the publication has ended', { cause: err }));
  const sink = (write: (b: Buffer) => Promise<void>, end: () => void): FrameSink => ({
    write: (bytes) => write(bytes).catch((err: unknown) => { throw toMediaError(err); }),
    end,
  });
  video?.[ATTACH_SINK](sink((b) => encoder.writeVideo(b), () => encoder.endVideo()));
  audio?.[ATTACH_SINK](sink((b) => encoder.writeAudio(b), () => encoder.endAudio()));
  const done = encoder.done.catch((err: unknown) => { throw toMediaError(err); });
  // A publication whose caller only uses stop() must not crash the process with an unhandled rejection.
  done.catch(() => undefined);
  return {
    publication: {
      done,
      ...(encoder.output ? { output: encoder.output } : {}),
      get pid() { return encoder.pid; },
      stop: () => encoder.stop(),
    },
  };
}

function toEncoderTarget(target: PublishTarget): RawEncoderTarget {
  if (target && 'rtmpUrl' in target && typeof target.rtmpUrl === 'string') {
    if (!/^rtmps?:\/\/[^/]+\/.+/i.test(target.rtmpUrl)) throw new TypeError('rtmpUrl must look like rtmp://host[:port]/<app>/<stream key>');
    return { kind: 'rtmp', url: target.rtmpUrl };
  }
  if (target && 'mpegts' in target && target.mpegts === true) return { kind: 'mpegts' };
  throw new TypeError('a publish target is { rtmpUrl } or { mpegts: true }');
}

function pick(o: PublishOptions & { zeroLatency?: boolean }): Partial<ConstructorParameters<typeof RawEncoder>[0]> {
  return {
    ...(o.keyframeIntervalSec !== undefined ? { keyframeIntervalSec: o.keyframeIntervalSec } : {}),
    ...(o.videoBitrateKbps !== undefined ? { videoBitrateKbps: o.videoBitrateKbps } : {}),
    ...(o.audioBitrateKbps !== undefined ? { audioBitrateKbps: o.audioBitrateKbps } : {}),
    ...(o.preset !== undefined ? { preset: o.preset } : {}),
    ...(o.zeroLatency !== undefined ? { zeroLatency: o.zeroLatency } : {}),
    ...(o.supervisor ? { supervisor: o.supervisor } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.ffmpegPath ? { ffmpegPath: o.ffmpegPath } : {}),
  };
}
