/**
 * The segment index in Redis: which segments each rendition of each stream lists, in
 * sequence order, plus the per-rendition measurements the master playlist needs. Any
 * gateway sharing the Redis can serve any stream's playback from it.
 *
 * Keys (prefix `p`, manifest ID `m`, rendition `r`, session `s`):
 * - `p:stream:m`       HASH  session, protocol, state (live|ended), startedAtMs, endedAtMs, firstSeq, endSeq,
 *                            resumes (how many times a reconnect continued the session),
 *                            resolveAtMs and endWaitMs (when an ended stream's missing seqs may be resolved:
 *                            not before resolveAtMs nor before endWaitMs after a rendition's last result),
 *                            renditions (JSON), warnings (JSON source lint, absent when none)
 * - `p:streams`        ZSET  manifest IDs of known streams, scored by start time
 * - `p:rends:m`        SET   every rendition recorded in the current session (for cleanup)
 * - `p:rend:m:r`       HASH  frontier (next seq to list), count (listed so far), disc, pendingDisc, discAt (the
 *                            seq a resumed session went on at: listed after a discontinuity),
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
 * sweep once `reconnectGraceMs` passed after that without a reconnect (a publisher that
 * reconnects meanwhile, to any gateway, continues it: {@link RedisSegmentIndex.resumeStream}),
 * and an ended stream's missing seqs are resolved, so every playlist gets ENDLIST.
 *
 * Every write that changes what a playlist shows (start, renditions set, a segment recorded or
 * resolved, end, resume) is followed on the same connection by a PUBLISH of the manifest ID on
 * `<prefix>:hls:changed` (playlist-change-bus.ts), which drops the playlist replies the
 * gateways keep (playlist-cache.ts). The PUBLISH is sent once the write's reply is in, so a
 * subscriber hears of a change only after it is readable.
 *
 * The records it reads and returns are declared in segment-index-types.ts.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { RenditionPlan, StreamProtocol } from '../domain/profile.ts';
import { SOURCE_RENDITION, type SegmentOutcome } from '../domain/segment.ts';
import type { SourceWarning } from '../domain/source-lint.ts';
import type { StreamRecord, RenditionStats, RenditionWindow, RecordResult, ResolveResult, SweepResult } from './segment-index-types.ts';
import { playlistChangedChannel } from './playlist-change-bus.ts';

/**
 * The index's Lua scripts, one file each in ./lua/ (KEYS, ARGV and reply documented in each
 * file's header), run through ioredis `defineCommand` (src/redis/scripts.ts). The local
 * functions record and resolve share (`drain`, `skip`, `addRange` …) are in
 * ./lua/index-functions.lua, put in front of the two scripts when they are loaded. Recording
 * is one script per outcome, so concurrent transcoders and redelivered jobs cannot list a
 * segment twice or out of order.
 */
const INDEX_FUNCTIONS = [new URL('./lua/index-functions.lua', import.meta.url)];
/** knownEnd (one past the highest seq the index knows), shared by end-stream.lua and resume-stream.lua. */
const KNOWN_END = [new URL('./lua/known-end.lua', import.meta.url)];
const INDEX_SCRIPTS = {
  record: luaScript('mgIndexRecord', 8, new URL('./lua/record.lua', import.meta.url), INDEX_FUNCTIONS),
  resolve: luaScript('mgIndexResolve', 'variable', new URL('./lua/resolve.lua', import.meta.url), INDEX_FUNCTIONS),
  endStream: luaScript('mgIndexEndStream', 'variable', new URL('./lua/end-stream.lua', import.meta.url), KNOWN_END),
  renewHeartbeats: luaScript('mgIndexRenewHeartbeats', 'variable', new URL('./lua/renew-heartbeats.lua', import.meta.url)),
  resumeStream: luaScript('mgIndexResumeStream', 'variable', new URL('./lua/resume-stream.lua', import.meta.url), KNOWN_END),
};

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
  /**
   * How long a live stream whose heartbeat expired (its gateway died, or its publisher dropped)
   * stays live for its publisher to reconnect and continue it ({@link RedisSegmentIndex.resumeStream})
   * before the sweep ends it, in ms (`ingest.reconnectGraceMs`; default 0: ended at expiry).
   */
  reconnectGraceMs?: number;
}

/** Streams taken per sweep step (each is one script run; the rest waits for the next sweep). */
const SWEEP_BATCH = 100;

