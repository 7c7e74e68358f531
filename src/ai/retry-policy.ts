/**
 * The retry policy for AI worker calls: one pure policy used by the single error path of
 * the AI router (hls.js style: RetryConfig + shouldRetry), docs/wire-contract.md §8.
 *
 * Livepeer retries a failed request on another worker within a retry budget, suspends the
 * failed worker for a few refresh generations, treats "insufficient capacity" as a retry
 * without suspension, and hard-codes its timeouts. mediagate keeps the rules and makes
 * every number configurable: attempts, a wall-clock budget, a timeout per pipeline clipped
 * to what is left of the budget, and an exponential suspension per worker.
 *
 * Retries go to a different worker at once (the selector excludes tried workers), so there
 * is no delay between attempts; the time dimension is the budget.
 */

import { PIPELINES, type FailureKind, type Pipeline } from '../domain/pipelines.ts';

export interface RetryConfig {
  /** Attempts per request, the first included; integer ≥ 1. Default 3. */
  readonly maxAttempts: number;
  /** Wall-clock budget for a request, ms, from its arrival (queue wait included); > 0. Default 60000. */
  readonly totalBudgetMs: number;
  /**
   * Timeout of one worker call per pipeline, ms; > 0. Defaults are mediagate's choices
   * (Livepeer hard-codes its timeouts): text-to-image 30000, image-to-image 30000,
   * image-to-video 120000, upscale 60000, audio-to-text 60000, llm 120000,
   * segment-anything-2 30000, image-to-text 30000, text-to-speech 60000.
   * Each attempt is clipped to the remaining budget ({@link attemptTimeoutMs}).
   */
  readonly attemptTimeoutMsByPipeline: Readonly<Record<Pipeline, number>>;
  /** Suspension after a worker's first consecutive failure, ms; > 0. Default 5000. */
  readonly suspendBaseMs: number;
  /** Longest suspension, ms; ≥ suspendBaseMs. Default 300000 (5 min). */
  readonly suspendMaxMs: number;
  /** How long a request waits for a free worker slot before 503, ms; ≥ 0. Default 2000. */
  readonly queueWaitMs: number;
}

export const DEFAULT_RETRY_CONFIG: RetryConfig = Object.freeze({
  maxAttempts: 3,
  totalBudgetMs: 60_000,
  attemptTimeoutMsByPipeline: Object.freeze({
    'text-to-image': 30_000,
    'image-to-image': 30_000,
    'image-to-video': 120_000,
    upscale: 60_000,
    'audio-to-text': 60_000,
    llm: 120_000,
    'segment-anything-2': 30_000,
    'image-to-text': 30_000,
    'text-to-speech': 60_000,
  }),
  suspendBaseMs: 5_000,
  suspendMaxMs: 300_000,
  queueWaitMs: 2_000,
});

/** Overrides for {@link makeRetryConfig}; timeouts merge per pipeline. */
export type RetryConfigOverrides = Partial<Omit<RetryConfig, 'attemptTimeoutMsByPipeline'>> & {
  readonly attemptTimeoutMsByPipeline?: Readonly<Partial<Record<Pipeline, number>>>;
};

/**
 * {@link DEFAULT_RETRY_CONFIG} with overrides applied (timeouts merged per pipeline), validated.
 * @throws Error naming the bad field ({@link validateRetryConfig}).
 */
export function makeRetryConfig(overrides: RetryConfigOverrides = {}): RetryConfig {
  const config: RetryConfig = {
    ...DEFAULT_RETRY_CONFIG,
    ...overrides,
    attemptTimeoutMsByPipeline: {
      ...DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline,
      ...overrides.attemptTimeoutMsByPipeline,
    },
  };
  validateRetryConfig(config);
  return config;
}

/**
 * Check a config's fields.
 * @throws Error whose message starts with the bad field's path, e.g.
 *   `retry.maxAttempts must be an integer >= 1 (got 0)`.
 */
