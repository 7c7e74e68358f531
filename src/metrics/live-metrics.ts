/**
 * The live video-to-video families (ai/live/: live-sessions.ts, live-session.ts): frames in
 * and out (rate() of them is the input and output fps), the end-to-end latency (an input
 * segment sent to the worker → the output segment completing its frames received), swaps by reason, sessions
 * ended by reason, and sessions running now. No per-stream labels (cardinality), only enums.
 * Livepeer's gateway reports the same things as `ai_live_*` figures.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { metricName, type MetricsRegistry } from './metrics-registry.ts';
import { enumLabel } from './metric-labels.ts';

/** Why a session left a worker (ai/live/live-ports.ts LiveSwapKind). */
export const LIVE_SWAP_KINDS = ['events', 'output', 'slow', 'worker'] as const;
/** Why a session ended (ai/live/live-ports.ts LiveEndKind). */
export const LIVE_END_KINDS = ['stopped', 'input-ended', 'too-many-swaps', 'insufficient-balance', 'no-worker', 'shutdown'] as const;

/** Latency buckets, seconds: a segment of ~2 s through a worker takes 2-10 s end to end. */
const LATENCY_BUCKETS_S = [0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 20, 30];

/** The live families on one registry; the recorder port of ai/live (LiveRecorder). Never throws. */
export class LiveMetrics {
  readonly #inputFrames: Counter<string>;
  readonly #outputFrames: Counter<string>;
  readonly #latency: Histogram<string>;
  readonly #swaps: Counter<string>;
  readonly #ended: Counter<string>;

  constructor(metrics: MetricsRegistry) {
    const registers = [metrics.registry];
    this.#inputFrames = new Counter({
      name: metricName('live_v2v_input_frames_total'), registers,
      help: 'Video frames of input segments sent to live video-to-video workers (rate() = input fps).',
    });
    this.#outputFrames = new Counter({
      name: metricName('live_v2v_output_frames_total'), registers,
      help: 'Video frames of output segments received from live video-to-video workers (rate() = output fps).',
    });
    this.#latency = new Histogram({
      name: metricName('live_v2v_latency_seconds'), registers, buckets: LATENCY_BUCKETS_S,
      help: 'Live video-to-video end-to-end latency: an input segment sent to the worker → the output segment completing its frames received, seconds.',
    });
    this.#swaps = new Counter({
      name: metricName('live_v2v_swaps_total'), registers, labelNames: ['reason'],
      help: `Live video-to-video sessions leaving a worker for another, by reason (${LIVE_SWAP_KINDS.join('|')}).`,
    });
    this.#ended = new Counter({
      name: metricName('live_v2v_sessions_ended_total'), registers, labelNames: ['reason'],
      help: `Live video-to-video sessions ended, by reason (${LIVE_END_KINDS.join('|')}).`,
    });
  }

  /** `mediagate_live_v2v_sessions`: sessions running on this gateway, read at each scrape. */
  registerSessionsGauge(metrics: MetricsRegistry, count: () => number): void {
    new Gauge({
      name: metricName('live_v2v_sessions'), registers: [metrics.registry],
      help: 'Live video-to-video sessions running on this gateway.',
      collect() { this.set(count()); },
    });
  }

  recordInputFrames(frames: number): void {
    if (Number.isFinite(frames) && frames > 0) this.#inputFrames.inc(frames);
  }

  recordOutputFrames(frames: number): void {
    if (Number.isFinite(frames) && frames > 0) this.#outputFrames.inc(frames);
  }

  recordLatencyMs(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#latency.observe(ms / 1000);
  }

  recordSwap(reason: string): void {
    this.#swaps.inc({ reason: enumLabel(LIVE_SWAP_KINDS, reason) });
  }

  recordSessionEnd(reason: string): void {
    this.#ended.inc({ reason: enumLabel(LIVE_END_KINDS, reason) });
  }
}
