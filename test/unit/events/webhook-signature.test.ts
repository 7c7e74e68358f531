import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signPayload, verifySignature, serializeWebhookBody, webhookHeaders, SIGNATURE_HEADER } from '../../../src/events/webhook-signature.ts';
import { NO_EVENTS, type GatewayEvent } from '../../../src/events/events.ts';

const secret = 'whsec_test';
const body = '{"id":"d1","type":"stream.started","createdAt":"2026-01-01T00:00:00.000Z","data":{"manifestID":"m"}}';
const nowS = 1_767_225_600;

test('the signature is t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">', () => {
  const expected = createHmac('sha256', secret).update(`${nowS}.${body}`).digest('hex');
  assert.equal(signPayload(secret, body, nowS), `t=${nowS},v1=${expected}`);
});

test('verifySignature accepts a signature made with the same secret and body', () => {
  const header = signPayload(secret, body, nowS);
  assert.equal(verifySignature(secret, body, header, { nowS }), true);
  assert.equal(verifySignature(secret, Buffer.from(body), header, { nowS: nowS + 299 }), true, 'raw bytes and the edge of the window');
});

test('verifySignature rejects a tampered body, a wrong secret and a stale or future timestamp', () => {
  const header = signPayload(secret, body, nowS);
  assert.equal(verifySignature(secret, body.replace('"m"', '"n"'), header, { nowS }), false, 'tampered body');
  assert.equal(verifySignature('another', body, header, { nowS }), false, 'wrong secret');
  assert.equal(verifySignature(secret, body, header, { nowS: nowS + 301 }), false, 'older than 300 s');
  assert.equal(verifySignature(secret, body, header, { nowS: nowS - 301 }), false, 'more than 300 s in the future');
  assert.equal(verifySignature(secret, body, header, { nowS: nowS + 60, toleranceS: 30 }), false, 'custom tolerance');
});

test('a timestamp moved forward to pass the replay window invalidates the MAC', () => {
  const header = signPayload(secret, body, nowS);
  const replayed = header.replace(`t=${nowS}`, `t=${nowS + 1000}`);
  assert.equal(verifySignature(secret, body, replayed, { nowS: nowS + 1000 }), false);
});

test('verifySignature accepts any matching v1 among several (secret rotation)', () => {
  const good = signPayload(secret, body, nowS);
  const oldV1 = signPayload('old-secret', body, nowS).split(',')[1];
  assert.equal(verifySignature(secret, body, `${good},${oldV1}`, { nowS }), true);
  assert.equal(verifySignature(secret, body, `t=${nowS},${oldV1}`, { nowS }), false);
});

test('verifySignature returns false instead of throwing on malformed headers or an empty secret', () => {
  for (const header of [undefined, null, '', 'garbage', 't=abc,v1=00', `t=${nowS}`, `v1=${'a'.repeat(64)}`, `t=${nowS},v1=${'z'.repeat(64)}`, `t=${nowS},v1=abcd`]) {
    assert.equal(verifySignature(secret, body, header, { nowS }), false, String(header));
  }
  assert.equal(verifySignature('', body, signPayload(secret, body, nowS), { nowS }), false);
});

test('signPayload refuses an empty secret and a non-integer timestamp', () => {
  assert.throws(() => signPayload('', body, nowS), /secret is empty/);
  assert.throws(() => signPayload(secret, body, 1.5), /whole Unix seconds/);
});

test('the body is {id, type, createdAt, data} with data holding the event fields without type', () => {
  const event: GatewayEvent = { type: 'segment.failed', manifestID: 'm1', session: 's1', seq: 7, reason: 'ffmpeg exited 1' };
  const parsed: unknown = JSON.parse(serializeWebhookBody(event, { id: 'd-1', createdAt: '2026-01-01T00:00:00.000Z' }));
  assert.deepEqual(parsed, { id: 'd-1', type: 'segment.failed', createdAt: '2026-01-01T00:00:00.000Z', data: { manifestID: 'm1', session: 's1', seq: 7, reason: 'ffmpeg exited 1' } });
});

test('headers carry the event type and delivery ID, and a signature only when a secret is set', () => {
  const signed = webhookHeaders({ id: 'd-1', type: 'stream.ended', body, secret, nowS });
  assert.deepEqual(signed, {
    'Content-Type': 'application/json',
    'Mediagate-Event': 'stream.ended',
    'Mediagate-Delivery': 'd-1',
    'Mediagate-Signature': signPayload(secret, body, nowS),
  });
  const unsigned = webhookHeaders({ id: 'd-1', type: 'stream.ended', body, secret: '', nowS });
  assert.equal(SIGNATURE_HEADER in unsigned, false);
  assert.equal(unsigned['Mediagate-Event'], 'stream.ended');
});

test('NO_EVENTS accepts events and does nothing', () => {
  assert.equal(NO_EVENTS.emit({ type: 'stream.started', manifestID: 'm', session: 's', protocol: 'push' }), undefined);
});
