/**
 * The restream output families: bytes sent, uptime and state of each output running on this
 * gateway, read from the outputs feature at each scrape (outputs/output-manager.ts
 * `OutputManager.metrics()` fits the source). Labels: `output_id` (a random ID) and
 * `manifest_id`, never the target URL (it carries the target's stream key). Series exist
 * while the output runs here (at most `outputs.maxPerStream` per stream held here).
 */
import { Gauge } from 'prom-client';
import { metricName, type MetricsRegistry, type PullSource } from './metrics-registry.ts';
import { manifestIdLabel } from './metric-labels.ts';

/** One output as the source lists it. */
export interface OutputMetricSourceEntry {
  readonly manifestID: string;
  readonly outputId: string;
  /** `connecting` | `live` | `retrying` | `stopped`. */
  readonly state: string;
  readonly bytesSent: number;
  readonly uptimeSeconds: number;
}

/** The output states, each a series of `mediagate_output_state` (1 for the current one). */
const OUTPUT_STATES = ['connecting', 'live', 'retrying', 'stopped'] as const;

/**
 * `mediagate_output_sent_bytes{output_id,manifest_id}`, `mediagate_output_uptime_seconds{…}` and
 * `mediagate_output_state{output_id,manifest_id,state}`, read from `source` once per scrape.
 */
export function registerOutputGauges(metrics: MetricsRegistry, source?: PullSource<OutputMetricSourceEntry>): void {
  const outputs = metrics.pullSource('outputs', source);
  const registers = [metrics.registry];
  const labelsOf = (o: OutputMetricSourceEntry): { output_id: string; manifest_id: string } => ({ output_id: o.outputId, manifest_id: metrics.notSecret(manifestIdLabel(o.manifestID)) });
  new Gauge({
    name: metricName('output_sent_bytes'), registers, labelNames: ['output_id', 'manifest_id'],
    help: 'Bytes a restream output has written to its target, over every connection (ffmpeg -progress total_size).',
    async collect() {
      this.reset();
      for (const o of (await outputs.pull()) ?? []) this.set(labelsOf(o), o.bytesSent);
    },
  });
  new Gauge({
    name: metricName('output_uptime_seconds'), registers, labelNames: ['output_id', 'manifest_id'],
    help: 'Seconds the current connection of a restream output has been live; 0 unless live.',
    async collect() {
      this.reset();
      for (const o of (await outputs.pull()) ?? []) this.set(labelsOf(o), o.uptimeSeconds);
    },
  });
  new Gauge({
    name: metricName('output_state'), registers, labelNames: ['output_id', 'manifest_id', 'state'],
    help: 'A restream output\'s state: 1 on its current state (connecting|live|retrying|stopped), 0 on the others.',
    async collect() {
      this.reset();
      for (const o of (await outputs.pull()) ?? []) {
        for (const state of OUTPUT_STATES) this.set({ ...labelsOf(o), state }, o.state === state ? 1 : 0);
      }
    },
  });
}
