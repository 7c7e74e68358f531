/**
 * Live transcoding sessions on a transcoder (docs/architecture.md, "Live transcoding
 * sessions"): claims sessions while it has free slots, feeds each owned session's source
 * chunks from its Redis feed (live-feed-store.ts) into one long-running ladder (the
 * `LiveLadder` of live-ladder.ts, behind the `StartLadder` port), stores every rendition
 * segment it emits under `segmentKey(...)`, and records each seq through the same
 * `TranscodeResults` a per-segment job goes through, so listing, charging (once per
 * (manifestID, session, seq)), metrics and `segment.transcoded` events do not change.
 *
 * Placement: a transcoder claims only while its live sessions plus its running per-segment
 * jobs are below its slots (`transcode.concurrency`), and waits `used × claimStepMs` before a
 * claim, so the least loaded transcoder that sees a session first usually wins it. The lease
 * (live-session-store.ts) lives `leaseMs` (one segment target, at least 1 s) and is renewed
 * every third of it; a transcoder that loses it stops its ladder at once.
 *
 * Takeover: a claim of a session another transcoder owned before resumes at the session's
 * progress (`next`, the first seq not yet recorded). Seqs no longer in the feed are recorded
 * as failed like a failed job (hold released, renditions skipped: the index then lists the
 * next segment after EXT-X-DISCONTINUITY); the first seq the new ladder makes is listed with
 * EXT-X-DISCONTINUITY in every rendition. Sequence numbers never have a hole, and a seq is
 * settled once whichever transcoder records it (the ledger's hold is keyed by segment).
 */
import type { WatermarkSpec } from '../domain/watermark.ts';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log/logger.ts';
import type { VideoProfile } from '../domain/profile.ts';
import { segmentKey, type RenditionSegment, type SourceSegmentInfo, type TranscodeResult } from '../domain/segment.ts';
import type { ErrorCode } from '../errors/gateway-error.ts';
import type { FeedChunk, FeedEntry, FeedSettled } from './live-feed-store.ts';
import type { ClaimedLiveSession, LiveSessionClaim, TranscoderSlots } from './live-session-store.ts';
import type { FailedForGoodCause, QueuedTranscodeJob } from './transcode-queue.ts';

/** One rendition segment a live ladder emitted. */
export interface LadderSegment {
  readonly seq: number;
  readonly rendition: string;
  /** The whole rendition segment (MPEG-TS). */
  readonly bytes: Buffer;
  /** Its duration, ms (the source segment's). */
  readonly durationMs: number;
  /** Measured in process: picture size, video frames, RFC 6381 codecs, frames per second. */
  readonly measured: { readonly width: number; readonly height: number; readonly frames: number; readonly codecs: string; readonly frameRate: number };
}

