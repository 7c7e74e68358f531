/**
 * Interval billing of live video-to-video sessions (docs/wire-contract.md §10; Livepeer
 * bills live AI per wall-clock second, in 1280 × 720 × 30 units per second, every 5 s):
 *
 * - `open`: a hold of `holdSec` seconds at the session's price (hold ID `live:<requestID>`),
 *   402 INSUFFICIENT_BALANCE when the account cannot cover it.
 * - `charge`: one ledger entry per interval, entry ID `live:<requestID>:<interval>` (a
 *   repeat charges nothing more), units = seconds × `unitsPerSecond`, priced by the AI price
 *   of (`live-video-to-video`, model), kind `ai` with the pipeline and model, so usage shows
 *   it by model. The charge is taken from the hold and the balance together; the hold is then
 *   filled back up to `holdSec` seconds from the balance (RedisLedger `drawHold`), so a
 *   session keeps its reserve while the account can pay. When hold and balance together do
 *   not cover an interval, what is left is taken (the entry records the shortfall, the
 *   balance ends at 0, never below) and the answer is `{ok: false, reason: 'insufficient
 *   balance'}`: the session stops.
 * - `close`: the rest of the hold goes back to the balance (idempotent).
 *
 * A session opened without an account is not metered: its charges are free and write no entry.
 * Sessions are remembered in this process between `open` and `close` (the gateway that runs a
 * session bills it); the hold in Redis expires `holdTtlMs` after the last charge, so a
 * gateway that dies returns it through the ledger's expiry sweep.
 */
import { GatewayError } from '../errors/gateway-error.ts';
import { chargeFor, priceRule, type Price } from '../domain/money.ts';
import type { Logger } from '../log/logger.ts';
import type { ChargeKind, DrawHoldRequest, DrawHoldResult, ReserveRequest, ReserveResult } from './ledger-types.ts';

/** What live billing needs from the ledger (implemented by payments/ledger-store.ts `RedisLedger`). */
export interface LiveBillingLedger {
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  drawHold(request: DrawHoldRequest): Promise<DrawHoldResult>;
  release(holdID: string): Promise<unknown>;
}

/** Livepeer's live video-to-video units per second of wall time: 1280 × 720 × 30 = 27 648 000. */
export const LIVE_UNITS_PER_SECOND_DEFAULT = 1280 * 720 * 30;
/** Livepeer's initial hold of a live session, seconds. */
export const LIVE_HOLD_SEC_DEFAULT = 60;

export interface LiveBillingOptions {
  ledger: LiveBillingLedger;
  /** The price of (pipeline, model); Billing `aiPrice`. */
  price: (pipeline: string, modelID: string) => Price;
  /** Units per second of wall time; default {@link LIVE_UNITS_PER_SECOND_DEFAULT}. */
  unitsPerSecond?: number;
  /** Seconds of the hold kept while a session runs; default {@link LIVE_HOLD_SEC_DEFAULT}. */
  holdSec?: number;
  /** The hold expires this long after open or the last charge, ms; default 2 × holdSec. */
  holdTtlMs?: number;
  logger: Logger;
  /** Called for every new (not replayed) charge, for metrics. */
  onCharged?: (kind: ChargeKind, credits: bigint) => void;
}

interface MeteredSession {
  readonly accountID: string;
  readonly pipeline: string;
  readonly modelID: string;
  readonly price: Price;
  readonly holdAmount: bigint;
}

export class LiveBilling {
  readonly #o: LiveBillingOptions;
  readonly #unitsPerSecond: bigint;
  readonly #holdSec: number;
  readonly #holdTtlMs: number;
  /** Open sessions: the metered ones, and `null` for those no account pays. */
  readonly #sessions = new Map<string, MeteredSession | null>();

