/**
 * What an RTMP publish keeps in memory inside the gateway process (issue 14 goal 1, memory per
 * stream): node-media-server makes an FLV parser with a 1 MiB zeroed buffer for every RTMP
 * connection and never uses it on the RTMP path; RtmpServer frees it
 * (nms-adapter.ts `releaseUnusedFlvParser`). Measured as the process's ArrayBuffer memory
 * after a full GC, with 4 real ffmpeg publishers live.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RtmpServer } from '../../../src/ingest/rtmp/rtmp-server.ts';
import { captureLogger, freePort, gop2Clip, publish, removeDir, requireMediaTools, secretKey, tempDir, waitFor, type Publisher } from './helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const { logger } = captureLogger();
const dir = tempDir('rtmp-mem');
let port = 0;
let server: RtmpServer;
let accepted = 0;

before(async () => {
  requireMediaTools();
  port = await freePort();
  server = new RtmpServer({
    port, logger, storePath: path.join(dir, 'nms-store'),
    onPublish: async (req) => {
      accepted += 1;
      server.flvTags(req.sessionId)!.read({ tag: () => undefined, end: () => undefined });
      return { accept: true };
    },
    onUnpublish: () => undefined,
  });
  await server.start();
});

after(async () => {
  await server.close();
  removeDir(dir);
});

const MiB = 1024 * 1024;

/** ArrayBuffer bytes still referenced: V8 frees dead backing stores concurrently after a GC, so collect a few times with pauses. */
async function liveArrayBuffers(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 200));
  }
  gc();
  return process.memoryUsage().arrayBuffers;
}

test('a live RTMP publish keeps well under 1 MiB of buffers in the gateway process (no unused 1 MiB FLV parser buffer)', { timeout: 60_000 }, async () => {
  const clip = await gop2Clip();
  const n = 4;
  const before = await liveArrayBuffers();
  const publishers: Publisher[] = [];
  try {
    for (let i = 0; i < n; i++) publishers.push(publish(port, secretKey(`mem${i}`), clip));
    await waitFor('every publish accepted', () => accepted === n, 20_000);
    await new Promise((r) => setTimeout(r, 2500)); // a GOP and more of media through each
    const perStreamMiB = ((await liveArrayBuffers()) - before) / MiB / n;
    // What stays: NMS's RTMP chunk reassembly buffers (the largest message + 1 KiB, per chunk stream) and its cached configs.
    assert.ok(perStreamMiB < 0.5, `ArrayBuffer memory per live publish: ${perStreamMiB.toFixed(3)} MiB`);
  } finally {
    for (const p of publishers) p.kill();
    await Promise.all(publishers.map((p) => p.exited));
  }
});
