/**
 * The playlist cache (src/hls/playlist-cache.ts) behind the playback router on real HTTP
 * (127.0.0.1), with a real redis-server: the reader (the gateway's index, cache and change
 * bus) and the writer (a second segment index on connections of its own, as a transcoder or
 * another gateway would have) share only Redis. The cache's safety bound is set to 60 s here,
 * so every change seen within the 5 s polls below came through the change messages, not the bound.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { RedisConnections, type Redis } from '../../../src/redis/connections.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisSegmentIndex } from '../../../src/hls/segment-index-store.ts';
import { PlaylistCache } from '../../../src/hls/playlist-cache.ts';
import { PlaylistChangeBus } from '../../../src/hls/playlist-change-bus.ts';
import { createPlaybackRouter, mediaPlaylistReader, playlistHitHandler } from '../../../src/hls/playback.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { SegmentOutcome } from '../../../src/domain/segment.ts';

const MAX_AGE_MS = 60_000;
const POLL_LIMIT_MS = 5000;
const keys = new RedisKeys('mgtest');

let server: TestRedis;
let readerConnections: RedisConnections;
let writerConnections: RedisConnections;
let writerRedis: Redis;
let writer: RedisSegmentIndex;
let cache: PlaylistCache;
let bus: PlaylistChangeBus;
let http: Server;
let base = '';
/** Requests the cache answered before express, as the metrics saw them. */
const fastHits: string[] = [];

before(async () => {
  server = await startRedis();
  readerConnections = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:reader' });
  writerConnections = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:writer' });
  writerRedis = writerConnections.open('state');
  const options = { keys, retainSegments: 32, heartbeatTtlMs: 3_600_000 };
  writer = new RedisSegmentIndex({ redis: writerRedis, ...options });
  const reader = new RedisSegmentIndex({ redis: readerConnections.open('state'), ...options });
  cache = new PlaylistCache({ maxAgeMs: MAX_AGE_MS });
  bus = new PlaylistChangeBus({ subscriber: readerConnections.open('playlist-changes', 'blocking'), keys, logger: silentLogger(), cache });
  const playback = {
    index: reader, windowSegments: 6, segmentTargetMs: 2000, playlistCache: cache,
    // Absolute URIs name the session, so a republish's playlist is told from the old one's.
    segmentBaseUrl: 'https://cdn.example',
    storage: { getStream: async () => undefined },
  };
  const app = createHttpApp({ logger: silentLogger(), routers: [createPlaybackRouter(playback)], health: async () => ({ status: 'ok', checks: {} }) });
  // As the gateway serves (gateway-role.ts): playlists in front of express, the rest through it.
  http = createServer(playlistHitHandler({
    cache, fallback: app, readMedia: mediaPlaylistReader(playback), observe: (method, route) => { fastHits.push(`${method} ${route}`); },
  })).listen(0, '127.0.0.1');
  await new Promise((resolve) => http.once('listening', resolve));
  base = `http://127.0.0.1:${(http.address() as { port: number }).port}/stream`;
  await until(() => cache.live, 'the change subscription is in place');
});

after(async () => {
  http?.close();
  await bus?.close();
  await readerConnections?.close();
  await writerConnections?.close();
  await server?.stop();
});

