/**
 * RecordingStore.keepSegment against a real redis-server: a session known not to be recorded
 * costs no Redis round trip per segment (it was one HMGET per segment of every rendition),
 * while a recorded session still keeps every segment.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { commandStats, commandStatsDelta, startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { RecordingStore, type KeptSegment } from '../../../src/recording/recording-store.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';

let redis: TestRedis;
let client: Redis;

before(async () => {
  redis = await startRedis();
  client = createRedis({ url: redis.url, logger: createLogger({ level: 'silent' }), name: 'test' });
});

after(async () => {
  client?.disconnect();
  await redis?.stop();
});

const segment = (seq: number): KeptSegment => ({ seq, durationMs: 2000, discontinuity: false, bytes: 1000, width: 640, height: 360, codecs: 'avc1.64001e', frameRate: 24 });

test('a session opened as not recorded keeps and drops its segments without a Redis command', async () => {
  const store = new RecordingStore({ redis: client, keys: new RedisKeys('k1') });
  await store.opened({ manifestID: 'cam', session: 's1', startedAtMs: Date.now(), record: false });
  const before = await commandStats(redis.url);
  for (let seq = 0; seq < 5; seq++) await store.keepSegment('cam', 's1', 'source', segment(seq));
  await store.dropSegment('cam', 's1', 'source', 4);
  const delta = commandStatsDelta(before, await commandStats(redis.url));
  delete delta['info'];
  assert.deepEqual(delta, {});
  assert.equal((await store.keptSegments('cam', 's1')).size, 0);
});

test('a store that did not open the session reads that it is not recorded once, then sends nothing more per segment', async () => {
  const opener = new RecordingStore({ redis: client, keys: new RedisKeys('k2') });
  const other = new RecordingStore({ redis: client, keys: new RedisKeys('k2') });
  await opener.opened({ manifestID: 'cam', session: 's1', startedAtMs: Date.now(), record: false });
  const before = await commandStats(redis.url);
  for (let seq = 0; seq < 5; seq++) await other.keepSegment('cam', 's1', '360p', segment(seq));
  const delta = commandStatsDelta(before, await commandStats(redis.url));
  assert.equal(delta['hmget'], 1);
  assert.equal(delta['hset'], undefined);
  assert.equal((await other.keptSegments('cam', 's1')).size, 0);
});

test('a recorded session keeps every segment, from the store that opened it and from another', async () => {
  const opener = new RecordingStore({ redis: client, keys: new RedisKeys('k3') });
  const other = new RecordingStore({ redis: client, keys: new RedisKeys('k3') });
  await opener.opened({ manifestID: 'cam', session: 's1', startedAtMs: Date.now(), record: true });
  for (let seq = 0; seq < 3; seq++) {
    await opener.keepSegment('cam', 's1', 'source', segment(seq));
    await other.keepSegment('cam', 's1', '360p', segment(seq));
  }
  await opener.dropSegment('cam', 's1', 'source', 2);
  const kept = await other.keptSegments('cam', 's1');
  assert.deepEqual(kept.get('source')?.map((s) => s.seq), [0, 1]);
  assert.deepEqual(kept.get('360p')?.map((s) => s.seq), [0, 1, 2]);
});

test('a session not opened yet is not remembered as unrecorded: once opened as recorded, its segments are kept', async () => {
  const store = new RecordingStore({ redis: client, keys: new RedisKeys('k4') });
  await store.keepSegment('cam', 's1', 'source', segment(0));
  await store.opened({ manifestID: 'cam', session: 's1', startedAtMs: Date.now(), record: true });
  await store.keepSegment('cam', 's1', 'source', segment(1));
  assert.deepEqual((await store.keptSegments('cam', 's1')).get('source')?.map((s) => s.seq), [1]);
});
