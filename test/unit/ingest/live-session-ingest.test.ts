/**
 * RTMP streams whose ladder is all H.264 are transcoded by a live session, not by a job per
 * segment: LiveIngest opens the session at publish, gives it the source once, settles each
 * segment (transcoded when its credits are held, skipped when not) and ends it with the
 * stream. An HEVC ladder keeps its jobs. Stand-ins for every port (test/helpers/ingest-stand-ins.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveIngest, StaticKeyAuthorizer, type IngestJob, type LiveIngestOptions, type LiveTranscodeSessions, type ProbedSegment } from '../../../src/ingest/live-ingest.ts';
import { bookkeepingIndex, FakeSegmenter, ingestOptions } from '../../helpers/ingest-stand-ins.ts';
import { PRESETS, type RenditionPlan, type VideoProfile } from '../../../src/domain/profile.ts';

const H264 = PRESETS['P360p30fps16x9']!;
const PROBED: ProbedSegment = {
  video: { width: 1280, height: 720, fpsNum: 24, fpsDen: 1, frames: 48, codec: 'h264', profile: 'High', pixelFormat: 'yuv420p' },
  audio: { codec: 'aac', profile: 'LC' }, codecs: 'avc1.64001f,mp4a.40.2', frameRate: 24, durationMs: 2000,
};

interface Calls {
  opened: Parameters<LiveTranscodeSessions['open']>[0][];
  sources: unknown[];
  settled: { seq: number; transcode: boolean; durationMs: number }[];
  ended: number[];
  jobs: IngestJob[];
}

function makeIngest(ladder: VideoProfile[], paid: (seq: number) => boolean, overrides: Partial<LiveIngestOptions> = {}): { ingest: LiveIngest; segmenter: () => FakeSegmenter; calls: Calls } {
  const calls: Calls = { opened: [], sources: [], settled: [], ended: [], jobs: [] };
  let segmenter: FakeSegmenter | undefined;
  const options = ingestOptions({
    authorizer: new StaticKeyAuthorizer([], ladder),
    index: bookkeepingIndex(),
    storage: { putFile: async () => ({ sizeBytes: 500_000 }) },
    probe: { probe: async () => PROBED },
    queue: { enqueue: async (job) => { calls.jobs.push(job); }, enqueueAndWait: async () => { throw new Error('not used'); } },
    billing: { standing: async () => 'ok', reserveSegment: async (r) => paid(r.seq) },
    onInsufficientBalance: 'source-only',
    startSegmenter: () => (segmenter = new FakeSegmenter()),
    unpublishGraceMs: 50,
    liveSessions: {
      open: async (s) => { calls.opened.push(s); },
      setSource: async (_m, _s, source) => { calls.sources.push(source); },
      settle: (_m, _s, s) => { calls.settled.push({ seq: s.seq, transcode: s.transcode, durationMs: s.durationMs }); },
      end: async (_m, _s, endSeq) => { calls.ended.push(endSeq); },
    },
    ...overrides,
  });
  return { ingest: new LiveIngest(options), segmenter: () => segmenter!, calls };
}

/** A publisher-set ladder (the auth webhook's `profiles`): used as configured, its session described from the segmenter's early info. */
function explicitLadder(ladder: VideoProfile[]): Pick<LiveIngestOptions, 'authorizer'> {
  return { authorizer: { authorize: async ({ streamKey }) => ({ manifestID: streamKey, profiles: ladder, explicitLadder: true }) } };
}

async function publishSegments(ingest: LiveIngest, segmenter: () => FakeSegmenter, count: number): Promise<void> {
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  for (let seq = 0; seq < count; seq++) segmenter().emit('segment', { seq, path: `/nonexistent/mediagate-test/${seq}.ts`, durationMs: 2000, bytes: 500_000 });
  await ingest.unpublish('conn-1');
}

