/**
 * The Redis ledger on a real redis-server: accounts and top-ups, holds (reserve, settle,
 * release, expiry) with their idempotency, capped settles, exactness up to 2^53 − 1,
 * concurrent reservations that cannot overdraw, paging and usage over a time range.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { RedisLedger } from '../../../src/payments/ledger-store.ts';
import { MAX_CREDITS, type LedgerEntry } from '../../../src/payments/ledger-types.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

let server: TestRedis;
let redis: Redis;
const extraClients: Redis[] = [];
let prefixes = 0;
const T0 = 1_750_000_000_000;

before(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url, logger: silentLogger(), name: 'test' });
});
after(async () => {
  redis.disconnect();
  for (const c of extraClients) c.disconnect();
  await server.stop();
});

/** A ledger under a fresh prefix with a settable clock. */
function freshLedger(client: Redis = redis): { ledger: RedisLedger; prefix: string; clock: { now: number } } {
  const clock = { now: T0 };
  const prefix = `lt${++prefixes}`;
  return { ledger: new RedisLedger({ redis: client, prefix, nowMs: () => clock.now }), prefix, clock };
}

async function balanceOf(ledger: RedisLedger, id: string): Promise<bigint> {
  return (await ledger.getAccount(id))!.balance;
}

test('an account is created with its initial credits as a top-up entry, and creating it again by ID changes nothing', async () => {
  const { ledger } = freshLedger();
  const a = await ledger.createAccount({ id: 'local', name: 'Local', credits: 500n });
  assert.deepEqual(a, { id: 'local', name: 'Local', balance: 500n, createdAtMs: T0 });
  const again = await ledger.createAccount({ id: 'local', name: 'Other', credits: 9n });
  assert.deepEqual(again, a);
  const generated = await ledger.createAccount({ name: 'Generated' });
  assert.match(generated.id, /^acct_[A-Za-z0-9_-]{16}$/);
  assert.equal(generated.balance, 0n);
  assert.deepEqual((await ledger.listAccounts()).map((x) => x.id).sort(), [generated.id, 'local'].sort());
  const { entries } = await ledger.listEntries('local');
  assert.deepEqual(entries.map((e) => [e.id, e.kind, e.amount]), [['topup:local:initial', 'topup', 500n]]);
  assert.equal(await ledger.getAccount('nobody'), undefined);
});

test('a top-up is idempotent by its key, refuses a reused key with another amount, and needs an existing account', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A' });
  const first = await ledger.topUp('a', 100n, 'pay-1');
  assert.equal(first.balance, 100n);
  assert.equal(first.replayed, false);
  assert.equal(first.entry.id, 'topup:a:pay-1');
  const repeat = await ledger.topUp('a', 100n, 'pay-1');
  assert.equal(repeat.replayed, true);
  assert.equal(repeat.balance, 100n);
  assert.deepEqual(repeat.entry, first.entry);
  await assert.rejects(ledger.topUp('a', 99n, 'pay-1'), (err: GatewayError) => err.code === 'INVALID_REQUEST' && /already used/.test(err.message));
  await assert.rejects(ledger.topUp('missing', 1n, 'k'), (err: GatewayError) => err.code === 'NOT_FOUND');
  await assert.rejects(ledger.topUp('a', 0n, 'zero'), RangeError);
  assert.equal(await balanceOf(ledger, 'a'), 100n);
});

test('a reservation takes the amount once per hold ID and is refused, with the balance, when short', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  const hold = { holdID: 'ai:req-1', accountID: 'a', amount: 60n, kind: 'ai' as const, ref: 'req-1', ttlMs: 60_000 };
  assert.deepEqual(await ledger.reserve(hold), { ok: true });
  assert.deepEqual(await ledger.reserve(hold), { ok: true }, 'a repeat returns the first result');
  assert.equal(await balanceOf(ledger, 'a'), 40n, 'the repeat took nothing more');
  assert.deepEqual(await ledger.reserve({ ...hold, holdID: 'ai:req-2' }), { ok: false, balance: 40n });
  assert.equal(await balanceOf(ledger, 'a'), 40n);
  await assert.rejects(ledger.reserve({ ...hold, holdID: 'ai:req-3', accountID: 'missing' }), (err: GatewayError) => err.code === 'NOT_FOUND');
  await ledger.createAccount({ id: 'b', name: 'B', credits: 100n });
  await assert.rejects(ledger.reserve({ ...hold, accountID: 'b' }), (err: GatewayError) => err.code === 'INVALID_REQUEST', 'a live hold belongs to one account');
});

