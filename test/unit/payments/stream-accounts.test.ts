/**
 * Which account a stream is charged to when its grant names none, by bind: `local` on
 * loopback (the gateway creates it there), none (not metered) on any other bind; a
 * configured stream key's `accountID` always wins. The bind decision is the pure function
 * the gateway uses, fed the host strings a deployment would configure (tests never bind a
 * public address); the publish path is LiveIngest with in-memory stand-ins and a recording
 * billing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost } from '../../../src/config/config.ts';
import { LOCAL_ACCOUNT_ID, unnamedStreamAccount } from '../../../src/payments/billing.ts';
import { LiveIngest, StaticKeyAuthorizer, type IngestBilling } from '../../../src/ingest/live-ingest.ts';
import { ingestOptions, notUsed } from '../../helpers/ingest-stand-ins.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

test('streams naming no account are charged to local on loopback binds and not metered on public binds', () => {
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) assert.equal(unnamedStreamAccount(isLoopbackHost(host)), LOCAL_ACCOUNT_ID, host);
  for (const host of ['0.0.0.0', '::', '192.0.2.10', 'media.example.com']) assert.equal(unnamedStreamAccount(isLoopbackHost(host)), undefined, host);
});

function ingestWith(defaultAccountID: string | undefined, funded: ReadonlySet<string>): { ingest: LiveIngest; asked: string[] } {
  const asked: string[] = [];
  const billing: IngestBilling = {
    standing: async (accountID: string) => { asked.push(accountID); return funded.has(accountID) ? 'ok' : 'no-account'; },
    reserveSegment: notUsed,
  };
  const ingest = new LiveIngest(ingestOptions({
    authorizer: new StaticKeyAuthorizer([
      { streamKey: 'key-acme-0123456789', manifestID: 'acme', accountID: 'acct_acme' },
      { streamKey: 'key-plain-0123456789', manifestID: 'plain' },
    ], []),
    billing,
    defaultAccountID,
  }));
  return { ingest, asked };
}

test('public bind: a configured key without accountID publishes unmetered; a key naming an account is charged to it', async () => {
  const { ingest, asked } = ingestWith(unnamedStreamAccount(isLoopbackHost('0.0.0.0')), new Set(['acct_acme']));
  await ingest.publish('c1', 'key-plain-0123456789', 'rtmp://h/live/key-plain-0123456789');
  assert.deepEqual(asked, [], 'no account is consulted for an unmetered stream');
  await ingest.publish('c2', 'key-acme-0123456789', 'rtmp://h/live/key-acme-0123456789');
  assert.deepEqual(asked, ['acct_acme']);
  assert.deepEqual(ingest.list().map((s) => s.manifestID).sort(), ['acme', 'plain']);
  await ingest.close();
});

test('a key naming an account that is missing or empty is refused, naming that account', async () => {
  const { ingest, asked } = ingestWith(undefined, new Set());
  await assert.rejects(ingest.publish('c1', 'key-acme-0123456789', 'rtmp://h/live/key-acme-0123456789'),
    (err: unknown) => err instanceof GatewayError && /acct_acme/.test(err.message));
  assert.deepEqual(asked, ['acct_acme']);
  await ingest.close();
});

test('loopback bind: a key without accountID is charged to local', async () => {
  const { ingest, asked } = ingestWith(unnamedStreamAccount(isLoopbackHost('127.0.0.1')), new Set([LOCAL_ACCOUNT_ID]));
  await ingest.publish('c1', 'key-plain-0123456789', 'rtmp://h/live/key-plain-0123456789');
  assert.deepEqual(asked, [LOCAL_ACCOUNT_ID]);
  await ingest.close();
});
