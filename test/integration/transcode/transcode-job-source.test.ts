/**
 * The source measurement the gateway puts in a transcode job reaches the transcoder's hook
 * unchanged through BullMQ and a real Redis (job data is JSON).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { TranscodeQueue, TranscodeWorker, type QueuedTranscodeJob } from '../../../src/transcode/transcode-queue.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { parseSourceSegmentInfo } from '../../../src/domain/segment.ts';

let redis: TestRedis;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.stop(); });

test('job.source survives the queue and still parses; a job without it arrives without it', async () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const seen: QueuedTranscodeJob[] = [];
  const connections = new RedisConnections({ url: redis.url, logger: silentLogger(), namePrefix: 'mediagate:test' });
  const queue = new TranscodeQueue({
    connection: connections.open('queue', 'blocking'), openEventsConnection: () => connections.open('queue-events', 'blocking'),
    prefix, logger: silentLogger(), attempts: 1, backoffMs: 10,
  });
  const worker = new TranscodeWorker({
    connection: connections.open('transcoder', 'blocking'), prefix, logger: silentLogger(), concurrency: 1,
    hooks: {
      process: async (j) => { seen.push(j); return { manifestID: j.manifestID, seq: j.seq, renditions: [], elapsedMs: 1 }; },
      onCompleted: async () => {},
      onFailedForGood: async () => {},
    },
  });
  try {
    await worker.waitUntilReady();
    const source = { video: { width: 1920, height: 1080, fpsNum: 30000, fpsDen: 1001, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } };
    const base = { manifestID: 'q', session: 's1', sourceKey: 'q/source/0.ts', durationMs: 2000, profiles: [], enqueuedAtMs: Date.now() };
    await queue.enqueue({ ...base, seq: 0, source });
    await queue.enqueue({ ...base, seq: 1 });
    const deadline = Date.now() + 10_000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const bySeq = new Map(seen.map((j) => [j.seq, j]));
    assert.deepEqual(bySeq.get(0)?.source, source);
    assert.deepEqual(parseSourceSegmentInfo(bySeq.get(0)?.source), source);
    assert.ok(bySeq.has(1));
    assert.equal('source' in bySeq.get(1)!, false);
  } finally {
    await worker.close();
    await queue.close();
    await connections.close();
  }
});
