/**
 * Retrying Redis operations on the media path across a Redis outage (a restart, a failover,
 * a network blip): one pure policy (hls.js style: a `RetryConfig`, `getRetryDelayMs`,
 * `shouldRetry`; hls.js `src/utils/error-helper.ts`) and one executor that every media-path
 * caller uses, instead of loops of their own.
 *
 * Why a layer above ioredis: the gateway's request/response client fails a command once it
 * has waited through 3 reconnect attempts (`maxRetriesPerRequest: 3`, about 1.4 s with the
 * reconnect backoff of `createRedis`), so a blip of a second or two rejected the writes of a
 * finished source segment and lost it; BullMQ's `add` on its own connection waits forever
 * instead, and `TranscodeQueue.enqueue` gives up after its timeout. Operations here are
 * retried until a deadline that the caller sets per unit of work (a source segment: its
 * completion time + `budgetMs`), so a backlog that waits out an outage is bounded in time.
 *
 * The deadline is checked between attempts; an attempt under way is not cut short (a command
 * abandoned by us would still sit in ioredis's offline queue and run later, out of step). So
 * work can outlast its deadline by one attempt: ioredis fails a command queued while
 * disconnected after every 4th reconnect attempt (`maxRetriesPerRequest: 3`), at most ~8 s
 * with the 2 s reconnect cap; the transcode queue's enqueue gives up after its own timeout.
 *
 * Every operation run through it must be idempotent: a command whose reply was lost in the
 * outage may have run (ioredis re-sends unanswered commands after a reconnect).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isGatewayError } from '../errors/gateway-error.ts';
import { isRedisUnavailable } from '../http/error-classes.ts';
import type { Logger } from '../log/logger.ts';

export interface RedisRetryConfig {
  /** Delay before the first retry, ms; > 0. Default 200 (the first reconnect delay of `createRedis`). */
  readonly retryDelayMs: number;
  /** Longest delay between retries, ms; ≥ retryDelayMs. Default 2000 (the reconnect cap of `createRedis`). */
  readonly maxRetryDelayMs: number;
  /** `exponential`: retryDelayMs × 2^n; `linear`: retryDelayMs × (n + 1). Default exponential. */
  readonly backoff: 'exponential' | 'linear';
  /**
   * How long one unit of work (a source segment, a transcode result) keeps retrying across an
   * outage, ms, from when it was ready; > 0. Default 30000: three times the 10 s outage the
   * fault suite survives. Config `redis.mediaRetryBudgetMs`.
   */
  readonly budgetMs: number;
}

export const DEFAULT_REDIS_RETRY_CONFIG: RedisRetryConfig = Object.freeze({
  retryDelayMs: 200,
  maxRetryDelayMs: 2000,
  backoff: 'exponential',
  budgetMs: 30_000,
});

/**
 * Delay before retry number `retryCount` (0-based), ms: exponential or linear from
 * `retryDelayMs`, at most `maxRetryDelayMs`.
 */
export function getRetryDelayMs(config: RedisRetryConfig, retryCount: number): number {
  const n = Math.max(0, Math.floor(retryCount));
  const raw = config.backoff === 'linear' ? config.retryDelayMs * (n + 1) : config.retryDelayMs * 2 ** Math.min(n, 30);
  return Math.min(config.maxRetryDelayMs, raw);
}

/** Redis replies that mean "not now" rather than "never": a restarting (loading its AOF) or failing-over server. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)\b/;

/**
 * Whether an error means Redis is unreachable or restarting, so the same operation can
 * succeed later: what the HTTP layer answers 503 for (`isRedisUnavailable`: ioredis's
 * `MaxRetriesPerRequestError`, "Connection is closed.", connection errors), a server reply
 * of LOADING/BUSY/TRYAGAIN/MASTERDOWN/CLUSTERDOWN/READONLY, and `QUEUE_UNAVAILABLE` /
 * `REDIS_UNAVAILABLE` (the transcode queue's timeout on a Redis that does not answer).
 * Script errors, other server replies and every other `GatewayError` are not transient.
 */
