/**
 * The recording and retention sweep, run by every gateway on a timer (one at a time: a Redis
 * lock per run, recording-store.ts `tryLock`). Each run:
 *
 * 1. For every open session (recording-store.ts), reads where the segment index is:
 *    - a **recorded** session that is over (ended, every rendition resolved, or replaced by a
 *      newer session of its manifest ID, or gone from the index) is finalized: its VOD
 *      playlists and master are written to the object store under `<manifestID>/<session>/`
 *      (vod-playlists.ts), it becomes ready and `recording.ready` is emitted. Whichever gateway
 *      sweeps first does it, so a recording is finished even when the gateway that held the
 *      stream died (the index's heartbeat sweep ends such a stream, then it is over here);
 *    - a **non-recorded** session has every segment that left the live window, plus
 *      `marginSegments`, deleted in every rendition and its thumbnail (a player that fetched the playlist just
 *      before keeps a window's worth of time to download); once over for `endedKeepMs`, the
 *      rest of its objects are deleted and it is forgotten. A one-hour stream so keeps about
 *      window + margin segments per rendition in the store, not its hour.
 * 2. Deletes ready recordings past their `recording.deleteAfterS`.
 * 3. Deletes AI results older than `ai.resultTtlS`, at most every half TTL or minute, whichever
 *    is shorter, and not more often than the sweep: those the results' expiry index
 *    ({@link SweptResultIndex}) names as stored before the TTL, so a run costs what expires,
 *    not what is kept. The results store is listed in full (every result kept is read) at
 *    most every half TTL, for results the index does not hold: stored before it existed,
 *    whose index write failed, or lost with a Redis that restarted without persistence (its
 *    lock went too, so that listing comes at the next run). Without an index, every run lists.
 *
 * Every step is idempotent (deleting a missing object is fine, finalizing re-checks the state
 * after taking its lock), so an interrupted run is completed by the next one, on any gateway.
 */
import type { Logger } from '../log/logger.ts';
import { SOURCE_RENDITION, segmentKey, sessionPrefix, thumbnailKey } from '../domain/segment.ts';
import type { KeptSession, RecordingStore } from './recording-store.ts';
import { renderVodPlaylists } from './vod-playlists.ts';

/** What the sweep reads of the segment index (hls/ segment index store). */
export interface SweptIndex {
  getStream(manifestID: string): Promise<{
    readonly session: string; readonly state: 'live' | 'ended'; readonly startedAtMs: number; readonly endedAtMs?: number;
    readonly firstSeq: number; readonly renditions: readonly { readonly name: string }[];
  } | undefined>;
  /** `frontier`: the next seq the rendition's playlist will list (every lower one is listed or skipped). */
  renditionStats(manifestID: string, rendition: string): Promise<{ readonly frontier: number }>;
  /** Ended and every seq resolved in every rendition (true as well when a newer session replaced it). */
  sessionComplete(manifestID: string, session: string): Promise<boolean>;
}

/** What the sweep needs of the object store holding segments and recordings. */
export interface SweptObjects {
  putBytes(key: string, data: Uint8Array): Promise<unknown>;
  /** Deletes these keys; missing ones are fine. */
  deleteKeys(keys: readonly string[]): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
}

/** What the sweep needs of the AI results store. */
export interface SweptResults {
  list(prefix: string, options?: { cursor?: string; limit?: number }): Promise<{
    readonly objects: readonly { readonly key: string; readonly lastModifiedMs: number }[]; readonly cursor?: string;
  }>;
  deleteKeys(keys: readonly string[]): Promise<void>;
}

/**
 * The AI results' expiry index (ai/result-index-store.ts): result keys by when they were stored.
 */
export interface SweptResultIndex {
  /** Result keys stored at or before `atMs` (epoch ms), oldest first, at most `limit`. */
  storedBy(atMs: number, limit: number): Promise<readonly string[]>;
  /** Forgets these keys; unknown ones are fine. */
  remove(keys: readonly string[]): Promise<void>;
}

/** `recording.ready` (events/events.ts), emitted once per recording. */
export interface RecordingReadyEvent {
  type: 'recording.ready';
  manifestID: string;
  session: string;
  durationMs: number;
  /** The recording's master playlist. */
  hlsUrl: string;
  /** An MP4 per rendition (remuxed when fetched). */
  mp4Urls: Record<string, string>;
}

