/**
 * An AI upload over its field's limit (`ai.maxImageBytes`, here 1 MiB) against a gateway
 * process (real redis-server, a fake ai-runner worker in this process; the gateway in a
 * process apart, since a server sharing the client's event loop answers before any reset can
 * show) over real HTTP on 127.0.0.1: an
 * `/upscale` multipart form whose `image` is 8 MiB, sent while the answer may already be on
 * its way (test/helpers/oversize-body.ts), chunked from undici's fetch and from node:http
 * writing 64 KiB chunks, and with a Content-Length from fetch. Each gets the 413
 * `PAYLOAD_TOO_LARGE` naming the field and its limit, every time in ten tries each, instead of
 * EPIPE/ECONNRESET (the rest of the body is read and dropped while the answer goes out); the
 * same client's next upscale is served; no worker was called for a refused upload and no
 * upload file is left. A client that never ends its body gets the 413 while it writes (multer
 * alone would answer only at the body's end) and is cut off after the linger.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { solidPng } from '../../helpers/png.ts';
import { endlessChunked, fetchChunked, fetchDeclared, notAnswered, rawChunked, type Outcome, type OversizeRequest, type RawOutcome } from '../../helpers/oversize-body.ts';

const LIMIT_BYTES = 1024 * 1024;
const BODY_BYTES = 8 * LIMIT_BYTES;
const TRIES = 10;
const LIMIT_MESSAGE = `image: the upload exceeds the limit of ${LIMIT_BYTES} bytes (ai.maxImageBytes)`;
const BOUNDARY = 'mguploadlimit';
/** An upscale form: a prompt, then an `image` part (a PNG's first bytes) that goes on past the body's end. */
const UPLOAD: OversizeRequest = {
  headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
  prefix: Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n`
      + `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n`),
    solidPng(16, 16),
  ]),
};

const gateway = gatewayForSuite({ MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_AI_MAX_IMAGE_BYTES: String(LIMIT_BYTES) });
let worker: FakeAiWorker;

before(async () => {
  await gateway.ready;
  worker = await startFakeAiWorker();
  const res = await fetch(`${gateway.httpUrl}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: worker.url, pipelines: [{ pipeline: 'upscale', model_id: 'stabilityai/stable-diffusion-x4-upscaler', warm: true, capacity: 2 }] }),
  });
  assert.equal(res.status, 201, await res.text());
});

after(async () => {
  await worker?.close();
});

function assertAll413(outcomes: readonly Outcome[], what: string): void {
  const failed = notAnswered(outcomes, 413);
  assert.deepEqual(failed, [], `${what}: ${failed.length} of ${outcomes.length} tries did not get the 413`);
  for (const o of outcomes) assert.deepEqual(JSON.parse(o.body!), { detail: { msg: LIMIT_MESSAGE, code: 'PAYLOAD_TOO_LARGE' } }, what);
}

/** POSTs a small upscale form with node:http on `agent` (Content-Length declared). */
async function rawUpscale(agent: Agent): Promise<{ status: number; body: string }> {
  const form = new FormData();
  form.append('prompt', 'x');
  form.append('image', new Blob([solidPng(16, 16)], { type: 'image/png' }), 'in.png');
  const encoded = new Request('http://form.invalid/', { method: 'POST', body: form });
  const body = Buffer.from(await encoded.arrayBuffer());
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gateway.httpUrl}/upscale`, {
      method: 'POST', agent, headers: { 'content-type': encoded.headers.get('content-type')!, 'content-length': String(body.length) },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function uploadFiles(): string[] {
  const dir = join(gateway.deployment.dataDir, 'work', 'uploads');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Asserts that the uploads dir empties (the served upload's file goes once its request is over), polling for up to 10 s. */
async function assertNoUploadFiles(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (uploadFiles().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(uploadFiles(), [], 'no upload file is left');
}

test('an image upload over the limit gets the 413 naming the field every time, from fetch and from node:http; nothing is left', { timeout: 180_000 }, async (t) => {
  const url = `${gateway.httpUrl}/upscale`;
  const fetched: Outcome[] = [];
  for (let i = 0; i < TRIES; i++) fetched.push(await fetchChunked(url, BODY_BYTES, UPLOAD));
  t.diagnostic(`fetch, chunked: ${JSON.stringify(fetched.map((o) => o.status ?? o.error))}`);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const raw: RawOutcome[] = [];
    for (let i = 0; i < TRIES; i++) raw.push(await rawChunked(url, BODY_BYTES, agent, UPLOAD));
    t.diagnostic(`node:http, chunked: ${JSON.stringify(raw.map((o) => o.status ?? o.error))}; written when answered (KiB): ${raw.map((o) => o.writtenAtAnswer === undefined ? '-' : o.writtenAtAnswer / 1024).join(', ')}; on a reused connection: ${raw.filter((o) => o.reusedSocket).length} of ${TRIES}`);
    const declared: Outcome[] = [];
    for (let i = 0; i < TRIES; i++) declared.push(await fetchDeclared(url, BODY_BYTES, UPLOAD));
    t.diagnostic(`fetch, Content-Length: ${JSON.stringify(declared.map((o) => o.status ?? o.error))}`);

    assertAll413(fetched, 'fetch, chunked');
    assertAll413(raw, 'node:http, chunked');
    assertAll413(declared, 'fetch, Content-Length');
    assert.equal(worker.calls.filter((c) => c.path === '/upscale').length, 0, 'no refused upload reached the worker');

    // The same client (its kept-alive connection, if the gateway kept it) upscales a small image.
    const normal = await rawUpscale(agent);
    assert.equal(normal.status, 200, normal.body);
    assert.equal(worker.calls.filter((c) => c.path === '/upscale').length, 1);
  } finally {
    agent.destroy();
  }
  await assertNoUploadFiles();
});

test('an upload that never ends gets the 413 while it is still being written, then its connection is closed; the gateway serves the next one', { timeout: 60_000 }, async (t) => {
  const upscales = (): number => worker.calls.filter((c) => c.path === '/upscale').length;
  const callsBefore = upscales();
  const o = await endlessChunked(`${gateway.httpUrl}/upscale`, UPLOAD);
  t.diagnostic(`written when answered: ${o.writtenAtAnswer === undefined ? '-' : `${(o.writtenAtAnswer / 1024 / 1024).toFixed(1)} MiB`}, in all ${(o.written / 1024 / 1024).toFixed(0)} MiB, ended by ${o.error ?? 'a close'}`);
  assert.match(o.head ?? '', /^HTTP\/1\.1 413 /, `answered: ${o.head ?? o.error}`);
  assert.deepEqual(JSON.parse(o.body ?? '{}'), { detail: { msg: LIMIT_MESSAGE, code: 'PAYLOAD_TOO_LARGE' } });
  assert.ok(o.written > o.writtenAtAnswer!, 'the body was still being written (and read) after the answer');
  assert.equal(upscales(), callsBefore, 'the refused upload reached no worker');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const normal = await rawUpscale(agent);
    assert.equal(normal.status, 200, normal.body);
    assert.equal(upscales(), callsBefore + 1);
  } finally {
    agent.destroy();
  }
  await assertNoUploadFiles();
});
