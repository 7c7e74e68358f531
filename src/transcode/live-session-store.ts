/**
 * Live transcoding sessions in Redis: the record of each RTMP stream whose ladder one
 * transcoder makes continuously, the lease that names that transcoder, and the free slots
 * transcoders advertise (docs/architecture.md, "Live transcoding sessions").
 *
 * Keys (deployment prefix `p`, manifest ID `m`, session `s`):
 * - `p:transcode:live:m:s`         HASH  record (JSON {@link LiveSessionRecord}), source (JSON
 *                                        SourceSegmentInfo, once the gateway knows it), state
 *                                        (open|ended), endSeq, next (the first seq not yet
 *                                        made), owner. TTL `sessionTtlMs`, renewed by the owner.
 * - `p:transcode:live-open`        ZSET  `m:s` of every session not finished, by opening time.
 * - `p:transcode:live-lease:m:s`   STRING owner ID, PX `leaseMs`: set NX by a claim, extended
 *                                        by compare-and-renew; a dead owner's lease expires.
 * - `p:transcode:member:<id>`      STRING JSON {slots, used}: a transcoder's advertised slots,
 *                                        PX the heartbeat TTL; `p:transcode:members` ZSET of IDs
 *                                        by expiry (listing).
 * - channel `p:transcode:live-opened` PUBLISH `m:s` when a session opens (live-session-bus.ts wakes
 *                                        the transcoders with a free slot).
 * Every lease step is one Lua script (lua/*-live-session.lua), so racing transcoders never
 * both own a session and a transcoder that lost its lease can no longer move its progress.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { VideoProfile } from '../domain/profile.ts';
import type { WatermarkSpec } from '../domain/watermark.ts';
import { parseSourceSegmentInfo, type SourceSegmentInfo } from '../domain/segment.ts';
import { liveOpenedChannel } from './live-session-bus.ts';

const LIVE_SESSION_SCRIPTS = {
  claim: luaScript('mgLiveSessionClaim', 2, new URL('./lua/claim-live-session.lua', import.meta.url)),
  renew: luaScript('mgLiveSessionRenew', 2, new URL('./lua/renew-live-session.lua', import.meta.url)),
  progress: luaScript('mgLiveSessionProgress', 2, new URL('./lua/progress-live-session.lua', import.meta.url)),
  release: luaScript('mgLiveSessionRelease', 3, new URL('./lua/release-live-session.lua', import.meta.url)),
};

/** What a transcoder needs to make a live stream's ladder, written by the gateway at publish. */
export interface LiveSessionRecord {
  readonly manifestID: string;
  readonly session: string;
  /** The stream's ladder (unfitted); the transcoder fits it to the source. */
  readonly profiles: readonly VideoProfile[];
  /**
   * Fit the ladder to the source (domain/ladder-fit.ts `fitLadderToSource`, with the source's
   * `bitrateBps`): a ladder the gateway chose. Absent: the publisher's side set it; only upscales are omitted.
   */
  readonly fitToSource?: boolean;
  /** Account the segments are charged to; absent: not metered. */
  readonly accountID?: string;
  /** Source segment target, ms (sets the lease's pace). */
  readonly segmentTargetMs: number;
  /** Epoch ms of the publish. */
  readonly openedAtMs: number;
  /** The stream's watermark (domain/watermark.ts), drawn on every rendition; absent: none. */
  readonly watermark?: WatermarkSpec;
}

/** A session a transcoder now owns: its record and where it stands. */
export interface ClaimedLiveSession {
  readonly record: LiveSessionRecord;
  /** The source as the gateway measured it; undefined until the gateway has set it. */
  readonly source: SourceSegmentInfo | undefined;
  /** The first seq not yet made by any owner (0 for a new session). */
  readonly nextSeq: number;
  /** Set once the stream ended at the gateway: one past its last seq. */
  readonly endSeq: number | undefined;
  /** Whether another transcoder owned it before (died, or released it): the ladder restarts, with a discontinuity. */
  readonly takeover: boolean;
}

/** A claim's outcome. */
export type LiveSessionClaim =
  | { readonly claim: 'ok'; readonly session: ClaimedLiveSession }
  | { readonly claim: 'taken' }
  | { readonly claim: 'gone' };

/** A transcoder's advertised capacity. */
export interface TranscoderSlots {
  readonly id: string;
  /** Slots it has (`transcode.concurrency`). */
  readonly slots: number;
  /** Slots in use: live sessions owned plus per-segment jobs running. */
  readonly used: number;
}

/** Default lifetime of a session record without renewal: an hour. */
export const DEFAULT_LIVE_SESSION_TTL_MS = 3_600_000;

export interface RedisLiveSessionsOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  keys: RedisKeys;
  /** Lifetime of a session record no owner renews, ms; default an hour. */
  sessionTtlMs?: number;
}

