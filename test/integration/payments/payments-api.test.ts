/**
 * The payments API over real HTTP on 127.0.0.1, on the gateway's own express app and
 * error handler, backed by the Redis ledger and key store on a real redis-server: admin
 * token rules, validation errors that name the field, 404s, keys shown once, money as
 * integer strings, usage and ledger paging over a time range. Every response is also
 * checked against openapi/payments.yaml by the validator (a drift would be a 500).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { RedisLedger } from '../../../src/payments/ledger-store.ts';
import { RedisAccountKeys } from '../../../src/payments/account-store.ts';
import { createPaymentsRouter, type PaymentsRoutesOptions } from '../../../src/payments/payments-routes.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const TOKEN = 'payments-admin-token-7c1e';
const T0 = Date.parse('2026-03-01T12:00:00.000Z');
let server: TestRedis;
let redis: Redis;
let ledger: RedisLedger;
let keys: RedisAccountKeys;
const clock = { now: T0 };
const servers: Server[] = [];
let base = '';

before(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url, logger: silentLogger(), name: 'test' });
  ledger = new RedisLedger({ redis, prefix: 'api', nowMs: () => clock.now });
  keys = new RedisAccountKeys({ redis, prefix: 'api', nowMs: () => clock.now });
  base = await serve();
});
after(async () => {
  for (const s of servers) s.close();
  redis.disconnect();
  await server.stop();
});

/** A tiny gateway app with only the payments router; returns its base URL. */
async function serve(overrides: Partial<PaymentsRoutesOptions> = {}): Promise<string> {
  const app = createHttpApp({
    logger: silentLogger(),
    routers: [createPaymentsRouter({
      ledger, keys, adminToken: TOKEN, loopbackOnly: true, nowMs: () => clock.now,
      manifestIDTaken: (m) => (m === 'static-cam' ? 'taken by a configured stream key' : undefined),
      ...overrides,
    })],
    health: async () => ({ status: 'ok', checks: {} }),
  });
  const s = await new Promise<Server>((resolve) => { const x = app.listen(0, '127.0.0.1', () => resolve(x)); });
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}


type Json = Record<string, any>;

async function call(method: string, path: string, body?: unknown, token = TOKEN, url = base): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) as Json : {}, headers: res.headers };
}

function assertError(r: { status: number; body: Json }, status: number, code: string, msg?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body['detail']?.code, code);
  if (msg) assert.match(r.body['detail'].msg, msg);
}

test('the configured admin token is always required', async () => {
  assertError(await call('GET', '/api/accounts', undefined, ''), 401, 'UNAUTHORIZED', /missing admin token/);
  assertError(await call('GET', '/api/accounts', undefined, 'wrong-token'), 401, 'UNAUTHORIZED', /invalid admin token/);
  assertError(await call('DELETE', '/api/keys/key_x', undefined, ''), 401, 'UNAUTHORIZED');
  assert.equal((await call('GET', '/api/accounts')).status, 200);
});

test('without a configured token the API answers on loopback only', async () => {
  const open = await serve({ adminToken: '', loopbackOnly: true });
  assert.equal((await call('GET', '/api/accounts', undefined, '', open)).status, 200);
  const closed = await serve({ adminToken: '', loopbackOnly: false });
  assertError(await call('GET', '/api/accounts', undefined, '', closed), 403, 'FORBIDDEN', /adminToken/);
});

test('an account is created with credits as an integer string, then listed and read; unknown IDs are 404', async () => {
  clock.now = T0;
  const created = await call('POST', '/api/accounts', { name: 'Studio A', credits: '9007199254740991' });
  assert.equal(created.status, 201);
  assert.match(created.body['id'], /^acct_/);
  assert.deepEqual(created.body, { id: created.body['id'], name: 'Studio A', balance: '9007199254740991', createdAt: '2026-03-01T12:00:00.000Z' });
  const one = await call('GET', `/api/accounts/${created.body['id']}`);
  assert.deepEqual(one.body, created.body);
  const all = await call('GET', '/api/accounts');
  assert.ok(all.body['accounts'].some((a: Json) => a['id'] === created.body['id']));
  assertError(await call('GET', '/api/accounts/acct_missing'), 404, 'NOT_FOUND', /acct_missing/);
  assertError(await call('POST', '/api/accounts/acct_missing/topups', { credits: '1', idempotencyKey: 'k' }), 404, 'NOT_FOUND');
  assertError(await call('GET', '/api/accounts/acct_missing/keys'), 404, 'NOT_FOUND');
  assertError(await call('GET', '/api/accounts/acct_missing/usage'), 404, 'NOT_FOUND');
  assertError(await call('GET', '/api/accounts/acct_missing/ledger'), 404, 'NOT_FOUND');
});

