import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deliverWebhook, redactWebhookUrl, WebhookDeliveryError } from '../../../src/events/webhook-delivery.ts';
import { freePort } from '../../helpers/ports.ts';
import { startReceiver } from './receiver.ts';

const request = { body: '{"id":"d"}', headers: { 'Content-Type': 'application/json', 'Mediagate-Event': 'stream.started' } };

async function failure(p: Promise<unknown>): Promise<WebhookDeliveryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WebhookDeliveryError, `expected WebhookDeliveryError, got ${String(err)}`);
    return err;
  }
  throw new Error('expected the delivery to fail');
}

test('a 2xx answer is a delivery, and the receiver gets the body and headers as given', async () => {
  const rx = await startReceiver(() => 202);
  try {
    const r = await deliverWebhook(rx.url, request, { timeoutMs: 2000 });
    assert.equal(r.status, 202);
    assert.ok(r.elapsedMs >= 0);
    assert.equal(rx.received.length, 1);
    assert.equal(rx.received[0]?.method, 'POST');
    assert.equal(rx.received[0]?.body, request.body);
    assert.equal(rx.received[0]?.headers['mediagate-event'], 'stream.started');
  } finally {
    await rx.close();
  }
});

test('a 4xx other than 408 and 429 is permanent; 408, 429 and 5xx are retryable', async () => {
  const statuses = [400, 401, 404, 410, 422, 408, 429, 500, 502, 503];
  const rx = await startReceiver((n) => statuses[n] ?? 500);
  try {
    const seen: [number, boolean][] = [];
    for (let i = 0; i < statuses.length; i += 1) {
      const err = await failure(deliverWebhook(rx.url, request, { timeoutMs: 2000 }));
      assert.equal(err.kind, 'status');
      seen.push([err.status ?? 0, err.retryable]);
    }
    assert.deepEqual(seen, [[400, false], [401, false], [404, false], [410, false], [422, false], [408, true], [429, true], [500, true], [502, true], [503, true]]);
  } finally {
    await rx.close();
  }
});

test('a redirect is not followed and is not retried', async () => {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    res.writeHead(302, { location: '/elsewhere' });
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const err = await failure(deliverWebhook(`http://127.0.0.1:${port}/hook`, request, { timeoutMs: 2000 }));
    assert.equal(err.status, 302);
    assert.equal(err.retryable, false);
    assert.equal(hits, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a refused connection is a retryable connection error', async () => {
  const port = await freePort();
  const err = await failure(deliverWebhook(`http://127.0.0.1:${port}/hook`, request, { timeoutMs: 2000 }));
  assert.equal(err.kind, 'connection');
  assert.equal(err.retryable, true);
  assert.match(err.message, /ECONNREFUSED/);
});

test('a receiver that never answers is a retryable timeout after timeoutMs', async () => {
  const rx = await startReceiver(() => 'hang');
  try {
    const started = Date.now();
    const err = await failure(deliverWebhook(rx.url, request, { timeoutMs: 300 }));
    const elapsed = Date.now() - started;
    assert.equal(err.kind, 'timeout');
    assert.equal(err.retryable, true);
    assert.ok(elapsed >= 250 && elapsed < 3000, `timed out after ${elapsed} ms`);
  } finally {
    await rx.close();
  }
});

test('an unparseable or non-http URL is permanent', async () => {
  for (const url of ['not a url', 'ftp://example.com/hook']) {
    const err = await failure(deliverWebhook(url, request, { timeoutMs: 100 }));
    assert.equal(err.kind, 'invalid');
    assert.equal(err.retryable, false);
  }
});

test('logged URLs keep origin and path but drop the query, fragment and credentials', () => {
  assert.equal(redactWebhookUrl('https://user:pw@hooks.example.com:8443/a/b?token=s3cret#x'), 'https://hooks.example.com:8443/a/b');
  assert.equal(redactWebhookUrl('::'), '[unparseable url]');
});
