/**
 * Per-receiver admission for webhook attempts (pure: clock and randomness injected), so one
 * slow or dead receiver cannot take every delivery slot of a worker and starve the others.
 *
 * For each receiver URL, per worker process:
 * - at most `maxInFlight` attempts run at once; a further job is deferred (`defer`: put
 *   back without spending an attempt) until a slot is likely free;
 * - after `failureThreshold` consecutive retryable failures (timeouts, refused connections,
 *   408/429/5xx) the circuit opens for `openMs`: jobs for that receiver then fail at once
 *   (`fail-fast`: spends an attempt, so the job's own exponential backoff and attempt limit
 *   still bound how long an event is kept). When `openMs` has passed, attempts go through
 *   again; one more retryable failure reopens the circuit, a success or a non-retryable
 *   answer (the receiver is up) closes it.
 */

export interface DeliveryGateOptions {
  /** Attempts in flight to one receiver at once; ≥ 1. */
  maxInFlight: number;
  /** Consecutive retryable failures that open the circuit; ≥ 1. */
  failureThreshold: number;
  /** How long an open circuit fails attempts fast, in ms. */
  openMs: number;
  /** The attempt deadline in ms: no slot stays busy longer than this. */
  timeoutMs: number;
  /** Shortest deferral in ms; default 100. */
  minDeferMs?: number;
  /** Clock in epoch ms; default `Date.now`. */
  nowMs?: () => number;
  /** Uniform [0, 1) source for jitter; default `Math.random`. */
  random?: () => number;
}

/** How an attempt ended, for the circuit. */
export type AttemptOutcome = 'delivered' | 'retryable' | 'permanent';

export type GateDecision =
  /**
   * Send now; call `release` once when the attempt ends (later calls are ignored). It
   * returns true when this outcome opened the circuit.
   */
  | { action: 'send'; release: (outcome: AttemptOutcome) => boolean }
  /** The receiver's slots are busy: put the job back for `delayMs` without spending an attempt. */
  | { action: 'defer'; delayMs: number }
  /** The circuit is open for another `openForMs`: fail this attempt without sending. */
  | { action: 'fail-fast'; openForMs: number };

interface ReceiverState {
  /** Start times (epoch ms) of the attempts in flight. */
  inFlight: Set<{ startedAtMs: number }>;
  consecutiveFailures: number;
  openUntilMs: number;
}

export class DeliveryGate {
  readonly #options: Required<DeliveryGateOptions>;
  readonly #receivers = new Map<string, ReceiverState>();

  constructor(options: DeliveryGateOptions) {
    if (!(options.maxInFlight >= 1) || !(options.failureThreshold >= 1)) throw new Error('delivery gate needs maxInFlight ≥ 1 and failureThreshold ≥ 1');
    this.#options = { minDeferMs: 100, nowMs: Date.now, random: Math.random, ...options };
  }

  /** Decides what to do with the next attempt to `receiver` (a URL or any stable key). */
  admit(receiver: string): GateDecision {
    const o = this.#options;
    const now = o.nowMs();
    const state = this.#receivers.get(receiver) ?? { inFlight: new Set(), consecutiveFailures: 0, openUntilMs: 0 };
    if (now < state.openUntilMs) return { action: 'fail-fast', openForMs: state.openUntilMs - now };
    if (state.inFlight.size >= o.maxInFlight) return { action: 'defer', delayMs: this.#deferMs(state, now) };
    this.#receivers.set(receiver, state);
    const slot = { startedAtMs: now };
    state.inFlight.add(slot);
    let released = false;
    return {
      action: 'send',
      release: (outcome) => {
        if (released) return false;
        released = true;
        state.inFlight.delete(slot);
        let opened = false;
        if (outcome === 'retryable') {
          state.consecutiveFailures += 1;
          if (state.consecutiveFailures >= o.failureThreshold) {
            const nowMs = o.nowMs();
            opened = state.openUntilMs <= nowMs;
            state.openUntilMs = nowMs + o.openMs;
          }
        } else {
          state.consecutiveFailures = 0;
          state.openUntilMs = 0;
        }
        if (state.inFlight.size === 0 && state.consecutiveFailures === 0) this.#receivers.delete(receiver);
        return opened;
      },
    };
  }

  /** Attempts in flight to `receiver` now. */
  inFlight(receiver: string): number {
    return this.#receivers.get(receiver)?.inFlight.size ?? 0;
  }

  /**
   * Until a slot is likely free: the oldest attempt has run `age` ms and ends by
   * `timeoutMs`; wait min(age, timeoutMs − age) (a fast receiver frees slots soon, a hanging
   * one at its deadline), at least `minDeferMs`, plus up to 50 % jitter so deferred jobs do
   * not come back together.
   */
  #deferMs(state: ReceiverState, now: number): number {
    const o = this.#options;
    let oldest = now;
    for (const slot of state.inFlight) oldest = Math.min(oldest, slot.startedAtMs);
    const age = now - oldest;
    const base = Math.max(o.minDeferMs, Math.min(age, o.timeoutMs - age));
    return Math.round(base * (1 + 0.5 * o.random()));
  }
}
