/**
 * LiveSessionRunner on a real Redis (feed, sessions, segment index) with a stand-in ladder
 * that emits one rendition segment per seq when the next seq starts: placement by slots,
 * and takeover of a session whose transcoder stops dead (every call it makes hangs, as a
 * SIGKILLed process's would): every seq listed, a discontinuity at the takeover, each seq
 * settled and none released. The real ladder (ffmpeg) is covered by the end-to-end tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { LiveFeedReader, LiveFeedWriter } from '../../../src/transcode/live-feed-store.ts';
import { RedisLiveSessions } from '../../../src/transcode/live-session-store.ts';
import { LiveSessionBus } from '../../../src/transcode/live-session-bus.ts';
import { LiveSessionRunner, NEW_SESSION_POLL_MS, type LadderSegment, type LiveLadderHandle, type RunnerFeed, type RunnerResults, type RunnerSessions } from '../../../src/transcode/live-session-runner.ts';
import { TranscodeResults } from '../../../src/transcode/transcode-results.ts';
import { RedisSegmentIndex } from '../../../src/hls/segment-index-store.ts';
import { PRESETS } from '../../../src/domain/profile.ts';
import { SOURCE_RENDITION, segmentKey } from '../../../src/domain/segment.ts';
import type { FeedChunk } from '../../../src/transcode/live-feed-store.ts';
import { createLogger, silentLogger } from '../../../src/log/logger.ts';

const testRedis = redisConnectionsForSuite('mediagate:test');
const SEGMENT_MS = 1000;
const PROFILE = { ...PRESETS['P360p30fps16x9']!, name: 'low' };
const SOURCE = { video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' } };

/** Emits seq N's rendition segment and `complete` when seq N + 1's first chunk arrives (or at end). */
class StandInLadder extends EventEmitter implements LiveLadderHandle {
  #current: number | undefined;
  killed = false;
  write(chunk: FeedChunk): void {
    if (this.killed) return;
    if (chunk.first) {
      if (this.#current !== undefined) this.#emitSeq(this.#current);
      this.#current = chunk.seq;
    }
  }
  /** Set: `end()` emits the last seq, then returns a promise that rejects (as LiveLadder's does when its ffmpeg is stopped meanwhile). */
  endRejects = false;
  end(): Promise<void> | void {
    if (this.#current !== undefined && !this.killed) this.#emitSeq(this.#current);
    this.#current = undefined;
    if (this.endRejects) return Promise.reject(new Error('ffmpeg exited with code 255'));
  }
  async close(): Promise<void> { this.killed = true; }
  /** Set: each seq comes out this long after the previous one (a ladder running behind real time). */
  emitEveryMs = 0;
  #emitted: Promise<void> = Promise.resolve();
  #emitSeq(seq: number): void {
    if (this.emitEveryMs > 0) {
      this.#emitted = this.#emitted.then(() => new Promise((r) => setTimeout(r, this.emitEveryMs))).then(() => { if (!this.killed) this.#emitNow(seq); });
      return;
    }
    this.#emitNow(seq);
  }
  #emitNow(seq: number): void {
    const segment: LadderSegment = { seq, rendition: 'low', bytes: Buffer.from(`low ${seq}`), durationMs: SEGMENT_MS, measured: { width: 640, height: 360, frames: 24, codecs: 'avc1.64001e', frameRate: 24 } };
    this.emit('segment', segment);
    this.emit('complete', { seq });
  }
}

