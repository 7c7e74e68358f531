import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { Worker } from 'bullmq';
import {
  TranscodeQueue, TranscodeWorker, TRANSCODE_QUEUE_NAME, transcodeJobId, transcodeLockTimingFor, parseTranscodeJobId,
  type QueuedTranscodeJob, type TranscodeWorkerHooks, type TranscodeLockTiming,
} from '../../../src/transcode/transcode-queue.ts';
import { RedisConnections, createRedis } from '../../../src/redis/connections.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import type { TranscodeResult } from '../../../src/domain/segment.ts';

let redis: TestRedis;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.stop(); });

function job(seq: number): QueuedTranscodeJob {
  return { manifestID: 'q', session: 's1', seq, sourceKey: `q/source/${seq}.ts`, durationMs: 2000, profiles: [], enqueuedAtMs: Date.now() };
}

/** The named connections of one test process (as the composition root opens them); closed after the queue and worker. */
function connectionsTo(url: string): RedisConnections {
  return new RedisConnections({ url, logger: silentLogger(), namePrefix: 'mediagate:test' });
}

/** A queue on `connections`, as the gateway builds it. */
function queueOn(connections: RedisConnections, options: { prefix: string; attempts: number; enqueueTimeoutMs?: number }): TranscodeQueue {
  return new TranscodeQueue({
    connection: connections.open('queue', 'blocking'), openEventsConnection: () => connections.open('queue-events', 'blocking'),
    prefix: options.prefix, logger: silentLogger(), attempts: options.attempts, backoffMs: 10,
    ...(options.enqueueTimeoutMs !== undefined ? { enqueueTimeoutMs: options.enqueueTimeoutMs } : {}),
  });
}

/** A queue + worker pair on a fresh prefix; `hooks` decide what each attempt does. */
async function harness(hooks: TranscodeWorkerHooks, attempts = 3, options: { lockTiming?: TranscodeLockTiming; beforeWorker?: (prefix: string, queue: TranscodeQueue) => Promise<void> } = {}) {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const connections = connectionsTo(redis.url);
  const queue = queueOn(connections, { prefix, attempts });
  await options.beforeWorker?.(prefix, queue);
  const worker = new TranscodeWorker({
    connection: connections.open('transcoder', 'blocking'), prefix, logger: silentLogger(), concurrency: 1, hooks,
    ...(options.lockTiming ? { lockTiming: options.lockTiming } : {}),
  });
  await worker.waitUntilReady();
  return { queue, worker, prefix, close: async () => { await worker.close(); await queue.close(); await connections.close(); } };
}

