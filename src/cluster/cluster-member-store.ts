/**
 * Cluster membership in Redis (docs/architecture.md, "Cluster view"): every gateway and
 * transcoder process publishes a heartbeat record of itself (cluster-heartbeat.ts); a
 * member that stops publishing drops out when its record expires, with no cleanup step.
 *
 * Keys (deployment prefix `p`; kind `gateway` | `transcoder`; member ID `id`, core's
 * `memberId`, `<hostname>-<pid>-<random4>`):
 * - `p:cluster:member:<kind>:<id>`  STRING JSON {@link MemberRecord}, PX the member TTL: gone
 *                                   by itself a TTL after the last heartbeat.
 * - `p:cluster:members`             ZSET `<kind>:<id>` scored by that expiry (epoch ms): the
 *                                   listing; entries past their score are pruned by every
 *                                   heartbeat and every read (ZREMRANGEBYSCORE).
 * A process with an embedded transcoder is two members with one ID: a gateway and a transcoder.
 *
 * Cost: a heartbeat is one MULTI round trip of 2 commands per member plus one
 * ZREMRANGEBYSCORE (3 for a gateway or a transcoder, 5 for a gateway with its embedded
 * transcoder); a read is two round trips (MULTI ZREMRANGEBYSCORE + ZRANGE, then MGET).
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';

/** What kind of process a member is. */
export type MemberKind = 'gateway' | 'transcoder';

/** What every member says of itself. */
interface MemberBase {
  /** The process's member ID (`<hostname>-<pid>-<random4>`). */
  readonly id: string;
  /** mediagate's version (package.json). */
  readonly version: string;
  /** When the process started, epoch ms. */
  readonly startedAtMs: number;
  /** When this record was published, epoch ms (the member's clock). */
  readonly heartbeatAtMs: number;
}

/** A gateway's record. */
export interface GatewayRecord extends MemberBase {
  readonly kind: 'gateway';
  /** Its HTTP base URL (`http.publicUrl`, or the bound address). */
  readonly address: string;
  /** Its RTMP ingest address (`rtmp://host:port`); absent when RTMP is off. */
  readonly rtmpAddress?: string;
  /** Live streams it holds now (RTMP publishes and HTTP push sessions). */
  readonly streams: number;
}

/** A transcoder's record (a standalone transcoder, or a gateway's embedded one). */
export interface TranscoderRecord extends MemberBase {
  readonly kind: 'transcoder';
  /** Its `/metrics` and `/healthz` base URL, or the gateway's URL for an embedded one; absent when it serves none. */
  readonly address?: string;
  /** Whether it runs inside a gateway process (`transcode.embedded`). */
  readonly embedded: boolean;
  /** Its slots (`transcode.concurrency`). */
  readonly slots: number;
  /** Slots in use: live sessions owned plus per-segment jobs running. */
  readonly inFlight: number;
  /** Live transcoding sessions it owns. */
  readonly liveSessions: number;
  /** Per-segment jobs it runs. */
  readonly jobs: number;
  /** The host's 1-minute load average divided by its CPU count (1 = every core busy). */
  readonly load: number;
}

export type MemberRecord = GatewayRecord | TranscoderRecord;

/** The members whose heartbeat is current, by kind, each list sorted by ID. */
export interface ClusterMembers {
  readonly gateways: GatewayRecord[];
  readonly transcoders: TranscoderRecord[];
}

export interface RedisClusterMembersOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  keys: RedisKeys;
  /** Clock, epoch ms (tests); default `Date.now`. */
  now?: () => number;
}

export class RedisClusterMembers {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #now: () => number;

  constructor(options: RedisClusterMembersOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#now = options.now ?? Date.now;
  }

  #member(kind: MemberKind, id: string): string { return this.#keys.key('cluster', 'member', kind, id); }
  #members(): string { return this.#keys.key('cluster', 'members'); }

  /**
   * Publishes records (one process's members) valid until `ttlMs` from now, in one round trip.
   * @throws Error when Redis does not answer (the heartbeat logs it and tries again next time)
   */
  async publish(records: readonly MemberRecord[], ttlMs: number): Promise<void> {
    const now = this.#now();
    const px = Math.max(1, Math.round(ttlMs));
    const multi = this.#redis.multi();
    for (const r of records) {
      multi.set(this.#member(r.kind, r.id), JSON.stringify(r), 'PX', px).zadd(this.#members(), String(now + px), `${r.kind}:${r.id}`);
    }
    await multi.zremrangebyscore(this.#members(), '-inf', String(now)).exec();
  }

  /** Removes a process's members at once (a clean shutdown), instead of waiting for their expiry. */
  async withdraw(members: readonly { kind: MemberKind; id: string }[]): Promise<void> {
    if (members.length === 0) return;
    const multi = this.#redis.multi();
    for (const m of members) multi.del(this.#member(m.kind, m.id)).zrem(this.#members(), `${m.kind}:${m.id}`);
    await multi.exec();
  }

  /**
   * The members whose heartbeat is current. Prunes expired entries from the listing first.
   * A record that is unreadable JSON is left out.
   */
  async list(): Promise<ClusterMembers> {
    const replies = await this.#redis.multi()
      .zremrangebyscore(this.#members(), '-inf', String(this.#now()))
      .zrange(this.#members(), '0', '-1')
      .exec();
    const names = (replies?.[1]?.[1] as string[] | undefined) ?? [];
    const gateways: GatewayRecord[] = [];
    const transcoders: TranscoderRecord[] = [];
    if (names.length === 0) return { gateways, transcoders };
    const values = await this.#redis.mget(...names.map((n) => this.#keys.key('cluster', 'member', n)));
    for (const raw of values) {
      const record = raw ? parseRecord(raw) : undefined;
      if (record?.kind === 'gateway') gateways.push(record);
      else if (record?.kind === 'transcoder') transcoders.push(record);
    }
    const byId = (a: MemberRecord, b: MemberRecord): number => a.id.localeCompare(b.id);
    return { gateways: gateways.sort(byId), transcoders: transcoders.sort(byId) };
  }
}

function parseRecord(raw: string): MemberRecord | undefined {
  try {
    const r = JSON.parse(raw) as MemberRecord;
    return typeof r === 'object' && r !== null && typeof r.id === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}
