/**
 * API keys and stream keys on a real redis-server: stored hashed (the secret appears in no
 * Redis key or value), resolved to their account, revoked at once, listed without secrets,
 * one live stream key per manifest ID.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { RedisAccountKeys } from '../../../src/payments/account-store.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

let server: TestRedis;
let redis: Redis;
let keys: RedisAccountKeys;

before(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url, logger: silentLogger(), name: 'test' });
  keys = new RedisAccountKeys({ redis, prefix: 'kt', nowMs: () => 1_750_000_000_000 });
});
after(async () => {
  redis.disconnect();
  await server.stop();
});

/** Every key name and every value in the whole Redis, as one string. */
async function dumpRedis(): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, names] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const name of names) {
      parts.push(name);
      const type = await redis.type(name);
      if (type === 'string') parts.push((await redis.get(name)) ?? '');
      else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(name)));
      else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(name, 0, '-1', 'WITHSCORES')));
      else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(name)));
      else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(name, 0, -1)));
      else assert.fail(`unexpected type ${type} of ${name}`);
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

test('issued keys carry their kind in a prefix, resolve to their account, and are stored only hashed', async () => {
  const api = await keys.issueApiKey('acct_a', { label: 'ci' });
  const stream = await keys.issueStreamKey('acct_a', { manifestID: 'cam1', profiles: ['P240p30fps16x9'] });
  assert.match(api.key, /^mg_api_[A-Za-z0-9_-]{43}$/);
  assert.match(stream.streamKey, /^mg_sk_[A-Za-z0-9_-]{43}$/);
  assert.equal(api.hint, api.key.slice(-4));
  assert.equal(await keys.resolveApiKey(api.key), 'acct_a');
  assert.deepEqual(await keys.resolveStreamKey(stream.streamKey), { keyID: stream.keyID, accountID: 'acct_a', manifestID: 'cam1', profiles: ['P240p30fps16x9'] });
  assert.equal(await keys.resolveApiKey(stream.streamKey), undefined, 'a stream key is not an API key');
  assert.equal(await keys.resolveStreamKey(api.key), undefined, 'an API key is not a stream key');
  assert.equal(await keys.resolveApiKey(`${api.key.slice(0, -1)}${api.key.endsWith('A') ? 'B' : 'A'}`), undefined);
  assert.equal(await keys.resolveApiKey(''), undefined);

  const dump = await dumpRedis();
  for (const secret of [api.key, stream.streamKey]) {
    assert.ok(!dump.includes(secret), 'the raw key is nowhere in Redis');
    assert.ok(!dump.includes(secret.replace(/^mg_(api|sk)_/, '')), 'nor its random part');
    assert.ok(!dump.includes(secret.slice(0, 24)), 'nor a long piece of it');
  }
});

test('a revoked key stops resolving at once, stays listed as revoked, and revoking again is harmless', async () => {
  const api = await keys.issueApiKey('acct_b', { label: 'old' });
  assert.equal(await keys.revokeKey(api.keyID), true);
  assert.equal(await keys.resolveApiKey(api.key), undefined);
  assert.equal(await keys.revokeKey(api.keyID), true);
  assert.equal(await keys.revokeKey('key_unknown'), false);
  const [info] = await keys.listKeys('acct_b');
  assert.equal(info!.revoked, true);
  assert.equal(info!.revokedAtMs, 1_750_000_000_000);
});

test('a manifest ID has one live stream key, and is free again once that key is revoked', async () => {
  const first = await keys.issueStreamKey('acct_c', { manifestID: 'show' });
  await assert.rejects(keys.issueStreamKey('acct_d', { manifestID: 'show' }), (err: GatewayError) => err.status === 409 && /show/.test(err.message));
  await keys.revokeKey(first.keyID);
  const second = await keys.issueStreamKey('acct_d', { manifestID: 'show' });
  assert.equal(await keys.resolveStreamKey(first.streamKey), undefined);
  assert.equal((await keys.resolveStreamKey(second.streamKey))?.accountID, 'acct_d');
  await keys.revokeKey(first.keyID);
  await assert.rejects(keys.issueStreamKey('acct_c', { manifestID: 'show' }), (err: GatewayError) => err.status === 409, 'revoking the old key again does not free a manifest ID that a newer key holds');
  await assert.rejects(keys.issueStreamKey('acct_c', { manifestID: 'bad/name' }), (err: GatewayError) => err.code === 'INVALID_NAME');
});

test('listing shows kind, label or manifest ID, hint and dates, never a secret', async () => {
  const api = await keys.issueApiKey('acct_e', { label: 'laptop' });
  const stream = await keys.issueStreamKey('acct_e', { manifestID: 'e-cam' });
  const listed = await keys.listKeys('acct_e');
  const byID = (a: { keyID: string }, b: { keyID: string }): number => a.keyID.localeCompare(b.keyID);
  assert.deepEqual([...listed].sort(byID), [
    { keyID: api.keyID, accountID: 'acct_e', kind: 'api', label: 'laptop', hint: api.hint, createdAtMs: 1_750_000_000_000, revoked: false },
    { keyID: stream.keyID, accountID: 'acct_e', kind: 'stream', manifestID: 'e-cam', hint: stream.hint, createdAtMs: 1_750_000_000_000, revoked: false },
  ].sort(byID), 'same-ms keys are ordered by key ID');
  const text = JSON.stringify(listed);
  assert.ok(!text.includes(api.key) && !text.includes(stream.streamKey));
  assert.deepEqual(await keys.getKey(api.keyID), listed.find((k) => k.keyID === api.keyID));
  assert.deepEqual(await keys.listKeys('acct_nobody'), []);
});

test('issuing and revoking run again after Redis forgot its scripts (SCRIPT FLUSH, as after a restart)', async () => {
  await redis.script('FLUSH');
  const issued = await keys.issueStreamKey('acct_flush', { manifestID: 'flushed' });
  await redis.script('FLUSH');
  assert.equal(await keys.revokeKey(issued.keyID), true);
  assert.equal(await keys.resolveStreamKey(issued.streamKey), undefined);
  await redis.script('FLUSH');
  const api = await keys.issueApiKey('acct_flush', { label: 'again' });
  assert.equal(await keys.resolveApiKey(api.key), 'acct_flush');
});
