/**
 * Billing: prices work, reserves credits before it starts, and charges what was actually done
 * afterwards, each as an idempotent ledger entry keyed by the work's identity
 * (docs/wire-contract.md §10):
 *
 * - transcoding: before a segment is queued, an estimate is held (Σ fitted width × height ×
 *   fps × seconds × 1.02, Livepeer's estimate); after the transcoder finishes, the pixels
 *   actually encoded (Σ width × height × frames counted by ffprobe) are charged and the rest
 *   of the hold returned. Hold ID `transcode:<manifestID>:<session>:<seq>`.
 * - AI: before the worker is called, the request's units at its price are held (402 when the
 *   balance is short); after success the actual units are charged; a failure releases it.
 *   Hold ID `ai:<requestID>`.
 *
 * Redelivered jobs and duplicate results settle the same hold again, which changes nothing.
 */
import { GatewayError } from '../errors/gateway-error.ts';
import { chargeFor, priceRule, type Price } from '../domain/money.ts';
import type { Logger } from '../log/logger.ts';
import type { Account, ChargeKind, ReserveRequest, ReserveResult, SettleRequest, SettleResult } from './ledger-types.ts';

/**
 * The account a loopback gateway creates for itself (`payments.localAccountCredits`); the
 * payments API cannot create or name it.
 */
export const LOCAL_ACCOUNT_ID = 'local';

/**
 * The account charged for a stream whose grant names none (a configured stream key without
 * `accountID`, an anonymous name, an auth-webhook grant): the `local` account on a loopback
 * bind, where the gateway creates it; undefined (the stream is not metered) on any other
 * bind, where no `local` account exists. Name an account per key to meter such streams.
 */
export function unnamedStreamAccount(loopbackOnly: boolean): string | undefined {
  return loopbackOnly ? LOCAL_ACCOUNT_ID : undefined;
}

/** What billing needs from the ledger (implemented by payments/ledger-store.ts `RedisLedger`). */
export interface BillingLedger {
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  settle(request: SettleRequest): Promise<SettleResult>;
  release(holdID: string): Promise<unknown>;
  getAccount(id: string): Promise<Pick<Account, 'balance'> | undefined>;
}

export interface AiPriceRule {
  readonly pipeline: string;
  /** `*` matches any model. */
  readonly model_id: string;
  readonly pricePerUnit: number;
  readonly pixelsPerUnit: number;
}

export interface BillingOptions {
  ledger: BillingLedger;
  transcodePrice: Price;
  /** Most specific match wins: (pipeline, model) > (pipeline, *) > (*, model) > (*, *). */
  aiPrices: readonly AiPriceRule[];
  logger: Logger;
  /** Called for every new (not replayed) charge, for metrics. */
  onCharged?: (kind: ChargeKind, credits: bigint) => void;
  /** How long an unsettled segment hold lives before the sweep returns it, ms; default 10 min. */
  segmentHoldTtlMs?: number;
  /** How long an unsettled AI hold lives, ms; default 10 min. */
  aiHoldTtlMs?: number;
}

/** Livepeer's transcoding estimate pads frames by 2 %. */
const ESTIMATE_PADDING_PERCENT = 102n;

export class Billing {
  readonly #o: BillingOptions;

  constructor(options: BillingOptions) {
    this.#o = options;
  }

