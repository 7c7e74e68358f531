/**
 * Publishes RtmpServer must refuse, and what the refused and the legitimate publisher see.
 * One RtmpServer for the file (NMS is a per-process singleton); tests run in sequence.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { PublishDecision, PublishRequest } from '../../../src/ingest/rtmp/rtmp-options.ts';
import { RtmpSegmenter, type SegmentInfo, type SegmenterEndInfo } from '../../../src/ingest/rtmp-segmenter.ts';
import {
  captureLogger, firstPts, gop2Clip, publish, secretKey, waitFor, useRtmpServer, type RtmpServerFixture,
} from './helpers.ts';

const { logger, lines } = captureLogger();
let clip = '';
const publishes: PublishRequest[] = [];
const unpublishes: string[] = [];
/** Per-test decision; default accept. */
let decide: (req: PublishRequest) => Promise<PublishDecision> | PublishDecision = () => ({ accept: true });

const rtmp: RtmpServerFixture = useRtmpServer('rtmp-refuse', {
  logger,
  publishDecisionTimeoutMs: 1500,
  onPublish: (req) => {
    publishes.push(req);
    return decide(req);
  },
  onUnpublish: (sessionId) => {
    unpublishes.push(sessionId);
  },
});
const { dir } = rtmp;

before(async () => {
  clip = await gop2Clip();
});

function reset(): void {
  publishes.length = 0;
  unpublishes.length = 0;
  decide = () => ({ accept: true });
}

test('a denied publish makes the publisher exit non-zero quickly, without onUnpublish', async () => {
  reset();
  decide = async () => {
    await new Promise((r) => setTimeout(r, 200));
    return { accept: false, reason: 'unknown stream key' };
  };
  const t0 = Date.now();
  const exit = await publish(rtmp.port, secretKey('deny'), clip).exited;
  assert.notEqual(exit.code, 0);
  assert.ok(exit.atMs - t0 < 3000, `publisher exited after ${exit.atMs - t0} ms`);
  assert.equal(publishes.length, 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(unpublishes, []);
});

test('a throwing or too slow onPublish counts as a refusal', async () => {
  reset();
  decide = () => {
    throw new Error('auth backend down');
  };
  const threw = await publish(rtmp.port, secretKey('throw'), clip).exited;
  assert.notEqual(threw.code, 0);

  decide = () => new Promise<PublishDecision>(() => undefined); // never answers; timeout is 1.5 s
  const t0 = Date.now();
  const slow = await publish(rtmp.port, secretKey('slow'), clip).exited;
  assert.notEqual(slow.code, 0);
  assert.ok(slow.atMs - t0 >= 1400 && slow.atMs - t0 < 5000, `refused after ${slow.atMs - t0} ms`);
  assert.equal(publishes.length, 2);
  assert.deepEqual(unpublishes, []);
});

test('malformed stream names and other apps are refused before onPublish', async () => {
  reset();
  const cases = [
    { name: 'a'.repeat(65), app: 'live' }, // NMS accepts any length; the contract says 1-64
    { name: 'bad.name', app: 'live' }, // NMS refuses it itself but still emits prePublish
    { name: 'good_name', app: 'other' },
  ];
  for (const c of cases) {
    const t0 = Date.now();
    const exit = await publish(rtmp.port, c.name, clip, { app: c.app }).exited;
    assert.notEqual(exit.code, 0, `${c.app}/${c.name.slice(0, 10)} refused`);
    assert.ok(exit.atMs - t0 < 3000);
  }
  assert.deepEqual(publishes, []);
  assert.deepEqual(unpublishes, []);
});

test('a second publisher on a live key is refused while the first keeps going, and onPublish never sees it', async () => {
  reset();
  const key = secretKey('busy');
  const segments: SegmentInfo[] = [];
  let ended: SegmenterEndInfo | undefined;
  let segmenter: RtmpSegmenter | undefined;
  decide = (req) => {
    segmenter = new RtmpSegmenter({ tags: rtmp.server.flvTags(req.sessionId)!, workDir: path.join(dir, 'busy'), logger });
    segmenter.on('segment', (s) => segments.push(s));
    segmenter.on('end', (e) => (ended = e));
    segmenter.start();
    return { accept: true };
  };
  const first = publish(rtmp.port, key, clip);
  await waitFor('first segment', () => segments.length >= 1, 6000);
  const t0 = Date.now();
  const second = await publish(rtmp.port, key, clip).exited;
  assert.notEqual(second.code, 0, 'the second publisher was refused');
  assert.ok(second.atMs - t0 < 3000);

  const firstExit = await first.exited;
  assert.equal(firstExit.code, 0, 'the first publisher streamed to the end');
  await waitFor('segmenter end', () => ended !== undefined, 5000);
  assert.equal(publishes.length, 1, 'onPublish saw only the first publisher');
  assert.deepEqual(unpublishes, [publishes[0]!.sessionId]);

  // The refused publisher's media did not leak into the live stream (NMS relays what a
  // half-closed publisher still sends): 4 contiguous 2 s segments, monotonic timestamps.
  assert.deepEqual(segments.map((s) => s.seq), [0, 1, 2, 3]);
  for (let n = 0; n + 1 < segments.length; n += 1) {
    assert.ok(Math.abs(segments[n]!.durationMs - 2000) <= 50, `seg ${n} lasts ${segments[n]!.durationMs} ms`);
    const a = firstPts(segments[n]!.path).video!;
    const b = firstPts(segments[n + 1]!.path).video!;
    assert.ok(Math.abs(b - a - segments[n]!.durationMs / 1000) < 0.05);
  }
  assert.equal(lines.filter((l) => /Non-monotonous DTS|out of order/.test(l)).length, 0, 'no foreign packets reached the segmenter');
  // Exactly the first publisher's 8 s × 24 fps: not one frame of the refused publisher's media.
  assert.equal(segments.reduce((n, s) => n + (s.probed.video?.frames ?? 0), 0), 192);
});

test('kick() disconnects a live publisher and reports its unpublish', async () => {
  reset();
  const key = secretKey('kick');
  const pub = publish(rtmp.port, key, clip);
  await waitFor('accepted publish', () => rtmp.server.liveSessionIds.length === 1, 5000);
  const sessionId = publishes[0]!.sessionId;
  assert.deepEqual(rtmp.server.liveSessionIds, [sessionId]);
  assert.equal(rtmp.server.kick('no-such-session'), false);
  const t0 = Date.now();
  assert.equal(rtmp.server.kick(sessionId), true);
  const exit = await pub.exited;
  assert.notEqual(exit.code, 0);
  assert.ok(exit.atMs - t0 < 3000);
  await waitFor('onUnpublish', () => unpublishes.length === 1, 2000);
  assert.deepEqual(unpublishes, [sessionId]);
  assert.deepEqual(rtmp.server.liveSessionIds, []);
});

test('the same key can publish again right after the previous publisher left', async () => {
  reset();
  const key = secretKey('again');
  const firstPub = publish(rtmp.port, key, clip, { inputArgs: ['-t', '1'] });
  assert.equal((await firstPub.exited).code, 0);
  await waitFor('first unpublish', () => unpublishes.length === 1, 2000);
  const secondPub = await publish(rtmp.port, key, clip, { inputArgs: ['-t', '1'] }).exited;
  assert.equal(secondPub.code, 0);
  await waitFor('second unpublish', () => unpublishes.length === 2, 2000);
  assert.equal(publishes.length, 2);
});

test('no refused or accepted publish leaked its stream key into the logs', () => {
  assert.deepEqual(lines.filter((l) => /SeCrEt|bad\.name|a{65}/.test(l)), []);
});