/** A runner's parts, each able to stop answering at once (a process killed with SIGKILL). */
function freezable<T extends object>(target: T): { value: T; freeze(): void } {
  let frozen = false;
  const value = new Proxy(target, {
    get(t, prop) {
      const v = (t as Record<string | symbol, unknown>)[prop];
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (frozen) return new Promise(() => undefined);
        if (prop === 'follow') {
          const onEntry = args[3] as (e: unknown) => void;
          return (v as (...a: unknown[]) => unknown).call(t, args[0], args[1], args[2], (e: unknown) => { if (!frozen) onEntry(e); });
        }
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
  return { value, freeze: () => { frozen = true; } };
}

interface Harness {
  runners: { runner: LiveSessionRunner; freeze(): void; ladders: StandInLadder[] }[];
  settled: number[];
  released: number[];
  stored: Map<string, Buffer>;
  close(): Promise<void>;
}

function harness(keys: RedisKeys, index: RedisSegmentIndex, n: number, options: { slots?: number; jobsInFlight?: () => number; idPrefix?: string; endRejects?: boolean; segmentTargetMs?: number; idleMs?: number; emitEveryMs?: number } = {}): Harness {
  const settled: number[] = [];
  const released: number[] = [];
  const stored = new Map<string, Buffer>();
  const readers: LiveFeedReader[] = [];
  const runners = Array.from({ length: n }, (_, i) => {
    const reader = new LiveFeedReader({ redis: testRedis.connections.open(`feed-${keys.prefix}-${options.idPrefix ?? "t"}${i}`, "blocking"), keys, logger: silentLogger(), blockMs: 100 });
    readers.push(reader);
    const sessions = freezable<RunnerSessions>(new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys }));
    const feed = freezable<RunnerFeed>(reader);
    const results = freezable<RunnerResults>(new TranscodeResults({
      index, logger: silentLogger(), events: { emit: () => undefined },
      metrics: { recordSegmentTranscoded: () => undefined, recordSegmentFailed: () => undefined, recordTranscodeJobStalled: () => undefined },
      retry: { deadline: () => Date.now() + 5000, run: (_what, op) => op() },
      billing: { settleSegment: async (r) => { settled.push(r.seq); }, releaseSegment: async (r) => { released.push(r.seq); } },
    }));
    const ladders: StandInLadder[] = [];
    const runner = new LiveSessionRunner({
      sessions: sessions.value, feed: feed.value, results: results.value, logger: process.env['H3B_DEBUG'] ? createLogger({ level: 'debug' }).child({ t: i }) : silentLogger(),
      storage: { putBytes: async (key, data) => { stored.set(key, Buffer.from(data)); return { sizeBytes: data.length }; } },
      startLadder: () => { const l = new StandInLadder(); l.endRejects = options.endRejects ?? false; l.emitEveryMs = options.emitEveryMs ?? 0; ladders.push(l); return l; },
      ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
      slots: options.slots ?? 1, jobsInFlight: options.jobsInFlight ?? (() => 0), segmentTargetMs: options.segmentTargetMs ?? SEGMENT_MS, id: `${options.idPrefix ?? 't'}${i}`,
    });
    return { runner, ladders, freeze: () => { sessions.freeze(); feed.freeze(); results.freeze(); } };
  });
  return {
    runners, settled, released, stored,
    close: async () => {
      // A frozen runner's calls never settle (its process is dead): it is not waited for.
      await Promise.all(runners.map((r) => Promise.race([r.runner.close(), new Promise((res) => setTimeout(res, 1000))])));
      await Promise.all(readers.map((r) => r.close()));
    },
  };
}

/** What the gateway does for a live stream: the index, the session record, the feed and each seq's settlement. */
async function openStream(index: RedisSegmentIndex, sessions: RedisLiveSessions, manifestID: string): Promise<void> {
  await index.startStream(manifestID, 's1', Date.now(), { protocol: 'rtmp', firstSeq: 0 });
  await index.setRenditions(manifestID, 's1', [{ name: 'low', width: 640, height: 360, bitrateBps: PROFILE.bitrateBps }]);
  await sessions.open({ manifestID, session: 's1', profiles: [PROFILE], accountID: 'acct', segmentTargetMs: SEGMENT_MS, openedAtMs: Date.now() });
  await sessions.setSource(manifestID, 's1', SOURCE);
}

async function publishSeq(index: RedisSegmentIndex, writer: LiveFeedWriter, manifestID: string, seq: number): Promise<void> {
  for (let i = 0; i < 3; i++) writer.append(manifestID, 's1', { seq, first: i === 0, ...(i === 0 ? { startPts90k: seq * 90_000 } : {}), bytes: Buffer.from(`${seq}.${i}`) });
  if (seq > 0) await settleSeq(index, writer, manifestID, seq - 1);
  await writer.flushed();
}

async function settleSeq(index: RedisSegmentIndex, writer: LiveFeedWriter, manifestID: string, seq: number): Promise<void> {
  await index.record(manifestID, 's1', { status: 'ok', seq, segment: { rendition: SOURCE_RENDITION, key: segmentKey(manifestID, 's1', SOURCE_RENDITION, seq), width: 640, height: 360, frames: 24, bytes: 100, durationMs: SEGMENT_MS, codecs: 'avc1.64001e', frameRate: 24 } });
  writer.settle(manifestID, 's1', { seq, transcode: true, durationMs: SEGMENT_MS, readyAtMs: Date.now() });
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function newIndex(keys: RedisKeys): RedisSegmentIndex {
  return new RedisSegmentIndex({ redis: testRedis.connections.open('state'), keys, retainSegments: 64, maxSegmentWaitMs: 60_000, heartbeatTtlMs: 60_000 });
}

test('a transcoder claims live sessions only while it has free slots; a session goes to a transcoder with one', async () => {
  const keys = new RedisKeys('mgtest-slots');
  const index = newIndex(keys);
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  let busyJobs = 1;
  // t0: one slot taken by a per-segment job; t1: one free slot.
  const h0 = harness(keys, index, 1, { slots: 1, jobsInFlight: () => busyJobs, idPrefix: 'busy' });
  const h1 = harness(keys, index, 1, { slots: 1, idPrefix: 'free' });
  try {
    await openStream(index, sessions, 'slots-a');
    await openStream(index, sessions, 'slots-b');
    h0.runners[0]!.runner.start();
    h1.runners[0]!.runner.start();
    await waitFor('t1 owns a session', () => h1.runners[0]!.runner.owned === 1);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(h0.runners[0]!.runner.owned, 0, 'a transcoder whose slots are all busy claims nothing');
    assert.equal(h1.runners[0]!.runner.owned, 1, 'one session per slot');
    assert.equal((await sessions.unowned()).filter((s) => s.manifestID.startsWith('slots-')).length, 1, 'the other session waits for a free slot');
    busyJobs = 0;
    await waitFor('t0 claims the waiting session once its job is done', () => h0.runners[0]!.runner.owned === 1);
    const advertised = await sessions.transcoders();
    assert.deepEqual(advertised.filter((t) => t.id === 'busy0' || t.id === 'free0').map((t) => t.slots), [1, 1]);
  } finally {
    await h0.close();
    await h1.close();
  }
});

test('when the owner stops dead, another transcoder takes the session over: every seq listed, a discontinuity at the takeover, each seq settled once and none released', async () => {
  const keys = new RedisKeys('mgtest-failover');
  const index = newIndex(keys);
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  const writer = new LiveFeedWriter({ redis: testRedis.connections.open('state'), keys, logger: silentLogger() });
  const h = harness(keys, index, 2);
  const m = 'failover';
  try {
    await openStream(index, sessions, m);
    for (const r of h.runners) r.runner.start();
    const listed = async (): Promise<number> => (await index.renditionStats(m, 'low')).count;
    for (let seq = 0; seq < 4; seq++) {
      await publishSeq(index, writer, m, seq);
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor('seqs 0-2 listed', async () => (await listed()) >= 3);
    const owner = h.runners.find((r) => r.runner.owned === 1)!;
    const other = h.runners.find((r) => r !== owner)!;
    assert.ok(owner && other.runner.owned === 0);
    owner.freeze();
    const killedAt = Date.now();
    // Real time from here: one source segment per segment target.
    for (let seq = 4; seq < 10; seq++) {
      await publishSeq(index, writer, m, seq);
      await new Promise((r) => setTimeout(r, SEGMENT_MS));
    }
    await settleSeq(index, writer, m, 9);
    writer.end(m, 's1');
    await writer.flushed();
    await waitFor('every seq listed in the rendition', async () => (await listed()) === 10);
    assert.equal(other.runner.owned + other.ladders.length > 0, true, 'the other transcoder took the session');
    const stream = (await index.getStream(m))!;
    const window = await index.renditionWindow(m, 'low', 64, stream);
    assert.deepEqual(window.segments.map((s) => s.seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'no hole in sequence numbers');
    const discontinuities = window.segments.filter((s) => s.discontinuity).map((s) => s.seq);
    assert.equal(discontinuities.length, 1, `one discontinuity, at the takeover (at ${discontinuities.join(',')})`);
    assert.ok(discontinuities[0]! >= 3, 'after the seqs the first owner listed');
    assert.deepEqual([...new Set(h.settled)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every seq settled');
    assert.deepEqual(h.released, [], 'no hold released: no seq was lost');
    assert.ok(h.stored.has(segmentKey(m, 's1', 'low', 9)));
    // The session is finished once its last seq is recorded.
    await waitFor('session finished', async () => other.runner.owned === 0);
    assert.equal((await sessions.claim(m, 's1', 'late', 1000)).claim, 'gone');
    assert.ok(Date.now() - killedAt < 15_000);
  } finally {
    await writer.close();
    await h.close();
  }
});

test('a ladder whose end() rejects (its ffmpeg stopped meanwhile) neither crashes the process nor keeps the session from finishing', async () => {
  const keys = new RedisKeys('mgtest-end-rejects');
  const index = newIndex(keys);
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  const writer = new LiveFeedWriter({ redis: testRedis.connections.open('state'), keys, logger: silentLogger() });
  const h = harness(keys, index, 1, { endRejects: true, idPrefix: 'rej' });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
  process.on('unhandledRejection', onUnhandled);
  try {
    await openStream(index, sessions, 'rejects');
    h.runners[0]!.runner.start();
    await waitFor('claimed', () => h.runners[0]!.runner.owned === 1);
    for (let seq = 0; seq < 3; seq++) await publishSeq(index, writer, 'rejects', seq);
    await settleSeq(index, writer, 'rejects', 2);
    writer.end('rejects', 's1');
    await writer.flushed();
    await waitFor('session finished', () => h.runners[0]!.runner.owned === 0);
    await new Promise((r) => setImmediate(r));
    assert.equal((await index.renditionStats('rejects', 'low')).count, 3, 'every seq listed');
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await writer.close();
    await h.close();
  }
});

test('a session opened between two scans is claimed at the next poll, not at the next scan (half a lease later)', async () => {
  const keys = new RedisKeys('mgtest-poll');
  const index = newIndex(keys);
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  // A 20 s segment target: a 20 s lease, scans every 10 s.
  const h = harness(keys, index, 1, { segmentTargetMs: 20_000, idPrefix: 'poll' });
  try {
    h.runners[0]!.runner.start();
    // The start's own scan has found nothing.
    await new Promise((r) => setTimeout(r, 3 * NEW_SESSION_POLL_MS));
    assert.equal(h.runners[0]!.runner.owned, 0);
    await openStream(index, sessions, 'poll-a');
    const openedAt = Date.now();
    await waitFor('the session is claimed', () => h.runners[0]!.runner.owned === 1, 8000);
    assert.ok(Date.now() - openedAt < 8000, 'claimed before the next scan (10 s after the first)');
    assert.equal(await sessions.newestOpenedAtMs() !== undefined, true);
  } finally {
    await h.close();
  }
});

test('a ladder running behind keeps its session after the feed went quiet: the idle timer counts from its last output too', async () => {
  const keys = new RedisKeys('mgtest-behind');
  const index = newIndex(keys);
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  const writer = new LiveFeedWriter({ redis: testRedis.connections.open('state'), keys, logger: silentLogger() });
  // The feed is quiet after the end entry for longer than idleMs while the ladder still emits a seq every 300 ms.
  const h = harness(keys, index, 1, { idleMs: 700, emitEveryMs: 300, idPrefix: 'behind' });
  try {
    await openStream(index, sessions, 'behind');
    h.runners[0]!.runner.start();
    await waitFor('claimed', () => h.runners[0]!.runner.owned === 1);
    for (let seq = 0; seq < 6; seq++) await publishSeq(index, writer, 'behind', seq);
    await settleSeq(index, writer, 'behind', 5);
    writer.end('behind', 's1');
    await writer.flushed();
    await waitFor('session finished', () => h.runners[0]!.runner.owned === 0);
    assert.equal((await index.renditionStats('behind', 'low')).count, 6, 'every seq listed');
  } finally {
    await writer.close();
    await h.close();
  }
});

test('seqs gone from the feed before the owner read them (the writer\'s byte cap) make it hand the session over: they fail, the rest is listed after a discontinuity, no hole', async () => {
  const keys = new RedisKeys('mgtest-gap');
  const index = newIndex(keys);
  const sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  const redis = testRedis.connections.open('state');
  const writer = new LiveFeedWriter({ redis, keys, logger: silentLogger() });
  const h = harness(keys, index, 1, { idPrefix: 'gap' });
  const m = 'gap';
  try {
    await openStream(index, sessions, m);
    h.runners[0]!.runner.start();
    await waitFor('claimed', () => h.runners[0]!.runner.owned === 1);
    await publishSeq(index, writer, m, 0);
    await publishSeq(index, writer, m, 1);
    await waitFor('seq 0 listed', async () => (await index.renditionStats(m, 'low')).count >= 1);
    // Seqs 2 and 3 reach the feed and leave it again before the owner's next read (one transaction,
    // as a trim by the byte cap would take them), seq 4 stays.
    const feedKey = keys.key('transcode', 'feed', m, 's1');
    const tx = redis.multi();
    for (const seq of [2, 3, 4]) {
      for (let i = 0; i < 3; i++) tx.xadd(feedKey, `${seq}-*`, 't', 'c', 's', String(seq), 'f', i === 0 ? '1' : '0', ...(i === 0 ? ['p', String(seq * 90_000)] : []), 'b', `${seq}.${i}`);
    }
    tx.xtrim(feedKey, 'MINID', '4-0');
    await tx.exec();
    for (const seq of [1, 2, 3]) await index.record(m, 's1', { status: 'ok', seq, segment: { rendition: SOURCE_RENDITION, key: segmentKey(m, 's1', SOURCE_RENDITION, seq), width: 640, height: 360, frames: 24, bytes: 100, durationMs: SEGMENT_MS, codecs: 'avc1.64001e', frameRate: 24 } });
    for (let seq = 5; seq < 7; seq++) await publishSeq(index, writer, m, seq);
    await settleSeq(index, writer, m, 4);
    await settleSeq(index, writer, m, 6);
    writer.end(m, 's1');
    await writer.flushed();
    await waitFor('every seq resolved in the rendition', async () => (await index.renditionStats(m, 'low')).frontier >= 7, 20_000);
    const stream = (await index.getStream(m))!;
    const window = await index.renditionWindow(m, 'low', 64, stream);
    const listed = window.segments.map((s) => s.seq);
    assert.ok(listed.includes(0) && listed.includes(4) && listed.includes(5) && listed.includes(6), `listed ${listed.join(',')}`);
    assert.ok(!listed.includes(2) && !listed.includes(3), 'the lost seqs are not listed');
    assert.ok(window.segments.find((s) => s.seq === 4)!.discontinuity, 'the seq after the loss starts a discontinuity');
    assert.ok(h.released.includes(2) && h.released.includes(3), `lost seqs released, not charged (released ${h.released.join(',')})`);
    assert.deepEqual(h.settled.filter((seq) => h.released.includes(seq)), [], 'no seq both charged and released');
    assert.equal(h.runners[0]!.ladders.length, 2, 'the session was handed over and taken again, with a new ladder');
  } finally {
    await writer.close();
    await h.close();
  }
});

test('a session opened wakes a transcoder with a free slot through the bus: claimed at once, with no poll and long before the next scan', async () => {
  const keys = new RedisKeys('mgtest-bus');
  const index = newIndex(keys);
  const store = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
  // Without newestOpenedAtMs the runner has no poll: only its scans (every 10 s with a 20 s target) and the bus.
  const sessions: RunnerSessions = {
    unowned: (limit) => store.unowned(limit), claim: (...a) => store.claim(...a), renew: (...a) => store.renew(...a), source: (...a) => store.source(...a),
    progress: (...a) => store.progress(...a), release: (...a) => store.release(...a), finish: (...a) => store.finish(...a),
    advertise: (...a) => store.advertise(...a), withdraw: (id) => store.withdraw(id),
  };
  const reader = new LiveFeedReader({ redis: testRedis.connections.open('feed-bus', 'blocking'), keys, logger: silentLogger(), blockMs: 100 });
  const runner = new LiveSessionRunner({
    sessions, feed: reader, logger: silentLogger(), slots: 1, jobsInFlight: () => 0, segmentTargetMs: 20_000, id: 'bus0',
    results: { completed: async () => undefined, failedForGood: async () => undefined },
    storage: { putBytes: async (_key, data) => ({ sizeBytes: data.length }) },
    startLadder: () => new StandInLadder(),
  });
  const woken: string[] = [];
  const bus = new LiveSessionBus({ subscriber: testRedis.connections.open('bus-sub', 'blocking'), keys, logger: silentLogger(), onOpened: (m) => { woken.push(m); runner.wake(); } });
  try {
    runner.start();
    // The start's own scan has found nothing, and the subscription is in place.
    await waitFor('subscribed', async () => Number((await testRedis.connections.open('state').pubsub('NUMSUB', keys.key('transcode', 'live-opened')) as [string, number])[1]) === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(runner.owned, 0);
    await openStream(index, store, 'bus-a');
    await waitFor('the session is claimed', () => runner.owned === 1, 5000);
    assert.deepEqual(woken, ['bus-a:s1']);
  } finally {
    await bus.close();
    await runner.close();
    await reader.close();
  }
});
