import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import type { Redis } from '../../../src/redis/connections.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisSegmentIndex } from '../../../src/hls/segment-index-store.ts';
import { RedisPushClaims } from '../../../src/ingest/push-claim-store.ts';
import type { SegmentOutcome } from '../../../src/domain/segment.ts';

const testRedis = redisConnectionsForSuite('mediagate:test');
let redis: Redis;
let index: RedisSegmentIndex;
/** The push claims write the set of pushed seqs the index reads to resolve a push gap. */
let claims: RedisPushClaims;
const keys = new RedisKeys('mgtest');

before(async () => {
  await testRedis.ready;
  redis = testRedis.connections.open('state');
  // Heartbeats are tested on their own index; here they must not expire during a test's clock jumps.
  index = new RedisSegmentIndex({ redis, keys, retainSegments: 4, heartbeatTtlMs: 3_600_000 });
  claims = new RedisPushClaims({ redis, keys });
});

function ok(rendition: string, seq: number, bytes = 250_000, durationMs = 2000): SegmentOutcome {
  return { status: 'ok', seq, segment: { rendition, key: `m/${rendition}/${seq}.ts`, width: 640, height: 360, frames: 48, bytes, durationMs, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24 } };
}

test('results that arrive out of order are listed in sequence order', async () => {
  await index.startStream('ooo', 's1', 1000);
  assert.deepEqual(await index.record('ooo', 's1', ok('low', 2)), { accepted: true, listed: 0 });
  assert.deepEqual(await index.record('ooo', 's1', ok('low', 1)), { accepted: true, listed: 0 });
  const stream = (await index.getStream('ooo'))!;
  assert.equal((await index.renditionWindow('ooo', 'low', 6, stream)).segments.length, 0, 'nothing listed while seq 0 is missing');
  assert.deepEqual(await index.record('ooo', 's1', ok('low', 0)), { accepted: true, listed: 3 });
  const w = await index.renditionWindow('ooo', 'low', 6, stream);
  assert.deepEqual(w.segments.map((s) => s.seq), [0, 1, 2]);
  assert.equal(w.stats.count, 3);
  assert.equal(w.stats.peakBps, 1_000_000);
  assert.equal(w.complete, false);
});

test('a repeated result is ignored, so redelivery cannot list a segment twice', async () => {
  await index.startStream('dup', 's1', 1000);
  await index.record('dup', 's1', ok('low', 0));
  assert.deepEqual(await index.record('dup', 's1', ok('low', 0)), { accepted: true, listed: 0 }, 'a repeat of a listed result is accepted (its charge settles once) but not listed again');
  const stream = (await index.getStream('dup'))!;
  assert.deepEqual((await index.renditionWindow('dup', 'low', 6, stream)).segments.map((s) => s.seq), [0]);
});

test('a failed segment is skipped and the next listed one carries a discontinuity', async () => {
  await index.startStream('gap', 's1', 1000);
  await index.record('gap', 's1', ok('low', 0));
  await index.record('gap', 's1', { status: 'failed', rendition: 'low', seq: 1, reason: 'boom' });
  await index.record('gap', 's1', ok('low', 2));
  await index.record('gap', 's1', ok('low', 3));
  const stream = (await index.getStream('gap'))!;
  const w = await index.renditionWindow('gap', 'low', 6, stream);
  assert.deepEqual(w.segments.map((s) => [s.seq, s.discontinuity, s.discontinuityCount]), [[0, false, 0], [2, true, 1], [3, false, 1]]);
  assert.equal(w.stats.failed, 1);
});

test('results from an older publish session of the same manifest ID are ignored', async () => {
  await index.startStream('again', 'old', 1000);
  await index.record('again', 'old', ok('low', 0));
  await index.startStream('again', 'new', 2000);
  assert.deepEqual(await index.record('again', 'old', ok('low', 1)), { accepted: false, listed: 0, staleSession: true });
  const stream = (await index.getStream('again'))!;
  assert.equal(stream.session, 'new');
  assert.equal((await index.renditionWindow('again', 'low', 6, stream)).stats.count, 0);
});

test('a rendition is complete once the stream ended and every segment is resolved', async () => {
  await index.startStream('end', 's1', 1000);
  await index.record('end', 's1', ok('low', 0));
  await index.endStream('end', 's1', 2, 5000);
  let stream = (await index.getStream('end'))!;
  assert.equal(stream.state, 'ended');
  assert.equal((await index.renditionWindow('end', 'low', 6, stream)).complete, false);
  await index.record('end', 's1', ok('low', 1));
  stream = (await index.getStream('end'))!;
  assert.equal((await index.renditionWindow('end', 'low', 6, stream)).complete, true);
});

