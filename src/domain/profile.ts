/**
 * Transcoding profiles: Livepeer's preset names and JSON profile format are the
 * interchange format (docs/wire-contract.md §3, from go-livepeer's `ffmpeg.VideoProfile`
 * and its JSON profile parser).
 */
import { GatewayError } from '../errors/gateway-error.ts';
import { isValidStreamName } from './stream-name.ts';

export type VideoEncoder = 'H.264' | 'HEVC';
/** H.264 profile; '' leaves the encoder default (x264: High for yuv420p). */
export type H264Profile = '' | 'baseline' | 'main' | 'high' | 'constrainedhigh';
/** GOP: `default` = one keyframe per segment target (fps × 2 s); `seconds` = a keyframe every N s; `intra` = all keyframes. */
export type GopSpec = { kind: 'default' } | { kind: 'seconds'; seconds: number } | { kind: 'intra' };

/** A requested rendition of the ladder, as configured (not yet fitted to a source). */
export interface VideoProfile {
  /** Rendition name, used in URLs and storage keys: `[A-Za-z0-9_-]{1,64}`. */
  readonly name: string;
  /** Requested box in pixels; the output fits inside it keeping the source aspect ratio. */
  readonly width: number;
  readonly height: number;
  /** Target video bitrate in bits per second (a cap when `quality` is set). */
  readonly bitrateBps: number;
  /** Frame rate numerator; 0 keeps the source rate. */
  readonly fps: number;
  /** Frame rate denominator; at least 1. */
  readonly fpsDen: number;
  readonly profile: H264Profile;
  readonly gop: GopSpec;
  readonly encoder: VideoEncoder;
  /** CRF (0..51); 0 means "not set" (bitrate mode). */
  readonly quality: number;
}

/** The source as measured (ffprobe of the source segment). */
export interface SourceVideoInfo {
  readonly width: number;
  readonly height: number;
  /** Frame rate as a fraction, e.g. 30000/1001. */
  readonly fpsNum: number;
  readonly fpsDen: number;
  /**
   * Clockwise rotation in degrees a player applies to display the picture upright (the
   * source's display matrix, media/probe.ts `rotationDeg`); default 0. With 90 or 270 the
   * displayed picture is `height` wide and `width` high, and renditions are fitted to that.
   */
  readonly rotationDeg?: 0 | 90 | 180 | 270;
}

/** The picture size as displayed: `width`×`height` swapped for a 90° or 270° rotation. */
export function displayedSize(source: SourceVideoInfo): { width: number; height: number } {
  return source.rotationDeg === 90 || source.rotationDeg === 270
    ? { width: source.height, height: source.width }
    : { width: source.width, height: source.height };
}

/**
 * A planned output rendition of a stream: the ladder fitted to the measured source, as ingest
 * stores it with the stream in the segment index (hls/segment-index-store.ts, JSON
 * `{name, width, height, bitrateBps}`: persisted state) and as playback and the control API
 * read it back. Its size and bitrate are shown in the master playlist until real segments
 * are measured.
 */
export interface RenditionPlan {
  /** The profile's name (`VideoProfile.name`). */
  readonly name: string;
  /** Expected output size in pixels (`FittedRendition.width`/`height`). */
  readonly width: number;
  readonly height: number;
  /** The profile's target video bitrate in bits per second. */
  readonly bitrateBps: number;
  /**
   * This rendition is the watermarked copy of the source at its own size (watermark
   * `applyToSource`, domain/source-lint.ts `playableSourceProfile`): players get it instead of
   * the unmarked `source`, which the master playlist leaves out and playback answers 404 for.
   * Absent: no.
   */
  readonly replacesSource?: true;
}

/** How a live stream comes in: an RTMP publish or HTTP-pushed segments. */
export type StreamProtocol = 'rtmp' | 'push';

/** A profile fitted to a source: the exact output the encoder is asked for. */
export interface FittedRendition {
  readonly profile: VideoProfile;
  /** Even output dimensions in pixels, inside both the requested box and the source. */
  readonly width: number;
  readonly height: number;
  /** Output frame rate fraction; never above the source rate. */
  readonly fpsNum: number;
  readonly fpsDen: number;
  /** Whether an fps filter is needed (output rate differs from the source rate). */
  readonly changesFps: boolean;
}

