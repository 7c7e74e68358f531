/**
 * Push bodies over `http.maxBodyBytes` (here 1 MiB) against a real gateway process (real
 * redis-server, embedded transcoder, real ffmpeg, segments of the real clip) over real HTTP on
 * 127.0.0.1. Bodies of 8 MiB, sent while the answer may already be on its way:
 *
 * - chunked (no Content-Length) from undici's fetch (a ReadableStream body, `duplex: 'half'`)
 *   and from node:http writing 64 KiB chunks, and with a Content-Length from fetch: each gets the
 *   413 JSON error naming the limit, every time in ten tries each, instead of EPIPE/ECONNRESET;
 * - a client that never stops writing (a raw chunked request on a TCP socket) gets the 413, and
 *   its connection is closed (2 s after the answer, src/http/refused-body.ts);
 * - meanwhile another stream is served; afterwards a normal push succeeds, the gateway is up,
 *   no scratch file is left, and no refused stream has a session, a transcode or a charge.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { logLines } from '../../helpers/gateway-process.ts';
import { cutPushSegments, pushSegment } from '../../helpers/push-client.ts';
import { endlessChunked, fetchChunked, fetchDeclared, notAnswered, rawChunked, type Outcome, type RawOutcome } from '../../helpers/oversize-body.ts';

const LIMIT_BYTES = 1024 * 1024;
const BODY_BYTES = 8 * LIMIT_BYTES;
const TRIES = 10;
const LIMIT_MESSAGE = new RegExp(`exceeds the limit of ${LIMIT_BYTES} bytes \\(http\\.maxBodyBytes\\)`);
/** Names of the streams whose pushes are refused: none may leave a trace. */
const REFUSED = ['over-fetch-chunked', 'over-raw-chunked', 'over-fetch-declared', 'over-forever'];

const gateway = gatewayForSuite({ MEDIAGATE_LADDER: 'P144p30fps16x9', MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_HTTP_MAX_BODY_BYTES: String(LIMIT_BYTES) });
let work: string;
let segments: Buffer[];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'mg-push-limit-'));
  segments = await cutPushSegments(6, work);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The push URL of seq 0 of stream `name`. */
function pushUrl(name: string): string {
  return `${gateway.httpUrl}/live/${name}/0.ts`;
}

/**
 * Asserts that every outcome is the 413 JSON error naming the limit (whatever happened to the
 * connection after it: node:http's client stops writing a body once it has its answer, so the
 * gateway closes a connection whose body was still unfinished 2 s later); `what` names the client.
 */
function assertAll413(outcomes: readonly Outcome[], what: string): void {
  const failed = notAnswered(outcomes, 413);
  assert.deepEqual(failed, [], `${what}: ${failed.length} of ${outcomes.length} tries did not get the 413`);
  for (const o of outcomes) {
    const detail = (JSON.parse(o.body!) as { detail: { msg: string; code: string } }).detail;
    assert.equal(detail.code, 'PAYLOAD_TOO_LARGE', what);
    assert.match(detail.msg, LIMIT_MESSAGE, what);
  }
}

test('a chunked body over the limit gets the 413 naming the limit every time, from fetch and from node:http, while another stream is served', { timeout: 180_000 }, async (t) => {
  assert.ok(segments.length >= 2 && segments.every((s) => s.length < LIMIT_BYTES), `segments under the limit: ${segments.map((s) => s.length).join(', ')}`);
  const beside = (async () => {
    const answers = [];
    for (let seq = 0; seq < segments.length; seq++) answers.push(await pushSegment(gateway.httpUrl, 'beside', seq, segments[seq]!));
    return answers;
  })();

  const fetched: Outcome[] = [];
  for (let i = 0; i < TRIES; i++) fetched.push(await fetchChunked(pushUrl('over-fetch-chunked'), BODY_BYTES, { method: 'PUT' }));
  t.diagnostic(`fetch, chunked: ${JSON.stringify(fetched.map((o) => o.status ?? o.error))}`);

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const raw: RawOutcome[] = [];
    for (let i = 0; i < TRIES; i++) raw.push(await rawChunked(pushUrl('over-raw-chunked'), BODY_BYTES, agent, { headers: { 'content-type': 'video/mp2t' } }));
    t.diagnostic(`node:http, chunked: ${JSON.stringify(raw.map((o) => o.status ?? o.error))}; written when answered (KiB): ${raw.map((o) => o.writtenAtAnswer === undefined ? '-' : o.writtenAtAnswer / 1024).join(', ')}; on a reused connection: ${raw.filter((o) => o.reusedSocket).length} of ${TRIES}; closed after the answer: ${raw.filter((o) => o.status !== undefined && o.error).length}`);

    const declared: Outcome[] = [];
    for (let i = 0; i < TRIES; i++) declared.push(await fetchDeclared(pushUrl('over-fetch-declared'), BODY_BYTES));
    t.diagnostic(`fetch, Content-Length: ${JSON.stringify(declared.map((o) => o.status ?? o.error))}`);

    assertAll413(fetched, 'fetch, chunked');
    assertAll413(raw, 'node:http, chunked');
    assertAll413(declared, 'fetch, Content-Length');

    // The same client (its kept-alive connection, if the gateway kept it) pushes a normal segment.
    const normal = await rawSegment('after-refusals', segments[0]!, agent);
    assert.equal(normal.status, 200, normal.body);
  } finally {
    agent.destroy();
    await beside.catch(() => undefined); // a failed assertion above must not leave the pushes running into the next test
  }
  for (const [seq, answer] of (await beside).entries()) assert.equal(answer.status, 200, `beside seq ${seq}: ${answer.body}`);
});

