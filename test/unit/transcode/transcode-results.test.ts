/** TranscodeResults: one test per rule, with fakes built from function fields (no BullMQ, no Redis). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TranscodeResults, type ResultsBilling, type ResultsIndex, type ResultsMetrics, type ResultsRetry } from '../../../src/transcode/transcode-results.ts';
import type { QueuedTranscodeJob } from '../../../src/transcode/transcode-queue.ts';
import type { RenditionSegment, SegmentOutcome, TranscodeResult } from '../../../src/domain/segment.ts';
import type { GatewayEvent } from '../../../src/events/events.ts';
import { transcodePixels } from '../../../src/domain/money.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const job: QueuedTranscodeJob = {
  manifestID: 'cam', session: 's1', seq: 7, sourceKey: 'cam/s1/source/7.ts', durationMs: 2000, profiles: [], enqueuedAtMs: 1_000, accountID: 'acct',
};

function rendition(name: string, width: number, height: number, frames: number): RenditionSegment {
  return { rendition: name, key: `cam/${name}/7.ts`, width, height, frames, bytes: 1000, durationMs: 2000, codecs: 'avc1.64001f', frameRate: 24 };
}

const r720 = rendition('720p', 1280, 720, 48);
const r360 = rendition('360p', 640, 360, 48);

interface Calls {
  recorded: { manifestID: string; session: string; outcome: SegmentOutcome }[];
  settled: { manifestID: string; session: string; seq: number; pixels: bigint }[];
  released: { manifestID: string; session: string; seq: number }[];
  transcoded: Parameters<ResultsMetrics['recordSegmentTranscoded']>[0][];
  failed: { manifestID: string; reason: string }[];
  stalled: string[];
  events: GatewayEvent[];
  retried: string[];
}

function setup(o: {
  plan?: string[];
  session?: string;
  accepted?: (outcome: SegmentOutcome) => boolean;
  billing?: boolean;
} = {}): { results: TranscodeResults; calls: Calls } {
  const calls: Calls = { recorded: [], settled: [], released: [], transcoded: [], failed: [], stalled: [], events: [], retried: [] };
  const index: ResultsIndex = {
    getStream: async () => ({ session: o.session ?? 's1', renditions: (o.plan ?? ['720p', '360p']).map((name) => ({ name })) }),
    record: async (manifestID, session, outcome) => {
      calls.recorded.push({ manifestID, session, outcome });
      return { accepted: o.accepted ? o.accepted(outcome) : true };
    },
  };
  const billing: ResultsBilling = {
    settleSegment: async (r) => { calls.settled.push(r); },
    releaseSegment: async (r) => { calls.released.push(r); },
  };
  const metrics: ResultsMetrics = {
    recordSegmentTranscoded: (s) => { calls.transcoded.push(s); },
    recordSegmentFailed: (manifestID, reason) => { calls.failed.push({ manifestID, reason }); },
    recordTranscodeJobStalled: (manifestID) => { calls.stalled.push(manifestID); },
  };
  const retry: ResultsRetry = {
    deadline: () => 99_999,
    run: async (what, op, deadlineMs) => {
      assert.equal(deadlineMs, 99_999);
      calls.retried.push(what);
      return op();
    },
  };
  const results = new TranscodeResults({
    index, metrics, retry, events: { emit: (e) => { calls.events.push(e); } }, logger: silentLogger(), now: () => 3_500,
    ...(o.billing === false ? {} : { billing }),
  });
  return { results, calls };
}

const completed: TranscodeResult = { manifestID: 'cam', seq: 7, renditions: [r720, r360], elapsedMs: 900 };

test('a completed job records every planned rendition as ok for its seq', async () => {
  const { results, calls } = setup();
  await results.completed(job, completed);
  assert.deepEqual(calls.recorded, [
    { manifestID: 'cam', session: 's1', outcome: { status: 'ok', seq: 7, segment: r720 } },
    { manifestID: 'cam', session: 's1', outcome: { status: 'ok', seq: 7, segment: r360 } },
  ]);
  assert.deepEqual(calls.transcoded, [{ manifestID: 'cam', segmentDurationMs: 2000, transcodeElapsedMs: 900, outputPixels: transcodePixels([r720, r360]), overallLatencyMs: 2_500 }]);
  assert.equal(calls.events.length, 1);
  assert.deepEqual(calls.events[0], {
    type: 'segment.transcoded', manifestID: 'cam', session: 's1', seq: 7, durationMs: 2000, elapsedMs: 900,
    renditions: [{ name: '720p', width: 1280, height: 720, frames: 48, bytes: 1000 }, { name: '360p', width: 640, height: 360, frames: 48, bytes: 1000 }],
  });
});

test('a planned rendition the transcoder did not produce is recorded failed', async () => {
  const { results, calls } = setup({ plan: ['1080p', '720p'] });
  await results.completed(job, { ...completed, renditions: [r720] });
  assert.deepEqual(calls.recorded.map((c) => c.outcome), [
    { status: 'failed', rendition: '1080p', seq: 7, reason: 'rendition not produced for this segment' },
    { status: 'ok', seq: 7, segment: r720 },
  ]);
  assert.deepEqual(calls.settled.map((s) => s.pixels), [transcodePixels([r720])]);
});

test('only the renditions the index accepted are charged, by their pixels', async () => {
  const { results, calls } = setup({ accepted: (o) => o.status === 'ok' && o.segment.rendition === '360p' });
  await results.completed(job, completed);
  assert.deepEqual(calls.settled, [{ manifestID: 'cam', session: 's1', seq: 7, pixels: transcodePixels([r360]) }]);
  assert.deepEqual(calls.released, []);
  // the metric counts what was encoded, listed or not
  assert.equal(calls.transcoded[0]?.outputPixels, transcodePixels([r720, r360]));
});

test('when no rendition is accepted the hold is released, not charged', async () => {
  const { results, calls } = setup({ accepted: () => false });
  await results.completed(job, completed);
  assert.deepEqual(calls.settled, []);
  assert.deepEqual(calls.released, [{ manifestID: 'cam', session: 's1', seq: 7 }]);
});

test('nothing is charged or released without billing or without an account on the job', async () => {
  const off = setup({ billing: false });
  await off.results.completed(job, completed);
  await off.results.failedForGood(job, 'boom', 'TRANSCODE_FAILED', 'error');
  assert.equal(off.calls.recorded.length, 4);
  const unmetered = setup();
  const { accountID: _, ...noAccount } = job;
  await unmetered.results.completed(noAccount, completed);
  await unmetered.results.failedForGood(noAccount, 'boom', 'TRANSCODE_FAILED', 'error');
  assert.deepEqual([unmetered.calls.settled, unmetered.calls.released], [[], []]);
});

test('a job failed for good releases its hold and records every planned rendition but source failed', async () => {
  const { results, calls } = setup({ plan: ['source', '720p', '360p'] });
  await results.failedForGood(job, 'ffmpeg exited 1', 'TRANSCODE_FAILED', 'error');
  assert.deepEqual(calls.released, [{ manifestID: 'cam', session: 's1', seq: 7 }]);
  assert.deepEqual(calls.settled, []);
  assert.deepEqual(calls.recorded.map((c) => c.outcome), [
    { status: 'failed', rendition: '720p', seq: 7, reason: 'ffmpeg exited 1' },
    { status: 'failed', rendition: '360p', seq: 7, reason: 'ffmpeg exited 1' },
  ]);
  assert.deepEqual(calls.failed, [{ manifestID: 'cam', reason: 'transcode_error' }]);
  assert.deepEqual(calls.events, [{ type: 'segment.failed', manifestID: 'cam', session: 's1', seq: 7, reason: 'ffmpeg exited 1' }]);
});

test('a job failed for good because its transcoder was lost is counted as transcoder_lost', async () => {
  const { results, calls } = setup();
  await results.failedForGood(job, 'transcoder lost', 'TRANSCODE_FAILED', 'transcoder_lost');
  assert.deepEqual(calls.failed, [{ manifestID: 'cam', reason: 'transcoder_lost' }]);
  results.transcoderLost(job);
  assert.deepEqual(calls.stalled, ['cam']);
});

test('every Redis step runs through the retry executor with the outcome\'s deadline', async () => {
  const ok = setup();
  await ok.results.completed(job, completed);
  assert.deepEqual(ok.calls.retried, ['read stream', 'list rendition segment', 'list rendition segment', 'charge segment']);
  const skipped = setup({ accepted: () => false });
  await skipped.results.completed(job, completed);
  assert.deepEqual(skipped.calls.retried.at(-1), 'release segment hold');
  const failed = setup();
  await failed.results.failedForGood(job, 'boom', 'TRANSCODE_FAILED', 'error');
  assert.deepEqual(failed.calls.retried, ['release segment credits', 'read stream', 'resolve failed segment', 'resolve failed segment']);
});

test('a Redis step still failing at the deadline fails the outcome, so the job runs again', async () => {
  const failing = new TranscodeResults({
    index: { getStream: async () => { throw new Error('Connection is closed.'); }, record: async () => ({ accepted: true }) },
    metrics: { recordSegmentTranscoded: () => undefined, recordSegmentFailed: () => undefined, recordTranscodeJobStalled: () => undefined },
    retry: { deadline: () => 0, run: (_what, op) => op() },
    events: { emit: () => assert.fail('no event for an unrecorded result') },
    logger: silentLogger(),
  });
  await assert.rejects(failing.completed(job, completed), /Connection is closed/);
});

test('a result of a stale session records no rendition and charges nothing', async () => {
  const { results, calls } = setup({ session: 's2' });
  await results.completed(job, completed);
  await results.failedForGood(job, 'boom', 'TRANSCODE_FAILED', 'error');
  assert.deepEqual(calls.recorded, []);
  assert.deepEqual(calls.settled, []);
  // nothing listed: its hold goes back (once per outcome; release is idempotent)
  assert.deepEqual(calls.released.length, 2);
});
