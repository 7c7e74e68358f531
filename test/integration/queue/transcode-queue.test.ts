import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { TranscodeQueue, TranscodeWorker, type QueuedTranscodeJob, type TranscodeWorkerHooks } from '../../../src/queue/transcode-queue.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import type { TranscodeResult } from '../../../src/domain/segment.ts';

let redis: TestRedis;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.stop(); });

function job(seq: number): QueuedTranscodeJob {
  return { manifestID: 'q', session: 's1', seq, sourceKey: `q/source/${seq}.ts`, durationMs: 2000, profiles: [], enqueuedAtMs: Date.now() };
}

/** A queue + worker pair on a fresh prefix; `hooks` decide what each attempt does. */
async function harness(hooks: TranscodeWorkerHooks, attempts = 3) {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const queue = new TranscodeQueue({ redisUrl: redis.url, prefix, logger: silentLogger(), attempts, backoffMs: 10 });
  const worker = new TranscodeWorker({ redisUrl: redis.url, prefix, logger: silentLogger(), concurrency: 1, hooks });
  await worker.waitUntilReady();
  return { queue, worker, close: async () => { await worker.close(); await queue.close(); } };
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
  const queue = new TranscodeQueue({ redisUrl: 'redis://127.0.0.1:1', prefix: 'down', logger: silentLogger(), attempts: 1, backoffMs: 10, enqueueTimeoutMs: 500 });
  try {
    await assert.rejects(queue.enqueue(job(4)), (e: GatewayError) => e.code === 'QUEUE_UNAVAILABLE' && e.status === 503);
  } finally {
    await queue.close();
  }
});
