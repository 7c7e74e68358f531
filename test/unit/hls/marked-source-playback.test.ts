/**
 * Playback of a stream whose watermark has applyToSource (its plan flags the marked copy of the
 * source, `replacesSource`): the master leaves `source` out, `source.m3u8` and source segments
 * answer 404 naming applyToSource, the marked copy and the thumbnail (an internal reader of the
 * source) are served. The playback router on real HTTP (127.0.0.1) with a stand-in index and
 * store; the gateway-process test (test/integration/transcode/watermark-gateway.test.ts) shows
 * the same on a published clip.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { createPlaybackRouter, sourceWithheld, type PlaybackIndex, type PlaybackStream } from '../../../src/hls/playback.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { createLogger } from '../../../src/log/logger.ts';
import type { RenditionPlan } from '../../../src/domain/profile.ts';

const servers: Server[] = [];
after(() => { for (const s of servers) s.close(); });

const LOW: RenditionPlan = { name: 'P240p30fps16x9', width: 426, height: 240, bitrateBps: 224_000 };
const COPY: RenditionPlan = { name: 'source-marked', width: 640, height: 360, bitrateBps: 505_000, replacesSource: true };

function index(renditions: readonly RenditionPlan[]): PlaybackIndex {
  const stream: PlaybackStream = { session: 'abc', state: 'live', renditions, warnings: [] };
  const statsOf = (r: string) => ({
    count: 3, width: r === LOW.name ? 426 : 640, height: r === LOW.name ? 240 : 360, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24,
    peakBps: r === LOW.name ? 300_000 : r === 'source' ? 600_000 : 640_000, averageBps: 1,
  });
  const windowOf = (r: string) => ({
    stats: statsOf(r), complete: false,
    segments: [0, 1, 2].map((seq) => ({ seq, durationMs: 2000, discontinuity: false, discontinuityCount: 0 })),
  });
  return {
    getStream: async (m) => (m === 'cam' ? stream : undefined),
    renditionStats: async (_m, r) => statsOf(r),
    renditionWindow: async (_m, r) => windowOf(r),
    streamWindow: async (m, r) => (m === 'cam' ? { stream, window: windowOf(r) } : undefined),
  };
}

async function serve(renditions: readonly RenditionPlan[]): Promise<string> {
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
  const app = createHttpApp({
    logger: createLogger({ level: 'silent' }),
    routers: [createPlaybackRouter({
      index: index(renditions), windowSegments: 6, segmentTargetMs: 2000,
      storage: { getStream: async () => ({ stream: Readable.from([Buffer.from('ts')]), sizeBytes: 2 }) },
      thumbnails: { get: async () => jpeg },
    })],
    health: async () => ({ status: 'ok', checks: {} }),
  });
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/stream/cam`;
}

const uris = (master: string): string[] => master.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

test('applyToSource: the master lists the marked copy and the ladder, not the source; the source answers 404 naming applyToSource', async () => {
  const base = await serve([LOW, COPY]);
  assert.deepEqual(uris(await (await fetch(`${base}.m3u8`)).text()), ['cam/source-marked.m3u8', 'cam/P240p30fps16x9.m3u8']);
  for (const path of ['/source.m3u8', '/source/1.ts']) {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 404, path);
    const body = (await res.json()) as { detail: { msg: string; code: string } };
    assert.equal(body.detail.code, 'NOT_FOUND');
    assert.equal(body.detail.msg, 'the source of stream cam is not served to players: its watermark has applyToSource; play its marked copy, rendition source-marked');
  }
  assert.equal((await fetch(`${base}/source-marked.m3u8`)).status, 200);
  assert.equal((await fetch(`${base}/source-marked/1.ts`)).status, 200);
  assert.equal((await fetch(`${base}/thumbnail.jpg`)).status, 200, 'the thumbnail still reads the source');
});

test('without applyToSource the source is listed first and served', async () => {
  const base = await serve([LOW]);
  assert.deepEqual(uris(await (await fetch(`${base}.m3u8`)).text()), ['cam/source.m3u8', 'cam/P240p30fps16x9.m3u8']);
  assert.equal((await fetch(`${base}/source.m3u8`)).status, 200);
  assert.equal((await fetch(`${base}/source/1.ts`)).status, 200);
  assert.equal(sourceWithheld({ renditions: [LOW] }), false);
  assert.equal(sourceWithheld({ renditions: [LOW, COPY] }), true);
});
