/**
 * The recording sweep against a real redis-server and a real filesystem store, with the
 * segment index as an in-memory stand-in (its real behaviour is covered by the gateway tests):
 * several gateways sweeping at once finish a recording exactly once, a session the index does
 * not know yet is left alone, and the retention horizon follows the slowest rendition.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { FsObjectStore } from '../../../src/storage/fs-store.ts';
import { RecordingStore } from '../../../src/recording/recording-store.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RecordingSweeper, type RecordingReadyEvent, type SweptIndex } from '../../../src/recording/recording-sweeper.ts';
import { keepingRecordedSegments } from '../../../src/recording/segment-keeping.ts';
import { segmentKey, thumbnailKey } from '../../../src/domain/segment.ts';
import type { SegmentOutcome } from '../../../src/domain/segment.ts';

let redis: TestRedis;
let client: Redis;
let dir: string;
let prefixCounter = 0;

before(async () => {
  redis = await startRedis();
  client = createRedis({ url: redis.url, logger: createLogger({ level: 'silent' }), name: 'test' });
  dir = mkdtempSync(join(tmpdir(), 'mg-rec-sweep-'));
});

after(async () => {
  client?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface FakeStream { session: string; state: 'live' | 'ended'; startedAtMs: number; endedAtMs?: number; firstSeq: number; renditions: { name: string }[]; frontiers: Record<string, number>; complete: boolean }

function fakeIndex(streams: Map<string, FakeStream>): SweptIndex & { record(m: string, s: string, o: SegmentOutcome): Promise<{ accepted: boolean }> } {
  return {
    getStream: async (m) => streams.get(m),
    renditionStats: async (m, r) => ({ frontier: streams.get(m)?.frontiers[r] ?? 0 }),
    sessionComplete: async (m, s) => streams.get(m)?.session !== s || streams.get(m)!.complete,
    record: async () => ({ accepted: true }),
  };
}

function outcome(rendition: string, seq: number): SegmentOutcome {
  return { status: 'ok', seq, segment: { rendition, key: `x/${seq}.ts`, width: 256, height: 144, frames: 48, bytes: 100_000, durationMs: 2000, codecs: 'avc1.64000c', frameRate: 24 } };
}

function sweeper(store: RecordingStore, index: SweptIndex, objects: FsObjectStore, events: RecordingReadyEvent[], recordingKeepMs = 0): RecordingSweeper {
  return new RecordingSweeper({
    store, index, objects, events: { emit: (e) => events.push(e) }, logger: createLogger({ level: 'silent' }), publicUrl: 'http://gw',
    sweepIntervalMs: 60_000, windowSegments: 2, marginSegments: 1, endedKeepMs: 60_000, recordingKeepMs, resultTtlMs: 0, segmentTargetMs: 2000,
  });
}

test('three gateways sweeping at once finish a recording once: one recording.ready, one set of playlists', async () => {
  const store = new RecordingStore({ redis: client, keys: new RedisKeys(`t${++prefixCounter}`) });
  const objects = new FsObjectStore(join(dir, `o${prefixCounter}`));
  const streams = new Map<string, FakeStream>();
  const index = fakeIndex(streams);
  const kept = keepingRecordedSegments(index, store);
  const startedAtMs = Date.now();
  await store.opened({ manifestID: 'cam', session: 's1', startedAtMs, record: true });
  streams.set('cam', { session: 's1', state: 'live', startedAtMs, firstSeq: 0, renditions: [{ name: '144p' }], frontiers: {}, complete: false });
  for (let seq = 0; seq < 4; seq++) {
    await kept.record('cam', 's1', outcome('source', seq));
    await kept.record('cam', 's1', outcome('144p', seq));
  }
  const events: RecordingReadyEvent[] = [];
  const sweepers = [1, 2, 3].map(() => sweeper(store, index, objects, events));
  // Live: nothing is finished.
  await Promise.all(sweepers.map((s) => s.sweep({ force: true })));
  assert.equal(events.length, 0);
  assert.equal((await store.get('cam', 's1'))?.state, 'open');

  streams.set('cam', { ...streams.get('cam')!, state: 'ended', endedAtMs: Date.now(), complete: true });
  await Promise.all(sweepers.map((s) => s.sweep({ force: true })));
  await Promise.all(sweepers.map((s) => s.sweep({ force: true })));
  assert.equal(events.length, 1, 'recording.ready emitted once');
  assert.deepEqual(Object.keys(events[0]!.mp4Urls), ['source', '144p']);
  assert.equal(events[0]!.durationMs, 8000);
  const recording = await store.get('cam', 's1');
  assert.equal(recording?.state, 'ready');
  const media = readFileSync(join(dir, `o${prefixCounter}`, 'cam', 's1', '144p.m3u8'), 'utf8');
  assert.match(media, /#EXT-X-PLAYLIST-TYPE:VOD/);
  assert.equal(media.split('\n').filter((l) => l.endsWith('.ts')).length, 4);
  assert.ok(existsSync(join(dir, `o${prefixCounter}`, 'cam', 's1', 'index.m3u8')));
  // A segment arriving after the recording is ready changes nothing.
  await kept.record('cam', 's1', outcome('source', 9));
  assert.deepEqual([...(await store.keptSegments('cam', 's1')).keys()], []);
});

test('a recorded session the index does not show yet is not finished (its start is in flight)', async () => {
  const store = new RecordingStore({ redis: client, keys: new RedisKeys(`t${++prefixCounter}`) });
  const objects = new FsObjectStore(join(dir, `o${prefixCounter}`));
  const streams = new Map<string, FakeStream>();
  const index = fakeIndex(streams);
  // The index still holds the previous session, which started earlier.
  streams.set('cam', { session: 'old', state: 'ended', startedAtMs: Date.now() - 60_000, firstSeq: 0, renditions: [], frontiers: {}, complete: true });
  await store.opened({ manifestID: 'cam', session: 'new', startedAtMs: Date.now(), record: true });
  const events: RecordingReadyEvent[] = [];
  await sweeper(store, index, objects, events).sweep({ force: true });
  assert.equal(events.length, 0);
  assert.equal((await store.get('cam', 'new'))?.state, 'open');
});

/** A fresh recording store, object store dir and fake index, with session cam/s1 opened live and not recorded. */
async function openLiveSession(): Promise<{ store: RecordingStore; root: string; objects: FsObjectStore; streams: Map<string, FakeStream>; startedAtMs: number }> {
  const store = new RecordingStore({ redis: client, keys: new RedisKeys(`t${++prefixCounter}`) });
  const root = join(dir, `o${prefixCounter}`);
  const startedAtMs = Date.now();
  await store.opened({ manifestID: 'cam', session: 's1', startedAtMs, record: false });
  return { store, root, objects: new FsObjectStore(root), streams: new Map<string, FakeStream>(), startedAtMs };
}

