/**
 * The ledger store's checks and encodings (ledger-store.ts), pure: the bounds of credits,
 * units, IDs and times checked before a ledger script runs and turned into script arguments,
 * the page cursor, and ledger hashes read back into {@link Account} and {@link LedgerEntry}.
 */
import { GatewayError } from '../errors/gateway-error.ts';
import {
  LEDGER_TIME_DIGITS, MAX_CREDITS, MAX_LEDGER_TIME_MS,
  type Account, type EntryKind, type EntryMeta, type LedgerEntry,
} from './ledger-types.ts';

/** An account ID: 1-64 characters of [A-Za-z0-9_-]. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const WORK_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** @throws RangeError unless 0 ≤ credits ≤ 2^53 − 1 (and ≥ 1 when `positive`). */
export function checkCredits(value: bigint, what: string, positive = false): string {
  if (typeof value !== 'bigint') throw new RangeError(`${what} must be a bigint`);
  if (value < (positive ? 1n : 0n) || value > MAX_CREDITS) throw new RangeError(`${what} must be an integer in ${positive ? 1 : 0} … ${MAX_CREDITS} credits`);
  return value.toString();
}

export function checkUnits(value: bigint): string {
  if (typeof value !== 'bigint' || value < 0n) throw new RangeError('units must be a non-negative bigint');
  return value.toString();
}

export function checkAccountID(id: string): string {
  if (!ID_PATTERN.test(id)) throw new GatewayError('INVALID_REQUEST', 'account ID must be 1-64 characters of [A-Za-z0-9_-]');
  return id;
}

export function checkWorkID(id: string, what: string): string {
  if (!WORK_ID_PATTERN.test(id)) throw new RangeError(`${what} must be 1-200 printable ASCII characters without spaces`);
  if (id.startsWith('topup:')) throw new RangeError(`${what} must not start with "topup:" (reserved for top-ups)`);
  return id;
}

export function padTime(ms: number): string {
  return String(ms).padStart(LEDGER_TIME_DIGITS, '0');
}

export function checkTime(ms: number, what: string): number {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_LEDGER_TIME_MS) throw new RangeError(`${what} must be an integer epoch ms in 0 … ${MAX_LEDGER_TIME_MS}`);
  return ms;
}

export function metaArgs(meta: EntryMeta | undefined): string[] {
  if (meta?.seq !== undefined && (!Number.isSafeInteger(meta.seq) || meta.seq < 0)) throw new RangeError('meta.seq must be a non-negative integer');
  return [meta?.manifestID ?? '', meta?.seq === undefined ? '' : String(meta.seq), meta?.pipeline ?? '', meta?.modelID ?? ''];
}

export function encodeCursor(member: string): string {
  return Buffer.from(member, 'utf8').toString('base64url');
}

/** @throws GatewayError INVALID_REQUEST for a cursor this ledger did not make. */
export function decodeCursor(cursor: string): string {
  const member = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[0-9]{15}:[\x21-\x7e]{1,200}$/.test(member)) throw new GatewayError('INVALID_REQUEST', 'cursor: not a cursor returned by this API');
  return member;
}

export function parseAccount(h: Record<string, string>): Account | undefined {
  if (!h['id']) return undefined;
  return { id: h['id'], name: h['name'] ?? '', balance: BigInt(h['balance'] ?? '0'), createdAtMs: Number(h['createdAtMs'] ?? 0) };
}

/**
 * An entry from a Lua reply that carries its hash as HGETALL's flat list (`field, value, ...`,
 * settle.lua and charge.lua); undefined for an empty list.
 */
export function parseEntryFields(fields: readonly string[]): LedgerEntry | undefined {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) h[fields[i]!] = fields[i + 1]!;
  return parseEntry(h);
}

export function parseEntry(h: Record<string, string>): LedgerEntry | undefined {
  if (!h['id']) return undefined;
  return {
    id: h['id'],
    accountID: h['accountID'] ?? '',
    kind: (h['kind'] ?? 'ai') as EntryKind,
    amount: BigInt(h['amount'] ?? '0'),
    units: BigInt(h['units'] ?? '0'),
    rule: h['rule'] ?? '',
    ref: h['ref'] ?? '',
    createdAtMs: Number(h['createdAtMs'] ?? 0),
    ...(h['manifestID'] !== undefined ? { manifestID: h['manifestID'] } : {}),
    ...(h['seq'] !== undefined ? { seq: Number(h['seq']) } : {}),
    ...(h['pipeline'] !== undefined ? { pipeline: h['pipeline'] } : {}),
    ...(h['modelID'] !== undefined ? { modelID: h['modelID'] } : {}),
    ...(h['requestedAmount'] !== undefined ? { requestedAmount: BigInt(h['requestedAmount']) } : {}),
    ...(h['shortfall'] !== undefined ? { shortfall: BigInt(h['shortfall']) } : {}),
  };
}
