/**
 * What the recording feature keeps in Redis: every publish session it was told of (so the
 * sweep can delete what a non-recorded session no longer needs, and finalize a recorded one
 * once it is over), the segments of recorded sessions, and the finished recordings.
 *
 * Keys (under `<redis.keyPrefix>:rec`; manifest ID `m`, session `s`, rendition `r`):
 * - `…:sess:m:s`   HASH  manifestID, session, record (1|0), state (`open` while the session may
 *                        still grow, `ready` once its VOD playlists are written), startedAtMs,
 *                        endedAtMs, goneAtMs (when a sweep first saw the session over),
 *                        deletedBelow (retention: every seq below it was deleted), deleteAtMs,
 *                        renditions (JSON), durationMs
 * - `…:open`       ZSET  `m/s` of sessions not finalized yet, scored by start (epoch ms)
 * - `…:list:m`     ZSET  recorded sessions of `m`, scored by start (epoch ms)
 * - `…:segs:m:s:r` HASH  seq → segment JSON `{d, disc}` of a recorded session (deleted once its
 *                        VOD playlists are written: they hold the same lines)
 * - `…:rends:m:s`  SET   renditions with a kept segment
 * - `…:expiry`     ZSET  `m/s` of ready recordings, scored by when they are deleted (epoch ms)
 * - `…:lock:name`  STRING a sweep step's lock (SET NX PX), so gateways sharing Redis take turns
 *
 * Every write is idempotent (a redelivered transcode job notes the same segment again), and
 * the sweep's steps are guarded by locks and re-read state after taking them, so several
 * gateways may run the sweep at once.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { RenditionMeasurements } from '../domain/segment.ts';

/** A session the keeper was told of. */
export interface KeptSession {
  readonly manifestID: string;
  readonly session: string;
  readonly record: boolean;
  readonly state: 'open' | 'ready';
  readonly startedAtMs: number;
  /** When the session ended (ready recordings; a sweep's best knowledge otherwise). */
  readonly endedAtMs?: number;
  /** When a sweep first saw the session over (not live in the segment index any more). */
  readonly goneAtMs?: number;
  /** Retention of a non-recorded session: every seq below this was deleted. */
  readonly deletedBelow: number;
  /** When a ready recording is deleted (`recording.deleteAfterS`); absent: kept. */
  readonly deleteAtMs?: number;
  /** A ready recording's renditions, `source` first. */
  readonly renditions: readonly RecordedRendition[];
  /** A ready recording's duration (its `source` rendition's EXTINF sum), ms. */
  readonly durationMs?: number;
}

/** One rendition of a finished recording. */
export interface RecordedRendition extends RenditionMeasurements {
  readonly name: string;
  readonly segments: number;
  readonly durationMs: number;
}

/** One kept segment of a recorded session. */
export interface KeptSegment {
  readonly seq: number;
  readonly durationMs: number;
  /** The segment's timestamps or codec parameters jump from the previous one. */
  readonly discontinuity: boolean;
  readonly bytes: number;
  readonly width: number;
  readonly height: number;
  readonly codecs: string;
  readonly frameRate: number;
}