function preset(name: string, width: number, height: number, bitrateKbps: number, fps: number): VideoProfile {
  return {
    name, width, height, bitrateBps: bitrateKbps * 1000, fps, fpsDen: 1,
    profile: '', gop: { kind: 'default' }, encoder: 'H.264', quality: 0,
  };
}

/** Livepeer's named presets (go-livepeer `ffmpeg/videoProfile.go`), name → WxH, bitrate, fps. */
export const PRESETS: Readonly<Record<string, VideoProfile>> = Object.freeze(Object.fromEntries([
  preset('P720p60fps16x9', 1280, 720, 6000, 60),
  preset('P720p30fps16x9', 1280, 720, 4000, 30),
  preset('P720p25fps16x9', 1280, 720, 3500, 25),
  preset('P720p30fps4x3', 960, 720, 3500, 30),
  preset('P576p30fps16x9', 1024, 576, 1500, 30),
  preset('P576p25fps16x9', 1024, 576, 1500, 25),
  preset('P360p30fps16x9', 640, 360, 1200, 30),
  preset('P360p25fps16x9', 640, 360, 1000, 25),
  preset('P360p30fps4x3', 480, 360, 1000, 30),
  preset('P240p30fps16x9', 426, 240, 600, 30),
  preset('P240p25fps16x9', 426, 240, 600, 25),
  preset('P240p30fps4x3', 320, 240, 600, 30),
  preset('P144p30fps16x9', 256, 144, 400, 30),
].map((p) => [p.name, p])));

/**
 * Looks up presets by name.
 * @throws GatewayError INVALID_PROFILE naming the unknown preset and listing the known ones.
 */
export function presetsByName(names: readonly string[]): VideoProfile[] {
  return names.map((name) => {
    const found = PRESETS[name];
    if (!found) {
      throw new GatewayError('INVALID_PROFILE', `unknown preset "${String(name).slice(0, 64)}"; known presets: ${Object.keys(PRESETS).join(', ')}`);
    }
    return found;
  });
}

const MAX_DIMENSION = 7680;
const MAX_BITRATE_BPS = 200_000_000;

function fail(index: number, field: string, why: string): never {
  throw new GatewayError('INVALID_PROFILE', `profiles[${index}]${field ? `.${field}` : ''}: ${why}`);
}

function intField(obj: Record<string, unknown>, index: number, field: string, min: number, max: number, fallback?: number): number {
  const value = obj[field];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    fail(index, field, 'is required');
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(index, field, `must be an integer, got ${JSON.stringify(value)}`);
  if (value < min || value > max) fail(index, field, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function strField(obj: Record<string, unknown>, index: number, field: string): string {
  const value = obj[field];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') fail(index, field, `must be a string, got ${JSON.stringify(value)}`);
  return value;
}

const H264_PROFILES: Record<string, H264Profile> = {
  '': '', h264baseline: 'baseline', h264main: 'main', h264high: 'high', h264constrainedhigh: 'constrainedhigh',
};

/**
 * Parses one Livepeer JSON profile object (fields: name, width, height, bitrate (bps),
 * fps, fpsDen, profile, gop, encoder, quality).
 * @throws GatewayError INVALID_PROFILE naming `profiles[i].<field>` and the reason.
 */
export function parseProfile(raw: unknown, index = 0): VideoProfile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(index, '', 'must be an object');
  const obj = raw as Record<string, unknown>;
  const width = intField(obj, index, 'width', 16, MAX_DIMENSION);
  const height = intField(obj, index, 'height', 16, MAX_DIMENSION);
  const bitrateBps = intField(obj, index, 'bitrate', 1000, MAX_BITRATE_BPS);
  const fps = intField(obj, index, 'fps', 0, 240_000, 0);
  const fpsDen = intField(obj, index, 'fpsDen', 0, 1001, 0) || 1;
  if (fps / fpsDen > 240) fail(index, 'fps', `fps/fpsDen must be at most 240 frames per second, got ${fps}/${fpsDen}`);
  const quality = intField(obj, index, 'quality', 0, 51, 0);

  let name = strField(obj, index, 'name');
  if (name === '') name = `custom_${width}x${height}_${bitrateBps}`;
  if (!isValidStreamName(name)) fail(index, 'name', 'must match [A-Za-z0-9_-]{1,64} (it names the rendition in URLs)');
  if (name === 'source') fail(index, 'name', '"source" is reserved for the untouched input rendition');

  const profileText = strField(obj, index, 'profile').toLowerCase();
  const profile = H264_PROFILES[profileText];
  if (profile === undefined) fail(index, 'profile', `must be one of h264baseline, h264main, h264high, h264constrainedhigh, got "${profileText.slice(0, 32)}"`);

  const gopText = strField(obj, index, 'gop').trim();
  let gop: GopSpec = { kind: 'default' };
  if (gopText === 'intra') gop = { kind: 'intra' };
  else if (gopText !== '') {
    const seconds = Number(gopText);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 60) fail(index, 'gop', `must be "intra" or seconds in (0, 60], got "${gopText.slice(0, 32)}"`);
    gop = { kind: 'seconds', seconds };
  }

  const encoderText = strField(obj, index, 'encoder').toUpperCase();
  let encoder: VideoEncoder;
  if (encoderText === '' || encoderText === 'H.264' || encoderText === 'H264') encoder = 'H.264';
  else if (encoderText === 'HEVC' || encoderText === 'H.265') encoder = 'HEVC';
  else if (encoderText === 'VP8' || encoderText === 'VP9') fail(index, 'encoder', `${encoderText} cannot be carried in MPEG-TS HLS segments; use H.264 or HEVC`);
  else fail(index, 'encoder', `must be H.264 or HEVC, got "${encoderText.slice(0, 32)}"`);

  return { name, width, height, bitrateBps, fps, fpsDen, profile, gop, encoder, quality };
}

