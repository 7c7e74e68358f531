/**
 * Push sessions in Redis: the state of each live HTTP push session (its identity, ladder,
 * account, end seq, listed segments, the leases of its pushes in flight and its idle
 * deadline), so consecutive pushes of one stream may land on any gateway sharing the Redis
 * and still form one session, and its idle end runs on exactly one gateway, even when the
 * gateway that took the last push is gone.
 *
 * Keys (deployment prefix `p`, pushed stream `id`: a hash of its stream name, never the name):
 * - `p:pushsess:id`           HASH  state (opening|live), owner (the reservation, while opening),
 *                                   session, manifestID, accountID ('' = not metered), profiles (JSON: the
 *                                   ladder array, or `{"explicit":true,"profiles":[...]}` for a ladder the
 *                                   publisher's side set),
 *                                   startedAtMs, endSeq (one past the highest pushed seq), segments
 *                                   (source segments listed), watermark (JSON spec, '' = none)
 * - `p:pushsess:id:inflight`  ZSET  push token → lease end (epoch ms): pushes still running
 * - `p:pushidle`              ZSET  id → idle deadline (epoch ms): max(end of the last push, latest
 *                                   live lease) + `push.idleTimeoutMs`; read by every gateway's sweep
 * - `p:heartbeats`            ZSET  the segment index's heartbeats (hls/segment-index-store.ts spells
 *                                   it the same): a push stream's is its idle deadline + a margin, so
 *                                   the index sweep ends it only if no gateway ran its idle end
 * - `p:ingest:lease:m`        STRING the stream lease of the session's manifest ID (ingest/stream-lease-store.ts):
 *                                   while the session holds it (owner `push:<session>`) every push extends it
 *                                   like the heartbeat, and the session's end releases it
 * Both hashes expire `keepMs` (default 1 h) after the idle deadline, so nothing outlives a
 * deployment that lost every gateway. Each step is one Lua script (./lua/push-session-*.lua);
 * ending is a compare-and-delete, so of all gateways trying only one gets `ended`.
 * Redis round trips: one per push to enter, one when it is over; opening a session adds two.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { VideoProfile } from '../domain/profile.ts';
import { parseWatermarkSpec } from '../domain/watermark.ts';
import type { EndedPushSession, PushEnter, PushLease, PushSessionRecord, PushSessionStore } from './ingest-ports.ts';

const FUNCTIONS = [new URL('./lua/push-session-functions.lua', import.meta.url)];
/** The store's scripts (KEYS, ARGV and reply in each file's header), through ioredis `defineCommand` (src/redis/scripts.ts). */
const PUSH_SESSION_SCRIPTS = {
  reserve: luaScript('mgPushSessionReserve', 1, new URL('./lua/push-session-reserve.lua', import.meta.url)),
  activate: luaScript('mgPushSessionActivate', 4, new URL('./lua/push-session-activate.lua', import.meta.url), FUNCTIONS),
  enter: luaScript('mgPushSessionEnter', 4, new URL('./lua/push-session-enter.lua', import.meta.url), FUNCTIONS),
  exit: luaScript('mgPushSessionExit', 4, new URL('./lua/push-session-exit.lua', import.meta.url), FUNCTIONS),
  end: luaScript('mgPushSessionEnd', 3, new URL('./lua/push-session-end.lua', import.meta.url)),
};