export interface RecordingSweeperOptions {
  store: Pick<RecordingStore, 'openSessions' | 'get' | 'keptSegments' | 'markReady' | 'markGone' | 'setDeletedBelow' | 'forget' | 'expired' | 'tryLock'>;
  index: SweptIndex;
  objects: SweptObjects;
  /** AI results; absent: not swept. */
  results?: SweptResults;
  /**
   * Where the AI routes note each result they store; absent: every results run lists the
   * whole results store (as before the index).
   */
  resultIndex?: SweptResultIndex;
  events: { emit(event: RecordingReadyEvent): void };
  logger: Logger;
  /** Base of the URLs in `recording.ready`, e.g. `http://127.0.0.1:9935`. */
  publicUrl: string;
  /** Period of the sweep, ms (`retention.sweepIntervalMs`). */
  sweepIntervalMs: number;
  /** Segments in the live window (`hls.windowSegments`). */
  windowSegments: number;
  /** Segments kept past the window (`retention.marginSegments`). */
  marginSegments: number;
  /** How long a non-recorded session's last objects stay after it ended, ms (`retention.endedKeepS`). */
  endedKeepMs: number;
  /** How long a recording is kept after it ended, ms; 0 = forever (`recording.deleteAfterS`). */
  recordingKeepMs: number;
  /** How long an AI result is kept, ms; 0 = forever (`ai.resultTtlS`). */
  resultTtlMs: number;
  /** Segment target, ms: the floor of a VOD playlist's EXT-X-TARGETDURATION. */
  segmentTargetMs: number;
}

/** Recordings deleted and result pages read per run; the rest waits for the next run. */
const BATCH = 200;
/** Open sessions (live streams and those not yet finished) looked at per run. */
const OPEN_BATCH = 5000;
/** Longest gap between two AI result expiry runs, ms. */
const MAX_RESULT_SWEEP_PERIOD_MS = 60_000;
/** Result keys read from the expiry index, deleted and forgotten at a time (one store delete batch). */
const RESULT_INDEX_BATCH = 1000;
/** Most seqs deleted per session per run (a backlog after downtime is worked off over several runs). */
const MAX_SEQS_PER_RUN = 500;
/** A session not yet in the index this long after its start is taken as gone (its start failed). */
const START_GRACE_MS = 60_000;

/** How a session stands in the segment index. */
type Standing =
  | { readonly kind: 'live'; readonly renditions: readonly string[]; readonly firstSeq: number }
  | { readonly kind: 'over'; readonly endedAtMs: number; readonly renditions: readonly string[]; readonly firstSeq?: number }
  | { readonly kind: 'unknown' };