export function isTransientRedisError(err: unknown): boolean {
  if (isGatewayError(err)) return err.code === 'QUEUE_UNAVAILABLE' || err.code === 'REDIS_UNAVAILABLE';
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return TRANSIENT_REPLY.test(err.message);
  return isRedisUnavailable(err);
}

/**
 * The policy: after attempt `retryCount` (0-based) failed with `err` at `nowMs`, the delay
 * before the next attempt in ms, or `undefined` to give up (the error is not transient, or
 * the next attempt would start after `deadlineMs`). The delay is clipped so that one last
 * attempt runs at the deadline.
 */
export function shouldRetry(config: RedisRetryConfig, err: unknown, retryCount: number, nowMs: number, deadlineMs: number): number | undefined {
  if (!isTransientRedisError(err)) return undefined;
  const remainingMs = deadlineMs - nowMs;
  if (remainingMs <= 0) return undefined;
  return Math.min(getRetryDelayMs(config, retryCount), remainingMs);
}

/**
 * Checks a config's fields.
 * @throws Error naming the bad field, e.g. `redis retry budgetMs must be a number > 0 (got 0)`.
 */
export function validateRedisRetryConfig(config: RedisRetryConfig): void {
  const fail = (field: string, rule: string, value: unknown): never => {
    throw new Error(`redis retry ${field} must be ${rule} (got ${JSON.stringify(value)})`);
  };
  const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!positive(config.retryDelayMs)) fail('retryDelayMs', 'a number > 0', config.retryDelayMs);
  if (!(positive(config.maxRetryDelayMs) && config.maxRetryDelayMs >= config.retryDelayMs)) {
    fail('maxRetryDelayMs', `a number >= retryDelayMs (${config.retryDelayMs})`, config.maxRetryDelayMs);
  }
  if (config.backoff !== 'exponential' && config.backoff !== 'linear') fail('backoff', '"exponential" or "linear"', config.backoff);
  if (!positive(config.budgetMs)) fail('budgetMs', 'a number > 0', config.budgetMs);
}

export interface RedisRetryOptions {
  logger: Logger;
  /** Overrides of {@link DEFAULT_REDIS_RETRY_CONFIG}. */
  config?: Partial<RedisRetryConfig>;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** The executor of the policy; one per process, shared by ingest and the transcoder. */
export class RedisRetry {
  readonly config: RedisRetryConfig;
  readonly #logger: Logger;
  readonly #now: () => number;

  /** @throws Error naming a bad config field ({@link validateRedisRetryConfig}). */
  constructor(options: RedisRetryOptions) {
    this.config = { ...DEFAULT_REDIS_RETRY_CONFIG, ...options.config };
    validateRedisRetryConfig(this.config);
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /** The deadline of a unit of work ready at `fromMs` (default now): `fromMs + budgetMs`, epoch ms. */
  deadline(fromMs: number = this.#now()): number {
    return fromMs + this.config.budgetMs;
  }

  /** {@link isTransientRedisError}. */
  isTransient(err: unknown): boolean {
    return isTransientRedisError(err);
  }

  /**
   * Runs `op`, and again after each transient failure while the policy allows
   * ({@link shouldRetry}) until `deadlineMs`. The first retry and the recovery are logged
   * (warn, info) with `what`.
   * @param what names the operation in logs, e.g. `list source segment`
   * @throws the last error when it is not transient or the deadline has passed.
   */
  async run<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T> {
    const startedAtMs = this.#now();
    for (let retryCount = 0; ; retryCount++) {
      try {
        const value = await op();
        if (retryCount > 0) this.#logger.info({ what, retries: retryCount, waitedMs: this.#now() - startedAtMs }, 'redis operation succeeded after retries');
        return value;
      } catch (err) {
        const delayMs = shouldRetry(this.config, err, retryCount, this.#now(), deadlineMs);
        if (delayMs === undefined) throw err;
        if (retryCount === 0) this.#logger.warn({ what, err: (err as Error).message, budgetMs: deadlineMs - startedAtMs }, 'redis unavailable; retrying');
        await sleep(delayMs);
      }
    }
  }
}
