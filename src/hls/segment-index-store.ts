/**
 * The segment index in Redis: which segments each rendition of each stream lists, in
 * sequence order, plus the per-rendition measurements the master playlist needs. Any
 * gateway sharing the Redis can serve any stream's playback from it.
 *
 * Keys (prefix `p`, manifest ID `m`, rendition `r`, session `s`):
 * - `p:stream:m`       HASH  session, protocol, state (live|ended), startedAtMs, endedAtMs, firstSeq, endSeq,
 *                            resolveAtMs and endWaitMs (when an ended stream's missing seqs may be resolved:
 *                            not before resolveAtMs nor before endWaitMs after a rendition's last result),
 *                            renditions (JSON), warnings (JSON source lint, absent when none)
 * - `p:streams`        ZSET  manifest IDs of known streams, scored by start time
 * - `p:rends:m`        SET   every rendition recorded in the current session (for cleanup)
 * - `p:rend:m:r`       HASH  frontier (next seq to list), count (listed so far), disc, pendingDisc,
 *                            failed, width, height, codecs, frameRate, peakBps, bytes, durationMs,
 *                            lastListedAtMs, lastRecordAtMs, lastGapFrom
 * - `p:pend:m:r`       HASH  seq → outcome JSON, results that arrived ahead of an earlier seq; a failed
 *                            outcome with `skipTo` resolves the whole run [seq, skipTo)
 * - `p:wait:m:r`       ZSET  pending seq → when it arrived (epoch ms): how long the listing has waited
 * - `p:gaps:m:r`       HASH  from → to: runs of seqs resolved as failed (a late result for them is refused)
 * - `p:list:m:r`       LIST  listed entries `{seq, d, disc, ds}` (last `retain` kept)
 * - `p:due`            ZSET  manifest IDs with something to resolve, scored by when (epoch ms)
 * - `p:heartbeats`     ZSET  live manifest IDs, scored by when their holder's heartbeat expires (epoch ms)
 * - `p:pushed:m:s`     ZSET  seqs pushed in session `s`, read to find the edge of a push gap in one step;
 *                            written by the push claims (ingest/push-claim-store.ts), which spell it the same
 *
 * Recording is one Lua script per outcome, so concurrent transcoders and redelivered jobs
 * cannot list a segment twice or out of order: a result is held until every earlier seq of
 * that rendition is resolved (listed, or failed and skipped with a discontinuity).
 *
 * No seq holds the listing for longer than `maxSegmentWaitMs`: a seq still missing that long
 * after a later result arrived is resolved as failed by {@link RedisSegmentIndex.sweep},
 * which every gateway runs (idempotent scripts, so several gateways on one Redis agree). A
 * stream whose holder stopped renewing its heartbeat (the gateway died) is ended by the
 * sweep, and an ended stream's missing seqs are resolved, so every playlist gets ENDLIST.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
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

/**
 * Lua shared by the scripts below. A rendition's keys are the table `K` = {pend, rend, list,
 * wait, gaps}; `RETAIN` and `BOUND` (ms) are set by each script before use.
 * - `drain` lists what is pending at the frontier onwards, in order.
 * - `skip` resolves [from, to) as failed at the frontier (one discontinuity for the run).
 * - `addRange` marks [from, to) as failed ahead of (or at) the frontier, as one pending entry.
 */
