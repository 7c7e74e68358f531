/**
 * The transcode backlog families: how much transcoding waits for a transcoder, read from
 * Redis at each scrape (docs/operations.md, "Metrics" and "Autoscaling transcoders"). They
 * describe the whole deployment, not this process: every gateway exposes the same values
 * (aggregate with `max`, not `sum`). An autoscaler scales transcoders on them.
 *
 * - `mediagate_transcode_queue_depth`: per-segment jobs not yet taken by a transcoder
 *   (BullMQ wait + prioritized + delayed, the last being retries in their backoff).
 * - `mediagate_transcode_queue_active_jobs`: jobs running on a transcoder now.
 * - `mediagate_transcode_queue_oldest_job_age_seconds`: age of the oldest job ready to run
 *   and not taken (since it was queued; 0 when none waits).
 * - `mediagate_live_sessions_waiting`: live transcoding sessions no transcoder holds (a new
 *   stream not yet claimed, or one whose transcoder died); 0 when live sessions are off.
 *
 * The read is one source call per scrape (shared by the four gauges), bounded by the
 * source's own cost (a few Redis round trips) and by `timeoutMs`: when it fails (a Redis
 * outage) the gauges read NaN, not 0, so an autoscaler does not scale in on an outage, and
 * `mediagate_metrics_source_errors_total{source="transcode_backlog"}` counts it; it never
 * stalls `/metrics`.
 */
import { Gauge } from 'prom-client';
import { settleWithin } from '../domain/time-limit.ts';
import { metricName, type MetricsRegistry } from './metrics-registry.ts';

/** The deployment's transcode backlog as one read of the queue (and the live-session store) gives it. */
export interface TranscodeBacklog {
  /** Jobs waiting for a transcoder: ready to run, prioritized, or delayed (retry backoff). */
  readonly waitingJobs: number;
  /** Jobs running on a transcoder now. */
  readonly activeJobs: number;
  /** When the oldest job ready to run was queued (epoch ms); undefined when none waits. */
  readonly oldestWaitingQueuedAtMs?: number;
  /** Live sessions no transcoder holds; undefined when live sessions are off. */
  readonly liveSessionsWaiting?: number;
}

/** Reads the backlog (e.g. the transcode queue's and live-session store's counts); may reject. */
export type TranscodeBacklogSource = () => Promise<TranscodeBacklog>;

/** How long a scrape waits for the backlog read before the gauges are left absent, ms. */
export const BACKLOG_READ_TIMEOUT_MS = 2000;

export interface BacklogGaugesOptions {
  /** Clock, epoch ms (tests); default `Date.now`. */
  now?: () => number;
  /** Read timeout, ms; default {@link BACKLOG_READ_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Registers the four backlog gauges on `metrics`, fed by `source` once per scrape. Without a
 * source (a process that does not see the queue) they read 0.
 */
export function registerBacklogGauges(metrics: MetricsRegistry, source?: TranscodeBacklogSource, options: BacklogGaugesOptions = {}): void {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? BACKLOG_READ_TIMEOUT_MS;
  const read = source && (async (): Promise<TranscodeBacklog[]> => [await settleWithin(source(), timeoutMs, () => {
    throw new Error(`transcode backlog not read within ${timeoutMs} ms`);
  })]);
  const backlog = metrics.pullSource('transcode_backlog', read);
  const registers = [metrics.registry];
  const gauge = (name: string, help: string, value: (b: TranscodeBacklog) => number | undefined): void => {
    new Gauge({
      name: metricName(name), registers, help,
      async collect() {
        this.reset();
        if (!backlog.isSet) return;
        const b = (await backlog.pull())?.[0];
        // Unknown (the read failed) is NaN, not 0: an autoscaler must not scale in on an outage.
        const v = b ? value(b) ?? 0 : Number.NaN;
        this.set(Number.isFinite(v) || Number.isNaN(v) ? v : 0);
      },
    });
  };
  gauge('transcode_queue_depth', 'Transcode jobs (one per pushed or non-live source segment) waiting for a transcoder, deployment-wide: '
    + 'ready, prioritized, or delayed for a retry. The same on every gateway: aggregate with max. Scale transcoders on it.', (b) => b.waitingJobs);
  gauge('transcode_queue_active_jobs', 'Transcode jobs running on a transcoder now, deployment-wide.', (b) => b.activeJobs);
  gauge('transcode_queue_oldest_job_age_seconds', 'Seconds since the oldest transcode job ready to run was queued; 0 when none waits. '
    + 'Above a segment duration, transcoders are behind.', (b) => (b.oldestWaitingQueuedAtMs === undefined ? 0 : Math.max(0, now() - b.oldestWaitingQueuedAtMs) / 1000));
  gauge('live_sessions_waiting', 'Live transcoding sessions (one per RTMP stream) that no transcoder holds: '
    + 'new streams not yet claimed, or streams whose transcoder died. 0 when transcode.liveSessions is off.', (b) => b.liveSessionsWaiting);
}