/** The member of the open set for one session. */
function member(manifestID: string, session: string): string {
  return `${manifestID}:${session}`;
}

/**
 * The Redis key of a live session's record (a hash: owner, progress `next`, source, ladder);
 * one spelling for this store and the feed writer, whose trim reads the record's `next`
 * (live-feed-store.ts).
 */
export function liveSessionKey(keys: RedisKeys, manifestID: string, session: string): string {
  return keys.key('transcode', 'live', manifestID, session);
}

export class RedisLiveSessions {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts<keyof typeof LIVE_SESSION_SCRIPTS>;
  readonly #ttlMs: number;

  constructor(options: RedisLiveSessionsOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#scripts = new RedisScripts(options.redis, LIVE_SESSION_SCRIPTS);
    this.#ttlMs = options.sessionTtlMs ?? DEFAULT_LIVE_SESSION_TTL_MS;
  }

  #session(m: string, s: string): string { return liveSessionKey(this.#keys, m, s); }
  #lease(m: string, s: string): string { return this.#keys.key('transcode', 'live-lease', m, s); }
  #open(): string { return this.#keys.key('transcode', 'live-open'); }
  #member(id: string): string { return this.#keys.key('transcode', 'member', id); }
  #members(): string { return this.#keys.key('transcode', 'members'); }

  // ---- gateway side ----

