/**
 * The WHEP playback gauges, read from the WHEP sessions at each scrape (webrtc/whep-sessions.ts
 * `WhepSessions.counts()` fits the source). No per-stream labels: the per-stream limit is a
 * setting, and a series per watched stream would come and go with every preview.
 */
import { Gauge } from 'prom-client';
import { metricName, type MetricsRegistry } from './metrics-registry.ts';

/** `mediagate_whep_viewers` (viewers now) and `mediagate_whep_streams` (streams watched now: one relay ffmpeg each). */
export function registerWhepGauges(metrics: MetricsRegistry, counts: () => { viewers: number; streams: Record<string, number> }): void {
  const registers = [metrics.registry];
  new Gauge({
    name: metricName('whep_viewers'), registers,
    help: 'WHEP viewers on this gateway (webrtc.whepMaxViewers at most).',
    collect() { this.set(counts().viewers); },
  });
  new Gauge({
    name: metricName('whep_streams'), registers,
    help: 'Streams watched over WHEP on this gateway, each with one relay ffmpeg.',
    collect() { this.set(Object.keys(counts().streams).length); },
  });
}