const LUA_PRELUDE = `
local RETAIN, BOUND = 0, 0
local function keysAt(base)
  return {pend = KEYS[base], rend = KEYS[base + 1], list = KEYS[base + 2], wait = KEYS[base + 3], gaps = KEYS[base + 4]}
end
local function frontierOf(K, firstSeq)
  return tonumber(redis.call('HGET', K.rend, 'frontier') or firstSeq)
end
local function oldestWait(K)
  local w = redis.call('ZRANGE', K.wait, 0, 0, 'WITHSCORES')
  if w[1] then return tonumber(w[2]) end
  return nil
end
local function minPending(K, frontier)
  local low = nil
  for _, k in ipairs(redis.call('HKEYS', K.pend)) do
    local s = tonumber(k)
    if s < frontier then
      redis.call('HDEL', K.pend, k)
      redis.call('ZREM', K.wait, k)
    elseif low == nil or s < low then
      low = s
    end
  end
  return low
end
local function inGap(K, seq)
  local g = redis.call('HGETALL', K.gaps)
  for i = 1, #g, 2 do
    if seq >= tonumber(g[i]) and seq < tonumber(g[i + 1]) then return true end
  end
  return false
end
local function pendingRangeCovers(K, seq)
  local p = redis.call('HGETALL', K.pend)
  for i = 1, #p, 2 do
    if string.find(p[i + 1], '"skipTo"', 1, true) then
      local o = cjson.decode(p[i + 1])
      if seq >= tonumber(p[i]) and seq < o.skipTo then return true end
    end
  end
  return false
end
local function skip(K, from, to)
  redis.call('HINCRBY', K.rend, 'failed', to - from)
  redis.call('HSET', K.rend, 'pendingDisc', 1)
  local lastFrom = redis.call('HGET', K.rend, 'lastGapFrom')
  if lastFrom and tonumber(redis.call('HGET', K.gaps, lastFrom) or '-1') == from then
    redis.call('HSET', K.gaps, lastFrom, to)
  else
    redis.call('HSET', K.gaps, from, to)
    redis.call('HSET', K.rend, 'lastGapFrom', from)
  end
  for _, k in ipairs(redis.call('HKEYS', K.pend)) do
    local s = tonumber(k)
    if s >= from and s < to then
      local raw = redis.call('HGET', K.pend, k)
      local arrived = redis.call('ZSCORE', K.wait, k)
      redis.call('HDEL', K.pend, k)
      redis.call('ZREM', K.wait, k)
      local o = cjson.decode(raw)
      if o.skipTo and o.skipTo > to then
        redis.call('HSET', K.pend, to, cjson.encode({status = 'failed', seq = to, skipTo = o.skipTo, reason = o.reason}))
        redis.call('ZADD', K.wait, 'NX', arrived or 0, to)
      end
    end
  end
end
local function drain(K, frontier, nowMs)
  local listed = 0
  while true do
    local raw = redis.call('HGET', K.pend, frontier)
    if not raw then break end
    redis.call('HDEL', K.pend, frontier)
    redis.call('ZREM', K.wait, frontier)
    local o = cjson.decode(raw)
    if o.status == 'ok' then
      local s = o.segment
      local count = tonumber(redis.call('HGET', K.rend, 'count') or '0')
      local disc = tonumber(redis.call('HGET', K.rend, 'disc') or '0')
      local flag = (redis.call('HGET', K.rend, 'pendingDisc') == '1') or (o.discontinuity == true)
      if flag and count > 0 then disc = disc + 1 else flag = false end
      redis.call('RPUSH', K.list, cjson.encode({seq = frontier, d = s.durationMs, disc = flag, ds = disc}))
      local bps = 0
      if s.durationMs > 0 then bps = math.floor(s.bytes * 8000 / s.durationMs) end
      local peak = tonumber(redis.call('HGET', K.rend, 'peakBps') or '0')
      if bps > peak then peak = bps end
      redis.call('HSET', K.rend, 'count', count + 1, 'disc', disc, 'pendingDisc', 0, 'peakBps', peak,
        'width', s.width, 'height', s.height, 'codecs', s.codecs, 'frameRate', tostring(s.frameRate))
      redis.call('HINCRBY', K.rend, 'bytes', s.bytes)
      redis.call('HINCRBY', K.rend, 'durationMs', s.durationMs)
      listed = listed + 1
      frontier = frontier + 1
    else
      local to = frontier + 1
      if o.skipTo and o.skipTo > to then to = o.skipTo end
      skip(K, frontier, to)
      frontier = to
    end
  end
  redis.call('HSET', K.rend, 'frontier', frontier)
  if listed > 0 then redis.call('HSET', K.rend, 'lastListedAtMs', nowMs) end
  redis.call('LTRIM', K.list, -RETAIN, -1)
  return frontier, listed
end
local function addRange(K, from, to, firstSeq, nowMs, reason)
  local frontier = frontierOf(K, firstSeq)
  if from < frontier then from = frontier end
  if to <= from then return end
  -- Split around what is already pending, so no result or earlier range is overwritten.
  local inside = {}
  for _, k in ipairs(redis.call('HKEYS', K.pend)) do
    local s = tonumber(k)
    if s >= from and s < to then table.insert(inside, s) end
  end
  table.sort(inside)
  table.insert(inside, to)
  local x = from
  for _, y in ipairs(inside) do
    if y > x then
      redis.call('HSET', K.pend, x, cjson.encode({status = 'failed', seq = x, skipTo = y, reason = reason}))
      redis.call('ZADD', K.wait, 'NX', nowMs, x)
    end
    x = y + 1
  end
end
`;

