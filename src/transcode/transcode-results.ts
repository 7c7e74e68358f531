/**
 * What happens to a transcode job's outcome: the transcode worker (transcode-queue.ts)
 * hands each finished or failed-for-good job here, and this records it in the segment index,
 * settles or releases the segment's credit hold, records metrics and emits an event.
 *
 * Every Redis step runs through the retry port, with one deadline per outcome (the port's
 * `deadline()`): recording a result waits out a Redis outage up to that budget (every step
 * is idempotent, so a redelivered job repeats them harmlessly); past it the step throws, the
 * job fails this attempt and BullMQ runs it again.
 *
 * The ports below are the small slices of the segment index, billing, metrics, events and
 * retry executor this needs, so it is tested with plain fakes (test/unit/transcode/transcode-results.test.ts).
 */
import { SOURCE_RENDITION, type RenditionSegment, type SegmentOutcome, type TranscodeResult } from '../domain/segment.ts';
import { transcodePixels } from '../domain/money.ts';
import type { ErrorCode } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { segmentFailureReasonFor, type SegmentFailureReason } from '../domain/failure-kinds.ts';
import type { FailedForGoodCause, QueuedTranscodeJob } from './transcode-queue.ts';

/** The segment index as seen by transcode results (hls/segment-index-store.ts `RedisSegmentIndex`). */
export interface ResultsIndex {
  /** The stream's current record: its session and its planned renditions besides `source`; undefined when unknown. */
  getStream(manifestID: string): Promise<{ readonly session: string; readonly renditions: readonly { readonly name: string }[] } | undefined>;
  /** Records one (rendition, seq) outcome; `accepted` false means not listed (skipped, failed, or a stale session). */
  record(manifestID: string, session: string, outcome: SegmentOutcome): Promise<{ readonly accepted: boolean }>;
}

/** Segment credit holds (payments/billing.ts `Billing`). Both calls are idempotent per (manifestID, session, seq). */
export interface ResultsBilling {
  /** Charges `pixels` (Σ width × height × frames of the listed renditions) against the segment's hold. */
  settleSegment(r: { manifestID: string; session: string; seq: number; pixels: bigint }): Promise<void>;
  /** Returns the segment's hold uncharged. */
  releaseSegment(r: { manifestID: string; session: string; seq: number }): Promise<void>;
}

/** What transcode results record (metrics/transcode-metrics.ts `TranscodeMetrics` fits; app.ts passes it in). */
export interface ResultsMetrics {
  recordSegmentTranscoded(sample: {
    manifestID: string; segmentDurationMs: number; transcodeElapsedMs: number; outputPixels: bigint; overallLatencyMs?: number;
  }): void;
  recordSegmentFailed(manifestID: string, reason: SegmentFailureReason): void;
  recordTranscodeJobStalled(manifestID: string): void;
}

/**
 * Segment events (a subset of the event webhooks' events, events/events.ts `EventSink`):
 * fire-and-forget, never throws, never blocks.
 */
export interface ResultsEvents {
  emit(event:
    | {
      type: 'segment.transcoded'; manifestID: string; session: string; seq: number; durationMs: number; elapsedMs: number;
      renditions: { name: string; width: number; height: number; frames: number; bytes: number }[];
    }
    | { type: 'segment.failed'; manifestID: string; session: string; seq: number; reason: string }): void;
}

/** The Redis retry executor (redis/retry.ts `RedisRetry`). */
export interface ResultsRetry {
  /** The deadline of a unit of work ready now, epoch ms. */
  deadline(): number;
  /** Runs `op` again after transient Redis failures until `deadlineMs`; `what` names it in logs. */
  run<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T>;
}

export interface TranscodeResultsOptions {
  index: ResultsIndex;
  /** Omitted when payments are off; jobs without an `accountID` are never charged either. */
  billing?: ResultsBilling;
  metrics: ResultsMetrics;
  events: ResultsEvents;
  retry: ResultsRetry;
  logger: Logger;
  /** Clock, epoch ms (tests); default `Date.now`. */
  now?: () => number;
}

/**
 * Handles transcode outcomes. Rules:
 * - completed: every rendition the stream plans (its current session only) is recorded for
 *   the job's seq, as `ok` when the transcoder produced it and `failed` ("rendition not
 *   produced for this segment") otherwise;
 * - only the renditions the index accepted are charged (their pixels); when none was
 *   accepted (the playlists already skipped the seq) the hold is released instead;
 * - failed for good: the hold is released and every planned rendition except `source`
 *   (already listed by ingest) is recorded failed with the reason;
 * - a job of a session that is no longer the stream's current one records no rendition.
 */
export class TranscodeResults {
  readonly #o: TranscodeResultsOptions;
  readonly #now: () => number;

