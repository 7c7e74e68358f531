/**
 * The cluster's AI worker pool in a real redis-server (src/ai/worker-pool-store.ts), with two
 * stores on two connections standing in for two gateways.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisWorkerPool, type PooledWorker } from '../../../src/ai/worker-pool-store.ts';
import { silentLogger } from '../../../src/log/logger.ts';

let server: TestRedis;
let first: RedisConnections;
let second: RedisConnections;
let a: RedisWorkerPool;
let b: RedisWorkerPool;
const keys = new RedisKeys('pooltest');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  server = await startRedis();
  first = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:a' });
  second = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:b' });
  await first.ready('state', 10_000);
  await second.ready('state', 10_000);
  a = new RedisWorkerPool({ redis: first.open('state'), keys });
  b = new RedisWorkerPool({ redis: second.open('state'), keys });
});

after(async () => {
  await first?.close();
  await second?.close();
  await server?.stop();
});

const worker = (id: string): PooledWorker => ({
  id, url: `http://10.0.0.1/${id}`, token: 'secret', source: 'api', registeredAtMs: 1,
  pipelines: [{ pipeline: 'text-to-image', model_id: 'm/1', warm: true, capacity: 2 }],
});

test('a worker saved through one gateway is read by another, with its health, until its registration expires', async () => {
  assert.equal(await a.saveWorker(worker('w-exp'), 300), true);
  assert.equal(await a.saveWorker(worker('w-exp'), 300), false, 'a renewal is not new');
  assert.equal(await b.saveHealth('w-exp', 'OK', 300), true);
  const seen = (await b.read()).workers.find((w) => w.worker.id === 'w-exp');
  assert.equal(seen?.worker.url, 'http://10.0.0.1/w-exp');
  assert.equal(seen?.health?.status, 'OK');
  assert.deepEqual(seen?.inFlight, [0]);
  await sleep(150);
  await a.saveHealth('w-exp', 'LOADING', 300); // an answer renews the registration
  await sleep(200);
  assert.ok((await b.read()).workers.some((w) => w.worker.id === 'w-exp'), 'renewed by the health answer');
  await a.saveHealth('w-exp', 'UNREACHABLE', 300); // no answer: no renewal
  await sleep(350);
  assert.equal((await b.read()).workers.some((w) => w.worker.id === 'w-exp'), false, 'expired');
  assert.equal(await a.saveHealth('w-exp', 'OK', 300), false, 'no health kept for a worker that left');
});

test('a slow poll\'s older answer, stored after a newer one, does not replace it', async () => {
  assert.equal(await a.saveWorker(worker('w-late'), 5000), true);
  // Gateway a asked 400 ms ago and got OK; b asked just now and got LOADING, and stored it first.
  assert.equal(await b.saveHealth('w-late', 'LOADING', 5000, 0), true);
  assert.equal(await a.saveHealth('w-late', 'OK', 5000, 400), true, 'the worker is still registered');
  const seen = (await b.read()).workers.find((w) => w.worker.id === 'w-late');
  assert.equal(seen?.health?.status, 'LOADING', 'the newer answer is kept');
  // A newer answer replaces it.
  await sleep(5);
  await a.saveHealth('w-late', 'OK', 5000, 0);
  assert.equal((await b.read()).workers.find((w) => w.worker.id === 'w-late')?.health?.status, 'OK');
});

test('capacity holds across gateways; a slot is given back by release, or by its lease expiring when its gateway died', async () => {
  const slot = { workerID: 'w-cap', pipeline: 'text-to-image', modelID: 'm/1' };
  const one = await a.acquire(slot, 'a:1', 2, 400);
  const two = await b.acquire(slot, 'b:1', 2, 400);
  const three = await a.acquire(slot, 'a:2', 2, 400);
  assert.deepEqual([one, two, three], [{ acquired: true, inFlight: 1 }, { acquired: true, inFlight: 2 }, { acquired: false, inFlight: 2 }]);
  await b.release(slot, 'b:1');
  assert.deepEqual(await a.acquire(slot, 'a:3', 2, 400), { acquired: true, inFlight: 2 });
  // Gateway a keeps renewing its leases; "b" holds none now. a:1 is renewed, a:3 is not (its gateway "died").
  await sleep(250);
  assert.equal(await a.renewLeases([{ slotKey: a.slotKey(slot), leaseID: 'a:1' }], 400), 1);
  await sleep(250);
  // a:3 expired (400 ms), a:1 was renewed: one slot free again.
  assert.deepEqual(await b.acquire(slot, 'b:2', 2, 400), { acquired: true, inFlight: 2 });
  assert.deepEqual(await b.acquire(slot, 'b:3', 2, 400), { acquired: false, inFlight: 2 });
});

test('per worker, one gateway wins the health poll of an interval', async () => {
  assert.deepEqual(await a.claimPolls(['w-p1', 'w-p2'], 300, 'a'), ['w-p1', 'w-p2']);
  assert.deepEqual(await b.claimPolls(['w-p1', 'w-p2', 'w-p3'], 300, 'b'), ['w-p3']);
  await sleep(350);
  assert.deepEqual(await b.claimPolls(['w-p1'], 300, 'b'), ['w-p1']);
});

test('removing a worker removes it for every gateway', async () => {
  await a.saveWorker(worker('w-rm'), 60_000);
  assert.equal(await b.removeWorker('w-rm'), true);
  assert.equal(await b.removeWorker('w-rm'), false);
  assert.equal((await a.read()).workers.some((w) => w.worker.id === 'w-rm'), false);
});
