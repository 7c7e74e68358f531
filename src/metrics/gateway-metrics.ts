/**
 * Prometheus metrics for one mediagate process (docs/operations.md, Metrics): what Livepeer's
 * gateway measures (its names, from go-livepeer's monitor/census.go, are cited in each
 * HELP text), renamed to Prometheus conventions with the unit in the name, plus live
 * streams, the AI worker pool, ledger totals, HTTP request durations and the Node.js
 * process metrics.
 *
 * Success rate: `mediagate_transcode_success_ratio` is computed over a sliding window
 * (default 60 s) as transcoded / (transcoded + failed), NaN when nothing finished in the
 * window (so `< 0.95` alerts do not fire on an idle gateway). For any other window,
 * derive it from the counters: `rate(mediagate_segments_transcoded_total[5m]) /
 * (rate(mediagate_segments_transcoded_total[5m]) + rate(mediagate_segments_failed_total[5m]))`.
 *
 * One `GatewayMetrics` owns one prom-client `Registry` (never the global default), so two
 * instances share nothing; build one per process in the composition root. Every name
 * starts with `mediagate_`. Label values follow metric-labels.ts: no secret can become one.
 *
 * Recording methods never throw: a bad value is dropped or bucketed as `other`, so metrics
 * cannot break the media path.
 */
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  AI_ERROR_KINDS, AI_WORKER_FAILURE_KINDS, INGEST_PROTOCOLS, LEDGER_KINDS, OTHER, PIPELINE_LABELS, SEGMENT_FAILURE_REASONS,
  aiErrorKindFor, aiErrorKindForStatus, enumLabel, manifestIdLabel, methodLabel, modelIdLabel, pipelineLabel,
  statusClassLabel, statusCodeLabel, toNonNegativeBigInt,
  type AiErrorKind, type AiWorkerFailureKind, type LedgerKind, type SegmentFailureReason,
} from './metric-labels.ts';
import { DEFAULT_MODEL_ID, isPipeline } from '../domain/pipelines.ts';

export const METRIC_PREFIX = 'mediagate_';

/** Transcode wall time of one segment, seconds (segments are ~2 s; 0.1–10 s of interest). */
export const TRANSCODE_SECONDS_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10, 15];
/** Source segment complete → all renditions listed, seconds (Livepeer transcode_overall_latency_seconds). */
export const OVERALL_LATENCY_SECONDS_BUCKETS = [0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 15, 20, 30, 60];
/** Segment duration / transcode time; above 1 is faster than real time (Livepeer http_client_segment_transcoded_realtime_ratio). */
export const REALTIME_RATIO_BUCKETS = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50];
/** AI request latency, seconds: an LLM token stream to a minutes-long image-to-video. */
export const AI_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
/** HTTP request duration, seconds (a push request waits for its renditions). */
export const HTTP_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Default window of `mediagate_transcode_success_ratio`. */
export const DEFAULT_SUCCESS_WINDOW_MS = 60_000;
const SUCCESS_WINDOW_BUCKETS = 60;

