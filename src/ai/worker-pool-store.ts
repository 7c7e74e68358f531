/**
 * The cluster's AI worker pool in Redis: every gateway sharing the Redis (and deployment
 * prefix) sees the same registrations, the same health and the same in-flight counts, so a
 * worker registers once, through any gateway, and its capacity holds across all of them.
 *
 * Keys (deployment prefix `p`):
 * - `p:ai:workers`  HASH  workerID → registration JSON ({@link PooledWorker})
 * - `p:ai:expiry`   HASH  workerID → epoch ms (Redis server clock) the registration expires at:
 *                          renewed by each registration and by each health answer of the worker
 * - `p:ai:health`   HASH  workerID → `<status> <checkedAtMs>`, written by the one gateway that
 *                          polled it (lua/save-health.lua)
 * - `p:ai:poll:<workerID>`  STRING  which gateway polls the worker this interval (SET NX PX)
 * - `p:ai:slots:<workerID>:<pipeline>:<model_id>`  ZSET  lease ID → expiry (epoch ms, server
 *                          clock): one lease per request running on the worker; its size is the
 *                          worker's in-flight count for that model across the cluster
 *
 * Every step that must be atomic is one Lua script (src/ai/lua/, KEYS/ARGV in each header);
 * the scripts read the Redis server's clock, so gateways on hosts with skewed clocks agree on
 * expiries. On the request path: {@link RedisWorkerPool.acquire} is one EVALSHA, and
 * {@link RedisWorkerPool.release} one ZREM.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { PoolRegistration } from './worker-registry.ts';

const NOW_MS = new URL('./lua/now-ms.lua', import.meta.url);

/** The pool's scripts (KEYS, ARGV and reply in each file's header), through ioredis `defineCommand` (src/redis/scripts.ts). */
const POOL_SCRIPTS = {
  save: luaScript('mgAiSaveWorker', 2, new URL('./lua/save-worker.lua', import.meta.url), [NOW_MS]),
  health: luaScript('mgAiSaveHealth', 3, new URL('./lua/save-health.lua', import.meta.url), [NOW_MS]),
  remove: luaScript('mgAiRemoveWorker', 3, new URL('./lua/remove-worker.lua', import.meta.url)),
  read: luaScript('mgAiReadPool', 3, new URL('./lua/read-pool.lua', import.meta.url), [NOW_MS]),
  acquire: luaScript('mgAiAcquireSlot', 1, new URL('./lua/acquire-slot.lua', import.meta.url), [NOW_MS]),
  renew: luaScript('mgAiRenewSlots', 'variable', new URL('./lua/renew-slots.lua', import.meta.url), [NOW_MS]),
  claimPolls: luaScript('mgAiClaimPolls', 0, new URL('./lua/claim-polls.lua', import.meta.url)),
};

/**
 * A worker's registration as stored for the cluster (worker-registry.ts `PoolRegistration`;
 * never shown to API callers as is: it holds the worker's token).
 */
export type PooledWorker = PoolRegistration;

/** One worker as read from the pool. */
export interface PooledWorkerState {
  readonly worker: PooledWorker;
  /** Last polled health, with when (epoch ms, Redis clock); undefined = not polled yet. */
  readonly health?: { readonly status: string; readonly checkedAtMs: number };
  /** In-flight leases per entry of `worker.pipelines`, same order. */
  readonly inFlight: readonly number[];
}

/** What one slot key holds: a slot of (worker, pipeline, model). */
export interface SlotRef {
  readonly workerID: string;
  readonly pipeline: string;
  readonly modelID: string;
}

