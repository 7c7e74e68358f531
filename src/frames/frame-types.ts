/**
 * Frame types of mediagate's frame API (decode and encode sides share them).
 *
 * Shapes follow aiortc's `VideoFrame`/`AudioFrame` (`pts` + `time_base`) and LiveKit's raw
 * media frames: video on a 90 kHz clock (the MPEG-TS / RTP video clock, RFC 3551 §5), audio
 * frames of 20 ms with `timeBase` 1/sampleRate. See docs/frames.md.
 */

/** A rational number `num/den`, used as a time base (seconds per tick). */
export interface Rational { readonly num: number; readonly den: number }

/**
 * Raw video pixel layouts:
 * - `yuv420p`: planar Y, then U, then V; U/V are (width/2)×(height/2); `width*height*3/2` bytes.
 * - `rgb24`: packed R,G,B per pixel; `width*height*3` bytes.
 * - `rgba`: packed R,G,B,A per pixel; `width*height*4` bytes.
 */
export type VideoPixelFormat = 'yuv420p' | 'rgb24' | 'rgba';

/** One decoded (or to-be-encoded) video picture. */
export interface VideoFrame {
  readonly kind: 'video';
  /** Pixels. */
  readonly width: number;
  /** Pixels. */
  readonly height: number;
  readonly format: VideoPixelFormat;
  /** Tightly packed pixels in `format` (no row padding). */
  readonly data: Buffer;
  /** in timeBase units */
  readonly pts: number;
  /** Always `{ num: 1, den: 90000 }`. */
  readonly timeBase: Rational;
}

/** 20 ms (sampleRate/50 samples per channel; the last frame of a track may be shorter) of PCM. */
export interface AudioFrame {
  readonly kind: 'audio';
  /** Hz. */
  readonly sampleRate: number;
  readonly channels: number;
  readonly samplesPerChannel: number;
  readonly format: 's16';
  /** interleaved s16le; `samplesPerChannel * channels * 2` bytes */
  readonly data: Buffer;
  /** In timeBase units (samples since the start of the track). */
  readonly pts: number;
  /** `{ num: 1, den: sampleRate }`. */
  readonly timeBase: Rational;
}

/** Either kind of frame. */
export type Frame = VideoFrame | AudioFrame;

/** `live` while frames may still arrive; `ended` after the end of media, a failure or `stop()`. */
export type TrackState = 'live' | 'ended';

/** Why a track cannot deliver a frame. */
export type MediaStreamErrorCode = 'ENDED' | 'MEDIA_FAILED';

/**
 * The typed error of the frame API.
 * - `ENDED`: the track has ended (end of media or `stop()`) and has no more frames.
 * - `MEDIA_FAILED`: the media could not be read or decoded; `message` carries ffmpeg's reason.
 */
export class MediaStreamError extends Error {
  readonly code: MediaStreamErrorCode;

  constructor(code: MediaStreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaStreamError';
    this.code = code;
  }
}

/** The 90 kHz video time base every `VideoFrame` carries. */
export const VIDEO_TIME_BASE: Rational = Object.freeze({ num: 1, den: 90000 });

/** Bytes of one tightly packed frame of `format` at `width`×`height`. */
export function videoFrameBytes(width: number, height: number, format: VideoPixelFormat): number {
  switch (format) {
    case 'yuv420p': return width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
    case 'rgb24': return width * height * 3;
    case 'rgba': return width * height * 4;
  }
}