export interface GatewayMetricsOptions {
  /**
   * Add a `manifest_id` label to the per-stream series (config `metrics.manifestIdLabels`,
   * default false). Cardinality then grows with streams; see `forgetStream`.
   */
  manifestIdLabels?: boolean;
  /**
   * Whether a (pipeline, model ID) is one this gateway knows, e.g.
   * `(p, m) => registry.serves(p, m) || DEFAULT_MODEL_ID[p] === m`. Model IDs come from
   * clients, so without this check each new well-formed ID is a new series. Unknown → `other`.
   */
  knownModel?: (pipeline: string, modelID: string) => boolean;
  /**
   * Values known to be secret (e.g. `(v) => configuredKeys.has(v)` over config's stream
   * keys and API keys): a manifest ID or model ID for which it returns true is `other`.
   * A second line of defence behind the shape checks of metric-labels.ts.
   */
  isSecret?: (value: string) => boolean;
  /** Window of `mediagate_transcode_success_ratio` in ms; default 60 000. */
  successRateWindowMs?: number;
  /** Register the prom-client process/Node.js metrics (default true). */
  processMetrics?: boolean;
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

/** One finished AI request. */
export interface AiRequestSample {
  pipeline: string;
  /** The model ID routed to (the pipeline default when the client named none). */
  modelID: string;
  /** HTTP status answered, or `aborted` when the client went away first. */
  statusCode: number | 'aborted';
  /** Request received → response finished (an LLM stream: its last chunk), ms. */
  durationMs: number;
  /** Error kind for a status ≥ 400; derived from the status when omitted (see `aiErrorKindFor`). */
  errorKind?: AiErrorKind;
}

/** A live stream as the ingest lists it (`LiveIngest.list()` fits). */
export interface LiveStreamSourceEntry {
  readonly protocol: string;
}

/** A worker as the registry shows it (`WorkerRegistry.list()` fits). */
export interface WorkerPoolSourceEntry {
  readonly healthy: boolean;
  /** Present while the worker is suspended. */
  readonly suspendedUntil?: string;
  readonly pipelines: readonly { readonly pipeline: string; readonly inFlight: number; readonly capacity: number }[];
}

/** A pull source read at scrape time; sync or async. */
export type PullSource<T> = () => Iterable<T> | Promise<Iterable<T>>;
type Labels = Record<string, string>;

/** Name of the `res.locals` field that may carry the GatewayError code of a failed request. */
export const ERROR_CODE_LOCAL = 'errorCode';

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

/**
 * A pull source read at most once per `metricsText()` scrape, so the gauges fed from it
 * agree with each other. prom-client starts every collect synchronously inside
 * `registry.metrics()`, so the memo lives between `begin()` and `end()` around that call;
 * outside a scrape (a direct `registry.metrics()`), each read calls the source afresh.
 */
class ScrapeSnapshot<T> {
  readonly #onError: () => void;
  #source: PullSource<T> | undefined;
  #memo: Promise<T[]> | undefined;
  #scraping = false;

  /** @param onError called once per failed read (before any reader sees the failure). */
  constructor(onError: () => void) {
    this.#onError = onError;
  }

  set(source: PullSource<T> | undefined): void {
    this.#source = source;
    this.#memo = undefined;
  }

  get isSet(): boolean {
    return this.#source !== undefined;
  }

  begin(): void {
    this.#scraping = true;
    this.#memo = undefined;
  }

  end(): void {
    this.#scraping = false;
    this.#memo = undefined;
  }

  /** The read of the current scrape, if one started. */
  get current(): Promise<T[]> | undefined {
    return this.#memo;
  }

