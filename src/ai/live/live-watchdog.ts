/**
 * The watchdog decisions of a live video-to-video session, as pure functions of what the
 * session observed (docs/wire-contract.md, "Live video-to-video"). The values are
 * Livepeer's (go-livepeer server/ai_live_video.go): no event from the worker for 30 s →
 * leave it; no output segment for 30 s while input arrived within the last 15 s (half the
 * output timeout) → suspend the worker and leave it; a new input segment while 3 are still
 * being sent → the worker is slow, leave it; after leaving a worker the session swaps to
 * another one, at most 2 swaps within 3 minutes of the previous swap (or of the start),
 * else it stops with "Too many swaps". The session (live-session.ts) passes its settings.
 */

/** The watchdog timings and limits (config `ai.live.*`). */
export interface WatchdogLimits {
  /** No event for longer than this → leave the worker, ms. Livepeer: 30000. */
  readonly eventTimeoutMs: number;
  /** No output segment for this long while input is recent → suspend and leave the worker, ms. Livepeer: 30000. */
  readonly outputTimeoutMs: number;
  /** Input segments being sent at once before the worker counts as slow. Livepeer: 3. */
  readonly maxInflightSegments: number;
}

/** What a session observed of its current worker; times in ms on one clock. */
export interface WorkerActivity {
  /** When the worker was started (the watchdogs count from here until the first event / output). */
  readonly startedAtMs: number;
  readonly lastEventAtMs?: number;
  readonly lastOutputAtMs?: number;
  /** When the last input segment was sent to the worker (any worker of the session). */
  readonly lastInputAtMs?: number;
}

/** Leave the worker (`suspend`: and keep it out of selection for a while), or keep it. */
export type WatchdogVerdict =
  | { readonly leave: false }
  | { readonly leave: true; readonly reason: string; readonly suspend: boolean };

const KEEP: WatchdogVerdict = { leave: false };

/**
 * The periodic check of a worker: events first (Livepeer's "timeout waiting for events"),
 * then output ("timeout waiting for segments", only while input is recent: no input, no
 * output, and that is not the worker's fault).
 */
export function checkWorker(activity: WorkerActivity, nowMs: number, limits: WatchdogLimits): WatchdogVerdict {
  const sinceEventMs = nowMs - (activity.lastEventAtMs ?? activity.startedAtMs);
  if (sinceEventMs > limits.eventTimeoutMs) {
    return { leave: true, reason: `timeout waiting for events (none for ${Math.round(sinceEventMs)} ms)`, suspend: false };
  }
  const sinceOutputMs = nowMs - (activity.lastOutputAtMs ?? activity.startedAtMs);
  const inputRecent = activity.lastInputAtMs !== undefined && nowMs - activity.lastInputAtMs < limits.outputTimeoutMs / 2;
  if (sinceOutputMs >= limits.outputTimeoutMs && inputRecent) {
    return { leave: true, reason: `timeout waiting for segments (no output for ${Math.round(sinceOutputMs)} ms while input flows)`, suspend: true };
  }
  return KEEP;
}

/**
 * Whether a new input segment may be sent while `inFlight` are still being sent (Livepeer's
 * SlowOrchChecker: refused once `maxInflightSegments` are in flight: the worker is slow).
 */
export function checkInflight(inFlight: number, limits: Pick<WatchdogLimits, 'maxInflightSegments'>): WatchdogVerdict {
  return inFlight >= limits.maxInflightSegments
    ? { leave: true, reason: `worker is slow (${inFlight} input segments still in flight)`, suspend: false }
    : KEEP;
}

/** The swap budget's state: when the last swap (or the start) was, and swaps counted since. */
export interface SwapBudgetState {
  readonly lastSwapAtMs: number;
  readonly recentSwaps: number;
}

/** A fresh budget at the session's start. */
export function newSwapBudget(startedAtMs: number): SwapBudgetState {
  return { lastSwapAtMs: startedAtMs, recentSwaps: 0 };
}

/**
 * Asks for one more swap at `nowMs` (Livepeer's orchestratorSwapper.checkSwap): a swap within
 * `windowMs` of the previous one (or of the start) adds to the recent count, a later one
 * restarts it at 1; more than `maxSwaps` recent swaps is refused ("Too many swaps").
 * @returns `allowed` and the state after the ask (unchanged `lastSwapAtMs` when refused)
 */
export function askSwap(state: SwapBudgetState, nowMs: number, limits: { windowMs: number; maxSwaps: number }): { allowed: boolean; state: SwapBudgetState } {
  const recentSwaps = nowMs - state.lastSwapAtMs < limits.windowMs ? state.recentSwaps + 1 : 1;
  if (recentSwaps > limits.maxSwaps) return { allowed: false, state: { lastSwapAtMs: state.lastSwapAtMs, recentSwaps } };
  return { allowed: true, state: { lastSwapAtMs: nowMs, recentSwaps } };
}
