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
 * Both expire with the claim's TTL (default 1 h). A claim is one Lua step (lua/claim-push.lua),
 * so the same push arriving at two gateways at once is owned by exactly one of them.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { PushClaim, PushClaimState } from './ingest-ports.ts';

/** The claim in one step (KEYS, ARGV and reply in the file's header), through ioredis `defineCommand` (src/redis/scripts.ts). */
const PUSH_CLAIM_SCRIPTS = {
  claim: luaScript('mgPushClaim', 2, new URL('./lua/claim-push.lua', import.meta.url)),
};

export interface RedisPushClaimsOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`). */
  keys: RedisKeys;
}

export class RedisPushClaims {
  readonly #redis: Redis;
  readonly #scripts: RedisScripts<keyof typeof PUSH_CLAIM_SCRIPTS>;
  readonly #keys: RedisKeys;

  constructor(options: RedisPushClaimsOptions) {
    this.#redis = options.redis;
    this.#scripts = new RedisScripts(options.redis, PUSH_CLAIM_SCRIPTS);
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
    const nowMs = Date.now();
    const reply = (await this.#scripts.run('claim', [this.#pushKey(manifestID, session, seq), this.#pushedKey(manifestID, session)],
      [sha256, String(nowMs), String(nowMs + options.leaseMs), String(options.ttlS ?? 3600), String(seq)])) as [string, string?, string?];
    if (reply[0] === 'new') return { claim: 'new' };
    if (reply[0] === 'conflict') return { claim: 'conflict' };
    const result = reply[2];
    return { claim: 'same', state: reply[1] as PushClaimState, ...(result ? { result } : {}) };
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
