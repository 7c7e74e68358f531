/**
 * Result media may come only from the answering worker's own origin or a data: URL (no
 * server-side request forgery through a worker's answer): a real gateway on 127.0.0.1, a
 * real redis-server for its state, a second real redis-server as the internal service a
 * hostile worker points at, a TCP listener that records every connection, and fake
 * ai-runner workers answering with chosen result URLs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { pngSize, solidPng } from '../../helpers/png.ts';
import { appForSuite } from '../../helpers/suite-setup.ts';

const gateway = appForSuite({
  rtmp: { enabled: false }, transcode: { embedded: false }, redis: { keyPrefix: 'aiorigin' },
  ai: { healthIntervalMs: 60_000, suspendBaseMs: 60_000, attemptTimeoutMs: 5_000, totalBudgetMs: 20_000, queueWaitMs: 1_000 },
});
let victim: TestRedis;
let victimClient: Redis;
let recorder: Server;
let recorderPort: number;
const recorded: Socket[] = [];
let base: string;
const workers: FakeAiWorker[] = [];
let modelCounter = 0;

before(async () => {
  victim = await startRedis();
  // One connection held open for INFO, so the victim's connection count is ours plus whatever the gateway opens.
  victimClient = new Redis(victim.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await victimClient.connect();
  recorder = createServer((socket) => { recorded.push(socket); socket.destroy(); });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', () => resolve()));
  recorderPort = (recorder.address() as { port: number }).port;
  await gateway.ready;
  base = gateway.httpUrl;
});

after(async () => {
  await Promise.all(workers.map((w) => w.close()));
  victimClient?.disconnect();
  // Only a recorder that was made: a before() that failed earlier left none, and the promise would never settle.
  if (recorder !== undefined) await new Promise((r) => recorder.close(r));
  await victim?.stop();
});

/** Connections the victim redis-server has accepted so far (`INFO stats`). */
async function victimConnections(): Promise<number> {
  const info = await victimClient.info('stats');
  return Number(/^total_connections_received:(\d+)/m.exec(info)?.[1]);
}

