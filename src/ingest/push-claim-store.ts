/**
 * Push claims in Redis: each HTTP-pushed segment, identified by (manifestID, session, seq), is
 * claimed with the SHA-256 of its bytes before any work, so a retry of the same push (to any
 * gateway sharing the Redis) is answered from the first push's outcome instead of being
 * transcoded and charged again, and a push of different bytes for the same seq is refused.
 *
 * Keys (deployment prefix `p`, manifest ID `m`, session `s`):
 * - `p:push:m:s:seq`   HASH  sha256, state (pending|done|failed), result (JSON), leaseUntilMs
 * - `p:pushed:m:s`     ZSET  seqs pushed in session `s`. The segment index (hls/segment-index-store.ts)
 *                            reads it to find the edge of a push gap in one step: both spell it
 *                            `<prefix>:pushed:<manifestID>:<session>`.
 * Both expire with the claim's TTL (default 1 h).
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { PushClaim, PushClaimState } from './ingest-ports.ts';

export interface RedisPushClaimsOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`). */
  keys: RedisKeys;
}

export class RedisPushClaims {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(options: RedisPushClaimsOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
  }

  #pushKey(m: string, session: string, seq: number): string {
    return this.#keys.key('push', m, session, seq);
  }

  #pushedKey(m: string, session: string): string {
    return this.#keys.key('pushed', m, session);
  }

  /**
   * Claims a pushed (manifestID, session, seq) for processing, idempotently.
   * @param options.leaseMs how long a `pending` claim belongs to the push that made it, ms (its
   *   reply timeout and some slack): a claim still pending after that was never settled (its
   *   gateway died, or lost Redis mid-push), and the next push of the same bytes takes it over.
   * @param options.ttlS lifetime of the claim, s; default 3600.
   * @returns `new` when this call owns the work; `same` with the stored state when the same
   *   bytes were pushed before; `conflict` when different bytes were.
   */
  async claimPush(manifestID: string, session: string, seq: number, sha256: string, options: { leaseMs: number; ttlS?: number }): Promise<PushClaim> {
    const key = this.#pushKey(manifestID, session, seq);
    const ttlS = options.ttlS ?? 3600;
    const nowMs = Date.now();
    const leaseUntilMs = String(nowMs + options.leaseMs);
    const created = await this.#redis.hsetnx(key, 'sha256', sha256);
    if (created === 1) {
      const pushed = this.#pushedKey(manifestID, session);
      await this.#redis.multi().hset(key, 'state', 'pending', 'leaseUntilMs', leaseUntilMs).expire(key, ttlS).zadd(pushed, seq, String(seq)).expire(pushed, ttlS).exec();
      return { claim: 'new' };
    }
    const [stored, state, result, lease] = await this.#redis.hmget(key, 'sha256', 'state', 'result', 'leaseUntilMs');
    if (stored !== sha256) {
      if (state !== 'failed') return { claim: 'conflict' };
      // A failed push may be corrected with other bytes; it is transcoded but was already resolved in the playlists.
      await this.#redis.multi().hset(key, 'sha256', sha256, 'state', 'pending', 'leaseUntilMs', leaseUntilMs).hdel(key, 'result').expire(key, ttlS).exec();
      return { claim: 'new' };
    }
    if ((state ?? 'pending') === 'pending' && Number(lease ?? 0) < nowMs) {
      // Abandoned: nobody will settle it. Taking it over is safe, the work is idempotent (job ID, index, hold).
      await this.#redis.multi().hset(key, 'state', 'pending', 'leaseUntilMs', leaseUntilMs).expire(key, ttlS).exec();
      return { claim: 'new' };
    }
    return { claim: 'same', state: (state as PushClaimState | null) ?? 'pending', ...(result ? { result } : {}) };
  }

  /** Stores the outcome of a claimed push (`result` is opaque JSON for the reply). */
  async settlePush(manifestID: string, session: string, seq: number, state: 'done' | 'failed', result: string): Promise<void> {
    await this.#redis.hset(this.#pushKey(manifestID, session, seq), { state, result });
  }

  /** The state of a claimed push, or `undefined` when nothing was pushed (or it expired). */
  async pushState(manifestID: string, session: string, seq: number): Promise<{ state: PushClaimState; result?: string } | undefined> {
    const [state, result] = await this.#redis.hmget(this.#pushKey(manifestID, session, seq), 'state', 'result');
    if (!state) return undefined;
    return { state: state as PushClaimState, ...(result ? { result } : {}) };
  }
}
