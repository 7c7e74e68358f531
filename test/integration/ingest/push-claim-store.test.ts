import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisPushClaims } from '../../../src/ingest/push-claim-store.ts';
import { silentLogger } from '../../../src/log/logger.ts';

let server: TestRedis;
let connections: RedisConnections;
let claims: RedisPushClaims;

before(async () => {
  server = await startRedis();
  connections = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:test' });
  claims = new RedisPushClaims({ redis: connections.open('state'), keys: new RedisKeys('mgtest') });
});
after(async () => {
  await connections.close();
  await server.stop();
});

test('a push claim left pending past its lease is taken over by the next push of the same bytes; a live one is not', async () => {
  const lease = { leaseMs: 300 };
  assert.deepEqual(await claims.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'new' });
  assert.deepEqual(await claims.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'same', state: 'pending' }, 'within the lease: the retry waits for the first push');
  assert.deepEqual(await claims.claimPush('lease', 's1', 0, 'bbb', lease), { claim: 'conflict' });
  await new Promise((r) => setTimeout(r, 400));
  // The first push never settled (its gateway lost Redis mid-push): the retry owns the work now.
  assert.deepEqual(await claims.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'new' });
  assert.deepEqual(await claims.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'same', state: 'pending' }, 'the take-over renewed the lease');
  await claims.settlePush('lease', 's1', 0, 'done', '[]');
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(await claims.claimPush('lease', 's1', 0, 'aaa', lease), { claim: 'same', state: 'done', result: '[]' }, 'a settled claim is answered from its result, whatever its age');
});

test('the same push racing from two gateways is claimed by exactly one of them', async () => {
  // Two gateways: two connections to the one Redis, each with its own claim store.
  const other = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:test-other' });
  try {
    const otherClaims = new RedisPushClaims({ redis: other.open('state'), keys: new RedisKeys('mgtest') });
    await other.ready('state', 5000);
    const doubles: number[] = [];
    for (let seq = 0; seq < 200; seq++) {
      const results = await Promise.all([
        claims.claimPush('race', 's1', seq, 'same-bytes', { leaseMs: 60_000 }),
        otherClaims.claimPush('race', 's1', seq, 'same-bytes', { leaseMs: 60_000 }),
      ]);
      if (results.filter((r) => r.claim === 'new').length !== 1) doubles.push(seq);
    }
    assert.deepEqual(doubles, [], 'seqs claimed by both or neither');
  } finally {
    await other.close();
  }
});