test('an RTMP stream with an H.264 ladder opens a live session, settles every segment in it (unpaid ones skipped) and queues no job', async () => {
  const { ingest, segmenter, calls } = makeIngest([H264], (seq) => seq !== 2, explicitLadder([H264]));
  await publishSegments(ingest, segmenter, 4);
  assert.equal(calls.opened.length, 1);
  assert.deepEqual({ ...calls.opened[0], openedAtMs: 0 }, { manifestID: 'cam', session: calls.opened[0]!.session, profiles: [H264], accountID: 'local', openedAtMs: 0 });
  assert.deepEqual(calls.sources, [{ video: { width: 1280, height: 720, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } }], 'the source once');
  assert.deepEqual(calls.settled, [
    { seq: 0, transcode: true, durationMs: 2000 },
    { seq: 1, transcode: true, durationMs: 2000 },
    { seq: 2, transcode: false, durationMs: 2000 },
    { seq: 3, transcode: true, durationMs: 2000 },
  ]);
  assert.deepEqual(calls.jobs, [], 'no transcode job per segment');
  assert.deepEqual(calls.ended, [4], 'the session ends with the stream, one past its last seq');
});

test('an RTMP stream whose ladder has an HEVC rendition keeps a transcode job per segment', async () => {
  const { ingest, segmenter, calls } = makeIngest([H264, { ...H264, name: 'hevc', encoder: 'HEVC' }], () => true);
  await publishSegments(ingest, segmenter, 2);
  assert.deepEqual(calls.opened, []);
  assert.deepEqual(calls.settled, []);
  assert.deepEqual(calls.jobs.map((j) => j.seq), [0, 1]);
});

test('without live sessions configured every RTMP stream keeps its jobs', async () => {
  const { ingest, segmenter, calls } = makeIngest([H264], () => true, { liveSessions: undefined });
  await publishSegments(ingest, segmenter, 2);
  assert.deepEqual(calls.jobs.map((j) => j.seq), [0, 1]);
  assert.deepEqual(calls.opened, []);
});

test('the source info and seq 0\'s first chunks that the segmenter emits inside start() (tags held during authorization) reach the live session and its feed', async () => {
  // The RTMP segmenter cuts the tags held while the publish was authorized synchronously in
  // start(): a listener attached after it missed seq 0's keyframe chunk and the early info, and
  // the session then recorded seq 0 as gone from its feed.
  const appended: { seq: number; first: boolean }[] = [];
  const info = { video: { codec: 'h264' as const, codecString: 'avc1.64001f', width: 1280, height: 720, fpsNum: 24, fpsDen: 1, fpsFinal: false } };
  class EagerSegmenter extends FakeSegmenter {
    override start(): void {
      super.start();
      this.emit('info', info);
      this.emit('chunk', { seq: 0, first: true, startPts90k: 126000, bytes: Buffer.alloc(188) });
      this.emit('chunk', { seq: 0, first: false, bytes: Buffer.alloc(188) });
    }
  }
  let segmenter: EagerSegmenter | undefined;
  const { ingest, calls } = makeIngest([H264], () => true, {
    ...explicitLadder([H264]),
    startSegmenter: () => (segmenter = new EagerSegmenter()),
    liveFeed: { append: (_m, _s, c) => { appended.push({ seq: c.seq, first: c.first }); }, end: () => undefined },
  });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  assert.equal(segmenter!.starts, 1, 'started once, after the listeners');
  assert.deepEqual(appended, [{ seq: 0, first: true }, { seq: 0, first: false }]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls.sources.length, 1, 'the live session got the source from the early info');
  await ingest.unpublish('conn-1');
});

