/**
 * Segments, transcode jobs and their results: the shapes that cross between
 * ingest, the queue, the transcoder and the HLS index.
 */
import type { WatermarkSpec } from './watermark.ts';
import type { VideoProfile } from './profile.ts';

/** The name of the untouched input rendition; always part of a stream's output. */
export const SOURCE_RENDITION = 'source';

/**
 * Object-store key of a segment: `<manifestID>/<session>/<rendition>/<seq>.ts`. Scoped by the
 * publish session, so a republish of a manifest ID never overwrites or deletes an earlier
 * session's objects (its recording, or a player still on its last window).
 */
export function segmentKey(manifestID: string, session: string, rendition: string, seq: number): string {
  return `${sessionPrefix(manifestID, session)}${rendition}/${seq}.ts`;
}

/** Object-store prefix of everything one publish session stored: `<manifestID>/<session>/`. */
export function sessionPrefix(manifestID: string, session: string): string {
  return `${manifestID}/${session}/`;
}

/** Folder of a session's thumbnails, below its prefix: `<manifestID>/<session>/thumbnails/`. */
export const THUMBNAILS_FOLDER = 'thumbnails';

/**
 * Object-store key of the thumbnail of source segment `seq` (its first keyframe, JPEG):
 * `<manifestID>/<session>/thumbnails/<seq>.jpg`, beside the session's segments.
 */
export function thumbnailKey(manifestID: string, session: string, seq: number): string {
  return `${sessionPrefix(manifestID, session)}${THUMBNAILS_FOLDER}/${seq}.jpg`;
}

/**
 * Key of a rendition segment stored beside its source segment: the source key with its
 * rendition part (the second-to-last) replaced, `<m>/<s>/source/7.ts` → `<m>/<s>/720p/7.ts`.
 * The transcoder derives its output keys this way, so they follow whatever layout ingest
 * stored the source under (a job queued before session-scoped keys, `<m>/source/7.ts`, gives
 * `<m>/720p/7.ts`).
 * @throws Error when `sourceKey` has fewer than two parts.
 */
export function renditionKeyBeside(sourceKey: string, rendition: string): string {
  const parts = sourceKey.split('/');
  if (parts.length < 2) throw new Error(`source key ${JSON.stringify(sourceKey)} has no rendition part`);
  parts[parts.length - 2] = rendition;
  return parts.join('/');
}

/** One transcode job per source segment (docs/architecture.md, live stream step 3). */
export interface TranscodeJob {
  readonly manifestID: string;
  readonly seq: number;
  /** Object-store key of the source segment. */
  readonly sourceKey: string;
  /** Source segment duration in milliseconds. */
  readonly durationMs: number;
  /** The stream's ladder (unfitted); the transcoder fits each to the measured source. */
  readonly profiles: readonly VideoProfile[];
  /**
   * The source segment as the gateway measured it at ingest, so the transcoder does not
   * probe it again. Absent on jobs queued by an older gateway (the transcoder then probes
   * the source); the transcoder checks it with {@link parseSourceSegmentInfo} and probes
   * when it is malformed.
   */
  readonly source?: SourceSegmentInfo;
  /**
   * List every rendition segment of this job after EXT-X-DISCONTINUITY: the first segment of a
   * stream resumed after its gateway died (the source's timestamps restart there). Absent: no.
   */
  readonly discontinuity?: boolean;
  /**
   * The stream's watermark, resolved and checked at configuration time (domain/watermark.ts):
   * the transcoder fetches its image from the object store by key and draws it on every
   * rendition. Absent: none.
   */
  readonly watermark?: WatermarkSpec;
}

/**
 * What the transcoder needs of a source segment, as ffprobe measured it (media/probe.ts
 * `probeSegment`): the video to fit the ladder to, and the audio codec that decides whether
 * the renditions copy the audio (AAC) or encode it (anything else, to AAC-LC). Plain JSON:
 * it travels in the transcode job's data (transcode/transcode-queue.ts).
 */