test('retention of a live session that is not recorded deletes, in every rendition, what is older than the slowest playlist\'s window plus the margin', async () => {
  const { store, root, objects, streams, startedAtMs } = await openLiveSession();
  for (let seq = 0; seq < 10; seq++) {
    for (const r of ['source', '144p']) await objects.putBytes(segmentKey('cam', 's1', r, seq), Buffer.from([seq]));
  }
  // source listed up to 9, the rendition (in transcode) up to 7: horizon 8 - 2 - 1 = 5.
  streams.set('cam', { session: 's1', state: 'live', startedAtMs, firstSeq: 0, renditions: [{ name: '144p' }], frontiers: { source: 10, '144p': 8 }, complete: false });
  const s = sweeper(store, fakeIndex(streams), objects, []);
  await s.sweep({ force: true });
  await s.sweep({ force: true });
  for (const r of ['source', '144p']) {
    const present = Array.from({ length: 10 }, (_, seq) => seq).filter((seq) => existsSync(join(root, segmentKey('cam', 's1', r, seq))));
    assert.deepEqual(present, [5, 6, 7, 8, 9], `${r} keeps seqs from the horizon on`);
  }
  assert.equal((await store.get('cam', 's1'))?.deletedBelow, 5);
});

test('retention deletes the thumbnails made of segments that left the live window, with the segments', async () => {
  const { store, root, objects, streams, startedAtMs } = await openLiveSession();
  for (let seq = 0; seq < 10; seq++) await objects.putBytes(segmentKey('cam', 's1', 'source', seq), Buffer.from([seq]));
  // Thumbnails were asked for at some seqs only (media/thumbnail.ts makes them on request).
  for (const seq of [1, 4, 5, 9]) await objects.putBytes(thumbnailKey('cam', 's1', seq), Buffer.from([seq]));
  streams.set('cam', { session: 's1', state: 'live', startedAtMs, firstSeq: 0, renditions: [], frontiers: { source: 10 }, complete: false });
  const s = sweeper(store, fakeIndex(streams), objects, []);
  await s.sweep({ force: true });
  const present = [1, 4, 5, 9].filter((seq) => existsSync(join(root, thumbnailKey('cam', 's1', seq))));
  assert.deepEqual(present, [9], 'thumbnails below the horizon (10 - 2 - 1 = 7) are gone');
});

test('a recording is deleted recording.deleteAfterS after its stream ended, objects and entry alike', async () => {
  const store = new RecordingStore({ redis: client, keys: new RedisKeys(`t${++prefixCounter}`) });
  const root = join(dir, `o${prefixCounter}`);
  const objects = new FsObjectStore(root);
  const streams = new Map<string, FakeStream>();
  const index = fakeIndex(streams);
  const kept = keepingRecordedSegments(index, store);
  const startedAtMs = Date.now();
  await store.opened({ manifestID: 'cam', session: 's1', startedAtMs, record: true });
  await objects.putBytes(segmentKey('cam', 's1', 'source', 0), Buffer.from([0]));
  await kept.record('cam', 's1', outcome('source', 0));
  streams.set('cam', { session: 's1', state: 'ended', startedAtMs, endedAtMs: Date.now(), firstSeq: 0, renditions: [], frontiers: {}, complete: true });
  const s = sweeper(store, index, objects, [], 500);
  await s.sweep({ force: true });
  assert.equal((await store.get('cam', 's1'))?.state, 'ready');
  assert.ok(existsSync(join(root, 'cam', 's1', 'index.m3u8')));
  assert.deepEqual((await store.recordings('cam')).map((r) => r.session), ['s1']);
  await new Promise((r) => setTimeout(r, 600));
  await s.sweep({ force: true });
  assert.equal(existsSync(join(root, 'cam', 's1')), false, 'its objects are deleted');
  assert.equal(await store.get('cam', 's1'), undefined);
  assert.deepEqual(await store.recordings('cam'), []);
});
