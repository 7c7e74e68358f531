/**
 * One AI worker pool for the cluster: two gateway processes on 127.0.0.1 sharing one real
 * redis-server, and fake ai-runner workers (test/helpers/fake-ai-worker.ts). A worker
 * registered through gateway A serves requests arriving at B; capacity holds across both;
 * each worker's health is polled once per interval in the cluster; a request waits for a worker
 * loading its model (up to ai.modelLoadWaitMs); a request naming no model goes to a served one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnMediagate, startGatewayPair, waitForHttp, type GatewayPair } from '../../helpers/gateway-process.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { listWorkers, postPipeline, registerWorker, waitForListedWorker } from '../../helpers/ai-cluster.ts';
import { execFileSync } from 'node:child_process';

/** `INFO commandstats` calls per command of the test's redis-server. */
function commandCalls(port: number): Map<string, number> {
  const text = execFileSync('redis-cli', ['-p', String(port), 'info', 'commandstats']).toString();
  return new Map([...text.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

const HEALTH_INTERVAL_MS = 500;
const MODEL_LOAD_WAIT_MS = 4000;

let pair: GatewayPair;
let A: string;
let B: string;
const workers: FakeAiWorker[] = [];

before(async () => {
  pair = await startGatewayPair({
    MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_LOG_LEVEL: 'warn',
    MEDIAGATE_AI_HEALTH_INTERVAL_MS: String(HEALTH_INTERVAL_MS), MEDIAGATE_AI_QUEUE_WAIT_MS: '20000',
    MEDIAGATE_AI_MODEL_LOAD_WAIT_MS: String(MODEL_LOAD_WAIT_MS), MEDIAGATE_AI_TOTAL_BUDGET_MS: '30000',
  });
  const a = spawnMediagate('gateway', pair.first.env);
  const b = spawnMediagate('gateway', pair.second.env);
  pair.processes.push(a, b);
  A = pair.first.httpUrl;
  B = pair.second.httpUrl;
  // Generous: the machine running the suite may be busy.
  await Promise.all([waitForHttp(`${A}/healthz`, a, 90_000), waitForHttp(`${B}/healthz`, b, 90_000)]);
}, { timeout: 120_000 });

after(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await pair?.close();
});

async function worker(options: Parameters<typeof startFakeAiWorker>[0] = {}): Promise<FakeAiWorker> {
  const w = await startFakeAiWorker(options);
  workers.push(w);
  return w;
}

test('a worker registered through gateway A serves requests arriving at gateway B', async () => {
  const w = await worker({ pipelines: ['text-to-image'] });
  await registerWorker(A, w, [{ pipeline: 'text-to-image', model_id: 'pool/one', capacity: 3 }]);
  await waitForListedWorker(B, w.url, (x) => x?.healthy === true);
  const res = await postPipeline(B, 'text-to-image', { prompt: 'x', model_id: 'pool/one', width: 64, height: 64 });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(w.calls.length, 1, 'B called the worker registered through A');
  assert.equal(w.calls[0]!.fields['model_id'], 'pool/one');
});

test('50 concurrent requests across both gateways never exceed the worker\'s capacity', { timeout: 60_000 }, async (t) => {
  const w = await worker({ pipelines: ['text-to-image'], delayMs: 100 });
  await registerWorker(B, w, [{ pipeline: 'text-to-image', model_id: 'pool/cap', capacity: 3 }]);
  await waitForListedWorker(A, w.url, (x) => x?.healthy === true);
  w.resetStats();
  const before = commandCalls(pair.redis.port);
  const startedMs = Date.now();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    postPipeline(i % 2 === 0 ? A : B, 'text-to-image', { prompt: 'x', model_id: 'pool/cap', width: 64, height: 64 }).then(async (r) => ({ status: r.status, body: await r.text() }))));
  assert.deepEqual([...new Set(results.map((r) => r.status))], [200], JSON.stringify(results.find((r) => r.status !== 200)));
  const after = commandCalls(pair.redis.port);
  // For the report: Redis commands in the window (background refreshes and health rounds of two gateways included).
  t.diagnostic(`redis commands during 50 requests in ${Date.now() - startedMs} ms: ${JSON.stringify(Object.fromEntries([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]).filter(([, d]) => (d as number) > 0)))}`);
  assert.equal(w.calls.length, 50);
  assert.ok(w.maxInFlight <= 3, `the worker peaked at ${w.maxInFlight} requests in flight (capacity 3)`);
  assert.equal(w.maxInFlight, 3, 'the capacity was used');
  // Every slot was given back: the pool's in-flight count returns to 0 on both gateways.
  for (const g of [A, B]) await waitForListedWorker(g, w.url, (x) => x?.pipelines[0]?.inFlight === 0, 5000);
});

