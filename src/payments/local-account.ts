/**
 * The loopback `local` account (docs/operations.md, Accounts): on a gateway bound to loopback
 * with payments on, streams and AI calls that name no account are charged to `local`, which
 * the gateway creates with `payments.localAccountCredits` when missing. It is state that must
 * exist while the gateway runs: a Redis restarted without persistence loses it, and
 * publishes are then refused, so `/healthz` reports it.
 */
import type { HealthCheck } from '../http/health.ts';
import type { Account } from './ledger-types.ts';
import { LOCAL_ACCOUNT_ID } from './billing.ts';

/** What the local account needs of the ledger (payments/ledger-store.ts `RedisLedger`). */
export interface LocalAccountLedger {
  getAccount(id: string): Promise<Pick<Account, 'id'> | undefined>;
  createAccount(input: { id?: string; name: string; credits?: bigint }): Promise<unknown>;
}

export class LocalAccount {
  readonly #ledger: LocalAccountLedger;
  readonly #credits: bigint;

  /** @param credits Opening balance when created (`payments.localAccountCredits`), > 0. */
  constructor(ledger: LocalAccountLedger, credits: bigint) {
    this.#ledger = ledger;
    this.#credits = credits;
  }

  /**
   * Creates the account with its opening balance unless it exists.
   * @returns whether it was created now
   * @throws the ledger's error when Redis cannot be reached
   */
  async ensure(): Promise<boolean> {
    if (await this.#ledger.getAccount(LOCAL_ACCOUNT_ID)) return false;
    await this.#ledger.createAccount({ id: LOCAL_ACCOUNT_ID, name: LOCAL_ACCOUNT_ID, credits: this.#credits });
    return true;
  }

  /**
   * The `/healthz` check: not ok when the account is gone, saying why and what to do. A
   * failed lookup counts as present (the Redis check reports an unreachable Redis).
   */
  async check(): Promise<HealthCheck> {
    const present = await this.#ledger.getAccount(LOCAL_ACCOUNT_ID).then((a) => a !== undefined, () => true);
    return present ? { ok: true } : {
      ok: false,
      detail: 'account local is missing (Redis lost its data: restarted without persistence?); publishes on this gateway are refused. '
        + 'Restart the gateway to re-create it, and run Redis with appendonly yes so its state survives a restart',
    };
  }
}

/** Expires abandoned holds (a crashed transcoder's, a dropped AI request's) on a timer. */
export class HoldExpirySweep {
  readonly #timer: NodeJS.Timeout;

  /**
   * Starts sweeping every `intervalMs` (default 5000); failures are passed to `onError` and
   * the next sweep runs as planned.
   */
  constructor(ledger: { expireHolds(): Promise<unknown> }, onError: (err: Error) => void, intervalMs = 5000) {
    this.#timer = setInterval(() => { ledger.expireHolds().catch(onError); }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer; idempotent. */
  close(): void {
    clearInterval(this.#timer);
  }
}
