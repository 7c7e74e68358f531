/**
 * Large AI uploads against a real gateway process: 8 parallel 45 MB `/upscale` uploads go
 * to disk and stream on to a worker, so the gateway's memory (VmRSS/VmHWM from
 * /proc/<pid>/status) stays bounded and returns near its baseline; per-field limits refuse
 * an upload with a 413 naming the field while it arrives; nothing is left in the work dir
 * after success, 413, a wrong field, or a client abort; an upload is one file in the private
 * uploads dir, no directory per request.
 *
 * The worker here is a byte sink in this process (it counts the upload and answers with a
 * small PNG), so its memory is not the gateway's. The uploaded image is a real 16×16 PNG
 * followed by 45 MB of padding: the gateway recognizes images by their header only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { solidPng } from '../../helpers/png.ts';

const MiB = 1024 * 1024;
const MAX_IMAGE_BYTES = 50 * MiB;
const MAX_AUDIO_BYTES = 1 * MiB;
const UPLOAD_BYTES = 45 * 1000 * 1000;
const PARALLEL = 8;
/** Bounds: buffering the uploads in memory (the old behaviour) needs ≥ 8 × 45 MB = 360 MB. */
const PEAK_GROWTH_BOUND_BYTES = 150 * MiB;
const SETTLED_GROWTH_BOUND_BYTES = 64 * MiB;

let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let sink: Server;
const received: number[] = [];

before(async () => {
  redis = await startRedis();
  const answer = JSON.stringify({ images: [{ url: `data:image/png;base64,${solidPng(32, 32).toString('base64')}`, seed: 1, nsfw: false }] });
  sink = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"OK"}');
      return;
    }
    let bytes = 0;
    req.on('data', (d: Buffer) => { bytes += d.length; });
    req.on('end', () => {
      received.push(bytes);
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_LOG_LEVEL: 'info',
    MEDIAGATE_AI_MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES), MEDIAGATE_AI_MAX_AUDIO_BYTES: String(MAX_AUDIO_BYTES),
    MEDIAGATE_AI_ATTEMPT_TIMEOUT_MS: '120000', MEDIAGATE_AI_TOTAL_BUDGET_MS: '180000',
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  const res = await fetch(`${deployment.httpUrl}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}`,
      pipelines: [
        { pipeline: 'upscale', model_id: 'stabilityai/stable-diffusion-x4-upscaler', warm: true, capacity: PARALLEL },
        { pipeline: 'audio-to-text', model_id: 'openai/whisper-large-v3', warm: true, capacity: 1 },
      ],
    }),
  });
  assert.equal(res.status, 201, await res.text());
});

after(async () => {
  await gateway?.stop();
  await new Promise((r) => sink?.close(r));
  await redis?.stop();
  deployment?.cleanup();
});

const BOUNDARY = 'mgmemtest';

/** Streams a multipart upload of `file` (in `field`) to `path`; `abortAfterBytes` cuts the connection. */
function upload(path: string, field: string, file: Buffer, options: { abortAfterBytes?: number; beforeAbort?: () => void; contentType?: string } = {}): Promise<{ status: number; body: string } | undefined> {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n`
    + `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${field}"; filename="in"\r\nContent-Type: ${options.contentType ?? 'image/png'}\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = request(`${deployment.httpUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': head.length + file.length + tail.length },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => (options.abortAfterBytes !== undefined ? resolve(undefined) : reject(err)));
    req.write(head);
    if (options.abortAfterBytes !== undefined) {
      req.write(file.subarray(0, options.abortAfterBytes), () => setTimeout(() => { options.beforeAbort?.(); req.destroy(); resolve(undefined); }, 500));
      return;
    }
    req.write(file);
    req.end(tail);
  });
}