test('the listed history is trimmed to the retained count while the count keeps growing', async () => {
  await index.startStream('long', 's1', 1000);
  for (let seq = 0; seq < 10; seq++) await index.record('long', 's1', ok('low', seq));
  const stream = (await index.getStream('long'))!;
  const w = await index.renditionWindow('long', 'low', 6, stream);
  assert.deepEqual(w.segments.map((s) => s.seq), [6, 7, 8, 9]);
  assert.equal(w.stats.count, 10);
});

test('renditions are set once per session', async () => {
  await index.startStream('plan', 's1', 1000);
  await index.setRenditions('plan', 's1', [{ name: 'low', width: 426, height: 240, bitrateBps: 600_000 }]);
  await index.setRenditions('plan', 's1', [{ name: 'other', width: 1, height: 1, bitrateBps: 1 }]);
  assert.deepEqual((await index.getStream('plan'))!.renditions.map((r) => r.name), ['low']);
});

test('the index keeps its key names (state persisted across versions)', async () => {
  await index.startStream('names', 's1', 1000);
  await index.record('names', 's1', ok('low', 0));
  assert.deepEqual((await redis.keys('mgtest:*:names*')).sort(), ['mgtest:list:names:low', 'mgtest:rend:names:low', 'mgtest:rends:names', 'mgtest:stream:names']);
  assert.notEqual(await redis.zscore('mgtest:streams', 'names'), null);
  assert.notEqual(await redis.zscore('mgtest:heartbeats', 'names'), null);
  await claims.claimPush('names', 's1', 3, 'sha', { leaseMs: 60_000 });
  assert.deepEqual((await redis.keys('mgtest:push*:names*')).sort(), ['mgtest:push:names:s1:3', 'mgtest:pushed:names:s1']);
});

// Overdue segments, stream end and heartbeats. The sweep takes `nowMs`, so "after the bound"
// is a clock argument, not a sleep. The index under test uses the default bound (10 s).
const BOUND_MS = 10_000;

async function listed(m: string, rendition: string): Promise<{ segments: [number, boolean][]; frontier: number; failed: number; complete: boolean }> {
  const stream = (await index.getStream(m))!;
  const w = await index.renditionWindow(m, rendition, 100, stream);
  return { segments: w.segments.map((s) => [s.seq, s.discontinuity]), frontier: w.stats.frontier, failed: w.stats.failed, complete: w.complete };
}

test('a seq missing in one rendition holds its playlist no longer than the bound, then is skipped with a discontinuity', async () => {
  await index.startStream('late', 's1', 1000);
  await index.record('late', 's1', ok('low', 0));
  await index.record('late', 's1', ok('low', 2));
  await index.record('late', 's1', ok('low', 3));
  await index.sweep(Date.now() + BOUND_MS / 2);
  assert.deepEqual((await listed('late', 'low')).segments, [[0, false]], 'within the bound the playlist still waits for seq 1');
  await index.sweep(Date.now() + BOUND_MS + 1000);
  const after = await listed('late', 'low');
  assert.deepEqual(after.segments, [[0, false], [2, true], [3, false]]);
  assert.equal(after.failed, 1);
  // The late result is refused: not listed, and the caller is told so (it must not be charged).
  assert.deepEqual(await index.record('late', 's1', ok('low', 1)), { accepted: false, listed: 0 });
  assert.deepEqual((await listed('late', 'low')).segments, [[0, false], [2, true], [3, false]]);
  // A repeat of a listed seq is still accepted (charge-once: it settles the same hold).
  assert.equal((await index.record('late', 's1', ok('low', 2))).accepted, true);
  // Sweeping again changes nothing (idempotent; any gateway may sweep).
  await index.sweep(Date.now() + 2 * BOUND_MS);
  assert.deepEqual(await listed('late', 'low'), after);
});

test('a missing source segment is skipped in every rendition at once, without a second wait', async () => {
  await index.startStream('nosrc', 's1', 1000);
  await index.setRenditions('nosrc', 's1', [{ name: 'low', width: 426, height: 240, bitrateBps: 600_000 }]);
  await index.record('nosrc', 's1', ok('source', 0));
  await index.record('nosrc', 's1', ok('source', 2));
  await index.record('nosrc', 's1', ok('low', 0));
  // Seq 1's source was lost (so it has no transcode); seq 2's transcode is still running.
  await index.sweep(Date.now() + BOUND_MS + 1000);
  assert.deepEqual((await listed('nosrc', 'source')).segments, [[0, false], [2, true]]);
  assert.equal((await listed('nosrc', 'low')).frontier, 2, 'low skipped seq 1 in the same sweep');
  assert.deepEqual(await index.record('nosrc', 's1', ok('low', 2)), { accepted: true, listed: 1 });
  assert.deepEqual((await listed('nosrc', 'low')).segments, [[0, false], [2, true]]);
});

