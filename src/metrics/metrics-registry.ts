/**
 * The metrics of one mediagate process (docs/operations.md, Metrics): one prom-client
 * `Registry` (never the global default, so two instances share nothing), the Node.js process
 * metrics, the `GET /metrics` text, the label rules every family shares, and the pull
 * sources read at scrape time. The families live beside it, one file per feature
 * (ai-metrics.ts, ingest-metrics.ts, transcode-metrics.ts, backlog-metrics.ts, ledger-metrics.ts, http-metrics.ts);
 * each is built on this registry by the composition root and handed to its feature as that
 * feature's recorder port. Nothing here reads a URL or a request body.
 *
 * Every name starts with `mediagate_`; Livepeer's names (go-livepeer `monitor/census.go`) are
 * cited in each family's HELP text. Label values follow metric-labels.ts: no secret can
 * become one. Recording methods never throw: a bad value is dropped or bucketed as `other`,
 * so metrics cannot break the media path.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Counter, Registry, collectDefaultMetrics, type Histogram } from 'prom-client';
import { OTHER, manifestIdLabel } from './metric-labels.ts';

export const METRIC_PREFIX = 'mediagate_';

/** `mediagate_<name>`. */
export function metricName(name: string): string {
  return `${METRIC_PREFIX}${name}`;
}

/** A pull source read at scrape time; sync or async. */
export type PullSource<T> = () => Iterable<T> | Promise<Iterable<T>>;
/** The pull sources (label `source` of `mediagate_metrics_source_errors_total`). */
export type PullSourceName = 'live_streams' | 'worker_pool' | 'transcode_backlog' | 'outputs';

export type Labels = Record<string, string>;

export interface MetricsRegistryOptions {
  /**
   * Add a `manifest_id` label to the per-stream series (config `metrics.manifestIdLabels`,
   * default false). Cardinality then grows with streams; see `forgetStream`.
   */
  manifestIdLabels?: boolean;
  /**
   * Values known to be secret (e.g. `(v) => configuredKeys.has(v)` over config's stream
   * keys and API keys): a manifest ID or model ID for which it returns true is `other`.
   * A second line of defence behind the shape checks of metric-labels.ts.
   */
  isSecret?: (value: string) => boolean;
  /** Register the prom-client process/Node.js metrics (default true). */
  processMetrics?: boolean;
}

/**
 * A pull source read at most once per `metricsText()` scrape, so the gauges fed from it
 * agree with each other. prom-client starts every collect synchronously inside
 * `registry.metrics()`, so the memo lives between `begin()` and `end()` around that call;
 * outside a scrape (a direct `registry.metrics()`), each read calls the source afresh.
 */
export class ScrapeSnapshot<T> {
  readonly #onError: () => void;
  #source: PullSource<T> | undefined;
  #memo: Promise<T[]> | undefined;
  #scraping = false;

  /** @param onError called once per failed read (before any reader sees the failure). */
  constructor(source: PullSource<T> | undefined, onError: () => void) {
    this.#source = source;
    this.#onError = onError;
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

  /** Drops the source (close). */
  clear(): void {
    this.#source = undefined;
    this.#memo = undefined;
  }

  /** This scrape's read (started now if no gauge started it yet); undefined outside a scrape. */
  settled(): Promise<unknown> | undefined {
    return this.#scraping && this.isSet ? this.read().catch(() => undefined) : undefined;
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

  /** The entries, or undefined when the source threw (counted in `mediagate_metrics_source_errors_total`). */
  async pull(): Promise<T[] | undefined> {
    try {
      return await this.read();
    } catch {
      return undefined;
    }
  }
}

/** labels → a stable key (label names sorted). */
export function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',');
}

/**
 * Exact non-negative totals per label set behind a counter fed with bigints (pixels,
 * credits): summed as bigint, exposed as float64 at scrape time.
 */
export class ExactTotals {
  readonly #totals = new Map<string, { labels: Labels; total: bigint }>();

  add(labels: Labels, amount: bigint): void {
    const key = labelKey(labels);
    const entry = this.#totals.get(key);
    if (entry) entry.total += amount;
    else this.#totals.set(key, { labels, total: amount });
  }

  delete(labels: Labels): void {
    this.#totals.delete(labelKey(labels));
  }

