/**
 * The payments API (openapi/payments.yaml): accounts and balances, top-ups, API keys and
 * stream keys (shown once), usage totals and the paged ledger. Requests and responses are
 * validated against the spec by express-openapi-validator, so the spec cannot drift.
 *
 * Money is JSON strings of integers (`"12345"`) both ways, so clients with double-based
 * numbers never round a balance. Protected like the control API: the configured
 * `http.adminToken` is always required; with none configured, the API answers only while
 * the gateway binds loopback.
 */
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import { specValidator } from '../http/scoped-validator.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { adminGuard } from '../http/admin-guard.ts';
import { parseLadder } from '../domain/profile.ts';
import {
  MAX_CREDITS, MAX_LEDGER_TIME_MS,
  type Account, type EntryPage, type EntryPageQuery, type IssuedApiKey, type IssuedStreamKey, type KeyInfo, type LedgerEntry,
  type TimeRange, type TopUpResult, type UsageTotals,
} from './ledger-types.ts';

export const PAYMENTS_SPEC_PATH = fileURLToPath(new URL('../../openapi/payments.yaml', import.meta.url));

const DAY_MS = 24 * 3600_000;
/** Default usage window: the last 30 days. */
export const DEFAULT_USAGE_WINDOW_MS = 30 * DAY_MS;

/** What the payments API needs from the ledger (implemented by payments/ledger-store.ts `RedisLedger`). */
export interface PaymentsLedger {
  createAccount(input: { name: string; credits?: bigint }): Promise<Account>;
  getAccount(id: string): Promise<Account | undefined>;
  listAccounts(): Promise<Account[]>;
  topUp(accountID: string, credits: bigint, idempotencyKey: string): Promise<TopUpResult>;
  listEntries(accountID: string, query: EntryPageQuery): Promise<EntryPage>;
  usage(accountID: string, range: TimeRange): Promise<UsageTotals>;
}

/** What the payments API needs from the key store (implemented by payments/account-store.ts `RedisAccountKeys`). */
export interface PaymentsKeys {
  issueApiKey(accountID: string, options: { label: string }): Promise<IssuedApiKey>;
  issueStreamKey(accountID: string, options: { manifestID: string; profiles?: unknown[] }): Promise<IssuedStreamKey>;
  revokeKey(keyID: string): Promise<boolean>;
  listKeys(accountID: string): Promise<KeyInfo[]>;
}

export interface PaymentsRoutesOptions {
  ledger: PaymentsLedger;
  keys: PaymentsKeys;
  /** Bearer token; '' = none configured. */
  adminToken: string;
  /** Whether the gateway binds only loopback (then no token is required when none is configured). */
  loopbackOnly: boolean;
  /**
   * Refuses a stream key for a manifest ID that is taken elsewhere (e.g. by a configured
   * static stream key). Default: none taken.
   * @returns a reason to refuse with 409, or undefined.
   */
  manifestIDTaken?(manifestID: string): string | undefined;
  /** Clock in epoch ms; default `Date.now`. */
  nowMs?: () => number;
}

const PAYMENTS_PATH = /^\/api\/(accounts|keys)(\/|$)/;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A credits string from a validated body, as bigint.
 * @throws GatewayError INVALID_REQUEST naming `field` above 2^53 − 1.
 */
export function parseCredits(text: string, field: string): bigint {
  const value = BigInt(text);
  if (value > MAX_CREDITS) throw new GatewayError('INVALID_REQUEST', `${field}: must be at most ${MAX_CREDITS} credits`);
  return value;
}

/**
 * `from`/`to` query values (ISO 8601, already format-checked) → a half-open ms range.
 * @throws GatewayError INVALID_REQUEST naming the field for dates before 1970, past the
 *   ledger's range, or `to` before `from`.
 */
