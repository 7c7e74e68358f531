/**
 * Segments, transcode jobs and their results: the shapes that cross between
 * ingest, the queue, the transcoder and the HLS index.
 */
import type { VideoProfile } from './profile.ts';

/** The name of the untouched input rendition; always part of a stream's output. */
export const SOURCE_RENDITION = 'source';

/** Object-store key of a segment: `<manifestID>/<rendition>/<seq>.ts`. */
export function segmentKey(manifestID: string, rendition: string, seq: number): string {
  return `${manifestID}/${rendition}/${seq}.ts`;
}

/** One transcode job per source segment (ARCHITECTURE.md, data flow step 3). */
export interface TranscodeJob {
  readonly manifestID: string;
  readonly seq: number;
  /** Object-store key of the source segment. */
  readonly sourceKey: string;
  /** Source segment duration in milliseconds. */
  readonly durationMs: number;
  /** The stream's ladder (unfitted); the transcoder fits each to the measured source. */
  readonly profiles: readonly VideoProfile[];
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
