/**
 * The transcode backlog gauges (metrics/backlog-metrics.ts) over a real BullMQ queue on a
 * real redis-server: jobs queued with no transcoder show as depth and age; a transcoder that
 * starts takes them and the gauges follow; Redis gone leaves them absent without stalling.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRestartableRedis, type RestartableRedis } from '../../helpers/redis-server.ts';
import { TranscodeQueue, TranscodeWorker, type QueuedTranscodeJob } from '../../../src/transcode/transcode-queue.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { MetricsRegistry } from '../../../src/metrics/metrics-registry.ts';
import { registerBacklogGauges } from '../../../src/metrics/backlog-metrics.ts';

let redis: RestartableRedis;
before(async () => { redis = await startRestartableRedis({ appendOnly: false }); });
after(async () => { await redis.destroy(); });

function job(seq: number): QueuedTranscodeJob {
  return { manifestID: 'backlog', session: 's1', seq, sourceKey: `backlog/source/${seq}.ts`, durationMs: 2000, profiles: [], enqueuedAtMs: Date.now() };
}

/** The value of an unlabelled series in the exposition text (NaN for `NaN`); undefined when absent. */
function valueOf(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** A transcode queue under a fresh prefix on the test's redis-server, with its connections and an empty metrics registry. */
function backlogQueue(): { prefix: string; connections: RedisConnections; queue: TranscodeQueue; metrics: MetricsRegistry } {
  const prefix = `b${randomBytes(4).toString('hex')}`;
  const connections = new RedisConnections({ url: redis.url, logger: silentLogger(), namePrefix: 'mediagate:test' });
  const queue = new TranscodeQueue({
    connection: connections.open('queue', 'blocking'), openEventsConnection: () => connections.open('queue-events', 'blocking'),
    prefix, logger: silentLogger(), attempts: 1, backoffMs: 10,
  });
  return { prefix, connections, queue, metrics: new MetricsRegistry({ processMetrics: false }) };
}

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the backlog gauges follow jobs queued with no transcoder, then a transcoder taking them', { timeout: 60_000 }, async () => {
  const { prefix, connections, queue, metrics } = backlogQueue();
  registerBacklogGauges(metrics, () => queue.backlog());
  let worker: TranscodeWorker | undefined;
  try {
    let text = await metrics.metricsText();
    assert.equal(valueOf(text, 'mediagate_transcode_queue_depth'), 0);
    assert.equal(valueOf(text, 'mediagate_transcode_queue_oldest_job_age_seconds'), 0);
    assert.equal(valueOf(text, 'mediagate_live_sessions_waiting'), 0, 'live sessions off: none waits');

    const firstQueuedAt = Date.now();
    await queue.enqueue(job(0));
    await new Promise((r) => setTimeout(r, 1200));
    await queue.enqueue(job(1));
    await queue.enqueue(job(2));
    text = await metrics.metricsText();
    assert.equal(valueOf(text, 'mediagate_transcode_queue_depth'), 3, text);
    assert.equal(valueOf(text, 'mediagate_transcode_queue_active_jobs'), 0);
    const age = valueOf(text, 'mediagate_transcode_queue_oldest_job_age_seconds')!;
    // The oldest job's age, not a newer one's (those are < 0.1 s old).
    assert.ok(age >= 1.1 && age <= (Date.now() - firstQueuedAt) / 1000 + 0.01, `oldest job age ${age}`);

    // A transcoder starts and holds one job at a time until told to finish it.
    const release: (() => void)[] = [];
    worker = new TranscodeWorker({
      connection: connections.open('transcoder', 'blocking'), prefix, logger: silentLogger(), concurrency: 1,
      hooks: {
        process: (j) => new Promise((resolve) => { release.push(() => resolve({ manifestID: j.manifestID, seq: j.seq, renditions: [], elapsedMs: 1 })); }),
        onCompleted: async () => undefined,
        onFailedForGood: async () => undefined,
      },
    });
    await worker.waitUntilReady();
    await until(async () => release.length === 1);
    text = await metrics.metricsText();
    assert.equal(valueOf(text, 'mediagate_transcode_queue_depth'), 2, text);
    assert.equal(valueOf(text, 'mediagate_transcode_queue_active_jobs'), 1);
    // Jobs are taken oldest first: what waits now was queued after the first.
    assert.ok(valueOf(text, 'mediagate_transcode_queue_oldest_job_age_seconds')! < age, 'the oldest waiting job is now a newer one');

    await until(async () => {
      release.splice(0).forEach((r) => r());
      const t = await metrics.metricsText();
      return valueOf(t, 'mediagate_transcode_queue_depth') === 0 && valueOf(t, 'mediagate_transcode_queue_active_jobs') === 0;
    });
    text = await metrics.metricsText();
    assert.equal(valueOf(text, 'mediagate_transcode_queue_oldest_job_age_seconds'), 0);
  } finally {
    await worker?.close();
    await queue.close();
    await connections.close();
    metrics.close();
  }
});

test('with Redis down a scrape answers within the read timeout: the backlog gauges read NaN (not 0) and the failure is counted', { timeout: 60_000 }, async () => {
  const { connections, queue, metrics } = backlogQueue();
  registerBacklogGauges(metrics, async () => ({ ...(await queue.backlog()), liveSessionsWaiting: 4 }), { timeoutMs: 300 });
  try {
    let text = await metrics.metricsText();
    assert.equal(valueOf(text, 'mediagate_transcode_queue_depth'), 0);
    assert.equal(valueOf(text, 'mediagate_live_sessions_waiting'), 4);
    await redis.stop('SIGKILL');
    text = await metrics.metricsText();
    for (const name of ['transcode_queue_depth', 'transcode_queue_active_jobs', 'transcode_queue_oldest_job_age_seconds', 'live_sessions_waiting']) {
      assert.ok(Number.isNaN(valueOf(text, `mediagate_${name}`)), `${name} unknown: ${text}`);
    }
    assert.match(text, /^mediagate_metrics_source_errors_total\{source="transcode_backlog"\} 1$/m);
  } finally {
    await redis.start();
    await queue.close();
    await connections.close();
    metrics.close();
  }
});
