/**
 * The AI results' expiry index in Redis: every result medium the AI routes store is noted here
 * with when it was stored, so the retention sweep (recording/recording-sweeper.ts) finds the
 * results past `ai.resultTtlS` by one range read instead of listing the results store, which
 * walked every result kept on every run (docs/architecture.md, AI results expiry).
 *
 * Keys (deployment prefix `p`):
 * - `p:ai:results`  ZSET  result key (`<requestID>/<n>.<ext>`, as in the results store) →
 *                         when it was stored, epoch ms (the storing gateway's clock)
 *
 * Scored by when a result was stored, not by when it expires, so the TTL the sweep applies is
 * the one configured when it runs (as with the store's own modification times before).
 * A member is removed by the sweep once its object is deleted; a member whose object is gone
 * already (another gateway's sweep, a full listing) costs one delete of a missing key.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';

export interface RedisResultIndexOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`); this store uses the `ai` scope. */
  keys: RedisKeys;
}

export class RedisResultIndex {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(options: RedisResultIndexOptions) {
    this.#redis = options.redis;
    this.#key = options.keys.scope('ai').key('results');
  }

  /**
   * Notes result keys stored at `storedAtMs` (epoch ms): one ZADD. Sent at once (no await
   * before it), so a caller that sends another command in the same turn of the event loop
   * sends both in one socket write (redis/connections.ts `CoalescingRedis`).
   */
  async add(keys: readonly string[], storedAtMs: number): Promise<void> {
    if (keys.length === 0) return;
    const args: (string | number)[] = [];
    for (const key of keys) args.push(storedAtMs, key);
    await this.#redis.zadd(this.#key, ...args);
  }

  /** Result keys stored at or before `atMs` (epoch ms), oldest first, at most `limit`. */
  async storedBy(atMs: number, limit: number): Promise<string[]> {
    return this.#redis.zrangebyscore(this.#key, '-inf', atMs, 'LIMIT', 0, limit);
  }

  /** Forgets result keys (their objects were deleted); unknown ones are fine. */
  async remove(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.#redis.zrem(this.#key, ...keys);
  }
}