/** A running live ladder (live-ladder.ts `LiveLadder` fits, through the composition root's adapter). */
export interface LiveLadderHandle {
  /** Feeds source chunks, in feed order, starting with the first chunk of a seq. */
  write(chunk: FeedChunk): void;
  /** No more input: the ladder emits what is left and then `complete` of the last seq; a promise it returns may reject (handled here). */
  end(): unknown;
  on(event: 'segment', listener: (segment: LadderSegment) => void): unknown;
  on(event: 'complete', listener: (done: { seq: number }) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** Stops the ladder at once (lease lost, shutdown) without emitting more; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a ladder for a session: its profiles fitted to `source` (with `fitToSource`, as
 * domain/ladder-fit.ts `fitLadderToSource` does with `source.bitrateBps`), with the session's watermark
 * (its image fetched from the object store first, hence the promise); undefined when no rendition
 * fits (every one would upscale, or is left out): the session then only follows the gateway's settlements.
 */
export type StartLadder = (session: {
  manifestID: string; session: string; profiles: readonly VideoProfile[]; fitToSource?: boolean; source: SourceSegmentInfo; logger: Logger; watermark?: WatermarkSpec;
}) => LiveLadderHandle | undefined | Promise<LiveLadderHandle | undefined>;

/** The session store as the runner uses it (live-session-store.ts `RedisLiveSessions`). */
export interface RunnerSessions {
  unowned(limit?: number): Promise<{ manifestID: string; session: string }[]>;
  /** The newest open session's `openedAtMs` (one command); without it new sessions wait for the next scan. */
  newestOpenedAtMs?(): Promise<number | undefined>;
  claim(manifestID: string, session: string, owner: string, leaseMs: number): Promise<LiveSessionClaim>;
  renew(manifestID: string, session: string, owner: string, leaseMs: number): Promise<{ held: boolean; endSeq?: number }>;
  source(manifestID: string, session: string): Promise<SourceSegmentInfo | undefined>;
  progress(manifestID: string, session: string, owner: string, nextSeq: number): Promise<boolean>;
  release(manifestID: string, session: string, owner: string): Promise<boolean>;
  finish(manifestID: string, session: string, owner: string): Promise<boolean>;
  advertise(slots: TranscoderSlots, ttlMs: number): Promise<void>;
  withdraw(id: string): Promise<void>;
}

/** The feed reader as the runner uses it (live-feed-store.ts `LiveFeedReader`). */
export interface RunnerFeed {
  follow(manifestID: string, session: string, fromSeq: number, onEntry: (entry: FeedEntry) => void): { stop(): void };
  firstSeqHeld(manifestID: string, session: string): Promise<number | undefined>;
  /** Drops the feed's seqs below `seq` (recorded). */
  trimBefore(manifestID: string, session: string, seq: number): Promise<void>;
}

/** Where a seq's outcome goes (transcode-results.ts `TranscodeResults`). */
export interface RunnerResults {
  completed(job: QueuedTranscodeJob, result: TranscodeResult, options?: { discontinuity?: boolean }): Promise<void>;
  failedForGood(job: QueuedTranscodeJob, reason: string, code: ErrorCode, cause: FailedForGoodCause): Promise<void>;
}

/** Rendition uploads (segment-transcoder.ts `SegmentStorage` with `putBytes`, through the store retry). */
export interface RunnerStorage {
  putBytes(key: string, data: Uint8Array): Promise<{ readonly sizeBytes: number }>;
}

/** Retries of object-store operations across an outage (storage/store-retry.ts `StoreRetry`). */
export interface RunnerStorageRetry {
  deadline(): number;
  run<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T>;
}

export interface LiveSessionRunnerOptions {
  sessions: RunnerSessions;
  feed: RunnerFeed;
  results: RunnerResults;
  storage: RunnerStorage;
  storageRetry?: RunnerStorageRetry;
  startLadder: StartLadder;
  logger: Logger;
  /** Slots of this transcoder (`transcode.concurrency`), shared by live sessions and per-segment jobs. */
  slots: number;
  /** Per-segment jobs running now (the transcode worker's), counted against the slots. */
  jobsInFlight: () => number;
  /** Told whenever the number of owned sessions changes (the worker's concurrency follows it). */
  onSessionsChanged?: (owned: number) => void;
  /** Source segment target, ms: sets the lease (one target, at least 1 s). */
  segmentTargetMs: number;
  /** How long a session may wait for the gateway's source measurement, or see neither a feed entry nor a segment from its ladder, before it is given up, ms; default max(30 s, 15 × target). */
  idleMs?: number;
  /** This transcoder's ID in leases and its advertisement; default `<host>:<pid>:<random>`. */
  id?: string;
}

/** Reason recorded for seqs a takeover found gone from the feed. */
export const FEED_GONE_REASON = 'the transcoder of this live stream stopped and the segment is no longer in the live feed';

/**
 * How often a transcoder with a free slot checks for a newly opened session between its scans,
 * ms (one ZRANGE of the newest member): a session opened at publish is claimed within ~0.1 s
 * instead of up to half a lease (1 s) later, so its ladder does not start with a backlog to
 * catch up (the first rendition segment waited on it).
 */
export const NEW_SESSION_POLL_MS = 200;

/**
 * How often a claimed session asks for the gateway's source measurement until it has it, ms
 * (one HGET). A session woken at its open (live-session-bus.ts) is claimed before the gateway's
 * segmenter has seen the stream's first frames; the ladder cannot start before they are
 * measured, and every poll interval would be added to its start.
 */
export const SOURCE_POLL_MS = 20;

/** The lease of a live session, ms: one segment target, at least 1 s (takeover within about two segment durations). */
export function liveLeaseMsFor(segmentTargetMs: number): number {
  return Math.max(1000, segmentTargetMs);
}

export class LiveSessionRunner {
  readonly #o: LiveSessionRunnerOptions;
  readonly #id: string;
  readonly #leaseMs: number;
  readonly #owned = new Map<string, OwnedSession>();
  #timer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  /** The newest open session's `openedAtMs` seen by the poll. */
  #newestSeen: number | undefined;
  #polling = false;
  #scanning = false;
  /** A wake came while a scan ran: scan again when it ends. */
  #rescan = false;
  #closed = false;

  constructor(options: LiveSessionRunnerOptions) {
    this.#o = options;
    this.#id = options.id ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#leaseMs = liveLeaseMsFor(options.segmentTargetMs);
  }

  /** This transcoder's ID in leases. */
  get id(): string { return this.#id; }

  /** Live sessions owned now. */
  get owned(): number { return this.#owned.size; }

  /**
   * Starts scanning for sessions to claim, every half lease, at once on {@link wake} (a session
   * opened: live-session-bus.ts), and when the poll sees a new one ({@link NEW_SESSION_POLL_MS};
   * the fallback when a wake is lost).
   */
  start(): void {
    if (this.#timer || this.#closed) return;
    const tick = (): void => { void this.#scan(); };
    this.#timer = setInterval(tick, Math.max(100, Math.round(this.#leaseMs / 2)));
    if (this.#o.sessions.newestOpenedAtMs) this.#pollTimer = setInterval(() => { void this.#poll(); }, NEW_SESSION_POLL_MS);
    tick();
  }

  /**
   * A session was opened somewhere (live-session-bus.ts): scans at once when a slot is free, or
   * right after the scan running now, instead of at the next poll.
   */
  wake(): void {
    if (this.#closed || this.#used() >= this.#o.slots) return;
    if (this.#scanning) {
      this.#rescan = true;
      return;
    }
    void this.#scan();
  }

  /** Scans at once when a session newer than any seen was opened (and a slot is free). */
  async #poll(): Promise<void> {
    if (this.#polling || this.#scanning || this.#closed || this.#used() >= this.#o.slots) return;
    this.#polling = true;
    try {
      const newest = await this.#o.sessions.newestOpenedAtMs!();
      if (newest === undefined || (this.#newestSeen !== undefined && newest <= this.#newestSeen)) return;
      this.#newestSeen = newest;
      await this.#scan();
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'live session poll failed');
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Stops claiming, stops every owned ladder and releases its lease so another transcoder
   * takes the session over at once (with a discontinuity); idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearInterval(this.#pollTimer);
    await Promise.all([...this.#owned.values()].map((s) => s.stop('transcoder shutting down', true)));
    await this.#o.sessions.withdraw(this.#id).catch(() => undefined);
  }

  #used(): number {
    return this.#owned.size + this.#o.jobsInFlight();
  }

  async #scan(): Promise<void> {
    if (this.#scanning || this.#closed) return;
    this.#scanning = true;
    const log = this.#o.logger;
    try {
      await this.#o.sessions.advertise({ id: this.#id, slots: this.#o.slots, used: this.#used() }, this.#leaseMs * 2);
      if (this.#used() >= this.#o.slots) return;
      const free = await this.#o.sessions.unowned();
      for (const s of free) {
        if (this.#closed || this.#used() >= this.#o.slots) break;
        // The least loaded claims first: wait a quarter lease per slot in use.
        const delayMs = Math.round((this.#used() * this.#leaseMs) / 4);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        if (this.#closed || this.#used() >= this.#o.slots) break;
        const claim = await this.#o.sessions.claim(s.manifestID, s.session, this.#id, this.#leaseMs);
        if (claim.claim !== 'ok') continue;
        this.#adopt(claim.session);
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'live session scan failed');
    } finally {
      this.#scanning = false;
      if (this.#rescan) {
        this.#rescan = false;
        this.wake();
      }
    }
  }

  #adopt(claimed: ClaimedLiveSession): void {
    const { manifestID, session } = claimed.record;
    const key = `${manifestID}:${session}`;
    const owned = new OwnedSession(this.#o, this.#id, this.#leaseMs, claimed, () => {
      this.#owned.delete(key);
      this.#o.onSessionsChanged?.(this.#owned.size);
    });
    this.#owned.set(key, owned);
    this.#o.onSessionsChanged?.(this.#owned.size);
    owned.run();
  }
}

/** What the runner holds of one seq until it is recorded. */
interface SeqState {
  /** Rendition segments stored so far. */
  stored: Promise<RenditionSegment>[];
  complete: boolean;
  settled?: FeedSettled;
  /** performance.now() when its first chunk went into the ladder. */
  startedAt?: number;
}

/**
 * When a session's steps happened, epoch ms (logged with `live session stopped`; bench/throughput.ts
 * reads it): the gateway's open, this claim, the ladder's spawn, the first source chunk into it,
 * its first rendition segment, the feed's end entry, the ladder's exit after it drained, the
 * last seq recorded.
 */
interface SessionTimeline {
  openedAtMs: number;
  claimedAtMs: number;
  /** The gateway's source measurement known here (the ladder is fitted to it). */
  sourceAtMs?: number;
  ladderSpawnedAtMs?: number;
  firstChunkAtMs?: number;
  firstSegmentAtMs?: number;
  feedEndAtMs?: number;
  ladderExitedAtMs?: number;
  lastRecordedAtMs?: number;
}

/** One session this transcoder owns: its lease, feed, ladder and results. */
class OwnedSession {
  readonly #o: LiveSessionRunnerOptions;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #claimed: ClaimedLiveSession;
  readonly #onGone: () => void;
  readonly #log: Logger;
  readonly #seqs = new Map<number, SeqState>();
  #ladder: LiveLadderHandle | undefined;
  #follow: { stop(): void } | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** The next seq to record. */
  #next: number;
  /** The first seq the ladder was fed; chunks before it are ignored. */
  #feedFrom = 0;
  #started = false;
  /** The seq whose chunks the ladder is fed now. */
  #fedSeq = -1;
  /** Set by the feed's end entry: the last seq appended (−1: none). */
  #lastSeq: number | undefined;
  #discontinuity: boolean;
  /** No rendition fits the source: nothing is made, seqs are only settled. */
  #noLadder = false;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #timeline: SessionTimeline;

  constructor(o: LiveSessionRunnerOptions, owner: string, leaseMs: number, claimed: ClaimedLiveSession, onGone: () => void) {
    this.#o = o;
    this.#owner = owner;
    this.#leaseMs = leaseMs;
    this.#claimed = claimed;
    this.#onGone = onGone;
    this.#next = claimed.nextSeq;
    this.#discontinuity = claimed.takeover;
    this.#timeline = { openedAtMs: claimed.record.openedAtMs, claimedAtMs: Date.now() };
    const { manifestID, session } = claimed.record;
    this.#log = o.logger.child({ manifestID, session });
  }

  get #m(): string { return this.#claimed.record.manifestID; }
  get #s(): string { return this.#claimed.record.session; }

  run(): void {
    this.#renewTimer = setInterval(() => { void this.#renew(); }, Math.max(100, Math.round(this.#leaseMs / 3)));
    this.#touch();
    this.#log.info({ nextSeq: this.#next, takeover: this.#claimed.takeover }, 'live session claimed');
    this.#start().catch((err: Error) => {
      this.#log.error({ err: err.message }, 'live session cannot start; released');
      void this.stop('start failed', true);
    });
  }

  async #start(): Promise<void> {
    let source = this.#claimed.source;
    while (!source && !this.#stopped) {
      await new Promise((r) => setTimeout(r, SOURCE_POLL_MS));
      source = await this.#o.sessions.source(this.#m, this.#s);
    }
    if (this.#stopped || !source) return;
    this.#timeline.sourceAtMs = Date.now();
    // Seqs the feed no longer holds were lost with the previous owner: failed like a job.
    const held = await this.#o.feed.firstSeqHeld(this.#m, this.#s);
    if (held !== undefined && held > this.#next) await this.#failGone(held);
    if (this.#stopped) return;
    this.#feedFrom = this.#next;
    const { profiles, fitToSource, watermark } = this.#claimed.record;
    const ladder = await this.#o.startLadder({
      manifestID: this.#m, session: this.#s, profiles, ...(fitToSource ? { fitToSource } : {}), source, logger: this.#log, ...(watermark !== undefined ? { watermark } : {}),
    });
    if (this.#stopped) {
      await ladder?.close();
      return;
    }
    this.#ladder = ladder;
    this.#noLadder = ladder === undefined;
    this.#timeline.ladderSpawnedAtMs = Date.now();
    ladder?.on('segment', (s) => this.#onSegment(s));
    ladder?.on('complete', ({ seq }) => { this.#seq(seq).complete = true; this.#advance(); });
    ladder?.on('error', (err) => {
      this.#log.error({ err: err.message }, 'live ladder failed; session released for another try');
      void this.stop('ladder failed', true);
    });
    this.#follow = this.#o.feed.follow(this.#m, this.#s, this.#feedFrom, (entry) => this.#onEntry(entry));
  }

  #seq(seq: number): SeqState {
    let state = this.#seqs.get(seq);
    if (!state) {
      state = { stored: [], complete: false };
      this.#seqs.set(seq, state);
    }
    return state;
  }

  #onEntry(entry: FeedEntry): void {
    if (this.#stopped) return;
    this.#touch();
    switch (entry.type) {
      case 'chunk': {
        const { chunk } = entry;
        if (chunk.seq < this.#feedFrom) return;
        if (!this.#started) {
          // A ladder starts at a seq's first chunk (PAT/PMT and a keyframe).
          if (!chunk.first) return;
          this.#started = true;
          if (chunk.seq > this.#next) {
            const upTo = chunk.seq;
            this.#chain = this.#chain.then(() => this.#failGone(upTo));
          }
        } else if (chunk.seq !== this.#fedSeq && !(chunk.first && chunk.seq === this.#fedSeq + 1)) {
          // Entries this session had not read are gone (the writer's byte cap, live-feed-store.ts):
          // the ladder cannot go on across the gap; a takeover fails the lost seqs and resumes.
          this.#log.error({ fedSeq: this.#fedSeq, seq: chunk.seq, first: chunk.first }, 'live feed lost seqs this transcoder had not read; session handed over');
          void this.stop('feed gap', true);
          return;
        }
        this.#fedSeq = chunk.seq;
        this.#timeline.firstChunkAtMs ??= Date.now();
        if (chunk.first) this.#seq(chunk.seq).startedAt = performance.now();
        this.#ladder?.write(chunk);
        return;
      }
      case 'settled':
        if (entry.settled.seq < this.#next) return;
        this.#seq(entry.settled.seq).settled = entry.settled;
        this.#advance();
        return;
      case 'end':
        this.#lastSeq = entry.lastSeq;
        this.#timeline.feedEndAtMs ??= Date.now();
        // A ladder's end may reject (its ffmpeg failed or was stopped meanwhile): its `error` event reports that.
        void Promise.resolve(this.#ladder?.end()).then(() => { this.#timeline.ladderExitedAtMs = Date.now(); }, () => undefined);
        this.#advance();
        return;
    }
  }

  #onSegment(s: LadderSegment): void {
    if (this.#stopped) return;
    // Ladder output is activity too: a ladder running behind real time still works through the feed after its end entry.
    this.#touch();
    if (s.seq < this.#next) return;
    this.#timeline.firstSegmentAtMs ??= Date.now();
    const key = segmentKey(this.#m, this.#s, s.rendition, s.seq);
    const retry = this.#o.storageRetry;
    const put = (): Promise<{ readonly sizeBytes: number }> => this.#o.storage.putBytes(key, s.bytes);
    const stored = (retry ? retry.run('store rendition segment', put, retry.deadline()) : put()).then((): RenditionSegment => ({
      rendition: s.rendition, key, width: s.measured.width, height: s.measured.height, frames: s.measured.frames, bytes: s.bytes.length,
      durationMs: s.durationMs, codecs: s.measured.codecs, frameRate: s.measured.frameRate,
    }));
    stored.catch(() => undefined);
    this.#seq(s.seq).stored.push(stored);
  }

  /** Records, in seq order, every seq whose ladder output and gateway settlement are both known. */
  #advance(): void {
    this.#chain = this.#chain.then(async () => {
      while (!this.#stopped) {
        const state = this.#seqs.get(this.#next);
        const settled = state?.settled;
        if (!state || !settled || (settled.transcode && !state.complete && !this.#noLadder)) break;
        await this.#record(this.#next, state, settled);
        this.#timeline.lastRecordedAtMs = Date.now();
        this.#seqs.delete(this.#next);
        this.#next += 1;
        // Progress only moves forward: one not stored in an outage is stored with the next seq's.
        const next = this.#next;
        const held = await this.#o.sessions.progress(this.#m, this.#s, this.#owner, next).then((h) => (h ? 'stored' : 'lost'), (err: Error) => {
          this.#log.warn({ err: err.message, nextSeq: next }, 'cannot store live session progress yet');
          return 'unknown';
        });
        if (held === 'lost') {
          await this.stop('lease lost', false);
          return;
        }
        // What the stored progress says is recorded leaves the feed (a takeover resumes there); the writer's count cap is only a backstop.
        if (held === 'stored') void this.#o.feed.trimBefore(this.#m, this.#s, next).catch(() => undefined);
      }
      if (this.#lastSeq !== undefined && this.#next > this.#lastSeq && !this.#stopped) await this.#finish();
    }).catch((err: Error) => {
      this.#log.error({ err: err.message, seq: this.#next }, 'cannot record live segment; session released for another try');
      void this.stop('record failed', true);
    });
  }

  #job(seq: number, settled: FeedSettled | undefined): QueuedTranscodeJob {
    const { record } = this.#claimed;
    return {
      manifestID: this.#m, session: this.#s, seq, sourceKey: segmentKey(this.#m, this.#s, 'source', seq),
      durationMs: settled?.durationMs ?? 0, profiles: record.profiles, enqueuedAtMs: settled?.readyAtMs ?? Date.now(),
      ...(record.accountID !== undefined ? { accountID: record.accountID } : {}),
    };
  }

  async #record(seq: number, state: SeqState, settled: FeedSettled): Promise<void> {
    // Not transcoded (source only, or lost at the gateway): ingest resolved its renditions; what the ladder made is dropped.
    if (!settled.transcode) return;
    const renditions = await Promise.all(state.stored);
    const elapsedMs = state.startedAt === undefined ? 0 : Math.round(performance.now() - state.startedAt);
    const discontinuity = this.#discontinuity;
    this.#discontinuity = false;
    // The per-segment path's log line and fields (bench and tests read them): wall time from the seq's first chunk to now.
    this.#log.info({ seq, renditions: renditions.length, durationMs: settled.durationMs, elapsedMs, realTimeRatio: Number((settled.durationMs / Math.max(elapsedMs, 1)).toFixed(2)), live: true },
      'segment transcoded');
    await this.#o.results.completed(this.#job(seq, settled), { manifestID: this.#m, seq, renditions: renditions.map((r) => ({ ...r, durationMs: settled.durationMs })), elapsedMs },
      discontinuity ? { discontinuity: true } : {});
  }

  /** Records every seq from `#next` below `upTo` as failed (gone from the feed) and moves the progress past them. */
  async #failGone(upTo: number): Promise<void> {
    if (upTo <= this.#next) return;
    this.#log.warn({ from: this.#next, to: upTo }, 'live segments gone from the feed at takeover: recorded as failed');
    for (let seq = this.#next; seq < upTo && !this.#stopped; seq++) {
      await this.#o.results.failedForGood(this.#job(seq, undefined), FEED_GONE_REASON, 'TRANSCODE_FAILED', 'transcoder_lost');
      this.#seqs.delete(seq);
      this.#next = seq + 1;
      await this.#o.sessions.progress(this.#m, this.#s, this.#owner, this.#next);
    }
  }

  #touch(): void {
    clearTimeout(this.#idleTimer);
    const idleMs = this.#o.idleMs ?? Math.max(30_000, 15 * this.#o.segmentTargetMs);
    this.#idleTimer = setTimeout(() => {
      this.#log.warn({ idleMs, nextSeq: this.#next }, 'live feed idle; session finished');
      void this.#finish();
    }, idleMs);
    this.#idleTimer.unref?.();
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    try {
      const r = await this.#o.sessions.renew(this.#m, this.#s, this.#owner, this.#leaseMs);
      if (!r.held) await this.stop('lease lost to another transcoder', false);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'live session lease renewal failed');
    }
  }

  async #finish(): Promise<void> {
    if (this.#stopped) return;
    await this.stop('finished', false);
    await this.#o.sessions.finish(this.#m, this.#s, this.#owner).catch((err: Error) => this.#log.warn({ err: err.message }, 'cannot finish live session'));
  }

  /** Stops the feed, the ladder and the renewals; `release` gives the lease up for another transcoder. Idempotent. */
  async stop(reason: string, release: boolean): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#renewTimer);
    clearTimeout(this.#idleTimer);
    this.#follow?.stop();
    await this.#ladder?.close().catch(() => undefined);
    if (release) await this.#o.sessions.release(this.#m, this.#s, this.#owner).catch(() => undefined);
    this.#log.info({ reason, nextSeq: this.#next, timeline: this.#timeline }, 'live session stopped');
    this.#onGone();
  }
}
