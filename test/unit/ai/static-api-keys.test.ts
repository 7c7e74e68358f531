/**
 * Configured AI API keys and who pays: on a loopback bind the gateway's `local` account, on a
 * public bind nobody (no `local` account exists there, so charging it refused every call).
 * The account is what app.ts passes: payments' unnamedStreamAccount for the bind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StaticApiKeyAuthorizer } from '../../../src/ai/api-key-authorizers.ts';
import { LOCAL_ACCOUNT_ID, unnamedStreamAccount } from '../../../src/payments/billing.ts';
import { isGatewayError } from '../../../src/errors/gateway-error.ts';

test('a configured API key is charged to local on a loopback bind and is not metered on a public bind', async () => {
  const loopback = new StaticApiKeyAuthorizer(['k-0123456789'], true, unnamedStreamAccount(true));
  assert.deepEqual(await loopback.authorize('k-0123456789'), { accountID: LOCAL_ACCOUNT_ID });
  const publicBind = new StaticApiKeyAuthorizer(['k-0123456789'], false, unnamedStreamAccount(false));
  const caller = await publicBind.authorize('k-0123456789');
  assert.equal(caller.accountID, undefined);
  await assert.rejects(publicBind.authorize('wrong'), (err) => isGatewayError(err) && err.code === 'UNAUTHORIZED');
  await assert.rejects(publicBind.authorize(undefined), (err) => isGatewayError(err) && err.code === 'UNAUTHORIZED');
});

test('without configured keys, anonymous callers are accepted on loopback only', async () => {
  assert.deepEqual(await new StaticApiKeyAuthorizer([], true, LOCAL_ACCOUNT_ID).authorize(undefined), { accountID: LOCAL_ACCOUNT_ID });
  await assert.rejects(new StaticApiKeyAuthorizer([], false, undefined).authorize(undefined), /not on loopback/);
});
