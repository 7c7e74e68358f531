/**
 * End to end: the gateway in-process (real HTTP, a private redis-server) and the reference
 * AI worker running real ESRGAN, which registers itself with the gateway. A real frame from
 * the clip goes through `POST /upscale` on the gateway.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { freePort } from '../../helpers/ports.ts';
import { appForSuite } from '../../helpers/suite-setup.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { startApp, type RunningApp } from '../../../src/app.ts';
import { loadAiWorkerConfig } from '../../../src/ai-worker/config.ts';
import { startAiWorker, type RunningAiWorker } from '../../../src/ai-worker/ai-worker.ts';
import { clipFrame, lanczosUpscale, psnr, rawPixels, uploadForm } from './images.ts';

const ADMIN_TOKEN = 'gateway-admin-token-for-tests';
const WORKER_TOKEN = 'worker-token-for-tests';
/** The worker's pixel limit: the 160×90 frame (14,400 px) fits, 200×150 (30,000 px) does not. */
const WORKER_MAX_INPUT_PIXELS = 20_000;

/**
 * PSNR floor of the ESRGAN x2 output against a Lanczos-3 upscale of the same input, dB.
 * Measured on this machine with 160×90 frames of the clip (ffmpeg Lanczos scaling) at
 * 5, 12, 20, 27, 35, 42, 50 and 57 s: 28.9–35.8 dB (31.65 dB for the 20 s frame used here).
 * Wrong outputs measured against the same references: another frame of the clip 4–10 dB,
 * red and blue swapped 13–20 dB, the right output shifted by 4 output pixels 17–26 dB, flat
 * grey 9–13 dB. 28 dB passes every real output and fails every one of those.
 */
const MIN_PSNR_VS_LANCZOS_DB = 28;
/**
 * The network must beat Lanczos at recovering the real 320×180 frame from its 160×90
 * version, by at least this much, dB. Measured gain on the eight frames above: 0.85–2.83 dB
 * (2.83 dB at 20 s). A resize, whatever its kernel, cannot do this; a network that ran does.
 */
const MIN_SR_GAIN_DB = 0.5;

let restarted: RunningApp | undefined; // the gateway of the restart test
let base: string;
let worker: RunningAiWorker;
const logger = createLogger({ level: 'silent' });

// Registered before the gateway's hooks, so it runs before the gateway is torn down: the
// worker leaves the gateway while it is up, and a restarted gateway closes before Redis stops.
after(async () => {
  await worker?.close();
  await restarted?.close();
});

const gateway = appForSuite(async () => ({
  // fixed, so the gateway can be restarted at the same address
  http: { port: await freePort(), adminToken: ADMIN_TOKEN }, rtmp: { enabled: false }, transcode: { embedded: false },
  redis: { keyPrefix: 'aiwtest' },
  ai: { healthIntervalMs: 300 },
}));

before(async () => {
  await gateway.ready;
  base = gateway.httpUrl;
  worker = await startAiWorker(loadAiWorkerConfig({
    overrides: {
      port: 0, token: WORKER_TOKEN, gatewayUrl: base, gatewayAdminToken: ADMIN_TOKEN, registerIntervalMs: 500,
      models: ['esrgan-slim-x2', 'esrgan-slim-x4'], capacity: 1, maxInputPixels: WORKER_MAX_INPUT_PIXELS, logLevel: 'silent',
      liveCapacity: 0, // upscale only here; the live pipeline's registration is covered in live-video-to-video.test.ts
    },
  }), logger);
});

interface ListedWorker { id: string; url: string; healthy: boolean; status: string; pipelines: { pipeline: string; model_id: string; warm: boolean; capacity: number }[] }

