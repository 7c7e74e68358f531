/**
 * The ledger families: entries written and credits moved, by kind. Recorded by payments/
 * (Billing's `onCharged` port, wired by app.ts) for every new charge, never for an
 * idempotent replay or a refused (402) charge.
 */
import { Counter } from 'prom-client';
import { LEDGER_KINDS, enumLabel, toNonNegativeBigInt } from './metric-labels.ts';
import { ExactTotals, metricName, type MetricsRegistry } from './metrics-registry.ts';

/** `mediagate_ledger_entries_total` and `mediagate_ledger_credits_total`. Recording never throws. */
export class LedgerMetrics {
  readonly #credits = new ExactTotals();
  readonly #entries: Counter<string>;

  constructor(metrics: MetricsRegistry) {
    const registers = [metrics.registry];
    const credits = this.#credits;
    this.#entries = new Counter({
      name: metricName('ledger_entries_total'), registers, labelNames: ['kind'],
      help: 'Ledger entries written (idempotent replays excluded), by kind (transcode|ai|topup).',
    });
    new Counter({
      name: metricName('ledger_credits_total'), registers, labelNames: ['kind'],
      help: 'Credits moved by ledger entries, by kind: charged for transcode|ai, added by topup.',
      collect() {
        credits.expose(this);
      },
    });
  }

  /**
   * A new ledger entry was committed. `kind` is one of `transcode`, `ai`, `topup` (else
   * `other`); `credits` is its amount, a non-negative integer (bigint, or a safe-integer
   * number); anything else is dropped. Totals are summed exactly as bigint and exposed as
   * float64 at scrape time.
   */
  recordLedgerEntry(kind: string, credits: bigint | number): void {
    const label = enumLabel(LEDGER_KINDS, kind);
    this.#entries.inc({ kind: label });
    const amount = toNonNegativeBigInt(credits);
    if (amount !== undefined) this.#credits.add({ kind: label }, amount);
  }
}
