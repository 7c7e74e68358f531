/**
 * The benchmarks' light RTMP load generator (bench/lib/publisher-pool.ts, one process for
 * many streams) stands in for `ffmpeg -re -c copy -f flv` publishers, so it must send what
 * they send: every audio/video tag of the FLV file, in order, byte for byte, with the file's
 * timestamps, never ahead of real time; and a publish the server refuses must show as exited.
 * The server is our own RtmpServer with its packet tap (src/ingest/rtmp/packet-tap.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { RtmpServer } from '../../../src/ingest/rtmp/rtmp-server.ts';
import type { PublishDecision, PublishRequest } from '../../../src/ingest/rtmp/rtmp-options.ts';
import { asFlv } from '../../../bench/lib/inputs.ts';
import { readFlvFile } from '../../../bench/lib/flv-file.ts';
import { startPublisherPool, type PublisherPool } from '../../../bench/lib/publisher-pool.ts';
import { captureLogger, freePort, gop2Clip, removeDir, requireMediaTools, secretKey, tempDir, waitFor } from '../ingest/helpers.ts';

const { logger } = captureLogger();
const dir = tempDir('bench-pool');
let port = 0;
let server: RtmpServer;
let flv = '';
let pool: PublisherPool | undefined;
let decide: (req: PublishRequest) => PublishDecision = () => ({ accept: true });

before(async () => {
  requireMediaTools();
  flv = await asFlv(await gop2Clip());
  port = await freePort();
  server = new RtmpServer({ port, logger, storePath: path.join(dir, 'nms-store'), onPublish: async (req) => decide(req), onUnpublish: () => undefined });
  await server.start();
});

after(async () => {
  await pool?.close();
  await server.close();
  removeDir(dir);
});

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a pool stream hands the server every audio/video tag of the file from the first, unmodified, with its timestamps, never ahead of real time', { timeout: 60_000 }, async () => {
  const got: { type: number; tsMs: number; sha1: string; atMs: number }[] = [];
  let ended = false;
  decide = (req) => {
    // Read once the publish is tracked (the decision is awaited after NMS's postPublish).
    setImmediate(() => server.flvTags(req.sessionId)!.read({
      tag: (tag) => {
        const body = tag.subarray(11, tag.length - 4);
        got.push({ type: tag[0]! & 0x1f, tsMs: tag.readUIntBE(4, 3) | (tag[7]! << 24), sha1: sha1(body), atMs: performance.now() });
      },
      end: () => { ended = true; },
    }));
    return { accept: true };
  };
  pool = await startPublisherPool(flv);
  const stream = pool.start('a', `rtmp://127.0.0.1:${port}/live/${secretKey('pool')}`);
  await waitFor('the publish to start', () => stream.startedMs !== undefined, 15_000);
  await sleep(2500);
  const stats = await pool.stats();
  await pool.close();
  await waitFor('the publish to end on the server', () => ended, 15_000);

  const file = readFlvFile(flv).tags.filter((t) => t.type !== 18);
  const av = got.filter((t) => t.type !== 18);
  assert.ok(av.length > 10, `the server got ${av.length} audio/video tags`);
  assert.ok(av.length < file.length, `an 8 s file published for 2.5 s in real time must not arrive whole (${av.length} of ${file.length} tags)`);
  assert.deepEqual(av.map((t) => [t.type, t.tsMs, t.sha1]), file.slice(0, av.length).map((t) => [t.type, t.tsMs, sha1(t.body)]));
  assert.equal(got.filter((t) => t.type === 18).length, 1, 'one metadata message (@setDataFrame onMetaData) before the media');
  // Real time: a tag is written once its DTS has come on the stream's clock (10 ms ticks), so it
  // never reaches the server before publish start + DTS (20 ms allowed for the clock handover).
  const early = av.filter((t) => t.atMs < stream.startedMs! + t.tsMs - 20);
  assert.deepEqual(early.map((t) => t.tsMs), [], 'tags that arrived ahead of real time');
  // Its own count (read before the close: more tags may follow) and send-lag histogram.
  assert.ok(stats.tags > 10 && stats.lagP50Ms !== undefined && stats.lagP50Ms >= 0, `pool stats ${JSON.stringify(stats)}`);
});

test('a publish the server refuses shows as exited, with a reason', { timeout: 60_000 }, async () => {
  decide = () => ({ accept: false, reason: 'bench test refusal' });
  pool = await startPublisherPool(flv);
  const stream = pool.start('refused', `rtmp://127.0.0.1:${port}/live/${secretKey('refused')}`);
  await waitFor('the refused stream to exit', () => stream.exitedMs !== undefined, 15_000);
  assert.ok(typeof stream.error === 'string' && stream.error.length > 0, 'the reason it stopped');
  await pool.close();
});
