/**
 * The ledger in Redis: accounts with an integer credit balance, holds (reservations) that
 * keep concurrent work from overdrawing a balance, and one immutable ledger entry per
 * charge, keyed by the work's identity (docs/wire-contract.md §10), so a retry or a duplicate
 * event cannot charge twice and no race can take a balance below zero.
 *
 * Keys (deployment prefix `p`):
 * - `p:pay:acct:<accountID>`    HASH  id, name, balance (integer string), createdAtMs
 * - `p:pay:accts`               ZSET  account IDs scored by createdAtMs
 * - `p:pay:hold:<holdID>`       HASH  state (held|released|expired), accountID, amount, kind, ref,
 *                                     createdAtMs, expiresAtMs, resolvedAtMs. Deleted when settled
 *                                     (the entry then answers repeats); kept `resolvedHoldRetainMs`
 *                                     after a release or expiry so a late settle is refused.
 * - `p:pay:holds`               ZSET  live hold IDs scored by expiresAtMs (the expiry sweep's index)
 * - `p:pay:entry:<entryID>`     HASH  the ledger entry (money and units as integer strings)
 * - `p:pay:ledger:<accountID>`  ZSET  score 0, member `<createdAtMs, 15 digits>:<entryID>`: the
 *                                     lexicographic order is time order, so ZRANGE BYLEX pages a time
 *                                     range exactly, ties included, with the member as the cursor.
 *
 * Every balance change is one Lua script (one file each in ./lua/, with its KEYS, ARGV and reply
 * in its header; run by SHA through ioredis `defineCommand`), so it is atomic across gateways
 * and transcoders. A settle or charge answers with the entry it wrote (or found), so work that
 * is held and settled costs two round trips in all: one before it runs, one after.
 * Hand-written Lua rather than a ledger library or WATCH/MULTI transactions because every
 * publish, segment and AI call goes through it: one round trip per change, no retry loop
 * under contention, and no library keeps holds and idempotent entries in one Redis.
 * Keys that depend on a hold's account are built inside the scripts from the prefix (as
 * BullMQ does), so this needs a single Redis, not Redis Cluster.
 *
 * Range of money: Lua numbers are IEEE doubles, exact for integers up to 2^53 − 1
 * (9 007 199 254 740 991). Every amount is checked against that bound before a script runs,
 * a top-up that would lift a balance past it is refused, and the scripts never hand a Lua
 * number to Redis unformatted (`%.0f`), so balances and amounts are exact. Units are only
 * stored, never computed in Lua, and may be any non-negative bigint.
 *
 * The argument checks and hash parsing are in ledger-codec.ts, the usage totals in
 * ledger-usage.ts, the record types in ledger-types.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from '../redis/connections.ts';
import { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import {
  LEDGER_TIME_DIGITS, MAX_CREDITS,
  type Account, type ChargeRequest, type ChargeResult, type DrawHoldRequest, type DrawHoldResult, type EntryPage, type EntryPageQuery, type LedgerEntry, type ReleaseResult,
  type ReserveRequest, type ReserveResult, type SettleRequest, type SettleResult, type TimeRange, type TopUpResult, type UsageTotals,
} from './ledger-types.ts';
import {
  checkAccountID, checkCredits, checkTime, checkUnits, checkWorkID, decodeCursor, encodeCursor, ID_PATTERN, metaArgs, padTime,
  parseAccount, parseEntry, parseEntryFields,
} from './ledger-codec.ts';
import { summarizeUsage } from './ledger-usage.ts';

export interface RedisLedgerOptions {
  redis: Redis;
  /** Deployment key prefix (`redis.keyPrefix`); keys live under `<prefix>:pay:`. */
  prefix: string;
  /** Clock in epoch ms; default `Date.now`. */
  nowMs?: () => number;
  /** How long a released or expired hold is remembered (a late settle is refused meanwhile); default 7 days. */
  resolvedHoldRetainMs?: number;
}

/**
 * The ledger's Lua scripts, one file each in ./lua/ (KEYS, ARGV and reply documented in each
 * file's header), run through ioredis `defineCommand` (src/redis/scripts.ts). The local
 * functions several of them share (`int`, `releaseHold`) are in ./lua/ledger-functions.lua,
 * put in front of the scripts that use them.
 */
