/**
 * Usage totals of the ledger (the payments API's usage report), pure: what
 * `RedisLedger.usage` (ledger-store.ts) sums from the entries of a time range.
 */
import type { LedgerEntry, ModelUsage, StreamUsage, UsageTotals } from './ledger-types.ts';

/**
 * Totals of charges (top-ups excluded) by stream and by (pipeline, modelID), in bigint.
 * Pure; `RedisLedger.usage` feeds it the entries of a time range.
 */
export function summarizeUsage(entries: Iterable<LedgerEntry>): UsageTotals {
  const streams = new Map<string, StreamUsage>();
  const models = new Map<string, ModelUsage>();
  let amount = 0n;
  let count = 0;
  for (const e of entries) {
    if (e.kind === 'topup') continue;
    amount += e.amount;
    count++;
    if (e.manifestID !== undefined) {
      const s = streams.get(e.manifestID) ?? { manifestID: e.manifestID, units: 0n, amount: 0n, entries: 0 };
      s.units += e.units;
      s.amount += e.amount;
      s.entries++;
      streams.set(e.manifestID, s);
    }
    if (e.pipeline !== undefined) {
      const modelID = e.modelID ?? '';
      const key = `${e.pipeline}\u0000${modelID}`;
      const m = models.get(key) ?? { pipeline: e.pipeline, modelID, units: 0n, amount: 0n, entries: 0 };
      m.units += e.units;
      m.amount += e.amount;
      m.entries++;
      models.set(key, m);
    }
  }
  const byAmount = (a: { amount: bigint }, b: { amount: bigint }): number => (a.amount === b.amount ? 0 : a.amount > b.amount ? -1 : 1);
  return {
    byStream: [...streams.values()].sort((a, b) => byAmount(a, b) || a.manifestID.localeCompare(b.manifestID)),
    byModel: [...models.values()].sort((a, b) => byAmount(a, b) || a.pipeline.localeCompare(b.pipeline) || a.modelID.localeCompare(b.modelID)),
    total: { amount, entries: count },
  };
}
