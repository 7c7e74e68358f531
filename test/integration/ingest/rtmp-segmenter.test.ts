/**
 * End to end on loopback: ffmpeg publishes the 2 s-GOP clip over RTMP, RtmpServer accepts,
 * an RtmpSegmenter reads its packets in process and cuts contiguous ~2 s MPEG-TS segments.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import type { PublishRequest } from '../../../src/ingest/rtmp/rtmp-options.ts';
import { RtmpSegmenter, type SegmentInfo, type SegmenterEndInfo, type LongSegmentInfo } from '../../../src/ingest/rtmp-segmenter.ts';
import { childProcesses } from '../../helpers/gateway-process.ts';
import {
  captureLogger, firstPts, gop2Clip, publish, secretKey, waitFor, useRtmpServer, type RtmpServerFixture,
} from './helpers.ts';

const { logger, lines } = captureLogger();
let clip = '';
const publishes: { req: PublishRequest; atMs: number }[] = [];
const unpublishes: { sessionId: string; atMs: number }[] = [];
let onAccepted: ((req: PublishRequest) => void) | undefined;

const rtmp: RtmpServerFixture = useRtmpServer('rtmp-seg', {
  logger,
  onPublish: async (req) => {
    publishes.push({ req, atMs: Date.now() });
    await new Promise((r) => setTimeout(r, 50)); // an async decision, like the auth webhook
    onAccepted?.(req);
    return { accept: true };
  },
  onUnpublish: (sessionId) => {
    unpublishes.push({ sessionId, atMs: Date.now() });
  },
});
const { dir } = rtmp;

before(async () => {
  clip = await gop2Clip();
});

test('a 2 s-GOP publish is cut into ~2 s contiguous segments, in order, and ends when the publisher leaves', async () => {
  const key = secretKey('main');
  const workDir = path.join(dir, 'segments');
  let segmenter: RtmpSegmenter | undefined;
  const segments: (SegmentInfo & { sizeAtEvent: number; atMs: number })[] = [];
  const longs: LongSegmentInfo[] = [];
  let ended: (SegmenterEndInfo & { atMs: number }) | undefined;
  onAccepted = (req) => {
    segmenter = new RtmpSegmenter({ tags: rtmp.server.flvTags(req.sessionId)!, workDir, logger, segmentTargetMs: 2000 });
    segmenter.on('segment', (s) => segments.push({ ...s, sizeAtEvent: statSync(s.path).size, atMs: Date.now() }));
    segmenter.on('longSegment', (l) => longs.push(l));
    segmenter.on('end', (e) => (ended = { ...e, atMs: Date.now() }));
    segmenter.start();
  };

  const publisher = publish(rtmp.port, key, clip);
  await waitFor('first segment', () => segments.length > 0, 10_000);
  // The segmenter runs in this process: the publisher is this process's only media child.
  assert.deepEqual(childProcesses(process.pid).filter((c) => /ffmpeg|ffprobe/.test(c)), [`${publisher.child.pid} ffmpeg`]);
  const exit = await publisher.exited;
  assert.equal(exit.code, 0, 'the publisher streamed the whole clip');
  await waitFor('segmenter end', () => ended !== undefined, 5000);
  assert.ok(ended && segmenter);

  // onPublish once with the parsed request; onUnpublish promptly after the publisher left (not 30 s later)
  assert.equal(publishes.length, 1);
  const req = publishes[0]!.req;
  assert.equal(req.app, 'live');
  assert.equal(req.streamName, key);
  assert.equal(req.ip, '127.0.0.1');
  assert.equal(unpublishes.length, 1);
  assert.equal(unpublishes[0]!.sessionId, req.sessionId);
  assert.ok(Math.abs(unpublishes[0]!.atMs - exit.atMs) < 2000, `onUnpublish ${unpublishes[0]!.atMs - exit.atMs} ms from publisher exit`);

  // end after the publisher: the RTMP server ended the publish's packets
  assert.equal(ended.reason, 'inputEnded');
  assert.ok(ended.atMs - exit.atMs < 3000, `end ${ended.atMs - exit.atMs} ms after the publisher exit`);
  assert.ok(ended.atMs >= segments.at(-1)!.atMs, 'end comes after the last segment');

  // ~4 segments of ~2 s, in seq order, no long segment
  assert.deepEqual(segments.map((s) => s.seq), [0, 1, 2, 3]);
  assert.equal(ended.segments, 4);
  assert.equal(ended.longSegments, 0);
  assert.equal(longs.length, 0);
  for (const s of segments.slice(0, -1)) assert.ok(Math.abs(s.durationMs - 2000) <= 50, `seg ${s.seq} lasts ${s.durationMs} ms`);
  const last = segments.at(-1)!;
  assert.ok(last.durationMs > 1500 && last.durationMs <= 2100, `last segment lasts ${last.durationMs} ms`);
  assert.equal(segments[0]!.startMs, 0);

  // each file was complete when reported, and is named <workDir>/<seq>.ts
  for (const s of segments) {
    assert.equal(s.path, path.join(workDir, `${s.seq}.ts`));
    assert.ok(s.bytes > 10_000);
    assert.equal(s.sizeAtEvent, s.bytes);
    assert.equal(statSync(s.path).size, s.bytes, `seg ${s.seq} did not grow after it was reported`);
  }

  // timestamps continue across segments: first pts of n+1 = first pts of n + duration of n
  const pts = segments.map((s) => firstPts(s.path));
  for (let n = 0; n + 1 < segments.length; n += 1) {
    const a = pts[n]!.video!;
    const b = pts[n + 1]!.video!;
    assert.ok(Math.abs(b - (a + segments[n]!.durationMs / 1000)) < 0.05, `video pts ${a} -> ${b} for a ${segments[n]!.durationMs} ms segment`);
    assert.ok(Math.abs(segments[n + 1]!.startMs - (segments[n]!.startMs + segments[n]!.durationMs)) <= 5);
    assert.ok(pts[n + 1]!.audio !== undefined, 'audio is kept');
  }
  // file pts = startMs + the mpegts muxer's constant 1.4 s offset
  assert.ok(Math.abs(pts[0]!.video! - 1.4) < 0.05, `first pts ${pts[0]!.video}`);
});

test('the bitrate an RTMP publisher declares in onMetaData is on the first info, before any segment', async () => {
  const key = secretKey('meta');
  const infos: { declaredBitrateBps?: number; segmentsBefore: number }[] = [];
  let segments = 0;
  let segmenter: RtmpSegmenter | undefined;
  onAccepted = (req) => {
    segmenter = new RtmpSegmenter({ tags: rtmp.server.flvTags(req.sessionId)!, workDir: path.join(dir, 'segments-meta'), logger, segmentTargetMs: 2000 });
    segmenter.on('info', (info) => infos.push({ ...(info.declaredBitrateBps !== undefined ? { declaredBitrateBps: info.declaredBitrateBps } : {}), segmentsBefore: segments }));
    segmenter.on('segment', () => { segments += 1; });
    segmenter.start();
  };
  const publisher = publish(rtmp.port, key, clip);
  try {
    await waitFor('first segment', () => segments > 0, 10_000);
  } finally {
    publisher.kill();
    await publisher.exited;
  }
  await segmenter!.done;
  // ffmpeg's flv muxer declares each stream's bit_rate / 1024 (kbit/s) from the clip's own.
  const rates = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,bit_rate', '-of', 'json', clip], { encoding: 'utf8' });
  const streams = (JSON.parse(rates.stdout) as { streams: { codec_type: string; bit_rate?: string }[] }).streams;
  const kbps = (type: string): number => Number(streams.find((x) => x.codec_type === type)?.bit_rate ?? 0) / 1024;
  assert.ok(kbps('video') > 0, 'the clip has a video bitrate to declare');
  const expected = Math.round((kbps('video') + kbps('audio')) * 1000);
  assert.ok(infos.length > 0);
  assert.deepEqual(infos[0], { declaredBitrateBps: expected, segmentsBefore: 0 }, 'declared on the first info, before seq 0 closed');
  assert.equal(segmenter!.declaredBitrateBps, expected);
});

test('the stream key never appears in any log line (NMS, ours)', () => {
  assert.ok(lines.length > 20, `logs were captured (${lines.length} lines)`);
  assert.ok(lines.some((l) => l.includes('node-media-server') && l.includes('/live/[redacted]')), 'NMS lines were logged, with the path redacted');
  const leaked = lines.filter((l) => /SeCrEt/.test(l));
  assert.deepEqual(leaked, []);
});

test('an ordinary H.264 + AAC publish (with its metadata tag) is segmented without a warning', () => {
  assert.deepEqual(lines.filter((l) => /"level":(40|50)/.test(l)), []);
});

