/**
 * The transcode families: segments transcoded and failed for good, jobs taken over from a
 * lost transcoder, transcode time, overall latency, real-time ratio, output pixels and the
 * success ratio. Recorded by transcode/ through its results port (`ResultsMetrics` of
 * transcode/transcode-results.ts), which this class fits; runs in every transcoding process.
 *
 * Success rate: `mediagate_transcode_success_ratio` is computed over a sliding window
 * (default 60 s) as transcoded / (transcoded + failed), NaN when nothing finished in the
 * window (so `< 0.95` alerts do not fire on an idle gateway). For any other window,
 * derive it from the counters: `rate(mediagate_segments_transcoded_total[5m]) /
 * (rate(mediagate_segments_transcoded_total[5m]) + rate(mediagate_segments_failed_total[5m]))`.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { SEGMENT_FAILURE_REASONS } from '../domain/failure-kinds.ts';
import { enumLabel, toNonNegativeBigInt } from './metric-labels.ts';
import { ExactTotals, metricName, type MetricsRegistry } from './metrics-registry.ts';

/** Transcode wall time of one segment, seconds (segments are ~2 s; 0.1–10 s of interest). */
export const TRANSCODE_SECONDS_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10, 15];
/** Source segment complete → all renditions listed, seconds (Livepeer transcode_overall_latency_seconds). */
export const OVERALL_LATENCY_SECONDS_BUCKETS = [0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 15, 20, 30, 60];
/** Segment duration / transcode time; above 1 is faster than real time (Livepeer http_client_segment_transcoded_realtime_ratio). */
export const REALTIME_RATIO_BUCKETS = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50];

/** Default window of `mediagate_transcode_success_ratio`. */
export const DEFAULT_SUCCESS_WINDOW_MS = 60_000;
const SUCCESS_WINDOW_BUCKETS = 60;

export interface TranscodeMetricsOptions {
  /** Window of `mediagate_transcode_success_ratio` in ms; default 60 000. */
  successRateWindowMs?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** One transcoded segment, as the transcoder reports it (TranscodeResult + job). */
export interface SegmentTranscodedSample {
  manifestID: string;
  /** Media duration of the source segment, ms (job.durationMs). */
  segmentDurationMs: number;
  /** Wall time of the transcode job, ms (TranscodeResult.elapsedMs). */
  transcodeElapsedMs: number;
  /** Output pixels actually encoded, Σ width × height × frames (domain/money.ts `transcodePixels`). */
  outputPixels: bigint | number;
  /** Source segment complete (job.enqueuedAtMs) → every rendition listed, ms; omit when unknown. */
  overallLatencyMs?: number;
}

/** Counts of successes and failures in time buckets, for a sliding-window ratio. */
class SlidingOutcomeWindow {
  readonly #bucketMs: number;
  readonly #epochs = new Array<number>(SUCCESS_WINDOW_BUCKETS).fill(-1);
  readonly #ok = new Array<number>(SUCCESS_WINDOW_BUCKETS).fill(0);
  readonly #failed = new Array<number>(SUCCESS_WINDOW_BUCKETS).fill(0);

  constructor(windowMs: number) {
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / SUCCESS_WINDOW_BUCKETS));
  }

  add(nowMs: number, ok: boolean): void {
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const i = epoch % SUCCESS_WINDOW_BUCKETS;
    if (this.#epochs[i] !== epoch) {
      this.#epochs[i] = epoch;
      this.#ok[i] = 0;
      this.#failed[i] = 0;
    }
    if (ok) this.#ok[i]! += 1;
    else this.#failed[i]! += 1;
  }

  /** successes / (successes + failures) in the window; NaN when the window is empty. */
  ratio(nowMs: number): number {
    const current = Math.floor(nowMs / this.#bucketMs);
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < SUCCESS_WINDOW_BUCKETS; i++) {
      const epoch = this.#epochs[i]!;
      if (epoch > current - SUCCESS_WINDOW_BUCKETS && epoch <= current) {
        ok += this.#ok[i]!;
        failed += this.#failed[i]!;
      }
    }
    return ok + failed === 0 ? Number.NaN : ok / (ok + failed);
  }
}

/** The transcode families on one registry. Each `record*` method is cheap, synchronous and never throws. */
export class TranscodeMetrics {
  readonly #metrics: MetricsRegistry;
  readonly #now: () => number;
  readonly #window: SlidingOutcomeWindow;
  readonly #pixelTotals = new ExactTotals();
  readonly #segmentsTranscoded: Counter<string>;
  readonly #segmentsFailed: Counter<string>;
  readonly #jobsStalled: Counter<string>;
  readonly #transcodeSeconds: Histogram<string>;
  readonly #overallLatencySeconds: Histogram<string>;
  readonly #realtimeRatio: Histogram<string>;
  readonly #pixels: Counter<string>;

