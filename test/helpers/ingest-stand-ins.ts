/**
 * In-memory stand-ins for LiveIngest's ports, for unit tests of ingest rules: every port a
 * test does not name either does nothing (stream bookkeeping) or throws "not used in this
 * test" (media and queue work), so a test states only the ports its rule exercises.
 */
import { EventEmitter } from 'node:events';
import {
  StaticKeyAuthorizer, type EndedPushSession, type IngestIndex, type LiveIngestOptions, type PushClaims, type PushEnter, type PushLease, type PushSessionRecord, type PushSessionStore,
  type SegmenterHandle,
} from '../../src/ingest/live-ingest.ts';
import { silentLogger } from '../../src/log/logger.ts';

/** A port that the test at hand must never reach. */
export const notUsed = async (): Promise<never> => { throw new Error('not used in this test'); };

/** A segmenter that ends (reason `stopped`, exit 255) on its first stop and counts stops. */
export class FakeSegmenter extends EventEmitter implements SegmenterHandle {
  stops = 0;
  starts = 0;
  start(): void {
    this.starts += 1;
  }
  async stop(): Promise<void> {
    this.stops += 1;
    if (this.stops === 1) this.emit('end', { reason: 'stopped', exitCode: 255 });
  }
}

/** A `startSegmenter` option that makes {@link FakeSegmenter}s and keeps them, in start order, in `segmenters`. */
export function fakeSegmenters(): { segmenters: FakeSegmenter[]; startSegmenter: () => FakeSegmenter } {
  const segmenters: FakeSegmenter[] = [];
  return {
    segmenters,
    startSegmenter: () => {
      const s = new FakeSegmenter();
      segmenters.push(s);
      return s;
    },
  };
}

/** An index that accepts stream bookkeeping and refuses push gaps. */
export function bookkeepingIndex(overrides: Partial<IngestIndex> = {}): IngestIndex {
  return {
    startStream: async () => undefined,
    setRenditions: async () => undefined,
    endStream: async () => undefined,
    record: async () => ({ accepted: true, listed: 0 }),
    getStream: async () => undefined,
    resolvePushGap: notUsed,
    ...overrides,
  };
}

/** Push claims that refuse every call. */
export function unusedPushClaims(overrides: Partial<PushClaims> = {}): PushClaims {
  return { claimPush: notUsed, settlePush: notUsed, pushState: notUsed, ...overrides };
}

/**
 * Push sessions in memory, for one gateway's unit tests: the same answers as the Redis store
 * (src/ingest/push-session-store.ts) without its expiries.
 */
export class MemoryPushSessions implements PushSessionStore {
  readonly #sessions = new Map<string, { state: 'opening' | 'live'; owner: string; record?: PushSessionRecord; firstSeq?: number; endSeq: number; segments: number; leases: Map<string, number>; deadlineMs: number }>();

  #touch(s: { leases: Map<string, number>; deadlineMs: number }, nowMs: number, idleMs: number): number {
    for (const [token, until] of s.leases) if (until <= nowMs) s.leases.delete(token);
    s.deadlineMs = Math.max(nowMs, ...s.leases.values()) + idleMs;
    return s.deadlineMs;
  }

  async enter(id: string, push: PushLease): Promise<PushEnter> {
    const s = this.#sessions.get(id);
    if (!s) return { state: 'none' };
    if (s.state !== 'live') return { state: 'opening' };
    if (s.firstSeq !== undefined && push.seq < s.firstSeq) return { state: 'early', firstSeq: s.firstSeq };
    const nowMs = Date.now();
    s.leases.set(push.token, nowMs + push.leaseMs);
    s.endSeq = Math.max(s.endSeq, push.seq + 1);
    return { state: 'live', record: s.record!, deadlineMs: this.#touch(s, nowMs, push.idleMs) };
  }

  async reserve(id: string, owner: string): Promise<'reserved' | 'opening' | 'live'> {
    const s = this.#sessions.get(id);
    if (s) return s.state;
    this.#sessions.set(id, { state: 'opening', owner, endSeq: 0, segments: 0, leases: new Map(), deadlineMs: 0 });
    return 'reserved';
  }

  async release(id: string, owner: string): Promise<void> {
    const s = this.#sessions.get(id);
    if (s?.state === 'opening' && s.owner === owner) this.#sessions.delete(id);
  }

  async activate(id: string, owner: string, record: PushSessionRecord, push: PushLease): Promise<number | undefined> {
    const s = this.#sessions.get(id);
    if (s?.state !== 'opening' || s.owner !== owner) return undefined;
    const nowMs = Date.now();
    const live = { state: 'live' as const, owner, record, firstSeq: push.seq, endSeq: push.seq + 1, segments: 0, leases: new Map([[push.token, nowMs + push.leaseMs]]), deadlineMs: 0 };
    this.#sessions.set(id, live);
    return this.#touch(live, nowMs, push.idleMs);
  }

  async exit(id: string, session: string, push: { token: string; idleMs: number; listed: boolean }): Promise<number | undefined> {
    const s = this.#sessions.get(id);
    if (s?.state !== 'live' || s.record!.session !== session) return undefined;
    s.leases.delete(push.token);
    if (push.listed) s.segments += 1;
    return this.#touch(s, Date.now(), push.idleMs);
  }

  async end(id: string, options: { session?: string; idleOnly: boolean; nowMs?: number }): Promise<
    { state: 'ended'; ended: EndedPushSession } | { state: 'busy'; deadlineMs: number } | { state: 'gone' | 'opening' }> {
    const s = this.#sessions.get(id);
    if (!s) return { state: 'gone' };
    if (s.state !== 'live') return { state: 'opening' };
    if (options.session !== undefined && s.record!.session !== options.session) return { state: 'gone' };
    const nowMs = options.nowMs ?? Date.now();
    for (const [token, until] of s.leases) if (until <= nowMs) s.leases.delete(token);
    if (options.idleOnly && (s.deadlineMs > nowMs || s.leases.size > 0)) return { state: 'busy', deadlineMs: Math.max(s.deadlineMs, ...s.leases.values()) };
    this.#sessions.delete(id);
    return { state: 'ended', ended: { ...s.record!, endSeq: s.endSeq, segments: s.segments } };
  }

  async idle(nowMs: number, limit: number): Promise<string[]> {
    return [...this.#sessions].filter(([, s]) => s.state === 'live' && s.deadlineMs <= nowMs).slice(0, limit).map(([id]) => id);
  }
}

/** LiveIngest options of stand-ins (anonymous keys, empty ladder, `local` account), with `overrides` applied. */
export function ingestOptions(overrides: Partial<LiveIngestOptions> = {}): LiveIngestOptions {
  return {
    logger: silentLogger(),
    authorizer: new StaticKeyAuthorizer([], []),
    index: bookkeepingIndex(),
    pushClaims: unusedPushClaims(),
    pushSessions: new MemoryPushSessions(),
    queue: { enqueue: notUsed, enqueueAndWait: notUsed },
    storage: { putFile: notUsed },
    probe: { probe: notUsed },
    remuxer: { toMpegTs: notUsed },
    events: { emit: () => undefined },
    startSegmenter: () => new FakeSegmenter(),
    kickPublisher: () => undefined,
    publicUrl: 'http://127.0.0.1:1',
    segmentTargetMs: 2000,
    pushIdleTimeoutMs: 60_000,
    pushReplyTimeoutMs: 10_000,
    defaultAccountID: 'local',
    onInsufficientBalance: 'end',
    ...overrides,
  };
}
