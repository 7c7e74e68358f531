import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { RedisScripts, luaScript } from '../../../src/redis/scripts.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const INCR_CAPPED = luaScript('mgIncrByCapped', 1, new URL('../../fixtures/redis/incr-by-capped.lua', import.meta.url));

const testRedis = redisConnectionsForSuite('mediagate:test');


test('one named connection per purpose, visible in CLIENT LIST', async () => {
  const state = testRedis.connections.open('state');
  assert.equal(testRedis.connections.open('state'), state);
  const queue = testRedis.connections.open('queue', 'blocking');
  assert.notEqual(queue, state);
  await queue.ping();
  const list = String(await state.client('LIST'));
  assert.match(list, /name=mediagate:test:state /);
  assert.match(list, /name=mediagate:test:queue /);
});

test('a script runs by name, and again after Redis forgot it (NOSCRIPT → EVAL)', async () => {
  const redis = testRedis.connections.open('state');
  const scripts = new RedisScripts(redis, { incr: INCR_CAPPED });
  const key = new RedisKeys('mediagate').scope('test').key('counter', 1);
  assert.equal(key, 'mediagate:test:counter:1');
  assert.equal(await scripts.run('incr', [key], ['5', '8']), 5);
  assert.equal(await scripts.run('incr', [key], ['5', '8']), -1);
  await redis.script('FLUSH');
  assert.equal(await scripts.run('incr', [key], ['3', '8']), 8);
  assert.equal(await redis.get(key), '8');
  // A second store defining the same script on the same connection reuses it.
  const again = new RedisScripts(redis, { other: INCR_CAPPED });
  assert.equal(await again.run('other', [key], ['1', '8']), -1);
});

test('a script runs with the shared local functions put in front of it', async () => {
  const redis = testRedis.connections.open('state');
  const fixture = (name: string): URL => new URL(`../../fixtures/redis/${name}`, import.meta.url);
  const setClamped = luaScript('mgSetClamped', 1, fixture('set-clamped.lua'), [fixture('clamp-functions.lua')]);
  assert.match(setClamped.lua, /^-- Test fixture[^]*local function clamp[^]*clamp\(tonumber/);
  const scripts = new RedisScripts(redis, { set: setClamped });
  const key = new RedisKeys('mediagate').scope('test').key('clamped');
  assert.equal(await scripts.run('set', [key], ['5', '8']), 5);
  assert.equal(await scripts.run('set', [key], ['12', '8']), 8);
  assert.equal(await redis.get(key), '8');
});

test('a script that takes any number of keys gets them all, also after Redis forgot it', async () => {
  const redis = testRedis.connections.open('state');
  const fixture = (name: string): URL => new URL(`../../fixtures/redis/${name}`, import.meta.url);
  const scripts = new RedisScripts(redis, { sum: luaScript('mgSumKeys', 'variable', fixture('sum-keys.lua'), [fixture('clamp-functions.lua')]) });
  const keys = new RedisKeys('mediagate').scope('test');
  const n = [1, 2, 3].map((i) => keys.key('n', i));
  await redis.mset(n[0]!, '2', n[1]!, '3', n[2]!, '4');
  assert.equal(await scripts.run('sum', [], ['100']), 0);
  assert.equal(await scripts.run('sum', n.slice(0, 1), ['100']), 2);
  assert.equal(await scripts.run('sum', n, ['100']), 9);
  assert.equal(await scripts.run('sum', n, ['5']), 5);
  await redis.script('FLUSH');
  assert.equal(await scripts.run('sum', n.slice(1), ['100']), 7);
});

test('a script refuses the wrong number of keys before reaching Redis', async () => {
  const scripts = new RedisScripts(testRedis.connections.open('state'), { incr: INCR_CAPPED });
  await assert.rejects(scripts.run('incr', ['a', 'b'], ['1', '2']), /takes 1 keys, got 2/);
});

/** Redis's count of reads from client sockets (INFO stats `total_reads_processed`, Redis ≥ 6). */
async function readsProcessed(redis: ReturnType<RedisConnections['open']>): Promise<number> {
  const m = /total_reads_processed:(\d+)/.exec(String(await redis.info('stats')));
  assert.ok(m, 'INFO stats has total_reads_processed');
  return Number(m[1]);
}

test('commands sent in one turn of the event loop leave in one write, in order, each with its own answer', async () => {
  const redis = testRedis.connections.open('state');
  const observer = testRedis.connections.open('observer', 'blocking');
  const keys = new RedisKeys('mediagate').scope('test');
  const counter = keys.key('coalesced');
  const text = keys.key('coalesced-text');
  await redis.set(text, 'x');
  await redis.del(counter);
  const readsBefore = await readsProcessed(observer);
  const replies: Promise<unknown>[] = [];
  for (let i = 0; i < 50; i++) {
    replies.push(redis.incr(counter));
    // A command Redis refuses, in the middle: only its own promise rejects.
    if (i === 24) replies.push(redis.lpush(text, 'y'));
  }
  // Held until the end of this turn: nothing has left yet.
  assert.equal(redis.stream.writableCorked, 1);
  assert.equal(redis.stream.writableLength > 0, true);
  const settled = await Promise.allSettled(replies);
  const readsAfter = await readsProcessed(observer);
  assert.equal(redis.stream.writableCorked, 0);
  assert.deepEqual(settled.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value), Array.from({ length: 50 }, (_, i) => i + 1));
  assert.equal(settled[25]!.status, 'rejected');
  assert.match(String((settled[25] as PromiseRejectedResult).reason), /WRONGTYPE/);
  // 51 commands in one write are one or two reads for Redis (plus the observer's INFO), not 51.
  assert.ok(readsAfter - readsBefore <= 4, `Redis read ${readsAfter - readsBefore} times for 51 commands sent in one turn`);
  // The next turn's commands are held and sent again.
  assert.equal(await redis.incr(counter), 51);
});

test('a blocking connection writes each command at once', async () => {
  const blocking = testRedis.connections.open('queue', 'blocking');
  await blocking.ping();
  void blocking.ping();
  assert.equal(blocking.stream.writableCorked, 0);
});

test('script names and key parts are checked', () => {
  assert.throws(() => luaScript('incr', 1, new URL('../../fixtures/redis/incr-by-capped.lua', import.meta.url)), /must look like mgSomeName/);
  assert.throws(() => new RedisKeys(''), RangeError);
  assert.throws(() => new RedisKeys('p').key('a', ''), /empty part/);
});

test('close() ends every connection, is idempotent, and refuses new opens', async () => {
  const own = new RedisConnections({ url: testRedis.server.url, logger: silentLogger(), namePrefix: 'mediagate:closing' });
  const a = own.open('a');
  const b = own.open('b', 'blocking');
  await Promise.all([a.ping(), b.ping()]);
  await own.close();
  await own.close();
  assert.equal(a.status, 'end');
  assert.equal(b.status, 'end');
  assert.throws(() => own.open('c'), /closed/);
});