test('validation errors name the field', async () => {
  assertError(await call('POST', '/api/accounts', { name: '' }), 400, 'INVALID_REQUEST', /name/);
  assertError(await call('POST', '/api/accounts', { name: 'x', credits: 1000 }), 400, 'INVALID_REQUEST', /credits/);
  assertError(await call('POST', '/api/accounts', { name: 'x', credits: '12.5' }), 400, 'INVALID_REQUEST', /credits/);
  assertError(await call('POST', '/api/accounts', { name: 'x', credits: '9007199254740992' }), 400, 'INVALID_REQUEST', /credits: must be at most 9007199254740991/);
  assertError(await call('POST', '/api/accounts', { name: 'x', colour: 'red' }), 400, 'INVALID_REQUEST', /colour: unknown field/);
  assertError(await call('POST', '/api/accounts', '{"name": '), 400, 'INVALID_REQUEST', /not valid JSON/);
  assertError(await call('GET', '/api/accounts/bad.id'), 400, 'INVALID_REQUEST', /id/);
  const a = (await call('POST', '/api/accounts', { name: 'Validation' })).body['id'] as string;
  assertError(await call('POST', `/api/accounts/${a}/topups`, { credits: '0', idempotencyKey: 'k' }), 400, 'INVALID_REQUEST', /credits/);
  assertError(await call('POST', `/api/accounts/${a}/topups`, { credits: '5' }), 400, 'INVALID_REQUEST', /idempotencyKey/);
  assertError(await call('POST', `/api/accounts/${a}/stream-keys`, { manifestID: 'a/b' }), 400, 'INVALID_REQUEST', /manifestID/);
  assertError(await call('POST', `/api/accounts/${a}/stream-keys`, { manifestID: 'ok', profiles: ['NoSuchPreset'] }), 400, 'INVALID_PROFILE');
  assertError(await call('GET', `/api/accounts/${a}/usage?from=yesterday`), 400, 'INVALID_REQUEST', /from/);
  assertError(await call('GET', `/api/accounts/${a}/usage?from=2026-03-02T00%3A00%3A00Z&to=2026-03-01T00%3A00%3A00Z`), 400, 'INVALID_REQUEST', /query\.to/);
  assertError(await call('GET', `/api/accounts/${a}/ledger?limit=0`), 400, 'INVALID_REQUEST', /limit/);
  assertError(await call('GET', `/api/accounts/${a}/ledger?page=2`), 400, 'INVALID_REQUEST', /page/);
  assertError(await call('GET', `/api/accounts/${a}/ledger?cursor=bm9wZQ`), 400, 'INVALID_REQUEST', /cursor/);
});

test('a top-up answers the new balance and is idempotent by its key', async () => {
  const a = (await call('POST', '/api/accounts', { name: 'Top', credits: '100' })).body['id'] as string;
  const first = await call('POST', `/api/accounts/${a}/topups`, { credits: '250', idempotencyKey: 'invoice-17' });
  assert.equal(first.status, 200);
  assert.equal(first.body['balance'], '350');
  assert.equal(first.body['replayed'], false);
  assert.equal(first.body['entry']['kind'], 'topup');
  assert.equal(first.body['entry']['amount'], '250');
  const again = await call('POST', `/api/accounts/${a}/topups`, { credits: '250', idempotencyKey: 'invoice-17' });
  assert.equal(again.body['balance'], '350');
  assert.equal(again.body['replayed'], true);
  assertError(await call('POST', `/api/accounts/${a}/topups`, { credits: '251', idempotencyKey: 'invoice-17' }), 400, 'INVALID_REQUEST', /idempotencyKey/);
  assert.equal((await call('GET', `/api/accounts/${a}`)).body['balance'], '350');
});

test('an API key is shown once, resolves, is listed without its secret, and revoking it works', async () => {
  const a = (await call('POST', '/api/accounts', { name: 'Keys' })).body['id'] as string;
  const issued = await call('POST', `/api/accounts/${a}/api-keys`, { label: 'ci runner' });
  assert.equal(issued.status, 201);
  assert.equal(issued.headers.get('cache-control'), 'no-store');
  const key = issued.body['key'] as string;
  assert.match(key, /^mg_api_/);
  assert.equal(issued.body['hint'], key.slice(-4));
  assert.equal(await keys.resolveApiKey(key), a);

  const listed = await call('GET', `/api/accounts/${a}/keys`);
  assert.deepEqual(listed.body, { keys: [{ keyID: issued.body['keyID'], accountID: a, kind: 'api', label: 'ci runner', hint: key.slice(-4), createdAt: issued.body['createdAt'], revoked: false }] });
  assert.ok(!JSON.stringify(listed.body).includes(key), 'the secret is not shown again');

  assert.equal((await call('DELETE', `/api/keys/${issued.body['keyID']}`)).status, 204);
  assert.equal((await call('DELETE', `/api/keys/${issued.body['keyID']}`)).status, 204, 'revoking again is harmless');
  assert.equal(await keys.resolveApiKey(key), undefined);
  assert.equal((await call('GET', `/api/accounts/${a}/keys`)).body['keys'][0]['revoked'], true);
  assertError(await call('DELETE', '/api/keys/key_nothing'), 404, 'NOT_FOUND');
  assertError(await call('POST', '/api/accounts/acct_missing/api-keys', { label: 'x' }), 404, 'NOT_FOUND');
});

