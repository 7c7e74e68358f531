/**
 * The push sessions in Redis (src/ingest/push-session-store.ts) on a real redis-server, with
 * two connections standing in for two gateways: one session per pushed stream whichever
 * gateway opens it, the pushes' leases and the idle deadline, and an end that exactly one
 * gateway wins, also when the gateway of the last push never came back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisPushSessions } from '../../../src/ingest/push-session-store.ts';
import { pushStreamId } from '../../../src/ingest/push-session.ts';
import { parseLadder } from '../../../src/domain/profile.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { WatermarkSpec } from '../../../src/domain/watermark.ts';
import type { PushSessionRecord } from '../../../src/ingest/ingest-ports.ts';

let server: TestRedis;
let gatewayA: RedisConnections;
let gatewayB: RedisConnections;
let a: RedisPushSessions;
let b: RedisPushSessions;
const keys = new RedisKeys('mgtest');
const MARGIN_MS = 10_000;

before(async () => {
  server = await startRedis();
  gatewayA = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:test-a' });
  gatewayB = new RedisConnections({ url: server.url, logger: silentLogger(), namePrefix: 'mediagate:test-b' });
  a = new RedisPushSessions({ redis: gatewayA.open('state'), keys, heartbeatMarginMs: MARGIN_MS });
  b = new RedisPushSessions({ redis: gatewayB.open('state'), keys, heartbeatMarginMs: MARGIN_MS });
  await Promise.all([gatewayA.ready('state', 5000), gatewayB.ready('state', 5000)]);
});
after(async () => {
  await gatewayA.close();
  await gatewayB.close();
  await server.stop();
});

function record(manifestID: string, session: string): PushSessionRecord {
  return { session, manifestID, accountID: 'acct-1', profiles: parseLadder(['P144p30fps16x9']), startedAtMs: 1_700_000_000_000 };
}

function lease(token: string, seq: number, leaseMs = 60_000, idleMs = 60_000): { token: string; seq: number; leaseMs: number; idleMs: number } {
  return { token, seq, leaseMs, idleMs };
}

test('one session per pushed stream: the first reservation opens it, the other gateway waits, then both enter the same session', async () => {
  const id = pushStreamId('secret-stream-key-1');
  assert.equal(await a.reserve(id, 'push-a0', 30_000), 'reserved');
  assert.equal(await b.reserve(id, 'push-b0', 30_000), 'opening', 'the second first push does not open a second session');
  assert.deepEqual(await b.enter(id, lease('push-b0', 1)), { state: 'opening' });
  assert.equal(await a.activate(id, 'push-b0', record('m1', 's1'), lease('push-b0', 1)), undefined, 'only the reserving push activates');
  const deadline = await a.activate(id, 'push-a0', record('m1', 's1'), lease('push-a0', 0));
  assert.ok(deadline !== undefined && deadline > Date.now());
  const entered = await b.enter(id, lease('push-b1', 1));
  assert.equal(entered.state, 'live');
  assert.deepEqual(entered.state === 'live' && entered.record, record('m1', 's1'), 'the other gateway reads what the opener stored');
  assert.equal(await b.reserve(id, 'push-b2', 30_000), 'live');
  // The stream key is in no Redis key: only its hash is.
  const names = await gatewayA.open('state').keys('mgtest:*');
  assert.ok(names.every((k) => !k.includes('secret-stream-key-1')), names.join(', '));
  assert.ok(names.includes(`mgtest:pushsess:${id}`));
});

test('a push session\'s watermark is stored when it opens, so a push entering through another gateway marks its renditions too', async () => {
  const id = pushStreamId('secret-stream-key-wm');
  const watermark: WatermarkSpec = { kind: 'text', text: 'Live', fontSizeFraction: 0.05, position: 'top-left', margin: { px: 8 }, opacity: 0.5 };
  assert.equal(await a.reserve(id, 'wm-a0', 30_000), 'reserved');
  await a.activate(id, 'wm-a0', { ...record('m-wm', 's-wm'), watermark }, lease('wm-a0', 0));
  const entered = await b.enter(id, lease('wm-b1', 1));
  assert.deepEqual(entered.state === 'live' && entered.record, { ...record('m-wm', 's-wm'), watermark });
});

test('a push below the seq that opened its session is refused as early, and enters nothing', async () => {
  const id = pushStreamId('early-push-stream');
  assert.equal(await a.reserve(id, 'push-a1', 30_000), 'reserved');
  // Seq 1 opened the session; seq 0, pushed at the same time to the other gateway, arrives after.
  await a.activate(id, 'push-a1', record('m-early', 's-early'), lease('push-a1', 1, 60_000, 5_000));
  const inflightBefore = await gatewayA.open('state').zrange(keys.key('pushsess', id, 'inflight'), '0', '-1');
  const deadlineBefore = await gatewayA.open('state').zscore(keys.key('pushidle'), id);
  assert.deepEqual(await b.enter(id, lease('push-b0', 0, 60_000, 60_000)), { state: 'early', firstSeq: 1 });
  assert.deepEqual(await gatewayA.open('state').zrange(keys.key('pushsess', id, 'inflight'), '0', '-1'), inflightBefore, 'no lease added');
  assert.equal(await gatewayA.open('state').zscore(keys.key('pushidle'), id), deadlineBefore, 'the idle deadline did not move');
  assert.equal((await b.enter(id, lease('push-b2', 2))).state, 'live', 'a later seq enters');
});

test('the idle deadline counts from the end of the last push of any gateway, and a live push lease holds the session open', async () => {
  const id = pushStreamId('idle-stream');
  const idleMs = 300;
  assert.equal(await a.reserve(id, 'p0', 30_000), 'reserved');
  await a.activate(id, 'p0', record('m2', 's2'), lease('p0', 0, 60_000, idleMs));
  const enteredB = await b.enter(id, lease('p1', 1, 60_000, idleMs));
  assert.equal(enteredB.state, 'live');
  const afterA = await a.exit(id, 's2', { token: 'p0', idleMs, listed: true });
  assert.ok(afterA! > Date.now() + 50_000, 'push 1 on B is still in flight: the deadline follows its lease');
  const busy = await a.end(id, { session: 's2', idleOnly: true });
  assert.equal(busy.state, 'busy');
  const afterB = await b.exit(id, 's2', { token: 'p1', idleMs, listed: true });
  assert.ok(afterB! <= Date.now() + idleMs, 'the last push is over: idle from now');
  assert.deepEqual(await a.idle(Date.now(), 10), [], 'not idle yet');
  // The heartbeat of the manifest in the segment index follows the idle deadline plus the margin.
  const heartbeat = Number(await gatewayA.open('state').zscore('mgtest:heartbeats', 'm2'));
  assert.equal(heartbeat, afterB! + MARGIN_MS);
  await new Promise((r) => setTimeout(r, idleMs + 50));
  assert.deepEqual(await b.idle(Date.now(), 10), [id]);
  const ended = await a.end(id, { session: 's2', idleOnly: true });
  assert.equal(ended.state, 'ended');
  assert.deepEqual(ended.state === 'ended' && { endSeq: ended.ended.endSeq, segments: ended.ended.segments, manifestID: ended.ended.manifestID }, { endSeq: 2, segments: 2, manifestID: 'm2' });
  assert.deepEqual(await b.enter(id, lease('p2', 2)), { state: 'none' }, 'a push after the end opens a new session');
  assert.equal(await b.exit(id, 's2', { token: 'p1', idleMs, listed: false }), undefined, 'a late exit of the ended session changes nothing');
});

test('of many gateways trying to end an idle session at once, exactly one wins', async () => {
  for (let round = 0; round < 50; round++) {
    const id = pushStreamId(`race-${round}`);
    assert.equal(await a.reserve(id, 'p0', 30_000), 'reserved');
    await a.activate(id, 'p0', record(`race-${round}`, 's'), lease('p0', 0, 60_000, 1000));
    await a.exit(id, 's', { token: 'p0', idleMs: 1000, listed: true });
    const nowMs = Date.now() + 5000;
    const results = await Promise.all([a, b, a, b].map((store) => store.end(id, { idleOnly: true, nowMs })));
    assert.equal(results.filter((r) => r.state === 'ended').length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.state))}`);
  }
});

test('a push whose gateway died keeps the session until its lease ends, then the session is idle for any gateway to end', async () => {
  const id = pushStreamId('dead-gateway');
  assert.equal(await a.reserve(id, 'p0', 30_000), 'reserved');
  await a.activate(id, 'p0', record('m3', 's3'), lease('p0', 0, 200, 100));
  // Gateway A dies here: push p0 never exits.
  assert.equal((await b.end(id, { idleOnly: true })).state, 'busy');
  await new Promise((r) => setTimeout(r, 350));
  assert.deepEqual(await b.idle(Date.now(), 10), [id]);
  const ended = await b.end(id, { idleOnly: true });
  assert.equal(ended.state, 'ended');
  assert.deepEqual(ended.state === 'ended' && [ended.ended.session, ended.ended.endSeq, ended.ended.segments], ['s3', 1, 0]);
});

test('a reservation whose opener died runs out by itself, and a released one frees the stream at once', async () => {
  const id = pushStreamId('dead-opener');
  assert.equal(await a.reserve(id, 'p0', 150), 'reserved');
  assert.equal(await b.reserve(id, 'p1', 150), 'opening');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(await b.reserve(id, 'p1', 30_000), 'reserved', 'the dead opener\'s reservation expired');
  await a.release(id, 'p0');
  assert.equal(await a.reserve(id, 'p2', 30_000), 'opening', 'only the owner releases a reservation');
  await b.release(id, 'p1');
  assert.equal(await a.reserve(id, 'p2', 30_000), 'reserved');
});

test('a stop ends only the session it names', async () => {
  const id = pushStreamId('stopped');
  assert.equal(await a.reserve(id, 'p0', 30_000), 'reserved');
  await a.activate(id, 'p0', record('m4', 's4'), lease('p0', 0));
  assert.deepEqual(await b.end(id, { session: 'older', idleOnly: false }), { state: 'gone' });
  const ended = await b.end(id, { session: 's4', idleOnly: false });
  assert.equal(ended.state, 'ended', 'a stop does not wait for the idle deadline nor for pushes in flight');
  assert.deepEqual(await a.end(id, { session: 's4', idleOnly: false }), { state: 'gone' });
});

test('the stream lease a push session holds (owner push:<session>) lasts as long as the session and is released by its end; another owner\'s is left alone', async () => {
  const redis = gatewayA.open('state');
  const id = pushStreamId('leased');
  assert.equal(await a.reserve(id, 'p0', 30_000), 'reserved');
  // The opener took the manifest's lease as push:<session> (ingest/stream-lease-store.ts) before activating.
  await redis.set('mgtest:ingest:lease:m5', 'push:s5', 'PX', 1000);
  const deadline = (await a.activate(id, 'p0', record('m5', 's5'), lease('p0', 0, 60_000, 5000)))!;
  const ttl = await redis.pttl('mgtest:ingest:lease:m5');
  assert.ok(ttl > deadline + MARGIN_MS - Date.now() - 1000, `the lease follows the idle deadline plus the margin (pttl ${ttl})`);
  assert.equal((await a.end(id, { session: 's5', idleOnly: false })).state, 'ended');
  assert.equal(await redis.get('mgtest:ingest:lease:m5'), null, 'released with the session');

  const other = pushStreamId('leased-by-rtmp');
  assert.equal(await a.reserve(other, 'p0', 30_000), 'reserved');
  await redis.set('mgtest:ingest:lease:m6', 'gateway-a-1-abcd', 'PX', 1000);
  await a.activate(other, 'p0', record('m6', 's6'), lease('p0', 0));
  assert.ok(await redis.pttl('mgtest:ingest:lease:m6') <= 1000, 'a lease the session does not hold is not extended');
  await a.end(other, { session: 's6', idleOnly: false });
  assert.equal(await redis.get('mgtest:ingest:lease:m6'), 'gateway-a-1-abcd', 'nor released');
});

test('a ladder the publisher set stays marked as such for the gateways that take the later pushes, and on the ended session', async () => {
  const id = pushStreamId('explicit-ladder-stream');
  assert.equal(await a.reserve(id, 'x0', 30_000), 'reserved');
  const explicit = { ...record('m-explicit', 's-explicit'), explicitLadder: true };
  await a.activate(id, 'x0', explicit, lease('x0', 0));
  const entered = await b.enter(id, lease('x1', 1));
  assert.deepEqual(entered.state === 'live' && entered.record, explicit);
  await b.exit(id, 's-explicit', { token: 'x1', idleMs: 60_000, listed: true });
  await a.exit(id, 's-explicit', { token: 'x0', idleMs: 60_000, listed: true });
  const ended = await a.end(id, { session: 's-explicit', idleOnly: false });
  assert.equal(ended.state, 'ended');
  assert.equal(ended.state === 'ended' && ended.ended.explicitLadder, true);
  assert.deepEqual(ended.state === 'ended' && ended.ended.profiles, explicit.profiles);
});