export interface RecordingStoreOptions {
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`); this store uses the `rec` scope. */
  keys: RedisKeys;
}

/**
 * How many sessions a store remembers as not recorded ({@link RecordingStore.keepSegment}), the
 * oldest forgotten first: ~100 bytes each, so at most ~0.4 MB. A forgotten session costs one
 * HMGET per segment again until it is read as not recorded once more.
 */
export const NOT_RECORDED_MEMORY = 4096;

export class RecordingStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  /**
   * `m/s` of sessions known not to be recorded: opened here with `record: false`, or read so.
   * A session's `record` is written once, by `opened` before its first segment, and never
   * changes (a session ID names one publish), so what is known here stays true.
   */
  readonly #notRecorded = new Set<string>();

  constructor(options: RecordingStoreOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys.scope('rec');
  }

  #rememberNotRecorded(member: string): void {
    if (this.#notRecorded.size >= NOT_RECORDED_MEMORY) {
      // A Set iterates in insertion order: the first is the oldest.
      this.#notRecorded.delete(this.#notRecorded.values().next().value!);
    }
    this.#notRecorded.add(member);
  }

  #sess(m: string, s: string): string { return this.#keys.key('sess', m, s); }
  #segs(m: string, s: string, r: string): string { return this.#keys.key('segs', m, s, r); }
  #rends(m: string, s: string): string { return this.#keys.key('rends', m, s); }
  #list(m: string): string { return this.#keys.key('list', m); }
  get #open(): string { return this.#keys.key('open'); }
  get #expiry(): string { return this.#keys.key('expiry'); }

  /**
   * A publish session started (ingest's `SessionKeeper`): remembered as open, and listed as a
   * recording of its manifest ID when `record`. Idempotent.
   */
  async opened(s: { manifestID: string; session: string; startedAtMs: number; record: boolean }): Promise<void> {
    const multi = this.#redis.multi()
      .hset(this.#sess(s.manifestID, s.session), {
        manifestID: s.manifestID, session: s.session, record: s.record ? '1' : '0', state: 'open', startedAtMs: String(s.startedAtMs),
      })
      .zadd(this.#open, s.startedAtMs, `${s.manifestID}/${s.session}`);
    if (s.record) multi.zadd(this.#list(s.manifestID), s.startedAtMs, s.session);
    await multi.exec();
    const member = `${s.manifestID}/${s.session}`;
    if (s.record) this.#notRecorded.delete(member);
    else this.#rememberNotRecorded(member);
  }

  /**
   * Keeps one segment of a recorded, still open session (a no-op for any other session).
   * Idempotent: the same (rendition, seq) again replaces the entry.
   * A session known not to be recorded (opened through this store with `record: false`, or
   * read as such once) costs no Redis round trip: with recording off, that was one HMGET per
   * segment of every rendition.
   */
  async keepSegment(manifestID: string, session: string, rendition: string, segment: KeptSegment): Promise<void> {
    const member = `${manifestID}/${session}`;
    if (this.#notRecorded.has(member)) return;
    const [record, state] = await this.#redis.hmget(this.#sess(manifestID, session), 'record', 'state');
    if (record === '0') this.#rememberNotRecorded(member);
    if (record !== '1' || state !== 'open') return;
    const { seq, ...rest } = segment;
    await this.#redis.multi()
      .hset(this.#segs(manifestID, session, rendition), String(seq), JSON.stringify(rest))
      .sadd(this.#rends(manifestID, session), rendition)
      .exec();
  }

  /** Forgets a kept segment (its listing was refused after it was kept). */
  async dropSegment(manifestID: string, session: string, rendition: string, seq: number): Promise<void> {
    if (this.#notRecorded.has(`${manifestID}/${session}`)) return;
    await this.#redis.hdel(this.#segs(manifestID, session, rendition), String(seq));
  }

  /** The kept segments of a recorded session, per rendition, each in seq order. */
  async keptSegments(manifestID: string, session: string): Promise<Map<string, KeptSegment[]>> {
    const out = new Map<string, KeptSegment[]>();
    for (const rendition of await this.#redis.smembers(this.#rends(manifestID, session))) {
      const raw = await this.#redis.hgetall(this.#segs(manifestID, session, rendition));
      const segments = Object.entries(raw)
        .map(([seq, json]) => ({ seq: Number(seq), ...(JSON.parse(json) as Omit<KeptSegment, 'seq'>) }))
        .sort((a, b) => a.seq - b.seq);
      out.set(rendition, segments);
    }
    return out;
  }

  async get(manifestID: string, session: string): Promise<KeptSession | undefined> {
    return parseSession(await this.#redis.hgetall(this.#sess(manifestID, session)));
  }

  /** Open sessions (not finalized), oldest first, at most `limit`. */
  async openSessions(limit: number): Promise<{ manifestID: string; session: string }[]> {
    return (await this.#redis.zrange(this.#open, "0", String(limit - 1))).map(splitMember);
  }

  /** Recorded sessions of a manifest ID, newest first (open ones included). */
  async recordings(manifestID: string, limit = 100): Promise<KeptSession[]> {
    const sessions = await this.#redis.zrevrange(this.#list(manifestID), 0, limit - 1);
    const out: KeptSession[] = [];
    for (const s of sessions) {
      const kept = await this.get(manifestID, s);
      if (kept) out.push(kept);
    }
    return out;
  }

  /** The newest ready recording of a manifest ID. */
  async latestReady(manifestID: string): Promise<KeptSession | undefined> {
    return (await this.recordings(manifestID, 50)).find((r) => r.state === 'ready');
  }

  /** Retention progress of a non-recorded session: every seq below `below` is deleted. */
  async setDeletedBelow(manifestID: string, session: string, below: number): Promise<void> {
    await this.#redis.hset(this.#sess(manifestID, session), 'deletedBelow', String(below));
  }

  /** Remembers when a sweep first saw the session over; returns that time. */
  async markGone(manifestID: string, session: string, nowMs: number): Promise<number> {
    const key = this.#sess(manifestID, session);
    await this.#redis.hsetnx(key, 'goneAtMs', String(nowMs));
    return Number((await this.#redis.hget(key, 'goneAtMs')) ?? nowMs);
  }

  /**
   * A recorded session's VOD playlists are written: it is ready, its kept segments are
   * dropped, and it is scheduled for deletion at `deleteAtMs` (absent: kept).
   */
  async markReady(manifestID: string, session: string, r: { endedAtMs: number; durationMs: number; renditions: readonly RecordedRendition[]; deleteAtMs?: number }): Promise<void> {
    const rends = await this.#redis.smembers(this.#rends(manifestID, session));
    const member = `${manifestID}/${session}`;
    const multi = this.#redis.multi()
      .hset(this.#sess(manifestID, session), {
        state: 'ready', endedAtMs: String(r.endedAtMs), durationMs: String(r.durationMs), renditions: JSON.stringify(r.renditions),
        ...(r.deleteAtMs !== undefined ? { deleteAtMs: String(r.deleteAtMs) } : {}),
      })
      .zrem(this.#open, member)
      .del(this.#rends(manifestID, session), ...rends.map((x) => this.#segs(manifestID, session, x)));
    if (r.deleteAtMs !== undefined) multi.zadd(this.#expiry, r.deleteAtMs, member);
    await multi.exec();
  }

  /** Forgets a session entirely (its objects are deleted by the caller). */
  async forget(manifestID: string, session: string): Promise<void> {
    const member = `${manifestID}/${session}`;
    this.#notRecorded.delete(member);
    const rends = await this.#redis.smembers(this.#rends(manifestID, session));
    await this.#redis.multi()
      .del(this.#sess(manifestID, session), this.#rends(manifestID, session), ...rends.map((x) => this.#segs(manifestID, session, x)))
      .zrem(this.#open, member)
      .zrem(this.#expiry, member)
      .zrem(this.#list(manifestID), session)
      .exec();
  }

  /** Ready recordings whose deletion time has come, at most `limit`. */
  async expired(nowMs: number, limit: number): Promise<{ manifestID: string; session: string }[]> {
    return (await this.#redis.zrangebyscore(this.#expiry, '-inf', nowMs, 'LIMIT', 0, limit)).map(splitMember);
  }

  /**
   * Takes the lock `name` for `ttlMs` if nobody holds it (SET NX PX): several gateways run
   * the same sweep; one does each step at a time. Not released: it expires.
   */
  async tryLock(name: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.set(this.#keys.key('lock', name), '1', 'PX', ttlMs, 'NX')) === 'OK';
  }
}

function splitMember(member: string): { manifestID: string; session: string } {
  const slash = member.indexOf('/');
  return { manifestID: member.slice(0, slash), session: member.slice(slash + 1) };
}

function parseSession(h: Record<string, string>): KeptSession | undefined {
  if (!h['session'] || !h['manifestID']) return undefined;
  const num = (k: string): number | undefined => (h[k] !== undefined ? Number(h[k]) : undefined);
  const endedAtMs = num('endedAtMs');
  const goneAtMs = num('goneAtMs');
  const deleteAtMs = num('deleteAtMs');
  const durationMs = num('durationMs');
  return {
    manifestID: h['manifestID'], session: h['session'], record: h['record'] === '1', state: h['state'] === 'ready' ? 'ready' : 'open',
    startedAtMs: Number(h['startedAtMs'] ?? 0), deletedBelow: Number(h['deletedBelow'] ?? 0),
    renditions: JSON.parse(h['renditions'] ?? '[]') as RecordedRendition[],
    ...(endedAtMs !== undefined ? { endedAtMs } : {}), ...(goneAtMs !== undefined ? { goneAtMs } : {}),
    ...(deleteAtMs !== undefined ? { deleteAtMs } : {}), ...(durationMs !== undefined ? { durationMs } : {}),
  };
}