/** Sets fields of a queued job's BullMQ hash (as BullMQ's stalled check would). */
async function setJobFields(prefix: string, j: QueuedTranscodeJob, fields: Record<string, string>): Promise<void> {
  const client = createRedis({ url: redis.url, logger: silentLogger(), name: 'test' });
  try {
    await client.hset(`${prefix}:${TRANSCODE_QUEUE_NAME}:${transcodeJobId(j)}`, fields);
  } finally {
    client.disconnect();
  }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const result = (j: QueuedTranscodeJob): TranscodeResult => ({ manifestID: j.manifestID, seq: j.seq, renditions: [], elapsedMs: 1 });

test('a retryable failure is retried and the job then completes once', async () => {
  const attempts: number[] = [];
  const completed: number[] = [];
  const failed: number[] = [];
  const h = await harness({
    process: async (j, attempt) => {
      attempts.push(attempt);
      if (attempt < 3) throw new GatewayError('TRANSCODE_FAILED', 'flaky');
      return result(j);
    },
    onCompleted: async (j) => { completed.push(j.seq); },
    onFailedForGood: async (j) => { failed.push(j.seq); },
  });
  try {
    await h.queue.enqueue(job(0));
    await until(() => completed.length === 1);
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(failed, []);
  } finally {
    await h.close();
  }
});

test('a non-retryable failure fails for good at once and is reported once', async () => {
  const attempts: number[] = [];
  const failed: string[] = [];
  const h = await harness({
    process: async () => { attempts.push(1); throw new GatewayError('UNDECODABLE_MEDIA', 'not a video'); },
    onCompleted: async () => { throw new Error('must not complete'); },
    onFailedForGood: async (_j, reason) => { failed.push(reason); },
  });
  try {
    await h.queue.enqueue(job(1));
    await until(() => failed.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(attempts.length, 1, 'no retry for bad input');
    assert.deepEqual(failed, ['not a video']);
    assert.equal((await h.queue.counts())['failed'], 1);
  } finally {
    await h.close();
  }
});

test('a job that keeps failing is failed for good after the configured attempts', async () => {
  let calls = 0;
  const failed: number[] = [];
  const h = await harness({
    process: async () => { calls += 1; throw new Error('ffmpeg crashed'); },
    onCompleted: async () => undefined,
    onFailedForGood: async (j) => { failed.push(j.seq); },
  }, 2);
  try {
    await h.queue.enqueue(job(2));
    await until(() => failed.length === 1);
    assert.equal(calls, 2);
  } finally {
    await h.close();
  }
});

test('enqueueing the same segment twice runs it once', async () => {
  let calls = 0;
  const h = await harness({ process: async (j) => { calls += 1; return result(j); }, onCompleted: async () => undefined, onFailedForGood: async () => undefined });
  try {
    await h.queue.enqueue(job(3));
    await h.queue.enqueue(job(3));
    await until(() => calls >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(calls, 1);
  } finally {
    await h.close();
  }
});

test('enqueue fails with QUEUE_UNAVAILABLE instead of hanging when Redis is unreachable', async () => {
  const connections = connectionsTo('redis://127.0.0.1:1');
  const queue = queueOn(connections, { prefix: 'down', attempts: 1, enqueueTimeoutMs: 500 });
  try {
    await assert.rejects(queue.enqueue(job(4)), (e: GatewayError) => e.code === 'QUEUE_UNAVAILABLE' && e.status === 503);
  } finally {
    await queue.close();
    await connections.close();
  }
});

test('enqueueAndWait answers QUEUE_UNAVAILABLE within its timeout instead of hanging when Redis is unreachable', async () => {
  // BullMQ's worker count and its events' readiness wait for Redis for ever on their connections.
  const connections = connectionsTo('redis://127.0.0.1:1');
  const queue = queueOn(connections, { prefix: 'down', attempts: 1, enqueueTimeoutMs: 500 });
  const startedAtMs = Date.now();
  try {
    await assert.rejects(queue.enqueueAndWait(job(5), 60_000), (e: GatewayError) => e.code === 'QUEUE_UNAVAILABLE' && e.status === 503 && /Redis/.test(e.message));
    assert.ok(Date.now() - startedAtMs < 10_000, `answered after ${Date.now() - startedAtMs} ms, not the 60 s reply timeout`);
  } finally {
    await queue.close();
    await connections.close();
  }
});

test('lock timing follows the segment target: a dead transcoder\'s job is free within ~2.25 segment durations', () => {
  assert.deepEqual(transcodeLockTimingFor(2000), { lockDurationMs: 3000, lockRenewTimeMs: 1000, stalledIntervalMs: 1500 });
  assert.deepEqual(transcodeLockTimingFor(6000), { lockDurationMs: 9000, lockRenewTimeMs: 3000, stalledIntervalMs: 4500 });
  assert.deepEqual(transcodeLockTimingFor(500), { lockDurationMs: 2000, lockRenewTimeMs: 667, stalledIntervalMs: 1000 }, 'floor for Redis latency');
  assert.deepEqual(parseTranscodeJobId(transcodeJobId(job(7))), { manifestID: 'q', session: 's1', seq: 7 });
  assert.equal(parseTranscodeJobId('not-a-transcode-job'), undefined);
});

test('a job whose worker stopped renewing its lock is re-queued, reported lost, and completed by another worker', async () => {
  const lost: { manifestID: string; seq: number }[] = [];
  const completed: number[] = [];
  let dead: Worker | undefined;
  let deadConnection: ReturnType<typeof createRedis> | undefined;
  const h = await harness({
    process: async (j) => result(j),
    onCompleted: async (j) => { completed.push(j.seq); },
    onFailedForGood: async () => { throw new Error('must not fail'); },
    onTranscoderLost: (j) => { lost.push(j); },
  }, 3, {
    lockTiming: { lockDurationMs: 600, lockRenewTimeMs: 200, stalledIntervalMs: 300 },
    // A worker that takes the job and then neither renews its lock nor finishes: a killed transcoder.
    beforeWorker: async (prefix, queue) => {
      deadConnection = createRedis({ url: redis.url, logger: silentLogger(), name: 'dead', maxRetriesPerRequest: null });
      let taken!: () => void;
      const took = new Promise<void>((r) => { taken = r; });
      dead = new Worker(TRANSCODE_QUEUE_NAME, () => { taken(); return new Promise(() => undefined); },
        { connection: deadConnection, prefix, lockDuration: 600, skipLockRenewal: true, skipStalledCheck: true });
      dead.on('error', () => undefined);
      await queue.enqueue(job(10));
      await took;
    },
  });
  try {
    await until(() => completed.length === 1);
    assert.deepEqual(lost, [{ manifestID: 'q', session: 's1', seq: 10 }]);
  } finally {
    await h.close();
    await dead?.close(true);
    deadConnection?.disconnect();
  }
});

test('a job that lost its transcoder twice fails for good once through onFailedForGood; a waiting push gets TRANSCODE_FAILED', async () => {
  const failed: { seq: number; code: string; cause: string }[] = [];
  let processed = 0;
  const h = await harness({
    process: async (j) => { processed += 1; return result(j); },
    onCompleted: async () => undefined,
    onFailedForGood: async (j, _reason, code, cause) => { failed.push({ seq: j.seq, code, cause }); },
  }, 3, {
    // Two losses already counted by BullMQ's stalled check (its `stc` field) before this worker runs.
    beforeWorker: async (prefix, queue) => {
      await queue.enqueue(job(11));
      await setJobFields(prefix, job(11), { stc: '2' });
    },
  });
  try {
    await assert.rejects(h.queue.enqueueAndWait(job(11), 10_000), (e: GatewayError) => e.code === 'TRANSCODE_FAILED' && e.status === 422 && /stopped/.test(e.message));
    assert.deepEqual(failed, [{ seq: 11, code: 'TRANSCODE_FAILED', cause: 'transcoder_lost' }]);
    assert.equal(processed, 0, 'not transcoded again');
  } finally {
    await h.close();
  }
});

test('a job BullMQ itself failed over its stalled limit still goes through onFailedForGood once', async () => {
  const failed: { seq: number; cause: string }[] = [];
  const h = await harness({
    process: async () => { throw new Error('must not run'); },
    onCompleted: async () => undefined,
    onFailedForGood: async (j, _reason, _code, cause) => { failed.push({ seq: j.seq, cause }); },
  }, 3, {
    // BullMQ's moveStalledJobsToWait marks a job over maxStalledCount with this deferred failure.
    beforeWorker: async (prefix, queue) => {
      await queue.enqueue(job(12));
      await setJobFields(prefix, job(12), { stc: '3', defa: 'job stalled more than allowable limit' });
    },
  });
  try {
    await assert.rejects(h.queue.enqueueAndWait(job(12), 10_000), (e: GatewayError) => e.code === 'TRANSCODE_FAILED');
    await until(() => failed.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(failed, [{ seq: 12, cause: 'transcoder_lost' }]);
  } finally {
    await h.close();
  }
});
