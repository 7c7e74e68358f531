/**
 * The records of the segment index (segment-index-store.ts): a stream, a rendition's
 * measurements and listing window, and what recording, resolving and sweeping did.
 */
import type { RenditionPlan, StreamProtocol } from '../domain/profile.ts';
import type { SourceWarning } from '../domain/source-lint.ts';
import type { RenditionMeasurements } from '../domain/segment.ts';

export interface StreamRecord {
  readonly manifestID: string;
  readonly session: string;
  readonly state: 'live' | 'ended';
  readonly protocol: StreamProtocol;
  readonly startedAtMs: number;
  readonly endedAtMs?: number;
  /** First sequence number of the session (0 for RTMP; the first pushed seq for HTTP push). */
  readonly firstSeq: number;
  /** One past the last sequence number, known once the stream ended. */
  readonly endSeq?: number;
  /** Output renditions besides `source`, in ladder order (set when the first source segment is measured). */
  readonly renditions: readonly RenditionPlan[];
  /** What the source lint found in the first source segment (domain/source-lint.ts); [] when nothing. */
  readonly warnings: readonly SourceWarning[];
}

export interface RenditionStats extends RenditionMeasurements {
  readonly count: number;
  readonly frontier: number;
  readonly failed: number;
  /** When a segment was last listed (epoch ms); 0 when none yet. */
  readonly lastListedAtMs: number;
}

export interface ListedSegment {
  readonly seq: number;
  readonly durationMs: number;
  readonly discontinuity: boolean;
  /** Discontinuities listed up to and including this segment. */
  readonly discontinuityCount: number;
}

export interface RenditionWindow {
  readonly stats: RenditionStats;
  /** The last `window` listed segments, oldest first. */
  readonly segments: readonly ListedSegment[];
  /** Every segment of the stream has been resolved in this rendition and the stream ended. */
  readonly complete: boolean;
}

/** What a recorded outcome did. */
export interface RecordResult {
  /**
   * False when the seq was already resolved as failed in this rendition (skipped after
   * waiting too long, a gap, or a failure), or the session is not the stream's current one:
   * the result is not listed and must not be charged. True for a listed or pending result,
   * and for a repeat of one.
   */
  readonly accepted: boolean;
  /** Segments newly listed by this call (this one and any that waited for it). */
  readonly listed: number;
  /** True when `session` is not the stream's current session. */
  readonly staleSession?: boolean;
}

/** What one `RedisSegmentIndex.resolve` did. */
export interface ResolveResult {
  /** Segments newly listed (results that had waited for the skipped ones). */
  readonly listed: number;
  /** Seqs resolved as failed because they waited too long, summed over the stream's renditions. */
  readonly skipped: number;
}

/** What one `RedisSegmentIndex.sweep` did. */
export interface SweepResult {
  /** Streams ended because their heartbeat expired (their gateway is gone). */
  readonly expired: readonly string[];
  /** Streams that were due, with what resolving them did. */
  readonly resolved: readonly ({ manifestID: string } & ResolveResult)[];
}
