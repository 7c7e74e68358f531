/**
 * The rendered replies of this gateway's playlists (media and master), kept until the stream
 * changes: a player polls its media playlist every second or two and many players may poll
 * the same one, while it changes once per listed segment. Each change to what a playlist
 * shows is published by the segment index (segment-index-store.ts, channel
 * {@link playlistChangedChannel} in playlist-change-bus.ts) and drops that stream's replies
 * here ({@link PlaylistCache.invalidate}).
 *
 * Guarantees (docs/architecture.md, "Playlist cache"):
 * - read/invalidate race: a reader takes a {@link PlaylistCacheToken} before it reads the
 *   index; its reply is kept only when no invalidation of that stream (nor a wholesale drop)
 *   came in meanwhile, so a reply read before a change is never kept past the change's message;
 * - nothing is served while the change subscription is not in place (`setLive(false)`, also
 *   the initial state) and everything is dropped when it goes away, so a message lost to a
 *   dropped connection cannot leave a reply behind;
 * - a reply is served for at most `maxAgeMs` after its read began, so a lost message (a
 *   writer that died between its write and its PUBLISH) only delays a playlist by that much;
 * - at most `maxEntries` replies, least recently used dropped first.
 *
 * Pure bookkeeping (no I/O); one instance per gateway, owned by the composition root.
 */

/** One kept reply: the encoded body and its Cache-Control header. */
export interface CachedPlaylist {
  readonly body: Buffer;
  readonly cacheControl: string;
}

/** Taken by a reader before it reads the index (see {@link PlaylistCache.begin}). */
export interface PlaylistCacheToken {
  readonly manifestID: string;
  readonly seq: number;
  readonly epoch: number;
  readonly atMs: number;
}

export interface PlaylistCacheOptions {
  /** Longest a reply is served after its read began, ms (`playlistCache.maxAgeMs`); 0 keeps nothing. */
  maxAgeMs: number;
  /** Replies kept at most (default 4096: media playlists of ~1000 streams with a 3-rung ladder). */
  maxEntries?: number;
  /** Clock, epoch ms (tests). Default `Date.now`. */
  now?: () => number;
}

interface Entry extends CachedPlaylist {
  readonly atMs: number;
}

/** Keys separate manifest and playlist by a character no valid stream name holds. */
const SEP = '\n';

export class PlaylistCache {
  readonly #maxAgeMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** `<manifestID>\n<playlist>` → reply; insertion order is recency (a hit moves the entry to the end). */
  readonly #entries = new Map<string, Entry>();
  /** manifestID → the `#seq` of its last invalidation (kept while a token could predate it). */
  readonly #invalidatedAt = new Map<string, number>();
  /** Playlists kept per manifestID, so an invalidation drops them without a scan. */
  readonly #byStream = new Map<string, Set<string>>();
  #seq = 0;
  /** Bumped by every wholesale drop: a token from before it is refused. */
  #epoch = 0;
  #live = false;
  #hits = 0;
  #misses = 0;

  constructor(options: PlaylistCacheOptions) {
    this.#maxAgeMs = options.maxAgeMs;
    this.#maxEntries = options.maxEntries ?? 4096;
    this.#now = options.now ?? Date.now;
  }

  /** Whether replies are kept and served (the subscription is in place and `maxAgeMs` > 0). */
  get live(): boolean {
    return this.#live && this.#maxAgeMs > 0;
  }

  /** Replies kept now; hits and misses since start (for tests and metrics). */
  get stats(): { entries: number; hits: number; misses: number } {
    return { entries: this.#entries.size, hits: this.#hits, misses: this.#misses };
  }

  /**
   * The kept reply of `playlist` of `manifestID` (a rendition name, or any fixed name for the
   * master), if live, younger than `maxAgeMs` and not invalidated; undefined otherwise.
   */
  get(manifestID: string, playlist: string): CachedPlaylist | undefined {
    if (!this.live) return undefined;
    const key = manifestID + SEP + playlist;
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#now() - entry.atMs >= this.#maxAgeMs) {
      this.#misses += 1;
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.#hits += 1;
    return entry;
  }

  /** Taken before reading the index for `manifestID`; hand it to {@link put} with the reply. */
  begin(manifestID: string): PlaylistCacheToken {
    return { manifestID, seq: this.#seq, epoch: this.#epoch, atMs: this.#now() };
  }

  /**
   * Keeps `reply` for `playlist` of the token's stream, unless an invalidation of that stream
   * or a wholesale drop came after the token was taken, or the cache is not live.
   * @returns whether it was kept
   */
  put(token: PlaylistCacheToken, playlist: string, reply: CachedPlaylist): boolean {
    if (!this.live || token.epoch !== this.#epoch) return false;
    const m = token.manifestID;
    const last = this.#invalidatedAt.get(m);
    if (last !== undefined && last > token.seq) return false;
    const key = m + SEP + playlist;
    this.#entries.delete(key);
    this.#entries.set(key, { body: reply.body, cacheControl: reply.cacheControl, atMs: token.atMs });
    let set = this.#byStream.get(m);
    if (set === undefined) this.#byStream.set(m, set = new Set());
    set.add(playlist);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value!;
      this.#forget(oldest);
    }
    return true;
  }

  /** Drops every reply of `manifestID` and refuses replies read before now. */
  invalidate(manifestID: string): void {
    this.#seq += 1;
    this.#invalidatedAt.set(manifestID, this.#seq);
    // One mark per stream seen; past the bound (streams come and go), a wholesale drop
    // (a new epoch refuses every token in flight) replaces the marks.
    if (this.#invalidatedAt.size > this.#maxEntries * 4) {
      this.clear();
      return;
    }
    const set = this.#byStream.get(manifestID);
    if (set === undefined) return;
    for (const playlist of set) this.#entries.delete(manifestID + SEP + playlist);
    this.#byStream.delete(manifestID);
  }

  /** Drops everything and refuses every reply whose read began before now. */
  clear(): void {
    this.#epoch += 1;
    this.#entries.clear();
    this.#byStream.clear();
    this.#invalidatedAt.clear();
  }

  /**
   * Whether the change subscription is in place. `false` drops everything and stops serving
   * and keeping replies; `true` (once subscribed again) starts afresh.
   */
  setLive(live: boolean): void {
    if (!live || !this.#live) this.clear();
    this.#live = live;
  }

  #forget(key: string): void {
    this.#entries.delete(key);
    const at = key.indexOf(SEP);
    const m = key.slice(0, at);
    const set = this.#byStream.get(m);
    if (set === undefined) return;
    set.delete(key.slice(at + 1));
    if (set.size === 0) this.#byStream.delete(m);
  }
}