test('settling refunds the unused hold, writes one entry keyed by the hold ID, and a second settle changes nothing', async () => {
  const { ledger, clock } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 1000n });
  await ledger.reserve({ holdID: 'transcode:cam:s1:7', accountID: 'a', amount: 300n, kind: 'transcode', ref: 'cam/7', ttlMs: 60_000 });
  assert.equal(await balanceOf(ledger, 'a'), 700n);
  clock.now = T0 + 5;
  const request = {
    holdID: 'transcode:cam:s1:7', actualUnits: 248_832_000n, amount: 249n, rule: '1/1000000', kind: 'transcode' as const, ref: 'cam/7',
    meta: { manifestID: 'cam', seq: 7 },
  };
  const settled = await ledger.settle(request);
  assert.ok(settled.settled);
  assert.equal(settled.replayed, false);
  assert.deepEqual(settled.entry, {
    id: 'transcode:cam:s1:7', accountID: 'a', kind: 'transcode', amount: 249n, units: 248_832_000n, rule: '1/1000000', ref: 'cam/7',
    createdAtMs: T0 + 5, manifestID: 'cam', seq: 7,
  } satisfies LedgerEntry);
  assert.equal(await balanceOf(ledger, 'a'), 751n);
  clock.now = T0 + 50;
  const twice = await ledger.settle({ ...request, amount: 999n });
  assert.ok(twice.settled);
  assert.equal(twice.replayed, true);
  assert.deepEqual(twice.entry, settled.entry, 'the same entry comes back');
  assert.equal(await balanceOf(ledger, 'a'), 751n);
  assert.deepEqual(await ledger.reserve({ holdID: 'transcode:cam:s1:7', accountID: 'a', amount: 300n, kind: 'transcode', ref: 'cam/7', ttlMs: 60_000 }), { ok: true });
  assert.equal(await balanceOf(ledger, 'a'), 751n, 'reserving settled work again takes nothing');
  assert.deepEqual(await ledger.release('transcode:cam:s1:7'), { released: false, reason: 'settled' }, 'release after settle is a no-op');
  assert.equal(await balanceOf(ledger, 'a'), 751n);
  assert.equal((await ledger.listEntries('a')).entries.filter((e) => e.kind === 'transcode').length, 1);
});

test('a released hold is refunded in full once and cannot be settled afterwards', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  await ledger.reserve({ holdID: 'ai:r', accountID: 'a', amount: 30n, kind: 'ai', ref: 'r', ttlMs: 60_000 });
  assert.deepEqual(await ledger.release('ai:r'), { released: true, amount: 30n });
  assert.deepEqual(await ledger.release('ai:r'), { released: false, reason: 'released' });
  assert.equal(await balanceOf(ledger, 'a'), 100n);
  assert.deepEqual(await ledger.settle({ holdID: 'ai:r', actualUnits: 1n, amount: 10n, rule: '1/1', kind: 'ai', ref: 'r' }), { settled: false, reason: 'released' });
  assert.equal(await balanceOf(ledger, 'a'), 100n, 'failed work is not charged');
  assert.equal(await ledger.getEntry('ai:r'), undefined);
  assert.deepEqual(await ledger.release('ai:never'), { released: false, reason: 'unknown-hold' });
  assert.deepEqual(await ledger.settle({ holdID: 'ai:never', actualUnits: 1n, amount: 1n, rule: '1/1', kind: 'ai', ref: 'x' }), { settled: false, reason: 'unknown-hold' });
});

