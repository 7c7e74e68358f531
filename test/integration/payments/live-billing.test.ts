/**
 * Interval billing of live video-to-video sessions (payments/live-billing.ts) on a real
 * redis-server: the hold at open, one idempotent entry per interval, the hold refilled while
 * the balance lasts, a stop at zero that never goes negative, the hold given back at close,
 * and the charges in the account's usage under pipeline live-video-to-video.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redisClientForSuite } from '../../helpers/suite-setup.ts';
import { RedisLedger } from '../../../src/payments/ledger-store.ts';
import { Billing } from '../../../src/payments/billing.ts';
import { LiveBilling, liveHoldID, type LiveBillingOptions } from '../../../src/payments/live-billing.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import type { AiPriceRule } from '../../../src/payments/billing.ts';

const LIVE = 'live-video-to-video';
const MODEL = 'mediagate/cpu-filter';
const T0 = 1_760_000_000_000;

const testRedis = redisClientForSuite();
let prefixes = 0;

/** A ledger under a fresh prefix with a settable clock, and live billing on it. */
function fresh(aiPrices: AiPriceRule[], options: Partial<LiveBillingOptions> = {}): { ledger: RedisLedger; live: LiveBilling; clock: { now: number }; charged: bigint[] } {
  const clock = { now: T0 };
  const ledger = new RedisLedger({ redis: testRedis.client, prefix: `lb${++prefixes}`, nowMs: () => clock.now });
  const billing = new Billing({ ledger, transcodePrice: { pricePerUnit: 1, pixelsPerUnit: 1_000_000 }, aiPrices, logger: silentLogger() });
  const charged: bigint[] = [];
  const live = new LiveBilling({
    ledger, price: (p, m) => billing.aiPrice(p, m), logger: silentLogger(), onCharged: (_kind, credits) => charged.push(credits), ...options,
  });
  return { ledger, live, clock, charged };
}

/** The default price rule of the configuration: 1 credit per 1 000 000 units. */
const DEFAULT_PRICES: AiPriceRule[] = [{ pipeline: '*', model_id: '*', pricePerUnit: 1, pixelsPerUnit: 1_000_000 }];
/** 1 credit per second of wall time at the default 27 648 000 units/s. */
const CREDIT_PER_SECOND: AiPriceRule[] = [...DEFAULT_PRICES, { pipeline: LIVE, model_id: '*', pricePerUnit: 1, pixelsPerUnit: 27_648_000 }];

async function balanceOf(ledger: RedisLedger, id: string): Promise<bigint> {
  return (await ledger.getAccount(id))!.balance;
}

test('open holds 60 s at the live price (1280x720x30 units/s), each interval is one entry charged once, close returns the rest', async () => {
  const { ledger, live, charged } = fresh(DEFAULT_PRICES);
  await ledger.createAccount({ id: 'a', name: 'A', credits: 10_000n });
  await live.open({ requestID: 'r1', accountID: 'a', pipeline: LIVE, modelID: MODEL });
  // 60 s × 27 648 000 units = 1 658 880 000 units at 1/1 000 000 → 1659 credits (rounded up).
  assert.equal(await balanceOf(ledger, 'a'), 10_000n - 1659n);

  assert.deepEqual(await live.charge({ requestID: 'r1', interval: 0, seconds: 5 }), { ok: true });
  // 5 s = 138 240 000 units → 139 credits; the hold is filled back up to 1659 from the balance.
  assert.equal(await balanceOf(ledger, 'a'), 10_000n - 1659n - 139n);
  const entry = await ledger.getEntry(`${liveHoldID('r1')}:0`);
  assert.ok(entry);
  assert.equal(entry.amount, 139n);
  assert.equal(entry.units, 138_240_000n);
  assert.equal(entry.kind, 'ai');
  assert.equal(entry.pipeline, LIVE);
  assert.equal(entry.modelID, MODEL);
  assert.equal(entry.rule, '1/1000000');
  assert.equal(entry.ref, 'r1');
  assert.equal(entry.shortfall, undefined);

  assert.deepEqual(await live.charge({ requestID: 'r1', interval: 0, seconds: 5 }), { ok: true }, 'a repeated interval answers the same');
  assert.equal(await balanceOf(ledger, 'a'), 10_000n - 1659n - 139n, 'and charges nothing more');
  await Promise.all([live.charge({ requestID: 'r1', interval: 1, seconds: 5 }), live.charge({ requestID: 'r1', interval: 1, seconds: 5 })]);
  assert.equal(await balanceOf(ledger, 'a'), 10_000n - 1659n - 2n * 139n, 'concurrent repeats charge once');
  // A last, shorter interval is charged by its length (2.5 s → 69 120 000 units → 70 credits).
  await live.charge({ requestID: 'r1', interval: 2, seconds: 2.5 });
  assert.deepEqual(charged, [139n, 139n, 70n], 'metrics see each new charge once');

  await live.close('r1');
  assert.equal(await balanceOf(ledger, 'a'), 10_000n - 2n * 139n - 70n, 'the hold came back');
  await live.close('r1');
  assert.equal(await balanceOf(ledger, 'a'), 10_000n - 2n * 139n - 70n, 'a second close changes nothing');
  const { entries } = await ledger.listEntries('a');
  assert.deepEqual(entries.map((e) => e.id).sort(), ['live:r1:0', 'live:r1:1', 'live:r1:2', 'topup:a:initial']);
  await assert.rejects(live.charge({ requestID: 'r1', interval: 3, seconds: 5 }), /not open/, 'a closed session cannot be charged');
});