/**
 * Records one outcome. KEYS: stream, rends, due, then the rendition's 5 keys.
 * ARGV: session, seq, outcome JSON, retain, rendition, nowMs, boundMs, manifestID.
 * Returns {status, listed}: status 1 accepted (listed, pending, or a repeat of either),
 * 0 refused (the seq was already resolved as failed/skipped), -1 another session.
 */
const RECORD_SCRIPT = `${LUA_PRELUDE}
local session, seq, outcome, rendition, nowMs, m = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5], tonumber(ARGV[6]), ARGV[8]
RETAIN, BOUND = tonumber(ARGV[4]), tonumber(ARGV[7])
local st = redis.call('HMGET', KEYS[1], 'session', 'firstSeq')
if st[1] ~= session then return {-1, 0} end
redis.call('SADD', KEYS[2], rendition)
local K = keysAt(4)
local frontier = frontierOf(K, st[2] or '0')
if seq < frontier then
  if inGap(K, seq) then return {0, 0} end
  return {1, 0}
end
local existing = redis.call('HGET', K.pend, seq)
if existing then
  if cjson.decode(existing).status == 'ok' then return {1, 0} end
  return {0, 0}
end
if pendingRangeCovers(K, seq) then return {0, 0} end
redis.call('HSET', K.rend, 'lastRecordAtMs', nowMs)
redis.call('HSET', K.pend, seq, outcome)
redis.call('ZADD', K.wait, 'NX', nowMs, seq)
local _, listed = drain(K, frontier, nowMs)
local oldest = oldestWait(K)
if oldest then redis.call('ZADD', KEYS[3], 'LT', oldest + BOUND, m) end
return {1, listed}
`;

/**
 * Resolves what waited too long in every rendition of one stream (see RedisSegmentIndex.resolve).
 * KEYS: stream, due, pushed, then 5 keys per rendition, `source` first.
 * ARGV: manifestID, session, nowMs, boundMs, retain, gapTo (-1: no push gap to resolve).
 * Returns {segments newly listed, seqs skipped by the wait rules (summed over renditions)},
 * or -1 when the session changed.
 */