test('a retry of released work reserves afresh and is charged once when it succeeds', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  const hold = { holdID: 'transcode:m:s:3', accountID: 'a', amount: 40n, kind: 'transcode' as const, ref: 'm/3', ttlMs: 60_000 };
  await ledger.reserve(hold);
  await ledger.release(hold.holdID);
  assert.deepEqual(await ledger.reserve(hold), { ok: true });
  assert.equal(await balanceOf(ledger, 'a'), 60n);
  const done = await ledger.settle({ holdID: hold.holdID, actualUnits: 10n, amount: 25n, rule: '5/2', kind: 'transcode', ref: 'm/3' });
  assert.ok(done.settled);
  assert.equal(await balanceOf(ledger, 'a'), 75n);
});

test('a charge above the hold takes the extra only as far as the balance goes and records the shortfall', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  await ledger.reserve({ holdID: 'ai:big', accountID: 'a', amount: 90n, kind: 'ai', ref: 'big', ttlMs: 60_000 });
  const capped = await ledger.settle({ holdID: 'ai:big', actualUnits: 500n, amount: 500n, rule: '1/1', kind: 'ai', ref: 'big', meta: { pipeline: 'llm', modelID: 'm' } });
  assert.ok(capped.settled);
  assert.equal(capped.entry.amount, 100n, 'the capped amount: the hold plus the whole remaining balance');
  assert.equal(capped.entry.requestedAmount, 500n);
  assert.equal(capped.entry.shortfall, 400n);
  assert.equal(await balanceOf(ledger, 'a'), 0n, 'never negative');

  await ledger.topUp('a', 100n, 'more');
  await ledger.reserve({ holdID: 'ai:fits', accountID: 'a', amount: 10n, kind: 'ai', ref: 'fits', ttlMs: 60_000 });
  const fits = await ledger.settle({ holdID: 'ai:fits', actualUnits: 30n, amount: 30n, rule: '1/1', kind: 'ai', ref: 'fits' });
  assert.ok(fits.settled);
  assert.equal(fits.entry.amount, 30n);
  assert.equal(fits.entry.shortfall, undefined);
  assert.equal(await balanceOf(ledger, 'a'), 70n);
});

test('holds past their expiry are released by the sweep, and an expired hold is not settled', async () => {
  const { ledger, clock } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  await ledger.reserve({ holdID: 'ai:slow', accountID: 'a', amount: 20n, kind: 'ai', ref: 'slow', ttlMs: 1000 });
  await ledger.reserve({ holdID: 'ai:later', accountID: 'a', amount: 30n, kind: 'ai', ref: 'later', ttlMs: 5000 });
  assert.equal(await ledger.expireHolds(T0 + 999), 0);
  assert.equal(await balanceOf(ledger, 'a'), 50n);
  assert.equal(await ledger.expireHolds(T0 + 1000), 1);
  assert.equal(await balanceOf(ledger, 'a'), 70n);
  assert.deepEqual(await ledger.settle({ holdID: 'ai:slow', actualUnits: 1n, amount: 1n, rule: '1/1', kind: 'ai', ref: 'slow' }), { settled: false, reason: 'expired' });
  assert.deepEqual(await ledger.release('ai:slow'), { released: false, reason: 'expired' });
  clock.now = T0 + 10_000;
  assert.equal(await ledger.expireHolds(), 1, 'the sweep defaults to the ledger clock');
  assert.equal(await balanceOf(ledger, 'a'), 100n);
  assert.equal(await ledger.expireHolds(), 0);
});

test('the sweep handles more expired holds than one script batch', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 2000n });
  await Promise.all(Array.from({ length: 1201 }, (_, i) => ledger.reserve({ holdID: `ai:${i}`, accountID: 'a', amount: 1n, kind: 'ai', ref: String(i), ttlMs: 10 })));
  assert.equal(await balanceOf(ledger, 'a'), 799n);
  assert.equal(await ledger.expireHolds(T0 + 10), 1201);
  assert.equal(await balanceOf(ledger, 'a'), 2000n);
});