  constructor(metrics: MetricsRegistry, options: TranscodeMetricsOptions = {}) {
    this.#metrics = metrics;
    this.#now = options.now ?? Date.now;
    const windowMs = options.successRateWindowMs ?? DEFAULT_SUCCESS_WINDOW_MS;
    this.#window = new SlidingOutcomeWindow(windowMs);
    const registers = [metrics.registry];
    const stream = (more: string[] = []): string[] => (metrics.manifestIdLabels ? ['manifest_id', ...more] : more);
    const self = this;

    this.#segmentsTranscoded = new Counter({
      name: metricName('segments_transcoded_total'), registers, labelNames: stream(),
      help: 'Source segments transcoded into every fitting rendition (Livepeer segment_transcoded_total).',
    });
    this.#segmentsFailed = new Counter({
      name: metricName('segments_failed_total'), registers, labelNames: stream(['reason_code']),
      help: `Source segments that failed for good, by reason_code (${SEGMENT_FAILURE_REASONS.join('|')}) (Livepeer segment_transcode_failed_total).`,
    });
    this.#jobsStalled = new Counter({
      name: metricName('transcode_jobs_stalled_total'), registers, labelNames: stream(),
      help: 'Transcode jobs re-queued because their transcoder stopped renewing the lock (crashed, killed, or cut off from Redis), '
        + 'counted by the process whose stalled check re-queued them; a job lost more than once is then failed for good '
        + '(mediagate_segments_failed_total{reason_code="transcoder_lost"}).',
    });
    this.#transcodeSeconds = new Histogram({
      name: metricName('transcode_duration_seconds'), registers, labelNames: stream(), buckets: TRANSCODE_SECONDS_BUCKETS,
      help: 'Wall time to transcode one source segment into all its renditions, seconds (Livepeer transcode_time_seconds).',
    });
    this.#overallLatencySeconds = new Histogram({
      name: metricName('transcode_overall_latency_seconds'), registers, labelNames: stream(), buckets: OVERALL_LATENCY_SECONDS_BUCKETS,
      help: 'From a source segment complete to all its renditions listed, seconds (Livepeer transcode_overall_latency_seconds).',
    });
    this.#realtimeRatio = new Histogram({
      name: metricName('transcode_realtime_ratio'), registers, labelNames: stream(), buckets: REALTIME_RATIO_BUCKETS,
      help: 'Segment duration divided by its transcode time; above 1 is faster than real time (Livepeer http_client_segment_transcoded_realtime_ratio, transcode_score).',
    });
    const windowS = Math.round(windowMs / 1000);
    new Gauge({
      name: metricName('transcode_success_ratio'), registers,
      help: `Transcoded / (transcoded + failed) segments over the last ${windowS} s; NaN when none finished in the window. `
        + 'For other windows use rate() of mediagate_segments_transcoded_total and mediagate_segments_failed_total (Livepeer success_rate divides by emerged segments instead).',
      collect() {
        this.set(self.#window.ratio(self.#now()));
      },
    });
    this.#pixels = new Counter({
      name: metricName('transcode_pixels_total'), registers, labelNames: stream(),
      help: 'Output pixels actually encoded, sum of width x height x frames over renditions (Livepeer mil_pixels_processed, here in pixels; the billed units of docs/wire-contract.md §10).',
      collect() {
        self.#pixelTotals.expose(this);
      },
    });
  }

  /**
   * Every rendition of a segment is recorded in the index: once per segment, not per
   * rendition. Called by transcode/transcode-results.ts after the listing, in the
   * transcoding process.
   */
  recordSegmentTranscoded(sample: SegmentTranscodedSample): void {
    const { manifestID } = sample;
    const m = this.#metrics;
    this.#segmentsTranscoded.inc(m.streamLabels(manifestID, this.#segmentsTranscoded));
    this.#window.add(this.#now(), true);
    const elapsedMs = sample.transcodeElapsedMs;
    if (Number.isFinite(elapsedMs) && elapsedMs >= 0) {
      this.#transcodeSeconds.observe(m.streamLabels(manifestID, this.#transcodeSeconds), elapsedMs / 1000);
      if (Number.isFinite(sample.segmentDurationMs) && sample.segmentDurationMs > 0) {
        this.#realtimeRatio.observe(m.streamLabels(manifestID, this.#realtimeRatio), sample.segmentDurationMs / Math.max(elapsedMs, 1));
      }
    }
    const latencyMs = sample.overallLatencyMs;
    if (latencyMs !== undefined && Number.isFinite(latencyMs) && latencyMs >= 0) {
      this.#overallLatencySeconds.observe(m.streamLabels(manifestID, this.#overallLatencySeconds), latencyMs / 1000);
    }
    const pixels = toNonNegativeBigInt(sample.outputPixels);
    if (pixels !== undefined) this.#pixelTotals.add(m.streamLabels(manifestID, this.#pixels, {}, this.#pixelTotals), pixels);
  }

  /**
   * A source segment failed for good (after its retries). `reason` is one of
   * SEGMENT_FAILURE_REASONS (domain/failure-kinds.ts); anything else becomes `other`.
   * Called by transcode/transcode-results.ts (`transcoder_lost` for a job lost twice).
   */
  recordSegmentFailed(manifestID: string, reason: string): void {
    this.#segmentsFailed.inc(this.#metrics.streamLabels(manifestID, this.#segmentsFailed, { reason_code: enumLabel(SEGMENT_FAILURE_REASONS, reason) }));
    this.#window.add(this.#now(), false);
  }

  /**
   * A transcode job was re-queued because its transcoder stopped (the BullMQ worker's
   * `stalled` event), in the process whose stalled check moved it (once per loss,
   * deployment-wide). Called by transcode/transcode-results.ts.
   */
  recordTranscodeJobStalled(manifestID: string): void {
    this.#jobsStalled.inc(this.#metrics.streamLabels(manifestID, this.#jobsStalled));
  }
}
