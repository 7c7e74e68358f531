/**
 * HTTP push (docs/wire-contract.md §4): a pushed segment opens or joins its stream's push
 * session, is claimed by its (session, seq, SHA-256) in the push claims so a retry with the
 * same bytes is answered from the stored result without a second transcode, then is
 * ingested and waits for its renditions. A session with no push for `pushIdleTimeoutMs` ends.
 * The session's state is in Redis (push-session-store.ts), shared by every gateway, so a
 * push stream behind a load balancer is one session whichever gateways take its pushes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { SourceVideoInfo } from '../domain/profile.ts';
import type { RenditionSegment } from '../domain/segment.ts';
import { settleWithin } from '../domain/time-limit.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { REDIS_RETRY_AFTER_S } from '../http/error-classes.ts';
import type { VideoProfile } from '../domain/profile.ts';
import type { EndedPushSession, PushLease, PushSessionRecord } from './ingest-ports.ts';
import type { IngestCore, LiveStream } from './live-stream.ts';
import { pushStreamName } from './stream-registry.ts';

/**
 * How often a replay re-reads a pending claim that no push on this gateway will settle, in
 * ms (the interval the replay of every pending push used before settlements were awaited in
 * process).
 */
export const CROSS_GATEWAY_POLL_MS = 100;

/** How a push ended, as stored in its claim: `done` with its renditions' JSON, `failed` with `{"code","reason"}`. */
export interface PushSettlement {
  readonly state: 'done' | 'failed';
  readonly result: string;
}

/**
 * In-process waiters for the pushes running on this gateway, by (session, seq): a replay of a
 * pending push awaits its settlement instead of polling the claim.
 */
export class PushSettlements {
  readonly #pending = new Map<string, Promise<PushSettlement>>();

  /**
   * Registers a push of (session, seq) as running here.
   * @returns the function that settles it (call it exactly once, when the push ended)
   */
  open(session: string, seq: number): (settlement: PushSettlement) => void {
    const key = `${session}/${seq}`;
    let resolve!: (settlement: PushSettlement) => void;
    const promise = new Promise<PushSettlement>((r) => { resolve = r; });
    this.#pending.set(key, promise);
    return (settlement) => {
      if (this.#pending.get(key) === promise) this.#pending.delete(key);
      resolve(settlement);
    };
  }

  /** The settlement of the push of (session, seq) running here; undefined when none is. */
  waitFor(session: string, seq: number): Promise<PushSettlement> | undefined {
    return this.#pending.get(`${session}/${seq}`);
  }

  /** How many pushes are running here. */
  get size(): number {
    return this.#pending.size;
  }
}

/** One HTTP-pushed segment, already written to a local file by the caller. */
export interface PushedSegment {
  /** Stream name from the URL (stream key, or the manifest ID in anonymous mode). */
  readonly streamName: string;
  readonly seq: number;
  readonly container: 'ts' | 'mp4';
  /** Local file holding the body; the caller deletes it afterwards. */
  readonly bodyPath: string;
  /** Hex SHA-256 of the body: the identity for idempotent retries. */
  readonly sha256: string;
  readonly url: string;
  /** Parsed `Livepeer-Transcode-Configuration` header, if any. */
  readonly configuration?: { manifestID?: string; profiles?: readonly VideoProfile[] };
  /** `Content-Duration` header in ms, used only when the segment's duration cannot be measured. */
  readonly declaredDurationMs?: number;
  /** Scratch path the remuxed MPEG-TS may be written to (for `.mp4` pushes). */
  readonly scratchTsPath: string;
}

export interface PushOutcome {
  readonly manifestID: string;
  readonly seq: number;
  /** Transcoded renditions in ladder order (upscales omitted). */
  readonly renditions: readonly RenditionSegment[];
  /** True when this was a retry answered from the stored result without transcoding. */
  readonly replayed: boolean;
}

/**
 * The ID of a pushed stream in the push sessions (push-session-store.ts): the first 32 hex
 * digits of the SHA-256 of its stream name, so a stream key never appears in a Redis key.
 */
export function pushStreamId(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 32);
}

/** Sessions taken per sweep step (each is one script run; the rest waits for the next sweep). */
const SWEEP_BATCH = 32;