/**
 * Parses a ladder: an array whose items are preset names or JSON profile objects.
 * Rendition names must be unique.
 * @throws GatewayError INVALID_PROFILE
 */
export function parseLadder(raw: unknown): VideoProfile[] {
  if (!Array.isArray(raw)) throw new GatewayError('INVALID_PROFILE', 'profiles must be an array of preset names or profile objects');
  if (raw.length > 16) throw new GatewayError('INVALID_PROFILE', `at most 16 profiles per stream, got ${raw.length}`);
  const ladder = raw.map((item, i) => (typeof item === 'string' ? presetsByName([item])[0]! : parseProfile(item, i)));
  const seen = new Set<string>();
  for (const p of ladder) {
    if (seen.has(p.name)) throw new GatewayError('INVALID_PROFILE', `duplicate rendition name "${p.name}"`);
    seen.add(p.name);
  }
  return ladder;
}

/** Nearest even integer not above `limit` (x264 with yuv420p needs even dimensions). */
function evenWithin(n: number, limit: number): number {
  const rounded = Math.round(n / 2) * 2;
  return Math.max(2, rounded > limit ? Math.floor(limit / 2) * 2 : rounded);
}

/**
 * Fits a profile to the measured source: the output keeps the source aspect ratio,
 * fits inside the requested box, has even dimensions, and never exceeds the source
 * in size or frame rate (docs/wire-contract.md §3: keep aspect, never upscale). Dimensions round to the
 * nearest even number inside the box, so 1080p into P240p30fps16x9 gives 426x240 as Livepeer does.
 * A rotated source is fitted by its displayed size ({@link displayedSize}): a 640x360 picture
 * displayed at 90° gives 360x640 portrait renditions (the transcoder rotates the picture).
 *
 * @returns the fitted rendition, or `undefined` when the profile's box is larger than the
 *   source in both dimensions' limiting side (the rendition would be an upscale; the caller
 *   omits it from this stream's ladder).
 */
export function fitRendition(profile: VideoProfile, source: SourceVideoInfo): FittedRendition | undefined {
  const shown = displayedSize(source);
  const scale = Math.min(profile.width / shown.width, profile.height / shown.height);
  if (scale > 1.0001) return undefined;
  const width = evenWithin(shown.width * scale, Math.min(profile.width, shown.width));
  const height = evenWithin(shown.height * scale, Math.min(profile.height, shown.height));

  let fpsNum = source.fpsNum;
  let fpsDen = source.fpsDen;
  if (profile.fps > 0 && profile.fps / profile.fpsDen < source.fpsNum / source.fpsDen - 1e-6) {
    fpsNum = profile.fps;
    fpsDen = profile.fpsDen;
  }
  const changesFps = fpsNum * source.fpsDen !== source.fpsNum * fpsDen;
  return { profile, width, height, fpsNum, fpsDen, changesFps };
}
