/**
 * The records of payments, one declaration each: ledger accounts, holds, entries and usage
 * (kept by payments/ledger-store.ts) and account keys (payments/account-store.ts). The
 * billing rules (billing.ts) and the payments API (payments-routes.ts) speak these types;
 * money and units are bigint credits and units (docs/wire-contract.md §10).
 */

/** Largest amount or balance in credits: 2^53 − 1, the largest integer Lua handles exactly. */
export const MAX_CREDITS = BigInt(Number.MAX_SAFE_INTEGER);

/** Digits of a ledger time: entries are ordered by their zero-padded epoch ms. */
export const LEDGER_TIME_DIGITS = 15;
/** Latest epoch ms the ledger stores and pages to (15 digits: past the year 33000). */
export const MAX_LEDGER_TIME_MS = 10 ** LEDGER_TIME_DIGITS - 1;

export type ChargeKind = 'transcode' | 'ai';
export type EntryKind = ChargeKind | 'topup';

export interface Account {
  readonly id: string;
  readonly name: string;
  /** Credits available (held amounts already deducted). */
  readonly balance: bigint;
  readonly createdAtMs: number;
}

/** What a charge was for; shown in usage by stream and by pipeline/model. */
export interface EntryMeta {
  readonly manifestID?: string;
  readonly seq?: number;
  readonly pipeline?: string;
  readonly modelID?: string;
}

export interface LedgerEntry extends EntryMeta {
  /** The work's identity (hold ID / entry ID), or `topup:<accountID>:<idempotencyKey>`. */
  readonly id: string;
  readonly accountID: string;
  readonly kind: EntryKind;
  /**
   * Credits that moved: debited for `transcode`/`ai`, credited for `topup`. Summing entries
   * reproduces the balance: Σ topups − Σ charges − live holds.
   */
  readonly amount: bigint;
  /** Units of work (docs/wire-contract.md §10); 0 for top-ups. */
  readonly units: bigint;
  /** Price rule `pricePerUnit/pixelsPerUnit` (money.ts `priceRule`); `topup` for top-ups. */
  readonly rule: string;
  /** Free-form reference: request ID, `manifestID/seq`, the top-up's idempotency key. */
  readonly ref: string;
  readonly createdAtMs: number;
  /**
   * Only on a capped settle: the charge computed from the units, when the balance could
   * not cover it; `amount` is then what was actually debited (the capped amount) and
   * `shortfall` = `requestedAmount − amount` was not collected.
   */
  readonly requestedAmount?: bigint;
  readonly shortfall?: bigint;
}

export interface ReserveRequest {
  /** The work's identity, e.g. `transcode:<manifestID>:<session>:<seq>` or `ai:<requestID>`; it becomes the entry ID. */
  holdID: string;
  accountID: string;
  /** Credits to set aside, 0 … 2^53 − 1. */
  amount: bigint;
  kind: ChargeKind;
  ref: string;
  /** After this many ms an unsettled hold is released by `expireHolds`. */
  ttlMs: number;
}

export type ReserveResult = { ok: true } | { ok: false; balance: bigint };

export interface SettleRequest {
  holdID: string;
  /** Units actually done (docs/wire-contract.md §10). */
  actualUnits: bigint;
  /** The actual charge, `chargeFor(actualUnits, price)`, 0 … 2^53 − 1. */
  amount: bigint;
  rule: string;
  kind: ChargeKind;
  ref: string;
  meta?: EntryMeta;
}

export type SettleResult =
  | { settled: true; entry: LedgerEntry; replayed: boolean }
  | { settled: false; reason: 'released' | 'expired' | 'unknown-hold' };

export type ReleaseResult =
  | { released: true; amount: bigint }
  | { released: false; reason: 'settled' | 'released' | 'expired' | 'unknown-hold' };

export interface ChargeRequest {
  /** The work's identity; a repeat with the same ID returns the first entry. */
  entryID: string;
  accountID: string;
  amount: bigint;
  units: bigint;
  rule: string;
  kind: ChargeKind;
  ref: string;
  meta?: EntryMeta;
}

/**
 * One charge of open-ended work that keeps a standing hold (a live video-to-video interval,
 * `RedisLedger.drawHold`).
 */
export interface DrawHoldRequest extends ChargeRequest {
  /** The charge's identity, e.g. `live:<requestID>:<interval>`; a repeat returns the first entry. */
  entryID: string;
  /** Credits owed, 0 … 2^53 − 1. */
  amount: bigint;
  /** The standing hold the charge draws on first (made with `reserve`). */
  holdID: string;
  /** What the hold is filled back up to after the charge, as far as the balance goes. */
  holdAmount: bigint;
  /** The hold expires this long after the charge unless another draw or a release comes first, ms. */
  holdTtlMs: number;
}

export interface DrawHoldResult {
  /** The entry written (or found): `amount` < `requestedAmount` (a `shortfall`) when hold and balance ran out. */
  entry: LedgerEntry;
  replayed: boolean;
}

export type ChargeResult = { ok: true; entry: LedgerEntry; replayed: boolean } | { ok: false; balance: bigint };

export interface TopUpResult {
  /** The balance after this call (the current balance when the key was used before). */
  balance: bigint;
  entry: LedgerEntry;
  /** The idempotency key was used before; nothing changed. */
  replayed: boolean;
}

/** Half-open time range `[fromMs, toMs)` in epoch ms. */
export interface TimeRange {
  fromMs: number;
  toMs: number;
}

export interface EntryPageQuery {
  /** Default 0. */
  fromMs?: number;
  /** Exclusive; default now + 1. */
  toMs?: number;
  /** 1 … 1000; default 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface EntryPage {
  /** Newest first. */
  entries: LedgerEntry[];
  /** Present when more entries follow in the range. */
  nextCursor?: string;
}

export interface StreamUsage { manifestID: string; units: bigint; amount: bigint; entries: number }
export interface ModelUsage { pipeline: string; modelID: string; units: bigint; amount: bigint; entries: number }

export interface UsageTotals {
  /** Charges with a manifest ID, per manifest ID, largest amount first. */
  byStream: StreamUsage[];
  /** Charges with a pipeline, per (pipeline, modelID), largest amount first. */
  byModel: ModelUsage[];
  /** Every charge (not top-ups). Units are not summed here: pixels, tokens and ms do not add. */
  total: { amount: bigint; entries: number };
}


/* Account keys. */

export type KeyKind = 'api' | 'stream';

export interface IssuedApiKey {
  /** The secret; shown once, never stored. */
  key: string;
  keyID: string;
  /** Last 4 characters of the key, to tell keys apart in listings. */
  hint: string;
  createdAtMs: number;
}

export interface IssuedStreamKey {
  /** The secret; shown once, never stored. */
  streamKey: string;
  keyID: string;
  manifestID: string;
  hint: string;
  createdAtMs: number;
}

/** A key as listed: never the secret. */
export interface KeyInfo {
  keyID: string;
  accountID: string;
  kind: KeyKind;
  /** API keys. */
  label?: string;
  /** Stream keys. */
  manifestID?: string;
  profiles?: unknown[];
  hint: string;
  createdAtMs: number;
  revoked: boolean;
  revokedAtMs?: number;
}

/** What a stream key grants. */
export interface StreamKeyGrant {
  keyID: string;
  accountID: string;
  manifestID: string;
  /** Per-stream ladder (preset names or Livepeer JSON profiles); absent = the default ladder. */
  profiles?: unknown[];
}
