/**
 * Pure parts of payments: usage totals (bigint, grouped by stream and by pipeline/model,
 * top-ups excluded), money and time parsing for the API, and the JSON shapes (money as
 * integer strings).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeUsage } from '../../../src/payments/ledger-usage.ts';
import type { LedgerEntry } from '../../../src/payments/ledger-types.ts';
import { accountJson, entryJson, keyJson, parseCredits, parseRange } from '../../../src/payments/payments-routes.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

function entry(over: Partial<LedgerEntry>): LedgerEntry {
  return { id: 'x', accountID: 'a', kind: 'ai', amount: 0n, units: 0n, rule: '1/1', ref: '', createdAtMs: 0, ...over };
}

test('usage groups charges by stream and by pipeline and model, largest amount first, in exact bigint', () => {
  const big = 2n ** 60n;
  const totals = summarizeUsage([
    entry({ kind: 'transcode', manifestID: 'a', amount: 5n, units: big }),
    entry({ kind: 'transcode', manifestID: 'a', amount: 6n, units: big }),
    entry({ kind: 'transcode', manifestID: 'b', amount: 20n, units: 1n }),
    entry({ pipeline: 'llm', modelID: 'm1', amount: 1n, units: 10n }),
    entry({ pipeline: 'llm', modelID: 'm2', amount: 2n, units: 10n }),
    entry({ pipeline: 'llm', modelID: 'm2', amount: 2n, units: 10n }),
    entry({ pipeline: 'live-video-to-video', modelID: 'x', manifestID: 'live1', amount: 7n, units: 5n }),
    entry({ kind: 'topup', amount: 1000n }),
  ]);
  assert.deepEqual(totals.byStream, [
    { manifestID: 'b', units: 1n, amount: 20n, entries: 1 },
    { manifestID: 'a', units: 2n * big, amount: 11n, entries: 2 },
    { manifestID: 'live1', units: 5n, amount: 7n, entries: 1 },
  ]);
  assert.deepEqual(totals.byModel, [
    { pipeline: 'live-video-to-video', modelID: 'x', units: 5n, amount: 7n, entries: 1 },
    { pipeline: 'llm', modelID: 'm2', units: 20n, amount: 4n, entries: 2 },
    { pipeline: 'llm', modelID: 'm1', units: 10n, amount: 1n, entries: 1 },
  ]);
  assert.deepEqual(totals.total, { amount: 43n, entries: 7 }, 'top-ups are not usage');
  assert.deepEqual(summarizeUsage([]), { byStream: [], byModel: [], total: { amount: 0n, entries: 0 } });
});

test('credits from the API are refused above 2^53 − 1 with the field named', () => {
  assert.equal(parseCredits('9007199254740991', 'credits'), 9_007_199_254_740_991n);
  assert.throws(() => parseCredits('9007199254740992', 'credits'), (err: GatewayError) => err.code === 'INVALID_REQUEST' && /^credits: /.test(err.message));
});

test('a time range defaults each end, and refuses an inverted or pre-1970 range naming the field', () => {
  const defaults = { fromMs: 10, toMs: 20 };
  assert.deepEqual(parseRange(undefined, undefined, defaults), defaults);
  assert.deepEqual(parseRange('2026-01-01T00:00:00Z', undefined, { fromMs: 0, toMs: Date.parse('2027-01-01T00:00:00Z') }), { fromMs: Date.parse('2026-01-01T00:00:00Z'), toMs: Date.parse('2027-01-01T00:00:00Z') });
  assert.deepEqual(parseRange('2026-01-01T01:00:00+01:00', '2026-01-01T00:00:00.001Z', defaults), { fromMs: Date.parse('2026-01-01T00:00:00Z'), toMs: Date.parse('2026-01-01T00:00:00.001Z') });
  assert.throws(() => parseRange('2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z', defaults), /query\.to/);
  assert.throws(() => parseRange('1969-12-31T00:00:00Z', undefined, defaults), /query\.from/);
});

test('money and units go out as integer strings, dates as ISO 8601, optional fields only when present', () => {
  assert.deepEqual(accountJson({ id: 'a', name: 'A', balance: 2n ** 53n - 1n, createdAtMs: 0 }), { id: 'a', name: 'A', balance: '9007199254740991', createdAt: '1970-01-01T00:00:00.000Z' });
  assert.deepEqual(entryJson({ id: 'ai:1', accountID: 'a', kind: 'ai', amount: 100n, units: 2n ** 70n, rule: '1/1', ref: 'r', createdAtMs: 1000, requestedAmount: 150n, shortfall: 50n }), {
    id: 'ai:1', accountID: 'a', kind: 'ai', amount: '100', units: '1180591620717411303424', rule: '1/1', ref: 'r', createdAt: '1970-01-01T00:00:01.000Z',
    requestedAmount: '150', shortfall: '50',
  });
  assert.deepEqual(keyJson({ keyID: 'k', accountID: 'a', kind: 'stream', manifestID: 'm', hint: 'abcd', createdAtMs: 0, revoked: true, revokedAtMs: 1 }), {
    keyID: 'k', accountID: 'a', kind: 'stream', manifestID: 'm', hint: 'abcd', createdAt: '1970-01-01T00:00:00.000Z', revoked: true, revokedAt: '1970-01-01T00:00:00.001Z',
  });
});
