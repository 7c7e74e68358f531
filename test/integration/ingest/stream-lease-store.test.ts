/**
 * Stream ownership leases on a real redis-server: two gateways (two connections, two stores)
 * race for one manifest ID, a push session holds it with its own owner string, a holder that
 * lost its lease can neither renew nor release the new holder's, and a lease nobody renews expires.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisStreamLeases, pushLeaseOwner } from '../../../src/ingest/stream-lease-store.ts';
import { newMemberId } from '../../../src/member-id.ts';

const testRedis = redisConnectionsForSuite('mediagate:test-a', 'mediagate:test-b');
let leasesA: RedisStreamLeases;
let leasesB: RedisStreamLeases;
const A = newMemberId('host-a', 100);
const B = newMemberId('host-b', 200);

before(async () => {
  await testRedis.ready;
  const [a, b] = testRedis.all;
  leasesA = new RedisStreamLeases({ redis: a!.open('state'), keys: new RedisKeys('mgtest') });
  leasesB = new RedisStreamLeases({ redis: b!.open('state'), keys: new RedisKeys('mgtest') });
});

test('member IDs are <host>-<pid>-<4 hex>, differ per process start, and keep unsafe host characters out', () => {
  assert.match(A, /^host-a-100-[0-9a-f]{4}$/);
  assert.ok(new Set(Array.from({ length: 20 }, () => newMemberId('h', 1))).size > 1, 'the same host and pid give other IDs on another start');
  assert.match(newMemberId('we ird/host:1', 7), /^we_ird_host_1-7-[0-9a-f]{4}$/);
});

test('of two gateways racing for one manifest ID exactly one holds it; the other learns who and for how long', async () => {
  for (let i = 0; i < 100; i++) {
    const m = `race-${i}`;
    const [ra, rb] = await Promise.all([leasesA.acquire(m, A, 10_000), leasesB.acquire(m, B, 10_000)]);
    assert.equal([ra, rb].filter((r) => r.acquired).length, 1, `${m}: one winner`);
    const lost = ra.acquired ? rb : ra;
    assert.equal(lost.acquired, false);
    if (!lost.acquired) {
      assert.equal(lost.holder, ra.acquired ? A : B);
      assert.ok(lost.remainingMs > 9000 && lost.remainingMs <= 10_000, `remaining ${lost.remainingMs}`);
    }
  }
});

test('the holder extends its own lease by acquiring again; a push session holds one as push:<session> and refuses a gateway', async () => {
  assert.deepEqual(await leasesA.acquire('mine', A, 300), { acquired: true });
  assert.deepEqual(await leasesA.acquire('mine', A, 10_000), { acquired: true }, 'acquiring a held lease again extends it');
  assert.ok((await leasesB.holder('mine'))!.remainingMs > 9000);

  const push = pushLeaseOwner('sess1');
  assert.equal(push, 'push:sess1');
  assert.deepEqual(await leasesB.acquire('pushed', push, 10_000), { acquired: true });
  const refused = await leasesA.acquire('pushed', A, 10_000);
  assert.equal(refused.acquired, false);
  assert.equal(!refused.acquired && refused.holder, push, 'an RTMP publish is refused while a push session holds the manifest');
  assert.deepEqual(await leasesA.acquire('pushed', push, 10_000), { acquired: true }, 'the next push of the session, through any gateway, extends it');
  assert.equal((await leasesB.acquire('mine', push, 10_000)).acquired, false, 'and a push is refused while a gateway holds it');
});

test('a lease nobody renews expires and the next owner takes it; the old holder then can neither renew nor release it', async () => {
  assert.deepEqual(await leasesA.acquire('dies', A, 200), { acquired: true });
  assert.equal((await leasesB.acquire('dies', B, 10_000)).acquired, false);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await leasesA.holder('dies'), undefined, 'expired');
  assert.deepEqual(await leasesB.acquire('dies', B, 10_000), { acquired: true }, 'taken over after expiry');
  const held = [{ manifestID: 'dies', owner: A, tag: 'x' }];
  assert.deepEqual(await leasesA.renew(held, 10_000), held, 'the old holder learns it lost the lease');
  assert.equal(await leasesA.release('dies', A), false, 'and cannot release the new holder\'s');
  assert.equal((await leasesA.holder('dies'))!.owner, B);
});

test('renew extends every held lease in one step, takes back one that expired unclaimed, and release frees only its own', async () => {
  await leasesA.acquire('r1', A, 10_000);
  await leasesA.acquire('r2', A, 150);
  await leasesB.acquire('r3', B, 10_000);
  await new Promise((r) => setTimeout(r, 250));
  const held = [{ manifestID: 'r1', owner: A }, { manifestID: 'r2', owner: A }, { manifestID: 'r3', owner: A }];
  const lost = await leasesA.renew(held, 5000);
  assert.deepEqual(lost.map((h) => h.manifestID), ['r3']);
  for (const m of ['r1', 'r2']) {
    const h = await leasesB.holder(m);
    assert.equal(h?.owner, A, `${m} held by A`);
    assert.ok(h!.remainingMs > 4000 && h!.remainingMs <= 5000, `${m} renewed to the new TTL (${h!.remainingMs})`);
  }
  assert.deepEqual(await leasesA.renew([], 5000), []);
  assert.equal(await leasesB.release('r1', B), false);
  assert.equal(await leasesA.release('r1', A), true);
  assert.equal(await leasesA.holder('r1'), undefined);
  assert.deepEqual(await leasesB.acquire('r1', B, 5000), { acquired: true }, 'a released lease is free at once');
});
