/**
 * Trickle server and clients over real HTTP on 127.0.0.1: publish/subscribe in order,
 * streamed segment bodies, the 5-segment window (470), the live edge, close, retries, idle
 * timeout, express mounting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import express from 'express';
import {
  TricklePublisher, TrickleServer, TrickleSubscriber, TrickleError, type TrickleServerOptions,
} from '../../../src/trickle/index.ts';

interface Served { server: TrickleServer; http: Server; base: string; requests: string[]; close(): Promise<void> }

async function serve(options: TrickleServerOptions = {}): Promise<Served> {
  const server = new TrickleServer(options);
  const requests: string[] = [];
  const http = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (!server.handle(req, res)) {
      res.writeHead(404).end('not trickle');
    }
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/ai/trickle`;
  return {
    server, http, base, requests,
    close: async () => {
      server.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

async function raw(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('trickle server and clients', () => {
  let s: Served;
  before(async () => { s = await serve(); });
  after(async () => { await s.close(); });

  it('delivers published segments to a subscriber in order with their seq and content type', async () => {
    s.server.createChannel('order');
    const sub = new TrickleSubscriber(`${s.base}/order`, { start: 0 });
    const pub = new TricklePublisher(`${s.base}/order`);
    const got: { seq: number; type: string | undefined; text: string }[] = [];
    const reading = (async () => {
      for await (const seg of sub) {
        got.push({ seq: seg.seq, type: seg.contentType, text: (await readAll(seg.body)).toString() });
        if (got.length === 3) break;
      }
    })();
    for (const text of ['zero', 'one', 'two']) await pub.write(Buffer.from(text));
    await reading;
    assert.deepEqual(got, [
      { seq: 0, type: 'video/MP2T', text: 'zero' },
      { seq: 1, type: 'video/MP2T', text: 'one' },
      { seq: 2, type: 'video/MP2T', text: 'two' },
    ]);
    assert.equal(pub.nextSeq, 3);
    await pub.close();
  });

  it('streams a segment to a subscriber while it is still being published', async () => {
    s.server.createChannel('live');
    const sub = new TrickleSubscriber(`${s.base}/live`);
    const pub = new TricklePublisher(`${s.base}/live`);
    const reading = sub.next();
    const segment = pub.next();
    await segment.write('first half;');
    const seg = await reading;
    assert.ok(seg);
    assert.equal(seg.seq, 0);
    const firstChunk = await new Promise<Buffer>((resolve) => seg.body.once('data', resolve));
    // The publisher has not ended the segment: the subscriber already has its first bytes.
    assert.equal(firstChunk.toString(), 'first half;');
    const rest = readAll(seg.body);
    await segment.write('second half');
    await segment.end();
    assert.equal((await rest).toString(), 'second half');
    sub.close();
    await pub.close();
  });

  it('keeps the last 5 segments: an older seq answers 470 with the live edge, a kept one its bytes', async () => {
    s.server.createChannel('window');
    const pub = new TricklePublisher(`${s.base}/window`);
    for (let i = 0; i < 8; i += 1) await pub.write(`seg${i}`);
    const gone = await raw(`${s.base}/window/2`);
    assert.equal(gone.status, 470);
    assert.equal(gone.headers.get('lp-trickle-latest'), '8');
    const kept = await raw(`${s.base}/window/3`);
    assert.equal(kept.status, 200);
    assert.equal(kept.text, 'seg3');
    assert.equal(kept.headers.get('lp-trickle-seq'), '3');
    assert.equal(kept.headers.get('lp-trickle-latest'), '8');
    const ahead = await raw(`${s.base}/window/12`);
    assert.equal(ahead.status, 470);
    const next = await raw(`${s.base}/window/next`);
    assert.equal(next.text, '8');
    assert.equal(next.headers.get('lp-trickle-latest'), '8');
    await pub.close();
  });

  it('a subscriber that fell behind the window jumps to the live edge and counts what it skipped', async () => {
    s.server.createChannel('behind');
    const pub = new TricklePublisher(`${s.base}/behind`);
    for (let i = 0; i < 7; i += 1) await pub.write(`s${i}`);
    const sub = new TrickleSubscriber(`${s.base}/behind`, { start: 0 });
    const reading = sub.next();
    await new Promise((r) => setTimeout(r, 200)); // it asks for 0, gets 470, waits at 7
    await pub.write('s7');
    const seg = await reading;
    assert.ok(seg);
    assert.equal(seg.seq, 7);
    assert.equal((await readAll(seg.body)).toString(), 's7');
    assert.equal(sub.skippedSegments, 7);
    sub.close();
    await pub.close();
  });

  it('seq -1 waits for the next segment to be published', async () => {
    s.server.createChannel('edge');
    const pub = new TricklePublisher(`${s.base}/edge`);
    await pub.write('old');
    const waiting = raw(`${s.base}/edge/-1`);
    await new Promise((r) => setTimeout(r, 100));
    await pub.write('new');
    const got = await waiting;
    assert.equal(got.status, 200);
    assert.equal(got.text, 'new');
    assert.equal(got.headers.get('lp-trickle-seq'), '1');
    await pub.close();
  });

  it('answers 404 for an unknown channel on GET, POST, next and DELETE', async () => {
    assert.equal((await raw(`${s.base}/nope/0`)).status, 404);
    assert.equal((await raw(`${s.base}/nope/0`, { method: 'POST', body: 'x' })).status, 404);
    assert.equal((await raw(`${s.base}/nope/next`)).status, 404);
    assert.equal((await raw(`${s.base}/nope`, { method: 'DELETE' })).status, 404);
    const pub = new TricklePublisher(`${s.base}/nope`);
    await assert.rejects(pub.write('x'), (err: unknown) => err instanceof TrickleError && err.code === 'CHANNEL_NOT_FOUND');
    pub.destroy();
    assert.equal((await raw(`${s.base}/bad/abc`)).status, 400);
  });

  it('DELETE ends a waiting subscriber cleanly, tells a late subscriber and a publisher the channel closed', async () => {
    s.server.createChannel('closing');
    const sub = new TrickleSubscriber(`${s.base}/closing`);
    const pub = new TricklePublisher(`${s.base}/closing`);
    await pub.write('a');
    const iterated: number[] = [];
    const reading = (async () => { for await (const seg of sub) { iterated.push(seg.seq); seg.body.resume(); } })();
    await new Promise((r) => setTimeout(r, 100));
    const open = pub.next();
    await open.write('partial');
    await pub.close();
    await reading;
    assert.ok(sub.ended);
    assert.deepEqual(iterated, [1]);
    // The publisher of the open segment was told the channel closed.
    await assert.rejects(open.end(), (err: unknown) => err instanceof TrickleError && err.code === 'CLOSED');
    const late = await raw(`${s.base}/closing/5`);
    assert.equal(late.status, 200);
    assert.equal(late.headers.get('lp-trickle-closed'), 'terminated');
    const lateSub = new TrickleSubscriber(`${s.base}/closing`);
    assert.equal(await lateSub.next(), undefined);
    const post = await raw(`${s.base}/closing/6`, { method: 'POST', body: 'x' });
    assert.equal(post.headers.get('lp-trickle-closed'), 'terminated');
    assert.equal(s.server.hasChannel('closing'), false);
  });

  it('retries a failing subscribe 5 times, then throws', async () => {
    const before = s.requests.filter((r) => r.startsWith('GET /ai/trickle/missing/')).length;
    const sub = new TrickleSubscriber(`${s.base}/missing`, { retryDelayMs: 20 });
    await assert.rejects(sub.next(), (err: unknown) => err instanceof TrickleError && err.code === 'CHANNEL_NOT_FOUND');
    const tries = s.requests.filter((r) => r.startsWith('GET /ai/trickle/missing/')).length - before;
    assert.equal(tries, 6, 'one attempt and 5 retries');
  });

  it('a subscriber recovers when the channel appears within its retries', async () => {
    const sub = new TrickleSubscriber(`${s.base}/late`, { start: 0, retryDelayMs: 100 });
    const reading = sub.next();
    await new Promise((r) => setTimeout(r, 150));
    s.server.createChannel('late');
    const pub = new TricklePublisher(`${s.base}/late`);
    await new Promise((r) => setTimeout(r, 200));
    await pub.write('here');
    const seg = await reading;
    assert.ok(seg);
    assert.equal((await readAll(seg.body)).toString(), 'here');
    sub.close();
    await pub.close();
  });

  it('Lp-Trickle-Reset on a publish ends older segments left open by a dead publisher', async () => {
    s.server.createChannel('reset');
    const dead = new TricklePublisher(`${s.base}/reset`);
    const stuck = dead.next();
    await stuck.write('half');
    const sub = new TrickleSubscriber(`${s.base}/reset`, { start: 0 });
    const seg0 = await sub.next();
    assert.ok(seg0);
    const body0 = readAll(seg0.body);
    const fresh = new TricklePublisher(`${s.base}/reset`, { startSeq: 1, reset: true });
    await fresh.write('new');
    assert.equal((await body0).toString(), 'half', 'the open segment ended where its publisher stopped');
    const seg1 = await sub.next();
    assert.ok(seg1);
    assert.equal((await readAll(seg1.body)).toString(), 'new');
    stuck.abort();
    dead.destroy();
    sub.close();
    await fresh.close();
  });

  it('refuses a segment above maxSegmentBytes with 413', async () => {
    const small = await serve({ maxSegmentBytes: 1000 });
    try {
      small.server.createChannel('big');
      const pub = new TricklePublisher(`${small.base}/big`);
      // The publisher gets the 413, not a reset connection (test/integration/trickle/trickle-body-limit.test.ts).
      await assert.rejects(pub.write(Buffer.alloc(5000)), (err: unknown) => err instanceof TrickleError && err.code === 'HTTP' && err.status === 413);
      pub.destroy();
      const after = await raw(`${small.base}/big/next`);
      assert.equal(after.status, 200, 'server still up');
    } finally {
      await small.close();
    }
  });

  it('closes a channel with no new segment for the idle timeout', async () => {
    const idle = await serve({ idleTimeoutMs: 300, sweepIntervalMs: 50 });
    try {
      idle.server.createChannel('quiet');
      idle.server.createChannel('busy');
      const pub = new TricklePublisher(`${idle.base}/busy`);
      const sub = new TrickleSubscriber(`${idle.base}/quiet`);
      const ending = sub.next();
      for (let i = 0; i < 8; i += 1) {
        await pub.write(`x${i}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await ending, undefined, 'the waiting subscriber of the idle channel ended');
      assert.equal(idle.server.hasChannel('quiet'), false);
      assert.equal(idle.server.hasChannel('busy'), true);
      await pub.close();
    } finally {
      await idle.close();
    }
  });

  it('mounts on express before body parsers and leaves other paths to the app', async () => {
    const trickle = new TrickleServer();
    const app = express();
    app.use(trickle.middleware);
    app.use(express.json());
    app.post('/other', (req, res) => { res.json({ echo: req.body }); });
    const http = createServer(app);
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      trickle.createChannel('ctl', { mimeType: 'application/json' });
      const sub = new TrickleSubscriber(`${origin}/ai/trickle/ctl`);
      const pub = new TricklePublisher(`${origin}/ai/trickle/ctl`, { contentType: 'application/json' });
      const reading = sub.next();
      await pub.write(JSON.stringify({ filter: 'grayscale' }));
      const seg = await reading;
      assert.ok(seg);
      assert.equal(seg.contentType, 'application/json');
      assert.deepEqual(JSON.parse((await readAll(seg.body)).toString()), { filter: 'grayscale' });
      const other = await raw(`${origin}/other`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      assert.deepEqual(JSON.parse(other.text), { echo: { a: 1 } });
      sub.close();
      await pub.close();
    } finally {
      trickle.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });
});
