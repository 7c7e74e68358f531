import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionManager, type ClassifiedFailure } from '../../../src/ai/session-manager.ts';
import { WorkerRegistry } from '../../../src/ai/worker-registry.ts';
import { makeRetryConfig } from '../../../src/ai/retry-policy.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import type { FailureKind } from '../../../src/domain/pipelines.ts';

class Failure extends Error {
  constructor(readonly kind: FailureKind, readonly workerMessage?: string) { super(`${kind} failure`); }
}

/** A registry of healthy workers and a manager whose caller runs `behaviour(url)`. */
async function setup(workers: { url: string; capacity: number; warm?: boolean }[], behaviour: (url: string) => Promise<string>, retry = {}) {
  const registry = new WorkerRegistry({ logger: silentLogger(), healthIntervalMs: 60_000, checkHealth: async () => 'OK' });
  for (const w of workers) await registry.register({ url: w.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'm', capacity: w.capacity, warm: w.warm ?? true }] }, 'config');
  const calls: string[] = [];
  const manager = new SessionManager<string, string>({
    registry, logger: silentLogger(), random: () => 0.99,
    retry: makeRetryConfig({ queueWaitMs: 200, suspendBaseMs: 1000, ...retry }),
    caller: { call: async (endpoint) => { calls.push(endpoint.url); return behaviour(endpoint.url); } },
    classify: (err): ClassifiedFailure => (err instanceof Failure
      ? { kind: err.kind, message: err.message, ...(err.workerMessage ? { workerMessage: err.workerMessage } : {}) }
      : { kind: 'server', message: String(err) }),
  });
  const route = () => manager.route({ pipeline: 'text-to-image', modelID: 'm', request: 'req', workUnits: 1000, requestID: 'r1' });
  return { registry, manager, calls, route };
}

test('when every worker is busy the request waits a bounded time, then gets NO_WORKER (503)', async () => {
  let unblock: () => void = () => undefined;
  const { route, calls } = await setup([{ url: 'http://w1', capacity: 1 }], () => new Promise((r) => { unblock = () => r('late'); }));
  const first = route();
  await new Promise((r) => setTimeout(r, 20));
  const started = Date.now();
  await assert.rejects(route(), (e: GatewayError) => e.code === 'NO_WORKER' && e.status === 503);
  const waited = Date.now() - started;
  assert.ok(waited >= 180 && waited < 2000, `waited ${waited} ms for the 200 ms queue wait`);
  unblock();
  const done = await first;
  done.done();
  assert.equal(calls.length, 1, 'the waiting request never reached a worker');
});

test('a busy worker that frees up during the wait serves the waiting request', async () => {
  let releaseFirst: () => void = () => undefined;
  let n = 0;
  const { route } = await setup([{ url: 'http://w1', capacity: 1 }], () => (n++ === 0 ? new Promise((r) => { releaseFirst = () => r('first'); }) : Promise.resolve('second')));
  const first = route();
  await new Promise((r) => setTimeout(r, 20));
  const second = route();
  setTimeout(async () => { releaseFirst(); (await first).done(); }, 50);
  const reply = await second;
  assert.equal(reply.reply, 'second');
  reply.done();
});

test('server failures fail over to the next worker and exhaust into WORKER_FAILED', async () => {
  const { route, calls, registry } = await setup([{ url: 'http://w1', capacity: 1 }, { url: 'http://w2', capacity: 1 }, { url: 'http://w3', capacity: 1 }],
    async () => { throw new Failure('server'); }, { maxAttempts: 2 });
  await assert.rejects(route(), (e: GatewayError) => e.code === 'WORKER_FAILED' && e.status === 503);
  assert.equal(calls.length, 2, 'maxAttempts bounds the attempts');
  assert.equal(new Set(calls).size, 2, 'each attempt went to a different worker');
  const suspended = registry.list().filter((w) => w.suspendedUntil !== undefined);
  assert.equal(suspended.length, 2, 'both failing workers are suspended');
});

test('a failure of the accept step counts against the worker: failover, suspension, slot released', async () => {
  const { manager, calls, registry } = await setup([{ url: 'http://w1', capacity: 1, warm: true }, { url: 'http://w2', capacity: 1, warm: false }],
    async (url) => `answer of ${url}`);
  const accepted: string[] = [];
  const reply = await manager.route({ pipeline: 'text-to-image', modelID: 'm', request: 'req', workUnits: 1000, requestID: 'r1' },
    async (answer, worker) => {
      accepted.push(`${worker.endpoint.url} ${worker.timeoutMs > 0}`);
      if (worker.endpoint.url === 'http://w1') throw new Failure('server');
      return answer.toUpperCase();
    });
  reply.done();
  assert.equal(reply.reply, 'ANSWER OF HTTP://W2', 'the accepted result is returned');
  assert.deepEqual(calls, ['http://w1', 'http://w2']);
  assert.deepEqual(accepted, ['http://w1 true', 'http://w2 true']);
  const w1 = registry.list().find((w) => w.url === 'http://w1')!;
  assert.ok(w1.suspendedUntil, 'the worker whose reply was refused is suspended');
  assert.equal(w1.pipelines[0]!.inFlight, 0, 'its slot is released');
});

