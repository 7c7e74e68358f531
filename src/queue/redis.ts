/**
 * Redis connections. The queue folder is the only place that imports ioredis/bullmq
 * (docs/architecture.md, Boundaries); other folders get small interfaces implemented here.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log/logger.ts';
import { settleWithin } from '../domain/time-limit.ts';

export type { Redis };

export interface RedisConnectOptions {
  url: string;
  logger: Logger;
  /** Connection name shown by CLIENT LIST (e.g. `mediagate:gateway`). */
  name: string;
  /**
   * For BullMQ workers and blocking clients: `null` so commands wait out a Redis restart
   * instead of failing (BullMQ requires `null` on a Worker's connection: a number makes its
   * blocking commands fail after that many reconnect attempts). Default 3 for ordinary request/response use.
   */
  maxRetriesPerRequest?: number | null;
}

/**
 * Creates an ioredis client with an `error` listener attached (an unhandled `error`
 * event would crash the process) and a capped reconnect backoff (100 ms → 2 s).
 */
export function createRedis(options: RedisConnectOptions): Redis {
  const redisOptions: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 3 : options.maxRetriesPerRequest,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    lazyConnect: false,
  };
  const client = new Redis(options.url, redisOptions);
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (now - lastLogged > 5000) {
      lastLogged = now;
      options.logger.warn({ err: err.message, redis: redactRedisUrl(options.url) }, 'redis connection error');
    }
  });
  return client;
}

/** Removes a password from a redis URL so it can be logged. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//[redacted]@');
}

/**
 * Waits until the client answers PING.
 * @throws Error naming the URL (without password) and what to do, after `timeoutMs`.
 */
export async function waitForRedis(client: Redis, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      await settleWithin(client.ping(), 1000, () => { throw new Error('ping timed out'); });
      return;
    } catch (err) {
      lastError = (err as Error).message;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`cannot reach Redis at ${redactRedisUrl(url)} (${lastError}); start redis-server or set MEDIAGATE_REDIS_URL`);
}
