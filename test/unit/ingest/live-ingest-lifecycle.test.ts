/**
 * LiveIngest publish lifecycle with in-memory stand-ins for the index, queue and segmenter:
 * the RTMP publisher leaving stops its segmenter, and shutdown refuses new publishes while
 * the live ones are flushed and ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveIngest, StaticKeyAuthorizer, type LiveIngestOptions } from '../../../src/ingest/live-ingest.ts';
import { bookkeepingIndex, fakeSegmenters, type FakeSegmenter, ingestOptions, unusedPushClaims } from '../../helpers/ingest-stand-ins.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { parseLadder } from '../../../src/domain/profile.ts';

function makeIngest(overrides: Partial<LiveIngestOptions> = {}): { ingest: LiveIngest; segmenters: FakeSegmenter[]; ended: { manifestID: string; endSeq: number }[] } {
  const { segmenters, startSegmenter } = fakeSegmenters();
  const ended: { manifestID: string; endSeq: number }[] = [];
  const options = ingestOptions({
    index: bookkeepingIndex({ endStream: async (manifestID, _session, endSeq) => { ended.push({ manifestID, endSeq }); } }),
    startSegmenter,
    unpublishGraceMs: 50,
    ...overrides,
  });
  return { ingest: new LiveIngest(options), segmenters, ended };
}

test('unpublish of an RTMP connection whose segmenter does not end by itself stops it after the grace and ends the stream', async () => {
  const { ingest, segmenters, ended } = makeIngest();
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  assert.equal(ingest.list().length, 1);
  await ingest.unpublish('conn-1');
  assert.equal(segmenters[0]!.stops, 1, 'the segmenter was asked to stop (flush its last segment)');
  assert.deepEqual(ended, [{ manifestID: 'cam', endSeq: 0 }], 'ended by the time unpublish resolves');
  assert.deepEqual(ingest.list(), []);
});

test('unpublish lets a segmenter that drains its input and exits by itself end without a stop', async () => {
  const { ingest, segmenters, ended } = makeIngest();
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  const unpublished = ingest.unpublish('conn-1');
  segmenters[0]!.emit('end', { reason: 'inputEnded', exitCode: 0 });
  await unpublished;
  assert.equal(segmenters[0]!.stops, 0, 'not stopped: a SIGINT would drop what ffmpeg had not read yet');
  assert.deepEqual(ended, [{ manifestID: 'cam', endSeq: 0 }]);
  assert.deepEqual(ingest.list(), []);
});

test('unpublish of an unknown connection is a no-op', async () => {
  const { ingest, segmenters } = makeIngest();
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  await ingest.unpublish('conn-2');
  assert.equal(segmenters[0]!.stops, 0);
  assert.equal(ingest.list().length, 1);
});

test('close() refuses new publishes, stops every segmenter once and ends every stream; a second close() is a no-op', async () => {
  const { ingest, segmenters, ended } = makeIngest();
  await ingest.publish('conn-1', 'cam1', 'rtmp://127.0.0.1:1935/live/cam1');
  await ingest.publish('conn-2', 'cam2', 'rtmp://127.0.0.1:1935/live/cam2');
  const closed = await ingest.close();
  await ingest.close();
  assert.deepEqual(segmenters.map((s) => s.stops), [1, 1]);
  assert.deepEqual(ended.map((e) => e.manifestID).sort(), ['cam1', 'cam2']);
  assert.deepEqual(closed.map((s) => s.manifestID).sort(), ['cam1', 'cam2'], 'close() names the streams it ended');
  await assert.rejects(ingest.publish('conn-3', 'cam3', 'rtmp://127.0.0.1:1935/live/cam3'),
    (err: unknown) => err instanceof GatewayError && err.code === 'PUBLISH_DENIED' && /shutting down/.test(err.message));
});

test('a push session does not end for idleness while one of its pushes waits for its renditions longer than the idle timeout', async () => {
  const idleMs = 100;
  const transcodeMs = 400;
  const ended: string[] = [];
  let pushed = 0;
  const index = bookkeepingIndex({
    endStream: async (manifestID) => { ended.push(manifestID); },
    record: async () => ({ accepted: true, listed: 1 }),
    resolvePushGap: async () => undefined,
  });
  const pushClaims = unusedPushClaims({
    claimPush: async () => ({ claim: 'new' }),
    settlePush: async () => undefined,
    pushState: async () => undefined,
  });
  const { ingest } = makeIngest({
    authorizer: new StaticKeyAuthorizer([], parseLadder(['P144p30fps16x9'])),
    index,
    pushClaims,
    pushIdleTimeoutMs: idleMs,
    storage: { putFile: async () => ({ sizeBytes: 1000 }) },
    probe: { probe: async () => ({ video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, frames: 48, codec: 'h264' }, codecs: 'avc1.64001e', frameRate: 24, durationMs: 2000 }) },
    queue: {
      enqueue: async () => undefined,
      enqueueAndWait: async (job) => {
        pushed += 1;
        await new Promise((r) => setTimeout(r, transcodeMs));
        assert.deepEqual(ended, [], 'the session is still open while its push waits for renditions');
        return { manifestID: job.manifestID, seq: job.seq, renditions: [], elapsedMs: transcodeMs };
      },
    },
  });
  const outcome = await ingest.push({
    streamName: 'slowcam', seq: 0, container: 'ts', bodyPath: '/nonexistent/0.ts', sha256: 'a'.repeat(64),
    url: 'http://127.0.0.1:1/live/slowcam/0.ts', scratchTsPath: '/nonexistent/0.scratch.ts',
  });
  assert.equal(pushed, 1);
  assert.equal(outcome.seq, 0);
  assert.deepEqual(ended, [], 'not ended at the moment the push is answered');
  assert.equal(ingest.list().length, 1);
  // Idle from the end of the push: it ends one idle timeout later.
  await new Promise((r) => setTimeout(r, idleMs * 4));
  assert.deepEqual(ended, ['slowcam']);
});
