/**
 * Configured stream keys that name an account (`streamKeys[].accountID`): their streams are
 * charged to that account, a publish is refused while it is missing, and keys without one
 * keep the loopback behaviour (the `local` account). In-process gateways on 127.0.0.1 with a
 * real redis-server, the embedded transcoder, real ffmpeg and real segments of the clip.
 * (The public-bind side, where keys without an account are not metered, is decided by
 * `unnamedStreamAccount`: test/unit/payments/stream-accounts.test.ts; tests bind loopback only.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { loadConfig } from '../../../src/config/config.ts';
import type { StreamKeyConfig } from '../../../src/config/config-schema.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { startApp, type RunningApp } from '../../../src/app.ts';

const run = promisify(execFile);
const PREFIX = 'skacct';
const KEYS = { acme: 'acme-key-7f3a9c21d4e8b605', missing: 'missing-key-5c2e8a1f9b3d7046', plain: 'plain-key-0d9f4b7e2a6c8153' };
let redis: TestRedis;
let dataDir: string;
let segment: Buffer;
const apps: RunningApp[] = [];

async function gateway(streamKeys: StreamKeyConfig[]): Promise<string> {
  const dir = mkdtempSync(join(dataDir, 'gw-'));
  const app = await startApp(loadConfig({
    overrides: {
      http: { port: 0 }, rtmp: { enabled: false }, ladder: ['P144p30fps16x9'], streamKeys,
      redis: { url: redis.url, keyPrefix: PREFIX }, storage: { dir: join(dataDir, 'objects') }, workDir: join(dir, 'work'),
      push: { idleTimeoutMs: 2000 },
      payments: { transcodePrice: { pricePerUnit: 1, pixelsPerUnit: 1 } },
    },
  }), createLogger({ level: 'silent' }), 'gateway');
  apps.push(app);
  return `http://127.0.0.1:${app.httpPort}`;
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, { method, headers: { 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function transcodeCharges(base: string, account: string, manifestID: string): Promise<{ amount: string }[]> {
  const { entries } = await api(base, 'GET', `/api/accounts/${account}/ledger?limit=1000`) as { entries: { kind: string; manifestID?: string; amount: string }[] };
  return entries.filter((e) => e.kind === 'transcode' && e.manifestID === manifestID);
}

before(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'mg-skacct-'));
  const cut = join(dataDir, 'cut');
  mkdirSync(cut);
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(4), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(cut, '%d.ts')]);
  segment = readFileSync(join(cut, readdirSync(cut).sort()[0]!));
});

after(async () => {
  for (const app of apps) await app.close();
  await redis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('a stream key naming an account is charged to that account; a missing account refuses the publish; a key without one is charged to local on loopback', { timeout: 180_000 }, async () => {
  // The operator creates the account through the payments API first, then names it in config.
  const setup = await gateway([]);
  const account = await api(setup, 'POST', '/api/accounts', { name: 'acme', credits: '1000000000000' }) as { id: string };

  const base = await gateway([
    { streamKey: KEYS.acme, manifestID: 'acmeshow', accountID: account.id },
    { streamKey: KEYS.missing, manifestID: 'ghostshow', accountID: 'acct_doesnotexist' },
    { streamKey: KEYS.plain, manifestID: 'plainshow' },
  ]);

  const refused = await fetch(`${base}/live/${KEYS.missing}/0.ts`, { method: 'POST', body: segment });
  const refusedText = await refused.text();
  assert.ok(refused.status >= 400 && refused.status < 500, `refused with a 4xx: ${refused.status} ${refusedText}`);
  assert.match(refusedText, /acct_doesnotexist/, 'the refusal names the account');
  assert.ok(!refusedText.includes(KEYS.missing), 'the refusal does not echo the stream key');

  const acme = await fetch(`${base}/live/${KEYS.acme}/0.ts`, { method: 'POST', body: segment });
  assert.equal(acme.status, 200, await acme.text());
  const plain = await fetch(`${base}/live/${KEYS.plain}/0.ts`, { method: 'POST', body: segment });
  assert.equal(plain.status, 200, await plain.text());

  const acmeCharges = await transcodeCharges(base, account.id, 'acmeshow');
  assert.equal(acmeCharges.length, 1, 'the keyed stream is charged to its account');
  assert.ok(BigInt(acmeCharges[0]!.amount) > 0n);
  assert.equal((await transcodeCharges(base, 'local', 'acmeshow')).length, 0, 'and not to local');
  assert.equal((await transcodeCharges(base, 'local', 'plainshow')).length, 1, 'a key without an account is charged to local on loopback');
  assert.equal((await transcodeCharges(base, account.id, 'plainshow')).length, 0);
});