function memory(): { rssBytes: number; hwmBytes: number } {
  const status = readFileSync(`/proc/${gateway.child.pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
}

function uploadsDir(): string {
  return join(deployment.dataDir, 'work', 'uploads');
}

function leftovers(): string[] {
  const dir = uploadsDir();
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : [];
}

async function waitForNoLeftovers(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (leftovers().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(leftovers(), [], 'no upload file or directory left in the work dir');
}

const mb = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;

test(`${PARALLEL} parallel 45 MB uploads stay under a memory bound, reach the worker whole, and leave nothing behind`, { timeout: 240_000 }, async (t) => {
  const png = solidPng(16, 16);
  const warm = await upload('/upscale', 'image', png);
  assert.equal(warm?.status, 200, warm?.body);
  await new Promise((r) => setTimeout(r, 2000));
  const baseline = memory();

  const big = Buffer.concat([png, Buffer.alloc(UPLOAD_BYTES - png.length, 0x5a)]);
  received.length = 0;
  const answers = await Promise.all(Array.from({ length: PARALLEL }, () => upload('/upscale', 'image', big)));
  for (const a of answers) assert.equal(a?.status, 200, a?.body);
  assert.equal(received.length, PARALLEL);
  for (const bytes of received) assert.ok(bytes > UPLOAD_BYTES, `the worker got the whole upload (${bytes} bytes)`);
  const peak = memory();

  await new Promise((r) => setTimeout(r, 5000));
  const settled = memory();
  const peakGrowth = peak.hwmBytes - baseline.rssBytes;
  const settledGrowth = settled.rssBytes - baseline.rssBytes;
  t.diagnostic(`gateway RSS baseline ${mb(baseline.rssBytes)} (HWM ${mb(baseline.hwmBytes)}), peak HWM ${mb(peak.hwmBytes)} (+${mb(peakGrowth)}), settled RSS ${mb(settled.rssBytes)} (+${mb(settledGrowth)})`);
  assert.ok(peakGrowth < PEAK_GROWTH_BOUND_BYTES, `peak grew by ${mb(peakGrowth)} (bound ${mb(PEAK_GROWTH_BOUND_BYTES)})`);
  assert.ok(settledGrowth < SETTLED_GROWTH_BOUND_BYTES, `settled RSS grew by ${mb(settledGrowth)} (bound ${mb(SETTLED_GROWTH_BOUND_BYTES)})`);
  await waitForNoLeftovers();
});

test('per-field limits refuse an upload with 413 naming the field; a file in the wrong field is 400; nothing is left', { timeout: 120_000 }, async () => {
  const png = solidPng(16, 16);
  const tooBigImage = await upload('/upscale', 'image', Buffer.concat([png, Buffer.alloc(MAX_IMAGE_BYTES + MiB, 1)]));
  assert.equal(tooBigImage?.status, 413, tooBigImage?.body);
  assert.match(JSON.parse(tooBigImage!.body).detail.msg, new RegExp(`^image: .*${MAX_IMAGE_BYTES} bytes`));

  // The audio limit (1 MiB) applies to audio while the image limit is 50 MiB.
  const tooBigAudio = await upload('/audio-to-text', 'audio', Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVEfmt '), Buffer.alloc(2 * MiB, 0)]), { contentType: 'audio/wav' });
  assert.equal(tooBigAudio?.status, 413, tooBigAudio?.body);
  assert.match(JSON.parse(tooBigAudio!.body).detail.msg, new RegExp(`^audio: .*${MAX_AUDIO_BYTES} bytes`));

  const wrongField = await upload('/upscale', 'audio', png);
  assert.equal(wrongField?.status, 400, wrongField?.body);
  assert.match(JSON.parse(wrongField!.body).detail.msg, /^audio: unexpected file field/);
  await waitForNoLeftovers();
});

test('a client that aborts mid-upload leaves nothing in the work dir', { timeout: 60_000 }, async () => {
  const big = Buffer.concat([solidPng(16, 16), Buffer.alloc(UPLOAD_BYTES, 1)]);
  let during: string[] = [];
  await upload('/upscale', 'image', big, { abortAfterBytes: 10_000_000, beforeAbort: () => { during = leftovers(); } });
  // One file per upload straight in the private uploads dir, named with the gateway's pid for
  // the startup sweep; no directory per request.
  assert.equal(during.length, 1, `the partial upload was on disk before the abort, as one file (${during.join(', ')})`);
  assert.match(during[0]!, new RegExp(`^upload-${gateway.child.pid}-[0-9a-f]{32}$`));
  assert.equal(statSync(join(uploadsDir(), during[0]!)).isFile(), true, 'the upload is a file, not a directory');
  assert.equal(statSync(uploadsDir()).mode & 0o777, 0o700, 'the uploads dir is private');
  await waitForNoLeftovers();
  assert.equal((await fetch(`${deployment.httpUrl}/healthz`)).status, 200);
  const errors = gateway.lines.filter((l) => l.includes('"level":50'));
  assert.deepEqual(errors, [], 'no error-level log lines');
});