const RESOLVE_SCRIPT = `${LUA_PRELUDE}
local m, session, nowMs, gapTo = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[6])
BOUND, RETAIN = tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'session', 'state', 'endSeq', 'firstSeq', 'resolveAtMs', 'endWaitMs')
if st[1] ~= session then return -1 end
local ended = st[2] == 'ended'
local endSeq = tonumber(st[3] or '-1')
local firstSeq = tonumber(st[4] or '0')
local resolveAt = tonumber(st[5] or '0')
local endWait = tonumber(st[6] or BOUND)
local ranges = {}
if gapTo >= 0 then
  local claimed = redis.call('ZREVRANGEBYSCORE', KEYS[3], '(' .. gapTo, '-inf', 'LIMIT', 0, 1)
  local lo = firstSeq
  if claimed[1] then lo = tonumber(claimed[1]) + 1 end
  if lo < gapTo then table.insert(ranges, {lo, gapTo, 'never pushed'}) end
end
local total, skipped, nextDue = 0, 0, nil
local n = (#KEYS - 3) / 5
for i = 1, n do
  local K = keysAt(4 + (i - 1) * 5)
  for _, r in ipairs(ranges) do addRange(K, r[1], r[2], firstSeq, nowMs, r[3]) end
  local f, listed = drain(K, frontierOf(K, firstSeq), nowMs)
  total = total + listed
  while not (ended and f >= endSeq) do
    local target = nil
    local oldest = oldestWait(K)
    local low = minPending(K, f)
    if oldest and low and nowMs >= oldest + BOUND then
      target = low
    elseif ended and nowMs >= resolveAt and nowMs >= tonumber(redis.call('HGET', K.rend, 'lastRecordAtMs') or '0') + endWait then
      target = endSeq
      if low and low < endSeq then target = low end
    end
    if not target or target <= f then break end
    skip(K, f, target)
    skipped = skipped + (target - f)
    if i == 1 then table.insert(ranges, {f, target, 'source segment missing'}) end
    f, listed = drain(K, target, nowMs)
    total = total + listed
  end
  local due = nil
  local oldest = oldestWait(K)
  if oldest and not (ended and f >= endSeq) then due = oldest + BOUND end
  if ended and f < endSeq then
    local atEnd = math.max(resolveAt, tonumber(redis.call('HGET', K.rend, 'lastRecordAtMs') or '0') + endWait)
    if due == nil or atEnd < due then due = atEnd end
  end
  if due and (nextDue == nil or due < nextDue) then nextDue = due end
end
if nextDue then
  redis.call('ZADD', KEYS[2], math.max(nextDue, nowMs + 1), m)
else
  redis.call('ZREM', KEYS[2], m)
end
return {total, skipped}
`;

/**
 * Marks a stream ended. KEYS: stream, due, heartbeats, then per rendition its `rend` and `pend` keys.
 * ARGV: manifestID, session ('' = whichever session holds it), endSeq (-1 = one past the
 * highest seq the index knows), nowMs, resolveAtMs, requireExpired ('1' = only when its
 * heartbeat expired), endWaitMs (how long after a rendition's last result its missing seqs
 * may be resolved). Returns 1 when it ended the stream now.
 */
const END_SCRIPT = `
local m, session, endSeq, nowMs, resolveAt, requireExpired, endWait = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
if requireExpired == '1' then
  local score = redis.call('ZSCORE', KEYS[3], m)
  if not score or tonumber(score) > nowMs then return 0 end
end
local st = redis.call('HMGET', KEYS[1], 'session', 'state', 'firstSeq')
if not st[1] then
  redis.call('ZREM', KEYS[3], m)
  return 0
end
if session ~= '' and st[1] ~= session then return 0 end
redis.call('ZREM', KEYS[3], m)
if st[2] == 'ended' then return 0 end
if endSeq < 0 then
  endSeq = tonumber(st[3] or '0')
  for i = 4, #KEYS, 2 do
    endSeq = math.max(endSeq, tonumber(redis.call('HGET', KEYS[i], 'frontier') or '0'))
    local p = redis.call('HGETALL', KEYS[i + 1])
    for j = 1, #p, 2 do
      endSeq = math.max(endSeq, tonumber(p[j]) + 1)
      local o = cjson.decode(p[j + 1])
      if o.skipTo then endSeq = math.max(endSeq, o.skipTo) end
    end
  end
end
redis.call('HSET', KEYS[1], 'state', 'ended', 'endSeq', endSeq, 'endedAtMs', nowMs, 'resolveAtMs', resolveAt, 'endWaitMs', endWait)
redis.call('ZADD', KEYS[2], resolveAt, m)
return 1
`;