/**
 * HTTP push sessions. Their state is in the push sessions store shared by every gateway on the
 * Redis (`options.pushSessions`): a push enters its stream's live session there (or reserves
 * and opens one), so consecutive pushes of one stream form one session whichever gateway
 * takes them. This gateway keeps a handle per session it took pushes of, with a timer at the
 * session's idle deadline; the idle end is a compare-and-delete in the store, so exactly one
 * gateway runs it, and each gateway's sweep (`options.pushSweepIntervalMs`) ends the sessions
 * whose gateways are gone.
 */
export class PushSessions {
  readonly #core: IngestCore;
  /** Push sessions being opened here, by pushed stream ID, so concurrent first pushes share one. */
  readonly #pushOpening = new Map<string, Promise<LiveStream>>();
  readonly #settlements = new PushSettlements();
  /** This gateway's handles, by pushed stream ID. */
  readonly #byId = new Map<string, LiveStream>();
  readonly #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping = false;

  constructor(core: IngestCore) {
    this.#core = core;
    const periodMs = core.options.pushSweepIntervalMs;
    if (periodMs !== undefined) {
      this.#sweepTimer = setInterval(() => { void this.sweep(); }, periodMs);
      this.#sweepTimer.unref();
    }
  }

  /** How long a push counts as in flight (its reply timeout and some slack), ms: the lease of its claim too. */
  get #leaseMs(): number {
    return this.#core.options.pushReplyTimeoutMs + 5000;
  }

  /**
   * Ingests one HTTP-pushed segment and waits for its renditions (docs/wire-contract.md §4).
   * A retry of the same (manifest ID, seq) with the same bytes returns the stored result
   * without transcoding again.
   * @throws GatewayError PUBLISH_DENIED (403), INVALID_NAME / INVALID_PROFILE / INVALID_REQUEST (400),
   *   STREAM_BUSY (409: the manifest is live over RTMP, or this seq was pushed with other bytes),
   *   UNDECODABLE_MEDIA / TRANSCODE_FAILED (422), QUEUE_UNAVAILABLE / REDIS_UNAVAILABLE (503),
   *   STORAGE_UNAVAILABLE (503: the object store did not take the segment, one attempt; Retry-After)
   */
  async push(segment: PushedSegment): Promise<PushOutcome> {
    try {
      return await this.#push(segment);
    } catch (err) {
      // Redis unreachable or restarting (one attempt per push): 503, the client pushes again later;
      // nothing it was told succeeded is lost.
      if (!(err instanceof GatewayError) && this.#core.retry.isTransient(err)) {
        throw new GatewayError('REDIS_UNAVAILABLE', `the gateway's Redis is unavailable; push this segment again in ${REDIS_RETRY_AFTER_S} s`,
          { cause: err, retryAfterS: REDIS_RETRY_AFTER_S });
      }
      // The object store unreachable or failing (one attempt per push, after the SDK's own tries): 503 as well.
      if (this.#core.storeRetry.isTransient(err)) {
        throw new GatewayError('STORAGE_UNAVAILABLE', `the object store is unavailable; push this segment again in ${REDIS_RETRY_AFTER_S} s`,
          { cause: err, retryAfterS: REDIS_RETRY_AFTER_S });
      }
      throw err;
    }
  }

  async #push(segment: PushedSegment): Promise<PushOutcome> {
    const id = pushStreamId(segment.streamName);
    const lease: PushLease = { token: randomBytes(8).toString('hex'), seq: segment.seq, leaseMs: this.#leaseMs, idleMs: this.#core.options.pushIdleTimeoutMs };
    const stream = await this.#join(segment, id, lease);
    // The idle timeout counts from the end of the last push (in the store, of every gateway's):
    // a push waiting for its renditions keeps its session open however long the transcode takes.
    stream.pushesInFlight += 1;
    const progress = { sourceListed: false };
    try {
      return await this.#pushInto(stream, segment, progress);
    } finally {
      stream.pushesInFlight -= 1;
      await this.#exit(stream, id, lease.token, progress.sourceListed);
    }
  }

  /** The push is over: leaves the session in the store and sets the local timer to its idle deadline. */
  async #exit(stream: LiveStream, id: string, token: string, listed: boolean): Promise<void> {
    try {
      const deadlineMs = await this.#core.options.pushSessions.exit(id, stream.session, { token, idleMs: this.#core.options.pushIdleTimeoutMs, listed });
      if (deadlineMs === undefined) {
        // Ended elsewhere (stopped, or idle there): this handle is stale.
        if (stream.pushesInFlight === 0) this.#drop(stream);
        return;
      }
      this.#arm(stream, id, deadlineMs);
    } catch (err) {
      // The lease runs out by itself; the idle end then follows from the last deadline stored.
      stream.log.warn({ err: (err as Error).message }, 'cannot leave the push session');
      this.#arm(stream, id, Date.now() + this.#core.options.pushIdleTimeoutMs);
    }
  }

  /**
   * This gateway's handle of the live push session of `segment`'s stream, with this push
   * entered: joins the session in the store, or opens one when there is none. A session being
   * opened by another push (here or on another gateway) is waited for, reading the store every
   * {@link CROSS_GATEWAY_POLL_MS}, at most `pushReplyTimeoutMs`.
   */
  async #join(segment: PushedSegment, id: string, lease: PushLease): Promise<LiveStream> {
    const store = this.#core.options.pushSessions;
    const deadline = Date.now() + this.#core.options.pushReplyTimeoutMs;
    for (;;) {
      const entered = await store.enter(id, lease);
      if (entered.state === 'live') return this.#handle(segment, id, entered.record, entered.deadlineMs);
      if (entered.state === 'early') {
        // Only a seq at or after the session's first can be listed: refused before any claim, work or charge.
        throw new GatewayError('INVALID_REQUEST', `segment ${segment.seq} comes before segment ${entered.firstSeq}, which opened this push session (pushed at the same time by another request); push a new stream's segments in order, starting with its first`);
      }
      const opening = this.#pushOpening.get(id);
      if (opening) {
        // Concurrent first pushes here share the opening, and its refusal.
        await opening;
        continue;
      }
      if (entered.state === 'none') {
        const opened = await this.#open(segment, id, lease);
        if (opened) return opened;
        continue;
      }
      if (Date.now() > deadline) throw new GatewayError('QUEUE_UNAVAILABLE', `the push session of segment ${segment.seq} is still being opened; retry later`);
      await delay(CROSS_GATEWAY_POLL_MS);
    }
  }

  /** This gateway's handle of a live session (a new one when the session is not the one it knew). */
  #handle(segment: PushedSegment, id: string, record: PushSessionRecord, deadlineMs: number): LiveStream {
    const known = this.#byId.get(id);
    if (known && known.session === record.session && !known.ended) {
      if (known.pushesInFlight === 0) this.#arm(known, id, deadlineMs);
      return known;
    }
    if (known) this.#drop(known);
    const stream = this.#core.adopt({ protocol: 'push', name: pushStreamName(segment.streamName) }, record);
    stream.pushStreamId = id;
    this.#byId.set(id, stream);
    stream.log.info({ startedAtMs: record.startedAtMs }, 'joined a push session opened by another push');
    return stream;
  }

  /**
   * Reserves and opens the session of `segment`'s stream (authorized like an RTMP publish,
   * started in the index), then makes it live in the store with this push entered.
   * @returns the handle, or undefined when another push reserved it first
   */
  async #open(segment: PushedSegment, id: string, lease: PushLease): Promise<LiveStream | undefined> {
    const store = this.#core.options.pushSessions;
    const owner = lease.token;
    if (await store.reserve(id, owner, this.#leaseMs) !== 'reserved') return undefined;
    const promise = (async () => {
      try {
        const known = this.#byId.get(id);
        if (known) this.#drop(known);
        const grant = await this.#core.authorize(segment.streamName, segment.url, 'push');
        const configured = segment.configuration;
        if (configured?.manifestID !== undefined && configured.manifestID !== grant.manifestID) {
          throw new GatewayError('INVALID_REQUEST', `Livepeer-Transcode-Configuration: manifestID "${configured.manifestID}" does not match the stream's manifest ID`);
        }
        const profiles = configured?.profiles ?? grant.profiles;
        // Profiles from the push's header are the publisher's own: used as configured.
        const explicitLadder = configured?.profiles !== undefined || grant.explicitLadder === true;
        const stream = await this.#core.open({ protocol: 'push', name: pushStreamName(segment.streamName) }, { ...grant, profiles, explicitLadder }, segment.seq);
        stream.pushStreamId = id;
        const record = {
          session: stream.session, manifestID: stream.manifestID, accountID: stream.accountID, profiles, explicitLadder, startedAtMs: stream.startedAtMs,
          ...(stream.watermark !== undefined ? { watermark: stream.watermark } : {}),
        };
        const deadlineMs = await store.activate(id, owner, record, lease);
        if (deadlineMs === undefined) {
          // The reservation ran out while opening (slower than the push lease): another push may own the stream now.
          this.#core.forget(stream);
          throw new GatewayError('QUEUE_UNAVAILABLE', `opening the push session took too long; push segment ${segment.seq} again`);
        }
        this.#byId.set(id, stream);
        return stream;
      } catch (err) {
        await store.release(id, owner).catch(() => undefined);
        throw err;
      }
    })();
    this.#pushOpening.set(id, promise);
    try {
      return await promise;
    } finally {
      this.#pushOpening.delete(id);
    }
  }

  /** Sets the handle's timer to the session's idle deadline, when it tries the idle end. */
  #arm(stream: LiveStream, id: string, deadlineMs: number): void {
    if (stream.ended) return;
    clearTimeout(stream.idleTimer);
    stream.idleTimer = setTimeout(() => { void this.#idleEnd(stream, id); }, Math.max(0, deadlineMs - Date.now()));
    stream.idleTimer.unref();
  }

  /** Ends the session if it is idle in the store (every gateway's pushes); else waits for its new deadline. */
  async #idleEnd(stream: LiveStream, id: string): Promise<void> {
    if (stream.ended || stream.pushesInFlight > 0) return;
    try {
      const result = await this.#core.options.pushSessions.end(id, { session: stream.session, idleOnly: true });
      if (result.state === 'ended') await this.#finish(stream, result.ended, 'push idle timeout');
      else if (result.state === 'busy') this.#arm(stream, id, result.deadlineMs);
      else if (stream.pushesInFlight === 0) this.#drop(stream);
    } catch (err) {
      stream.log.warn({ err: (err as Error).message }, 'cannot end the idle push session yet');
      this.#arm(stream, id, Date.now() + CROSS_GATEWAY_POLL_MS * 10);
    }
  }

  /** The winner of a session's end ends its stream (index, event) through its handle. */
  async #finish(stream: LiveStream, ended: EndedPushSession, reason: string): Promise<void> {
    stream.endSeq = Math.max(stream.endSeq, ended.endSeq);
    stream.segments = ended.segments;
    if (stream.pushStreamId !== undefined && this.#byId.get(stream.pushStreamId) === stream) this.#byId.delete(stream.pushStreamId);
    await this.#core.finish(stream, reason);
  }

  /** Drops this gateway's handle without ending the session. */
  #drop(stream: LiveStream): void {
    clearTimeout(stream.idleTimer);
    if (stream.pushStreamId !== undefined && this.#byId.get(stream.pushStreamId) === stream) this.#byId.delete(stream.pushStreamId);
    this.#core.forget(stream);
  }

  /**
   * Stops a push session this gateway has a handle of (control API, credits): ends it in the
   * store for every gateway and ends its stream here, unless another gateway ended it first.
   */
  async stop(stream: LiveStream, reason: string): Promise<void> {
    const id = stream.pushStreamId;
    if (id === undefined) return this.#core.finish(stream, reason);
    const result = await this.#core.options.pushSessions.end(id, { session: stream.session, idleOnly: false });
    if (result.state === 'ended') await this.#finish(stream, result.ended, reason);
    else this.#drop(stream);
  }

  /** Drops this gateway's handle of a push session at shutdown: the session stays live for the other gateways. */
  release(stream: LiveStream): void {
    this.#drop(stream);
  }

  /**
   * Ends the push sessions past their idle deadline that no gateway ended: those whose
   * gateways are gone. Safe on every gateway at once (one compare-and-delete per session).
   */
  async sweep(nowMs = Date.now()): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    const store = this.#core.options.pushSessions;
    try {
      for (const id of await store.idle(nowMs, SWEEP_BATCH)) {
        const result = await store.end(id, { idleOnly: true, nowMs });
        if (result.state !== 'ended') continue;
        const known = this.#byId.get(id);
        const stream = known?.session === result.ended.session ? known
          : this.#core.adopt({ protocol: 'push', name: pushStreamName(`#${id}`) }, result.ended, { register: false });
        stream.log.info('push session idle, its gateways gone: ending it here');
        await this.#finish(stream, result.ended, 'push idle timeout');
      }
    } catch (err) {
      this.#core.options.logger.warn({ err: (err as Error).message }, 'push session sweep failed');
    } finally {
      this.#sweeping = false;
    }
  }

  /** Stops the sweep and every handle's timer. Idempotent. */
  close(): void {
    clearInterval(this.#sweepTimer);
    for (const stream of this.#byId.values()) clearTimeout(stream.idleTimer);
  }

  async #pushInto(stream: LiveStream, segment: PushedSegment, progress: { sourceListed: boolean }): Promise<PushOutcome> {
    const { manifestID, session, log } = stream;
    const seq = segment.seq;
    // A claim whose push never settled it (its gateway died or lost Redis) is taken over after the reply timeout.
    const claim = await this.#core.options.pushClaims.claimPush(manifestID, session, seq, segment.sha256, { leaseMs: this.#core.options.pushReplyTimeoutMs + 5000 });
    if (claim.claim === 'conflict') {
      throw new GatewayError('STREAM_BUSY', `segment ${seq} of ${manifestID} was already pushed with different content`);
    }
    // A push that failed for a transient reason (503) is done again, not answered with its failure.
    const transientFailure = (code: string | undefined): boolean => code === 'QUEUE_UNAVAILABLE' || code === 'REDIS_UNAVAILABLE' || code === 'STORAGE_UNAVAILABLE';
    if (claim.claim === 'same' && !(claim.state === 'failed' && transientFailure(failureCode(claim.result)))) {
      return this.#replay(stream, seq, { state: claim.state, result: claim.result });
    }

    stream.endSeq = Math.max(stream.endSeq, seq + 1);
    // Replays of this push on this gateway wait for its settlement here instead of polling.
    const settled = this.#settlements.open(stream.session, seq);
    let settlement: PushSettlement = { state: 'failed', result: JSON.stringify({ code: 'INTERNAL', reason: 'the push ended without a result' }) };
    let queued = false;
    try {
      let tsPath = segment.bodyPath;
      let rotationDeg: SourceVideoInfo['rotationDeg'];
      if (segment.container === 'mp4') {
        // The MP4's display matrix is lost in MPEG-TS: read it here (this probe also names an
        // unsupported codec before the rewrap can fail on it), and carry it to the transcoder.
        rotationDeg = (await this.#core.options.probe.probe(segment.bodyPath, 'mp4')).video?.rotationDeg;
        await this.#core.options.remuxer.toMpegTs(segment.bodyPath, segment.scratchTsPath);
        tsPath = segment.scratchTsPath;
      }
      // One attempt (deadline now): a push answers 503 rather than outwait a Redis outage.
      const job = await this.#core.ingestSegment(stream, seq, tsPath, { declaredMs: segment.declaredDurationMs }, Date.now(), progress,
        rotationDeg ? { rotationDeg } : {});
      if (!job) {
        // Nothing to transcode: source-only for lack of credits, or an audio-only source (served as `source` alone).
        settlement = { state: 'done', result: '[]' };
        await this.#core.options.pushClaims.settlePush(manifestID, session, seq, 'done', settlement.result);
        return { manifestID, seq, renditions: [], replayed: false };
      }
      queued = true;
      this.#core.options.recorder?.recordSegmentEmerged(job.manifestID);
      const result = await this.#core.options.queue.enqueueAndWait(job, this.#core.options.pushReplyTimeoutMs);
      settlement = { state: 'done', result: JSON.stringify(result.renditions) };
      await this.#core.options.pushClaims.settlePush(manifestID, session, seq, 'done', settlement.result);
      void this.#skipGaps(stream, seq);
      return { manifestID, seq, renditions: result.renditions, replayed: false };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const unreachable = !(err instanceof GatewayError) && this.#core.retry.isTransient(err);
      const storeDown = !unreachable && this.#core.storeRetry.isTransient(err);
      const transient = unreachable || storeDown || (err instanceof GatewayError && (transientFailure(err.code) || err.code === 'INSUFFICIENT_BALANCE'));
      const code = unreachable ? 'REDIS_UNAVAILABLE' : storeDown ? 'STORAGE_UNAVAILABLE' : err instanceof GatewayError ? err.code : 'INTERNAL';
      settlement = { state: 'failed', result: JSON.stringify({ code, reason }) };
      await this.#core.options.pushClaims.settlePush(manifestID, session, seq, 'failed', settlement.result)
        .catch(() => undefined);
      // A job that failed for good was resolved in the index and reported by its transcoder
      // (the worker's onFailedForGood); only failures before the queue are ours to report.
      if (!transient && !queued) {
        await this.#core.recordFailed(stream, seq, reason);
        this.#core.options.events.emit({ type: 'segment.failed', manifestID, session, seq, reason });
      }
      log.warn({ seq, reason }, 'pushed segment failed');
      throw err;
    } finally {
      settled(settlement);
    }
  }

  /**
   * Answers a retry of a push from its settlement. A pending push running on this gateway (the
   * only one that can hold this session's claim while it lives) is awaited in process and
   * answered the moment it settles. A pending claim with no push here (its push's settlement
   * never reached Redis, or a claim left by a gateway that died) is read again every
   * {@link CROSS_GATEWAY_POLL_MS}; both wait at most `pushReplyTimeoutMs`.
   * @throws GatewayError QUEUE_UNAVAILABLE (still pending at the deadline, or the state expired),
   *   UNDECODABLE_MEDIA / TRANSCODE_FAILED (the push failed)
   */
  async #replay(stream: LiveStream, seq: number, claimed: { state: 'pending' | 'done' | 'failed'; result?: string | undefined }): Promise<PushOutcome> {
    const timeoutMs = this.#core.options.pushReplyTimeoutMs;
    const stillPending = (): never => { throw new GatewayError('QUEUE_UNAVAILABLE', `segment ${seq} is still being transcoded; retry later`); };
    let current: { state: 'pending' | 'done' | 'failed'; result?: string | undefined } = claimed;
    const local = current.state === 'pending' ? this.#settlements.waitFor(stream.session, seq) : undefined;
    if (local) {
      current = await settleWithin(local, timeoutMs, stillPending);
    } else {
      const deadline = Date.now() + timeoutMs;
      while (current.state === 'pending') {
        if (Date.now() > deadline) stillPending();
        await delay(CROSS_GATEWAY_POLL_MS);
        const state = await this.#core.options.pushClaims.pushState(stream.manifestID, stream.session, seq);
        if (!state) throw new GatewayError('QUEUE_UNAVAILABLE', `segment ${seq} state expired; push it again`);
        current = state;
      }
    }
    const { state, result } = current;
    if (state === 'failed') {
      const failure = JSON.parse(result ?? '{}') as { code?: string; reason?: string };
      throw new GatewayError(failure.code === 'UNDECODABLE_MEDIA' ? 'UNDECODABLE_MEDIA' : 'TRANSCODE_FAILED', failure.reason ?? 'segment failed', { retryable: false });
    }
    stream.log.debug({ seq, waited: local ? 'in process' : claimed.state === 'pending' ? 'poll' : 'no' }, 'push retry answered from the stored result');
    return { manifestID: stream.manifestID, seq, renditions: JSON.parse(result ?? '[]') as RenditionSegment[], replayed: true };
  }

  /**
   * After seq N is done, every lower seq of this push session that was never pushed (down to
   * the highest pushed one, however far) is resolved as failed in one step, so the playlists
   * do not wait for it (a discontinuity marks the gap). A seq pushed after that is refused
   * with 409 (it would not be listed), and is neither transcoded nor charged.
   */
  async #skipGaps(stream: LiveStream, seq: number): Promise<void> {
    try {
      await this.#core.options.index.resolvePushGap(stream.manifestID, stream.session, seq);
    } catch (err) {
      stream.log.warn({ err: (err as Error).message }, 'cannot resolve push gaps');
    }
  }
}

/** The error code stored with a failed push (`{"code","reason"}` JSON), if any. */
function failureCode(result: string | undefined): string | undefined {
  try {
    return (JSON.parse(result ?? '{}') as { code?: string }).code;
  } catch {
    return undefined;
  }
}