export interface SourceSegmentInfo {
  /** The first video stream (cover art excluded). */
  readonly video: {
    /** Picture size in pixels (positive integers). */
    readonly width: number;
    readonly height: number;
    /** Frame rate fraction (ffprobe `r_frame_rate`, else `avg_frame_rate`); positive integers. */
    readonly fpsNum: number;
    readonly fpsDen: number;
    /** ffprobe `codec_name`, e.g. `h264`. */
    readonly codec: string;
    /**
     * Clockwise display rotation in degrees (profile.ts `SourceVideoInfo.rotationDeg`); absent
     * means 0. The source segment itself (MPEG-TS) has lost it, so it travels here.
     */
    readonly rotationDeg?: 0 | 90 | 180 | 270;
  };
  /** The first audio stream; absent when the segment has none. */
  readonly audio?: {
    /** ffprobe `codec_name`, e.g. `aac`, `mp3`; may be '' when ffprobe names none. */
    readonly codec: string;
    /** ffprobe profile name, e.g. `LC`, `HE-AAC`; '' when unknown. With `codec` it gives the RFC 6381 part of copied audio. */
    readonly profile: string;
  };
  /**
   * The stream's source bitrate the ladder is fitted to, bits per second (its first source
   * segment's bytes × 8000 / duration ms; domain/ladder-fit.ts). Present only when the
   * stream's ladder is fitted to its source; a live session fits its ladder with it.
   */
  readonly bitrateBps?: number;
}

const MAX_SOURCE_DIMENSION = 16_384;

function positiveInt(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= max;
}

function shortString(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64;
}

/**
 * Checks the shape of a {@link SourceSegmentInfo} read from a queued job (cheap: types and
 * ranges, no I/O) and returns a copy holding only its known fields.
 *
 * @returns `undefined` when anything is off: not an object, a width/height that is not an
 *   integer in 1..16384, an fps numerator/denominator that is not a positive safe integer,
 *   an empty or over-long (64) video codec name, or an `audio` that is present but not
 *   `{ codec: string, profile: string }`, a `rotationDeg` other than 0, 90, 180 or 270, or a
 *   `bitrateBps` that is present but not a positive safe integer. The
 *   caller then probes the source itself. A `rotationDeg` of 0 is dropped (absent means 0).
 */
export function parseSourceSegmentInfo(raw: unknown): SourceSegmentInfo | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { video, audio } = raw as { video?: unknown; audio?: unknown };
  if (typeof video !== 'object' || video === null) return undefined;
  const v = video as Record<string, unknown>;
  if (!positiveInt(v['width'], MAX_SOURCE_DIMENSION) || !positiveInt(v['height'], MAX_SOURCE_DIMENSION)) return undefined;
  if (!positiveInt(v['fpsNum'], Number.MAX_SAFE_INTEGER) || !positiveInt(v['fpsDen'], Number.MAX_SAFE_INTEGER)) return undefined;
  if (!shortString(v['codec']) || v['codec'] === '') return undefined;
  const rotation = v['rotationDeg'] as 0 | 90 | 180 | 270 | undefined;
  if (rotation !== undefined && rotation !== 0 && rotation !== 90 && rotation !== 180 && rotation !== 270) return undefined;
  const parsed = {
    width: v['width'], height: v['height'], fpsNum: v['fpsNum'], fpsDen: v['fpsDen'], codec: v['codec'],
    ...(rotation ? { rotationDeg: rotation } : {}),
  };
  const bitrateBps = (raw as { bitrateBps?: unknown }).bitrateBps;
  if (bitrateBps !== undefined && !positiveInt(bitrateBps, Number.MAX_SAFE_INTEGER)) return undefined;
  const bitrate = bitrateBps === undefined ? {} : { bitrateBps };
  if (audio === undefined) return { video: parsed, ...bitrate };
  if (typeof audio !== 'object' || audio === null) return undefined;
  const a = audio as Record<string, unknown>;
  if (!shortString(a['codec']) || !shortString(a['profile'])) return undefined;
  return { video: parsed, audio: { codec: a['codec'], profile: a['profile'] }, ...bitrate };
}