test('the end of a stream resolves everything still missing once in-flight results had the bound, and the rendition completes', async () => {
  await index.startStream('fin', 's1', 1000);
  await index.record('fin', 's1', ok('low', 0));
  await index.record('fin', 's1', ok('low', 2));
  const endedAtMs = Date.now();
  await index.endStream('fin', 's1', 4, endedAtMs);
  await index.sweep(endedAtMs + 1);
  assert.equal((await listed('fin', 'low')).complete, false, 'right after the end, missing results still have time');
  await index.sweep(Math.max(endedAtMs, Date.now()) + BOUND_MS + 1000);
  const after = await listed('fin', 'low');
  assert.deepEqual(after.segments, [[0, false], [2, true]]);
  assert.equal(after.frontier, 4);
  assert.equal(after.failed, 2);
  assert.equal(after.complete, true);
  assert.equal((await index.record('fin', 's1', ok('low', 3))).accepted, false);
});

test('a push gap of any size is resolved in one step, in every rendition', async () => {
  await index.startStream('pgap', 's1', 1000, { protocol: 'push', firstSeq: 0 });
  await index.setRenditions('pgap', 's1', [{ name: 'low', width: 426, height: 240, bitrateBps: 600_000 }]);
  for (const seq of [0, 1, 1001]) {
    assert.deepEqual(await claims.claimPush('pgap', 's1', seq, `sha-${seq}`, { leaseMs: 60_000 }), { claim: 'new' });
    await index.record('pgap', 's1', ok('source', seq));
    await index.record('pgap', 's1', ok('low', seq));
  }
  assert.deepEqual((await listed('pgap', 'source')).segments, [[0, false], [1, false]]);
  await index.resolvePushGap('pgap', 's1', 1001);
  for (const r of ['source', 'low']) {
    const after = await listed('pgap', r);
    assert.deepEqual(after.segments, [[0, false], [1, false], [1001, true]], r);
    assert.equal(after.failed, 999, r);
  }
  // A pushed seq between the last pushed one and the gap is not skipped: only never-pushed ones are.
  await claims.claimPush('pgap', 's1', 1003, 'sha-1003', { leaseMs: 60_000 });
  await index.record('pgap', 's1', ok('source', 1004));
  await index.resolvePushGap('pgap', 's1', 1004);
  assert.equal((await listed('pgap', 'source')).frontier, 1002, 'waits for the pushed seq 1003, skipping only 1002');
});

test('a stream whose heartbeat expired is ended by the sweep with endSeq past its highest seq, and completes', async () => {
  const hbIndex = new RedisSegmentIndex({ redis, keys, retainSegments: 4, heartbeatTtlMs: 3000 });
  await hbIndex.startStream('dead', 's1', 1000);
  await hbIndex.setRenditions('dead', 's1', [{ name: 'low', width: 426, height: 240, bitrateBps: 600_000 }]);
  for (const seq of [0, 1, 3]) await hbIndex.record('dead', 's1', ok('source', seq));
  await hbIndex.record('dead', 's1', ok('low', 0));
  const now = Date.now();
  assert.deepEqual(await hbIndex.renewHeartbeats([{ manifestID: 'dead', session: 's1' }], now), []);
  assert.deepEqual((await hbIndex.sweep(now + 1000)).expired, [], 'a renewed heartbeat keeps the stream live');
  assert.equal((await hbIndex.getStream('dead'))!.state, 'live');
  const result = await hbIndex.sweep(now + 3000 + 1000);
  assert.deepEqual(result.expired, ['dead']);
  const stream = (await hbIndex.getStream('dead'))!;
  assert.equal(stream.state, 'ended');
  assert.equal(stream.endSeq, 4, 'one past the highest seq the index knew (3, pending in source)');
  for (const r of ['source', 'low']) assert.equal((await listed('dead', r)).complete, true, r);
  assert.deepEqual((await listed('dead', 'source')).segments, [[0, false], [1, false], [3, true]]);
  // Its former holder learns it lost the stream; a second sweep finds nothing to do.
  assert.deepEqual(await hbIndex.renewHeartbeats([{ manifestID: 'other', session: 'x' }, { manifestID: 'dead', session: 's1' }]),
    [{ manifestID: 'other', session: 'x' }, { manifestID: 'dead', session: 's1' }]);
  assert.deepEqual((await hbIndex.sweep(now + 10_000)).expired, []);
});