/**
 * Renews the heartbeats of streams a gateway holds. KEYS: heartbeats, then each stream's hash.
 * ARGV: expiresAtMs, then manifestID and session per stream. Returns the 0-based positions
 * of the streams whose session is no longer live (ended by another gateway, or replaced).
 */
const RENEW_SCRIPT = `
local lost = {}
for i = 2, #KEYS do
  local m, session = ARGV[2 * i - 2], ARGV[2 * i - 1]
  local st = redis.call('HMGET', KEYS[i], 'session', 'state')
  if st[1] == session and st[2] == 'live' then
    redis.call('ZADD', KEYS[1], ARGV[1], m)
  else
    table.insert(lost, i - 2)
  end
end
return lost
`;

/** What a recorded outcome did. */
export interface RecordResult {
  /**
   * False when the seq was already resolved as failed in this rendition (skipped after
   * waiting too long, a gap, or a failure), or the session is not the stream's current one:
   * the result is not listed and must not be charged. True for a listed or pending result,
   * and for a repeat of one.
   */
  readonly accepted: boolean;
  /** Segments newly listed by this call (this one and any that waited for it). */
  readonly listed: number;
  /** True when `session` is not the stream's current session. */
  readonly staleSession?: boolean;
}

export interface RedisSegmentIndexOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`), shared by every gateway of the deployment. */
  keys: RedisKeys;
  /** Listed entries kept per rendition (at least the playlist window). */
  retainSegments: number;
  /**
   * Longest a rendition's listing waits for one missing seq once a later result is there,
   * and how long an ended stream waits for its last results, in ms (`hls.maxSegmentWaitMs`;
   * default 10000). Enforced by {@link RedisSegmentIndex.sweep}.
   */
  maxSegmentWaitMs?: number;
  /** A live stream whose heartbeat is older than this is ended by the sweep, in ms (`hls.heartbeatTtlMs`; default 10000). */
  heartbeatTtlMs?: number;
}

/** What one {@link RedisSegmentIndex.resolve} did. */
export interface ResolveResult {
  /** Segments newly listed (results that had waited for the skipped ones). */
  readonly listed: number;
  /** Seqs resolved as failed because they waited too long, summed over the stream's renditions. */
  readonly skipped: number;
}

/** What one {@link RedisSegmentIndex.sweep} did. */
export interface SweepResult {
  /** Streams ended because their heartbeat expired (their gateway is gone). */
  readonly expired: readonly string[];
  /** Streams that were due, with what resolving them did. */
  readonly resolved: readonly ({ manifestID: string } & ResolveResult)[];
}

/** Streams taken per sweep step (each is one script run; the rest waits for the next sweep). */
const SWEEP_BATCH = 100;

export class RedisSegmentIndex {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #retain: number;
  readonly #boundMs: number;
  readonly #heartbeatTtlMs: number;

  constructor(options: RedisSegmentIndexOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#retain = options.retainSegments;
    this.#boundMs = options.maxSegmentWaitMs ?? 10_000;
    this.#heartbeatTtlMs = options.heartbeatTtlMs ?? 10_000;
  }

  #streamKey(m: string): string {
    return this.#keys.key('stream', m);
  }

  #rendsKey(m: string): string {
    return this.#keys.key('rends', m);
  }

  /** pend, rend, list, wait, gaps (the order the scripts' `keysAt` expects). */
  #rendKeys(m: string, r: string): [string, string, string, string, string] {
    const k = this.#keys;
    return [k.key('pend', m, r), k.key('rend', m, r), k.key('list', m, r), k.key('wait', m, r), k.key('gaps', m, r)];
  }

  get #streamsKey(): string {
    return this.#keys.key('streams');
  }

  get #dueKey(): string {
    return this.#keys.key('due');
  }

  get #heartbeatKey(): string {
    return this.#keys.key('heartbeats');
  }

  /** Written by the push claims (ingest/push-claim-store.ts); see the key list above. */
  #pushedKey(m: string, session: string): string {
    return this.#keys.key('pushed', m, session);
  }

  /** Every rendition of a stream, `source` first: the planned ones and any recorded. */
  async #renditionNames(m: string): Promise<{ session: string | undefined; names: string[] }> {
    const [[, fields], [, recorded]] = (await this.#redis.multi().hmget(this.#streamKey(m), 'session', 'renditions').smembers(this.#rendsKey(m)).exec())! as
      [[unknown, (string | null)[]], [unknown, string[]]];
    const planned = (JSON.parse(fields[1] ?? '[]') as RenditionPlan[]).map((r) => r.name);
    const names = [...new Set([SOURCE_RENDITION, ...planned, ...recorded])];
    return { session: fields[0] ?? undefined, names };
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
    multi.zadd(this.#streamsKey, startedAtMs, manifestID);
    multi.zrem(this.#dueKey, manifestID);
    multi.zadd(this.#heartbeatKey, Date.now() + this.#heartbeatTtlMs, manifestID);
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

  /**
   * Marks the stream ended; `endSeq` is one past its last sequence number. Seqs below it
   * still unresolved `maxSegmentWaitMs` after the end (and after the rendition's last
   * result) are resolved as failed by the sweep, so every playlist gets ENDLIST.
   */
  async endStream(manifestID: string, session: string, endSeq: number, endedAtMs: number): Promise<void> {
    await this.#end(manifestID, { session, endSeq, nowMs: endedAtMs, resolveAtMs: endedAtMs + this.#boundMs, endWaitMs: this.#boundMs, requireExpired: false });
  }

  async #end(m: string, o: { session: string; endSeq: number; nowMs: number; resolveAtMs: number; endWaitMs: number; requireExpired: boolean }): Promise<boolean> {
    const { names } = await this.#renditionNames(m);
    const keys = [this.#streamKey(m), this.#dueKey, this.#heartbeatKey, ...names.flatMap((r) => this.#rendKeys(m, r).slice(0, 2).reverse())];
    const ended = await this.#redis.eval(END_SCRIPT, keys.length, ...keys,
      m, o.session, String(o.endSeq), String(o.nowMs), String(o.resolveAtMs), o.requireExpired ? '1' : '0', String(o.endWaitMs));
    return Number(ended) === 1;
  }

  /**
   * Renews the heartbeat of streams this gateway holds (for `hls.heartbeatTtlMs`).
   * @returns the streams among them that are no longer live in their session (ended
   *   elsewhere, e.g. by a sweep that saw the heartbeat expire, or taken over by a new session).
   */
  async renewHeartbeats<T extends { manifestID: string; session: string }>(held: readonly T[], nowMs = Date.now()): Promise<T[]> {
    if (held.length === 0) return [];
    const keys = [this.#heartbeatKey, ...held.map((h) => this.#streamKey(h.manifestID))];
    const lost = await this.#redis.eval(RENEW_SCRIPT, keys.length, ...keys,
      String(nowMs + this.#heartbeatTtlMs), ...held.flatMap((h) => [h.manifestID, h.session]));
    return (lost as number[]).map((i) => held[i]!);
  }

  /**
   * Resolves what waited too long in every rendition of one stream, atomically (one script):
   * - a missing seq is resolved as failed (skipped, with EXT-X-DISCONTINUITY before the next
   *   listed segment) once a later result has waited `maxSegmentWaitMs`; a run of missing
   *   seqs is skipped in one step;
   * - a seq skipped in `source` (its source segment never came) is skipped in every
   *   rendition too, at once;
   * - after the stream ended, every seq below its end still missing is resolved once
   *   `maxSegmentWaitMs` passed since the end and since the rendition's last result.
   * With `pushGapTo`, first resolves as failed every seq below it that was never pushed,
   * down to the highest pushed one (an HTTP push gap of any size, in one step).
   * Idempotent; any gateway may run it.
   */
  async resolve(manifestID: string, options: { nowMs?: number; pushGapTo?: number } = {}): Promise<ResolveResult> {
    const { session, names } = await this.#renditionNames(manifestID);
    if (session === undefined) {
      await this.#redis.zrem(this.#dueKey, manifestID);
      return { listed: 0, skipped: 0 };
    }
    const keys = [this.#streamKey(manifestID), this.#dueKey, this.#pushedKey(manifestID, session), ...names.flatMap((r) => this.#rendKeys(manifestID, r))];
    const result = await this.#redis.eval(RESOLVE_SCRIPT, keys.length, ...keys,
      manifestID, session, String(options.nowMs ?? Date.now()), String(this.#boundMs), String(this.#retain), String(options.pushGapTo ?? -1));
    if (!Array.isArray(result)) return { listed: 0, skipped: 0 };
    return { listed: Number(result[0]), skipped: Number(result[1]) };
  }

  /**
   * After seq `seq` of a push session is done, resolves as failed every lower seq that was
   * never pushed (down to the highest pushed one), in every rendition, as one step.
   */
  async resolvePushGap(manifestID: string, session: string, seq: number): Promise<void> {
    const stream = await this.#redis.hget(this.#streamKey(manifestID), 'session');
    if (stream !== session) return;
    await this.resolve(manifestID, { pushGapTo: seq });
  }

  /**
   * One sweep, safe to run from every gateway at once: ends live streams whose heartbeat
   * expired (endSeq = one past the highest seq the index knows; their pending seqs are
   * resolved at once, the heartbeat TTL having been their wait), then resolves every stream
   * with a segment waiting past `maxSegmentWaitMs` (see {@link resolve}).
   * @param options.expireHeartbeats false skips ending streams (e.g. right after a Redis
   *   outage, when no holder could renew); default true.
   */
  async sweep(nowMs = Date.now(), options: { expireHeartbeats?: boolean } = {}): Promise<SweepResult> {
    const expired: string[] = [];
    const expiring = options.expireHeartbeats === false ? [] : await this.#redis.zrangebyscore(this.#heartbeatKey, '-inf', nowMs, 'LIMIT', 0, SWEEP_BATCH);
    for (const m of expiring) {
      // Its holder stopped a heartbeat TTL ago: that was the wait, so what is missing is resolved now.
      if (await this.#end(m, { session: '', endSeq: -1, nowMs, resolveAtMs: nowMs, endWaitMs: 0, requireExpired: true })) expired.push(m);
    }
    const resolved: ({ manifestID: string } & ResolveResult)[] = [];
    for (const manifestID of await this.#redis.zrangebyscore(this.#dueKey, '-inf', nowMs, 'LIMIT', 0, SWEEP_BATCH)) {
      resolved.push({ manifestID, ...(await this.resolve(manifestID, { nowMs })) });
    }
    return { expired, resolved };
  }

  /**
   * Records one outcome for (rendition, seq) and lists every segment that became listable.
   * Idempotent: a repeat of an already-resolved seq changes nothing. A result for a seq
   * already resolved as failed (skipped after waiting `maxSegmentWaitMs`, a push gap, a
   * failure) is refused: `accepted: false`, so the caller releases its charge.
   */
  async record(manifestID: string, session: string, outcome: SegmentOutcome): Promise<RecordResult> {
    const rendition = outcome.status === 'ok' ? outcome.segment.rendition : outcome.rendition;
    const keys = [this.#streamKey(manifestID), this.#rendsKey(manifestID), this.#dueKey, ...this.#rendKeys(manifestID, rendition)];
    const [status, listed] = (await this.#redis.eval(RECORD_SCRIPT, keys.length, ...keys, session, String(outcome.seq), JSON.stringify(outcome),
      String(this.#retain), rendition, String(Date.now()), String(this.#boundMs), manifestID)) as [number, number];
    return { accepted: status === 1, listed, ...(status === -1 ? { staleSession: true } : {}) };
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
    return this.#redis.zrevrange(this.#streamsKey, 0, limit - 1);
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
