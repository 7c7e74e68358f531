/**
 * The live feed: the source MPEG-TS of one live transcoding session, carried from the
 * gateway that ingests the stream to the transcoder that owns its session, in one Redis
 * stream per (manifest ID, session) (docs/architecture.md, "Live transcoding sessions").
 *
 * Key (deployment prefix `p`): `p:transcode:feed:<manifestID>:<session>`, a Redis STREAM
 * whose entry IDs are `<seq>-<n>`: the millisecond part of every entry is the source segment
 * it belongs to (`XADD key <seq>-*`, Redis ≥ 7.0, numbers the entries of one seq 0, 1, 2 …),
 * so one XTRIM MINID drops whole segments and a reader starts at the first chunk of any seq
 * still held without an index of its own. Entries, fields as short ASCII names:
 * - chunk  `t=c s=<seq> f=0|1 [p=<startPts90k>] b=<bytes> [b=<bytes> …]`: muxed source bytes, in
 *   order, one or more chunks of one seq (those handed over in the same event-loop tick go in
 *   one entry, each its own `b` field, so a publisher faster than real time costs one XADD per
 *   tick, not one per frame); `f=1` when the entry's first chunk is the first of its seq (it
 *   starts with PAT/PMT and a keyframe).
 * - settled `t=m s=<seq> x=0|1 d=<durationMs> a=<readyAtMs>`: the gateway listed the source
 *   segment `seq` and decided whether it is transcoded (`x=1`: credits held) or not (`x=0`:
 *   source only, or lost; ingest has resolved its renditions itself). Written under the seq
 *   the feed is at when it arrives (≥ `seq`), so it outlives the trim of its own chunks.
 * - end    `t=e s=<lastSeq>`: no chunk follows; `lastSeq` is the last seq appended (−1: none).
 *
 * Retention: the session's owner trims the feed to the first seq it has not recorded yet
 * (`LiveFeedReader.trimBefore`), so a transcoder taking the session over finds every seq not
 * yet recorded. At the first chunk of every seq the writer runs one script
 * (lua/trim-live-feed.lua) that renews the key's TTL (`ttlMs`, default 60 s: a feed no one
 * appends to disappears) and trims:
 * - while the session record exists, only seqs below its progress (`next`, what an owner
 *   recorded), however far the transcoder is behind: a publisher faster than real time, a
 *   transcoder that claims late or runs slow, loses nothing;
 * - unless the seqs not yet recorded hold more than `maxBytes` (default 64 MiB): then the
 *   oldest of them go, and the writer says so (an error log and `onUnreadTrimmed`, the
 *   gateway's `mediagate_live_feed_unread_trimmed_segments_total`); the owner sees the gap and
 *   hands the session over (live-session-runner.ts), whose takeover records them as failed;
 * - without a session record (finished or expired: nobody reads), seqs below N −
 *   `retainSegments` (default 15) at seq N.
 * A count cap that also applied to open sessions cut seqs the owner had not read yet, silently
 * (a publisher that sent 60 s in half a second lost seqs 0-10 of 30 before the claim).
 *
 * The writer is fire-and-forget and ordered: appends of one tick go out in one pipeline
 * (one round trip, one XADD per seq and kind of entry). On a `blocking` connection (the gateway's) writes
 * wait out a Redis outage in ioredis's queue, in order; a write that still fails is logged
 * (rate limited) and dropped: the transcoder then misses that part of the seq.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { Logger } from '../log/logger.ts';
import { liveSessionKey } from './live-session-store.ts';

const FEED_SCRIPTS = {
  trim: luaScript('mgLiveFeedTrim', 2, new URL('./lua/trim-live-feed.lua', import.meta.url)),
};

/**
 * One piece of muxed source MPEG-TS (the segmenter's `TsChunk`, media/ts-segmenter.ts):
 * `seq` the source segment, `first` on its first chunk, `startPts90k` (90 kHz) on a first chunk.
 */
export interface FeedChunk {
  readonly seq: number;
  readonly first: boolean;
  readonly startPts90k?: number;
  readonly bytes: Buffer;
}

/** How the gateway settled one source segment (see the `settled` entry above). */
export interface FeedSettled {
  readonly seq: number;
  /** Whether the session transcodes this seq (its credits are held); false: source only or lost. */
  readonly transcode: boolean;
  /** The source segment's duration (its EXTINF), ms. */
  readonly durationMs: number;
  /** Epoch ms when the source segment was complete (the latency metric's start). */
  readonly readyAtMs: number;
}