async function listed(): Promise<ListedWorker | undefined> {
  const res = await fetch(`${base}/api/workers`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { workers: ListedWorker[] }).workers.find((w) => w.url === worker.publicUrl);
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const healthyAndWarm = async (): Promise<ListedWorker | false> => {
  const w = await listed();
  return w !== undefined && w.healthy && w.pipelines.every((p) => p.warm) ? w : false;
};

function gatewayUpscale(fields: Record<string, string>, image: Buffer): Promise<Response> {
  return fetch(`${base}/upscale`, { method: 'POST', body: uploadForm(fields, { data: image }) });
}

async function resultPng(res: Response): Promise<Buffer> {
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { images: { url: string; seed: number; nsfw: boolean }[] };
  assert.equal(body.images.length, 1);
  assert.equal(body.images[0]!.nsfw, false);
  assert.ok(body.images[0]!.url.startsWith(`${base}/stream/`), 'the result is re-hosted by the gateway');
  const fetched = await fetch(body.images[0]!.url);
  assert.equal(fetched.status, 200);
  assert.equal(fetched.headers.get('content-type'), 'image/png');
  return Buffer.from(await fetched.arrayBuffer());
}

test('the worker registers itself with its models, warm and with its capacity, and the gateway finds it healthy', async () => {
  const w = await waitFor('worker registered, healthy and warm', healthyAndWarm, 20_000);
  assert.deepEqual(w.pipelines.map((p) => [p.pipeline, p.model_id, p.warm, p.capacity]), [
    ['upscale', 'esrgan-slim-x2', true, 1],
    ['upscale', 'esrgan-slim-x4', true, 1],
    ['upscale', 'stabilityai/stable-diffusion-x4-upscaler', true, 1],
  ]);
  assert.ok(['OK', 'IDLE'].includes(w.status));
});

test('POST /upscale through the gateway turns a real frame into a PNG exactly 2x its size that a real network made', async (t) => {
  await waitFor('worker ready', healthyAndWarm, 20_000);
  const input = await clipFrame(20, 160, 90);
  const truth = await rawPixels(await clipFrame(20, 320, 180)); // the same frame, really at 320×180

  const png = await resultPng(await gatewayUpscale({ prompt: 'sharper', model_id: 'esrgan-slim-x2', seed: '7' }, input));
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 320, 180]);

  const output = await rawPixels(sharp(png).removeAlpha());
  const lanczos = await lanczosUpscale(input, 2);
  const vsLanczos = psnr(output, lanczos);
  assert.ok(vsLanczos >= MIN_PSNR_VS_LANCZOS_DB, `PSNR vs Lanczos ${vsLanczos.toFixed(2)} dB >= ${MIN_PSNR_VS_LANCZOS_DB} dB`);
  assert.ok(vsLanczos < 45, `the output is not just a Lanczos resize (${vsLanczos.toFixed(2)} dB)`);
  const gain = psnr(output, truth) - psnr(lanczos, truth);
  t.diagnostic(`PSNR vs Lanczos ${vsLanczos.toFixed(2)} dB; vs the real frame: ESRGAN ${psnr(output, truth).toFixed(2)} dB, Lanczos ${psnr(lanczos, truth).toFixed(2)} dB`);
  assert.ok(gain >= MIN_SR_GAIN_DB, `ESRGAN beats Lanczos against the real 320x180 frame by ${gain.toFixed(2)} dB (>= ${MIN_SR_GAIN_DB})`);
});

test("an upscale without model_id (the gateway's default model) is served by ESRGAN x4", async (t) => {
  const input = await clipFrame(35, 160, 90);
  const png = await resultPng(await gatewayUpscale({ prompt: 'x' }, input));
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [640, 360]);
  const vsLanczos = psnr(await rawPixels(sharp(png).removeAlpha()), await lanczosUpscale(input, 4));
  t.diagnostic(`x4 PSNR vs Lanczos ${vsLanczos.toFixed(2)} dB`);
  assert.ok(vsLanczos >= MIN_PSNR_VS_LANCZOS_DB, `x4 PSNR vs Lanczos ${vsLanczos.toFixed(2)} dB`);
});

test("an image above the worker's pixel limit reaches the client as 400 with the worker's reason", async () => {
  const big = await sharp({ create: { width: 200, height: 150, channels: 3, background: '#446688' } }).png().toBuffer();
  const res = await gatewayUpscale({ prompt: 'x', model_id: 'esrgan-slim-x2' }, big);
  assert.equal(res.status, 400);
  const body = (await res.json()) as { detail: { msg: string } };
  assert.match(body.detail.msg, /200x150 is 30000 pixels, above this worker's limit of 20000 pixels/);
  assert.ok(await healthyAndWarm(), 'a bad request does not count against the worker');
});

test('after a gateway restart the worker registers again by itself', async () => {
  await gateway.app.close();
  // Restarted on an empty pool (as with a new Redis): the gateways' worker pool lives in Redis,
  // so a restart on the same Redis would find the worker still registered.
  // A key prefix nothing has used is an empty pool by construction. Asking the new gateway for
  // its workers right after it starts raced the worker's own retry, which may register first
  // (CI saw 1 worker there): that check said nothing about re-registration, so it is gone;
  // the worker appearing in this pool at all is the proof.
  restarted = await startApp({ ...gateway.config, redis: { ...gateway.config.redis, keyPrefix: 'aiwtest-restarted' } }, logger, 'gateway');
  await waitFor('worker registered with the restarted gateway', healthyAndWarm, 10_000);
  const png = await resultPng(await gatewayUpscale({ prompt: 'x', model_id: 'esrgan-slim-x2' }, await clipFrame(50, 96, 54)));
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [192, 108]);
});

test('a worker that shuts down removes itself from the gateway', async () => {
  assert.ok(await listed());
  await worker.close();
  assert.equal(await listed(), undefined);
});
