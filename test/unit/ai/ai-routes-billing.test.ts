/**
 * The AI routes' credit hold around a worker call (ai-routes.ts): taken concurrently with the
 * worker slot, awaited before any worker is called, released whenever the request is not
 * charged, and a refused hold answers 402 whatever routing did. In process: the real router,
 * session manager and worker registry; the worker, the billing and the result store are
 * stand-ins that record what happened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAiRouter, type AiBilling } from '../../../src/ai/ai-routes.ts';
import { SessionManager } from '../../../src/ai/session-manager.ts';
import { WorkerRegistry } from '../../../src/ai/worker-registry.ts';
import { makeRetryConfig } from '../../../src/ai/retry-policy.ts';
import type { WorkerReply } from '../../../src/ai/worker-reply.ts';
import type { AiRequest } from '../../../src/ai/worker-request.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { solidPng } from '../../helpers/png.ts';

const MODEL = 'stabilityai/sdxl-turbo';

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: Error): void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not in time: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A gateway's AI router over one stand-in worker; `events` records the steps in the order they happened. */
async function setup(options: { hold: () => Promise<void>; worker?: () => Promise<WorkerReply>; serverTiming?: boolean }) {
  const events: string[] = [];
  const registry = new WorkerRegistry({ logger: silentLogger(), healthIntervalMs: 60_000, checkHealth: async () => 'OK' });
  await registry.register({ url: 'http://127.0.0.1:9', pipelines: [{ pipeline: 'text-to-image', model_id: MODEL, capacity: 1, warm: true }] }, 'config');
  const acquire = registry.acquire.bind(registry);
  registry.acquire = async (...args) => { events.push('slot'); return acquire(...args); };
  const png = solidPng(8, 8, [1, 2, 3]);
  const sessions = new SessionManager<AiRequest, WorkerReply>({
    registry, logger: silentLogger(), retry: makeRetryConfig({ queueWaitMs: 100, maxAttempts: 1 }),
    caller: {
      call: async () => {
        events.push('call');
        return options.worker ? options.worker() : { kind: 'json', status: 200, body: { images: [{ url: `data:image/png;base64,${png.toString('base64')}`, seed: 1 }] } };
      },
    },
    classify: (err) => ({ kind: 'server', message: String(err) }),
  });
  const billing: AiBilling = {
    reserveAi: async () => { events.push('hold'); await options.hold(); events.push('held'); },
    settleAi: async () => { events.push('settle'); },
    releaseAi: async () => { events.push('release'); },
  };
  const uploadDir = mkdtempSync(join(tmpdir(), 'mg-ai-billing-'));
  const app = createHttpApp({
    logger: silentLogger(), health: async () => ({ status: 'ok', checks: {} }),
    routers: [createAiRouter({
      sessions, registry, billing, authorizer: { authorize: async () => ({ accountID: 'acct' }) },
      results: { putBytes: async (key, data) => { events.push('store'); return { sizeBytes: data.byteLength }; }, getStream: async () => undefined },
      fetchMedia: async (url) => ({ contentType: 'image/png', data: Buffer.from(url.slice(url.indexOf(',') + 1), 'base64') }),
      framesToMp4: async () => undefined, probeAudioMs: async () => 0,
      uploadDir, publicUrl: 'http://127.0.0.1', adminToken: '', loopbackOnly: true, maxImageBytes: 1024, maxAudioBytes: 1024,
      ...(options.serverTiming ? { serverTiming: true } : {}), logger: silentLogger(),
    })],
  });
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    events, registry,
    post: (model = MODEL): Promise<Response> => fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model_id: model }) }),
    inFlight: (): number => registry.candidates('text-to-image', MODEL)[0]!.inFlight,
    close: async (): Promise<void> => {
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      await registry.close();
      rmSync(uploadDir, { recursive: true, force: true });
    },
  };
}

test('the worker slot is taken while the credit hold is in flight, and the worker is called only once the hold is in place', async () => {
  const hold = deferred();
  const g = await setup({ hold: () => hold.promise });
  try {
    const answer = g.post();
    await until(() => g.events.includes('slot'), 'the slot taken while the hold is pending');
    assert.deepEqual(g.events, ['hold', 'slot'], 'no worker called before the hold is in place');
    hold.resolve();
    const res = await answer;
    assert.equal(res.status, 200, await res.clone().text());
    await res.json();
    assert.deepEqual(g.events, ['hold', 'slot', 'held', 'call', 'store', 'settle'], 'charged once, after the result is stored; nothing released');
    await until(() => g.inFlight() === 0, 'the slot given back');
  } finally {
    await g.close();
  }
});

test('a refused hold answers 402 with no worker called, gives the slot back and releases nothing', async () => {
  const g = await setup({ hold: async () => { await new Promise((r) => setTimeout(r, 30)); throw new GatewayError('INSUFFICIENT_BALANCE', 'insufficient balance: this request costs up to 5 credits and the account has 0'); } });
  try {
    const res = await g.post();
    assert.equal(res.status, 402);
    assert.equal(((await res.json()) as { detail: { code: string } }).detail.code, 'INSUFFICIENT_BALANCE');
    assert.ok(!g.events.includes('call'), `no worker called: ${g.events.join(', ')}`);
    assert.ok(!g.events.includes('release') && !g.events.includes('settle'), `no hold to release, nothing charged: ${g.events.join(', ')}`);
    assert.equal(g.inFlight(), 0, 'the slot taken during the hold is given back');
  } finally {
    await g.close();
  }
});

test('a refused hold decides the answer when no worker serves the model either (402, not 503)', async () => {
  const g = await setup({ hold: async () => { await new Promise((r) => setTimeout(r, 30)); throw new GatewayError('INSUFFICIENT_BALANCE', 'insufficient balance'); } });
  try {
    const res = await g.post('org/unserved');
    assert.equal(res.status, 402);
    assert.deepEqual(g.events, ['hold'], 'nothing called, nothing released');
  } finally {
    await g.close();
  }
});

test('when routing fails while the hold is still pending, the hold is released once it is in place, and nothing is charged', async () => {
  const g = await setup({ hold: () => new Promise((r) => setTimeout(r, 50)) });
  try {
    const res = await g.post('org/unserved');
    assert.equal(res.status, 503);
    assert.deepEqual(g.events, ['hold', 'held', 'release']);
  } finally {
    await g.close();
  }
});

test('a failed worker call charges nothing and releases the hold', async () => {
  const g = await setup({ hold: async () => undefined, worker: async () => { throw new Error('worker broke'); } });
  try {
    const res = await g.post();
    assert.equal(res.status, 503);
    assert.deepEqual(g.events, ['hold', 'slot', 'held', 'call', 'release']);
    assert.equal(g.inFlight(), 0);
  } finally {
    await g.close();
  }
});

test('with ai.serverTiming a pipeline answer carries a Server-Timing header naming each stage it passed; without it none', async () => {
  const timed = await setup({ hold: async () => undefined, serverTiming: true });
  try {
    const res = await timed.post();
    assert.equal(res.status, 200);
    const names = (res.headers.get('server-timing') ?? '').split(',').map((e) => e.trim().split(';')[0]);
    assert.deepEqual(names.filter((n) => n !== 'slot' && n !== 'hold'), ['auth', 'body', 'validate', 'call', 'media', 'store', 'settle', 'total']);
    assert.ok(names.includes('slot') && names.includes('hold'), names.join(', '));
  } finally {
    await timed.close();
  }
  const plain = await setup({ hold: async () => undefined });
  try {
    const res = await plain.post();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('server-timing'), null);
  } finally {
    await plain.close();
  }
});
