/**
 * The WHIP ingest gauge, read from the WHIP sessions at each scrape (webrtc/whip-sessions.ts
 * `WhipSessions.size` fits the source). No per-stream label: each session is also a live
 * stream, counted by the ingest gauges under its manifest ID.
 */
import { Gauge } from 'prom-client';
import { metricName, type MetricsRegistry } from './metrics-registry.ts';

/** `mediagate_whip_sessions`: WHIP publishes open on this gateway (each with one bridge ffmpeg). */
export function registerWhipGauge(metrics: MetricsRegistry, sessions: () => number): void {
  new Gauge({
    name: metricName('whip_sessions'), registers: [metrics.registry],
    help: 'WHIP publishing sessions open on this gateway, each with one bridge ffmpeg (connecting ones included).',
    collect() { this.set(sessions()); },
  });
}