export function validateRetryConfig(config: RetryConfig): void {
  const fail = (field: string, rule: string, value: unknown): never => {
    throw new Error(`retry.${field} must be ${rule} (got ${JSON.stringify(value) ?? String(value)})`);
  };
  const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

  if (!(isNum(config.maxAttempts) && Number.isInteger(config.maxAttempts) && config.maxAttempts >= 1)) {
    fail('maxAttempts', 'an integer >= 1', config.maxAttempts);
  }
  if (!(isNum(config.totalBudgetMs) && config.totalBudgetMs > 0)) fail('totalBudgetMs', 'a number > 0', config.totalBudgetMs);
  const timeouts: unknown = config.attemptTimeoutMsByPipeline;
  if (typeof timeouts !== 'object' || timeouts === null) {
    fail('attemptTimeoutMsByPipeline', 'an object keyed by pipeline', timeouts);
  }
  for (const key of Object.keys(timeouts as object)) {
    if (!(PIPELINES as readonly string[]).includes(key)) {
      fail(`attemptTimeoutMsByPipeline.${key}`, `one of the pipelines (${PIPELINES.join(', ')})`, key);
    }
  }
  for (const pipeline of PIPELINES) {
    const v = config.attemptTimeoutMsByPipeline[pipeline];
    if (!(isNum(v) && v > 0)) fail(`attemptTimeoutMsByPipeline.${pipeline}`, 'a number > 0', v);
  }
  if (!(isNum(config.suspendBaseMs) && config.suspendBaseMs > 0)) fail('suspendBaseMs', 'a number > 0', config.suspendBaseMs);
  if (!(isNum(config.suspendMaxMs) && config.suspendMaxMs >= config.suspendBaseMs)) {
    fail('suspendMaxMs', `a number >= suspendBaseMs (${config.suspendBaseMs})`, config.suspendMaxMs);
  }
  if (!(isNum(config.queueWaitMs) && config.queueWaitMs >= 0)) fail('queueWaitMs', 'a number >= 0', config.queueWaitMs);
}

/**
 * Whether a request whose attempt just failed gets another attempt (on another worker).
 * 'client' never (the worker's 4xx goes to the client as 400); every other kind while
 * `attempt < maxAttempts` and `elapsedMs < totalBudgetMs`.
 *
 * @param attempt 1-based number of the attempt that just failed
 * @param elapsedMs ms since the request arrived
 */
export function shouldRetry(kind: FailureKind, attempt: number, elapsedMs: number, config: RetryConfig = DEFAULT_RETRY_CONFIG): boolean {
  if (kind === 'client') return false;
  return attempt < config.maxAttempts && elapsedMs < config.totalBudgetMs;
}

/**
 * Timeout for the next worker call, ms: the pipeline's timeout, clipped to what is left of
 * the budget (`totalBudgetMs − elapsedMs`); never below 0 (0 = no time left, do not call).
 */
export function attemptTimeoutMs(pipeline: Pipeline, elapsedMs: number, config: RetryConfig = DEFAULT_RETRY_CONFIG): number {
  return Math.max(0, Math.min(config.attemptTimeoutMsByPipeline[pipeline], config.totalBudgetMs - elapsedMs));
}

/**
 * Whether a failure suspends the worker: 'timeout', 'connection', 'server' do; 'capacity'
 * (Livepeer: insufficient capacity is a retry, not a suspension) and 'client' (the request's
 * fault) do not.
 */
export function suspendsWorker(kind: FailureKind): boolean {
  switch (kind) {
    case 'timeout':
    case 'connection':
    case 'server':
      return true;
    case 'capacity':
    case 'client':
      return false;
  }
}

/**
 * How long to suspend a worker after its n-th consecutive suspending failure, ms:
 * `suspendBaseMs × 2^(n−1)`, at most `suspendMaxMs`; 0 when n < 1 (no failure).
 * (Livepeer suspends for a fixed few refresh generations.)
 */
export function suspensionMs(consecutiveFailures: number, config: RetryConfig = DEFAULT_RETRY_CONFIG): number {
  const n = Math.floor(consecutiveFailures);
  if (!(n >= 1)) return 0;
  return Math.min(config.suspendMaxMs, config.suspendBaseMs * 2 ** (n - 1));
}

/**
 * `Retry-After` seconds for a 503 "no worker available": the shortest suspension rounded up
 * (the earliest a suspended worker returns), at least 1 (the header takes whole seconds).
 */
export function retryAfterS(config: RetryConfig = DEFAULT_RETRY_CONFIG): number {
  return Math.max(1, Math.ceil(config.suspendBaseMs / 1000));
}