function ok(seq: number): SegmentOutcome {
  return { status: 'ok', seq, segment: { rendition: 'source', key: `k/${seq}.ts`, width: 640, height: 360, frames: 48, bytes: 250_000, durationMs: 2000, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24 } };
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + POLL_LIMIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not within ${POLL_LIMIT_MS} ms: ${what}`);
    await sleep(20);
  }
}

async function playlist(name: string): Promise<string> {
  const res = await fetch(`${base}/${name}/source.m3u8`);
  const body = await res.text();
  assert.equal(res.status, 200, body);
  return body;
}

const seqsOf = (body: string): string[] => body.split('\n').filter((l) => l.startsWith('https://'));

/** Polls the playlist until `test` holds; returns that body. */
async function pollFor(name: string, test: (body: string) => boolean, what: string): Promise<string> {
  let last = '';
  await until(async () => test(last = await playlist(name)), what);
  return last;
}

test('a segment listed by another process shows in the polls after its listing, while repeated polls in between are served from the cache', async () => {
  await writer.startStream('cam', 's1', 1000);
  await writer.record('cam', 's1', ok(0));
  await pollFor('cam', (b) => b.includes('/s1/source/0.ts'), 'seq 0 listed');
  const hitsBefore = cache.stats.hits;
  const same = await playlist('cam');
  assert.equal(await playlist('cam'), same);
  assert.ok(cache.stats.hits >= hitsBefore + 2, `repeated polls are hits (${cache.stats.hits - hitsBefore})`);
  const hit = await fetch(`${base}/cam/source.m3u8`);
  assert.equal(hit.headers.get('access-control-allow-origin'), '*', 'a kept reply has the CORS headers of a read one');
  assert.equal(hit.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  assert.equal(hit.headers.get('cache-control'), 'no-cache');
  assert.equal(await hit.text(), same);
  assert.equal(fastHits.at(-1), 'GET /stream/*path', 'answered before express, timed under the playback route');
  assert.equal((await fetch(`${base}/cam/source.m3u8`, { method: 'HEAD' })).headers.get('content-length'), String(Buffer.byteLength(same)));
  // Not a cached name: express answers (the master's cache name is no rendition).
  assert.equal((await fetch(`${base}/cam/.master.m3u8`)).status, 400);
  // Not found: the playback router behind express answers with its message.
  const unknown = await fetch(`${base}/nosuch/source.m3u8`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { detail: { msg: string } }).detail.msg, 'stream nosuch not found');
  const noRendition = await fetch(`${base}/cam/P999p.m3u8`);
  assert.equal(noRendition.status, 404);
  assert.equal(((await noRendition.json()) as { detail: { msg: string } }).detail.msg, 'stream cam has no rendition P999p');

  await writer.record('cam', 's1', ok(1));
  const body = await pollFor('cam', (b) => b.includes('/s1/source/1.ts'), 'seq 1 listed by the writer');
  assert.deepEqual(seqsOf(body), ['https://cdn.example/cam/s1/source/0.ts', 'https://cdn.example/cam/s1/source/1.ts']);
});

test('the end of the stream, written elsewhere, gives EXT-X-ENDLIST', async () => {
  await writer.startStream('ends', 's1', 1000);
  await writer.record('ends', 's1', ok(0));
  await pollFor('ends', (b) => b.includes('/s1/source/0.ts'), 'seq 0 listed');
  assert.ok(!(await playlist('ends')).includes('#EXT-X-ENDLIST'));
  await writer.endStream('ends', 's1', 1, Date.now());
  const body = await pollFor('ends', (b) => b.includes('#EXT-X-ENDLIST'), 'ENDLIST after the end');
  assert.deepEqual(seqsOf(body), ['https://cdn.example/ends/s1/source/0.ts']);
});

test('a republish (new session) is served instead of the old session, and the old session never comes back', async () => {
  await writer.startStream('again', 's1', 1000);
  await writer.record('again', 's1', ok(0));
  await writer.record('again', 's1', ok(1));
  await pollFor('again', (b) => b.includes('/s1/source/1.ts'), 'old session listed');
  await writer.startStream('again', 's2', 2000);
  await writer.record('again', 's2', ok(0));
  await pollFor('again', (b) => b.includes('/s2/source/0.ts'), 'new session listed');
  for (let i = 0; i < 20; i += 1) {
    const body = await playlist('again');
    assert.ok(!body.includes('/s1/'), `poll ${i} after the new session showed lists the old one:\n${body}`);
  }
});

test('a dropped change subscription drops every kept reply; the cache is used again once subscribed anew', async () => {
  await writer.startStream('kill', 's1', 1000);
  await writer.record('kill', 's1', ok(0));
  await pollFor('kill', (b) => b.includes('/s1/source/0.ts'), 'seq 0 listed');
  // A change nobody announces (a lost message): the kept reply goes on being served.
  const item = JSON.stringify({ seq: 1, d: 2000, disc: false, ds: 0 });
  await writerRedis.multi().rpush(keys.key('list', 'kill', 'source'), item).hincrby(keys.key('rend', 'kill', 'source'), 'count', 1)
    .hset(keys.key('rend', 'kill', 'source'), 'frontier', 2).exec();
  assert.ok(!(await playlist('kill')).includes('/s1/source/1.ts'), 'the unannounced change is not seen while the reply is kept');
  assert.ok(cache.stats.entries > 0);

  const closed = once(readerConnections.open('playlist-changes', 'blocking'), 'close');
  const killed = await writerRedis.call('CLIENT', 'KILL', 'TYPE', 'pubsub') as number;
  assert.ok(Number(killed) >= 1, 'the subscriber connection was killed');
  await closed;
  assert.equal(cache.live, false, 'not used while the subscription is down');
  assert.equal(cache.stats.entries, 0, 'dropped at the close');
  await until(() => cache.live, 'subscribed again after the reconnect');
  assert.ok((await playlist('kill')).includes('/s1/source/1.ts'), 'read afresh after the reconnect');
  // Live again: a listing announced after the reconnect is seen.
  await writer.record('kill', 's1', ok(2));
  await pollFor('kill', (b) => b.includes('/s1/source/2.ts'), 'seq 2 after the reconnect');
});

test('master playlists are kept and dropped the same way (a rendition set elsewhere shows)', async () => {
  await writer.startStream('master', 's1', 1000);
  await writer.record('master', 's1', ok(0));
  const master = async (): Promise<string> => (await fetch(`${base}/master.m3u8`)).text();
  await until(async () => (await master()).includes('master/source.m3u8'), 'master listed');
  assert.ok(!(await master()).includes('P144p'));
  await writer.setRenditions('master', 's1', [{ name: 'P144p30fps16x9', width: 256, height: 144, bitrateBps: 400_000 }]);
  await until(async () => (await master()).includes('master/P144p30fps16x9.m3u8'), 'the rendition set by the writer');
});
