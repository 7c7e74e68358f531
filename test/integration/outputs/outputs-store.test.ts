/**
 * The desired restream outputs and their states on a real redis-server (outputs/outputs-store.ts),
 * through two connections as two gateways would: the `maxPerStream` bound holds for concurrent
 * adds from both, a new session replaces the outputs and forgets old states, removal drops the
 * state, and an ended stream's outputs expire.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisOutputs } from '../../../src/outputs/outputs-store.ts';
import { outputSpecs } from '../../../src/outputs/output-manager.ts';

const testRedis = redisConnectionsForSuite('mediagate:test-a', 'mediagate:test-b');
let storeA: RedisOutputs;
let storeB: RedisOutputs;

before(async () => {
  await testRedis.ready;
  const [a, b] = testRedis.all;
  storeA = new RedisOutputs({ redis: a!.open('state'), keys: new RedisKeys('mgtest') });
  storeB = new RedisOutputs({ redis: b!.open('state'), keys: new RedisKeys('mgtest') });
});

const request = (i: number): { url: string; rendition: string } => ({ url: `rtmp://127.0.0.1/live/k${i}`, rendition: 'source' });

test('concurrent adds through two gateways never exceed maxPerStream', async () => {
  await storeA.reset('cam', []);
  const specs = outputSpecs(Array.from({ length: 10 }, (_, i) => request(i)), 'api');
  const added = await Promise.all(specs.map((s, i) => (i % 2 === 0 ? storeA : storeB).add('cam', s, 4)));
  assert.equal(added.filter(Boolean).length, 4);
  assert.equal((await storeB.list('cam')).length, 4);
});

test('a new session replaces the outputs and forgets earlier states; list is oldest first with each state', async () => {
  const [first, second] = outputSpecs([request(1), request(2)], 'config', 1000);
  await storeA.reset('cam', [first!]);
  await storeA.setStates('cam', new Map([[first!.id, { state: 'live', bytesSent: 10, liveSinceMs: 5, updatedAtMs: 6 }]]));
  assert.deepEqual(await storeB.list('cam'), [{ spec: first, status: { state: 'live', bytesSent: 10, liveSinceMs: 5, updatedAtMs: 6 } }]);
  await storeA.reset('cam', [second!]);
  assert.deepEqual(await storeB.list('cam'), [{ spec: second }]);
  const [api] = outputSpecs([request(3)], 'api', 2000);
  assert.equal(await storeB.add('cam', api!, 4), true);
  assert.deepEqual((await storeA.list('cam')).map((o) => o.spec.id), [second!.id, api!.id]);
});

test('remove drops the output and its state; a second remove answers false', async () => {
  const [spec] = outputSpecs([request(4)], 'api');
  await storeA.reset('cam', [spec!]);
  await storeA.setStates('cam', new Map([[spec!.id, { state: 'retrying', reason: 'Connection refused', bytesSent: 0, updatedAtMs: 1 }]]));
  assert.equal(await storeB.remove('cam', spec!.id), true);
  assert.equal(await storeB.remove('cam', spec!.id), false);
  assert.deepEqual(await storeA.list('cam'), []);
});

test('an ended stream\'s outputs expire after keepS', async () => {
  const [spec] = outputSpecs([request(5)], 'api');
  await storeA.reset('ended', [spec!]);
  await storeA.setStates('ended', new Map([[spec!.id, { state: 'stopped', bytesSent: 7, updatedAtMs: 1 }]]));
  await storeA.expire('ended', 1);
  assert.equal((await storeB.list('ended')).length, 1);
  await new Promise((r) => setTimeout(r, 1300));
  assert.deepEqual(await storeB.list('ended'), []);
});