  /** Rewrites `counter` from the exact totals (call it in the counter's `collect`; counters only grow). */
  expose(counter: Counter<string>): void {
    counter.reset();
    for (const { labels, total } of this.#totals.values()) counter.inc(labels, Number(total));
  }
}

/** The prom-client registry of one process, its label rules, pull sources and `/metrics` text. */
export class MetricsRegistry {
  /** This instance's registry (never prom-client's global one). */
  readonly registry: Registry;
  /** Whether per-stream series carry `manifest_id` (option `manifestIdLabels`). */
  readonly manifestIdLabels: boolean;
  readonly #isSecret: ((value: string) => boolean) | undefined;
  readonly #snapshots: ScrapeSnapshot<unknown>[] = [];
  readonly #sourceErrors: Counter<string>;
  /** manifest ID label → (series key → how to remove that series), for forgetStream. */
  readonly #streamSeries = new Map<string, Map<string, () => void>>();
  #closed = false;

  constructor(options: MetricsRegistryOptions = {}) {
    this.registry = new Registry();
    this.manifestIdLabels = options.manifestIdLabels ?? false;
    this.#isSecret = options.isSecret;
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    const snapshots = this.#snapshots;
    this.#sourceErrors = new Counter({
      name: metricName('metrics_source_errors_total'), registers: [this.registry], labelNames: ['source'],
      help: 'Scrapes whose pull source (live_streams|worker_pool|transcode_backlog|outputs) threw; those gauges are then absent or 0.',
      async collect() {
        // Let this scrape's source reads settle (starting any not started yet) so their failures count now.
        await Promise.allSettled(snapshots.map((s) => s.settled()));
      },
    });
  }

  /**
   * A pull source for a family's gauges, read once per scrape; a read that throws is counted
   * as `mediagate_metrics_source_errors_total{source=<name>}`. `source` undefined: the
   * gauges have nothing to read (e.g. a transcoder has no worker pool).
   */
  pullSource<T>(name: PullSourceName, source: PullSource<T> | undefined): ScrapeSnapshot<T> {
    const snapshot = new ScrapeSnapshot<T>(source, () => this.#sourceErrors.inc({ source: name }));
    this.#snapshots.push(snapshot as ScrapeSnapshot<unknown>);
    return snapshot;
  }

  /** `label` unless the isSecret option flags it (or throws). */
  notSecret(label: string): string {
    if (label === OTHER || !this.#isSecret) return label;
    try {
      return this.#isSecret(label) ? OTHER : label;
    } catch {
      return OTHER;
    }
  }

  /**
   * `extra` plus `manifest_id` when enabled; the series is remembered for forgetStream
   * (`totals`: the exact totals behind a bigint-fed counter, removed there instead).
   */
  streamLabels(manifestID: string, metric: Counter<string> | Histogram<string>, extra: Labels = {}, totals?: ExactTotals): Labels {
    if (!this.manifestIdLabels) return extra;
    const manifest = this.notSecret(manifestIdLabel(manifestID));
    const labels = { manifest_id: manifest, ...extra };
    if (manifest === OTHER) return labels;
    let series = this.#streamSeries.get(manifest);
    if (!series) {
      series = new Map();
      this.#streamSeries.set(manifest, series);
    }
    const key = `${(metric as unknown as { name: string }).name}|${labelKey(labels)}`;
    if (!series.has(key)) series.set(key, totals ? () => totals.delete(labels) : () => { metric.remove(labels); });
    return labels;
  }

  /**
   * Drops every series labelled with this manifest ID (only with manifestIdLabels). Call
   * it a while after the stream ended (two scrape intervals or more), so the last values
   * are scraped; it bounds cardinality on long-running gateways.
   */
  forgetStream(manifestID: string): void {
    const label = this.notSecret(manifestIdLabel(manifestID));
    if (label === OTHER) return;
    const series = this.#streamSeries.get(label);
    if (!series) return;
    for (const remove of series.values()) remove();
    this.#streamSeries.delete(label);
  }

  /** Content-Type of `metricsText()` (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus text format; each pull source is read once. */
  metricsText(): Promise<string> {
    for (const s of this.#snapshots) s.begin();
    try {
      return this.registry.metrics();
    } finally {
      for (const s of this.#snapshots) s.end();
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

  /** Unregisters everything and drops the sources. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#snapshots) s.clear();
    this.registry.clear();
  }
}
