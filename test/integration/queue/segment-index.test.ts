import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { createRedis, type Redis } from '../../../src/queue/redis.ts';
import { RedisSegmentIndex } from '../../../src/queue/segment-index.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { SegmentOutcome } from '../../../src/domain/segment.ts';

let server: TestRedis;
let redis: Redis;
let index: RedisSegmentIndex;

before(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url, logger: silentLogger(), name: 'test' });
  index = new RedisSegmentIndex({ redis, prefix: 'mgtest', retainSegments: 4 });
});
after(async () => {
  redis.disconnect();
  await server.stop();
});

function ok(rendition: string, seq: number, bytes = 250_000, durationMs = 2000): SegmentOutcome {
  return { status: 'ok', seq, segment: { rendition, key: `m/${rendition}/${seq}.ts`, width: 640, height: 360, frames: 48, bytes, durationMs, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24 } };
}

test('results that arrive out of order are listed in sequence order', async () => {
  await index.startStream('ooo', 's1', 1000);
  assert.equal(await index.record('ooo', 's1', ok('low', 2)), 0);
  assert.equal(await index.record('ooo', 's1', ok('low', 1)), 0);
  const stream = (await index.getStream('ooo'))!;
  assert.equal((await index.renditionWindow('ooo', 'low', 6, stream)).segments.length, 0, 'nothing listed while seq 0 is missing');
  assert.equal(await index.record('ooo', 's1', ok('low', 0)), 3);
  const w = await index.renditionWindow('ooo', 'low', 6, stream);
  assert.deepEqual(w.segments.map((s) => s.seq), [0, 1, 2]);
  assert.equal(w.stats.count, 3);
  assert.equal(w.stats.peakBps, 1_000_000);
  assert.equal(w.complete, false);
});

test('a repeated result is ignored, so redelivery cannot list a segment twice', async () => {
  await index.startStream('dup', 's1', 1000);
  await index.record('dup', 's1', ok('low', 0));
  assert.equal(await index.record('dup', 's1', ok('low', 0)), 0);
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
  assert.equal(await index.record('again', 'old', ok('low', 1)), -1);
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

test('a push claim left pending past its lease is taken over by the next push of the same bytes; a live one is not', async () => {
  const lease = { leaseMs: 300 };
  assert.deepEqual(await index.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'new' });
  assert.deepEqual(await index.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'same', state: 'pending' }, 'within the lease: the retry waits for the first push');
  assert.deepEqual(await index.claimPush('lease', 's1', 0, 'bbb', lease), { claim: 'conflict' });
  await new Promise((r) => setTimeout(r, 400));
  // The first push never settled (its gateway lost Redis mid-push): the retry owns the work now.
  assert.deepEqual(await index.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'new' });
  assert.deepEqual(await index.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'same', state: 'pending' }, 'the take-over renewed the lease');
  await index.settlePush('lease', 's1', 0, 'done', '[]');
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(await index.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'same', state: 'done', result: '[]' }, 'a settled claim is answered from its result, whatever its age');
});