export function parseRange(from: unknown, to: unknown, defaults: { fromMs: number; toMs: number }): { fromMs: number; toMs: number } {
  const one = (value: unknown, field: string, fallback: number): number => {
    if (value === undefined) return fallback;
    const ms = Date.parse(String(value));
    if (!Number.isFinite(ms)) throw new GatewayError('INVALID_REQUEST', `query.${field}: must be an ISO 8601 date-time`);
    if (ms < 0 || ms > MAX_LEDGER_TIME_MS) throw new GatewayError('INVALID_REQUEST', `query.${field}: must be between 1970 and year 33000`);
    return ms;
  };
  const fromMs = one(from, 'from', defaults.fromMs);
  const toMs = one(to, 'to', defaults.toMs);
  if (toMs < fromMs) throw new GatewayError('INVALID_REQUEST', 'query.to: must not be before query.from');
  return { fromMs, toMs };
}

export function accountJson(a: Account): Record<string, unknown> {
  return { id: a.id, name: a.name, balance: a.balance.toString(), createdAt: iso(a.createdAtMs) };
}

export function entryJson(e: LedgerEntry): Record<string, unknown> {
  return {
    id: e.id, accountID: e.accountID, kind: e.kind, amount: e.amount.toString(), units: e.units.toString(), rule: e.rule, ref: e.ref,
    createdAt: iso(e.createdAtMs),
    ...(e.manifestID !== undefined ? { manifestID: e.manifestID } : {}),
    ...(e.seq !== undefined ? { seq: e.seq } : {}),
    ...(e.pipeline !== undefined ? { pipeline: e.pipeline } : {}),
    ...(e.modelID !== undefined ? { modelID: e.modelID } : {}),
    ...(e.requestedAmount !== undefined ? { requestedAmount: e.requestedAmount.toString() } : {}),
    ...(e.shortfall !== undefined ? { shortfall: e.shortfall.toString() } : {}),
  };
}

export function keyJson(k: KeyInfo): Record<string, unknown> {
  return {
    keyID: k.keyID, accountID: k.accountID, kind: k.kind,
    ...(k.label !== undefined ? { label: k.label } : {}),
    ...(k.manifestID !== undefined ? { manifestID: k.manifestID } : {}),
    ...(k.profiles !== undefined ? { profiles: k.profiles } : {}),
    hint: k.hint, createdAt: iso(k.createdAtMs), revoked: k.revoked,
    ...(k.revokedAtMs !== undefined ? { revokedAt: iso(k.revokedAtMs) } : {}),
  };
}