  /** The source's entries; rejects when it throws. */
  read(): Promise<T[]> {
    const source = this.#source;
    if (!source) return Promise.resolve([]);
    if (this.#scraping && this.#memo) return this.#memo;
    const read = (async () => [...(await source())])();
    read.catch(this.#onError);
    if (this.#scraping) this.#memo = read;
    return read;
  }
}

/**
 * The metrics of one mediagate process. Each `record*` method is cheap, synchronous and
 * never throws; its docstring says which pipeline step calls it.
 */
export class GatewayMetrics {
  /** This instance's registry (never prom-client's global one). */
  readonly registry: Registry;
  readonly #manifestIdLabels: boolean;
  readonly #knownModel: ((pipeline: string, modelID: string) => boolean) | undefined;
  readonly #isSecret: ((value: string) => boolean) | undefined;
  readonly #now: () => number;
  readonly #window: SlidingOutcomeWindow;
  readonly #liveStreams = new ScrapeSnapshot<LiveStreamSourceEntry>(() => this.#sourceErrors.inc({ source: 'live_streams' }));
  readonly #workerPool = new ScrapeSnapshot<WorkerPoolSourceEntry>(() => this.#sourceErrors.inc({ source: 'worker_pool' }));
  /** Exact totals behind the bigint-fed counters, keyed by label set. */
  readonly #pixelTotals = new Map<string, { labels: Labels; total: bigint }>();
  readonly #ledgerCredits = new Map<string, { labels: Labels; total: bigint }>();
  /** manifest ID → its labelled series per metric (only with manifestIdLabels), for forgetStream. */
  readonly #streamSeries = new Map<string, Map<Counter<string> | Histogram<string>, StreamSeries>>();

  readonly #segmentsEmerged: Counter<string>;
  readonly #segmentsTranscoded: Counter<string>;
  readonly #segmentsFailed: Counter<string>;
  readonly #jobsStalled: Counter<string>;
  readonly #transcodeSeconds: Histogram<string>;
  readonly #overallLatencySeconds: Histogram<string>;
  readonly #realtimeRatio: Histogram<string>;
  readonly #pixels: Counter<string>;
  readonly #pushRequests: Counter<string>;
  readonly #aiRequests: Counter<string>;
  readonly #aiErrors: Counter<string>;
  readonly #aiSeconds: Histogram<string>;
  readonly #aiWorkerFailures: Counter<string>;
  readonly #ledgerEntries: Counter<string>;
  readonly #httpSeconds: Histogram<string>;
  readonly #sourceErrors: Counter<string>;
  #closed = false;

  constructor(options: GatewayMetricsOptions = {}) {
    this.registry = new Registry();
    this.#manifestIdLabels = options.manifestIdLabels ?? false;
    this.#knownModel = options.knownModel;
    this.#isSecret = options.isSecret;
    this.#now = options.now ?? Date.now;
    this.#window = new SlidingOutcomeWindow(options.successRateWindowMs ?? DEFAULT_SUCCESS_WINDOW_MS);
    const registers = [this.registry];
    const name = (n: string): string => `${METRIC_PREFIX}${n}`;
    const stream = (more: string[] = []): string[] => (this.#manifestIdLabels ? ['manifest_id', ...more] : more);
    const self = this;

    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });

    this.#segmentsEmerged = new Counter({
      name: name('segments_emerged_total'), registers, labelNames: stream(),
      help: 'Source segments produced by ingest (RTMP segmenter or HTTP push) and listed (Livepeer segment_source_emerged).',
    });
    this.#segmentsTranscoded = new Counter({
      name: name('segments_transcoded_total'), registers, labelNames: stream(),
      help: 'Source segments transcoded into every fitting rendition (Livepeer segment_transcoded_total).',
    });
    this.#segmentsFailed = new Counter({
      name: name('segments_failed_total'), registers, labelNames: stream(['reason_code']),
      help: `Source segments that failed for good, by reason_code (${SEGMENT_FAILURE_REASONS.join('|')}) (Livepeer segment_transcode_failed_total).`,
    });
    this.#jobsStalled = new Counter({
      name: name('transcode_jobs_stalled_total'), registers, labelNames: stream(),
      help: 'Transcode jobs re-queued because their transcoder stopped renewing the lock (crashed, killed, or cut off from Redis), '
        + 'counted by the process whose stalled check re-queued them; a job lost more than once is then failed for good '
        + '(mediagate_segments_failed_total{reason_code="transcoder_lost"}).',
    });
    this.#transcodeSeconds = new Histogram({
      name: name('transcode_duration_seconds'), registers, labelNames: stream(), buckets: TRANSCODE_SECONDS_BUCKETS,
      help: 'Wall time to transcode one source segment into all its renditions, seconds (Livepeer transcode_time_seconds).',
    });
    this.#overallLatencySeconds = new Histogram({
      name: name('transcode_overall_latency_seconds'), registers, labelNames: stream(), buckets: OVERALL_LATENCY_SECONDS_BUCKETS,
      help: 'From a source segment complete to all its renditions listed, seconds (Livepeer transcode_overall_latency_seconds).',
    });
    this.#realtimeRatio = new Histogram({
      name: name('transcode_realtime_ratio'), registers, labelNames: stream(), buckets: REALTIME_RATIO_BUCKETS,
      help: 'Segment duration divided by its transcode time; above 1 is faster than real time (Livepeer http_client_segment_transcoded_realtime_ratio, transcode_score).',
    });
    const windowS = Math.round((options.successRateWindowMs ?? DEFAULT_SUCCESS_WINDOW_MS) / 1000);
    new Gauge({
      name: name('transcode_success_ratio'), registers,
      help: `Transcoded / (transcoded + failed) segments over the last ${windowS} s; NaN when none finished in the window. `
        + 'For other windows use rate() of mediagate_segments_transcoded_total and mediagate_segments_failed_total (Livepeer success_rate divides by emerged segments instead).',
      collect() {
        this.set(self.#window.ratio(self.#now()));
      },
    });
    this.#pixels = new Counter({
      name: name('transcode_pixels_total'), registers, labelNames: stream(),
      help: 'Output pixels actually encoded, sum of width x height x frames over renditions (Livepeer mil_pixels_processed, here in pixels; the billed units of docs/wire-contract.md §10).',
      collect() {
        self.#exposeTotals(this, self.#pixelTotals);
      },
    });
    new Gauge({
      name: name('live_streams'), registers, labelNames: ['protocol'],
      help: 'Live streams held by this gateway, by ingest protocol (rtmp|push) (Livepeer current_sessions_total).',
      async collect() {
        this.reset();
        if (!self.#liveStreams.isSet) return;
        const entries = await self.#pull(self.#liveStreams);
        if (!entries) return;
        const counts = new Map<string, number>(INGEST_PROTOCOLS.map((p) => [p, 0]));
        for (const s of entries) {
          const protocol = enumLabel(INGEST_PROTOCOLS, s.protocol);
          counts.set(protocol, (counts.get(protocol) ?? 0) + 1);
        }
        for (const [protocol, count] of counts) this.set({ protocol }, count);
      },
    });
    this.#pushRequests = new Counter({
      name: name('push_requests_total'), registers, labelNames: ['status_code'],
      help: 'HTTP push ingest requests (POST|PUT /live/<name>/<seq>.ts|.mp4) by answered status code; `aborted` when the client left first.',
    });
    this.#aiRequests = new Counter({
      name: name('ai_requests_total'), registers, labelNames: ['pipeline', 'model_id', 'status_class'],
      help: 'AI requests by pipeline, model_id and status_class (2xx|4xx|5xx|aborted) (Livepeer ai_models_requested).',
    });
    this.#aiErrors = new Counter({
      name: name('ai_errors_total'), registers, labelNames: ['pipeline', 'model_id', 'kind'],
      help: 'Failed AI requests (status >= 400 or aborted) by pipeline, model_id and kind (Livepeer ai_request_errors).',
    });
    this.#aiSeconds = new Histogram({
      name: name('ai_request_duration_seconds'), registers, labelNames: ['pipeline', 'model_id'], buckets: AI_SECONDS_BUCKETS,
      help: 'AI request latency from receipt to the end of the response (an LLM stream: its last chunk), seconds (raw; Livepeer ai_request_latency_score divides by work).',
    });
    this.#aiWorkerFailures = new Counter({
      name: name('ai_worker_failures_total'), registers, labelNames: ['pipeline', 'model_id', 'kind'],
      help: `Failed AI worker attempts (retried or not) by kind (${AI_WORKER_FAILURE_KINDS.join('|')}).`,
    });
    const poolGauge = (metric: string, help: string, fill: (gauge: Gauge<string>, workers: WorkerPoolSourceEntry[]) => void, labelNames: string[] = []): void => {
      new Gauge({
        name: name(metric), registers, labelNames, help,
        async collect() {
          this.reset();
          if (!self.#workerPool.isSet) return;
          const workers = await self.#pull(self.#workerPool);
          if (workers) fill(this, workers);
        },
      });
    };
    poolGauge('ai_workers', 'Registered AI workers (Livepeer transcoders_number).', (g, w) => g.set(w.length));
    poolGauge('ai_workers_healthy', 'AI workers whose runner reports OK or IDLE.', (g, w) => g.set(w.filter((x) => x.healthy).length));
    poolGauge('ai_workers_suspended', 'AI workers suspended after failures.', (g, w) => g.set(w.filter((x) => x.suspendedUntil !== undefined).length));
    const perPipeline = (field: 'inFlight' | 'capacity') => (g: Gauge<string>, workers: WorkerPoolSourceEntry[]): void => {
      const sums = new Map<string, number>();
      for (const w of workers) {
        for (const p of w.pipelines) {
          const pipeline = pipelineLabel(p.pipeline);
          const value = Number.isFinite(p[field]) ? p[field] : 0;
          sums.set(pipeline, (sums.get(pipeline) ?? 0) + value);
        }
      }
      for (const [pipeline, sum] of sums) g.set({ pipeline }, sum);
    };
    poolGauge('ai_worker_in_flight_requests', 'AI requests running on workers, summed per pipeline (Livepeer transcoders_load).', perPipeline('inFlight'), ['pipeline']);
    poolGauge('ai_worker_capacity', 'Concurrent requests AI workers accept, summed per pipeline (Livepeer transcoders_capacity).', perPipeline('capacity'), ['pipeline']);
    this.#ledgerEntries = new Counter({
      name: name('ledger_entries_total'), registers, labelNames: ['kind'],
      help: 'Ledger entries written (idempotent replays excluded), by kind (transcode|ai|topup).',
    });
    new Counter({
      name: name('ledger_credits_total'), registers, labelNames: ['kind'],
      help: 'Credits moved by ledger entries, by kind: charged for transcode|ai, added by topup.',
      collect() {
        self.#exposeTotals(this, self.#ledgerCredits);
      },
    });
    this.#httpSeconds = new Histogram({
      name: name('http_request_duration_seconds'), registers, labelNames: ['method', 'route', 'status_code'], buckets: HTTP_SECONDS_BUCKETS,
      help: 'HTTP request duration by method, route template and status code, seconds.',
    });
    this.#sourceErrors = new Counter({
      name: name('metrics_source_errors_total'), registers, labelNames: ['source'],
      help: 'Scrapes whose pull source (live_streams|worker_pool) threw; those gauges are then absent or 0.',
      async collect() {
        // Registered last: let this scrape's source reads settle so their failures count now.
        await Promise.allSettled([self.#liveStreams.current, self.#workerPool.current]);
      },
    });
  }

  /** Content-Type of `metricsText()` (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus text format; each pull source is read once. */
  metricsText(): Promise<string> {
    this.#liveStreams.begin();
    this.#workerPool.begin();
    try {
      return this.registry.metrics();
    } finally {
      this.#liveStreams.end();
      this.#workerPool.end();
    }
  }

  /** Express handler for `GET /metrics`; a collection failure goes to the error handler (500). */
  metricsHandler(): RequestHandler {
    return (_req: Request, res: Response, next: NextFunction) => {
      this.metricsText().then((text) => {
        res.setHeader('Content-Type', this.contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.status(200).send(text);
      }, next);
    };
  }

  /**
   * Express middleware that measures every request at the end of its response:
   * `mediagate_http_request_duration_seconds` for all; `mediagate_push_requests_total` for
   * pushes under `/live/`; `mediagate_ai_requests_total`, `_errors_total` and
   * `_request_duration_seconds` for `POST /<pipeline>` (model from the body's `model_id`,
   * or `model` for llm, else the pipeline's default model; an LLM stream is timed to its
   * last chunk). If the HTTP error handler sets `res.locals.errorCode` to the GatewayError
   * code, the AI error kind is refined (no_worker vs worker_failed instead of unavailable).
   * Routes are labelled by template (`req.route.path`) only under root-mounted routers
   * (`req.baseUrl` empty), else `other`; no route matched: `unmatched`.
   * A client that leaves before the response ends is recorded as `aborted`.
   */
  requestMiddleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const startedMs = performance.now();
      const path = req.path;
      let recorded = false;
      const record = (): void => {
        if (recorded) return;
        recorded = true;
        try {
          this.#recordRequest(req, res, path, performance.now() - startedMs);
        } catch {
          // Metrics never break a response.
        }
      };
      res.once('finish', record);
      res.once('close', record);
      next();
    };
  }

  /** A router with `requestMiddleware()` for every request and `GET /metrics`; mount it before the feature routers. */
  router(): Router {
    const router = Router();
    router.use(this.requestMiddleware());
    router.get('/metrics', this.metricsHandler());
    return router;
  }

  /** Pull source for `mediagate_live_streams`, called at each scrape (e.g. `() => ingest.list()`). */
  setLiveStreamsSource(source: PullSource<LiveStreamSourceEntry> | undefined): void {
    this.#liveStreams.set(source);
  }

  /** Pull source for the `mediagate_ai_worker*` gauges, called at each scrape (e.g. `() => registry.list()`). */
  setWorkerPoolSource(source: PullSource<WorkerPoolSourceEntry> | undefined): void {
    this.#workerPool.set(source);
  }

  /**
   * A source segment was stored and listed by ingest (Livepeer segment_source_emerged).
   * Call site: where LiveIngest hands the job to the queue (`SegmentEnqueuer.enqueue` /
   * `enqueueAndWait`), once per segment; a wrapper around the enqueuer in app.ts does it.
   */
  recordSegmentEmerged(manifestID: string): void {
    this.#segmentsEmerged.inc(this.#streamLabels(manifestID, this.#segmentsEmerged));
  }

  /**
   * Every rendition of a segment is recorded in the index: once per segment, not per
   * rendition. Call site: the transcode worker's `onCompleted` hook, after the
   * `index.record` loop, with `overallLatencyMs: Date.now() - job.enqueuedAtMs`,
   * `transcodeElapsedMs: result.elapsedMs`, `segmentDurationMs: job.durationMs` and
   * `outputPixels: transcodePixels(result.renditions)`. Runs in the transcoding process.
   */
  recordSegmentTranscoded(sample: SegmentTranscodedSample): void {
    const { manifestID } = sample;
    this.#segmentsTranscoded.inc(this.#streamLabels(manifestID, this.#segmentsTranscoded));
    this.#window.add(this.#now(), true);
    const elapsedMs = sample.transcodeElapsedMs;
    if (Number.isFinite(elapsedMs) && elapsedMs >= 0) {
      this.#transcodeSeconds.observe(this.#streamLabels(manifestID, this.#transcodeSeconds), elapsedMs / 1000);
      if (Number.isFinite(sample.segmentDurationMs) && sample.segmentDurationMs > 0) {
        this.#realtimeRatio.observe(this.#streamLabels(manifestID, this.#realtimeRatio), sample.segmentDurationMs / Math.max(elapsedMs, 1));
      }
    }
    const latencyMs = sample.overallLatencyMs;
    if (latencyMs !== undefined && Number.isFinite(latencyMs) && latencyMs >= 0) {
      this.#overallLatencySeconds.observe(this.#streamLabels(manifestID, this.#overallLatencySeconds), latencyMs / 1000);
    }
    const pixels = toNonNegativeBigInt(sample.outputPixels);
    if (pixels !== undefined) this.#addTotal(this.#pixelTotals, this.#streamLabels(manifestID, this.#pixels, {}, this.#pixelTotals), pixels);
  }

  /**
   * A source segment failed for good (after its retries). `reason` must be one of
   * SEGMENT_FAILURE_REASONS (`segmentFailureReasonFor(err or code)` maps a GatewayError
   * or its code); anything else becomes `other`. Call sites, each failure counted once:
   * the transcode worker's `onFailedForGood` (transcode failures), and ingest for
   * segments that never reached the queue (probe/remux/store failure: the RTMP chain's
   * catch and LiveIngest.push's catch when the error did not come from the queue), plus
   * `never_pushed` for push gaps.
   */
  recordSegmentFailed(manifestID: string, reason: SegmentFailureReason): void {
    this.#segmentsFailed.inc(this.#streamLabels(manifestID, this.#segmentsFailed, { reason_code: enumLabel(SEGMENT_FAILURE_REASONS, reason) }));
    this.#window.add(this.#now(), false);
  }

  /**
   * A transcode job was re-queued because its transcoder stopped (the BullMQ worker's
   * `stalled` event). Call site: the transcode worker's `onTranscoderLost` hook, in the
   * process whose stalled check moved the job (once per loss, deployment-wide).
   */
  recordTranscodeJobStalled(manifestID: string): void {
    this.#jobsStalled.inc(this.#streamLabels(manifestID, this.#jobsStalled));
  }

  /** One HTTP push request answered (or aborted). Called by `requestMiddleware()`. */
  recordPushRequest(statusCode: number | 'aborted'): void {
    this.#pushRequests.inc({ status_code: statusCodeLabel(statusCode) });
  }

  /**
   * One AI request finished: counts it, times it, and counts an error for status ≥ 400
   * or aborted. Called by `requestMiddleware()`; call it directly only where that
   * middleware is not mounted (e.g. live video-to-video).
   */
  recordAiRequest(sample: AiRequestSample): void {
    const pipeline = pipelineLabel(sample.pipeline);
    const modelID = this.#modelLabel(sample.pipeline, sample.modelID);
    this.#aiRequests.inc({ pipeline, model_id: modelID, status_class: statusClassLabel(sample.statusCode) });
    if (Number.isFinite(sample.durationMs) && sample.durationMs >= 0) {
      this.#aiSeconds.observe({ pipeline, model_id: modelID }, sample.durationMs / 1000);
    }
    const failed = sample.statusCode === 'aborted' || sample.statusCode >= 400;
    if (failed) {
      const kind = sample.errorKind ?? aiErrorKindForStatus(sample.statusCode);
      this.#aiErrors.inc({ pipeline, model_id: modelID, kind: enumLabel(AI_ERROR_KINDS, kind) });
    }
  }

  /**
   * One worker attempt failed (`FailureKind` from the session manager's classify),
   * whether or not it was retried. Call site: a wrapper around the SessionManager's
   * `caller.call` in app.ts, in its catch, with `request.pipeline`, `request.modelID` and
   * the classified kind.
   */
  recordAiWorkerFailure(pipeline: string, modelID: string, kind: AiWorkerFailureKind): void {
    this.#aiWorkerFailures.inc({ pipeline: pipelineLabel(pipeline), model_id: this.#modelLabel(pipeline, modelID), kind: enumLabel(AI_WORKER_FAILURE_KINDS, kind) });
  }

  /**
   * A new ledger entry was committed: call it in the ledger after the atomic write
   * reports a new entry, never for an idempotent replay or a refused (402) charge. `credits` is its amount,
   * a non-negative integer (bigint, or a safe-integer number); anything else is dropped.
   * Totals are summed exactly as bigint and exposed as float64 at scrape time.
   */
  recordLedgerEntry(kind: LedgerKind, credits: bigint | number): void {
    const label = enumLabel(LEDGER_KINDS, kind);
    this.#ledgerEntries.inc({ kind: label });
    const amount = toNonNegativeBigInt(credits);
    if (amount !== undefined) this.#addTotal(this.#ledgerCredits, { kind: label }, amount);
  }

  /**
   * Drops every series labelled with this manifest ID (only with manifestIdLabels). Call
   * it a while after the stream ended (two scrape intervals or more), so the last values
   * are scraped; it bounds cardinality on long-running gateways.
   */
  forgetStream(manifestID: string): void {
    const label = this.#notSecret(manifestIdLabel(manifestID));
    if (label === OTHER) return;
    const byMetric = this.#streamSeries.get(label);
    if (!byMetric) return;
    for (const [metric, series] of byMetric) {
      for (const [key, labels] of series.labelSets) {
        if (series.totals) series.totals.delete(key);
        else metric.remove(labels);
      }
    }
    this.#streamSeries.delete(label);
  }

  /** Unregisters everything and drops the sources. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#liveStreams.set(undefined);
    this.#workerPool.set(undefined);
    this.registry.clear();
  }

  #recordRequest(req: Request, res: Response, path: string, durationMs: number): void {
    const statusCode: number | 'aborted' = res.writableFinished ? res.statusCode : 'aborted';
    this.#httpSeconds.observe({ method: methodLabel(req.method), route: routeLabel(req, path), status_code: statusCodeLabel(statusCode) }, durationMs / 1000);
    if (path.startsWith('/live/') && !path.startsWith('/live/video-to-video/')) this.recordPushRequest(statusCode);
    const pipeline = path.slice(1);
    if (req.method !== 'POST' || !isPipeline(pipeline)) return;
    const body: unknown = req.body;
    const named = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[pipeline === 'llm' ? 'model' : 'model_id'] : undefined;
    const modelID = typeof named === 'string' && named !== '' ? named : DEFAULT_MODEL_ID[pipeline];
    const errorKind = statusCode === 'aborted' ? 'aborted' : aiErrorKindFor((res.locals as Record<string, unknown>)[ERROR_CODE_LOCAL]);
    this.recordAiRequest({ pipeline, modelID, statusCode, durationMs, ...(errorKind ? { errorKind } : {}) });
  }

  #modelLabel(pipeline: string, modelID: string): string {
    const label = this.#notSecret(modelIdLabel(modelID));
    if (label === OTHER || !this.#knownModel) return label;
    try {
      return this.#knownModel(pipeline, label) ? label : OTHER;
    } catch {
      return OTHER;
    }
  }

  /** `label` unless the isSecret option flags it (or throws). */
  #notSecret(label: string): string {
    if (label === OTHER || !this.#isSecret) return label;
    try {
      return this.#isSecret(label) ? OTHER : label;
    } catch {
      return OTHER;
    }
  }

  /**
   * `extra` plus `manifest_id` when enabled; the full label set is remembered per metric
   * for forgetStream (`totals`: the exact totals behind a bigint-fed counter).
   */
  #streamLabels(manifestID: string, metric: Counter<string> | Histogram<string>, extra: Labels = {}, totals?: Map<string, { labels: Labels; total: bigint }>): Labels {
    if (!this.#manifestIdLabels) return extra;
    const manifest = this.#notSecret(manifestIdLabel(manifestID));
    const labels = { manifest_id: manifest, ...extra };
    if (manifest === OTHER) return labels;
    let byMetric = this.#streamSeries.get(manifest);
    if (!byMetric) {
      byMetric = new Map();
      this.#streamSeries.set(manifest, byMetric);
    }
    let series = byMetric.get(metric);
    if (!series) {
      series = { labelSets: new Map(), ...(totals ? { totals } : {}) };
      byMetric.set(metric, series);
    }
    series.labelSets.set(labelKey(labels), labels);
    return labels;
  }

  #addTotal(totals: Map<string, { labels: Labels; total: bigint }>, labels: Labels, amount: bigint): void {
    const key = labelKey(labels);
    const entry = totals.get(key);
    if (entry) entry.total += amount;
    else totals.set(key, { labels, total: amount });
  }

  /** Rewrites a counter from exact bigint totals (collect-time; counters only grow). */
  #exposeTotals(counter: Counter<string>, totals: Map<string, { labels: Labels; total: bigint }>): void {
    counter.reset();
    for (const { labels, total } of totals.values()) counter.inc(labels, Number(total));
  }

  /** The entries of a pull source, or undefined when it threw (counted by the snapshot). */
  async #pull<T>(snapshot: ScrapeSnapshot<T>): Promise<T[] | undefined> {
    try {
      return await snapshot.read();
    } catch {
      return undefined;
    }
  }

}

interface StreamSeries {
  /** labelKey → labels of each series of one metric for one manifest ID. */
  readonly labelSets: Map<string, Labels>;
  /** The exact totals behind a bigint-fed counter (removed there instead of in the counter). */
  readonly totals?: Map<string, { labels: Labels; total: bigint }>;
}

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',');
}

/** The route template of a request handled by a root-mounted router, else `other`/`unmatched`. */
function routeLabel(req: Request, path: string): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  if (route === undefined) {
    const pipeline = path.slice(1);
    return PIPELINE_LABELS.includes(pipeline) ? path : 'unmatched';
  }
  if (req.baseUrl !== '' || typeof route.path !== 'string' || route.path.length > 100) return OTHER;
  return route.path;
}
