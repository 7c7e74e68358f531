/**
 * Publishers that do not follow the 2 s keyframe advice: the original clip (keyframes at
 * 0, 10.42, 11.88 s) and an audio-less publish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { PublishRequest } from '../../../src/ingest/rtmp/rtmp-options.ts';
import { RtmpSegmenter, type LongSegmentInfo, type SegmentInfo, type SegmenterEndInfo } from '../../../src/ingest/rtmp-segmenter.ts';
import {
  SOURCE_CLIP, captureLogger, gop2Clip, publish, secretKey, streamTypes, waitFor, useRtmpServer, type RtmpServerFixture,
} from './helpers.ts';

const { logger } = captureLogger();
let onAccept: (req: PublishRequest) => void = () => undefined;

const rtmp: RtmpServerFixture = useRtmpServer('seg-long', {
  logger,
  onPublish: (req) => {
    onAccept(req);
    return { accept: true };
  },
  onUnpublish: () => undefined,
});
const { dir } = rtmp;

function segmentInto(workDir: string): { segments: (SegmentInfo & { atMs: number })[]; longs: LongSegmentInfo[]; end: () => SegmenterEndInfo | undefined; startedAt: () => number } {
  const segments: (SegmentInfo & { atMs: number })[] = [];
  const longs: LongSegmentInfo[] = [];
  let ended: SegmenterEndInfo | undefined;
  let startedAt = 0;
  onAccept = (req) => {
    const s = new RtmpSegmenter({ tags: rtmp.server.flvTags(req.sessionId)!, workDir, logger });
    s.on('segment', (x) => segments.push({ ...x, atMs: Date.now() }));
    s.on('longSegment', (x) => longs.push(x));
    s.on('end', (e) => (ended = e));
    startedAt = Date.now();
    s.start();
  };
  return { segments, longs, end: () => ended, startedAt: () => startedAt };
}

test('a long-GOP publisher gets long segments cut at its keyframes and one longSegment event', async () => {
  const run = segmentInto(path.join(dir, 'long'));
  const exit = await publish(rtmp.port, secretKey('long'), SOURCE_CLIP, { inputArgs: ['-t', '12.5'] }).exited;
  assert.equal(exit.code, 0);
  await waitFor('segmenter end', () => run.end() !== undefined, 5000);
  const end = run.end()!;
  assert.equal(end.reason, 'inputEnded');
  // keyframes at 0, 10.42, 11.88 s: up to 10.42 s is one segment, then a cut at each
  // keyframe until the 2 s grid catches up (media/ts-segmenter.ts). The timeline starts at the
  // first video keyframe, so the first segment is 10.42 s.
  const first = run.segments[0]!;
  assert.ok(first.durationMs >= 10_400 && first.durationMs <= 10_600, `first segment lasts ${first.durationMs} ms`);
  const second = run.segments[1]!;
  assert.ok(Math.abs(second.startMs - (first.startMs + first.durationMs)) <= 5);
  assert.ok(Math.abs(second.durationMs - 1_458) < 60, `second segment lasts ${second.durationMs} ms (keyframe to keyframe)`);
  assert.deepEqual(run.segments.map((s) => s.seq), run.segments.map((_, i) => i));
  assert.equal(run.longs.length, 1, 'longSegment is emitted once per stream');
  assert.deepEqual(run.longs[0], { seq: 0, durationMs: first.durationMs, segmentTargetMs: 2000 });
  assert.equal(end.longSegments, run.segments.filter((s) => s.durationMs > 3000).length);
  assert.ok(end.longSegments >= 1);
});

test('an audio-less publish is segmented without waiting for audio', async () => {
  const clip = await gop2Clip();
  const run = segmentInto(path.join(dir, 'video-only'));
  const exit = await publish(rtmp.port, secretKey('noaudio'), clip, { inputArgs: ['-t', '4'], outputArgs: ['-an'] }).exited;
  assert.equal(exit.code, 0);
  await waitFor('segmenter end', () => run.end() !== undefined, 5000);
  assert.deepEqual(run.segments.map((s) => s.seq), [0, 1]);
  for (const s of run.segments) assert.deepEqual(streamTypes(s.path), ['video']);
  // ffmpeg's default 5 s analyzeduration would hold the first segment until ~5.5 s
  const firstAfterMs = run.segments[0]!.atMs - run.startedAt();
  assert.ok(firstAfterMs < 4500, `first segment ${firstAfterMs} ms after the segmenter started`);
});
