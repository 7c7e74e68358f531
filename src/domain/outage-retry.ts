/**
 * Retrying the media path's operations across an outage of a backing service (Redis, the
 * object store): one pure policy (hls.js style: a `RetryConfig`, `getRetryDelayMs`,
 * `shouldRetry`; hls.js `src/utils/error-helper.ts`) and one executor, parameterised by what
 * counts as transient. redis/retry.ts (`RedisRetry`) and storage/store-retry.ts
 * (`StoreRetry`) are the two instances.
 *
 * Operations are retried until a deadline that the caller sets per unit of work (a source
 * segment: its completion time + `budgetMs`), so a backlog that waits out an outage is
 * bounded in time. The deadline is checked between attempts; an attempt under way is not cut
 * short, so work can outlast its deadline by one attempt. Every operation run through it must
 * be idempotent.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface OutageRetryConfig {
  /** Delay before the first retry, ms; > 0. */
  readonly retryDelayMs: number;
  /** Longest delay between retries, ms; ≥ retryDelayMs. */
  readonly maxRetryDelayMs: number;
  /** `exponential`: retryDelayMs × 2^n; `linear`: retryDelayMs × (n + 1). */
  readonly backoff: 'exponential' | 'linear';
  /** How long one unit of work keeps retrying across an outage, ms, from when it was ready; > 0. */
  readonly budgetMs: number;
}

/**
 * Delay before retry number `retryCount` (0-based), ms: exponential or linear from
 * `retryDelayMs`, at most `maxRetryDelayMs`.
 */
export function getRetryDelayMs(config: OutageRetryConfig, retryCount: number): number {
  const n = Math.max(0, Math.floor(retryCount));
  const raw = config.backoff === 'linear' ? config.retryDelayMs * (n + 1) : config.retryDelayMs * 2 ** Math.min(n, 30);
  return Math.min(config.maxRetryDelayMs, raw);
}

/**
 * The policy: after attempt `retryCount` (0-based) failed at `nowMs` with an error that is
 * `transient` or not, the delay before the next attempt in ms, or `undefined` to give up (not
 * transient, or the next attempt would start after `deadlineMs`). The delay is clipped so that
 * one last attempt runs at the deadline.
 */
export function nextRetryDelayMs(config: OutageRetryConfig, transient: boolean, retryCount: number, nowMs: number, deadlineMs: number): number | undefined {
  if (!transient) return undefined;
  const remainingMs = deadlineMs - nowMs;
  if (remainingMs <= 0) return undefined;
  return Math.min(getRetryDelayMs(config, retryCount), remainingMs);
}

/**
 * Checks a config's fields.
 * @param label names the config in the message, e.g. `redis retry`
 * @throws Error naming the bad field, e.g. `redis retry budgetMs must be a number > 0 (got 0)`.
 */
export function validateOutageRetryConfig(config: OutageRetryConfig, label: string): void {
  const fail = (field: string, rule: string, value: unknown): never => {
    throw new Error(`${label} ${field} must be ${rule} (got ${JSON.stringify(value)})`);
  };
  const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!positive(config.retryDelayMs)) fail('retryDelayMs', 'a number > 0', config.retryDelayMs);
  if (!(positive(config.maxRetryDelayMs) && config.maxRetryDelayMs >= config.retryDelayMs)) {
    fail('maxRetryDelayMs', `a number >= retryDelayMs (${config.retryDelayMs})`, config.maxRetryDelayMs);
  }
  if (config.backoff !== 'exponential' && config.backoff !== 'linear') fail('backoff', '"exponential" or "linear"', config.backoff);
  if (!positive(config.budgetMs)) fail('budgetMs', 'a number > 0', config.budgetMs);
}

/** The two log calls the executor makes (a pino logger fits). */
export interface RetryLog {
  warn(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
}

export interface OutageRetryOptions {
  /** The whole config, defaults already applied. */
  config: OutageRetryConfig;
  /** Names the config in validation errors, e.g. `redis retry`. */
  label: string;
  /** Whether an error means "not now" rather than "never". */
  isTransient: (err: unknown) => boolean;
  logger: RetryLog;
  /** Log messages of the first retry (warn) and of the recovery (info). */
  messages: { retrying: string; recovered: string };
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** The executor of the policy. */
export class OutageRetry {
  readonly config: OutageRetryConfig;
  readonly #isTransient: (err: unknown) => boolean;
  readonly #logger: RetryLog;
  readonly #messages: { retrying: string; recovered: string };
  readonly #now: () => number;

  /** @throws Error naming a bad config field ({@link validateOutageRetryConfig}). */
  constructor(options: OutageRetryOptions) {
    this.config = options.config;
    validateOutageRetryConfig(this.config, options.label);
    this.#isTransient = options.isTransient;
    this.#logger = options.logger;
    this.#messages = options.messages;
    this.#now = options.now ?? Date.now;
  }

  /** The deadline of a unit of work ready at `fromMs` (default now): `fromMs + budgetMs`, epoch ms. */
  deadline(fromMs: number = this.#now()): number {
    return fromMs + this.config.budgetMs;
  }

  /** Whether `err` is worth retrying (the `isTransient` given). */
  isTransient(err: unknown): boolean {
    return this.#isTransient(err);
  }

  /**
   * Runs `op`, and again after each transient failure while the policy allows
   * ({@link nextRetryDelayMs}) until `deadlineMs`. The first retry and the recovery are logged
   * (warn, info) with `what`.
   * @param what names the operation in logs, e.g. `list source segment`
   * @throws the last error when it is not transient or the deadline has passed.
   */
  async run<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T> {
    const startedAtMs = this.#now();
    for (let retryCount = 0; ; retryCount++) {
      try {
        const value = await op();
        if (retryCount > 0) this.#logger.info({ what, retries: retryCount, waitedMs: this.#now() - startedAtMs }, this.#messages.recovered);
        return value;
      } catch (err) {
        const delayMs = nextRetryDelayMs(this.config, this.isTransient(err), retryCount, this.#now(), deadlineMs);
        if (delayMs === undefined) throw err;
        if (retryCount === 0) this.#logger.warn({ what, err: (err as Error).message, budgetMs: deadlineMs - startedAtMs }, this.#messages.retrying);
        await sleep(delayMs);
      }
    }
  }
}
