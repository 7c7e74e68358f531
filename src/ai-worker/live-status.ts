/**
 * Status of a live video-to-video session as ai-runner reports it on the events channel
 * (Livepeer ai-runner `runner/live/process/status.py`; our description in docs/wire-contract.md
 * "Live video-to-video"): a `status` event every 10 s and whenever the parameters change,
 * `{"queue_event_type": "ai_stream_events", "event": {...}}`, timestamps in ms since the epoch.
 */

export type LivePipelineState = 'LOADING' | 'ONLINE' | 'OFFLINE' | 'DEGRADED_INPUT' | 'DEGRADED_INFERENCE' | 'ERROR';

/** ai-runner's queue event type for monitoring events. */
export const LIVE_EVENTS_QUEUE_TYPE = 'ai_stream_events';

/** Frames per second over a sliding window (ai-runner measures over 10 s). */
export class FpsMeter {
  readonly #windowMs: number;
  readonly #times: number[] = [];
  readonly #startMs: number;

  constructor(windowMs = 10_000, startMs = Date.now()) {
    this.#windowMs = windowMs;
    this.#startMs = startMs;
  }

  record(nowMs = Date.now()): void {
    this.#times.push(nowMs);
    this.#trim(nowMs);
  }

  /** Frames in the window divided by the window (or the time since start, when shorter), 2 decimals. */
  fps(nowMs = Date.now()): number {
    this.#trim(nowMs);
    const spanMs = Math.min(this.#windowMs, Math.max(1, nowMs - this.#startMs));
    return Math.round((this.#times.length * 100_000) / spanMs) / 100;
  }

  #trim(nowMs: number): void {
    while (this.#times.length > 0 && this.#times[0]! <= nowMs - this.#windowMs) this.#times.shift();
  }
}

export interface LiveStateInputs {
  readonly nowMs: number;
  readonly startMs: number;
  /** Last time a decoded input frame arrived / an output frame was produced; undefined = never. */
  readonly lastInputMs: number | undefined;
  readonly lastOutputMs: number | undefined;
  readonly inputFps: number;
  readonly inferenceFps: number;
  readonly lastErrorMs: number | undefined;
  /** The pipeline failed for good. */
  readonly failed: boolean;
  /** The session has stopped. */
  readonly stopped: boolean;
}

/**
 * The pipeline state, following ai-runner's rules (`process_guardian.py` `_compute_current_state`)
 * for a pipeline that loads instantly: ERROR when failed; OFFLINE when stopped; before any
 * output ONLINE for 2 s, then DEGRADED_INPUT without input or DEGRADED_INFERENCE (ERROR after
 * 10 s); ERROR when output stopped more than 5 s while input goes on; DEGRADED_INFERENCE for
 * 15 s after an error; DEGRADED_INPUT when input is over 2 s old or under 15 fps;
 * DEGRADED_INFERENCE when output is over 2 s old or under min(10, 0.8 × input fps); else ONLINE.
 */
export function liveState(i: LiveStateInputs): LivePipelineState {
  if (i.failed) return 'ERROR';
  if (i.stopped) return 'OFFLINE';
  const sinceInput = (i.nowMs - (i.lastInputMs ?? i.startMs)) / 1000;
  const sinceStart = (i.nowMs - i.startMs) / 1000;
  if (i.lastOutputMs === undefined) {
    if (sinceStart < 2) return 'ONLINE';
    if (i.lastInputMs === undefined) return 'DEGRADED_INPUT';
    return sinceStart < 10 ? 'DEGRADED_INFERENCE' : 'ERROR';
  }
  const sinceOutput = (i.nowMs - i.lastOutputMs) / 1000;
  if (sinceOutput > sinceInput + 1 && sinceOutput > 5) return 'ERROR';
  if (i.lastErrorMs !== undefined && i.nowMs - i.lastErrorMs < 15_000) return 'DEGRADED_INFERENCE';
  if (sinceInput > 2 || i.inputFps < 15) return 'DEGRADED_INPUT';
  if (sinceOutput > 2 || i.inferenceFps < Math.min(10, 0.8 * i.inputFps)) return 'DEGRADED_INFERENCE';
  return 'ONLINE';
}

/** The `event` of a status message (ai-runner's `PipelineStatus`, timestamps in ms). */
export interface LiveStatusEvent {
  readonly type: 'status';
  readonly pipeline: string;
  readonly start_time: number;
  readonly state: LivePipelineState;
  readonly last_state_update_time: number | null;
  readonly input_status: { readonly fps: number; readonly last_input_time: number | null };
  readonly inference_status: {
    readonly fps: number;
    readonly last_output_time: number | null;
    readonly last_params_update_time: number | null;
    readonly last_params: unknown;
    readonly last_params_hash: string | null;
    readonly last_error_time: number | null;
    readonly last_error: string | null;
    readonly last_restart_time: number | null;
    readonly last_restart_logs: string[] | null;
    readonly restart_count: number;
  };
  /** When the previous status event was sent (the session start for the first). */
  readonly last_status_timestamp: number;
  readonly timestamp: number;
}

/** One message of the events channel. */
export interface LiveEventMessage {
  readonly queue_event_type: string;
  readonly event: LiveStatusEvent | Record<string, unknown>;
}
