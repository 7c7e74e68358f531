/**
 * Trickle segments over the server's `maxSegmentBytes` (here 1 MiB), published to a real
 * TrickleServer on node:http in a process of its own (test/helpers/trickle-server-process.ts;
 * in this process the server's answer always won the race with the reset, so the old code's
 * resets did not show) over 127.0.0.1, with bodies of 8 MiB sent while the answer may already
 * be on its way (test/helpers/oversize-body.ts):
 *
 * - chunked from undici's fetch and from node:http writing 64 KiB chunks, and with a
 *   Content-Length from fetch: each gets the 413 (`Segment larger than 1048576 bytes`, with
 *   `Lp-Trickle-Seq`), every time in ten tries each, instead of EPIPE/ECONNRESET;
 * - a publisher that never stops writing gets the 413, and its connection is closed;
 * - a subscriber waiting for a refused segment sees it end, with no more than the limit;
 *   every refused publish took one seq and no more (the rest of its body was dropped, not
 *   stored); afterwards the same client publishes a normal segment on its kept connection and
 *   a subscriber reads it whole.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startTrickleServerProcess, type TrickleServerProcess } from '../../helpers/trickle-server-process.ts';
import { endlessChunked, fetchChunked, fetchDeclared, notAnswered, rawChunked, type Outcome, type RawOutcome } from '../../helpers/oversize-body.ts';

const LIMIT_BYTES = 1024 * 1024;
const BODY_BYTES = 8 * LIMIT_BYTES;
const TRIES = 10;
const LIMIT_TEXT = `Segment larger than ${LIMIT_BYTES} bytes`;
const PUBLISH = { headers: { 'content-type': 'video/MP2T' } };

let server: TrickleServerProcess;
let base: string;

before(async () => {
  server = await startTrickleServerProcess({ maxSegmentBytes: LIMIT_BYTES, channels: ['over', 'forever'] });
  base = server.base;
});

after(async () => {
  await server?.stop();
});

/** The channel's live edge (`GET <channel>/next`). */
async function liveEdge(channel: string): Promise<number> {
  const res = await fetch(`${base}/${channel}/next`);
  assert.equal(res.status, 200);
  return Number(await res.text());
}

/**
 * Asserts that every outcome is the 413 with its text body (whatever happened to the
 * connection after it); `what` names the client.
 */
function assertAll413(outcomes: readonly Outcome[], what: string): void {
  const failed = notAnswered(outcomes, 413);
  assert.deepEqual(failed, [], `${what}: ${failed.length} of ${outcomes.length} tries did not get the 413`);
  for (const o of outcomes) assert.equal(o.body, LIMIT_TEXT, what);
}

/** POSTs one segment to `url` with node:http on `agent` (Content-Length declared). */
function rawSegment(url: string, body: Buffer, agent: Agent): Promise<{ status: number; seq: string | undefined; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { 'content-type': 'video/MP2T', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, seq: res.headers['lp-trickle-seq'] as string | undefined, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a segment over the limit gets the 413 every time, from fetch and from node:http, chunked or with a Content-Length', { timeout: 120_000 }, async (t) => {
  // A subscriber waiting at the live edge for the first refused segment.
  const waiting = fetch(`${base}/over/0`).then(async (res) => ({ status: res.status, bytes: (await res.arrayBuffer()).byteLength }));

  const fetched: Outcome[] = [];
  for (let i = 0; i < TRIES; i++) fetched.push(await fetchChunked(`${base}/over/-1`, BODY_BYTES, PUBLISH));
  t.diagnostic(`fetch, chunked: ${JSON.stringify(fetched.map((o) => o.status ?? o.error))}`);

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const raw: RawOutcome[] = [];
    for (let i = 0; i < TRIES; i++) raw.push(await rawChunked(`${base}/over/-1`, BODY_BYTES, agent, PUBLISH));
    t.diagnostic(`node:http, chunked: ${JSON.stringify(raw.map((o) => o.status ?? o.error))}; written when answered (KiB): ${raw.map((o) => o.writtenAtAnswer === undefined ? '-' : o.writtenAtAnswer / 1024).join(', ')}; on a reused connection: ${raw.filter((o) => o.reusedSocket).length} of ${TRIES}; closed after the answer: ${raw.filter((o) => o.status !== undefined && o.error).length}`);

    const declared: Outcome[] = [];
    for (let i = 0; i < TRIES; i++) declared.push(await fetchDeclared(`${base}/over/-1`, BODY_BYTES, PUBLISH));
    t.diagnostic(`fetch, Content-Length: ${JSON.stringify(declared.map((o) => o.status ?? o.error))}`);

    assertAll413(fetched, 'fetch, chunked');
    assertAll413(raw, 'node:http, chunked');
    assertAll413(declared, 'fetch, Content-Length');

    const first = await waiting;
    assert.equal(first.status, 200, 'the waiting subscriber got the refused segment, ended');
    assert.ok(first.bytes <= LIMIT_BYTES, `the refused segment ended with at most the limit (${first.bytes} bytes)`);
    assert.equal(await liveEdge('over'), 3 * TRIES, 'each refused publish took one seq: the rest of its body became no segment');

    // The same client (its kept-alive connection, if the server kept it) publishes a normal segment.
    const segment = randomBytes(100_000);
    const reading = fetch(`${base}/over/${3 * TRIES}`).then(async (res) => Buffer.from(await res.arrayBuffer()));
    const normal = await rawSegment(`${base}/over/-1`, segment, agent);
    assert.equal(normal.status, 200);
    assert.equal(normal.seq, String(3 * TRIES));
    assert.ok((await reading).equals(segment), 'a subscriber reads the normal segment whole');
  } finally {
    agent.destroy();
    await waiting.catch(() => undefined);
  }
});

test('a publisher that never stops writing gets the 413, then the server closes its connection', { timeout: 60_000 }, async (t) => {
  const o = await endlessChunked(`${base}/forever/-1`, PUBLISH);
  t.diagnostic(`written when answered: ${o.writtenAtAnswer === undefined ? '-' : `${(o.writtenAtAnswer / 1024 / 1024).toFixed(1)} MiB`}, in all ${(o.written / 1024 / 1024).toFixed(0)} MiB, ended by ${o.error ?? 'a close'}`);
  assert.match(o.head ?? '', /^HTTP\/1\.1 413 /, `answered: ${o.head ?? o.error}`);
  assert.match(o.head!, /^lp-trickle-seq: 0$/im);
  assert.equal(o.body, LIMIT_TEXT);
  assert.ok(o.written > o.writtenAtAnswer!, 'the body was still being written (and read) after the answer');
  assert.equal(await liveEdge('forever'), 1, 'the refused publish took one seq');
  const next = await fetch(`${base}/forever/-1`, { method: 'POST', body: 'after', headers: PUBLISH.headers });
  assert.equal(next.status, 200, 'the server is up and takes the next segment');
  assert.equal(next.headers.get('lp-trickle-seq'), '1');
  assert.ok(server.alive());
});