test('200 parallel reservations against a balance that covers exactly 100: exactly 100 succeed and settling them leaves exactly 0', async () => {
  // Four connections so the calls really interleave at the server.
  const clients = Array.from({ length: 4 }, (_, i) => createRedis({ url: server.url, logger: silentLogger(), name: `burst-${i}` }));
  extraClients.push(...clients);
  const prefix = `lt${++prefixes}`;
  const ledgers = clients.map((c) => new RedisLedger({ redis: c, prefix }));
  const price = 7_919n;
  await ledgers[0]!.createAccount({ id: 'burst', name: 'Burst', credits: price * 100n });
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => ledgers[i % 4]!.reserve({
    holdID: `ai:burst-${i}`, accountID: 'burst', amount: price, kind: 'ai', ref: `burst-${i}`, ttlMs: 60_000,
  }).then((r) => ({ i, r }))));
  const granted = results.filter((x) => x.r.ok);
  assert.equal(granted.length, 100);
  for (const x of results) if (!x.r.ok) assert.ok(x.r.balance < price, 'a refusal reports a balance that could not cover it');
  assert.equal(await balanceOf(ledgers[0]!, 'burst'), 0n);
  const settled = await Promise.all(granted.map(({ i }) => ledgers[i % 4]!.settle({
    holdID: `ai:burst-${i}`, actualUnits: 1n, amount: price, rule: `${price}/1`, kind: 'ai', ref: `burst-${i}`, meta: { pipeline: 'text-to-image', modelID: 'sd' },
  })));
  assert.ok(settled.every((s) => s.settled && !s.replayed));
  assert.equal(await balanceOf(ledgers[0]!, 'burst'), 0n);
  const usage = await ledgers[0]!.usage('burst');
  assert.equal(usage.total.entries, 100);
  assert.equal(usage.total.amount, price * 100n);
});

test('200 parallel direct charges against a balance that covers exactly 100: exactly 100 succeed, balance exactly 0', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'c', name: 'C', credits: 300n });
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => ledger.charge({
    entryID: `ai:c-${i}`, accountID: 'c', amount: 3n, units: 3n, rule: '1/1', kind: 'ai', ref: `c-${i}`,
  })));
  assert.equal(results.filter((r) => r.ok).length, 100);
  assert.equal(await balanceOf(ledger, 'c'), 0n);
});

test('a direct charge is idempotent by entry ID, refuses rather than overdraws, and will not shadow a live hold', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 10n });
  const req = { entryID: 'ai:x', accountID: 'a', amount: 6n, units: 6n, rule: '1/1', kind: 'ai' as const, ref: 'x', meta: { pipeline: 'llm', modelID: 'gpt' } };
  const first = await ledger.charge(req);
  assert.ok(first.ok);
  assert.equal(first.replayed, false);
  const again = await ledger.charge(req);
  assert.ok(again.ok);
  assert.equal(again.replayed, true);
  assert.deepEqual(again.entry, first.entry);
  assert.deepEqual(await ledger.charge({ ...req, entryID: 'ai:y' }), { ok: false, balance: 4n });
  assert.equal(await balanceOf(ledger, 'a'), 4n);
  await ledger.reserve({ holdID: 'ai:h', accountID: 'a', amount: 1n, kind: 'ai', ref: 'h', ttlMs: 1000 });
  await assert.rejects(ledger.charge({ ...req, entryID: 'ai:h', amount: 1n }), (err: GatewayError) => err.code === 'INVALID_REQUEST');
});