export class RedisSegmentIndex {
  readonly #redis: Redis;
  readonly #scripts: RedisScripts<keyof typeof INDEX_SCRIPTS>;
  readonly #keys: RedisKeys;
  readonly #retain: number;
  readonly #boundMs: number;
  readonly #heartbeatTtlMs: number;
  readonly #graceMs: number;
  readonly #changedChannel: string;

  constructor(options: RedisSegmentIndexOptions) {
    this.#redis = options.redis;
    this.#scripts = new RedisScripts(options.redis, INDEX_SCRIPTS);
    this.#keys = options.keys;
    this.#retain = options.retainSegments;
    this.#boundMs = options.maxSegmentWaitMs ?? 10_000;
    this.#heartbeatTtlMs = options.heartbeatTtlMs ?? 10_000;
    this.#graceMs = options.reconnectGraceMs ?? 0;
    this.#changedChannel = playlistChangedChannel(options.keys);
  }

  /** Tells every gateway that the playlists of `m` changed (see the header). */
  async #changed(m: string): Promise<void> {
    await this.#redis.publish(this.#changedChannel, m);
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
  async startStream(manifestID: string, session: string, startedAtMs: number, options: { protocol?: StreamProtocol; firstSeq?: number } = {}): Promise<void> {
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
    multi.publish(this.#changedChannel, manifestID);
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
    await this.#changed(manifestID);
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
    const ended = await this.#scripts.run('endStream', keys, [
      m, o.session, String(o.endSeq), String(o.nowMs), String(o.resolveAtMs), o.requireExpired ? '1' : '0', String(o.endWaitMs), String(this.#graceMs)]);
    if (Number(ended) === 1) await this.#changed(m);
    return Number(ended) === 1;
  }

  /**
   * Continues the live session of `manifestID` for a publisher that reconnected (to any
   * gateway) after its holder went away, while the stream is still live in the index and its
   * heartbeat expired at most `reconnectGraceMs` ago (or has not expired yet: the caller holds
   * the stream's ownership lease, so its old holder is gone). The session keeps its ID, so its
   * playlists and objects continue; the publish goes on at `nextSeq` (one past the highest seq
   * the index knows) and every rendition lists its next segment after EXT-X-DISCONTINUITY.
   * The heartbeat is renewed for the caller. One script.
   * @returns the session and the seq to continue at, or `undefined` when there is nothing to
   *   resume (no stream, ended, or past the grace): start a new session then.
   */
  async resumeStream(manifestID: string, nowMs = Date.now()): Promise<{ session: string; nextSeq: number } | undefined> {
    const { session, names } = await this.#renditionNames(manifestID);
    if (session === undefined) return undefined;
    const keys = [this.#streamKey(manifestID), this.#heartbeatKey, ...names.flatMap((r) => this.#rendKeys(manifestID, r).slice(0, 2).reverse())];
    const reply = (await this.#scripts.run('resumeStream', keys,
      [manifestID, String(nowMs), String(this.#graceMs), String(nowMs + this.#heartbeatTtlMs)])) as [string, number] | [];
    if (reply.length === 0) return undefined;
    await this.#changed(manifestID);
    return { session: reply[0], nextSeq: Number(reply[1]) };
  }

  /**
   * Renews the heartbeat of streams this gateway holds (for `hls.heartbeatTtlMs`).
   * @returns the streams among them that are no longer live in their session (ended
   *   elsewhere, e.g. by a sweep that saw the heartbeat expire, or taken over by a new session).
   */
  async renewHeartbeats<T extends { manifestID: string; session: string }>(held: readonly T[], nowMs = Date.now()): Promise<T[]> {
    if (held.length === 0) return [];
    const keys = [this.#heartbeatKey, ...held.map((h) => this.#streamKey(h.manifestID))];
    const lost = await this.#scripts.run('renewHeartbeats', keys,
      [String(nowMs + this.#heartbeatTtlMs), ...held.flatMap((h) => [h.manifestID, h.session])]);
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
    const result = await this.#scripts.run('resolve', keys,
      [manifestID, session, String(options.nowMs ?? Date.now()), String(this.#boundMs), String(this.#retain), String(options.pushGapTo ?? -1)]);
    if (!Array.isArray(result)) return { listed: 0, skipped: 0 };
    // Any run in the session may have moved a frontier (a drain past a held failure too).
    await this.#changed(manifestID);
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
   * expired more than `reconnectGraceMs` ago (endSeq = one past the highest seq the index knows; their pending seqs are
   * resolved at once, the heartbeat TTL having been their wait), then resolves every stream
   * with a segment waiting past `maxSegmentWaitMs` (see {@link resolve}).
   * @param options.expireHeartbeats false skips ending streams (e.g. right after a Redis
   *   outage, when no holder could renew); default true.
   */
  async sweep(nowMs = Date.now(), options: { expireHeartbeats?: boolean } = {}): Promise<SweepResult> {
    const expired: string[] = [];
    // Kept live for the reconnect grace after the heartbeat expired (a reconnect continues it meanwhile).
    const expiring = options.expireHeartbeats === false ? [] : await this.#redis.zrangebyscore(this.#heartbeatKey, '-inf', nowMs - this.#graceMs, 'LIMIT', 0, SWEEP_BATCH);
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
    const [status, listed] = (await this.#scripts.run('record', keys, [session, String(outcome.seq), JSON.stringify(outcome),
      String(this.#retain), rendition, String(Date.now()), String(this.#boundMs), manifestID])) as [number, number];
    // Accepted: listed, skipped past a failure, or held (a repeat costs one message, nothing else).
    if (status === 1) await this.#changed(manifestID);
    return { accepted: status === 1, listed, ...(status === -1 ? { staleSession: true } : {}) };
  }

  async getStream(manifestID: string): Promise<StreamRecord | undefined> {
    return streamRecord(manifestID, await this.#redis.hgetall(this.#streamKey(manifestID)));
  }

  /** Manifest IDs of known streams, newest first. */
  async listStreams(limit = 100): Promise<string[]> {
    return this.#redis.zrevrange(this.#streamsKey, 0, limit - 1);
  }

  async renditionStats(manifestID: string, rendition: string): Promise<RenditionStats> {
    return renditionStats(await this.#redis.hgetall(this.#rendKeys(manifestID, rendition)[1]));
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
    return renditionWindow(stream, stats, raw);
  }

  /**
   * {@link getStream} and {@link renditionWindow} of one rendition in one round trip (one
   * pipeline of three reads): what a media playlist request needs. Players of every live
   * stream poll their playlist every segment or more often, so on a gateway with many
   * streams these reads are a large share of its Redis traffic and CPU (bench/README.md,
   * "CPU per publisher").
   * @returns undefined when the stream is unknown; the window of a rendition the stream does
   *   not have is empty (the caller checks `stream.renditions`).
   */
  async streamWindow(manifestID: string, rendition: string, window: number): Promise<{ stream: StreamRecord; window: RenditionWindow } | undefined> {
    const keys = this.#rendKeys(manifestID, rendition);
    const replies = (await this.#redis.pipeline().hgetall(this.#streamKey(manifestID)).hgetall(keys[1]).lrange(keys[2], -window, -1).exec())!;
    for (const [err] of replies) if (err) throw err;
    const [[, streamHash], [, statsHash], [, raw]] = replies as [[null, Record<string, string>], [null, Record<string, string>], [null, string[]]];
    const stream = streamRecord(manifestID, streamHash);
    return stream && { stream, window: renditionWindow(stream, renditionStats(statsHash), raw) };
  }
}

/** A stream's record from its hash (`p:stream:m`); undefined when it has none. */
function streamRecord(manifestID: string, h: Record<string, string>): StreamRecord | undefined {
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

/** A rendition's measurements from its hash (`p:rend:m:r`; empty: nothing listed yet). */
function renditionStats(h: Record<string, string>): RenditionStats {
  const num = (k: string): number => Number(h[k] ?? 0);
  const durationMs = num('durationMs');
  return {
    count: num('count'), frontier: num('frontier'), failed: num('failed'),
    width: num('width'), height: num('height'), codecs: h['codecs'] ?? '', frameRate: num('frameRate'),
    lastListedAtMs: num('lastListedAtMs'), peakBps: num('peakBps'), averageBps: durationMs > 0 ? Math.min(Math.floor((num('bytes') * 8000) / durationMs), num('peakBps')) : 0,
  };
}

/** The window from a rendition's listed entries (`p:list:m:r`, JSON `{seq, d, disc, ds}`) and whether it is complete. */
function renditionWindow(stream: StreamRecord, stats: RenditionStats, raw: readonly string[]): RenditionWindow {
  const segments = raw.map((text) => {
    const e = JSON.parse(text) as { seq: number; d: number; disc: boolean; ds: number };
    return { seq: e.seq, durationMs: e.d, discontinuity: e.disc, discontinuityCount: e.ds };
  });
  const complete = stream.state === 'ended' && stream.endSeq !== undefined && Math.max(stats.frontier, stream.firstSeq) >= stream.endSeq;
  return { stats, segments, complete };
}
