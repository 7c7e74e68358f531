/**
 * The segment index in Redis: which segments each rendition of each stream lists, in
 * sequence order, plus the per-rendition measurements the master playlist needs. Any
 * gateway sharing the Redis can serve any stream's playback from it.
 *
 * Keys (prefix `p`, manifest ID `m`, rendition `r`):
 * - `p:stream:m`       HASH  session, protocol, state (live|ended), startedAtMs, endedAtMs, firstSeq, endSeq, renditions (JSON),
 *                            warnings (JSON source lint, absent when none)
 * - `p:streams`        ZSET  manifest IDs of known streams, scored by start time
 * - `p:rends:m`        SET   every rendition recorded in the current session (for cleanup)
 * - `p:rend:m:r`       HASH  frontier (next seq to list), count (listed so far), disc, pendingDisc,
 *                            failed, width, height, codecs, frameRate, peakBps, bytes, durationMs
 * - `p:pend:m:r`       HASH  seq → outcome JSON, results that arrived ahead of an earlier seq
 * - `p:list:m:r`       LIST  listed entries `{seq, d, disc, ds}` (last `retain` kept)
 * - `p:push:m:s:seq`   HASH  sha256, state (pending|done|failed), result (JSON), leaseUntilMs: idempotent HTTP push
 *
 * Recording is one Lua script per outcome, so concurrent transcoders and redelivered jobs
 * cannot list a segment twice or out of order: a result is held until every earlier seq of
 * that rendition is resolved (listed, or failed and skipped with a discontinuity).
 */
import type { Redis } from './redis.ts';
import { SOURCE_RENDITION, type SegmentOutcome } from '../domain/segment.ts';
import type { SourceWarning } from '../domain/source-lint.ts';

export interface RenditionPlan {
  readonly name: string;
  /** Expected size and bitrate, shown in the master until real segments are measured. */
  readonly width: number;
  readonly height: number;
  readonly bitrateBps: number;
}

export interface StreamRecord {
  readonly manifestID: string;
  readonly session: string;
  readonly state: 'live' | 'ended';
  readonly protocol: 'rtmp' | 'push';
  readonly startedAtMs: number;
  readonly endedAtMs?: number;
  /** First sequence number of the session (0 for RTMP; the first pushed seq for HTTP push). */
  readonly firstSeq: number;
  /** One past the last sequence number, known once the stream ended. */
  readonly endSeq?: number;
  /** Output renditions besides `source`, in ladder order (set when the first source segment is measured). */
  readonly renditions: readonly RenditionPlan[];
  /** What the source lint found in the first source segment (domain/source-lint.ts); [] when nothing. */
  readonly warnings: readonly SourceWarning[];
}

export interface RenditionStats {
  readonly count: number;
  readonly frontier: number;
  readonly failed: number;
  readonly width: number;
  readonly height: number;
  readonly codecs: string;
  readonly frameRate: number;
  readonly peakBps: number;
  readonly averageBps: number;
  /** When a segment was last listed (epoch ms); 0 when none yet. */
  readonly lastListedAtMs: number;
}

export interface ListedSegment {
  readonly seq: number;
  readonly durationMs: number;
  readonly discontinuity: boolean;
  /** Discontinuities listed up to and including this segment. */
  readonly discontinuityCount: number;
}

export interface RenditionWindow {
  readonly stats: RenditionStats;
  /** The last `window` listed segments, oldest first. */
  readonly segments: readonly ListedSegment[];
  /** Every segment of the stream has been resolved in this rendition and the stream ended. */
  readonly complete: boolean;
}

const RECORD_SCRIPT = `
local streamKey, pendKey, rendKey, listKey, rendsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local session, seq, outcome, retain, rendition, nowMs = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
if redis.call('HGET', streamKey, 'session') ~= session then return -1 end
redis.call('SADD', rendsKey, rendition)
local frontier = tonumber(redis.call('HGET', rendKey, 'frontier') or redis.call('HGET', streamKey, 'firstSeq') or '0')
if seq < frontier then return 0 end
redis.call('HSET', pendKey, seq, outcome)
local listed = 0
while true do
  local raw = redis.call('HGET', pendKey, frontier)
  if not raw then break end
  redis.call('HDEL', pendKey, frontier)
  local o = cjson.decode(raw)
  if o.status == 'ok' then
    local s = o.segment
    local count = tonumber(redis.call('HGET', rendKey, 'count') or '0')
    local disc = tonumber(redis.call('HGET', rendKey, 'disc') or '0')
    local flag = (redis.call('HGET', rendKey, 'pendingDisc') == '1') or (o.discontinuity == true)
    if flag and count > 0 then disc = disc + 1 else flag = false end
    redis.call('RPUSH', listKey, cjson.encode({seq = frontier, d = s.durationMs, disc = flag, ds = disc}))
    local bps = 0
    if s.durationMs > 0 then bps = math.floor(s.bytes * 8000 / s.durationMs) end
    local peak = tonumber(redis.call('HGET', rendKey, 'peakBps') or '0')
    if bps > peak then peak = bps end
    redis.call('HSET', rendKey, 'count', count + 1, 'disc', disc, 'pendingDisc', 0, 'peakBps', peak,
      'width', s.width, 'height', s.height, 'codecs', s.codecs, 'frameRate', tostring(s.frameRate))
    redis.call('HINCRBY', rendKey, 'bytes', s.bytes)
    redis.call('HINCRBY', rendKey, 'durationMs', s.durationMs)
    listed = listed + 1
  else
    redis.call('HSET', rendKey, 'pendingDisc', 1)
    redis.call('HINCRBY', rendKey, 'failed', 1)
  end
  frontier = frontier + 1
end
redis.call('HSET', rendKey, 'frontier', frontier)
if listed > 0 then redis.call('HSET', rendKey, 'lastListedAtMs', nowMs) end
redis.call('LTRIM', listKey, -retain, -1)
return listed
`;