test('a stream whose heartbeat expired stays live for the reconnect grace, and a reconnect within it continues the same session after a discontinuity', async () => {
  const graceIndex = new RedisSegmentIndex({ redis, keys, retainSegments: 8, heartbeatTtlMs: 3000, reconnectGraceMs: 20_000 });
  await graceIndex.startStream('blip', 's1', 1000);
  await graceIndex.setRenditions('blip', 's1', [{ name: 'low', width: 426, height: 240, bitrateBps: 600_000 }]);
  for (const seq of [0, 1, 2]) await graceIndex.record('blip', 's1', ok('source', seq));
  for (const seq of [0, 1]) await graceIndex.record('blip', 's1', ok('low', seq));
  const now = Date.now();
  assert.deepEqual(await graceIndex.renewHeartbeats([{ manifestID: 'blip', session: 's1' }], now), []);
  // Expired (the gateway died) but within the grace: not ended.
  assert.deepEqual((await graceIndex.sweep(now + 3000 + 10_000)).expired, []);
  assert.equal((await graceIndex.getStream('blip'))!.state, 'live');

  const resumed = await graceIndex.resumeStream('blip', now + 3000 + 15_000);
  assert.deepEqual(resumed, { session: 's1', nextSeq: 3 }, 'the same session, one past the highest seq it knew');
  for (const seq of [3, 4]) await graceIndex.record('blip', 's1', ok('source', seq));
  await graceIndex.record('blip', 's1', ok('low', 2));
  await graceIndex.record('blip', 's1', ok('low', 3));
  const window = async (r: string): Promise<[number, boolean][]> => {
    const stream = (await graceIndex.getStream('blip'))!;
    return (await graceIndex.renditionWindow('blip', r, 100, stream)).segments.map((s) => [s.seq, s.discontinuity]);
  };
  assert.deepEqual(await window('source'), [[0, false], [1, false], [2, false], [3, true], [4, false]], 'source: the join carries the discontinuity');
  assert.deepEqual(await window('low'), [[0, false], [1, false], [2, false], [3, true]], 'a rendition behind the join: the late seq 2 lists as before, the join carries it');
  // The resume renewed the heartbeat for its new holder: the sweep leaves it live.
  assert.deepEqual((await graceIndex.sweep(now + 3000 + 16_000)).expired, []);
  assert.equal((await graceIndex.getStream('blip'))!.state, 'live');
});

test('past the reconnect grace the sweep ends the stream, and a later publish finds nothing to resume', async () => {
  const graceIndex = new RedisSegmentIndex({ redis, keys, retainSegments: 8, heartbeatTtlMs: 3000, reconnectGraceMs: 5000 });
  await graceIndex.startStream('gone', 's1', 1000);
  await graceIndex.record('gone', 's1', ok('source', 0));
  const now = Date.now();
  await graceIndex.renewHeartbeats([{ manifestID: 'gone', session: 's1' }], now);
  assert.equal(await graceIndex.resumeStream('gone', now + 3000 + 5001), undefined, 'past the grace there is nothing to resume');
  assert.deepEqual((await graceIndex.sweep(now + 3000 + 4000)).expired, [], 'within the grace');
  assert.deepEqual((await graceIndex.sweep(now + 3000 + 5001)).expired, ['gone'], 'ended once the grace passed');
  assert.equal((await graceIndex.getStream('gone'))!.state, 'ended');
  assert.equal(await graceIndex.resumeStream('gone', now + 3000 + 5002), undefined, 'an ended stream is not resumed');
  assert.equal(await graceIndex.resumeStream('never-published'), undefined);
});

test('a media playlist read (the stream and a rendition window) is one round trip to Redis and reads what getStream and renditionWindow read', async () => {
  await index.startStream('one-trip', 's1', 1000);
  await index.setRenditions('one-trip', 's1', [{ name: 'low', width: 640, height: 360, bitrateBps: 800_000 }]);
  for (let seq = 0; seq < 6; seq++) await index.record('one-trip', 's1', ok('low', seq));
  await index.record('one-trip', 's1', ok('source', 0));
  const stream = (await index.getStream('one-trip'))!;
  // Socket writes of the connection while the read runs: one pipeline is one write.
  const socket = (redis as unknown as { stream: { write: (...args: unknown[]) => boolean } }).stream;
  const write = socket.write;
  let writes = 0;
  socket.write = function counted(this: unknown, ...args: unknown[]) { writes += 1; return write.apply(this, args); };
  let read;
  try {
    read = await index.streamWindow('one-trip', 'low', 4);
  } finally {
    socket.write = write;
  }
  assert.equal(writes, 1, 'one write to Redis');
  assert.deepEqual(read, { stream, window: await index.renditionWindow('one-trip', 'low', 4, stream) });
  assert.deepEqual(read!.window.segments.map((s) => s.seq), [2, 3, 4, 5]);
  assert.deepEqual((await index.streamWindow('one-trip', 'source', 4))!.window.segments.map((s) => s.seq), [0]);
  assert.equal((await index.streamWindow('one-trip', 'none', 4))!.window.segments.length, 0, 'a rendition it does not have: an empty window');
  assert.equal(await index.streamWindow('no-such-stream', 'low', 4), undefined);
});