/** The shape of a probe result (media/probe.ts `probeSegment`'s answer) that source facts are taken from. */
export interface SourceProbeResult {
  readonly video?: {
    readonly width: number; readonly height: number; readonly fpsNum: number; readonly fpsDen: number; readonly codec: string;
    readonly rotationDeg?: 0 | 90 | 180 | 270;
  };
  readonly audio?: { readonly codec: string; readonly profile: string };
}

/**
 * The {@link SourceSegmentInfo} fields of a probe result, copied without checking them.
 * @returns `undefined` when the probe found no video.
 */
export function pickSourceSegmentInfo(probe: SourceProbeResult): SourceSegmentInfo | undefined {
  if (!probe.video) return undefined;
  const { width, height, fpsNum, fpsDen, codec, rotationDeg } = probe.video;
  return {
    video: { width, height, fpsNum, fpsDen, codec, ...(rotationDeg ? { rotationDeg } : {}) },
    ...(probe.audio ? { audio: { codec: probe.audio.codec, profile: probe.audio.profile } } : {}),
  };
}

/**
 * The {@link SourceSegmentInfo} of a probe result, checked as a queued job's would be.
 * @returns `undefined` when the probe found no video or its values do not pass
 *   {@link parseSourceSegmentInfo}.
 */
export function sourceSegmentInfo(probe: SourceProbeResult): SourceSegmentInfo | undefined {
  const picked = pickSourceSegmentInfo(probe);
  return picked && parseSourceSegmentInfo(picked);
}

/** What was measured of one encoded (or source) segment. */
export interface RenditionSegment {
  readonly rendition: string;
  /** Object-store key of the segment file. */
  readonly key: string;
  readonly width: number;
  readonly height: number;
  /** Video frames in the segment (packets counted by ffprobe). */
  readonly frames: number;
  readonly bytes: number;
  readonly durationMs: number;
  /** RFC 6381 codecs string, e.g. `avc1.64001f,mp4a.40.2`. */
  readonly codecs: string;
  /** Frame rate as measured or encoded, frames per second (may be fractional). */
  readonly frameRate: number;
}

/** A transcoder's answer for one source segment. */
export interface TranscodeResult {
  readonly manifestID: string;
  readonly seq: number;
  /** One entry per rendition actually encoded, in ladder order (upscales omitted). */
  readonly renditions: readonly RenditionSegment[];
  /** Wall time of the transcode in milliseconds. */
  readonly elapsedMs: number;
}

/** What the segment index stores for one (rendition, seq): delivered, or failed for good. */
export type SegmentOutcome =
  | { readonly status: 'ok'; readonly segment: RenditionSegment; readonly seq: number; readonly discontinuity?: boolean }
  | { readonly status: 'failed'; readonly rendition: string; readonly seq: number; readonly reason: string };

/**
 * What a master playlist says of a rendition, measured over its listed segments: the
 * EXT-X-STREAM-INF attributes RESOLUTION, CODECS, FRAME-RATE, BANDWIDTH and
 * AVERAGE-BANDWIDTH (RFC 8216 §4.3.4.2). Shared by the segment index, live playback and
 * recordings.
 */
export interface RenditionMeasurements {
  /** Picture size in pixels. */
  readonly width: number;
  readonly height: number;
  /** RFC 6381 codecs string, e.g. `avc1.64001f,mp4a.40.2`. */
  readonly codecs: string;
  /** Frames per second (may be fractional). */
  readonly frameRate: number;
  /** Highest segment bit rate, bits per second (BANDWIDTH). */
  readonly peakBps: number;
  /** Mean segment bit rate, bits per second (AVERAGE-BANDWIDTH). */
  readonly averageBps: number;
}