/** A fresh fake worker registered for `model` (warm or cold), so suspensions never leak between tests. */
async function worker(model: string, warm = true, options: Parameters<typeof startFakeAiWorker>[0] = {}): Promise<FakeAiWorker> {
  const w = await startFakeAiWorker(options);
  workers.push(w);
  const res = await fetch(`${base}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: w.url, pipelines: [{ pipeline: 'text-to-image', model_id: model, warm, capacity: 2 }] }),
  });
  assert.equal(res.status, 201, await res.text());
  return w;
}

const nextModel = (): string => `origin/model-${++modelCounter}`;

const t2i = (model: string): Promise<Response> => fetch(`${base}/text-to-image`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model_id: model, width: 64, height: 64 }),
});

async function workerView(url: string): Promise<{ suspendedUntil?: string }> {
  const list = (await (await fetch(`${base}/api/workers`)).json()) as { workers: { url: string; suspendedUntil?: string }[] };
  const found = list.workers.find((w) => w.url === url);
  assert.ok(found, `worker ${url} is listed`);
  return found;
}

/** Sum of `mediagate_ai_worker_failures_total` samples of kind `server` on /metrics. */
async function serverWorkerFailures(): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('mediagate_ai_worker_failures_total{') && l.includes('kind="server"'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function assertBadResult(res: Response, message: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 502, text);
  const body = JSON.parse(text) as { detail: { msg: string; code: string } };
  assert.equal(body.detail.code, 'WORKER_BAD_RESULT');
  assert.match(body.detail.msg, message);
}

test('a result URL pointing at a real redis-server on 127.0.0.1 is refused with 502 and redis is never contacted', async () => {
  const model = nextModel();
  const bad = await worker(model);
  bad.setResultUrl(`http://127.0.0.1:${victim.port}/`);
  const before = await victimConnections();
  const failuresBefore = await serverWorkerFailures();
  const res = await t2i(model);
  assert.equal(await victimConnections(), before, 'redis received no connection from the gateway');
  await assertBadResult(res, /another origin than the worker's/);
  assert.equal(bad.calls.length, 1, 'the worker was called once');
  assert.equal(await serverWorkerFailures(), failuresBefore + 1, 'the refused result counts as a worker failure in /metrics');
  assert.ok((await workerView(bad.url)).suspendedUntil, 'the worker is suspended after its bad result');
});

test('a same-origin result URL that redirects to another port is refused, and that port is never contacted', async () => {
  const model = nextModel();
  const bad = await worker(model);
  bad.setResultUrl(bad.addRedirect('to-recorder.png', `http://127.0.0.1:${recorderPort}/x.png`));
  const res = await t2i(model);
  assert.equal(recorded.length, 0, 'the redirect target received no connection');
  await assertBadResult(res, /redirect points at another origin/);

  const model2 = nextModel();
  const bad2 = await worker(model2);
  bad2.setResultUrl(bad2.addRedirect('to-redis.png', `http://127.0.0.1:${victim.port}/`));
  const before = await victimConnections();
  await assertBadResult(await t2i(model2), /redirect points at another origin/);
  assert.equal(await victimConnections(), before, 'redis received no connection from the gateway');
});

test('file:, gopher: and ftp: result URLs get 502 naming the scheme, and nothing local leaks', async () => {
  for (const [url, scheme] of [['file:///etc/passwd', 'file:'], [`gopher://127.0.0.1:${recorderPort}/_INFO`, 'gopher:'], [`ftp://127.0.0.1:${recorderPort}/x.png`, 'ftp:']] as const) {
    const model = nextModel();
    const bad = await worker(model);
    bad.setResultUrl(url);
    const res = await t2i(model);
    const text = await res.clone().text();
    assert.doesNotMatch(text, /root:/, 'no file content in the answer');
    await assertBadResult(res, new RegExp(`scheme ${scheme} is not allowed`));
  }
  assert.equal(recorded.length, 0, 'nothing was contacted for gopher: or ftp:');
});

test('a bad result fails over to a healthy worker within the budget, and the bad worker is suspended', async () => {
  const model = nextModel();
  const bad = await worker(model, true); // warm: preferred
  const good = await worker(model, false);
  bad.setResultUrl(`http://127.0.0.1:${victim.port}/`);
  const before = await victimConnections();
  const res = await t2i(model);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { images: { url: string }[] };
  const image = await fetch(body.images[0]!.url);
  assert.deepEqual(pngSize(Buffer.from(await image.arrayBuffer())), { width: 64, height: 64 });
  assert.equal(bad.calls.length, 1);
  assert.equal(good.calls.length, 1, 'the request failed over to the healthy worker');
  assert.equal(await victimConnections(), before, 'redis received no connection from the gateway');
  assert.ok((await workerView(bad.url)).suspendedUntil, 'the bad worker is suspended');
  assert.equal((await workerView(good.url)).suspendedUntil, undefined);

  assert.equal((await t2i(model)).status, 200);
  assert.equal(bad.calls.length, 1, 'the suspended worker gets no further requests');
  assert.equal(good.calls.length, 2);
});

test("media from the worker's own origin, absolute, relative or behind a same-origin redirect, are re-hosted", async () => {
  for (const mediaUrls of ['absolute', 'relative'] as const) {
    const model = nextModel();
    await worker(model, true, { mediaUrls });
    const res = await t2i(model);
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { images: { url: string }[] };
    assert.deepEqual(pngSize(Buffer.from(await (await fetch(body.images[0]!.url)).arrayBuffer())), { width: 64, height: 64 });
  }
  const model = nextModel();
  const w = await worker(model);
  w.addMedia('img.png', solidPng(64, 64, [10, 200, 30]), 'image/png');
  w.setResultUrl(w.addRedirect('hop.png', '/media/img.png')); // a relative Location on the same origin
  const res = await t2i(model);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { images: { url: string }[] };
  assert.deepEqual(pngSize(Buffer.from(await (await fetch(body.images[0]!.url)).arrayBuffer())), { width: 64, height: 64 });
});
