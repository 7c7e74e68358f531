/**
 * Retrying Redis operations on the media path across a Redis outage (a restart, a failover,
 * a network blip): the policy and executor of domain/outage-retry.ts (hls.js style: a
 * `RetryConfig`, `getRetryDelayMs`, `shouldRetry`) with what counts as a transient Redis
 * error; one executor that every media-path caller uses, instead of loops of their own.
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
import { getRetryDelayMs, nextRetryDelayMs, OutageRetry, validateOutageRetryConfig, type OutageRetryConfig } from '../domain/outage-retry.ts';
import { isGatewayError } from '../errors/gateway-error.ts';
import { isRedisUnavailable } from '../http/error-classes.ts';
import type { Logger } from '../log/logger.ts';

export { getRetryDelayMs };

export interface RedisRetryConfig extends OutageRetryConfig {
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
 * The policy (domain/outage-retry.ts `nextRetryDelayMs` with {@link isTransientRedisError}):
 * after attempt `retryCount` (0-based) failed with `err` at `nowMs`, the delay before the next
 * attempt in ms, or `undefined` to give up (the error is not transient, or the next attempt
 * would start after `deadlineMs`). The delay is clipped so that one last attempt runs at the deadline.
 */
export function shouldRetry(config: RedisRetryConfig, err: unknown, retryCount: number, nowMs: number, deadlineMs: number): number | undefined {
  return nextRetryDelayMs(config, isTransientRedisError(err), retryCount, nowMs, deadlineMs);
}

/**
 * Checks a config's fields.
 * @throws Error naming the bad field, e.g. `redis retry budgetMs must be a number > 0 (got 0)`.
 */
export function validateRedisRetryConfig(config: RedisRetryConfig): void {
  validateOutageRetryConfig(config, 'redis retry');
}

export interface RedisRetryOptions {
  logger: Logger;
  /** Overrides of {@link DEFAULT_REDIS_RETRY_CONFIG}. */
  config?: Partial<RedisRetryConfig>;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** The executor of the policy (domain/outage-retry.ts `OutageRetry`); one per process, shared by ingest and the transcoder. */
export class RedisRetry extends OutageRetry {
  declare readonly config: RedisRetryConfig;

  /** @throws Error naming a bad config field ({@link validateRedisRetryConfig}). */
  constructor(options: RedisRetryOptions) {
    super({
      config: { ...DEFAULT_REDIS_RETRY_CONFIG, ...options.config },
      label: 'redis retry',
      isTransient: isTransientRedisError,
      logger: options.logger,
      messages: { retrying: 'redis unavailable; retrying', recovered: 'redis operation succeeded after retries' },
      ...(options.now ? { now: options.now } : {}),
    });
  }
}