test('at zero balance the charge takes what is left, answers insufficient balance, and nothing goes negative', async () => {
  const { ledger, live } = fresh(CREDIT_PER_SECOND, { holdSec: 10 });
  await ledger.createAccount({ id: 'a', name: 'A', credits: 17n });
  await live.open({ requestID: 'r', accountID: 'a', pipeline: LIVE, modelID: MODEL });
  assert.equal(await balanceOf(ledger, 'a'), 7n, 'a 10 s hold at 1 credit/s');
  assert.deepEqual(await live.charge({ requestID: 'r', interval: 0, seconds: 5 }), { ok: true });
  assert.equal(await balanceOf(ledger, 'a'), 2n, '12 left: 10 held again, 2 free');
  assert.deepEqual(await live.charge({ requestID: 'r', interval: 1, seconds: 5 }), { ok: true });
  assert.equal(await balanceOf(ledger, 'a'), 0n, '7 left, all held');
  assert.deepEqual(await live.charge({ requestID: 'r', interval: 2, seconds: 5 }), { ok: true }, 'the hold pays while it lasts');
  const short = await live.charge({ requestID: 'r', interval: 3, seconds: 5 });
  assert.deepEqual(short, { ok: false, reason: 'insufficient balance' });
  const last = await ledger.getEntry('live:r:3');
  assert.equal(last?.amount, 2n, 'what was left was taken');
  assert.equal(last?.requestedAmount, 5n);
  assert.equal(last?.shortfall, 3n);
  assert.deepEqual(await live.charge({ requestID: 'r', interval: 3, seconds: 5 }), short, 'a repeat answers the same');
  assert.deepEqual(await live.charge({ requestID: 'r', interval: 4, seconds: 5 }), short, 'an empty account keeps refusing');
  assert.equal((await ledger.getEntry('live:r:4'))?.amount, 0n);
  await live.close('r');
  assert.equal(await balanceOf(ledger, 'a'), 0n, 'never below zero');
  const usage = await ledger.usage('a');
  assert.equal(usage.total.amount, 17n, 'every credit is accounted for in entries');
});

test('open is refused with 402 when the account cannot cover the hold, and holds nothing', async () => {
  const { ledger, live } = fresh(CREDIT_PER_SECOND, { holdSec: 60 });
  await ledger.createAccount({ id: 'a', name: 'A', credits: 59n });
  await assert.rejects(live.open({ requestID: 'r', accountID: 'a', pipeline: LIVE, modelID: MODEL }),
    (err: GatewayError) => err.code === 'INSUFFICIENT_BALANCE' && /60 credits/.test(err.message) && /has 59/.test(err.message));
  assert.equal(await balanceOf(ledger, 'a'), 59n);
  await assert.rejects(live.charge({ requestID: 'r', interval: 0, seconds: 5 }), /not open/);
  await assert.rejects(live.open({ requestID: 'r2', accountID: 'missing', pipeline: LIVE, modelID: MODEL }), (err: GatewayError) => err.code === 'NOT_FOUND');
});

test('a session without an account is not metered: charges are free and write no entry', async () => {
  const { ledger, live, charged } = fresh(CREDIT_PER_SECOND);
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  await live.open({ requestID: 'anon', accountID: undefined, pipeline: LIVE, modelID: MODEL });
  assert.deepEqual(await live.charge({ requestID: 'anon', interval: 0, seconds: 5 }), { ok: true });
  assert.equal(await ledger.getEntry('live:anon:0'), undefined);
  assert.deepEqual(charged, []);
  await live.close('anon');
  assert.equal(await balanceOf(ledger, 'a'), 100n);
});

test('each charge moves the hold\'s expiry on, so only a session that stopped being charged has its hold swept back', async () => {
  const { ledger, live, clock } = fresh(CREDIT_PER_SECOND, { holdSec: 10, holdTtlMs: 30_000 });
  await ledger.createAccount({ id: 'a', name: 'A', credits: 100n });
  await live.open({ requestID: 'r', accountID: 'a', pipeline: LIVE, modelID: MODEL });
  clock.now = T0 + 25_000;
  await live.charge({ requestID: 'r', interval: 0, seconds: 5 });
  assert.equal(await ledger.expireHolds(T0 + 40_000), 0, 'the charge at 25 s moved the expiry to 55 s');
  assert.equal(await balanceOf(ledger, 'a'), 85n);
  assert.equal(await ledger.expireHolds(T0 + 56_000), 1, 'a gateway that died returns the hold');
  assert.equal(await balanceOf(ledger, 'a'), 95n);
  // A charge after the hold expired comes from the balance alone.
  clock.now = T0 + 60_000;
  assert.deepEqual(await live.charge({ requestID: 'r', interval: 1, seconds: 5 }), { ok: true });
  assert.equal(await balanceOf(ledger, 'a'), 90n);
  await live.close('r');
  assert.equal(await balanceOf(ledger, 'a'), 90n, 'close of an expired hold gives nothing twice');
});

test('live charges show in the account\'s usage by model under pipeline live-video-to-video', async () => {
  const { ledger, live } = fresh(DEFAULT_PRICES);
  await ledger.createAccount({ id: 'a', name: 'A', credits: 10_000n });
  await live.open({ requestID: 'u', accountID: 'a', pipeline: LIVE, modelID: MODEL });
  for (let i = 0; i < 3; i++) await live.charge({ requestID: 'u', interval: i, seconds: 5 });
  await live.close('u');
  const usage = await ledger.usage('a');
  assert.deepEqual(usage.byModel, [{ pipeline: LIVE, modelID: MODEL, units: 3n * 138_240_000n, amount: 3n * 139n, entries: 3 }]);
  assert.deepEqual(usage.total, { amount: 3n * 139n, entries: 3 });
});