test('a stream key is shown once with its manifest ID and ladder; a manifest ID has one live key', async () => {
  const a = (await call('POST', '/api/accounts', { name: 'Streams' })).body['id'] as string;
  const issued = await call('POST', `/api/accounts/${a}/stream-keys`, { manifestID: 'studio-a', profiles: ['P240p30fps16x9'] });
  assert.equal(issued.status, 201);
  assert.equal(issued.headers.get('cache-control'), 'no-store');
  assert.match(issued.body['streamKey'], /^mg_sk_/);
  assert.deepEqual(await keys.resolveStreamKey(issued.body['streamKey']), { keyID: issued.body['keyID'], accountID: a, manifestID: 'studio-a', profiles: ['P240p30fps16x9'] });
  assertError(await call('POST', `/api/accounts/${a}/stream-keys`, { manifestID: 'studio-a' }), 409, 'STREAM_BUSY', /studio-a/);
  assertError(await call('POST', `/api/accounts/${a}/stream-keys`, { manifestID: 'static-cam' }), 409, 'STREAM_BUSY', /configured stream key/);
  const listed = (await call('GET', `/api/accounts/${a}/keys`)).body['keys'] as Json[];
  assert.deepEqual(listed.map((k) => [k['kind'], k['manifestID'], k['profiles']]), [['stream', 'studio-a', ['P240p30fps16x9']]]);
  assert.ok(!JSON.stringify(listed).includes(issued.body['streamKey']));
});

test('usage and the ledger over a time range, money as integer strings, paged newest first', async () => {
  clock.now = T0;
  const a = (await ledger.createAccount({ name: 'Usage', credits: 10_000_000n })).id;
  const at = (offsetMs: number): number => T0 + 3600_000 + offsetMs;
  const charges: Array<[number, string, bigint, bigint, Record<string, string | number>, 'ai' | 'transcode']> = [
    [at(0), 'transcode:cam:s:0', 120n, 120_000_000n, { manifestID: 'cam', seq: 0 }, 'transcode'],
    [at(1000), 'transcode:cam:s:1', 130n, 130_000_000n, { manifestID: 'cam', seq: 1 }, 'transcode'],
    [at(2000), 'ai:req-1', 3n, 262_144n, { pipeline: 'text-to-image', modelID: 'sd-turbo' }, 'ai'],
    [at(3000), 'ai:req-2', 4n, 3_000n, { pipeline: 'audio-to-text', modelID: 'whisper' }, 'ai'],
  ];
  for (const [t, id, amount, units, meta, kind] of charges) {
    clock.now = t;
    const r = await ledger.charge({ entryID: id, accountID: a, amount, units, rule: '1/1000000', kind, ref: id, meta });
    assert.ok(r.ok);
  }
  clock.now = at(10_000);
  const from = new Date(at(0)).toISOString();
  const to = new Date(at(3000)).toISOString();
  const q = (iso: string): string => encodeURIComponent(iso);
  const usage = await call('GET', `/api/accounts/${a}/usage?from=${q(from)}&to=${q(to)}`);
  assert.equal(usage.status, 200);
  assert.deepEqual(usage.body, {
    accountID: a, from, to,
    byStream: [{ manifestID: 'cam', units: '250000000', amount: '250', entries: 2 }],
    byModel: [{ pipeline: 'text-to-image', modelID: 'sd-turbo', units: '262144', amount: '3', entries: 1 }],
    total: { amount: '253', entries: 3 },
  });
  const raw = await call('GET', `/api/accounts/${a}/usage?from=${from}&to=${to}`);
  assert.deepEqual(raw.body, usage.body, 'ISO times work unencoded too (curl users type them so)');
  const defaults = await call('GET', `/api/accounts/${a}/usage`);
  assert.equal(defaults.body['total']['entries'], 4, 'the default window is the last 30 days');

  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await call('GET', `/api/accounts/${a}/ledger?from=${q(from)}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200);
    ids.push(...page.body['entries'].map((e: Json) => e['id'] as string));
    cursor = page.body['nextCursor'];
  } while (cursor);
  assert.deepEqual(ids, ['ai:req-2', 'ai:req-1', 'transcode:cam:s:1', 'transcode:cam:s:0']);
  const whole = await call('GET', `/api/accounts/${a}/ledger`);
  assert.equal(whole.body['entries'].length, 5, 'the initial top-up is an entry too');
  assert.deepEqual(whole.body['entries'][3], {
    id: 'transcode:cam:s:0', accountID: a, kind: 'transcode', amount: '120', units: '120000000', rule: '1/1000000', ref: 'transcode:cam:s:0',
    createdAt: new Date(at(0)).toISOString(), manifestID: 'cam', seq: 0,
  });
});

test('the spec is served beside the API', async () => {
  const res = await fetch(`${base}/openapi/payments.yaml`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^openapi: 3\.1\.0/);
});