test('a client that never stops writing gets the 413, then the gateway closes its connection', { timeout: 60_000 }, async (t) => {
  const o = await endlessChunked(pushUrl('over-forever'), { headers: { 'content-type': 'video/mp2t' } });
  t.diagnostic(`written when answered: ${o.writtenAtAnswer === undefined ? '-' : `${(o.writtenAtAnswer / 1024 / 1024).toFixed(1)} MiB`}, in all ${(o.written / 1024 / 1024).toFixed(0)} MiB, ended by ${o.error ?? 'a close'}`);
  assert.match(o.head ?? '', /^HTTP\/1\.1 413 /, `answered: ${o.head ?? o.error}`);
  const detail = (JSON.parse(o.body ?? '{}') as { detail?: { msg: string; code: string } }).detail;
  assert.equal(detail?.code, 'PAYLOAD_TOO_LARGE');
  assert.match(detail.msg, LIMIT_MESSAGE);
  assert.ok(o.written > o.writtenAtAnswer!, 'the body was still being written (and read) after the answer');
  assert.equal((await fetch(`${gateway.httpUrl}/healthz`)).status, 200, 'the gateway is up');
  const normal = await pushSegment(gateway.httpUrl, 'after-forever', 0, segments[0]!);
  assert.equal(normal.status, 200, normal.body);
});

test('the refused pushes left nothing behind: no scratch file, no session, no transcode, no charge', async () => {
  const scratch = join(gateway.deployment.dataDir, 'work', 'push');
  assert.deepEqual(existsSync(scratch) ? readdirSync(scratch) : [], [], 'no request body is left in the scratch directory');
  const res = await fetch(`${gateway.httpUrl}/api/accounts/local/ledger?limit=1000`);
  assert.equal(res.status, 200);
  const { entries } = (await res.json()) as { entries: { kind: string; manifestID?: string }[] };
  assert.ok(entries.some((e) => e.kind === 'transcode' && e.manifestID === 'beside'), 'the normal pushes were charged (the ledger is where charges show)');
  const logged = (msg: string): unknown[] => logLines(gateway.proc, msg).filter((l) => REFUSED.includes(String(l['manifestID'])));
  assert.deepEqual(entries.filter((e) => REFUSED.includes(String(e.manifestID))), [], 'no refused push was charged');
  assert.equal(logLines(gateway.proc, 'segment transcoded').filter((l) => l['manifestID'] === 'beside').length, segments.length, 'the transcodes are logged');
  assert.deepEqual(logged('segment transcoded'), [], 'no refused push was transcoded');
  assert.deepEqual(logged('stream started'), [], 'no refused push opened a session');
  const streams = (await (await fetch(`${gateway.httpUrl}/api/streams?state=all&limit=500`)).json()) as { streams: { manifestID: string }[] };
  assert.ok(streams.streams.some((s) => s.manifestID === 'beside'), 'pushed streams are listed');
  assert.deepEqual(streams.streams.filter((s) => REFUSED.includes(s.manifestID)), [], 'no refused push is listed as a stream');
});

/** POSTs one segment with node:http on `agent` (Content-Length declared). */
function rawSegment(name: string, body: Buffer, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gateway.deployment.httpPort, path: `/live/${name}/0.ts`, method: 'POST', agent,
      headers: { 'content-type': 'video/mp2t', 'content-length': String(body.length) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