test('amounts up to 2^53 − 1 stay exact, and anything beyond is refused before it reaches Lua', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'rich', name: 'Rich', credits: MAX_CREDITS - 1n });
  await ledger.reserve({ holdID: 'ai:huge', accountID: 'rich', amount: MAX_CREDITS - 3n, kind: 'ai', ref: 'huge', ttlMs: 60_000 });
  assert.equal(await balanceOf(ledger, 'rich'), 2n);
  const s = await ledger.settle({ holdID: 'ai:huge', actualUnits: 12_345_678_901_234_567_890n, amount: MAX_CREDITS - 2n, rule: '1/1', kind: 'ai', ref: 'huge' });
  assert.ok(s.settled);
  assert.equal(s.entry.amount, MAX_CREDITS - 2n);
  assert.equal(s.entry.units, 12_345_678_901_234_567_890n, 'units are stored, not computed, so any size stays exact');
  assert.equal(await balanceOf(ledger, 'rich'), 1n);
  await assert.rejects(ledger.topUp('rich', MAX_CREDITS, 'too-much'), (err: GatewayError) => err.code === 'INVALID_REQUEST' && /exceed/.test(err.message));
  assert.equal((await ledger.topUp('rich', MAX_CREDITS - 1n, 'to-the-top')).balance, MAX_CREDITS);
  await assert.rejects(ledger.reserve({ holdID: 'ai:over', accountID: 'rich', amount: MAX_CREDITS + 1n, kind: 'ai', ref: 'over', ttlMs: 1 }), RangeError);
  await assert.rejects(ledger.charge({ entryID: 'ai:neg', accountID: 'rich', amount: -1n, units: 0n, rule: '1/1', kind: 'ai', ref: 'neg' }), RangeError);
});

test('entries page newest first over a time range, ties in one millisecond included exactly once', async () => {
  const { ledger, clock } = freshLedger();
  clock.now = T0 - 1000;
  await ledger.createAccount({ id: 'a', name: 'A', credits: 1_000_000n });
  const times = [T0, T0, T0, T0 + 1, T0 + 1, T0 + 2, T0 + 3, T0 + 3, T0 + 3, T0 + 4];
  for (const [i, t] of times.entries()) {
    clock.now = t;
    await ledger.charge({ entryID: `ai:e${i}`, accountID: 'a', amount: 1n, units: 1n, rule: '1/1', kind: 'ai', ref: `e${i}` });
  }
  clock.now = T0 + 100;
  const seen: LedgerEntry[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await ledger.listEntries('a', { fromMs: T0, toMs: T0 + 4, limit: 3, ...(cursor ? { cursor } : {}) });
    seen.push(...page.entries);
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(seen.map((e) => e.id).sort(), ['ai:e0', 'ai:e1', 'ai:e2', 'ai:e3', 'ai:e4', 'ai:e5', 'ai:e6', 'ai:e7', 'ai:e8']);
  const at = seen.map((e) => e.createdAtMs);
  assert.deepEqual(at, [...at].sort((x, y) => y - x), 'newest first');
  const all = await ledger.listEntries('a', { limit: 1000 });
  assert.equal(all.entries.length, 11, 'ten charges and the initial top-up');
  assert.equal(all.nextCursor, undefined);
  assert.deepEqual((await ledger.listEntries('a', { fromMs: T0 + 5 })).entries, []);
  await assert.rejects(ledger.listEntries('a', { cursor: 'bm90LWEtY3Vyc29y' }), (err: GatewayError) => err.code === 'INVALID_REQUEST');
});

test('usage totals charges by stream and by pipeline and model within the range, without top-ups', async () => {
  const { ledger, clock } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 1_000_000n });
  const charge = async (atMs: number, id: string, amount: bigint, units: bigint, meta: Record<string, string | number>, kind: 'ai' | 'transcode'): Promise<void> => {
    clock.now = atMs;
    const r = await ledger.charge({ entryID: id, accountID: 'a', amount, units, rule: '1/1', kind, ref: id, meta });
    assert.ok(r.ok);
  };
  await charge(T0 + 10, 'transcode:cam1:s:0', 100n, 1000n, { manifestID: 'cam1', seq: 0 }, 'transcode');
  await charge(T0 + 20, 'transcode:cam1:s:1', 150n, 1500n, { manifestID: 'cam1', seq: 1 }, 'transcode');
  await charge(T0 + 30, 'transcode:cam2:s:0', 300n, 3000n, { manifestID: 'cam2', seq: 0 }, 'transcode');
  await charge(T0 + 40, 'ai:1', 5n, 512n, { pipeline: 'text-to-image', modelID: 'sd' }, 'ai');
  await charge(T0 + 50, 'ai:2', 7n, 768n, { pipeline: 'text-to-image', modelID: 'sd' }, 'ai');
  await charge(T0 + 60, 'ai:3', 9n, 42n, { pipeline: 'llm', modelID: 'llama' }, 'ai');
  await charge(T0 + 999, 'transcode:cam1:s:2', 1000n, 1n, { manifestID: 'cam1', seq: 2 }, 'transcode');
  clock.now = T0 + 70;
  await ledger.topUp('a', 5n, 'in-range');

  const usage = await ledger.usage('a', { fromMs: T0 + 10, toMs: T0 + 999 });
  assert.deepEqual(usage.byStream, [
    { manifestID: 'cam2', units: 3000n, amount: 300n, entries: 1 },
    { manifestID: 'cam1', units: 2500n, amount: 250n, entries: 2 },
  ]);
  assert.deepEqual(usage.byModel, [
    { pipeline: 'text-to-image', modelID: 'sd', units: 1280n, amount: 12n, entries: 2 },
    { pipeline: 'llm', modelID: 'llama', units: 42n, amount: 9n, entries: 1 },
  ]);
  assert.deepEqual(usage.total, { amount: 571n, entries: 6 });
  const late = await ledger.usage('a', { fromMs: T0 + 999, toMs: T0 + 1000 });
  assert.deepEqual(late.byStream, [{ manifestID: 'cam1', units: 1n, amount: 1000n, entries: 1 }]);
});

