import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { freePort } from '../../helpers/ports.ts';
import { EventQueue, EventDeliveryWorker, type EventDeliveryWorkerOptions } from '../../../src/events/event-queue.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { verifySignature } from '../../../src/events/webhook-signature.ts';
import type { GatewayEvent } from '../../../src/events/events.ts';
import { startReceiver, until, type ReceivedRequest } from './receiver.ts';

let redis: TestRedis;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.stop(); });

const SECRET = 'whsec_integration';

/** A pino logger at debug level whose lines are kept for assertions. */
function capturedLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(line); } });
  return { logger, lines };
}

interface HarnessOptions {
  attempts?: number;
  backoffMs?: number;
  secret?: string;
  worker?: Partial<EventDeliveryWorkerOptions>;
}

/** An EventQueue + EventDeliveryWorker pair on a fresh prefix of the test Redis. */
async function harness(urls: string[], options: HarnessOptions = {}) {
  const prefix = `ev${randomBytes(4).toString('hex')}`;
  const { logger, lines } = capturedLogger();
  const secret = options.secret ?? SECRET;
  const connections = new RedisConnections({ url: redis.url, logger, namePrefix: `mediagate:${prefix}` });
  const queue = new EventQueue({ connection: connections.open('events', 'commands'), prefix, logger, urls, secret, attempts: options.attempts ?? 3, backoffMs: options.backoffMs ?? 50 });
  const worker = new EventDeliveryWorker({ connection: connections.open('events-worker', 'blocking'), prefix, logger, secret, timeoutMs: 2000, ...options.worker });
  await worker.waitUntilReady();
  return { queue, worker, lines, close: async () => { await worker.close(); await queue.close(); await connections.close(); } };
}

const started = (manifestID = 'cam1'): GatewayEvent => ({ type: 'stream.started', manifestID, session: 's1', protocol: 'rtmp' });

function signatureTime(req: ReceivedRequest): number {
  const header = String(req.headers['mediagate-signature'] ?? '');
  const t = /^t=(\d+),v1=[0-9a-f]{64}$/.exec(header)?.[1];
  assert.ok(t, `signature header has the form t=<s>,v1=<hex>: ${header}`);
  return Number(t);
}