test('a ladder the gateway chose opens its live session fitted to the source and describes it once, from the first segment with its measured bitrate', async () => {
  const { ingest, segmenter, calls } = makeIngest([PRESETS['P720p30fps16x9']!, H264], () => true);
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  // The segmenter's early info (size only) does not describe the session: the cap needs the bitrate.
  segmenter().emit('info', { video: { codec: 'h264', codecString: 'avc1.64001f', width: 1280, height: 720, fpsNum: 24, fpsDen: 1, fpsFinal: false } });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls.sources, [], 'nothing before the first segment');
  for (let seq = 0; seq < 2; seq++) segmenter().emit('segment', { seq, path: `/nonexistent/mediagate-test/${seq}.ts`, durationMs: 2000, bytes: 500_000 });
  await ingest.unpublish('conn-1');
  assert.equal(calls.opened.length, 1);
  assert.equal(calls.opened[0]!.fitToSource, true);
  assert.deepEqual(calls.opened[0]!.profiles, [PRESETS['P720p30fps16x9'], H264], 'the unfitted ladder: the transcoder fits it with the source');
  // 500 000 bytes in 2000 ms: 2 Mb/s, measured on seq 0.
  assert.deepEqual(calls.sources, [{ video: { width: 1280, height: 720, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' }, bitrateBps: 2_000_000 }]);
  assert.deepEqual(calls.settled.map((s) => s.transcode), [true, true]);
});

test('a ladder the gateway chose is planned fitted: the source-size rendition left out, the smaller one capped at its pixel share', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const { ingest, segmenter, calls } = makeIngest([PRESETS['P720p30fps16x9']!, H264], () => true, { index, liveSessions: undefined });
  await publishSegments(ingest, segmenter, 2);
  assert.equal(plans.length, 1, 'planned once');
  const plan = plans[0]!;
  // 1280x720 is the source's own size; 640x360 is a quarter of its pixels: 2 Mb/s / 4.
  assert.deepEqual(plan.map((r) => [r.name, r.width, r.height, r.bitrateBps]), [['P360p30fps16x9', 640, 360, 500_000]]);
  assert.deepEqual(calls.jobs.map((j) => j.profiles.map((p) => [p.name, p.bitrateBps])), [[['P360p30fps16x9', 500_000]], [['P360p30fps16x9', 500_000]]], 'every job carries the fitted ladder');
  assert.equal(calls.jobs[0]!.source?.bitrateBps, 2_000_000);
});

test('a ladder the publisher set is planned as configured: the source-size rendition kept, nothing capped', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const ladder = [PRESETS['P720p30fps16x9']!, H264];
  const { ingest, segmenter, calls } = makeIngest(ladder, () => true, { index, liveSessions: undefined, ...explicitLadder(ladder) });
  await publishSegments(ingest, segmenter, 1);
  assert.deepEqual(plans[0]!.map((r) => [r.name, r.width, r.height, r.bitrateBps]),
    [['P720p30fps16x9', 1280, 720, 4_000_000], ['P360p30fps16x9', 640, 360, 1_200_000]]);
  assert.deepEqual(calls.jobs[0]!.profiles, ladder);
  assert.equal(calls.jobs[0]!.source?.bitrateBps, undefined);
});

test('with ladder fitting off (ladderFitsSource: false) the gateway\'s ladder is planned as configured and its live session is not asked to fit it', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const ladder = [PRESETS['P720p30fps16x9']!, H264];
  const { ingest, segmenter, calls } = makeIngest(ladder, () => true, { index, fitLadderToSource: false });
  await publishSegments(ingest, segmenter, 1);
  assert.deepEqual(plans[0]!.map((r) => [r.name, r.bitrateBps]), [['P720p30fps16x9', 4_000_000], ['P360p30fps16x9', 1_200_000]]);
  assert.equal(calls.opened[0]!.fitToSource, undefined);
  assert.equal((calls.sources[0] as { bitrateBps?: number }).bitrateBps, undefined);
});

test('a fitted ladder whose publisher declares its bitrate in onMetaData has its live session described from the early info, and its plan fitted to the same rate', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const { ingest, segmenter, calls } = makeIngest([PRESETS['P720p30fps16x9']!, H264], () => true, { index });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  const video = { codec: 'h264' as const, codecString: 'avc1.64001f', width: 1280, height: 720, fpsNum: 24, fpsDen: 1, fpsFinal: false };
  segmenter().emit('info', { video, declaredBitrateBps: 1_200_000 });
  await new Promise((resolve) => setImmediate(resolve));
  // Before any segment closed: the session has the source and the declared rate.
  assert.deepEqual(calls.sources, [{ video: { width: 1280, height: 720, fpsNum: 24, fpsDen: 1, codec: 'h264' }, bitrateBps: 1_200_000 }]);
  // A later info (final frame rate, another metadata) changes nothing the fit used.
  segmenter().emit('info', { video: { ...video, fpsFinal: true }, declaredBitrateBps: 9_000_000 });
  for (let seq = 0; seq < 2; seq++) segmenter().emit('segment', { seq, path: `/nonexistent/mediagate-test/${seq}.ts`, durationMs: 2000, bytes: 500_000 });
  await ingest.unpublish('conn-1');
  assert.equal(calls.sources.length, 1, 'described once');
  // The plan is fitted to the declared 1.2 Mb/s (not the 2 Mb/s measured on seq 0): 640x360 is a quarter of the pixels.
  assert.deepEqual(plans[0]!.map((r) => [r.name, r.width, r.height, r.bitrateBps]), [['P360p30fps16x9', 640, 360, 300_000]]);
  assert.deepEqual(calls.settled.map((s) => s.transcode), [true, true]);
});