test('usage reads ranges larger than one batch', async () => {
  const { ledger, clock } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 10_000n });
  for (let i = 0; i < 2500; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, j) => {
      clock.now = T0 + i + j;
      return ledger.charge({ entryID: `transcode:m:s:${i + j}`, accountID: 'a', amount: 2n, units: 10n, rule: '1/5', kind: 'transcode', ref: 'm', meta: { manifestID: 'm', seq: i + j } });
    }));
  }
  const usage = await ledger.usage('a', { fromMs: T0, toMs: T0 + 2500 });
  assert.deepEqual(usage.byStream, [{ manifestID: 'm', units: 25_000n, amount: 5000n, entries: 2500 }]);
});

test('every ledger script runs again after Redis forgot its scripts (SCRIPT FLUSH, as after a restart)', async () => {
  const { ledger } = freshLedger();
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  await redis.script('FLUSH');
  await ledger.createAccount({ id: 'b', name: 'B', credits: 1n });
  await redis.script('FLUSH');
  assert.equal((await ledger.topUp('a', 50n, 'k1')).balance, 150n);
  await redis.script('FLUSH');
  assert.deepEqual(await ledger.reserve({ holdID: 'ai:r1', accountID: 'a', amount: 40n, kind: 'ai', ref: 'r1', ttlMs: 1000 }), { ok: true });
  await redis.script('FLUSH');
  const settled = await ledger.settle({ holdID: 'ai:r1', actualUnits: 3n, amount: 30n, rule: '10/1', kind: 'ai', ref: 'r1' });
  assert.equal(settled.settled && settled.entry.amount, 30n);
  await ledger.reserve({ holdID: 'ai:r2', accountID: 'a', amount: 10n, kind: 'ai', ref: 'r2', ttlMs: 1000 });
  await redis.script('FLUSH');
  assert.deepEqual(await ledger.release('ai:r2'), { released: true, amount: 10n });
  await ledger.reserve({ holdID: 'ai:r3', accountID: 'a', amount: 5n, kind: 'ai', ref: 'r3', ttlMs: 1 });
  await redis.script('FLUSH');
  assert.equal(await ledger.expireHolds(T0 + 10), 1);
  await redis.script('FLUSH');
  const charged = await ledger.charge({ entryID: 'ai:r4', accountID: 'a', amount: 20n, units: 2n, rule: '10/1', kind: 'ai', ref: 'r4' });
  assert.equal(charged.ok, true);
  assert.equal(await balanceOf(ledger, 'a'), 100n);
  assert.equal(await balanceOf(ledger, 'b'), 1n);
});

