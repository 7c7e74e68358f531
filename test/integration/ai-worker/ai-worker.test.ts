/**
 * The reference AI worker on its own: real HTTP on 127.0.0.1, real ESRGAN models in
 * TensorFlow.js wasm threads, real frames from the clip in test/fixtures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadAiWorkerConfig } from '../../../src/ai-worker/config.ts';
import { startAiWorker, type RunningAiWorker } from '../../../src/ai-worker/ai-worker.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { clipFrame, dataUrlBytes, rawPixels, uploadForm } from './images.ts';

const TOKEN = 'worker-test-token';
/** 160×90 = 14,400 pixels fit; 200×150 = 30,000 do not. */
const MAX_INPUT_PIXELS = 20_000;

let worker: RunningAiWorker;
let openGate!: () => void;
let frame: Buffer; // 160x90 PNG from the clip

before(async () => {
  frame = await clipFrame(20, 160, 90);
  const config = loadAiWorkerConfig({
    overrides: { port: 0, token: TOKEN, models: ['esrgan-slim-x2', 'esrgan-slim-x4'], capacity: 1, maxInputPixels: MAX_INPUT_PIXELS, logLevel: 'silent' },
  });
  worker = await startAiWorker(config, createLogger({ level: 'silent' }), { loadGate: new Promise<void>((resolve) => { openGate = resolve; }) });
});

after(async () => {
  openGate?.();
  await worker?.close();
});

const auth = { authorization: `Bearer ${TOKEN}` };

async function health(base = worker.url): Promise<string> {
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { status: string }).status;
}

function upscale(form: FormData, headers: Record<string, string> = auth, signal?: AbortSignal): Promise<Response> {
  return fetch(`${worker.url}/upscale`, { method: 'POST', headers, body: form, ...(signal ? { signal } : {}) });
}

async function waitForHealth(status: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await health()) !== status) {
    if (Date.now() > deadline) throw new Error(`health did not become ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function detail(res: Response): Promise<unknown> {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  return ((await res.json()) as { detail: unknown }).detail;
}

test('health says LOADING until the models are loaded, then IDLE; upscales meanwhile get 503', async () => {
  assert.equal(await health(), 'LOADING');
  const early = await upscale(uploadForm({ prompt: 'x' }, { data: frame }));
  assert.equal(early.status, 503);
  assert.ok(Number(early.headers.get('retry-after')) > 0);
  assert.deepEqual(await detail(early), { msg: 'the models are still loading' });
  openGate();
  assert.equal(await worker.pool.ready, 'READY');
  assert.equal(await health(), 'IDLE');
});

test('an upscale answers a PNG data URL exactly scale× the input, with the request seed and nsfw false', async () => {
  const res = await upscale(uploadForm({ prompt: 'a bird', model_id: 'esrgan-slim-x2', seed: '42', safety_check: 'true', num_inference_steps: '75' }, { data: frame }));
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { images: { url: string; seed: number; nsfw: boolean }[] };
  assert.equal(body.images.length, 1);
  assert.equal(body.images[0]!.seed, 42);
  assert.equal(body.images[0]!.nsfw, false);
  const png = dataUrlBytes(body.images[0]!.url);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 320, 180, 3]);

  // Empty model_id: the default, x4 (seed chosen by the worker and reported).
  const res4 = await upscale(uploadForm({ prompt: '', model_id: '' }, { data: frame }));
  assert.equal(res4.status, 200);
  const body4 = (await res4.json()) as { images: { url: string; seed: number }[] };
  assert.ok(Number.isInteger(body4.images[0]!.seed));
  const meta4 = await sharp(dataUrlBytes(body4.images[0]!.url)).metadata();
  assert.deepEqual([meta4.width, meta4.height], [640, 360]);
});

test('the tiled path gives exactly the untiled result when the overlap covers the receptive field', async () => {
  const input = await rawPixels(sharp(frame).removeAlpha());
  const run = async (scale: 2 | 4, tileSize: number, tileOverlap: number): Promise<{ rgb: Uint8Array; tiles: number }> => {
    const slot = worker.pool.tryAcquire();
    assert.ok(slot, 'a free slot');
    try {
      return await slot.run({ scale, width: input.width, height: input.height, rgb: input.data, tileSize, tileOverlap });
    } finally {
      slot.release();
    }
  };
  // x2: 64 px tiles (40 px cores) → 4 × 3 = 12 tiles; x4: 80 px tiles (56 px cores) → 3 × 2 = 6 tiles.
  for (const [scale, tileSize, tiles] of [[2, 64, 12], [4, 80, 6]] as const) {
    const untiled = await run(scale, 256, 12);
    assert.equal(untiled.tiles, 1);
    const tiled = await run(scale, tileSize, 12);
    assert.equal(tiled.tiles, tiles);
    // Tolerance 0: every kept output pixel has its whole receptive field (radius 10) inside its
    // tile, and wasm float arithmetic is deterministic, so the bytes must be identical.
    assert.ok(Buffer.from(tiled.rgb).equals(Buffer.from(untiled.rgb)), `x${scale}: tiled and untiled outputs differ`);
  }
  // The comparison is sensitive: too little overlap (4 < radius 10) changes pixels at tile seams.
  const seams = await run(2, 64, 4);
  assert.ok(!Buffer.from(seams.rgb).equals(Buffer.from((await run(2, 256, 12)).rgb)));
});

test('a token is required on /upscale (401 in the runner shape) but not on /health', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong-token-000' }, { authorization: TOKEN }] as Record<string, string>[]) {
    const res = await upscale(uploadForm({ prompt: 'x' }, { data: frame }), headers);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.deepEqual(await detail(res), { msg: 'Invalid bearer token.' });
  }
  assert.equal(await health(), 'IDLE');
});

test('bad input gets a clear 4xx in the runner shape and the worker stays up', async () => {
  const notImage = await upscale(uploadForm({ prompt: 'x' }, { data: Buffer.from('this is not an image, just text\n'), type: 'text/plain', name: 'notes.txt' }));
  assert.equal(notImage.status, 415);
  assert.match((await detail(notImage) as { msg: string }).msg, /^image: not an image format/);

  const empty = await upscale(uploadForm({ prompt: 'x' }, { data: new Uint8Array(0) }));
  assert.equal(empty.status, 400);
  assert.deepEqual(await detail(empty), { msg: 'image: the uploaded file is empty' });

  const big = await sharp({ create: { width: 200, height: 150, channels: 3, background: '#336699' } }).png().toBuffer();
  const tooMany = await upscale(uploadForm({ prompt: 'x' }, { data: big }));
  assert.equal(tooMany.status, 413);
  assert.deepEqual(await detail(tooMany), { msg: `image: 200x150 is 30000 pixels, above this worker's limit of ${MAX_INPUT_PIXELS} pixels` });

  const truncated = await upscale(uploadForm({ prompt: 'x' }, { data: frame.subarray(0, Math.floor(frame.length / 2)) }));
  assert.equal(truncated.status, 400);
  assert.match((await detail(truncated) as { msg: string }).msg, /^image: the file could not be decoded/);

  const unknownModel = await upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x3' }, { data: frame }));
  assert.equal(unknownModel.status, 400);
  assert.deepEqual(await detail(unknownModel), {
    msg: 'pipeline configured with esrgan-slim-x2, esrgan-slim-x4, stabilityai/stable-diffusion-x4-upscaler but called with esrgan-slim-x3.',
  });

  const invalid = await upscale(uploadForm({ prompt: 'x', seed: 'abc', safety_check: 'maybe' }));
  assert.equal(invalid.status, 422);
  assert.deepEqual(await detail(invalid), [
    { type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null },
    { type: 'int_parsing', loc: ['body', 'seed'], msg: 'Input should be a valid integer, unable to parse string as an integer', input: 'abc' },
    { type: 'bool_parsing', loc: ['body', 'safety_check'], msg: 'Input should be a valid boolean, unable to interpret input', input: 'maybe' },
  ]);

  const json = await fetch(`${worker.url}/upscale`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"prompt":"x"}' });
  assert.equal(json.status, 400);
  assert.match((await detail(json) as { msg: string }).msg, /multipart\/form-data/);

  assert.equal((await fetch(`${worker.url}/text-to-image`, { method: 'POST', headers: auth, body: '{}' })).status, 404);
  assert.equal((await fetch(`${worker.url}/upscale`, { headers: auth })).status, 405);

  assert.equal(await health(), 'IDLE');
  const ok = await upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x2' }, { data: frame }));
  assert.equal(ok.status, 200, 'the worker still serves');
});

