/**
 * What an RTMP publish keeps in memory inside the gateway process (issue 14 goal 1, memory per
 * stream): node-media-server makes an FLV parser with a 1 MiB zeroed buffer for every RTMP
 * connection and never uses it on the RTMP path; RtmpServer frees it
 * (nms-adapter.ts `releaseUnusedFlvParser`). Measured as the process's ArrayBuffer memory
 * after a full GC, with 4 real ffmpeg publishers live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  captureLogger, gop2Clip, publish, secretKey, waitFor, type Publisher, useRtmpServer, type RtmpServerFixture,
} from './helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const { logger } = captureLogger();
let accepted = 0;

const rtmp: RtmpServerFixture = useRtmpServer('rtmp-mem', {
  logger,
  onPublish: async (req) => {
    accepted += 1;
    rtmp.server.flvTags(req.sessionId)!.read({ tag: () => undefined, end: () => undefined });
    return { accept: true };
  },
  onUnpublish: () => undefined,
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
    for (let i = 0; i < n; i++) publishers.push(publish(rtmp.port, secretKey(`mem${i}`), clip));
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