test('held work costs one round trip to hold and one to settle, the entry included, and a replayed settle or charge charges once', async () => {
  const client = createRedis({ url: server.url, logger: silentLogger(), name: 'test-count' });
  extraClients.push(client);
  let sent = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<typeof send>) => { sent += 1; return send(...args); }) as typeof client.sendCommand;
  const { ledger } = freshLedger(client);
  await ledger.createAccount({ id: 'a', name: 'A', credits: 1000n });
  // Loads the scripts on this connection (the first EVALSHA of each falls back to EVAL).
  await ledger.reserve({ holdID: 'ai:warm', accountID: 'a', amount: 1n, kind: 'ai', ref: 'warm', ttlMs: 60_000 });
  await ledger.settle({ holdID: 'ai:warm', actualUnits: 1n, amount: 1n, rule: '1/1', kind: 'ai', ref: 'warm' });
  await ledger.charge({ entryID: 'ai:warm-charge', accountID: 'a', amount: 1n, units: 1n, rule: '1/1', kind: 'ai', ref: 'warm' });

  sent = 0;
  assert.deepEqual(await ledger.reserve({ holdID: 'ai:r1', accountID: 'a', amount: 40n, kind: 'ai', ref: 'r1', ttlMs: 60_000 }), { ok: true });
  assert.equal(sent, 1, 'the hold: one command');
  sent = 0;
  const settled = await ledger.settle({ holdID: 'ai:r1', actualUnits: 4n, amount: 40n, rule: '10/1', kind: 'ai', ref: 'r1', meta: { pipeline: 'text-to-image', modelID: 'm' } });
  assert.equal(sent, 1, 'the settle, entry included: one command');
  assert.ok(settled.settled);
  assert.deepEqual(settled.entry, await ledger.getEntry('ai:r1'));
  assert.deepEqual(settled.entry, {
    id: 'ai:r1', accountID: 'a', kind: 'ai', amount: 40n, units: 4n, rule: '10/1', ref: 'r1', createdAtMs: T0, pipeline: 'text-to-image', modelID: 'm',
  } satisfies LedgerEntry);
  const balance = await balanceOf(ledger, 'a');
  sent = 0;
  const replayed = await ledger.settle({ holdID: 'ai:r1', actualUnits: 4n, amount: 40n, rule: '10/1', kind: 'ai', ref: 'r1', meta: { pipeline: 'text-to-image', modelID: 'm' } });
  assert.equal(sent, 1);
  assert.ok(replayed.settled && replayed.replayed);
  assert.deepEqual(replayed.entry, settled.entry);
  assert.equal(await balanceOf(ledger, 'a'), balance, 'a replayed request ID charges once');

  sent = 0;
  const charged = await ledger.charge({ entryID: 'ai:c1', accountID: 'a', amount: 7n, units: 7n, rule: '1/1', kind: 'ai', ref: 'c1' });
  assert.equal(sent, 1, 'a direct charge, entry included: one command');
  assert.ok(charged.ok);
  assert.deepEqual(charged.entry, await ledger.getEntry('ai:c1'));
  const again = await ledger.charge({ entryID: 'ai:c1', accountID: 'a', amount: 7n, units: 7n, rule: '1/1', kind: 'ai', ref: 'c1' });
  assert.ok(again.ok && again.replayed);
  assert.deepEqual(again.entry, charged.entry);
  assert.equal(await balanceOf(ledger, 'a'), balance - 7n, 'a replayed charge charges once');
});