/** One entry read from a feed. */
export type FeedEntry =
  | { readonly type: 'chunk'; readonly chunk: FeedChunk }
  | { readonly type: 'settled'; readonly settled: FeedSettled }
  | { readonly type: 'end'; readonly lastSeq: number };

/**
 * Default number of whole source segments the writer keeps behind the newest one once the
 * feed's session record is gone (nobody reads it any more): 15 (30 s of 2 s segments). While
 * the session exists only what its owner recorded is trimmed, and the byte cap
 * ({@link DEFAULT_FEED_MAX_BYTES}).
 */
export const DEFAULT_FEED_RETAIN_SEGMENTS = 15;
/**
 * Default cap of the seqs a feed holds that its session has not recorded yet, bytes: 64 MiB
 * (about 85 s of a 6 Mbit/s source), the Redis memory one stream may take while its
 * transcoder is behind or none has claimed it.
 */
export const DEFAULT_FEED_MAX_BYTES = 64 * 1024 * 1024;
/** Default TTL of a feed key, renewed at every seq start, ms. */
export const DEFAULT_FEED_TTL_MS = 60_000;

/** The Redis key of a feed; one spelling for the writer and the reader. */
function feedKey(keys: RedisKeys, manifestID: string, session: string): string {
  return keys.key('transcode', 'feed', manifestID, session);
}

/** The stream ID after which a reader sees every entry of seq `seq` and later (XREAD's ID is exclusive). */
export function feedPositionBefore(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`feed seq must be a non-negative integer, got ${seq}`);
  // `0-*` numbers the first entry 0-1 (0-0 is not a valid ID), so 0-0 precedes all of seq 0.
  return seq === 0 ? '0-0' : `${seq - 1}-18446744073709551615`;
}

interface FeedState {
  readonly manifestID: string;
  readonly session: string;
  /** The highest seq appended, −1 before the first chunk. */
  headSeq: number;
  /** Entries waiting for this tick's pipeline: XADD arguments after the key. */
  pending: (string | Buffer)[][];
  /** The seq of the last pending entry when it is a chunk entry (later chunks of that seq join it as more `b` fields). */
  openChunkSeq?: number;
  /** Trim and TTL renewal to send after the pending entries: the first seq to keep by count (no session) and by bytes (0: none). */
  trim?: { countTo: number; bytesTo: number };
  /** Bytes appended per seq that may still be in the feed (not known recorded or trimmed). */
  readonly seqBytes: Map<number, number>;
  /** The first seq possibly held: below it everything is recorded or trimmed (as the last trim answered). */
  lowSeq: number;
}

/** Seqs of a feed trimmed before the session recorded them (the byte cap). */
export interface UnreadTrimmed {
  readonly manifestID: string;
  readonly session: string;
  /** The first seq lost. */
  readonly fromSeq: number;
  /** One past the last seq lost. */
  readonly toSeq: number;
}

export interface LiveFeedWriterOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** Whole source segments kept behind the newest once the session record is gone; default {@link DEFAULT_FEED_RETAIN_SEGMENTS}. */
  retainSegments?: number;
  /** Cap of the bytes of seqs not yet recorded a feed holds; default {@link DEFAULT_FEED_MAX_BYTES}. */
  maxBytes?: number;
  /** Told (after an error log) whenever the byte cap trimmed seqs the session had not recorded. */
  onUnreadTrimmed?: (trimmed: UnreadTrimmed) => void;
  /** TTL of a feed key, renewed at each seq start, ms; default 60000. */
  ttlMs?: number;
}

/**
 * The gateway side: implements ingest's `LiveFeedSink` (ingest/ingest-ports.ts). Every call
 * returns at once; the entries of one (manifestID, session) reach Redis in call order.
 */
export class LiveFeedWriter {
  readonly #o: LiveFeedWriterOptions;
  readonly #retain: number;
  readonly #maxBytes: number;
  readonly #ttlMs: number;
  readonly #scripts: RedisScripts<keyof typeof FEED_SCRIPTS>;
  readonly #feeds = new Map<string, FeedState>();
  #scheduled = false;
  #inFlight: Promise<void> = Promise.resolve();
  #lastWarnMs = 0;
  #closed = false;

  constructor(options: LiveFeedWriterOptions) {
    this.#o = options;
    this.#retain = options.retainSegments ?? DEFAULT_FEED_RETAIN_SEGMENTS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_FEED_MAX_BYTES;
    this.#ttlMs = options.ttlMs ?? DEFAULT_FEED_TTL_MS;
    this.#scripts = new RedisScripts(options.redis, FEED_SCRIPTS);
  }