const FUNCTIONS = [new URL('./lua/ledger-functions.lua', import.meta.url)];
const LEDGER_SCRIPTS = {
  createAccount: luaScript('mgLedgerCreateAccount', 4, new URL('./lua/create-account.lua', import.meta.url)),
  topUp: luaScript('mgLedgerTopUp', 3, new URL('./lua/top-up.lua', import.meta.url)),
  reserve: luaScript('mgLedgerReserve', 2, new URL('./lua/reserve.lua', import.meta.url), FUNCTIONS),
  settle: luaScript('mgLedgerSettle', 3, new URL('./lua/settle.lua', import.meta.url), FUNCTIONS),
  release: luaScript('mgLedgerRelease', 3, new URL('./lua/release.lua', import.meta.url), FUNCTIONS),
  expireHolds: luaScript('mgLedgerExpireHolds', 1, new URL('./lua/expire-holds.lua', import.meta.url), FUNCTIONS),
  charge: luaScript('mgLedgerCharge', 2, new URL('./lua/charge.lua', import.meta.url), FUNCTIONS),
  drawHold: luaScript('mgLedgerDrawHold', 3, new URL('./lua/draw-hold.lua', import.meta.url), FUNCTIONS),
};

export class RedisLedger {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts<keyof typeof LEDGER_SCRIPTS>;
  readonly #p: string;
  readonly #nowMs: () => number;
  readonly #retainMs: number;

  constructor(options: RedisLedgerOptions) {
    this.#redis = options.redis;
    this.#scripts = new RedisScripts(options.redis, LEDGER_SCRIPTS);
    this.#keys = new RedisKeys(options.prefix).scope('pay');
    // The scripts build the keys that depend on a hold's account from this prefix.
    this.#p = this.#keys.prefix;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#retainMs = options.resolvedHoldRetainMs ?? 7 * 24 * 3600_000;
  }

  #acct(id: string): string { return this.#keys.key('acct', id); }
  #hold(id: string): string { return this.#keys.key('hold', id); }
  #entry(id: string): string { return this.#keys.key('entry', id); }
  #ledger(accountID: string): string { return this.#keys.key('ledger', accountID); }
  get #holds(): string { return this.#keys.key('holds'); }
  get #accts(): string { return this.#keys.key('accts'); }

  #now(): number {
    return checkTime(this.#nowMs(), 'clock');
  }

