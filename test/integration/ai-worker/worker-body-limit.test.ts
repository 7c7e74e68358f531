/**
 * Request bodies over the reference AI worker's limits, against a real worker process
 * (`cmd/ai-worker.ts`, ESRGAN loaded in its TensorFlow.js threads, the live pipeline on; a
 * process apart, as from a gateway: in this process the worker's answer always won the race
 * with the reset, so the old code's resets did not show) over real HTTP on 127.0.0.1, with
 * bodies of 8 MiB sent while the answer may already be on its way
 * (test/helpers/oversize-body.ts):
 *
 * - `POST /upscale` above `maxImageBytes` + 1 MiB and `POST /live-video-to-video` above 1 MiB,
 *   chunked from undici's fetch and from node:http writing 64 KiB chunks, and with a
 *   Content-Length from fetch: each gets the 413 `{"detail":{"msg":"request body is larger
 *   than <n> bytes"}}`, every time in ten tries each, instead of EPIPE/ECONNRESET;
 * - a client that never stops writing gets the 413, and its connection is closed;
 * - afterwards the same client's next request is served (an upscale, a live start), no slot
 *   is held and no refused start runs a stream (health IDLE: OK while either runs), and the
 *   worker logged one live stream started, the served one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { logLines, spawnMediagate, waitForHttp, type MediagateProcess } from '../../helpers/gateway-process.ts';
import { freePort } from '../../helpers/ports.ts';
import { endlessChunked, fetchChunked, fetchDeclared, notAnswered, rawChunked, type Outcome, type OversizeRequest, type RawOutcome } from '../../helpers/oversize-body.ts';
import { clipFrame, uploadForm } from './images.ts';

const TOKEN = 'worker-limit-token';
/** The worker's image limit (above the test frame's PNG): its body limit is this plus 1 MiB for the other form fields. */
const MAX_IMAGE_BYTES = 64 * 1024;
const UPSCALE_LIMIT_BYTES = MAX_IMAGE_BYTES + 1024 * 1024;
const START_LIMIT_BYTES = 1024 * 1024;
const BODY_BYTES = 8 * 1024 * 1024;
const TRIES = 10;
const auth = { authorization: `Bearer ${TOKEN}` };
const BOUNDARY = 'mglimit';
/** An upscale form whose image part never ends within the body. */
const UPSCALE: OversizeRequest = {
  headers: { ...auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
  prefix: Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n`),
};
const START: OversizeRequest = { headers: { ...auth, 'content-type': 'application/json' }, prefix: Buffer.from('{"params":{"x":"') };

let proc: MediagateProcess | undefined;
let workerUrl: string;
let frame: Buffer;

before(async () => {
  frame = await clipFrame(20, 64, 36);
  const port = await freePort();
  workerUrl = `http://127.0.0.1:${port}`;
  proc = spawnMediagate('ai-worker', {
    MEDIAGATE_AI_WORKER_PORT: String(port), MEDIAGATE_AI_WORKER_TOKEN: TOKEN, MEDIAGATE_AI_WORKER_MODELS: 'esrgan-slim-x2',
    MEDIAGATE_AI_WORKER_CAPACITY: '1', MEDIAGATE_AI_WORKER_MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES), MEDIAGATE_AI_WORKER_LIVE_CAPACITY: '1',
  });
  await waitForHttp(`${workerUrl}/health`, proc, 60_000);
  // The upscale body is read once a slot is taken, so only when the models are loaded.
  const deadline = Date.now() + 120_000;
  while ((await health()) !== 'IDLE') {
    if (Date.now() > deadline) throw new Error(`the worker's models did not load: ${proc.lines.slice(-5).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  await proc?.stop();
});

function limitMessage(bytes: number): string {
  return `request body is larger than ${bytes} bytes`;
}

/** Asserts that every outcome is the 413 `{"detail":{"msg"}}` naming `limitBytes`; `what` names the client. */
function assertAll413(outcomes: readonly Outcome[], limitBytes: number, what: string): void {
  const failed = notAnswered(outcomes, 413);
  assert.deepEqual(failed, [], `${what}: ${failed.length} of ${outcomes.length} tries did not get the 413`);
  for (const o of outcomes) assert.deepEqual(JSON.parse(o.body!), { detail: { msg: limitMessage(limitBytes) } }, what);
}

/** Sends `body` to `url` with node:http on `agent` (Content-Length declared). */
function rawRequest(url: string, body: Buffer, headers: Record<string, string>, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function health(): Promise<string> {
  return ((await (await fetch(`${workerUrl}/health`)).json()) as { status: string }).status;
}

/** Ten tries of each client against `path` (node:http's on `agent`), then asserts that every one got the 413 naming `limitBytes`. */
async function refuseEveryTry(path: string, request: OversizeRequest, limitBytes: number, diagnostic: (msg: string) => void, agent: Agent): Promise<void> {
  const url = `${workerUrl}${path}`;
  const fetched: Outcome[] = [];
  for (let i = 0; i < TRIES; i++) fetched.push(await fetchChunked(url, BODY_BYTES, request));
  diagnostic(`${path} fetch, chunked: ${JSON.stringify(fetched.map((o) => o.status ?? o.error))}`);
  const raw: RawOutcome[] = [];
  for (let i = 0; i < TRIES; i++) raw.push(await rawChunked(url, BODY_BYTES, agent, request));
  diagnostic(`${path} node:http, chunked: ${JSON.stringify(raw.map((o) => o.status ?? o.error))}; on a reused connection: ${raw.filter((o) => o.reusedSocket).length} of ${TRIES}; closed after the answer: ${raw.filter((o) => o.status !== undefined && o.error).length}`);
  const declared: Outcome[] = [];
  for (let i = 0; i < TRIES; i++) declared.push(await fetchDeclared(url, BODY_BYTES, request));
  diagnostic(`${path} fetch, Content-Length: ${JSON.stringify(declared.map((o) => o.status ?? o.error))}`);
  assertAll413(fetched, limitBytes, `${path} fetch, chunked`);
  assertAll413(raw, limitBytes, `${path} node:http, chunked`);
  assertAll413(declared, limitBytes, `${path} fetch, Content-Length`);
}

test('an upscale body over the limit gets the 413 every time, from fetch and from node:http; the next upscale is served', { timeout: 180_000 }, async (t) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await refuseEveryTry('/upscale', UPSCALE, UPSCALE_LIMIT_BYTES, (m) => t.diagnostic(m), agent);
    assert.equal(await health(), 'IDLE', 'no slot is held by a refused upscale');
    // The same client (its kept-alive connection, if the worker kept it) upscales a frame.
    const form = new Request('http://form.invalid/', { method: 'POST', body: uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x2' }, { data: frame }) });
    const normal = await rawRequest(`${workerUrl}/upscale`, Buffer.from(await form.arrayBuffer()), { ...auth, 'content-type': form.headers.get('content-type')! }, agent);
    assert.equal(normal.status, 200, normal.body);
    assert.match(normal.body, /"url":"data:image\/png;base64,/);
  } finally {
    agent.destroy();
  }
});

test('a live start body over 1 MiB gets the 413 every time, starts no stream, and the next start is served', { timeout: 180_000 }, async (t) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await refuseEveryTry('/live-video-to-video', START, START_LIMIT_BYTES, (m) => t.diagnostic(m), agent);
    assert.equal(await health(), 'IDLE', 'no refused start runs a stream');
    const normal = await rawRequest(`${workerUrl}/live-video-to-video`, Buffer.from('{"stream_id":"after-refusals"}'), { ...auth, 'content-type': 'application/json' }, agent);
    assert.equal(normal.status, 200, normal.body);
    const reply = JSON.parse(normal.body) as { publish_url: string; manifest_id: string };
    assert.equal(await health(), 'OK', 'the served start runs its stream');
    assert.deepEqual(logLines(proc!, 'live stream started').map((l) => l['manifestID']), [reply.manifest_id], 'only the served start started a stream');
    // Its publisher closing (DELETE of publish_url) ends the stream.
    assert.equal((await fetch(reply.publish_url, { method: 'DELETE' })).status, 200);
    const deadline = Date.now() + 30_000;
    while ((await health()) !== 'IDLE' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await health(), 'IDLE', 'the served stream ended with its input');
  } finally {
    agent.destroy();
  }
});

test('a client that never stops writing gets the 413, then the worker closes its connection', { timeout: 60_000 }, async (t) => {
  for (const [path, request, limitBytes] of [['/upscale', UPSCALE, UPSCALE_LIMIT_BYTES], ['/live-video-to-video', START, START_LIMIT_BYTES]] as const) {
    const o = await endlessChunked(`${workerUrl}${path}`, request);
    t.diagnostic(`${path}: written when answered: ${o.writtenAtAnswer === undefined ? '-' : `${(o.writtenAtAnswer / 1024 / 1024).toFixed(1)} MiB`}, in all ${(o.written / 1024 / 1024).toFixed(0)} MiB, ended by ${o.error ?? 'a close'}`);
    assert.match(o.head ?? '', /^HTTP\/1\.1 413 /, `${path} answered: ${o.head ?? o.error}`);
    assert.deepEqual(JSON.parse(o.body ?? '{}'), { detail: { msg: limitMessage(limitBytes) } }, path);
    assert.ok(o.written > o.writtenAtAnswer!, `${path}: the body was still being written (and read) after the answer`);
  }
  assert.equal(await health(), 'IDLE', 'the worker is up and holds no slot');
  assert.equal(proc!.child.exitCode, null, 'the worker process still runs');
});