test('a fitted ladder without a declared bitrate keeps the measured fallback even when the metadata comes after the first segment', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const { ingest, segmenter, calls } = makeIngest([PRESETS['P720p30fps16x9']!, H264], () => true, { index });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  const video = { codec: 'h264' as const, codecString: 'avc1.64001f', width: 1280, height: 720, fpsNum: 24, fpsDen: 1, fpsFinal: true };
  segmenter().emit('info', { video });
  segmenter().emit('segment', { seq: 0, path: '/nonexistent/mediagate-test/0.ts', durationMs: 2000, bytes: 500_000 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  segmenter().emit('info', { video, declaredBitrateBps: 1_200_000 });
  segmenter().emit('segment', { seq: 1, path: '/nonexistent/mediagate-test/1.ts', durationMs: 2000, bytes: 500_000 });
  await ingest.unpublish('conn-1');
  assert.deepEqual(calls.sources, [{ video: { width: 1280, height: 720, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' }, bitrateBps: 2_000_000 }]);
  assert.deepEqual(plans[0]!.map((r) => [r.name, r.bitrateBps]), [['P360p30fps16x9', 500_000]]);
});

const MARK_SOURCE = { kind: 'text', text: 'mark', fontSizeFraction: 0.05, position: 'bottom-right', margin: { fraction: 0.02 }, opacity: 0.8, applyToSource: true } as const;

test('a watermark with applyToSource plans a marked copy of the source at its size and bitrate, flagged as replacing the source; every job carries it', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const { ingest, segmenter, calls } = makeIngest([PRESETS['P720p30fps16x9']!, H264], () => true, { index, liveSessions: undefined, defaultWatermark: MARK_SOURCE });
  await publishSegments(ingest, segmenter, 2);
  // 1280x720 is left out of the fitted ladder (the source's size); the marked copy takes its place at 0.8 of the source's 2 Mb/s.
  assert.deepEqual(plans[0]!.map((r) => [r.name, r.width, r.height, r.bitrateBps, r.replacesSource ?? false]),
    [['P360p30fps16x9', 640, 360, 500_000, false], ['source-marked', 1280, 720, 1_600_000, true]]);
  assert.deepEqual(calls.jobs.map((j) => j.profiles.map((p) => p.name)), [['P360p30fps16x9', 'source-marked'], ['P360p30fps16x9', 'source-marked']]);
  assert.equal(calls.jobs[0]!.watermark?.applyToSource, true);
});

test('a watermark without applyToSource adds no copy and flags nothing; with it, a configured rendition of the source size is the copy', async () => {
  const plans: RenditionPlan[][] = [];
  const index = bookkeepingIndex({ setRenditions: async (_m, _s, plan) => { plans.push([...plan]); } });
  const { applyToSource: _, ...plain } = MARK_SOURCE;
  const first = makeIngest([PRESETS['P720p30fps16x9']!, H264], () => true, { index, liveSessions: undefined, defaultWatermark: plain });
  await publishSegments(first.ingest, first.segmenter, 1);
  assert.deepEqual(plans[0]!.map((r) => [r.name, r.replacesSource ?? false]), [['P360p30fps16x9', false]]);
  const ladder = [PRESETS['P720p30fps16x9']!, H264];
  const second = makeIngest(ladder, () => true, { index, liveSessions: undefined, defaultWatermark: MARK_SOURCE, ...explicitLadder(ladder) });
  await publishSegments(second.ingest, second.segmenter, 1);
  assert.deepEqual(plans[1]!.map((r) => [r.name, r.replacesSource ?? false]), [['P720p30fps16x9', true], ['P360p30fps16x9', false]]);
});