test('a worker\'s health is polled once per interval across the two gateways', { timeout: 30_000 }, async () => {
  const w = await worker({ pipelines: ['text-to-image'] });
  await registerWorker(A, w, [{ pipeline: 'text-to-image', model_id: 'pool/health', capacity: 1 }]);
  await waitForListedWorker(B, w.url, (x) => x?.healthy === true);
  w.resetStats();
  const windowMs = 6000;
  const startedMs = Date.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const hits = w.healthHits;
  const elapsedMs = Date.now() - startedMs;
  // One poll per interval in the cluster (the poll lock is held for 90% of an interval);
  // each gateway polling on its own would make about 2 × elapsed / interval.
  const atMost = Math.floor(elapsedMs / (HEALTH_INTERVAL_MS * 0.9)) + 1;
  assert.ok(hits <= atMost, `${hits} health polls in ${elapsedMs} ms (at most ${atMost} for one poll per interval)`);
  assert.ok(hits >= Math.floor(elapsedMs / HEALTH_INTERVAL_MS / 2), `${hits} health polls in ${elapsedMs} ms: the worker is still polled`);
});

test('a request waits for the only worker while it loads its model; past ai.modelLoadWaitMs, 503', { timeout: 30_000 }, async () => {
  const w = await worker({ pipelines: ['text-to-speech'] });
  w.setHealth('LOADING');
  await registerWorker(A, w, [{ pipeline: 'text-to-speech', model_id: 'pool/loading', capacity: 1 }]);
  await waitForListedWorker(B, w.url, (x) => x?.status === 'LOADING');

  const startedMs = Date.now();
  const pending = postPipeline(B, 'text-to-speech', { text: 'hello', model_id: 'pool/loading' });
  await new Promise((r) => setTimeout(r, 1500));
  w.setHealth('OK');
  const res = await pending;
  assert.equal(res.status, 200, await res.clone().text());
  assert.ok(Date.now() - startedMs >= 1500, 'answered once the model was loaded');
  assert.equal(w.calls.length, 1);

  // Still loading past the bound: the existing 503 NO_WORKER.
  w.setHealth('LOADING');
  await waitForListedWorker(A, w.url, (x) => x?.status === 'LOADING');
  const again = Date.now();
  const refused = await postPipeline(A, 'text-to-speech', { text: 'hello', model_id: 'pool/loading' });
  const waitedMs = Date.now() - again;
  assert.equal(refused.status, 503);
  assert.equal(((await refused.json()) as { detail: { code: string } }).detail.code, 'NO_WORKER');
  assert.ok(waitedMs >= MODEL_LOAD_WAIT_MS - 200, `waited ${waitedMs} ms for the model (bound ${MODEL_LOAD_WAIT_MS} ms)`);
  assert.equal(w.calls.length, 1, 'a loading worker is not called');
});

test('a request without model_id whose pipeline default is not served goes to a served model', async () => {
  // The runner is configured with one model: a request for another gets 400 from it.
  const w = await worker({ pipelines: ['image-to-text'], models: { 'image-to-text': 'pool/captioner' } });
  await registerWorker(A, w, [{ pipeline: 'image-to-text', model_id: 'pool/captioner', capacity: 2 }]);
  await waitForListedWorker(B, w.url, (x) => x?.healthy === true);
  const { solidPng } = await import('../../helpers/png.ts');
  const form = new FormData();
  form.set('image', new Blob([solidPng(32, 32)], { type: 'image/png' }), 'a.png');
  const res = await fetch(`${B}/image-to-text`, { method: 'POST', body: form });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(w.calls.at(-1)!.fields['model_id'], 'pool/captioner', 'sent to the served model');
  assert.ok((await listWorkers(B)).some((x) => x.url === w.url));
});