  constructor(options: LiveBillingOptions) {
    this.#o = options;
    const unitsPerSecond = options.unitsPerSecond ?? LIVE_UNITS_PER_SECOND_DEFAULT;
    if (!Number.isSafeInteger(unitsPerSecond) || unitsPerSecond < 0) throw new RangeError('unitsPerSecond must be a non-negative integer');
    this.#unitsPerSecond = BigInt(unitsPerSecond);
    this.#holdSec = options.holdSec ?? LIVE_HOLD_SEC_DEFAULT;
    if (!Number.isSafeInteger(this.#holdSec) || this.#holdSec < 1) throw new RangeError('holdSec must be a positive integer');
    this.#holdTtlMs = options.holdTtlMs ?? 2 * this.#holdSec * 1000;
  }

  /** Units of `seconds` of wall time (ms precision). */
  units(seconds: number): bigint {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError('seconds must be a finite number ≥ 0');
    return (BigInt(Math.round(seconds * 1000)) * this.#unitsPerSecond) / 1000n;
  }

  /**
   * Holds `holdSec` seconds at the session's price. Without an account the session is not
   * metered. Opening an open session again changes nothing.
   * @throws GatewayError INSUFFICIENT_BALANCE (402) naming the amount and the balance;
   *   NOT_FOUND when the account does not exist.
   */
  async open(s: { requestID: string; accountID: string | undefined; pipeline: string; modelID: string }): Promise<void> {
    if (this.#sessions.has(s.requestID)) return;
    if (s.accountID === undefined) {
      this.#sessions.set(s.requestID, null);
      return;
    }
    const price = this.#o.price(s.pipeline, s.modelID);
    const holdAmount = chargeFor(this.units(this.#holdSec), price);
    const held = await this.#o.ledger.reserve({
      holdID: liveHoldID(s.requestID), accountID: s.accountID, amount: holdAmount, kind: 'ai', ref: s.requestID, ttlMs: this.#holdTtlMs,
    });
    if (!held.ok) {
      throw new GatewayError('INSUFFICIENT_BALANCE',
        `insufficient balance: a live session holds ${holdAmount} credits (${this.#holdSec} s) and the account has ${held.balance}`);
    }
    this.#sessions.set(s.requestID, { accountID: s.accountID, pipeline: s.pipeline, modelID: s.modelID, price, holdAmount });
  }

  /**
   * Charges `seconds` of wall time as interval `interval` of the session, once per
   * (requestID, interval): a repeat returns the first answer and charges nothing more.
   * @returns `{ok: false, reason: 'insufficient balance'}` when hold and balance did not
   *   cover the interval (what was left was taken; the balance is 0): stop the session.
   * @throws Error for a session that is not open here (call `charge` before `close`).
   */
  async charge(s: { requestID: string; interval: number; seconds: number }): Promise<{ ok: true } | { ok: false; reason: 'insufficient balance' }> {
    const session = this.#sessions.get(s.requestID);
    if (session === undefined) throw new Error(`live session ${s.requestID} is not open for billing`);
    if (session === null) return { ok: true };
    if (!Number.isSafeInteger(s.interval) || s.interval < 0) throw new RangeError('interval must be a non-negative integer');
    const units = this.units(s.seconds);
    const drawn = await this.#o.ledger.drawHold({
      entryID: `${liveHoldID(s.requestID)}:${s.interval}`, holdID: liveHoldID(s.requestID), accountID: session.accountID,
      amount: chargeFor(units, session.price), units, rule: priceRule(session.price), kind: 'ai', ref: s.requestID,
      holdAmount: session.holdAmount, holdTtlMs: this.#holdTtlMs, meta: { pipeline: session.pipeline, modelID: session.modelID },
    });
    if (!drawn.replayed) this.#o.onCharged?.('ai', drawn.entry.amount);
    if (drawn.entry.shortfall !== undefined && drawn.entry.shortfall > 0n) {
      this.#o.logger.info({ requestID: s.requestID, interval: s.interval, shortfall: drawn.entry.shortfall.toString() }, 'live session out of credits');
      return { ok: false, reason: 'insufficient balance' };
    }
    return { ok: true };
  }

  /** Gives back what is left of the session's hold and forgets the session. Idempotent. */
  async close(requestID: string): Promise<void> {
    const session = this.#sessions.get(requestID);
    if (session === undefined) return;
    if (session !== null) await this.#o.ledger.release(liveHoldID(requestID));
    this.#sessions.delete(requestID);
  }
}

/** The hold of a live session; its interval entries are `<hold ID>:<interval>`. */
export function liveHoldID(requestID: string): string {
  return `live:${requestID}`;
}