export function createPaymentsRouter(options: PaymentsRoutesOptions): Router {
  const router = Router();
  const { ledger, keys } = options;
  const now = options.nowMs ?? Date.now;

  router.get('/openapi/payments.yaml', (_req: Request, res: Response) => {
    res.type('application/yaml').sendFile(PAYMENTS_SPEC_PATH);
  });

  const paths = ['/api/accounts', '/api/keys'];
  router.use(paths, adminGuard({ adminToken: options.adminToken, loopbackOnly: options.loopbackOnly, apiName: 'payments API' }));
  router.use(paths, express.json({ limit: '64kb' }));
  const isPaymentsPath = (path: string): boolean => PAYMENTS_PATH.test(path);
  router.use(specValidator(PAYMENTS_SPEC_PATH, isPaymentsPath, {
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
    validateResponses: true,
  }));

  async function account(req: Request): Promise<Account> {
    const id = String(req.params['id']);
    const found = await ledger.getAccount(id);
    if (!found) throw new GatewayError('NOT_FOUND', `account ${id} not found`);
    return found;
  }

  router.post('/api/accounts', async (req: Request, res: Response) => {
    const body = req.body as { name: string; credits?: string };
    const credits = body.credits === undefined ? 0n : parseCredits(body.credits, 'credits');
    const created = await ledger.createAccount({ name: body.name, credits });
    res.status(201).json(accountJson(created));
  });

  router.get('/api/accounts', async (_req: Request, res: Response) => {
    res.json({ accounts: (await ledger.listAccounts()).map(accountJson) });
  });

  router.get('/api/accounts/:id', async (req: Request, res: Response) => {
    res.json(accountJson(await account(req)));
  });

  router.post('/api/accounts/:id/topups', async (req: Request, res: Response) => {
    const body = req.body as { credits: string; idempotencyKey: string };
    const credits = parseCredits(body.credits, 'credits');
    const { id } = await account(req);
    const result = await ledger.topUp(id, credits, body.idempotencyKey);
    res.json({ accountID: id, balance: result.balance.toString(), entry: entryJson(result.entry), replayed: result.replayed });
  });

  router.post('/api/accounts/:id/api-keys', async (req: Request, res: Response) => {
    const { label } = req.body as { label: string };
    const { id } = await account(req);
    const issued = await keys.issueApiKey(id, { label });
    res.status(201).setHeader('Cache-Control', 'no-store');
    res.json({ keyID: issued.keyID, accountID: id, kind: 'api', label, hint: issued.hint, createdAt: iso(issued.createdAtMs), key: issued.key });
  });

  router.post('/api/accounts/:id/stream-keys', async (req: Request, res: Response) => {
    const body = req.body as { manifestID: string; profiles?: unknown[] };
    if (body.profiles !== undefined) parseLadder(body.profiles);
    const { id } = await account(req);
    const taken = options.manifestIDTaken?.(body.manifestID);
    if (taken) throw new GatewayError('STREAM_BUSY', `manifestID: ${taken}`);
    const issued = await keys.issueStreamKey(id, { manifestID: body.manifestID, ...(body.profiles ? { profiles: body.profiles } : {}) });
    res.status(201).setHeader('Cache-Control', 'no-store');
    res.json({
      keyID: issued.keyID, accountID: id, kind: 'stream', manifestID: issued.manifestID,
      ...(body.profiles ? { profiles: body.profiles } : {}),
      hint: issued.hint, createdAt: iso(issued.createdAtMs), streamKey: issued.streamKey,
    });
  });

  router.get('/api/accounts/:id/keys', async (req: Request, res: Response) => {
    const { id } = await account(req);
    res.json({ keys: (await keys.listKeys(id)).map(keyJson) });
  });

  router.delete('/api/keys/:keyID', async (req: Request, res: Response) => {
    const keyID = String(req.params['keyID']);
    if (!(await keys.revokeKey(keyID))) throw new GatewayError('NOT_FOUND', `key ${keyID} not found`);
    res.status(204).end();
  });

  router.get('/api/accounts/:id/usage', async (req: Request, res: Response) => {
    const t = now();
    const range = parseRange(req.query['from'], req.query['to'], { fromMs: Math.max(0, t - DEFAULT_USAGE_WINDOW_MS), toMs: t + 1 });
    const { id } = await account(req);
    const usage = await ledger.usage(id, range);
    res.json({
      accountID: id, from: iso(range.fromMs), to: iso(range.toMs),
      byStream: usage.byStream.map((s) => ({ manifestID: s.manifestID, units: s.units.toString(), amount: s.amount.toString(), entries: s.entries })),
      byModel: usage.byModel.map((m) => ({ pipeline: m.pipeline, modelID: m.modelID, units: m.units.toString(), amount: m.amount.toString(), entries: m.entries })),
      total: { amount: usage.total.amount.toString(), entries: usage.total.entries },
    });
  });

  router.get('/api/accounts/:id/ledger', async (req: Request, res: Response) => {
    const range = parseRange(req.query['from'], req.query['to'], { fromMs: 0, toMs: now() + 1 });
    const limit = Number(req.query['limit'] ?? 100);
    const cursor = req.query['cursor'] as string | undefined;
    const { id } = await account(req);
    const page = await ledger.listEntries(id, { ...range, limit, ...(cursor !== undefined ? { cursor } : {}) });
    res.json({ entries: page.entries.map(entryJson), ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}) });
  });

  return router;
}