  /** Opens a session for transcoders to claim (idempotent), and tells the subscribed transcoders (live-session-bus.ts). */
  async open(record: LiveSessionRecord): Promise<void> {
    const key = this.#session(record.manifestID, record.session);
    await this.#redis.multi()
      .hset(key, { record: JSON.stringify(record), state: 'open' })
      .pexpire(key, this.#ttlMs)
      .zadd(this.#open(), String(record.openedAtMs), member(record.manifestID, record.session))
      .publish(liveOpenedChannel(this.#keys), member(record.manifestID, record.session))
      .exec();
  }

  /** Sets the source measurement the ladder is fitted to (the owner reads it while it waits). */
  async setSource(manifestID: string, session: string, source: SourceSegmentInfo): Promise<void> {
    await this.#redis.hset(this.#session(manifestID, session), 'source', JSON.stringify(source));
  }

  /** The stream ended at the gateway: `endSeq` is one past its last seq; the owner finishes up to it. */
  async end(manifestID: string, session: string, endSeq: number): Promise<void> {
    const key = this.#session(manifestID, session);
    // Only an existing record (a finished session stays finished).
    if (await this.#redis.exists(key)) await this.#redis.hset(key, { state: 'ended', endSeq: String(endSeq) });
  }

  // ---- transcoder side ----

  /**
   * Sessions not finished whose lease nobody holds, oldest first (at most `limit`). Drops
   * from the open set the members whose record has expired.
   */
  async unowned(limit = 16): Promise<{ manifestID: string; session: string }[]> {
    const members = await this.#redis.zrange(this.#open(), '0', '255');
    if (members.length === 0) return [];
    const parsed = members.map((m) => { const i = m.indexOf(':'); return { m, manifestID: m.slice(0, i), session: m.slice(i + 1) }; });
    const pipeline = this.#redis.pipeline();
    for (const p of parsed) pipeline.exists(this.#session(p.manifestID, p.session)).exists(this.#lease(p.manifestID, p.session));
    const replies = (await pipeline.exec()) ?? [];
    const free: { manifestID: string; session: string }[] = [];
    const expired: string[] = [];
    parsed.forEach((p, i) => {
      const exists = replies[2 * i]?.[1] === 1;
      const leased = replies[2 * i + 1]?.[1] === 1;
      if (!exists) expired.push(p.m);
      else if (!leased && free.length < limit) free.push({ manifestID: p.manifestID, session: p.session });
    });
    if (expired.length > 0) await this.#redis.zrem(this.#open(), ...expired);
    return free;
  }

  /**
   * The `openedAtMs` of the newest open session (the highest score of the open set), or
   * undefined when none is open: one command, for a transcoder to notice a new session between
   * its scans without listing them all.
   */
  async newestOpenedAtMs(): Promise<number | undefined> {
    const reply = await this.#redis.zrange(this.#open(), '-1', '-1', 'WITHSCORES');
    return reply.length >= 2 ? Number(reply[1]) : undefined;
  }

  /**
   * Takes the lease of a session for `leaseMs` if nobody holds it.
   * @throws Error when the stored record is not readable JSON (a defect).
   */
  async claim(manifestID: string, session: string, owner: string, leaseMs: number): Promise<LiveSessionClaim> {
    const reply = (await this.#scripts.run('claim', [this.#session(manifestID, session), this.#lease(manifestID, session)],
      [owner, String(Math.round(leaseMs))])) as string[];
    if (reply[0] === 'gone') return { claim: 'gone' };
    if (reply[0] === 'taken') return { claim: 'taken' };
    const [, record, , endSeq, next, source, claims] = reply;
    return {
      claim: 'ok',
      session: {
        record: parseRecord(record!),
        source: source ? parseSourceSegmentInfo(JSON.parse(source)) : undefined,
        nextSeq: next ? Number(next) : 0,
        endSeq: endSeq ? Number(endSeq) : undefined,
        takeover: Number(claims) > 1,
      },
    };
  }

  /**
   * Extends the caller's lease (compare and renew) and the record's TTL; a lease that expired
   * without anyone taking it (a Redis outage longer than the lease) is taken back.
   * @returns `held` false when another transcoder holds the lease, or the session finished;
   *   else the stream's end once known.
   */
  async renew(manifestID: string, session: string, owner: string, leaseMs: number): Promise<{ held: boolean; endSeq?: number }> {
    const reply = (await this.#scripts.run('renew', [this.#lease(manifestID, session), this.#session(manifestID, session)],
      [owner, String(Math.round(leaseMs)), String(this.#ttlMs)])) as [number, string, string];
    if (reply[0] !== 1) return { held: false };
    return { held: true, ...(reply[2] ? { endSeq: Number(reply[2]) } : {}) };
  }

  /** The source measurement, once the gateway has set it. */
  async source(manifestID: string, session: string): Promise<SourceSegmentInfo | undefined> {
    const raw = await this.#redis.hget(this.#session(manifestID, session), 'source');
    return raw ? parseSourceSegmentInfo(JSON.parse(raw)) : undefined;
  }

  /** Records that every seq below `nextSeq` is made; only while the caller holds the lease. @returns false when it does not. */
  async progress(manifestID: string, session: string, owner: string, nextSeq: number): Promise<boolean> {
    return (await this.#scripts.run('progress', [this.#lease(manifestID, session), this.#session(manifestID, session)], [owner, String(nextSeq)])) === 1;
  }

  /** Gives the lease up (another transcoder may claim the session at once). @returns false when the caller did not hold it. */
  async release(manifestID: string, session: string, owner: string): Promise<boolean> {
    return this.#drop(manifestID, session, owner, false);
  }

  /** The session is done (every seq up to its end made): deletes it. @returns false when the caller did not hold it. */
  async finish(manifestID: string, session: string, owner: string): Promise<boolean> {
    return this.#drop(manifestID, session, owner, true);
  }

  async #drop(manifestID: string, session: string, owner: string, finish: boolean): Promise<boolean> {
    return (await this.#scripts.run('release', [this.#lease(manifestID, session), this.#session(manifestID, session), this.#open()],
      [owner, finish ? '1' : '0', member(manifestID, session)])) === 1;
  }

  /** Advertises a transcoder's slots until `ttlMs` from now (its heartbeat). */
  async advertise(slots: TranscoderSlots, ttlMs: number): Promise<void> {
    const now = Date.now();
    await this.#redis.multi()
      .set(this.#member(slots.id), JSON.stringify({ slots: slots.slots, used: slots.used }), 'PX', Math.round(ttlMs))
      .zadd(this.#members(), String(now + ttlMs), slots.id)
      .zremrangebyscore(this.#members(), '-inf', now)
      .exec();
  }

  /** Stops advertising (a transcoder shutting down). */
  async withdraw(id: string): Promise<void> {
    await this.#redis.multi().del(this.#member(id)).zrem(this.#members(), id).exec();
  }

  /** Transcoders whose heartbeat is current, with their slots. */
  async transcoders(): Promise<TranscoderSlots[]> {
    const ids = await this.#redis.zrangebyscore(this.#members(), Date.now(), '+inf');
    if (ids.length === 0) return [];
    const values = await this.#redis.mget(...ids.map((id) => this.#member(id)));
    return ids.flatMap((id, i) => {
      const raw = values[i];
      if (!raw) return [];
      const v = JSON.parse(raw) as { slots: number; used: number };
      return [{ id, slots: v.slots, used: v.used }];
    });
  }
}

/** Decodes a stored record (written by `open`, as a transcode job's profiles travel in its JSON data). */
function parseRecord(raw: string): LiveSessionRecord {
  const r = JSON.parse(raw) as LiveSessionRecord;
  return {
    manifestID: r.manifestID, session: r.session, segmentTargetMs: r.segmentTargetMs, openedAtMs: r.openedAtMs, profiles: r.profiles,
    ...(r.accountID !== undefined ? { accountID: r.accountID } : {}), ...(r.fitToSource === true ? { fitToSource: true } : {}),
    ...(r.watermark !== undefined ? { watermark: r.watermark } : {}),
  };
}