  /** Appends one chunk of source segment `chunk.seq` (seqs never go back within a feed). */
  append(manifestID: string, session: string, chunk: FeedChunk): void {
    const feed = this.#feed(manifestID, session);
    if (feed === undefined) return;
    if (chunk.seq < feed.headSeq) {
      this.#warn({ manifestID, seq: chunk.seq, headSeq: feed.headSeq }, 'live feed chunk of an earlier seq dropped');
      return;
    }
    if (chunk.first && chunk.seq > feed.headSeq) feed.trim = { countTo: chunk.seq - this.#retain, bytesTo: this.#bytesTrimTo(feed, chunk.seq) };
    feed.headSeq = chunk.seq;
    feed.seqBytes.set(chunk.seq, (feed.seqBytes.get(chunk.seq) ?? 0) + chunk.bytes.length);
    if (!chunk.first && feed.openChunkSeq === chunk.seq) {
      // A later chunk of the seq whose chunk entry is pending: one more `b` field of that entry.
      feed.pending.at(-1)!.push('b', chunk.bytes);
      return;
    }
    const fields: (string | Buffer)[] = [`${chunk.seq}-*`, 't', 'c', 's', String(chunk.seq), 'f', chunk.first ? '1' : '0'];
    if (chunk.startPts90k !== undefined) fields.push('p', String(chunk.startPts90k));
    fields.push('b', chunk.bytes);
    this.#queue(feed, fields);
    feed.openChunkSeq = chunk.seq;
  }

  /**
   * At the start of seq `head`: the first seq to keep so that the seqs before `head` still
   * possibly held fit in `maxBytes`; 0 when they fit (the oldest go first; `head` itself never).
   */
  #bytesTrimTo(feed: FeedState, head: number): number {
    let held = 0;
    for (const [seq, bytes] of feed.seqBytes) if (seq >= feed.lowSeq && seq < head) held += bytes;
    if (held <= this.#maxBytes) return 0;
    let to = feed.lowSeq;
    while (held > this.#maxBytes && to < head) {
      held -= feed.seqBytes.get(to) ?? 0;
      to += 1;
    }
    return to;
  }

  /** Tells the session how source segment `settled.seq` was settled (after its chunks). */
  settle(manifestID: string, session: string, settled: FeedSettled): void {
    const feed = this.#feed(manifestID, session);
    if (feed === undefined) return;
    this.#queue(feed, [`${Math.max(feed.headSeq, settled.seq, 0)}-*`, 't', 'm', 's', String(settled.seq), 'x', settled.transcode ? '1' : '0',
      'd', String(Math.round(settled.durationMs)), 'a', String(Math.round(settled.readyAtMs))]);
  }

  /** No chunk follows for this feed (the segmenter ended); settled entries still may. */
  end(manifestID: string, session: string): void {
    const feed = this.#feed(manifestID, session);
    if (feed === undefined) return;
    this.#queue(feed, [`${Math.max(feed.headSeq, 0)}-*`, 't', 'e', 's', String(feed.headSeq)]);
  }

  /** Sends what is pending for a feed and forgets its writer state (the stream ended); its key expires with its TTL. */
  forget(manifestID: string, session: string): void {
    const key = feedKey(this.#o.keys, manifestID, session);
    if (this.#feeds.get(key)?.pending.length) this.#flush();
    this.#feeds.delete(key);
  }

  /** Sends what is pending and waits for every write so far; idempotent. Later calls are ignored. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#flush();
    }
    await this.#inFlight;
  }

  /** Resolves once every entry handed over so far has been written (or failed). */
  async flushed(): Promise<void> {
    this.#flush();
    await this.#inFlight;
  }

  #feed(manifestID: string, session: string): FeedState | undefined {
    if (this.#closed) return undefined;
    const key = feedKey(this.#o.keys, manifestID, session);
    let feed = this.#feeds.get(key);
    if (feed === undefined) {
      feed = { manifestID, session, headSeq: -1, pending: [], seqBytes: new Map(), lowSeq: 0 };
      this.#feeds.set(key, feed);
    }
    return feed;
  }

  #queue(feed: FeedState, fields: (string | Buffer)[]): void {
    feed.pending.push(fields);
    delete feed.openChunkSeq;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const pipeline = this.#o.redis.pipeline();
    let commands = 0;
    const trims: [string, FeedState, { countTo: number; bytesTo: number }][] = [];
    for (const [key, feed] of this.#feeds) {
      if (feed.pending.length === 0) continue;
      for (const fields of feed.pending) pipeline.xadd(key, ...(fields as [string, ...(string | Buffer)[]]));
      commands += feed.pending.length;
      feed.pending = [];
      delete feed.openChunkSeq;
      if (feed.trim !== undefined) {
        trims.push([key, feed, feed.trim]);
        delete feed.trim;
      }
    }
    if (commands === 0) return;
    const sent = pipeline.exec().then((replies) => {
      const failed = (replies ?? []).find(([err]) => err);
      if (failed) this.#warn({ err: (failed[0] as Error).message }, 'live feed write failed; the transcoder misses part of a segment');
    }, (err: Error) => this.#warn({ err: err.message }, 'live feed write failed; the transcoder misses part of a segment'));
    // Sent after the pipeline on the same connection, so after its entries.
    const trimmed = trims.map(([key, feed, trim]) => this.#trim(key, feed, trim));
    this.#inFlight = Promise.all([this.#inFlight, sent, ...trimmed]).then(() => undefined);
  }

  /** Runs the trim script of one feed and takes in what it answered. Never rejects. */
  async #trim(key: string, feed: FeedState, trim: { countTo: number; bytesTo: number }): Promise<void> {
    const { manifestID, session } = feed;
    try {
      const [next, to] = (await this.#scripts.run('trim', [key, liveSessionKey(this.#o.keys, manifestID, session)],
        [String(trim.countTo), String(trim.bytesTo), String(this.#ttlMs)])) as [number, number];
      const before = feed.lowSeq;
      const low = Math.max(before, to, next);
      for (const seq of feed.seqBytes.keys()) if (seq < low) feed.seqBytes.delete(seq);
      feed.lowSeq = low;
      const fromSeq = Math.max(next, before);
      if (next >= 0 && trim.bytesTo > fromSeq) {
        const trimmed: UnreadTrimmed = { manifestID, session, fromSeq, toSeq: trim.bytesTo };
        this.#o.logger.error({ ...trimmed, maxBytes: this.#maxBytes },
          'live feed over its byte cap: seqs its transcoder had not recorded were trimmed; they fail');
        this.#o.onUnreadTrimmed?.(trimmed);
      }
    } catch (err) {
      this.#warn({ err: (err as Error).message }, 'live feed trim failed');
    }
  }

  #warn(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.#lastWarnMs < 5000) return;
    this.#lastWarnMs = now;
    this.#o.logger.warn(fields, msg);
  }
}

/** A feed followed by a reader: where it is, and who gets its entries. */
interface Follower {
  readonly key: string;
  position: string;
  readonly onEntry: (entry: FeedEntry) => void;
  stopped: boolean;
}

export interface LiveFeedReaderOptions {
  /**
   * A connection of its own for blocking reads (`RedisConnections.open(purpose, 'blocking')`):
   * XREAD BLOCK holds it for up to `blockMs`.
   */
  redis: Redis;
  /** A request/response connection (the `state` one) for trims and scans; default `redis`. */
  commands?: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** Longest wait of one XREAD, ms; also the longest delay before a newly followed feed is read; default 250. */
  blockMs?: number;
  /**
   * Entries per feed per XREAD; default 32. The reply is parsed whole before its first entry is
   * handed over: with 256 (and an entry per tick of a publisher faster than real time) the first
   * read of a backlog carried most of it, and the ladder's ffmpeg waited for all of it.
   */
  count?: number;
}

/**
 * The transcoder side: follows any number of feeds over one blocking connection (one XREAD
 * names every followed feed), handing each entry to its follower in feed order.
 */
export class LiveFeedReader {
  readonly #o: LiveFeedReaderOptions;
  readonly #followers = new Set<Follower>();
  #loop: Promise<void> | undefined;
  #closed = false;

  constructor(options: LiveFeedReaderOptions) {
    this.#o = options;
  }

  /**
   * Follows a feed from the first entry of source segment `fromSeq` (chunks of earlier seqs
   * are not delivered; trimmed ones never are). `onEntry` runs synchronously per entry, in order.
   * @returns `stop()`, after which no entry is delivered.
   */
  follow(manifestID: string, session: string, fromSeq: number, onEntry: (entry: FeedEntry) => void): { stop(): void } {
    const follower: Follower = { key: feedKey(this.#o.keys, manifestID, session), position: feedPositionBefore(fromSeq), onEntry, stopped: false };
    if (this.#closed) return { stop: () => undefined };
    this.#followers.add(follower);
    this.#loop ??= this.#run();
    return { stop: () => { follower.stopped = true; this.#followers.delete(follower); } };
  }

  /**
   * The lowest seq whose first chunk is still in the feed, or undefined when it has none
   * (trimmed away, never written, or expired).
   */
  async firstSeqHeld(manifestID: string, session: string): Promise<number | undefined> {
    // The feed is trimmed by whole seqs, so its first entry is nearly always the first chunk of
    // its first seq: read a few entries at a time (each carries its bytes; 256 at once moved
    // megabytes of a backlog before the ladder could start).
    const key = feedKey(this.#o.keys, manifestID, session);
    const batch = 4;
    let start = '-';
    for (;;) {
      const entries = await (this.#o.commands ?? this.#o.redis).xrange(key, start, '+', 'COUNT', batch);
      for (const [id, fields] of entries) {
        const f = pairs(fields);
        if (f.get('t') === 'c' && f.get('f') === '1') return Number(f.get('s'));
        start = `(${id}`;
      }
      if (entries.length < batch) return undefined;
    }
  }

  /** Drops every entry of seqs below `seq` (recorded by the session's owner); entries written under a later seq stay. */
  async trimBefore(manifestID: string, session: string, seq: number): Promise<void> {
    if (seq <= 0) return;
    await (this.#o.commands ?? this.#o.redis).xtrim(feedKey(this.#o.keys, manifestID, session), 'MINID', `${seq}-0`);
  }

  /** Stops following every feed and waits for the read loop to end (at most `blockMs`); idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const f of this.#followers) f.stopped = true;
    this.#followers.clear();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const blockMs = this.#o.blockMs ?? 250;
    let lastWarnMs = 0;
    while (!this.#closed && this.#followers.size > 0) {
      const followers = [...this.#followers];
      let reply: [Buffer, [Buffer, Buffer[]][]][] | null;
      try {
        reply = await this.#o.redis.xreadBuffer('COUNT', this.#o.count ?? 32, 'BLOCK', blockMs, 'STREAMS',
          ...followers.map((f) => f.key), ...followers.map((f) => f.position)) as [Buffer, [Buffer, Buffer[]][]][] | null;
      } catch (err) {
        if (Date.now() - lastWarnMs > 5000) {
          lastWarnMs = Date.now();
          this.#o.logger.warn({ err: (err as Error).message }, 'live feed read failed; retrying');
        }
        await new Promise((r) => setTimeout(r, blockMs));
        continue;
      }
      for (const [keyBuf, entries] of reply ?? []) {
        const key = keyBuf.toString();
        for (const follower of followers) {
          if (follower.key !== key) continue;
          for (const [id, fields] of entries) {
            if (follower.stopped) break;
            follower.position = id.toString();
            for (const entry of parseEntry(fields)) {
              if (follower.stopped) break;
              try {
                follower.onEntry(entry);
              } catch (err) {
                this.#o.logger.error({ err: (err as Error).message }, 'live feed entry handler threw');
              }
            }
          }
        }
      }
    }
    this.#loop = undefined;
    // A feed followed while the loop was finishing starts a new one.
    if (!this.#closed && this.#followers.size > 0) this.#loop = this.#run();
  }
}

/** Field/value pairs of an entry, by field name. */
function pairs(fields: readonly (string | Buffer)[]): Map<string, string | Buffer> {
  const map = new Map<string, string | Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!);
  return map;
}

/** Decodes an entry: one feed entry per chunk it carries (its `b` fields, in order), else one; none for one of unknown shape (skipped). */
function parseEntry(fields: readonly Buffer[]): FeedEntry[] {
  const f = pairs(fields);
  const text = (name: string): string | undefined => f.get(name)?.toString();
  const seq = Number(text('s'));
  if (!Number.isInteger(seq)) return [];
  switch (text('t')) {
    case 'c': {
      const chunks: FeedEntry[] = [];
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const bytes = fields[i + 1]!;
        if (fields[i]!.length !== 1 || fields[i]![0] !== 0x62 /* b */) continue;
        if (chunks.length > 0) {
          chunks.push({ type: 'chunk', chunk: { seq, first: false, bytes } });
          continue;
        }
        const pts = text('p');
        chunks.push({ type: 'chunk', chunk: { seq, first: text('f') === '1', ...(pts !== undefined ? { startPts90k: Number(pts) } : {}), bytes } });
      }
      return chunks;
    }
    case 'm':
      return [{ type: 'settled', settled: { seq, transcode: text('x') === '1', durationMs: Number(text('d')), readyAtMs: Number(text('a')) } }];
    case 'e':
      return [{ type: 'end', lastSeq: seq }];
    default:
      return [];
  }
}