  constructor(options: TranscodeResultsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * A job's renditions were produced (the worker's `onCompleted`, or a live session's seq,
   * live-session-runner.ts).
   * @param options.discontinuity list each produced rendition segment after an
   *   `EXT-X-DISCONTINUITY` (the first segment of a live session taken over by another transcoder).
   * @throws the Redis error of a step still failing at the retry deadline (the job then runs again)
   */
  async completed(job: QueuedTranscodeJob, result: TranscodeResult, options: { discontinuity?: boolean } = {}): Promise<void> {
    const { index, billing, retry } = this.#o;
    const deadlineMs = retry.deadline();
    const produced = new Map(result.renditions.map((r) => [r.rendition, r]));
    const listed: RenditionSegment[] = [];
    for (const name of await this.#planned(job, deadlineMs)) {
      const segment = produced.get(name);
      const outcome: SegmentOutcome = segment
        ? { status: 'ok', seq: job.seq, segment, ...(options.discontinuity ? { discontinuity: true } : {}) }
        : { status: 'failed', rendition: name, seq: job.seq, reason: 'rendition not produced for this segment' };
      const recorded = await retry.run('list rendition segment', () => index.record(job.manifestID, job.session, outcome), deadlineMs);
      if (segment && recorded.accepted) listed.push(segment);
    }
    // Only what is listed is charged: a result for a seq the playlists already skipped
    // (it waited past hls.maxSegmentWaitMs) returns its hold. Charged once per (stream
    // session, seq): a redelivered job settles the same hold again, which changes nothing.
    if (billing && job.accountID) {
      const hold = { manifestID: job.manifestID, session: job.session, seq: job.seq };
      if (listed.length > 0) {
        await retry.run('charge segment', () => billing.settleSegment({ ...hold, pixels: transcodePixels(listed) }), deadlineMs);
      } else {
        await retry.run('release segment hold', () => billing.releaseSegment(hold), deadlineMs);
        this.#o.logger.info({ manifestID: job.manifestID, seq: job.seq }, 'segment transcoded after its playlists skipped it: not listed, hold released');
      }
    }
    const latencyMs = this.#now() - job.enqueuedAtMs;
    this.#o.logger.debug({ manifestID: job.manifestID, seq: job.seq, latencyMs }, 'segment renditions recorded');
    this.#o.metrics.recordSegmentTranscoded({
      manifestID: job.manifestID, segmentDurationMs: job.durationMs, transcodeElapsedMs: result.elapsedMs,
      outputPixels: transcodePixels(result.renditions), overallLatencyMs: latencyMs,
    });
    this.#o.events.emit({
      type: 'segment.transcoded', manifestID: job.manifestID, session: job.session, seq: job.seq, durationMs: job.durationMs, elapsedMs: result.elapsedMs,
      renditions: result.renditions.map((r) => ({ name: r.rendition, width: r.width, height: r.height, frames: r.frames, bytes: r.bytes })),
    });
  }

  /**
   * A job will not be retried (the worker's `onFailedForGood`): `reason` is recorded in the
   * playlists, `code` (or `cause` `transcoder_lost`) picks the metric's reason label.
   * @throws the Redis error of a step still failing at the retry deadline
   */
  async failedForGood(job: QueuedTranscodeJob, reason: string, code: ErrorCode, cause: FailedForGoodCause): Promise<void> {
    const { index, billing, retry } = this.#o;
    const deadlineMs = retry.deadline();
    this.#o.metrics.recordSegmentFailed(job.manifestID, cause === 'transcoder_lost' ? 'transcoder_lost' : segmentFailureReasonFor(code));
    if (billing && job.accountID) {
      await retry.run('release segment credits', () => billing.releaseSegment({ manifestID: job.manifestID, session: job.session, seq: job.seq }), deadlineMs);
    }
    for (const name of await this.#planned(job, deadlineMs)) {
      if (name === SOURCE_RENDITION) continue;
      await retry.run('resolve failed segment', () => index.record(job.manifestID, job.session, { status: 'failed', rendition: name, seq: job.seq, reason }), deadlineMs);
    }
    this.#o.events.emit({ type: 'segment.failed', manifestID: job.manifestID, session: job.session, seq: job.seq, reason });
  }

  /** A job was re-queued because its transcoder stopped (the worker's `onTranscoderLost`). */
  transcoderLost(job: { manifestID: string }): void {
    this.#o.metrics.recordTranscodeJobStalled(job.manifestID);
  }

  /** The renditions the stream plans for the job's session; none when the session is stale or the stream unknown. */
  async #planned(job: QueuedTranscodeJob, deadlineMs: number): Promise<string[]> {
    const stream = await this.#o.retry.run('read stream', () => this.#o.index.getStream(job.manifestID), deadlineMs);
    return stream && stream.session === job.session ? stream.renditions.map((r) => r.name) : [];
  }
}
