/**
 * Stream ownership leases in Redis: who ingests a live manifest ID, cluster-wide. One lease
 * per manifest ID, held by the gateway that ingests it over RTMP (owner = the gateway's member
 * ID, src/member-id.ts) or by an HTTP push session (owner `push:<session>`), renewed by its
 * holder's heartbeat. A publish or push of a manifest ID whose lease another owner holds is
 * refused, on every gateway sharing the Redis; when the holder dies its lease expires after
 * `ttlMs`, and the next publish (to any gateway) takes it (docs/architecture.md, "Stream
 * ownership").
 *
 * Keys (deployment prefix `p`, manifest ID `m`):
 * - `p:ingest:lease:m`   STRING  owner ID, PX `ttlMs`: set by `acquire` when absent (or
 *                                extended when the caller holds it), extended by `renew`,
 *                                deleted by `release` only by its holder.
 * Every step is one Lua script (lua/*-stream-lease*.lua): compare-and-set, so two gateways
 * racing for one manifest ID never both hold it, and a holder that lost its lease cannot
 * extend or delete the new holder's.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';

const STREAM_LEASE_SCRIPTS = {
  acquire: luaScript('mgStreamLeaseAcquire', 1, new URL('./lua/acquire-stream-lease.lua', import.meta.url)),
  renew: luaScript('mgStreamLeaseRenew', 'variable', new URL('./lua/renew-stream-leases.lua', import.meta.url)),
  release: luaScript('mgStreamLeaseRelease', 1, new URL('./lua/release-stream-lease.lua', import.meta.url)),
};

/**
 * The outcome of {@link RedisStreamLeases.acquire}: the caller holds the lease now, or
 * another owner does (its ID and how long its lease still runs unless renewed, ms).
 */
export type StreamLeaseClaim =
  | { readonly acquired: true }
  | { readonly acquired: false; readonly holder: string; readonly remainingMs: number };

/** A lease a holder keeps: the manifest ID and the owner it holds it as. */
export interface HeldLease {
  readonly manifestID: string;
  readonly owner: string;
}

/** The owner string of an HTTP push session's lease: `push:<session>`. */
export function pushLeaseOwner(session: string): string {
  return `push:${session}`;
}

export interface RedisStreamLeasesOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`), shared by every gateway of the deployment. */
  keys: RedisKeys;
}

export class RedisStreamLeases {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts<keyof typeof STREAM_LEASE_SCRIPTS>;

  constructor(options: RedisStreamLeasesOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#scripts = new RedisScripts(options.redis, STREAM_LEASE_SCRIPTS);
  }

  #lease(manifestID: string): string {
    return this.#keys.key('ingest', 'lease', manifestID);
  }

  /**
   * Takes the lease of `manifestID` for `owner` for `ttlMs`, or extends it when `owner`
   * already holds it (so a push session may call it on every push: one round trip).
   * @param ttlMs lease lifetime without renewal, ms (the gateway uses `hls.heartbeatTtlMs`)
   * @returns `{acquired: true}`, or `{acquired: false, holder, remainingMs}` while another owner holds it
   * @throws the Redis error (connection lost, script error) as ioredis reports it
   */
  async acquire(manifestID: string, owner: string, ttlMs: number): Promise<StreamLeaseClaim> {
    const reply = (await this.#scripts.run('acquire', [this.#lease(manifestID)], [owner, String(Math.ceil(ttlMs))])) as [number, string, number?];
    if (Number(reply[0]) === 1) return { acquired: true };
    return { acquired: false, holder: reply[1], remainingMs: Math.max(Number(reply[2] ?? 0), 0) };
  }

  /**
   * Extends every lease in `held` for `ttlMs` (one script run for all of them); a lease that
   * expired and nobody took is taken back.
   * @returns the entries of `held` another owner holds now (lost: stop ingesting them)
   */
  async renew<T extends HeldLease>(held: readonly T[], ttlMs: number): Promise<T[]> {
    if (held.length === 0) return [];
    const lost = (await this.#scripts.run('renew', held.map((h) => this.#lease(h.manifestID)),
      [String(Math.ceil(ttlMs)), ...held.map((h) => h.owner)])) as number[];
    return lost.map((i) => held[Number(i)]!);
  }

  /**
   * Gives the lease of `manifestID` up if `owner` holds it (a stream that ended).
   * @returns whether `owner` held it
   */
  async release(manifestID: string, owner: string): Promise<boolean> {
    return Number(await this.#scripts.run('release', [this.#lease(manifestID)], [owner])) === 1;
  }

  /** Who holds the lease of `manifestID` and for how much longer (ms), or `undefined` when nobody does. */
  async holder(manifestID: string): Promise<{ owner: string; remainingMs: number } | undefined> {
    const [[, owner], [, pttl]] = (await this.#redis.multi().get(this.#lease(manifestID)).pttl(this.#lease(manifestID)).exec())! as
      [[unknown, string | null], [unknown, number]];
    return owner === null ? undefined : { owner, remainingMs: Math.max(Number(pttl), 0) };
  }
}
