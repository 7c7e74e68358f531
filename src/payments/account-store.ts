/**
 * API keys and stream keys of accounts, in Redis, stored hashed: only SHA-256 of a key is
 * kept, so a copy of Redis does not let anyone call the API or publish. The secret is
 * returned once, when issued.
 *
 * Keys are 32 random bytes in base64url (43 characters) behind a prefix that tells
 * operators what they hold: `mg_api_…` for API keys (`Authorization: Bearer`), `mg_sk_…`
 * for stream keys (`rtmp://host/live/<streamKey>`; 49 characters of `[A-Za-z0-9_-]`, so
 * they fit the stream-name grammar of docs/wire-contract.md §2).
 *
 * Keys (deployment prefix `p`):
 * - `p:pay:secret:<sha256 hex>`   HASH  keyID, kind, accountID, manifestID, profiles (JSON): the lookup; deleted on revoke
 * - `p:pay:key:<keyID>`           HASH  keyID, kind, accountID, label, manifestID, profiles, hint, hash,
 *                                       createdAtMs, revokedAtMs: the record, kept after revoke
 * - `p:pay:keys:<accountID>`      ZSET  key IDs scored by createdAtMs
 * - `p:pay:manifest:<manifestID>` STRING key ID of the live stream key for that manifest ID
 *
 * Issuing and revoking are Lua scripts (./lua/issue-key.lua, ./lua/revoke-key.lua), so a
 * manifest ID never gets two live stream keys and a revoke removes the lookup and the
 * manifest claim together.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from '../redis/connections.ts';
import { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import type { IssuedApiKey, IssuedStreamKey, KeyInfo, KeyKind, StreamKeyGrant } from './ledger-types.ts';

export const API_KEY_PREFIX = 'mg_api_';
export const STREAM_KEY_PREFIX = 'mg_sk_';

export interface RedisAccountKeysOptions {
  redis: Redis;
  /** Deployment key prefix (`redis.keyPrefix`); keys live under `<prefix>:pay:`. */
  prefix: string;
  /** Clock in epoch ms; default `Date.now`. */
  nowMs?: () => number;
}

/** The key store's Lua scripts, one file each in ./lua/ (KEYS, ARGV and reply in each header). */
const ACCOUNT_KEY_SCRIPTS = {
  issue: luaScript('mgKeysIssue', 4, new URL('./lua/issue-key.lua', import.meta.url)),
  revoke: luaScript('mgKeysRevoke', 1, new URL('./lua/revoke-key.lua', import.meta.url)),
};

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function checkAccountID(id: string): void {
  if (!ID_PATTERN.test(id)) throw new GatewayError('INVALID_REQUEST', 'account ID must be 1-64 characters of [A-Za-z0-9_-]');
}

export class RedisAccountKeys {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts<keyof typeof ACCOUNT_KEY_SCRIPTS>;
  readonly #p: string;
  readonly #nowMs: () => number;

  constructor(options: RedisAccountKeysOptions) {
    this.#redis = options.redis;
    this.#scripts = new RedisScripts(options.redis, ACCOUNT_KEY_SCRIPTS);
    this.#keys = new RedisKeys(options.prefix).scope('pay');
    // The revoke script builds the secret and manifest keys from this prefix.
    this.#p = this.#keys.prefix;
    this.#nowMs = options.nowMs ?? Date.now;
  }

  #secret(hash: string): string { return this.#keys.key('secret', hash); }
  #record(keyID: string): string { return this.#keys.key('key', keyID); }
  #accountKeys(accountID: string): string { return this.#keys.key('keys', accountID); }
  #manifest(manifestID: string): string { return this.#keys.key('manifest', manifestID); }

