/**
 * The metrics of one process: one registry (prom-client's event-loop monitor cannot be
 * started twice in a process) and every feature's families on it, in both roles. Each
 * family object is the recorder port its feature declares; the composition root passes them.
 */
import { MetricsRegistry, type MetricsRegistryOptions } from './metrics-registry.ts';
import { HttpMetrics } from './http-metrics.ts';
import { IngestMetrics } from './ingest-metrics.ts';
import { TranscodeMetrics } from './transcode-metrics.ts';
import { AiMetrics, type AiMetricsOptions } from './ai-metrics.ts';
import { LedgerMetrics } from './ledger-metrics.ts';
import { LiveMetrics } from './live-metrics.ts';

export interface ProcessMetrics {
  readonly registry: MetricsRegistry;
  readonly http: HttpMetrics;
  readonly ingest: IngestMetrics;
  readonly transcode: TranscodeMetrics;
  readonly ai: AiMetrics;
  readonly ledger: LedgerMetrics;
  readonly live: LiveMetrics;
}

/** Builds the registry and each feature's families; close with `registry.close()`. */
export function createProcessMetrics(options: MetricsRegistryOptions & { ai?: AiMetricsOptions }): ProcessMetrics {
  const { ai, ...registryOptions } = options;
  const registry = new MetricsRegistry(registryOptions);
  return {
    registry,
    ingest: new IngestMetrics(registry),
    transcode: new TranscodeMetrics(registry),
    ai: new AiMetrics(registry, ai),
    ledger: new LedgerMetrics(registry),
    live: new LiveMetrics(registry),
    http: new HttpMetrics(registry),
  };
}