export interface RedisWorkerPoolOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`); this store uses the `ai` scope. */
  keys: RedisKeys;
}

export class RedisWorkerPool {
  readonly #redis: Redis;
  readonly #scripts: RedisScripts<keyof typeof POOL_SCRIPTS>;
  readonly #keys: RedisKeys;
  readonly #poolKeys: [string, string, string];
  readonly #slotPrefix: string;
  readonly #pollPrefix: string;

  constructor(options: RedisWorkerPoolOptions) {
    this.#redis = options.redis;
    this.#scripts = new RedisScripts(options.redis, POOL_SCRIPTS);
    this.#keys = options.keys.scope('ai');
    this.#poolKeys = [this.#keys.key('workers'), this.#keys.key('expiry'), this.#keys.key('health')];
    this.#slotPrefix = `${this.#keys.key('slots')}:`;
    this.#pollPrefix = `${this.#keys.key('poll')}:`;
  }

  /** The slot ZSET of (worker, pipeline, model). */
  slotKey(slot: SlotRef): string {
    return `${this.#slotPrefix}${slot.workerID}:${slot.pipeline}:${slot.modelID}`;
  }

  /**
   * Registers or renews a worker for `ttlMs` (ms, Redis clock).
   * @returns true when the worker was new to the pool
   */
  async saveWorker(worker: PooledWorker, ttlMs: number): Promise<boolean> {
    const isNew = await this.#scripts.run('save', this.#poolKeys.slice(0, 2), [worker.id, JSON.stringify(worker), String(Math.ceil(ttlMs))]);
    return Number(isNew) === 1;
  }

  /** Removes a worker (its leases expire on their own). Resolves false when it was not registered. */
  async removeWorker(id: string): Promise<boolean> {
    return Number(await this.#scripts.run('remove', this.#poolKeys, [id])) === 1;
  }

  /**
   * Stores a worker's polled health for every gateway; any answer but UNREACHABLE renews its
   * registration for `registrationTtlMs`. The answer is dated `ageMs` before now (when its
   * poll began); an answer older than the stored one is not stored (a late, slow poll does not
   * overwrite a newer status). Resolves false when the worker is not registered.
   */
  async saveHealth(id: string, status: string, registrationTtlMs: number, ageMs = 0): Promise<boolean> {
    const reply = Number(await this.#scripts.run('health', this.#poolKeys, [id, status, String(Math.ceil(registrationTtlMs)), String(Math.max(0, Math.round(ageMs)))]));
    return reply === 1 || reply === 2;
  }

  /**
   * Every registered worker with its health and in-flight counts; registrations past their
   * expiry are dropped from Redis on the way. One round trip.
   */
  async read(): Promise<{ nowMs: number; workers: PooledWorkerState[] }> {
    const [nowMs, rows] = (await this.#scripts.run('read', this.#poolKeys, [this.#slotPrefix])) as [number, [string, string, string, number[]][]];
    const workers: PooledWorkerState[] = [];
    for (const [, json, health, counts] of rows) {
      let worker: PooledWorker;
      try {
        worker = JSON.parse(json) as PooledWorker;
      } catch {
        continue; // not ours: skipped
      }
      const [status, checkedAt] = health.split(' ');
      workers.push({
        worker, inFlight: counts.map(Number),
        ...(status ? { health: { status, checkedAtMs: Number(checkedAt) } } : {}),
      });
    }
    return { nowMs: Number(nowMs), workers };
  }

  /**
   * Elects this gateway to poll some workers' health: per worker, the first gateway to ask in
   * a `holdMs` window wins it.
   * @param owner this gateway's lock value (for inspection only)
   * @returns the IDs of the workers this gateway should poll now
   */
  async claimPolls(ids: readonly string[], holdMs: number, owner: string): Promise<string[]> {
    if (ids.length === 0) return [];
    return (await this.#scripts.run('claimPolls', [], [this.#pollPrefix, String(Math.max(1, Math.floor(holdMs))), owner, ...ids])) as string[];
  }

  /**
   * Takes one in-flight slot of `slot` under lease `leaseID` for `ttlMs`, if fewer than
   * `capacity` are held (expired leases are reclaimed first). One round trip.
   * @returns whether it was taken, and the leases held now (the cluster's in-flight count)
   */
  async acquire(slot: SlotRef, leaseID: string, capacity: number, ttlMs: number): Promise<{ acquired: boolean; inFlight: number }> {
    const [taken, held] = (await this.#scripts.run('acquire', [this.slotKey(slot)], [leaseID, String(capacity), String(Math.ceil(ttlMs))])) as [number, number];
    return { acquired: Number(taken) === 1, inFlight: Number(held) };
  }

  /** Gives a slot back (ZREM of its lease). One round trip. */
  async release(slot: SlotRef, leaseID: string): Promise<void> {
    await this.#redis.zrem(this.slotKey(slot), leaseID);
  }

  /** Extends leases still held for another `ttlMs`. One round trip for all of them. */
  async renewLeases(leases: readonly { slotKey: string; leaseID: string }[], ttlMs: number): Promise<number> {
    if (leases.length === 0) return 0;
    return Number(await this.#scripts.run('renew', leases.map((l) => l.slotKey), [String(Math.ceil(ttlMs)), ...leases.map((l) => l.leaseID)]));
  }
}