  /**
   * Creates an account with `credits` (recorded as a `topup` entry `topup:<id>:initial`).
   * With an `id` that exists already, returns that account unchanged (so startup code can
   * create `local` idempotently). Without one, a random `acct_…` ID is chosen.
   * @throws GatewayError INVALID_REQUEST for an ID outside `[A-Za-z0-9_-]{1,64}`;
   *   RangeError for credits outside 0 … 2^53 − 1.
   */
  async createAccount(input: { id?: string; name: string; credits?: bigint }): Promise<Account> {
    const id = checkAccountID(input.id ?? `acct_${randomBytes(12).toString('base64url')}`);
    const credits = checkCredits(input.credits ?? 0n, 'credits');
    const now = this.#now();
    const entryID = `topup:${id}:initial`;
    await this.#scripts.run('createAccount', [this.#acct(id), this.#accts, this.#entry(entryID), this.#ledger(id)],
      [id, input.name, String(now), credits, entryID, `${padTime(now)}:${entryID}`]);
    return (await this.getAccount(id))!;
  }

  async getAccount(id: string): Promise<Account | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    return parseAccount(await this.#redis.hgetall(this.#acct(id)));
  }

  /** Every account, oldest first (one HGETALL per account, pipelined). */
  async listAccounts(): Promise<Account[]> {
    const ids = await this.#redis.zrange(this.#accts, 0, '-1');
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.#acct(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([, h]) => parseAccount(h as Record<string, string>)).filter((a): a is Account => a !== undefined);
  }

  /**
   * Adds credits, idempotently per (account, `idempotencyKey`): the entry ID is
   * `topup:<accountID>:<idempotencyKey>`; a repeat changes nothing and returns the first entry.
   * @throws GatewayError NOT_FOUND for an unknown account; INVALID_REQUEST when the key was
   *   used with another amount, or the balance would pass 2^53 − 1; RangeError for credits
   *   outside 1 … 2^53 − 1.
   */
  async topUp(accountID: string, credits: bigint, idempotencyKey: string): Promise<TopUpResult> {
    checkAccountID(accountID);
    const amount = checkCredits(credits, 'credits', true);
    if (!/^[\x21-\x7e]{1,128}$/.test(idempotencyKey)) throw new GatewayError('INVALID_REQUEST', 'idempotencyKey must be 1-128 printable ASCII characters without spaces');
    const now = this.#now();
    const entryID = `topup:${accountID}:${idempotencyKey}`;
    const [status, balance] = await this.#scripts.run('topUp', [this.#acct(accountID), this.#entry(entryID), this.#ledger(accountID)],
      [entryID, accountID, amount, String(now), `${padTime(now)}:${entryID}`, idempotencyKey, MAX_CREDITS.toString()]) as [string, string];
    if (status === 'no-account') throw new GatewayError('NOT_FOUND', `account ${accountID} not found`);
    if (status === 'overflow') throw new GatewayError('INVALID_REQUEST', `credits: the balance would exceed ${MAX_CREDITS} credits`);
    const entry = (await this.getEntry(entryID))!;
    if (status === 'replayed' && entry.amount !== credits) {
      throw new GatewayError('INVALID_REQUEST', `idempotencyKey: already used for a top-up of ${entry.amount} credits`);
    }
    return { balance: BigInt(balance), entry, replayed: status === 'replayed' };
  }

  /**
   * Sets `amount` aside from the balance for work about to run, atomically: only when the
   * balance covers it, so any number of concurrent reservations cannot overdraw.
   *
   * Idempotent while the work is open: a repeat of a live hold (same `holdID`) or of a
   * settled one returns `{ok: true}` and takes nothing more. A hold that was released or
   * expired (that attempt failed, nothing was charged), or a refused reservation, leaves
   * nothing behind, so a new attempt of the same work (a BullMQ retry keeps its identity)
   * reserves afresh.
   * @returns `{ok: false, balance}` when the balance is short (nothing held).
   * @throws GatewayError NOT_FOUND for an unknown account; INVALID_REQUEST when the hold
   *   is live for another account; RangeError for an amount outside 0 … 2^53 − 1.
   */
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const holdID = checkWorkID(request.holdID, 'holdID');
    checkAccountID(request.accountID);
    const amount = checkCredits(request.amount, 'amount');
    if (!Number.isSafeInteger(request.ttlMs) || request.ttlMs < 1) throw new RangeError('ttlMs must be a positive integer');
    const now = this.#now();
    const [status, balance] = await this.#scripts.run('reserve', [this.#hold(holdID), this.#holds],
      [this.#p, holdID, request.accountID, amount, request.kind, request.ref, String(now), String(now + request.ttlMs)]) as [string, string];
    if (status === 'ok') return { ok: true };
    if (status === 'insufficient') return { ok: false, balance: BigInt(balance) };
    if (status === 'no-account') throw new GatewayError('NOT_FOUND', `account ${request.accountID} not found`);
    throw new GatewayError('INVALID_REQUEST', `hold ${holdID} is held for another account`);
  }

  /**
   * Turns a live hold into the ledger entry (entry ID = hold ID) for the actual charge:
   * refunds `hold − amount`; when `amount` exceeds the hold, debits the extra only as far
   * as the balance goes (never below zero) and records `requestedAmount` and `shortfall`.
   * Idempotent: a second settle returns the same entry (`replayed: true`) and changes nothing.
   * @returns `{settled: false}` for a hold that was released, expired, or never existed;
   *   nothing is charged then.
   * @throws RangeError for an amount outside 0 … 2^53 − 1 or negative units.
   */
  async settle(request: SettleRequest): Promise<SettleResult> {
    const holdID = checkWorkID(request.holdID, 'holdID');
    const amount = checkCredits(request.amount, 'amount');
    const units = checkUnits(request.actualUnits);
    const meta = metaArgs(request.meta);
    const now = this.#now();
    const [status, fields] = await this.#scripts.run('settle', [this.#hold(holdID), this.#entry(holdID), this.#holds],
      [this.#p, holdID, amount, units, request.rule, request.kind, request.ref, String(now), `${padTime(now)}:${holdID}`, ...meta]) as [string, string[]?];
    if (status === 'settled' || status === 'replayed') {
      return { settled: true, entry: parseEntryFields(fields!)!, replayed: status === 'replayed' };
    }
    return { settled: false, reason: status as 'released' | 'expired' | 'unknown-hold' };
  }

  /**
   * Gives a live hold back to the balance in full (failed work is not charged). Idempotent;
   * a settled hold is not touched (`reason: 'settled'`), and a released one cannot be settled.
   */
  async release(holdID: string): Promise<ReleaseResult> {
    checkWorkID(holdID, 'holdID');
    const [status, amount] = await this.#scripts.run('release', [this.#hold(holdID), this.#entry(holdID), this.#holds],
      [this.#p, holdID, String(this.#now()), String(this.#retainMs)]) as [string, string];
    if (status === 'done') return { released: true, amount: BigInt(amount) };
    return { released: false, reason: status as 'settled' | 'released' | 'expired' | 'unknown-hold' };
  }

  /**
   * Releases every hold whose expiry is ≤ `nowMs` (state `expired`; a later settle is
   * refused). Cost: O(log n) per expired hold via the expiry ZSET, 500 per script call.
   * Callers run it periodically (every few seconds; any gateway may, concurrently).
   * @returns how many holds expired.
   */
  async expireHolds(nowMs: number = this.#now()): Promise<number> {
    checkTime(nowMs, 'nowMs');
    const batch = 500;
    let total = 0;
    for (;;) {
      const n = Number(await this.#scripts.run('expireHolds', [this.#holds], [this.#p, String(nowMs), String(this.#retainMs), String(batch)]));
      total += n;
      if (n < batch) return total;
    }
  }

  /**
   * A direct charge without a prior hold, idempotent by `entryID` (a repeat returns the
   * first entry, `replayed: true`).
   * @returns `{ok: false, balance}` when the balance does not cover `amount` (nothing charged).
   * @throws GatewayError NOT_FOUND for an unknown account; INVALID_REQUEST when a live hold
   *   has the same ID (settle it instead); RangeError for an amount outside 0 … 2^53 − 1.
   */
  async charge(request: ChargeRequest): Promise<ChargeResult> {
    const entryID = checkWorkID(request.entryID, 'entryID');
    checkAccountID(request.accountID);
    const amount = checkCredits(request.amount, 'amount');
    const units = checkUnits(request.units);
    const meta = metaArgs(request.meta);
    const now = this.#now();
    const [status, balance, fields] = await this.#scripts.run('charge', [this.#entry(entryID), this.#hold(entryID)],
      [this.#p, entryID, request.accountID, amount, units, request.rule, request.kind, request.ref, String(now), `${padTime(now)}:${entryID}`, ...meta]) as [string, string, string[]?];
    if (status === 'ok' || status === 'replayed') return { ok: true, entry: parseEntryFields(fields!)!, replayed: status === 'replayed' };
    if (status === 'insufficient') return { ok: false, balance: BigInt(balance) };
    if (status === 'no-account') throw new GatewayError('NOT_FOUND', `account ${request.accountID} not found`);
    throw new GatewayError('INVALID_REQUEST', `entry ${entryID} has a live hold; settle or release it`);
  }

  /**
   * One charge of work that keeps a standing hold (a live session's interval), idempotent by
   * `entryID` (a repeat returns the first entry, `replayed: true`, and changes nothing). The
   * amount is taken from the hold and the balance together and never past both (then the
   * entry records `requestedAmount` and `shortfall`, and both end at 0); afterwards the
   * hold is filled back up to `holdAmount` from the balance as far as it goes and expires
   * `holdTtlMs` later. When the hold is not live (released, expired, unknown), the charge
   * comes from the balance alone.
   * @throws GatewayError NOT_FOUND for an unknown account; RangeError for amounts outside
   *   0 … 2^53 − 1, negative units or a bad TTL.
   */
  async drawHold(request: DrawHoldRequest): Promise<DrawHoldResult> {
    const entryID = checkWorkID(request.entryID, 'entryID');
    const holdID = checkWorkID(request.holdID, 'holdID');
    checkAccountID(request.accountID);
    const amount = checkCredits(request.amount, 'amount');
    const holdAmount = checkCredits(request.holdAmount, 'holdAmount');
    const units = checkUnits(request.units);
    if (!Number.isSafeInteger(request.holdTtlMs) || request.holdTtlMs < 1) throw new RangeError('holdTtlMs must be a positive integer');
    const meta = metaArgs(request.meta);
    const now = this.#now();
    const [status, fields] = await this.#scripts.run('drawHold', [this.#entry(entryID), this.#hold(holdID), this.#holds],
      [this.#p, entryID, holdID, request.accountID, amount, units, request.rule, request.kind, request.ref, String(now),
        `${padTime(now)}:${entryID}`, holdAmount, String(now + request.holdTtlMs), ...meta]) as [string, string[]?];
    if (status === 'no-account') throw new GatewayError('NOT_FOUND', `account ${request.accountID} not found`);
    return { entry: parseEntryFields(fields!)!, replayed: status === 'replayed' };
  }

  async getEntry(entryID: string): Promise<LedgerEntry | undefined> {
    return parseEntry(await this.#redis.hgetall(this.#entry(entryID)));
  }

  /**
   * One page of an account's entries in `[fromMs, toMs)`, newest first (ties in the same
   * ms ordered by entry ID, descending). Cost: O(log n + limit).
   * @throws GatewayError INVALID_REQUEST for a foreign cursor; RangeError for a bad range or limit.
   */
  async listEntries(accountID: string, query: EntryPageQuery = {}): Promise<EntryPage> {
    const { min, max } = this.#range(query.fromMs ?? 0, query.toMs);
    const limit = query.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new RangeError('limit must be 1 … 1000');
    let upper = max;
    if (query.cursor !== undefined) {
      const member = decodeCursor(query.cursor);
      if (`(${member}` < upper) upper = `(${member}`;
    }
    const members = await this.#redis.zrange(this.#ledger(accountID), upper, min, 'BYLEX', 'REV', 'LIMIT', 0, limit + 1);
    const page = members.slice(0, limit);
    const entries = await this.#entries(page);
    return { entries, ...(members.length > limit ? { nextCursor: encodeCursor(page[page.length - 1]!) } : {}) };
  }

  /**
   * Usage totals of an account's charges in `[fromMs, toMs)`.
   * Cost: reads every entry in the range (ZRANGE BYLEX plus one pipelined HGETALL per
   * entry, 1000 per round trip): O(entries in range). A 24/7 stream with 2 s segments makes
   * about 1.3 M entries a month, a few seconds of Redis work; per-day rollups would make it
   * O(days) if that becomes a problem.
   */
  async usage(accountID: string, range: Partial<TimeRange> = {}): Promise<UsageTotals> {
    const { min, max } = this.#range(range.fromMs ?? 0, range.toMs);
    const key = this.#ledger(accountID);
    const all: LedgerEntry[] = [];
    let lower = min;
    for (;;) {
      const members = await this.#redis.zrange(key, lower, max, 'BYLEX', 'LIMIT', 0, 1000);
      all.push(...await this.#entries(members));
      if (members.length < 1000) break;
      lower = `(${members[members.length - 1]!}`;
    }
    return summarizeUsage(all);
  }

  #range(fromMs: number, toMs: number | undefined): { min: string; max: string } {
    const to = toMs ?? this.#now() + 1;
    checkTime(fromMs, 'fromMs');
    checkTime(to, 'toMs');
    if (to < fromMs) throw new RangeError('toMs must not be before fromMs');
    return { min: `[${padTime(fromMs)}`, max: `(${padTime(to)}` };
  }

  async #entries(members: readonly string[]): Promise<LedgerEntry[]> {
    if (members.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const m of members) pipeline.hgetall(this.#entry(m.slice(LEDGER_TIME_DIGITS + 1)));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([, h]) => parseEntry(h as Record<string, string>)).filter((e): e is LedgerEntry => e !== undefined);
  }
}