export interface RedisSegmentIndexOptions {
  redis: Redis;
  /** Key prefix shared by the deployment. */
  prefix: string;
  /** Listed entries kept per rendition (at least the playlist window). */
  retainSegments: number;
}

export class RedisSegmentIndex {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #retain: number;

  constructor(options: RedisSegmentIndexOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#retain = options.retainSegments;
  }

  #streamKey(m: string): string {
    return `${this.#prefix}:stream:${m}`;
  }

  #rendsKey(m: string): string {
    return `${this.#prefix}:rends:${m}`;
  }

  #rendKeys(m: string, r: string): [string, string, string] {
    return [`${this.#prefix}:pend:${m}:${r}`, `${this.#prefix}:rend:${m}:${r}`, `${this.#prefix}:list:${m}:${r}`];
  }

  /**
   * Starts a publish session for `manifestID`, discarding the index of any earlier session
   * (its late transcode results are then ignored, as their session no longer matches).
   */
  async startStream(manifestID: string, session: string, startedAtMs: number, options: { protocol?: 'rtmp' | 'push'; firstSeq?: number } = {}): Promise<void> {
    const rendsKey = this.#rendsKey(manifestID);
    const previous = await this.#redis.smembers(rendsKey);
    const multi = this.#redis.multi();
    for (const r of previous) multi.del(...this.#rendKeys(manifestID, r));
    multi.del(this.#streamKey(manifestID), rendsKey);
    multi.hset(this.#streamKey(manifestID), {
      manifestID, session, protocol: options.protocol ?? 'rtmp', state: 'live', startedAtMs: String(startedAtMs),
      firstSeq: String(options.firstSeq ?? 0), renditions: '[]',
    });
    multi.zadd(`${this.#prefix}:streams`, startedAtMs, manifestID);
    await multi.exec();
  }

  /**
   * Sets the output renditions (ladder fitted to the measured source) and the source lint's
   * warnings, if the renditions are not set yet for this session.
   */
  async setRenditions(manifestID: string, session: string, renditions: readonly RenditionPlan[], warnings: readonly SourceWarning[] = []): Promise<void> {
    const key = this.#streamKey(manifestID);
    const current = await this.#redis.hmget(key, 'session', 'renditions');
    if (current[0] !== session || (current[1] && current[1] !== '[]')) return;
    await this.#redis.hset(key, { renditions: JSON.stringify(renditions), ...(warnings.length > 0 ? { warnings: JSON.stringify(warnings) } : {}) });
  }

  /** Marks the stream ended; `endSeq` is one past its last sequence number. */
  async endStream(manifestID: string, session: string, endSeq: number, endedAtMs: number): Promise<void> {
    const key = this.#streamKey(manifestID);
    if ((await this.#redis.hget(key, 'session')) !== session) return;
    await this.#redis.hset(key, { state: 'ended', endSeq: String(endSeq), endedAtMs: String(endedAtMs) });
  }

  #pushKey(m: string, session: string, seq: number): string {
    return `${this.#prefix}:push:${m}:${session}:${seq}`;
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
  async claimPush(manifestID: string, session: string, seq: number, sha256: string, options: { leaseMs: number; ttlS?: number }): Promise<
    { claim: 'new' } | { claim: 'same'; state: 'pending' | 'done' | 'failed'; result?: string } | { claim: 'conflict' }
  > {
    const key = this.#pushKey(manifestID, session, seq);
    const ttlS = options.ttlS ?? 3600;
    const nowMs = Date.now();
    const leaseUntilMs = String(nowMs + options.leaseMs);
    const created = await this.#redis.hsetnx(key, 'sha256', sha256);
    if (created === 1) {
      await this.#redis.multi().hset(key, 'state', 'pending', 'leaseUntilMs', leaseUntilMs).expire(key, ttlS).exec();
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
    return { claim: 'same', state: (state as 'pending' | 'done' | 'failed' | null) ?? 'pending', ...(result ? { result } : {}) };
  }

  /** Stores the outcome of a claimed push (`result` is opaque JSON for the reply). */
  async settlePush(manifestID: string, session: string, seq: number, state: 'done' | 'failed', result: string): Promise<void> {
    await this.#redis.hset(this.#pushKey(manifestID, session, seq), { state, result });
  }

  /** The state of a claimed push, or `undefined` when nothing was pushed (or it expired). */
  async pushState(manifestID: string, session: string, seq: number): Promise<{ state: 'pending' | 'done' | 'failed'; result?: string } | undefined> {
    const [state, result] = await this.#redis.hmget(this.#pushKey(manifestID, session, seq), 'state', 'result');
    if (!state) return undefined;
    return { state: state as 'pending' | 'done' | 'failed', ...(result ? { result } : {}) };
  }

  /** Whether anything was pushed for this seq in this session. */
  async pushClaimed(manifestID: string, session: string, seq: number): Promise<boolean> {
    return (await this.#redis.exists(this.#pushKey(manifestID, session, seq))) === 1;
  }

  /**
   * Records one outcome for (rendition, seq) and lists every segment that became listable.
   * Idempotent: a repeat of an already-resolved seq changes nothing.
   * @returns segments newly listed; -1 when `session` is not the stream's current session.
   */
  async record(manifestID: string, session: string, outcome: SegmentOutcome): Promise<number> {
    const rendition = outcome.status === 'ok' ? outcome.segment.rendition : outcome.rendition;
    const keys = [this.#streamKey(manifestID), ...this.#rendKeys(manifestID, rendition), this.#rendsKey(manifestID)];
    const result = await this.#redis.eval(RECORD_SCRIPT, keys.length, ...keys, session, String(outcome.seq), JSON.stringify(outcome), String(this.#retain), rendition, String(Date.now()));
    return Number(result);
  }

  async getStream(manifestID: string): Promise<StreamRecord | undefined> {
    const h = await this.#redis.hgetall(this.#streamKey(manifestID));
    if (!h['session']) return undefined;
    return {
      manifestID,
      session: h['session'],
      protocol: h['protocol'] === 'push' ? 'push' : 'rtmp',
      state: h['state'] === 'ended' ? 'ended' : 'live',
      startedAtMs: Number(h['startedAtMs']),
      firstSeq: Number(h['firstSeq'] ?? 0),
      ...(h['endedAtMs'] ? { endedAtMs: Number(h['endedAtMs']) } : {}),
      ...(h['endSeq'] ? { endSeq: Number(h['endSeq']) } : {}),
      renditions: JSON.parse(h['renditions'] ?? '[]') as RenditionPlan[],
      warnings: JSON.parse(h['warnings'] ?? '[]') as SourceWarning[],
    };
  }

  /** Manifest IDs of known streams, newest first. */
  async listStreams(limit = 100): Promise<string[]> {
    return this.#redis.zrevrange(`${this.#prefix}:streams`, 0, limit - 1);
  }

  async renditionStats(manifestID: string, rendition: string): Promise<RenditionStats> {
    const h = await this.#redis.hgetall(this.#rendKeys(manifestID, rendition)[1]);
    const num = (k: string): number => Number(h[k] ?? 0);
    const durationMs = num('durationMs');
    return {
      count: num('count'), frontier: num('frontier'), failed: num('failed'),
      width: num('width'), height: num('height'), codecs: h['codecs'] ?? '', frameRate: num('frameRate'),
      lastListedAtMs: num('lastListedAtMs'), peakBps: num('peakBps'), averageBps: durationMs > 0 ? Math.min(Math.floor((num('bytes') * 8000) / durationMs), num('peakBps')) : 0,
    };
  }

  /**
   * Whether `session` of `manifestID` is over in every rendition (`source` included): ended,
   * and every seq below its end resolved, so each playlist carries ENDLIST. True as well when
   * a newer session replaced it (nothing more will be listed for it); false while it is live.
   */
  async sessionComplete(manifestID: string, session: string): Promise<boolean> {
    const stream = await this.getStream(manifestID);
    if (!stream || stream.session !== session) return true;
    for (const rendition of [SOURCE_RENDITION, ...stream.renditions.map((r) => r.name)]) {
      if (!(await this.renditionWindow(manifestID, rendition, 1, stream)).complete) return false;
    }
    return true;
  }

  /** The last `window` listed segments of a rendition and whether it is complete. */
  async renditionWindow(manifestID: string, rendition: string, window: number, stream: StreamRecord): Promise<RenditionWindow> {
    const [stats, raw] = await Promise.all([
      this.renditionStats(manifestID, rendition),
      this.#redis.lrange(this.#rendKeys(manifestID, rendition)[2], -window, -1),
    ]);
    const segments = raw.map((text) => {
      const e = JSON.parse(text) as { seq: number; d: number; disc: boolean; ds: number };
      return { seq: e.seq, durationMs: e.d, discontinuity: e.disc, discontinuityCount: e.ds };
    });
    const complete = stream.state === 'ended' && stream.endSeq !== undefined && Math.max(stats.frontier, stream.firstSeq) >= stream.endSeq;
    return { stats, segments, complete };
  }
}