test('when the last attempt fails in the accept step the request ends 502 WORKER_BAD_RESULT naming the problem', async () => {
  const { manager, calls } = await setup([{ url: 'http://w1', capacity: 1 }], async () => 'answer');
  await assert.rejects(
    manager.route({ pipeline: 'text-to-image', modelID: 'm', request: 'req', workUnits: 1000, requestID: 'r1' }, async () => { throw new Error('media URL points elsewhere'); }),
    (e: GatewayError) => e.code === 'WORKER_BAD_RESULT' && e.status === 502 && /media URL points elsewhere/.test(e.message));
  assert.equal(calls.length, 1);
});

test('a client failure is returned as INVALID_REQUEST with the worker reason and not retried', async () => {
  const { route, calls } = await setup([{ url: 'http://w1', capacity: 1 }, { url: 'http://w2', capacity: 1 }], async () => { throw new Failure('client', 'prompt too long'); });
  await assert.rejects(route(), (e: GatewayError) => e.code === 'INVALID_REQUEST' && e.message === 'prompt too long');
  assert.equal(calls.length, 1);
});

test('a capacity refusal moves on without suspending the worker', async () => {
  const { route, calls, registry } = await setup([{ url: 'http://w1', capacity: 1 }, { url: 'http://w2', capacity: 1 }],
    async (url) => { if (url === 'http://w1') throw new Failure('capacity'); return 'ok'; });
  const reply = await route();
  reply.done();
  assert.equal(reply.reply, 'ok');
  assert.deepEqual(calls.sort(), ['http://w1', 'http://w2']);
  assert.ok(registry.list().every((w) => w.suspendedUntil === undefined));
});

test('a slot is held until done() and released exactly once', async () => {
  const { route, registry } = await setup([{ url: 'http://w1', capacity: 2 }], async () => 'ok');
  const reply = await route();
  assert.equal(registry.list()[0]!.pipelines[0]!.inFlight, 1);
  reply.done();
  reply.done();
  assert.equal(registry.list()[0]!.pipelines[0]!.inFlight, 0);
});

test('a waiting request is woken by the release of a slot (no polling), and another times out at its queueWaitMs deadline', async (t) => {
  // With setTimeout mocked, no timer fires unless ticked: a request that polled for a free
  // slot would never see it. The clock is injected and moved with the mocked timers.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let nowMs = 1_000_000;
  const registry = new WorkerRegistry({ logger: silentLogger(), healthIntervalMs: 60_000, checkHealth: async () => 'OK', now: () => nowMs });
  await registry.register({ url: 'http://w1', pipelines: [{ pipeline: 'text-to-image', model_id: 'm', capacity: 1, warm: true }] }, 'config');
  const pending: ((reply: string) => void)[] = [];
  const manager = new SessionManager<string, string>({
    registry, logger: silentLogger(), random: () => 0.99, now: () => nowMs,
    retry: makeRetryConfig({ queueWaitMs: 5_000, totalBudgetMs: 60_000 }),
    caller: { call: () => new Promise<string>((r) => { pending.push(r); }) },
    classify: (err): ClassifiedFailure => ({ kind: 'server', message: String(err) }),
  });
  const route = (id: string) => manager.route({ pipeline: 'text-to-image', modelID: 'm', request: id, workUnits: 1, requestID: id });
  const state = <T>(p: Promise<T>): { settled: boolean; value?: T; error?: unknown } => {
    const s: { settled: boolean; value?: T; error?: unknown } = { settled: false };
    p.then((value) => { s.settled = true; s.value = value; }, (error: unknown) => { s.settled = true; s.error = error; });
    return s;
  };
  const turns = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r)); };

  const first = state(route('first'));
  await turns();
  assert.equal(pending.length, 1, 'the first request holds the only slot');
  const second = state(route('second'));
  await turns();
  assert.equal(second.settled, false, 'the second request waits');
  assert.equal(pending.length, 1);

  pending[0]!('one');
  await turns();
  assert.ok(first.settled && first.value);
  first.value.done(); // releases the slot
  await turns();
  assert.equal(pending.length, 2, 'the release woke the waiting request, which called the worker');
  pending[1]!('two');
  await turns();
  assert.equal(second.value?.reply, 'two');

  // The second request still holds the slot: a third waits until its deadline.
  const third = state(route('third'));
  await turns();
  nowMs += 4_999;
  t.mock.timers.tick(4_999);
  await turns();
  assert.equal(third.settled, false, 'still waiting 1 ms before the deadline');
  nowMs += 1;
  t.mock.timers.tick(1);
  await turns();
  assert.ok(third.settled && third.error instanceof GatewayError && third.error.code === 'NO_WORKER', `third ended with ${String(third.error)}`);
  assert.equal(pending.length, 2, 'the third request never reached the worker');
  second.value.done();
});
