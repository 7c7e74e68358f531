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
 * - chunk  `t=c s=<seq> f=0|1 [p=<startPts90k>] b=<bytes> [b=<bytes> …]`: muxed source bytes of
 *   one seq, in order; `f=1` when the entry starts its seq (PAT/PMT and a keyframe). A reader
 *   takes each `b` field as one chunk; this writer sends one `b` per entry: the chunks of one
 *   seq handed over between two writes, concatenated (see "Batching" below).
 *   `p` is the seq's first PTS (90 kHz), on `f=1` entries.
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
 * Batching: the writer is fire-and-forget and ordered. Writes go out at most every `batchMs`
 * (default {@link DEFAULT_FEED_BATCH_MS}): a chunk handed over when the last write is at least
 * that old goes out at the end of its event-loop tick (a publisher at real time, a frame every
 * 33 ms: every frame at once, as it comes); one handed over sooner waits for the interval's end,
 * with every chunk of the same seq after it in the same entry (a publisher faster than real
 * time: one XADD per `batchMs` instead of one per frame or per socket read, its bytes in one
 * argument). The first chunk of a seq, a
 * settlement and the end go out at the end of their tick: a seq's boundary is never held back
 * (goal 2's per-segment latency runs from it). An entry is closed at `entryMaxBytes` (default
 * {@link DEFAULT_FEED_ENTRY_MAX_BYTES}), so a reader's XREAD COUNT bounds the bytes of a reply.
 * One write is one XADD per entry, sent back to back. On a `blocking` connection
 * (the gateway's) writes wait out a Redis outage in ioredis's queue, in order; a write that
 * still fails is logged (rate limited) and dropped: the transcoder then misses that part of the seq.
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
/**
 * Default shortest interval between two writes of the feeds, ms: 20, below the 33 ms between
 * the frames of a 30 fps publisher at real time (whose every frame thus goes out as it comes).
 * With a publisher faster than real time (a backlog, bench/throughput.ts `--modes live`) the
 * chunks of 20 ms of socket reads go in one XADD.
 */
export const DEFAULT_FEED_BATCH_MS = 20;
/**
 * Default cap of one chunk entry's bytes: 128 KiB (a chunk larger than this is an entry of its
 * own). A reader's XREAD takes 32 entries (LiveFeedReaderOptions.count), so a reply of a backlog
 * carries ≤ 4 MiB of such entries, parsed whole before the ladder gets its first byte.
 */
export const DEFAULT_FEED_ENTRY_MAX_BYTES = 128 * 1024;

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

/** A pending chunk entry that later chunks of its seq may still join. */
interface OpenChunkEntry {
  readonly seq: number;
  /** Its XADD arguments, without the `b` field. */
  readonly fields: (string | Buffer)[];
  /** Where its bytes start in the feed's slab; they run to the slab's `used` mark. */
  readonly start: number;
}

/**
 * Where a feed copies the chunks handed to it: a buffer of {@link SLAB_BYTES} (or one chunk's
 * size) filled from the front, an open entry's bytes contiguous in it, so an entry's `b` field
 * is a view and no chunk is copied twice. A region is never written again once handed to an
 * XADD (ioredis may hold it in its queue until it is written to the socket): a full slab is
 * replaced by a new one and dropped by the garbage collector with its last XADD.
 */
interface Slab {
  readonly buffer: Buffer;
  used: number;
}

/** Bytes of a feed's slab: twice the default entry cap, so entries mostly close at the cap, not at a slab's end. */
const SLAB_BYTES = 256 * 1024;

interface FeedState {
  readonly manifestID: string;
  readonly session: string;
  /** The highest seq appended, −1 before the first chunk. */
  headSeq: number;
  /** Entries waiting for the next write: XADD arguments after the key (a chunk entry's `b` added when it closes). */
  pending: (string | Buffer)[][];
  /** The last pending entry while it is a chunk entry still open: later chunks of its seq join it. */
  open: OpenChunkEntry | undefined;
  /** Where its chunks are copied (see {@link Slab}); made at the first chunk. */
  slab: Slab | undefined;
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
  /** Shortest interval between two writes, ms; default {@link DEFAULT_FEED_BATCH_MS}; 0: every tick's chunks at the end of the tick. */
  batchMs?: number;
  /** Cap of one chunk entry's bytes; default {@link DEFAULT_FEED_ENTRY_MAX_BYTES}. */
  entryMaxBytes?: number;
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
  readonly #batchMs: number;
  readonly #entryMaxBytes: number;
  readonly #feeds = new Map<string, FeedState>();
  /** A write is scheduled: at the end of this tick (`immediate`) or by the batch timer. */
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** performance.now() of the last write (−Infinity before the first). */
  #lastWriteMs = Number.NEGATIVE_INFINITY;
  #inFlight: Promise<void> = Promise.resolve();
  #lastWarnMs = 0;
  #closed = false;

  constructor(options: LiveFeedWriterOptions) {
    this.#o = options;
    this.#retain = options.retainSegments ?? DEFAULT_FEED_RETAIN_SEGMENTS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_FEED_MAX_BYTES;
    this.#ttlMs = options.ttlMs ?? DEFAULT_FEED_TTL_MS;
    this.#batchMs = options.batchMs ?? DEFAULT_FEED_BATCH_MS;
    this.#entryMaxBytes = options.entryMaxBytes ?? DEFAULT_FEED_ENTRY_MAX_BYTES;
    if (!(this.#batchMs >= 0) || !(this.#entryMaxBytes > 0)) throw new RangeError('live feed batchMs must be ≥ 0 and entryMaxBytes > 0');
    this.#scripts = new RedisScripts(options.redis, FEED_SCRIPTS);
  }

  /**
   * Appends one chunk of source segment `chunk.seq` (seqs never go back within a feed). Its
   * bytes are copied before this returns: `chunk.bytes` may be a view the caller reuses.
   */
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
    const { bytes } = chunk;
    const open = feed.open;
    const slab = feed.slab;
    if (!chunk.first && open?.seq === chunk.seq && slab !== undefined && slab.used + bytes.length <= slab.buffer.length
      && slab.used - open.start + bytes.length <= this.#entryMaxBytes) {
      // A later chunk of the seq whose chunk entry is pending: its bytes join that entry.
      slab.used += bytes.copy(slab.buffer, slab.used);
      this.#schedule(false);
      return;
    }
    const fields: (string | Buffer)[] = [`${chunk.seq}-*`, 't', 'c', 's', String(chunk.seq), 'f', chunk.first ? '1' : '0'];
    if (chunk.startPts90k !== undefined) fields.push('p', String(chunk.startPts90k));
    this.#queue(feed, fields, chunk.first);
    let into = slab;
    if (into === undefined || into.used + bytes.length > into.buffer.length) {
      into = { buffer: Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, bytes.length)), used: 0 };
      feed.slab = into;
    }
    feed.open = { seq: chunk.seq, fields, start: into.used };
    into.used += bytes.copy(into.buffer, into.used);
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
      'd', String(Math.round(settled.durationMs)), 'a', String(Math.round(settled.readyAtMs))], true);
  }

  /** No chunk follows for this feed (the segmenter ended); settled entries still may. */
  end(manifestID: string, session: string): void {
    const feed = this.#feed(manifestID, session);
    if (feed === undefined) return;
    this.#queue(feed, [`${Math.max(feed.headSeq, 0)}-*`, 't', 'e', 's', String(feed.headSeq)], true);
  }

  /** Sends what is pending for a feed and forgets its writer state (the stream ended); its key expires with its TTL. */
  forget(manifestID: string, session: string): void {
    const key = feedKey(this.#o.keys, manifestID, session);
    const feed = this.#feeds.get(key);
    if (feed && (feed.pending.length > 0 || feed.open)) this.#flush();
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
      feed = { manifestID, session, headSeq: -1, pending: [], open: undefined, slab: undefined, seqBytes: new Map(), lowSeq: 0 };
      this.#feeds.set(key, feed);
    }
    return feed;
  }

  /** Adds an entry after the pending ones (closing an open chunk entry); `urgent`: written at the end of this tick. */
  #queue(feed: FeedState, fields: (string | Buffer)[], urgent: boolean): void {
    closeEntry(feed);
    feed.pending.push(fields);
    this.#schedule(urgent);
  }

  /**
   * Schedules the next write, if none is: at the end of this tick when `urgent` or the last write
   * is at least `batchMs` old, else when it is. An urgent entry advances a write on the timer.
   */
  #schedule(urgent: boolean): void {
    if (this.#immediate !== undefined) return;
    const waitMs = urgent ? 0 : this.#lastWriteMs + this.#batchMs - performance.now();
    if (waitMs <= 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#immediate = setImmediate(() => this.#flush());
    } else {
      this.#timer ??= setTimeout(() => this.#flush(), waitMs);
    }
  }

  #flush(): void {
    clearImmediate(this.#immediate);
    clearTimeout(this.#timer);
    this.#immediate = undefined;
    this.#timer = undefined;
    const sent: Promise<unknown>[] = [];
    const trims: [string, FeedState, { countTo: number; bytesTo: number }][] = [];
    const failed = (err: Error): void => this.#warn({ err: err.message }, 'live feed write failed; the transcoder misses part of a segment');
    for (const [key, feed] of this.#feeds) {
      closeEntry(feed);
      if (feed.pending.length === 0) continue;
      // One command each, not a MULTI-less pipeline: ioredis writes each command's buffer to the
      // socket as it is, where a pipeline first copies all of them into one (a copy of every
      // feed byte). The connection keeps them in order, and sends them without waiting for replies.
      for (const fields of feed.pending) sent.push(this.#o.redis.xadd(key, ...(fields as [string, ...(string | Buffer)[]])).catch(failed));
      feed.pending = [];
      if (feed.trim !== undefined) {
        trims.push([key, feed, feed.trim]);
        delete feed.trim;
      }
    }
    if (sent.length === 0) return;
    this.#lastWriteMs = performance.now();
    // Sent after the XADDs on the same connection, so after their entries.
    const trimmed = trims.map(([key, feed, trim]) => this.#trim(key, feed, trim));
    this.#inFlight = Promise.all([this.#inFlight, ...sent, ...trimmed]).then(() => undefined);
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

/** Closes the feed's open chunk entry: its bytes in the slab become its one `b` field. */
function closeEntry(feed: FeedState): void {
  const open = feed.open;
  if (open === undefined) return;
  feed.open = undefined;
  open.fields.push('b', feed.slab!.buffer.subarray(open.start, feed.slab!.used));
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