  async #issue(kind: KeyKind, accountID: string, fields: { label: string; manifestID: string; profiles?: unknown[] }): Promise<{ key: string; keyID: string; hint: string; createdAtMs: number }> {
    checkAccountID(accountID);
    const key = `${kind === 'api' ? API_KEY_PREFIX : STREAM_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const keyID = `key_${randomBytes(9).toString('base64url')}`;
    const hash = sha256Hex(key);
    const hint = key.slice(-4);
    const createdAtMs = this.#nowMs();
    const ok = await this.#scripts.run('issue',
      [this.#secret(hash), this.#record(keyID), this.#accountKeys(accountID), fields.manifestID ? this.#manifest(fields.manifestID) : ''],
      [keyID, kind, accountID, fields.label, fields.manifestID, fields.profiles ? JSON.stringify(fields.profiles) : '', hint, hash, String(createdAtMs)]);
    if (Number(ok) !== 1) {
      throw new GatewayError('STREAM_BUSY', `manifest ID ${fields.manifestID} already has a live stream key; revoke it first`);
    }
    return { key, keyID, hint, createdAtMs };
  }

  /**
   * Issues an API key (`mg_api_…`) for `accountID`. The caller checks that the account exists.
   * @throws GatewayError INVALID_REQUEST for a malformed account ID.
   */
  async issueApiKey(accountID: string, options: { label: string }): Promise<IssuedApiKey> {
    return this.#issue('api', accountID, { label: options.label, manifestID: '' });
  }

  /**
   * Issues a stream key (`mg_sk_…`) that publishes as `manifestID`, with an optional
   * per-stream ladder. A manifest ID has at most one live (unrevoked) stream key.
   * @throws GatewayError STREAM_BUSY (409) when the manifest ID has a live key;
   *   INVALID_NAME for a manifest ID outside `[A-Za-z0-9_-]{1,64}`.
   */
  async issueStreamKey(accountID: string, options: { manifestID: string; profiles?: unknown[] }): Promise<IssuedStreamKey> {
    if (!ID_PATTERN.test(options.manifestID)) throw new GatewayError('INVALID_NAME', 'manifestID must be 1-64 characters of [A-Za-z0-9_-]');
    const issued = await this.#issue('stream', accountID, { label: '', manifestID: options.manifestID, ...(options.profiles ? { profiles: options.profiles } : {}) });
    return { streamKey: issued.key, keyID: issued.keyID, manifestID: options.manifestID, hint: issued.hint, createdAtMs: issued.createdAtMs };
  }

  /**
   * Revokes a key at once (the next resolve fails; a stream already publishing is not
   * stopped by this). Frees the manifest ID of a stream key. Idempotent.
   * @returns false when no such key exists.
   */
  async revokeKey(keyID: string): Promise<boolean> {
    if (!ID_PATTERN.test(keyID)) return false;
    const done = await this.#scripts.run('revoke', [this.#record(keyID)], [this.#p, String(this.#nowMs())]);
    return Number(done) === 1;
  }

  async #lookup(key: string, kind: KeyKind): Promise<Record<string, string> | undefined> {
    const prefix = kind === 'api' ? API_KEY_PREFIX : STREAM_KEY_PREFIX;
    if (typeof key !== 'string' || !key.startsWith(prefix) || key.length > 128) return undefined;
    const h = await this.#redis.hgetall(this.#secret(sha256Hex(key)));
    return h['kind'] === kind && h['accountID'] ? h : undefined;
  }

  /** The account an API key belongs to; undefined for an unknown, revoked or non-API key. */
  async resolveApiKey(key: string): Promise<string | undefined> {
    return (await this.#lookup(key, 'api'))?.['accountID'];
  }

  /** What a stream key grants; undefined for an unknown, revoked or non-stream key. */
  async resolveStreamKey(key: string): Promise<StreamKeyGrant | undefined> {
    const h = await this.#lookup(key, 'stream');
    if (!h) return undefined;
    return {
      keyID: h['keyID'] ?? '', accountID: h['accountID']!, manifestID: h['manifestID'] ?? '',
      ...(h['profiles'] ? { profiles: JSON.parse(h['profiles']) as unknown[] } : {}),
    };
  }

  /** One key's record (never the secret), or undefined. */
  async getKey(keyID: string): Promise<KeyInfo | undefined> {
    if (!ID_PATTERN.test(keyID)) return undefined;
    return parseKey(await this.#redis.hgetall(this.#record(keyID)));
  }

  /** An account's keys, oldest first, revoked ones included (never the secret). */
  async listKeys(accountID: string): Promise<KeyInfo[]> {
    if (!ID_PATTERN.test(accountID)) return [];
    const ids = await this.#redis.zrange(this.#accountKeys(accountID), 0, '-1');
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.#record(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([, h]) => parseKey(h as Record<string, string>)).filter((k): k is KeyInfo => k !== undefined);
  }
}

function parseKey(h: Record<string, string>): KeyInfo | undefined {
  if (!h['keyID']) return undefined;
  const kind: KeyKind = h['kind'] === 'stream' ? 'stream' : 'api';
  return {
    keyID: h['keyID'],
    accountID: h['accountID'] ?? '',
    kind,
    ...(kind === 'api' ? { label: h['label'] ?? '' } : { manifestID: h['manifestID'] ?? '' }),
    ...(h['profiles'] ? { profiles: JSON.parse(h['profiles']) as unknown[] } : {}),
    hint: h['hint'] ?? '',
    createdAtMs: Number(h['createdAtMs'] ?? 0),
    revoked: h['revokedAtMs'] !== undefined,
    ...(h['revokedAtMs'] !== undefined ? { revokedAtMs: Number(h['revokedAtMs']) } : {}),
  };
}