test('beyond capacity a request gets 503 insufficient capacity at once, and health reports OK while one runs', async () => {
  const running = upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x4' }, { data: frame }));
  await waitForHealth('OK', 5000);
  const started = Date.now();
  const refused = await upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x2' }, { data: frame }));
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.deepEqual(await detail(refused), { msg: 'insufficient capacity' });
  assert.ok(Date.now() - started < 1000, 'refused without waiting for the running upscale');
  assert.equal((await running).status, 200);
  await waitForHealth('IDLE', 5000);
});

test('a request its client abandons frees its slot', async () => {
  const controller = new AbortController();
  const abandoned = upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x4' }, { data: frame }), auth, controller.signal);
  await waitForHealth('OK', 5000);
  controller.abort();
  await assert.rejects(abandoned);
  await waitForHealth('IDLE', 10_000);
  assert.equal((await upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x2' }, { data: frame }))).status, 200);
});

test('an image with an alpha channel keeps it, upscaled', async () => {
  const rgba = await sharp(Buffer.from(Uint8Array.from({ length: 40 * 30 * 4 }, (_, i) => (i % 4 === 3 ? (Math.floor(i / 4) % 40) * 6 : 90))), {
    raw: { width: 40, height: 30, channels: 4 },
  }).png().toBuffer();
  const res = await upscale(uploadForm({ prompt: 'x', model_id: 'esrgan-slim-x2' }, { data: rgba }));
  assert.equal(res.status, 200);
  const png = dataUrlBytes(((await res.json()) as { images: { url: string }[] }).images[0]!.url);
  const out = await rawPixels(sharp(png));
  assert.deepEqual([out.width, out.height, out.channels], [80, 60, 4]);
  assert.ok(out.data[3]! < 20 && out.data[(80 - 1) * 4 + 3]! > 200, 'alpha ramps left to right as in the input');
});

test('a worker whose models cannot be loaded reports ERROR and refuses upscales, but keeps answering', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'mg-aiw-nomodels-'));
  const broken = await startAiWorker(loadAiWorkerConfig({ overrides: { port: 0, models: ['esrgan-slim-x2'], logLevel: 'silent' } }), createLogger({ level: 'silent' }), { modelsDir: empty });
  try {
    assert.equal(await broken.pool.ready, 'ERROR');
    assert.equal(await health(broken.url), 'ERROR');
    const res = await fetch(`${broken.url}/upscale`, { method: 'POST', body: uploadForm({ prompt: 'x' }, { data: frame }) });
    assert.equal(res.status, 503);
    assert.match((await detail(res) as { msg: string }).msg, /^the models failed to load: cannot read .*x2\/model\.json/);
    assert.equal(await health(broken.url), 'ERROR');
  } finally {
    await broken.close();
    rmSync(empty, { recursive: true, force: true });
  }
});