export class RecordingSweeper {
  readonly #o: RecordingSweeperOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: RecordingSweeperOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** Starts the timer (unref'd). Idempotent. */
  start(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running || this.#closed) return;
      this.#running = this.sweep().finally(() => { this.#running = undefined; });
    }, this.#o.sweepIntervalMs);
    this.#timer.unref();
  }

  /**
   * One run, if this gateway takes the run's lock (for one sweep period). Never throws: a
   * failure is logged and the next run carries on.
   * @param options.force run even when another gateway holds the lock (tests)
   */
  async sweep(options: { force?: boolean } = {}): Promise<void> {
    try {
      if (!options.force && !(await this.#o.store.tryLock('sweep', Math.max(this.#o.sweepIntervalMs - 50, 50)))) return;
      const nowMs = Date.now();
      for (const { manifestID, session } of await this.#o.store.openSessions(OPEN_BATCH)) {
        if (this.#closed) return;
        await this.#sweepSession(manifestID, session, nowMs).catch((err: Error) => {
          this.#log.warn({ manifestID, session, err: err.message }, 'retention sweep of a session failed');
        });
      }
      for (const { manifestID, session } of await this.#o.store.expired(nowMs, BATCH)) {
        await this.#delete(manifestID, session, 'recording.deleteAfterS passed');
      }
      await this.#expireResults(nowMs);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'recording sweep failed');
    }
  }

  async #standing(kept: KeptSession, nowMs: number): Promise<Standing> {
    const { manifestID, session } = kept;
    const stream = await this.#o.index.getStream(manifestID);
    if (stream?.session === session) {
      const renditions = [SOURCE_RENDITION, ...stream.renditions.map((r) => r.name)];
      if (stream.state === 'live' || !(await this.#o.index.sessionComplete(manifestID, session))) {
        return { kind: 'live', renditions, firstSeq: stream.firstSeq };
      }
      return { kind: 'over', endedAtMs: stream.endedAtMs ?? nowMs, renditions, firstSeq: stream.firstSeq };
    }
    const replaced = stream !== undefined && stream.startedAtMs >= kept.startedAtMs;
    if (!replaced && nowMs - kept.startedAtMs < START_GRACE_MS) return { kind: 'unknown' };
    return { kind: 'over', endedAtMs: await this.#o.store.markGone(manifestID, session, nowMs), renditions: [SOURCE_RENDITION] };
  }

  async #sweepSession(manifestID: string, session: string, nowMs: number): Promise<void> {
    const kept = await this.#o.store.get(manifestID, session);
    if (!kept) {
      await this.#o.store.forget(manifestID, session);
      return;
    }
    if (kept.state !== 'open') return;
    const standing = await this.#standing(kept, nowMs);
    if (standing.kind === 'unknown') return;
    if (kept.record) {
      if (standing.kind === 'over') await this.#finalize(kept, standing.renditions, standing.endedAtMs);
      return;
    }
    if (standing.kind === 'live' || standing.firstSeq !== undefined) await this.#trim(kept, standing.renditions, standing.firstSeq ?? 0);
    if (standing.kind === 'over' && nowMs - standing.endedAtMs >= this.#o.endedKeepMs) {
      await this.#delete(manifestID, session, 'ended, not recorded');
    }
  }

  /** Deletes, in every rendition, the seqs that left the live window plus the margin. */
  async #trim(kept: KeptSession, renditions: readonly string[], firstSeq: number): Promise<void> {
    const { manifestID, session } = kept;
    const frontiers = await Promise.all(renditions.map(async (r) => (await this.#o.index.renditionStats(manifestID, r)).frontier));
    const below = Math.min(...frontiers) - this.#o.windowSegments - this.#o.marginSegments;
    const from = Math.max(kept.deletedBelow, firstSeq);
    if (below <= from) return;
    const to = Math.min(below, from + MAX_SEQS_PER_RUN);
    const keys: string[] = [];
    for (let seq = from; seq < to; seq++) {
      for (const r of renditions) keys.push(segmentKey(manifestID, session, r, seq));
      // Its thumbnail, if one was asked for (media/thumbnail.ts; absent keys are fine).
      keys.push(thumbnailKey(manifestID, session, seq));
    }
    await this.#o.objects.deleteKeys(keys);
    await this.#o.store.setDeletedBelow(manifestID, session, to);
    this.#log.debug({ manifestID, session, from, to, objects: keys.length }, 'segments past the live window deleted');
  }

  /** Writes a recorded session's VOD playlists and master, marks it ready and tells of it. */
  async #finalize(kept: KeptSession, order: readonly string[], endedAtMs: number): Promise<void> {
    const { manifestID, session } = kept;
    if (!(await this.#o.store.tryLock(`fin:${manifestID}:${session}`, 60_000))) return;
    // Another gateway may have finished it between the listing and the lock.
    if ((await this.#o.store.get(manifestID, session))?.state !== 'open') return;
    const playlists = renderVodPlaylists(order, await this.#o.store.keptSegments(manifestID, session), Math.ceil(this.#o.segmentTargetMs / 1000));
    if (!playlists) {
      this.#log.warn({ manifestID, session }, 'recorded session ended with no segment: nothing to keep');
      await this.#delete(manifestID, session, 'no segment recorded');
      return;
    }
    const prefix = sessionPrefix(manifestID, session);
    // Media playlists first, the master last: a master that exists is complete.
    for (const [name, text] of [...playlists.files].sort(([a], [b]) => (a === 'index.m3u8' ? 1 : b === 'index.m3u8' ? -1 : 0))) {
      await this.#o.objects.putBytes(`${prefix}${name}`, Buffer.from(text, 'utf8'));
    }
    const deleteAtMs = this.#o.recordingKeepMs > 0 ? endedAtMs + this.#o.recordingKeepMs : undefined;
    await this.#o.store.markReady(manifestID, session, {
      endedAtMs, durationMs: playlists.durationMs, renditions: playlists.renditions, ...(deleteAtMs !== undefined ? { deleteAtMs } : {}),
    });
    const base = `${this.#o.publicUrl}/recordings/${manifestID}/${session}`;
    this.#o.events.emit({
      type: 'recording.ready', manifestID, session, durationMs: playlists.durationMs, hlsUrl: `${base}/index.m3u8`,
      mp4Urls: Object.fromEntries(playlists.renditions.map((r) => [r.name, `${base}/${r.name}.mp4`])),
    });
    this.#log.info({ manifestID, session, durationMs: playlists.durationMs, renditions: playlists.renditions.map((r) => `${r.name}:${r.segments}`) }, 'recording ready');
  }

  async #delete(manifestID: string, session: string, reason: string): Promise<void> {
    try {
      await this.#o.objects.deletePrefix(sessionPrefix(manifestID, session));
      await this.#o.store.forget(manifestID, session);
      this.#log.info({ manifestID, session, reason }, 'session objects deleted');
    } catch (err) {
      this.#log.warn({ manifestID, session, err: (err as Error).message }, 'cannot delete session objects yet');
    }
  }

  /**
   * Deletes AI results older than the TTL: those the expiry index names (at most
   * {@link BATCH} batches of {@link RESULT_INDEX_BATCH} a run) and, when the index is absent
   * or at most every half TTL, those a full listing finds.
   */
  async #expireResults(nowMs: number): Promise<void> {
    const results = this.#o.results;
    const ttlMs = this.#o.resultTtlMs;
    if (!results || ttlMs <= 0) return;
    // Half the TTL apart at most (a result outlives its TTL by at most half of it), at most a minute, one gateway per period.
    const periodMs = Math.min(Math.max(Math.floor(ttlMs / 2), this.#o.sweepIntervalMs), MAX_RESULT_SWEEP_PERIOD_MS);
    if (!(await this.#o.store.tryLock('ai-results', Math.max(periodMs - 50, 50)))) return;
    const index = this.#o.resultIndex;
    let deleted = 0;
    if (index) deleted += await this.#expireIndexed(results, index, nowMs - ttlMs);
    // The full listing, for results the index does not hold: half the TTL apart at most, so
    // such a result too outlives its TTL by at most half of it.
    const listingPeriodMs = Math.max(Math.floor(ttlMs / 2), periodMs);
    if (!index || await this.#o.store.tryLock('ai-results-listing', Math.max(listingPeriodMs - 50, 50))) {
      deleted += await this.#expireListed(results, nowMs);
    }
    if (deleted > 0) this.#log.info({ objects: deleted }, 'AI results past ai.resultTtlS deleted');
  }

  /**
   * Deletes the results the index names as stored at or before `storedByMs`, then forgets
   * them: a crash in between leaves members whose next delete finds nothing, and gateways
   * doing this at once delete some objects twice, which is fine.
   * @returns how many keys were deleted (missing objects included)
   */
  async #expireIndexed(results: SweptResults, index: SweptResultIndex, storedByMs: number): Promise<number> {
    let deleted = 0;
    for (let batch = 0; batch < BATCH; batch++) {
      const keys = await index.storedBy(storedByMs, RESULT_INDEX_BATCH);
      if (keys.length === 0) break;
      await results.deleteKeys(keys);
      await index.remove(keys);
      deleted += keys.length;
      if (keys.length < RESULT_INDEX_BATCH) break;
    }
    return deleted;
  }

  /** Lists the results store and deletes what is older than the TTL, page by page (at most {@link BATCH} pages). */
  async #expireListed(results: SweptResults, nowMs: number): Promise<number> {
    let cursor: string | undefined;
    let deleted = 0;
    for (let page = 0; page < BATCH; page++) {
      const listed = await results.list('', cursor === undefined ? {} : { cursor });
      const old = listed.objects.filter((o) => nowMs - o.lastModifiedMs >= this.#o.resultTtlMs).map((o) => o.key);
      if (old.length > 0) await results.deleteKeys(old);
      deleted += old.length;
      cursor = listed.cursor;
      if (cursor === undefined) break;
    }
    return deleted;
  }

  /** Stops the timer and waits for a run in flight. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
