/**
 * Worker selection for one (pipeline, model_id): the pure decision (docs/wire-contract.md §8).
 *
 * Livepeer's algorithm, matched: warm pool before cold pool; within a pool, lowest latency
 * score (seconds per work unit, see work-units.ts) first; a failed worker is dropped for the
 * request and suspended (retry-policy.ts decides for how long).
 *
 * Improved: real in-flight capacity (a full worker is never chosen, and load breaks score
 * ties); every request is decided afresh from current state (no sticky first session); new
 * workers get traffic through exploration instead of waiting for the known ones to fail.
 *
 * Keeping one candidate list and its scores per (pipeline, model_id) is the caller's job;
 * nothing here does I/O or reads the clock or a random source of its own.
 */

/** One worker's state for the selector's (pipeline, model_id). */
export interface Candidate {
  readonly workerID: string;
  /** Model loaded and ready: warm workers are preferred over cold ones. */
  readonly warm: boolean;
  /** Requests the worker runs at once for this model (WorkerCapability.capacity). */
  readonly capacity: number;
  /** Requests this gateway has running on the worker for this model now. */
  readonly inFlight: number;
  /**
   * EWMA of seconds per work unit ({@link updateLatencyScore}); undefined = not scored yet
   * (no request completed on this worker for this model).
   */
  readonly latencyScoreSPerUnit?: number;
  /** Epoch ms until which the worker is suspended after failures; absent = not suspended. */
  readonly suspendedUntilMs?: number;
  /** Last health check answered OK (or IDLE). */
  readonly healthy: boolean;
  /** Last health check answered LOADING: not usable yet, but soon (a request may wait for it). */
  readonly loading?: boolean;
}

/** 10% of decisions in a pool mixing scored and unscored workers go to an unscored one. */
export const DEFAULT_EXPLORATION_RATE = 0.1;

/** EWMA weight of a new latency sample. */
export const DEFAULT_LATENCY_ALPHA = 0.3;

export interface SelectOptions {
  /** Current time, epoch ms (compared with suspendedUntilMs). */
  readonly nowMs: number;
  /** Workers already tried for this request. */
  readonly excluded: ReadonlySet<string>;
  /** Uniform in [0, 1), e.g. Math.random; called at most once per decision. */
  readonly random: () => number;
  /** Probability in [0, 1] of exploring an unscored worker. Default {@link DEFAULT_EXPLORATION_RATE}. */
  readonly explorationRate?: number;
}

/**
 * Whether a worker can take a request now: healthy, not suspended
 * (suspendedUntilMs ≤ nowMs counts as over), and not full (inFlight < capacity).
 */
export function isAvailable(candidate: Candidate, nowMs: number): boolean {
  return (
    candidate.healthy &&
    !(candidate.suspendedUntilMs !== undefined && candidate.suspendedUntilMs > nowMs) &&
    candidate.inFlight < candidate.capacity
  );
}

/**
 * Choose the worker for the next attempt of a request, or undefined when none can take it
 * (the caller then waits for capacity or answers 503).
 *
 * 1. Drop unavailable ({@link isAvailable}) and excluded workers.
 * 2. Pool: the warm workers if any remain, else the cold ones.
 * 3. In the pool: if no worker is scored, take an unscored one. If some are scored and
 *    some not, take an unscored one when `random() < explorationRate`. Otherwise take the
 *    lowest latency score.
 * 4. Ties (and the choice among unscored workers): lowest inFlight/capacity, then workerID
 *    (string order) so the decision is deterministic.
 *
 * @throws Error when explorationRate is outside [0, 1].
 */
export function selectWorker(candidates: readonly Candidate[], options: SelectOptions): Candidate | undefined {
  const explorationRate = options.explorationRate ?? DEFAULT_EXPLORATION_RATE;
  if (!(explorationRate >= 0 && explorationRate <= 1)) {
    throw new Error(`explorationRate must be within [0, 1] (got ${explorationRate})`);
  }
  const available = candidates.filter((c) => isAvailable(c, options.nowMs) && !options.excluded.has(c.workerID));
  const warm = available.filter((c) => c.warm);
  const pool = warm.length > 0 ? warm : available;
  if (pool.length === 0) return undefined;

  const scored = pool.filter((c) => c.latencyScoreSPerUnit !== undefined);
  const unscored = pool.filter((c) => c.latencyScoreSPerUnit === undefined);
  if (scored.length === 0) return leastLoaded(unscored);
  if (unscored.length > 0 && explorationRate > 0 && options.random() < explorationRate) {
    return leastLoaded(unscored);
  }
  return scored.reduce((best, c) => (compareScored(c, best) < 0 ? c : best));
}

/**
 * Free request slots among available workers: Σ (capacity − inFlight) over workers that
 * {@link isAvailable} and are not in `excluded`. 0 means a new request cannot start now.
 */
export function freeCapacity(candidates: readonly Candidate[], nowMs: number, excluded?: ReadonlySet<string>): number {
  let free = 0;
  for (const c of candidates) {
    if (isAvailable(c, nowMs) && !excluded?.has(c.workerID)) free += c.capacity - c.inFlight;
  }
  return free;
}

/**
 * Exponentially weighted moving average of seconds per work unit:
 * `alpha × sample + (1 − alpha) × previous`, or the sample itself for the first one.
 *
 * @param previous current score, undefined when the worker is not scored yet
 * @param sampleSPerUnit a completed request's duration in seconds / its work units (≥ 0)
 * @param alpha weight of the new sample, in (0, 1]; default {@link DEFAULT_LATENCY_ALPHA}
 * @throws Error when sampleSPerUnit is negative or not finite, or alpha is outside (0, 1]
 */
export function updateLatencyScore(previous: number | undefined, sampleSPerUnit: number, alpha = DEFAULT_LATENCY_ALPHA): number {
  if (!(Number.isFinite(sampleSPerUnit) && sampleSPerUnit >= 0)) {
    throw new Error(`sampleSPerUnit must be a finite number >= 0 (got ${sampleSPerUnit})`);
  }
  if (!(alpha > 0 && alpha <= 1)) throw new Error(`alpha must be within (0, 1] (got ${alpha})`);
  if (previous === undefined) return sampleSPerUnit;
  return alpha * sampleSPerUnit + (1 - alpha) * previous;
}

function leastLoaded(pool: readonly Candidate[]): Candidate | undefined {
  let best: Candidate | undefined;
  for (const c of pool) if (best === undefined || compareLoad(c, best) < 0) best = c;
  return best;
}

function compareScored(a: Candidate, b: Candidate): number {
  const sa = a.latencyScoreSPerUnit ?? Infinity;
  const sb = b.latencyScoreSPerUnit ?? Infinity;
  return sa !== sb ? (sa < sb ? -1 : 1) : compareLoad(a, b);
}

/** inFlight/capacity ascending (cross-multiplied: no float division), then workerID. */
function compareLoad(a: Candidate, b: Candidate): number {
  const load = a.inFlight * b.capacity - b.inFlight * a.capacity;
  if (load !== 0) return load;
  return a.workerID < b.workerID ? -1 : a.workerID > b.workerID ? 1 : 0;
}
