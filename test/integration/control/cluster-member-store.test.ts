/**
 * Cluster membership (cluster/cluster-member-store.ts, cluster-heartbeat.ts) on a real
 * redis-server: records listed while their heartbeat runs, gone by expiry alone when it
 * stops, withdrawn at once by a clean close; the Redis commands one heartbeat costs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { redisClientForSuite } from '../../helpers/suite-setup.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { RedisClusterMembers } from '../../../src/cluster/cluster-member-store.ts';
import { ClusterHeartbeat, MEMBER_TTL_HEARTBEATS } from '../../../src/cluster/cluster-heartbeat.ts';

const testRedis = redisClientForSuite();

function storeOn(prefix: string): RedisClusterMembers {
  return new RedisClusterMembers({ redis: testRedis.client, keys: new RedisKeys(prefix) });
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a heartbeat lists its gateway and embedded transcoder under one ID with their figures; a clean close withdraws both at once', async () => {
  const store = storeOn(`c${randomBytes(3).toString('hex')}`);
  let streams = 2;
  const heartbeat = new ClusterHeartbeat({
    store, id: 'host-1-abcd', intervalMs: 200, logger: silentLogger(), version: '9.9.9', startedAtMs: 1_000, load: () => 0.5,
    gateway: { address: 'http://10.0.0.1:9935', rtmpAddress: 'rtmp://10.0.0.1:1935', streams: () => streams },
    transcoder: { address: 'http://10.0.0.1:9935', embedded: true, slots: 4, inFlight: () => ({ liveSessions: 1, jobs: 2 }) },
  });
  try {
    await heartbeat.start();
    let members = await store.list();
    assert.equal(members.gateways.length, 1);
    assert.deepEqual({ ...members.gateways[0]!, heartbeatAtMs: 0 }, {
      kind: 'gateway', id: 'host-1-abcd', version: '9.9.9', startedAtMs: 1_000, heartbeatAtMs: 0,
      address: 'http://10.0.0.1:9935', rtmpAddress: 'rtmp://10.0.0.1:1935', streams: 2,
    });
    assert.deepEqual({ ...members.transcoders[0]!, heartbeatAtMs: 0 }, {
      kind: 'transcoder', id: 'host-1-abcd', version: '9.9.9', startedAtMs: 1_000, heartbeatAtMs: 0,
      address: 'http://10.0.0.1:9935', embedded: true, slots: 4, inFlight: 3, liveSessions: 1, jobs: 2, load: 0.5,
    });
    streams = 5;
    await until(async () => (await store.list()).gateways[0]?.streams === 5, 5000, 'the next heartbeat carries the new figure');
    await heartbeat.close();
    members = await store.list();
    assert.deepEqual(members, { gateways: [], transcoders: [] }, 'withdrawn at once');
  } finally {
    await heartbeat.close();
  }
});

test('a member whose heartbeat stops drops out by expiry alone, and its keys are gone from Redis', async () => {
  const prefix = `c${randomBytes(3).toString('hex')}`;
  const store = storeOn(prefix);
  const intervalMs = 150;
  const alive = new ClusterHeartbeat({ store, id: 'alive-1-0001', intervalMs, logger: silentLogger(), gateway: { address: 'http://a', streams: () => 0 } });
  // A stand-in for a SIGKILLed process: one publish, then nothing (and no withdraw).
  const dead = new ClusterHeartbeat({ store, id: 'dead-2-0002', intervalMs, logger: silentLogger(), transcoder: { embedded: false, slots: 1, inFlight: () => ({ liveSessions: 0, jobs: 0 }) } });
  await store.publish(dead.records(), dead.ttlMs);
  await alive.start();
  try {
    let members = await store.list();
    assert.deepEqual([members.gateways.map((g) => g.id), members.transcoders.map((t) => t.id)], [['alive-1-0001'], ['dead-2-0002']]);
    const killedAt = Date.now();
    await until(async () => (await store.list()).transcoders.length === 0, 5000, 'the dead member did not drop out');
    assert.ok(Date.now() - killedAt >= intervalMs * MEMBER_TTL_HEARTBEATS - 50, 'not before its record expired');
    members = await store.list();
    assert.deepEqual(members.gateways.map((g) => g.id), ['alive-1-0001'], 'the live member stays (its heartbeat renews it)');
    // The record's PX starts when Redis runs the SET, a round trip after the `now` its listing
    // score counts from, so the key may outlive its listing entry by that much (a few ms; more on
    // a loaded machine): wait for it, boundedly, rather than read it at the same instant.
    await until(async () => (await testRedis.client.exists(`${prefix}:cluster:member:transcoder:dead-2-0002`)) === 0, 1000, 'the dead member\'s record key outlived its listing by more than 1 s');
    assert.deepEqual(await testRedis.client.zrange(`${prefix}:cluster:members`, '0', '-1'), ['gateway:alive-1-0001'], 'the listing was pruned');
  } finally {
    await alive.close();
  }
});

test('one heartbeat of a gateway with its embedded transcoder is one MULTI: 2 SET, 2 ZADD, 1 ZREMRANGEBYSCORE', async () => {
  const store = storeOn(`c${randomBytes(3).toString('hex')}`);
  const heartbeat = new ClusterHeartbeat({
    store, id: 'count-1-0001', intervalMs: 60_000, logger: silentLogger(),
    gateway: { address: 'http://a', streams: () => 0 }, transcoder: { embedded: true, slots: 1, inFlight: () => ({ liveSessions: 0, jobs: 0 }) },
  });
  await testRedis.client.config('RESETSTAT');
  await heartbeat.start();
  const stats = String(await testRedis.client.info('commandstats'));
  const calls = Object.fromEntries([...stats.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  await heartbeat.close();
  assert.deepEqual(calls, { multi: 1, set: 2, zadd: 2, zremrangebyscore: 1, exec: 1, 'config|resetstat': 1 }, stats);
});