export interface RedisPushSessionsOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`). */
  keys: RedisKeys;
  /**
   * How long past its idle deadline a push stream's segment-index heartbeat lasts, ms
   * (`hls.heartbeatTtlMs`): the push sweep of a live gateway ends the session first.
   */
  heartbeatMarginMs: number;
  /** How long a session's hashes outlive its idle deadline, ms; default 3 600 000. */
  keepMs?: number;
}

export class RedisPushSessions implements PushSessionStore {
  readonly #redis: Redis;
  readonly #scripts: RedisScripts<keyof typeof PUSH_SESSION_SCRIPTS>;
  readonly #keys: RedisKeys;
  readonly #marginMs: number;
  readonly #keepMs: number;

  constructor(options: RedisPushSessionsOptions) {
    this.#redis = options.redis;
    this.#scripts = new RedisScripts(options.redis, PUSH_SESSION_SCRIPTS);
    this.#keys = options.keys;
    this.#marginMs = options.heartbeatMarginMs;
    this.#keepMs = options.keepMs ?? 3_600_000;
  }

  /** `<p>:ingest:lease:`: the stream leases' keys (ingest/stream-lease-store.ts) are this and the manifest ID. */
  get #leasePrefix(): string {
    return `${this.#keys.key('ingest', 'lease')}:`;
  }

  #sessionKeys(id: string): [string, string, string, string] {
    return [this.#keys.key('pushsess', id), this.#keys.key('pushsess', id, 'inflight'), this.#keys.key('pushidle'), this.#keys.key('heartbeats')];
  }

  async enter(id: string, push: PushLease): Promise<PushEnter> {
    const nowMs = Date.now();
    const reply = (await this.#scripts.run('enter', this.#sessionKeys(id), [
      id, push.token, String(nowMs), String(nowMs + push.leaseMs), String(push.idleMs), String(this.#marginMs), String(push.seq), String(this.#keepMs), this.#leasePrefix,
    ])) as string[];
    if (reply[0] === 'none' || reply[0] === 'opening') return { state: reply[0] };
    if (reply[0] === 'early') return { state: 'early', firstSeq: Number(reply[1]) };
    const [, session, manifestID, accountID, profiles, startedAtMs, deadline, watermark] = reply as [string, string, string, string, string, string, string, string | undefined];
    const spec = watermark ? parseWatermarkSpec(JSON.parse(watermark)) : undefined;
    return { state: 'live', record: { ...toRecord(session, manifestID, accountID, profiles, startedAtMs), ...(spec ? { watermark: spec } : {}) }, deadlineMs: Number(deadline) };
  }

  async reserve(id: string, owner: string, leaseMs: number): Promise<'reserved' | 'opening' | 'live'> {
    return (await this.#scripts.run('reserve', [this.#keys.key('pushsess', id)], [owner, String(leaseMs)])) as 'reserved' | 'opening' | 'live';
  }

  async release(id: string, owner: string): Promise<void> {
    const key = this.#keys.key('pushsess', id);
    const [state, current] = await this.#redis.hmget(key, 'state', 'owner');
    // A reservation is only ever the opener's; between the read and the delete nobody else can take it.
    if (state === 'opening' && current === owner) await this.#redis.del(key);
  }

  async activate(id: string, owner: string, record: PushSessionRecord, push: PushLease): Promise<number | undefined> {
    const nowMs = Date.now();
    const deadline = Number(await this.#scripts.run('activate', this.#sessionKeys(id), [
      owner, id, record.session, record.manifestID, record.accountID ?? '', ladderJson(record), String(record.startedAtMs),
      push.token, String(nowMs), String(nowMs + push.leaseMs), String(push.idleMs), String(this.#marginMs), String(push.seq), String(this.#keepMs), this.#leasePrefix,
      record.watermark ? JSON.stringify(record.watermark) : '',
    ]));
    return deadline < 0 ? undefined : deadline;
  }

  async exit(id: string, session: string, push: { token: string; idleMs: number; listed: boolean }): Promise<number | undefined> {
    const deadline = Number(await this.#scripts.run('exit', this.#sessionKeys(id), [
      id, session, push.token, String(Date.now()), String(push.idleMs), String(this.#marginMs), push.listed ? '1' : '0', String(this.#keepMs), this.#leasePrefix,
    ]));
    return deadline < 0 ? undefined : deadline;
  }

  async end(id: string, options: { session?: string; idleOnly: boolean; nowMs?: number }): Promise<
    { state: 'ended'; ended: EndedPushSession } | { state: 'busy'; deadlineMs: number } | { state: 'gone' | 'opening' }> {
    const reply = (await this.#scripts.run('end', this.#sessionKeys(id).slice(0, 3), [
      id, options.session ?? '', String(options.nowMs ?? Date.now()), options.idleOnly ? '1' : '0', this.#leasePrefix,
    ])) as string[];
    if (reply[0] === 'busy') return { state: 'busy', deadlineMs: Number(reply[1]) };
    if (reply[0] !== 'ended') return { state: reply[0] as 'gone' | 'opening' };
    const [, session, manifestID, accountID, profiles, startedAtMs, endSeq, segments] = reply as [string, string, string, string, string, string, string, string];
    return { state: 'ended', ended: { ...toRecord(session, manifestID, accountID, profiles, startedAtMs), endSeq: Number(endSeq), segments: Number(segments) } };
  }

  async idle(nowMs: number, limit: number): Promise<string[]> {
    return this.#redis.zrangebyscore(this.#keys.key('pushidle'), '-inf', nowMs, 'LIMIT', 0, limit);
  }
}

/** The stored `profiles` field: the ladder array, wrapped with `explicit` when the publisher's side set it. */
function ladderJson(record: PushSessionRecord): string {
  return JSON.stringify(record.explicitLadder === true ? { explicit: true, profiles: record.profiles } : record.profiles);
}

function toRecord(session: string, manifestID: string, accountID: string, profiles: string, startedAtMs: string): PushSessionRecord {
  const ladder = JSON.parse(profiles) as VideoProfile[] | { explicit: boolean; profiles: VideoProfile[] };
  const explicit = !Array.isArray(ladder) && ladder.explicit === true;
  return {
    session, manifestID, accountID: accountID === '' ? undefined : accountID, profiles: Array.isArray(ladder) ? ladder : ladder.profiles,
    ...(explicit ? { explicitLadder: true } : {}), startedAtMs: Number(startedAtMs),
  };
}