  /** The price of (pipeline, model_id); free when no rule matches. */
  aiPrice(pipeline: string, modelID: string): Price {
    const rank = (r: AiPriceRule): number => (r.pipeline === pipeline ? 2 : r.pipeline === '*' ? 0 : -10) + (r.model_id === modelID ? 1 : r.model_id === '*' ? 0 : -10);
    const best = [...this.#o.aiPrices].filter((r) => rank(r) >= 0).sort((a, b) => rank(b) - rank(a))[0];
    return best ? { pricePerUnit: best.pricePerUnit, pixelsPerUnit: best.pixelsPerUnit } : { pricePerUnit: 0, pixelsPerUnit: 1 };
  }

  /**
   * Whether the account may start a stream: `ok` (it exists and has credits left),
   * `no-account` (it does not exist: never created, deleted, or lost with Redis's data),
   * or `no-credits`.
   */
  async standing(accountID: string): Promise<'ok' | 'no-account' | 'no-credits'> {
    const account = await this.#o.ledger.getAccount(accountID);
    if (account === undefined) return 'no-account';
    return account.balance > 0n ? 'ok' : 'no-credits';
  }

  /**
   * Holds an AI request's estimate.
   * @throws GatewayError INSUFFICIENT_BALANCE (402) naming the shortfall; UNAUTHORIZED when the account is gone.
   */
  async reserveAi(r: { requestID: string; accountID: string; pipeline: string; modelID: string; units: bigint }): Promise<void> {
    const amount = chargeFor(r.units, this.aiPrice(r.pipeline, r.modelID));
    const held = await this.#o.ledger.reserve({ holdID: `ai:${r.requestID}`, accountID: r.accountID, amount, kind: 'ai', ref: r.requestID, ttlMs: this.#o.aiHoldTtlMs ?? 600_000 });
    if (!held.ok) {
      throw new GatewayError('INSUFFICIENT_BALANCE', `insufficient balance: this request costs up to ${amount} credits and the account has ${held.balance}`);
    }
  }

  /** Charges the AI request's actual units (idempotent). */
  async settleAi(r: { requestID: string; pipeline: string; modelID: string; units: bigint }): Promise<void> {
    const price = this.aiPrice(r.pipeline, r.modelID);
    const settled = await this.#o.ledger.settle({
      holdID: `ai:${r.requestID}`, actualUnits: r.units, amount: chargeFor(r.units, price), rule: priceRule(price), kind: 'ai', ref: r.requestID,
      meta: { pipeline: r.pipeline, modelID: r.modelID },
    });
    this.#charged('ai', settled);
  }

  /** Returns an AI request's hold: failed work is not charged (idempotent). */
  async releaseAi(requestID: string): Promise<void> {
    await this.#o.ledger.release(`ai:${requestID}`);
  }

  /**
   * Holds the estimate of one segment's transcode.
   * @param renditions the fitted ladder: output size and frame rate of each rendition
   * @returns false when the balance cannot cover it (the caller applies the stream policy).
   */
  async reserveSegment(r: { accountID: string; manifestID: string; session: string; seq: number; durationMs: number;
    renditions: readonly { width: number; height: number; fps: number }[] }): Promise<boolean> {
    const pixelsPerMs = r.renditions.reduce((sum, x) => sum + BigInt(x.width * x.height) * BigInt(Math.ceil(x.fps)), 0n);
    const estimate = (pixelsPerMs * BigInt(Math.max(0, Math.ceil(r.durationMs))) * ESTIMATE_PADDING_PERCENT) / 100_000n;
    const amount = chargeFor(estimate, this.#o.transcodePrice);
    const held = await this.#o.ledger.reserve({
      holdID: segmentHoldID(r.manifestID, r.session, r.seq), accountID: r.accountID, amount, kind: 'transcode',
      ref: `${r.manifestID}/${r.seq}`, ttlMs: this.#o.segmentHoldTtlMs ?? 600_000,
    });
    return held.ok;
  }

  /** Charges the pixels actually encoded for one segment (idempotent). */
  async settleSegment(r: { manifestID: string; session: string; seq: number; pixels: bigint }): Promise<void> {
    const settled = await this.#o.ledger.settle({
      holdID: segmentHoldID(r.manifestID, r.session, r.seq), actualUnits: r.pixels, amount: chargeFor(r.pixels, this.#o.transcodePrice),
      rule: priceRule(this.#o.transcodePrice), kind: 'transcode', ref: `${r.manifestID}/${r.seq}`, meta: { manifestID: r.manifestID, seq: r.seq },
    });
    if (!settled.settled) this.#o.logger.warn({ manifestID: r.manifestID, seq: r.seq, reason: settled.reason }, 'segment charge not settled');
    this.#charged('transcode', settled);
  }

  /** Returns a segment's hold (its transcode failed for good). */
  async releaseSegment(r: { manifestID: string; session: string; seq: number }): Promise<void> {
    await this.#o.ledger.release(segmentHoldID(r.manifestID, r.session, r.seq));
  }

  #charged(kind: ChargeKind, result: SettleResult): void {
    if (result.settled && !result.replayed) this.#o.onCharged?.(kind, result.entry.amount);
  }
}

export function segmentHoldID(manifestID: string, session: string, seq: number): string {
  return `transcode:${manifestID}:${session}:${seq}`;
}
