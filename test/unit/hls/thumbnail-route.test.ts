/**
 * The live thumbnail route's answers that the gateway-process test (test/integration/hls/
 * thumbnail-route.test.ts) does not reach: thumbnails switched off, an ended stream, a stream
 * with no segment yet, a segment gone from the store and a failed decode. The playback router
 * on real HTTP (127.0.0.1) with a stand-in index and thumbnail maker.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, test } from 'node:test';
import { createPlaybackRouter, type PlaybackIndex, type PlaybackOptions, type PlaybackStream } from '../../../src/hls/playback.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { ThumbnailError } from '../../../src/media/thumbnail.ts';

const servers: Server[] = [];
after(() => { for (const s of servers) s.close(); });

function index(state: 'live' | 'ended', listed: number): PlaybackIndex {
  const stream: PlaybackStream = { session: 'abc', state, renditions: [], warnings: [] };
  const stats = { count: listed, width: 640, height: 360, codecs: 'avc1.64001e', frameRate: 24, peakBps: 1, averageBps: 1 };
  const window = {
    stats, complete: state === 'ended',
    segments: listed > 0 ? [{ seq: listed - 1, durationMs: 4200, discontinuity: false, discontinuityCount: 0 }] : [],
  };
  return {
    getStream: async (m) => (m === 'cam' ? stream : undefined),
    renditionStats: async () => stats,
    renditionWindow: async () => window,
    streamWindow: async (m) => (m === 'cam' ? { stream, window } : undefined),
  };
}

async function serve(options: Partial<PlaybackOptions> & Pick<PlaybackOptions, 'index'>): Promise<string> {
  const app = createHttpApp({
    logger: createLogger({ level: 'silent' }),
    routers: [createPlaybackRouter({ storage: { getStream: async () => undefined }, windowSegments: 6, segmentTargetMs: 2000, ...options })],
    health: async () => ({ status: 'ok', checks: {} }),
  });
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/stream/cam/thumbnail.jpg`;
}

const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);

test('thumbnails switched off: 404 naming the setting', async () => {
  const res = await fetch(await serve({ index: index('live', 3) }));
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as { detail: { msg: string } }).detail.msg, /thumbnails\.enabled/);
});

test('live: cached for the segment\'s whole seconds; ended: 60 s; the ETag names session and seq; the keys are the session\'s', async () => {
  const asked: string[][] = [];
  const thumbnails = { get: async (segmentKey: string, thumbnailKey: string) => { asked.push([segmentKey, thumbnailKey]); return jpeg; } };
  const live = await fetch(await serve({ index: index('live', 3), thumbnails }));
  assert.equal(live.status, 200);
  assert.equal(live.headers.get('cache-control'), 'public, max-age=4');
  assert.equal(live.headers.get('etag'), '"abc-2"');
  assert.deepEqual(Buffer.from(await live.arrayBuffer()), jpeg);
  assert.deepEqual(asked, [['cam/abc/source/2.ts', 'cam/abc/thumbnails/2.jpg']]);
  const ended = await fetch(await serve({ index: index('ended', 3), thumbnails }));
  assert.equal(ended.headers.get('cache-control'), 'public, max-age=60');
});

test('no segment yet: 404 with Retry-After; the segment gone from the store: 404, retry in 1 s', async () => {
  const none = await fetch(await serve({ index: index('live', 0), thumbnails: { get: async () => jpeg } }));
  assert.equal(none.status, 404);
  assert.equal(none.headers.get('retry-after'), '2');
  const gone = await fetch(await serve({ index: index('live', 3), thumbnails: { get: async () => undefined } }));
  assert.equal(gone.status, 404);
  assert.equal(gone.headers.get('retry-after'), '1');
  assert.equal(gone.headers.get('etag'), null, 'no validator on an error');
});

test('a decode that fails: 422 TRANSCODE_FAILED naming the segment, not cached', async () => {
  const res = await fetch(await serve({ index: index('live', 3), thumbnails: { get: async () => { throw new ThumbnailError('failed', 'ffmpeg exited with 1'); } } }));
  assert.equal(res.status, 422);
  assert.equal(res.headers.get('cache-control'), null);
  const body = (await res.json()) as { detail: { msg: string; code: string } };
  assert.equal(body.detail.code, 'TRANSCODE_FAILED');
  assert.match(body.detail.msg, /cam\/source\/2\.ts/);
});