test('an emitted event reaches the receiver with the documented body, headers and a valid signature', async () => {
  const rx = await startReceiver(() => 200);
  const h = await harness([rx.url]);
  try {
    const event: GatewayEvent = {
      type: 'segment.transcoded', manifestID: 'cam1', session: 's1', seq: 4, durationMs: 2000, elapsedMs: 850,
      renditions: [{ name: '720p', width: 1280, height: 720, frames: 60, bytes: 812_345 }],
    };
    const emittedAt = Date.now();
    h.queue.emit(event);
    await until(() => rx.received.length === 1, 'the receiver got the event');
    const req = rx.received[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/hook');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['mediagate-event'], 'segment.transcoded');
    const body = JSON.parse(req.body) as { id: string; type: string; createdAt: string; data: unknown };
    assert.deepEqual(Object.keys(body), ['id', 'type', 'createdAt', 'data']);
    assert.match(body.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(req.headers['mediagate-delivery'], body.id);
    assert.equal(body.type, 'segment.transcoded');
    assert.equal(new Date(body.createdAt).toISOString(), body.createdAt, 'ISO 8601');
    assert.ok(Math.abs(Date.parse(body.createdAt) - emittedAt) < 5000);
    const { type: _type, ...data } = event;
    assert.deepEqual(body.data, data);

    const header = String(req.headers['mediagate-signature']);
    const nowS = Math.floor(req.atMs / 1000);
    assert.ok(Math.abs(signatureTime(req) - nowS) <= 1, 'signed at send time');
    assert.equal(verifySignature(SECRET, req.body, header, { nowS }), true, 'valid with the secret');
    assert.equal(verifySignature(SECRET, req.body.replace('"seq":4', '"seq":5'), header, { nowS }), false, 'tampered body');
    assert.equal(verifySignature('not-the-secret', req.body, header, { nowS }), false, 'wrong secret');
    assert.equal(verifySignature(SECRET, req.body, header, { nowS: nowS + 301 }), false, 'stale timestamp');
  } finally {
    await h.close();
    await rx.close();
  }
});

test('with two URLs configured each receiver gets the event, with the same delivery ID', async () => {
  const a = await startReceiver(() => 200, '/a');
  const b = await startReceiver(() => 204, '/b');
  const h = await harness([a.url, b.url]);
  try {
    h.queue.emit(started('two'));
    await until(() => a.received.length === 1 && b.received.length === 1, 'both receivers got the event');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(a.received.length, 1);
    assert.equal(b.received.length, 1);
    assert.equal(a.received[0]!.body, b.received[0]!.body);
    assert.equal(a.received[0]!.headers['mediagate-delivery'], b.received[0]!.headers['mediagate-delivery']);
    assert.equal((JSON.parse(a.received[0]!.body) as { data: { manifestID: string } }).data.manifestID, 'two');
  } finally {
    await h.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('a receiver that answers 500 twice then 200 gets the event on the third try, each try freshly signed', async () => {
  const rx = await startReceiver((n) => (n < 2 ? 500 : 200));
  // 600 ms then 1200 ms between tries: the third is signed at least one second after the first.
  const h = await harness([rx.url], { attempts: 5, backoffMs: 600 });
  try {
    h.queue.emit(started('retry'));
    await until(() => rx.received.length === 3, 'three tries');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(rx.received.length, 3, 'no try after the 200');
    const [first, second, third] = rx.received as [ReceivedRequest, ReceivedRequest, ReceivedRequest];
    assert.ok(second.atMs - first.atMs >= 550, `backoff before try 2: ${second.atMs - first.atMs} ms`);
    assert.ok(third.atMs - second.atMs >= 1100, `doubled backoff before try 3: ${third.atMs - second.atMs} ms`);
    assert.equal(third.body, first.body, 'same bytes on every try');
    assert.equal(third.headers['mediagate-delivery'], first.headers['mediagate-delivery']);
    assert.ok(signatureTime(third) > signatureTime(first), 'the retry carries a newer timestamp');
    for (const req of rx.received) {
      assert.equal(verifySignature(SECRET, req.body, String(req.headers['mediagate-signature']), { nowS: Math.floor(req.atMs / 1000) }), true);
    }
    assert.notEqual(third.headers['mediagate-signature'], first.headers['mediagate-signature']);
  } finally {
    await h.close();
    await rx.close();
  }
});

test('a 400 answer is not retried, and the log names the receiver without its query or the secret', async () => {
  const rx = await startReceiver(() => 400, '/hook?token=receiver-token');
  const h = await harness([rx.url], { attempts: 5, backoffMs: 20 });
  try {
    h.queue.emit(started('rejected'));
    await until(() => rx.received.length === 1, 'the first try');
    await until(() => h.lines.some((l) => l.includes('webhook rejected by receiver; not retried')), 'the rejection is logged');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(rx.received.length, 1, 'no retry after a 400');
    const log = h.lines.join('');
    assert.match(log, new RegExp(rx.url.replace('?token=receiver-token', '').replace(/[.?]/g, '\\$&')));
    assert.doesNotMatch(log, /receiver-token/);
    assert.doesNotMatch(log, new RegExp(SECRET));
  } finally {
    await h.close();
    await rx.close();
  }
});

test('with no secret configured, deliveries carry no signature header', async () => {
  const rx = await startReceiver(() => 200);
  const h = await harness([rx.url], { secret: '' });
  try {
    h.queue.emit(started('unsigned'));
    await until(() => rx.received.length === 1, 'the event arrived');
    assert.equal(rx.received[0]!.headers['mediagate-signature'], undefined);
    assert.equal(rx.received[0]!.headers['mediagate-event'], 'stream.started');
  } finally {
    await h.close();
    await rx.close();
  }
});

test('a receiver that never answers stalls neither emit nor deliveries to a healthy receiver', async () => {
  const hang = await startReceiver(() => 'hang', '/hang');
  const healthy = await startReceiver(() => 200, '/ok');
  const h = await harness([hang.url, healthy.url], { attempts: 1, worker: { timeoutMs: 1500, concurrency: 4 } });
  try {
    const count = 1000;
    const t0 = performance.now();
    for (let i = 0; i < count; i += 1) {
      const result: unknown = h.queue.emit({ type: 'segment.failed', manifestID: 'busy', session: 's1', seq: i, reason: 'test' });
      assert.equal(result, undefined, 'emit returns nothing to await');
    }
    const emitMs = performance.now() - t0;
    assert.equal(healthy.received.length + hang.received.length, 0, 'emit returned before anything was sent');
    assert.ok(emitMs < 1000, `${count} emits took ${emitMs.toFixed(0)} ms`);

    await until(() => healthy.received.length === count, 'every event reached the healthy receiver', 30_000);
    assert.ok(hang.maxConcurrent() <= 2, `at most 2 deliveries held by the hanging receiver, saw ${hang.maxConcurrent()}`);
    await until(() => hang.abandoned() >= 1, 'the hanging deliveries time out');

    // Later events still arrive while the hanging receiver keeps timing out.
    const before = healthy.received.length;
    const t1 = Date.now();
    for (let i = 0; i < 10; i += 1) h.queue.emit({ type: 'segment.failed', manifestID: 'later', session: 's1', seq: i, reason: 'test' });
    await until(() => healthy.received.length === before + 10, 'later events reached the healthy receiver', 10_000);
    assert.ok(Date.now() - t1 < 1500, `later events were not held behind the 1500 ms timeouts (${Date.now() - t1} ms)`);
    const seqs = healthy.received.slice(before).map((r) => (JSON.parse(r.body) as { data: { manifestID: string; seq: number } }).data);
    assert.deepEqual(seqs.map((d) => d.manifestID), Array(10).fill('later'));
  } finally {
    await h.close();
    await Promise.all([hang.close(), healthy.close()]);
  }
});

test('closing the queue and the worker leaves the connections they were handed open, for their owner to close', async () => {
  const rx = await startReceiver(() => 200);
  const prefix = `ev${randomBytes(4).toString('hex')}`;
  const { logger } = capturedLogger();
  const connections = new RedisConnections({ url: redis.url, logger, namePrefix: `mediagate:${prefix}` });
  try {
    const producer = connections.open('events', 'commands');
    const consumer = connections.open('events-worker', 'blocking');
    const queue = new EventQueue({ connection: producer, prefix, logger, urls: [rx.url], secret: SECRET, attempts: 1, backoffMs: 10 });
    const worker = new EventDeliveryWorker({ connection: consumer, prefix, logger, secret: SECRET, timeoutMs: 2000 });
    await worker.waitUntilReady();
    queue.emit(started('owned'));
    await until(() => rx.received.length === 1, 'the receiver got the event');
    await worker.close();
    await queue.close();
    assert.equal(producer.status, 'ready');
    assert.equal(consumer.status, 'ready');
    assert.equal(await producer.ping(), 'PONG');
    assert.equal(await consumer.ping(), 'PONG');
    const names = String(await producer.client('LIST')).split('\n').map((l) => /name=(\S*)/.exec(l)?.[1]).filter((n) => n?.startsWith(`mediagate:${prefix}:`));
    assert.deepEqual(names.sort(), [`mediagate:${prefix}:events`, `mediagate:${prefix}:events-worker`]);
  } finally {
    await connections.close();
    await rx.close();
  }
});

test('with Redis unreachable, emit returns at once without throwing and drops beyond the pending bound', async () => {
  const port = await freePort();
  const { logger, lines } = capturedLogger();
  const connections = new RedisConnections({ url: `redis://127.0.0.1:${port}`, logger, namePrefix: 'mediagate:down' });
  const queue = new EventQueue({ connection: connections.open('events', 'commands'), prefix: 'down', logger, urls: ['http://127.0.0.1:9/hook'], secret: SECRET, attempts: 3, backoffMs: 10, addTimeoutMs: 200, maxPendingAdds: 50 });
  try {
    const t0 = performance.now();
    for (let i = 0; i < 1000; i += 1) {
      assert.doesNotThrow(() => queue.emit(started(`down${i}`)));
    }
    const emitMs = performance.now() - t0;
    assert.ok(emitMs < 1000, `1000 emits took ${emitMs.toFixed(0)} ms`);
    const stats = queue.stats();
    assert.ok(stats.pending <= 50, `pending bounded: ${stats.pending}`);
    assert.equal(stats.pending + stats.dropped, 1000, 'every event is either pending or counted as dropped');
    assert.ok(lines.some((l) => l.includes('event dropped: too many enqueues waiting for Redis')), 'the drop is logged');
    assert.ok(lines.filter((l) => l.includes('too many enqueues')).length === 1, 'and logged once, not per event');
    await until(() => lines.some((l) => l.includes('event enqueue is waiting for Redis')), 'the slow enqueue is logged', 2000);
    assert.doesNotMatch(lines.join(''), new RegExp(SECRET));
  } finally {
    const t1 = Date.now();
    await queue.close();
    assert.ok(Date.now() - t1 < 3000, `close did not hang (${Date.now() - t1} ms)`);
  }
  assert.doesNotThrow(() => queue.emit(started('after-close')), 'emit after close is a no-op');
  await queue.close();
  await connections.close();
});
