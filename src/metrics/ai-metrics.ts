/**
 * The AI families: requests by pipeline, model and status class, failed requests by kind,
 * request latency, failed worker attempts, and the worker pool. ai/ records requests itself
 * through its `AiRecorder` port (ai/ai-recorder.ts), which `AiMetrics` fits: the AI router
 * calls it when a pipeline request's response is over, with the pipeline it routed, the
 * model ID it resolved and the error kind it classified. Worker attempts come from the
 * session manager's `onAttemptFailure`. The pool gauges read the worker registry at each
 * scrape through the source `AiMetrics` is built with.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { AI_ERROR_KINDS, aiErrorKindForStatus } from '../domain/failure-kinds.ts';
import { AI_WORKER_FAILURE_KINDS, OTHER, enumLabel, modelIdLabel, pipelineLabel, statusClassLabel } from './metric-labels.ts';
import { metricName, type MetricsRegistry, type PullSource } from './metrics-registry.ts';

/** AI request latency, seconds: an LLM token stream to a minutes-long image-to-video. */
export const AI_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

/** A worker as the registry shows it (`WorkerRegistry.list()` fits). */
export interface WorkerPoolSourceEntry {
  readonly healthy: boolean;
  /** Present while the worker is suspended. */
  readonly suspendedUntil?: string;
  readonly pipelines: readonly { readonly pipeline: string; readonly inFlight: number; readonly capacity: number }[];
}

export interface AiMetricsOptions {
  /**
   * Whether a (pipeline, model ID) is one this gateway knows, e.g.
   * `(p, m) => registry.serves(p, m) || DEFAULT_MODEL_ID[p] === m`. Model IDs come from
   * clients, so without this check each new well-formed ID is a new series. Unknown → `other`.
   */
  knownModel?: (pipeline: string, modelID: string) => boolean;
  /** The worker pool, read once per scrape (e.g. `() => registry.list()`); absent: the pool gauges read 0. */
  workerPool?: PullSource<WorkerPoolSourceEntry>;
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
  /** Error kind (domain/failure-kinds.ts) for a status ≥ 400; derived from the status when omitted (`aiErrorKindForStatus`). */
  errorKind?: string;
}

/** The AI families on one registry. Recording never throws. */
export class AiMetrics {
  readonly #metrics: MetricsRegistry;
  readonly #knownModel: ((pipeline: string, modelID: string) => boolean) | undefined;
  readonly #requests: Counter<string>;
  readonly #errors: Counter<string>;
  readonly #seconds: Histogram<string>;
  readonly #workerFailures: Counter<string>;

  constructor(metrics: MetricsRegistry, options: AiMetricsOptions = {}) {
    this.#metrics = metrics;
    this.#knownModel = options.knownModel;
    const registers = [metrics.registry];
    this.#requests = new Counter({
      name: metricName('ai_requests_total'), registers, labelNames: ['pipeline', 'model_id', 'status_class'],
      help: 'AI requests by pipeline, model_id and status_class (2xx|4xx|5xx|aborted) (Livepeer ai_models_requested).',
    });
    this.#errors = new Counter({
      name: metricName('ai_errors_total'), registers, labelNames: ['pipeline', 'model_id', 'kind'],
      help: 'Failed AI requests (status >= 400 or aborted) by pipeline, model_id and kind (Livepeer ai_request_errors).',
    });
    this.#seconds = new Histogram({
      name: metricName('ai_request_duration_seconds'), registers, labelNames: ['pipeline', 'model_id'], buckets: AI_SECONDS_BUCKETS,
      help: 'AI request latency from receipt to the end of the response (an LLM stream: its last chunk), seconds (raw; Livepeer ai_request_latency_score divides by work).',
    });
    this.#workerFailures = new Counter({
      name: metricName('ai_worker_failures_total'), registers, labelNames: ['pipeline', 'model_id', 'kind'],
      help: `Failed AI worker attempts (retried or not) by kind (${AI_WORKER_FAILURE_KINDS.join('|')}).`,
    });
    const pool = metrics.pullSource('worker_pool', options.workerPool);
    const poolGauge = (metric: string, help: string, fill: (gauge: Gauge<string>, workers: WorkerPoolSourceEntry[]) => void, labelNames: string[] = []): void => {
      new Gauge({
        name: metricName(metric), registers, labelNames, help,
        async collect() {
          this.reset();
          if (!pool.isSet) return;
          const workers = await pool.pull();
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
  }

  /** One AI request finished: counts it, times it, and counts an error for status ≥ 400 or aborted. */
  recordAiRequest(sample: AiRequestSample): void {
    const pipeline = pipelineLabel(sample.pipeline);
    const modelID = this.#modelLabel(sample.pipeline, sample.modelID);
    this.#requests.inc({ pipeline, model_id: modelID, status_class: statusClassLabel(sample.statusCode) });
    if (Number.isFinite(sample.durationMs) && sample.durationMs >= 0) {
      this.#seconds.observe({ pipeline, model_id: modelID }, sample.durationMs / 1000);
    }
    const failed = sample.statusCode === 'aborted' || sample.statusCode >= 400;
    if (failed) {
      const kind = sample.errorKind ?? aiErrorKindForStatus(sample.statusCode);
      this.#errors.inc({ pipeline, model_id: modelID, kind: enumLabel(AI_ERROR_KINDS, kind) });
    }
  }

  /**
   * One worker attempt failed (`FailureKind` of domain/pipelines.ts, as the session manager
   * classified it), whether or not it was retried.
   */
  recordAiWorkerFailure(pipeline: string, modelID: string, kind: string): void {
    this.#workerFailures.inc({ pipeline: pipelineLabel(pipeline), model_id: this.#modelLabel(pipeline, modelID), kind: enumLabel(AI_WORKER_FAILURE_KINDS, kind) });
  }

  #modelLabel(pipeline: string, modelID: string): string {
    const label = this.#metrics.notSecret(modelIdLabel(modelID));
    if (label === OTHER || !this.#knownModel) return label;
    try {
      return this.#knownModel(pipeline, label) ? label : OTHER;
    } catch {
      return OTHER;
    }
  }
}
