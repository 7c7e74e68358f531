/**
 * The AI gateway end to end in-process: real HTTP on 127.0.0.1, a real redis-server, and
 * fake ai-runner workers (real HTTP servers answering with real, decodable media) that can be
 * told to fail, stall, answer 400 or report insufficient capacity.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAiWorker, FAKE_BAD_REQUEST_MESSAGE, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { solidPng, pngSize } from '../../helpers/png.ts';
import { appForSuite } from '../../helpers/suite-setup.ts';

// attemptTimeoutMs: long enough for the fake worker's slowest answer (8 PNG frames of
// image-to-video) on a busy machine, where 1.5 s was seen to cut it off; short enough that
// the stalled-worker test fails over well within the 10 s budget.
const gateway = appForSuite({
  rtmp: { enabled: false }, transcode: { embedded: false }, redis: { keyPrefix: 'aitest' },
  ai: { healthIntervalMs: 300, suspendBaseMs: 1500, attemptTimeoutMs: 4000, totalBudgetMs: 10_000, queueWaitMs: 20_000, maxImageBytes: 200_000 },
});
let base: string;
const workers: FakeAiWorker[] = [];
let a: FakeAiWorker; // text-to-image sdxl-turbo, warm, capacity 2
let b: FakeAiWorker; // text-to-image sdxl-turbo, cold, capacity 3; also the only one serving other pipelines
let c: FakeAiWorker; // text-to-image "other/model" only

before(async () => {
  await gateway.ready;
  a = await startFakeAiWorker();
  b = await startFakeAiWorker();
  c = await startFakeAiWorker();
  workers.push(a, b, c);
  base = gateway.httpUrl;
  const register = async (w: FakeAiWorker, pipelines: unknown[]): Promise<void> => {
    const res = await fetch(`${base}/api/workers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: w.url, pipelines }) });
    assert.equal(res.status, 201, await res.text());
  };
  await register(a, [{ pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: true, capacity: 2 }]);
  await register(b, [
    { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: false, capacity: 3 },
    ...['image-to-image', 'image-to-video', 'upscale', 'audio-to-text', 'llm', 'segment-anything-2', 'image-to-text', 'text-to-speech']
      .map((pipeline) => ({ pipeline, model_id: DEFAULTS[pipeline]!, warm: true, capacity: 4 })),
  ]);
  await register(c, [{ pipeline: 'text-to-image', model_id: 'other/model', warm: true, capacity: 1 }]);
});

const DEFAULTS: Record<string, string> = {
  'image-to-image': 'stabilityai/sdxl-turbo', 'image-to-video': 'stabilityai/stable-video-diffusion-img2vid-xt', upscale: 'stabilityai/stable-diffusion-x4-upscaler',
  'audio-to-text': 'openai/whisper-large-v3', llm: 'meta-llama/llama-3.1-8B-Instruct', 'segment-anything-2': 'facebook/sam2-hiera-large',
  'image-to-text': 'Salesforce/blip-image-captioning-large', 'text-to-speech': 'parler-tts/parler-tts-large-v1',
};

after(async () => {
  await Promise.all(workers.map((w) => w.close()));
});

beforeEach(() => {
  for (const w of workers) {
    w.setMode('ok');
    w.setHealth('OK');
    w.resetStats();
  }
});

const t2i = (body: Record<string, unknown>): Promise<Response> =>
  fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

function form(fields: Record<string, string>, file?: { field: string; data: Buffer; name?: string; type?: string }): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  if (file) f.append(file.field, new Blob([file.data], { type: file.type ?? 'image/png' }), file.name ?? 'in.png');
  return f;
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('text-to-image returns re-hosted PNG URLs whose bytes are real images of the requested size', async () => {
  const res = await t2i({ prompt: 'a bunny', width: 256, height: 128, num_images_per_prompt: 2, seed: 7 });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { images: { url: string; seed: number; nsfw: boolean }[] };
  assert.equal(body.images.length, 2);
  for (const image of body.images) {
    assert.match(image.url, new RegExp(`^${base}/stream/ai-[0-9a-f]{24}/\\d\\.png$`));
    assert.equal(typeof image.seed, 'number');
    assert.equal(image.nsfw, false);
    const fetched = await fetch(image.url);
    assert.equal(fetched.headers.get('content-type'), 'image/png');
    assert.deepEqual(pngSize(Buffer.from(await fetched.arrayBuffer())), { width: 256, height: 128 });
  }
});

test('requests are routed by model_id to the workers that serve it', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await t2i({ prompt: 'x', model_id: 'other/model', width: 64, height: 64 })).status, 200);
  assert.equal(c.calls.length, 3);
  assert.equal(a.calls.length + b.calls.length, 0);
  assert.equal(c.calls[0]!.fields['model_id'], 'other/model');
});

test('a warm worker is preferred over a cold one while it has capacity', async () => {
  for (let i = 0; i < 4; i++) assert.equal((await t2i({ prompt: 'x', width: 64, height: 64 })).status, 200);
  assert.equal(a.calls.length, 4);
  assert.equal(b.calls.length, 0);
});

test('a failing worker is failed over within the budget, suspended, then readmitted', async () => {
  a.setMode('fail');
  const res = await t2i({ prompt: 'x', width: 64, height: 64 });
  assert.equal(res.status, 200, 'served by the other worker');
  assert.equal(a.calls.length, 1);
  assert.equal(b.calls.length, 1);
  const listed = (await (await fetch(`${base}/api/workers`)).json()) as { workers: { url: string; suspendedUntil?: string }[] };
  assert.ok(listed.workers.find((w) => w.url === a.url)?.suspendedUntil, 'the failing worker is suspended');
  a.setMode('ok');
  await new Promise((r) => setTimeout(r, 1600));
  b.setMode('fail');
  a.resetStats();
  const again = await t2i({ prompt: 'x', width: 64, height: 64 });
  assert.equal(again.status, 200);
  assert.equal(a.calls.length, 1, 'the suspended worker is used again after its suspension');
});

test('a stalled worker times out and the request fails over', async () => {
  a.setMode('stall');
  const started = Date.now();
  const res = await t2i({ prompt: 'x', width: 64, height: 64 });
  assert.equal(res.status, 200);
  assert.ok(Date.now() - started < 8000, 'within the 10 s budget');
  assert.equal(b.calls.length, 1);
  await new Promise((r) => setTimeout(r, 1600)); // let the suspension of a lapse for later tests
});

test('a worker 400 about the request reaches the client as 400 with the worker reason and is not retried', async () => {
  // Both workers reject it: whichever the selector picks first, there must be no second attempt.
  a.setMode('bad-request');
  b.setMode('bad-request');
  const res = await t2i({ prompt: 'x', width: 64, height: 64 });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { detail: { msg: string } }).detail.msg, FAKE_BAD_REQUEST_MESSAGE);
  assert.equal(a.calls.length + b.calls.length, 1, 'not retried on the other worker');
  const listed = (await (await fetch(`${base}/api/workers`)).json()) as { workers: { suspendedUntil?: string }[] };
  assert.ok(listed.workers.every((w) => w.suspendedUntil === undefined), 'a request error does not suspend the worker');
});

test('insufficient capacity is retried on another worker without suspending the first', async () => {
  a.setMode('capacity');
  assert.equal((await t2i({ prompt: 'x', width: 64, height: 64 })).status, 200);
  assert.equal(b.calls.length, 1);
  const listed = (await (await fetch(`${base}/api/workers`)).json()) as { workers: { url: string; suspendedUntil?: string }[] };
  assert.equal(listed.workers.find((w) => w.url === a.url)?.suspendedUntil, undefined);
});

test('50 concurrent requests never push a worker above its capacity', { timeout: 60_000 }, async () => {
  a.setMode({ delayMs: 100 });
  b.setMode({ delayMs: 100 });
  const results = await Promise.all(Array.from({ length: 50 }, () => t2i({ prompt: 'x', width: 64, height: 64 })));
  assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  assert.ok(a.maxInFlight <= 2, `worker a peaked at ${a.maxInFlight} in flight (capacity 2)`);
  assert.ok(b.maxInFlight <= 3, `worker b peaked at ${b.maxInFlight} in flight (capacity 3)`);
  assert.equal(a.calls.length + b.calls.length, 50);
  assert.ok(a.maxInFlight === 2 && b.maxInFlight >= 2, 'both workers were used up to their capacity');
});

test('a model no worker serves gets 503 with Retry-After', async () => {
  const res = await t2i({ prompt: 'x', model_id: 'nobody/serves-this' });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  assert.match(((await res.json()) as { detail: { msg: string } }).detail.msg, /no worker serves text-to-image with model_id "nobody\/serves-this"/);
});

test('an unhealthy worker leaves the pool and returns when healthy', async () => {
  b.setHealth('ERROR');
  await waitFor(async () => ((await (await fetch(`${base}/api/workers`)).json()) as { workers: { url: string; healthy: boolean }[] }).workers.find((w) => w.url === b.url)?.healthy === false, 3000);
  const res = await fetch(`${base}/image-to-text`, { method: 'POST', body: form({}, { field: 'image', data: solidPng(32, 32) }) });
  assert.equal(res.status, 503, 'no healthy worker for image-to-text');
  b.setHealth('OK');
  await waitFor(async () => ((await (await fetch(`${base}/api/workers`)).json()) as { workers: { url: string; healthy: boolean }[] }).workers.find((w) => w.url === b.url)?.healthy === true, 3000);
  assert.equal((await fetch(`${base}/image-to-text`, { method: 'POST', body: form({}, { field: 'image', data: solidPng(32, 32) }) })).status, 200);
});

test('LLM streaming arrives chunk by chunk and ends with [DONE]', async () => {
  const res = await fetch(`${base}/llm`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const arrivals: { at: number; data: string }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(piece, { stream: true });
    let i;
    while ((i = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (event.startsWith('data: ')) arrivals.push({ at: Date.now(), data: event.slice(6) });
    }
  }
  assert.ok(arrivals.length >= 3);
  assert.equal(arrivals[arrivals.length - 1]!.data, '[DONE]', 'the final [DONE] is forwarded');
  assert.ok(arrivals[arrivals.length - 1]!.at - arrivals[0]!.at >= 100, 'chunks were not buffered into one write');
});

test('every multipart and JSON pipeline answers in the gateway shape', { timeout: 60_000 }, async () => {
  const png = solidPng(64, 48);
  const post = (path: string, body: FormData | object) => fetch(`${base}/${path}`, body instanceof FormData
    ? { method: 'POST', body } : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const i2i = (await (await post('image-to-image', form({ prompt: 'x', strength: '0.5' }, { field: 'image', data: png }))).json()) as { images: { url: string }[] };
  assert.deepEqual(pngSize(Buffer.from(await (await fetch(i2i.images[0]!.url)).arrayBuffer())), { width: 64, height: 48 });
  const up = (await (await post('upscale', form({ prompt: 'x' }, { field: 'image', data: png }))).json()) as { images: { url: string }[] };
  assert.deepEqual(pngSize(Buffer.from(await (await fetch(up.images[0]!.url)).arrayBuffer())), { width: 128, height: 96 });
  const i2vRes = await post('image-to-video', form({ fps: '8' }, { field: 'image', data: png }));
  assert.equal(i2vRes.status, 200, await i2vRes.clone().text());
  const i2v = (await i2vRes.json()) as { images: { url: string }[] };
  const mp4 = await fetch(i2v.images[0]!.url);
  assert.equal(mp4.headers.get('content-type'), 'video/mp4');
  assert.ok((await mp4.arrayBuffer()).byteLength > 500);
  const a2t = (await (await post('audio-to-text', form({}, { field: 'audio', data: (await import('../../helpers/fake-ai-worker.ts')).sineWav(1), name: 'a.wav', type: 'audio/wav' }))).json()) as { text: string; chunks: unknown[] };
  assert.equal(typeof a2t.text, 'string');
  assert.ok(Array.isArray(a2t.chunks));
  const sam = (await (await post('segment-anything-2', form({}, { field: 'image', data: png }))).json()) as { masks: string; scores: string; logits: string };
  assert.equal(typeof sam.masks, 'string');
  const i2t = (await (await post('image-to-text', form({}, { field: 'image', data: png }))).json()) as { text: string };
  assert.equal(typeof i2t.text, 'string');
  const tts = (await (await post('text-to-speech', { text: 'hello' })).json()) as { audio: { url: string } };
  const wav = await fetch(tts.audio.url);
  assert.equal(wav.headers.get('content-type'), 'audio/wav');
  assert.equal(Buffer.from(await wav.arrayBuffer()).toString('latin1', 0, 4), 'RIFF');
  const llm = (await (await post('llm', { messages: [{ role: 'user', content: 'hi' }] })).json()) as { choices: { message: { content: string } }[] };
  assert.equal(typeof llm.choices[0]!.message.content, 'string');
});

test('invalid requests are refused naming the field, and no worker is called', async () => {
  const png = solidPng(32, 32);
  const json = (path: string, body: unknown) => fetch(`${base}/${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const multipart = (path: string, f: FormData) => fetch(`${base}/${path}`, { method: 'POST', body: f });
  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    ['text-to-image missing prompt', () => json('text-to-image', { width: 64 }), 400, /prompt/],
    ['text-to-image wrong type', () => json('text-to-image', { prompt: 'x', width: 'wide' }), 400, /width/],
    ['text-to-image out of range', () => json('text-to-image', { prompt: 'x', num_inference_steps: 100000 }), 400, /num_inference_steps/],
    ['text-to-image unknown field', () => json('text-to-image', { prompt: 'x', colour: 'red' }), 400, /colour/],
    ['text-to-image bad JSON', () => fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"prompt":' }), 400, /JSON/],
    ['llm missing messages', () => json('llm', { max_tokens: 5 }), 400, /messages/],
    ['llm bad role', () => json('llm', { messages: [{ role: 'wizard', content: 'x' }] }), 400, /role/],
    ['text-to-speech missing text', () => json('text-to-speech', {}), 400, /text/],
    ['image-to-image missing image', () => multipart('image-to-image', form({ prompt: 'x' })), 400, /image/],
    ['image-to-image out of range', () => multipart('image-to-image', form({ prompt: 'x', strength: '7' }, { field: 'image', data: png })), 400, /strength/],
    ['upscale missing prompt', () => multipart('upscale', form({}, { field: 'image', data: png })), 400, /prompt/],
    ['image-to-video wrong type', () => multipart('image-to-video', form({ fps: 'fast' }, { field: 'image', data: png })), 400, /fps/],
    ['segment-anything-2 text file as image', () => multipart('segment-anything-2', form({}, { field: 'image', data: Buffer.from('just some text, not an image'), name: 'a.txt', type: 'text/plain' })), 415, /image: not a PNG/],
    ['image-to-text text file as image', () => multipart('image-to-text', form({}, { field: 'image', data: Buffer.from('hello'), name: 'a.png' })), 415, /image/],
    ['audio-to-text image as audio', () => multipart('audio-to-text', form({}, { field: 'audio', data: png, name: 'a.wav', type: 'audio/wav' })), 415, /audio/],
    ['upscale oversize image', () => multipart('upscale', form({ prompt: 'x' }, { field: 'image', data: Buffer.concat([png, Buffer.alloc(300_000)]) })), 413, /./],
    ['unknown pipeline', () => json('paint-my-house', { prompt: 'x' }), 400, /unknown pipeline "paint-my-house"/],
  ];
  for (const [what, send, status, message] of cases) {
    const res = await send();
    const body = (await res.json()) as { detail: { msg: string } };
    assert.equal(res.status, status, `${what}: ${JSON.stringify(body)}`);
    assert.match(body.detail.msg, message, what);
  }
  assert.equal(a.calls.length + b.calls.length + c.calls.length, 0, 'no worker was called');
});

test('workers can be listed and removed through the API, and the token is never shown', async () => {
  const d = await startFakeAiWorker({ token: 'worker-secret-token-1' });
  workers.push(d);
  const created = await fetch(`${base}/api/workers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: d.url, token: 'worker-secret-token-1', pipelines: [{ pipeline: 'text-to-image', model_id: 'tok/model' }] }) });
  assert.equal(created.status, 201);
  const view = (await created.json()) as { id: string; healthy: boolean };
  assert.equal(view.healthy, true, 'health check passed with the bearer token');
  assert.equal((await t2i({ prompt: 'x', model_id: 'tok/model', width: 64, height: 64 })).status, 200);
  assert.equal(d.calls[0]!.headers['authorization'], 'Bearer worker-secret-token-1');
  const list = await (await fetch(`${base}/api/workers`)).text();
  assert.ok(!list.includes('worker-secret-token-1'));
  assert.equal((await fetch(`${base}/api/workers/${view.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await t2i({ prompt: 'x', model_id: 'tok/model' })).status, 503);
  const bad = await fetch(`${base}/api/workers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: 'ftp://x', pipelines: [] }) });
  assert.equal(bad.status, 400);
});

test('the AI spec is served at /openapi.yaml with a browsable docs page whose assets load', async () => {
  const spec = await fetch(`${base}/openapi.yaml`);
  assert.equal(spec.status, 200);
  assert.match(spec.headers.get('content-type') ?? '', /yaml/);
  assert.match(await spec.text(), /\/text-to-image:/);
  const page = await fetch(`${base}/docs`);
  assert.equal(page.status, 200);
  const html = await page.text();
  for (const asset of [...html.matchAll(/(?:src|href)="(\/docs\/[^"]+)"/g)].map((m) => m[1]!)) {
    const res = await fetch(`${base}${asset}`);
    assert.equal(res.status, 200, asset);
    assert.ok((await res.arrayBuffer()).byteLength > 20, `${asset} has content`);
  }
  const init = await (await fetch(`${base}/docs/init.js`)).text();
  assert.match(init, /\/openapi\.yaml/);
  assert.match(init, /\/openapi\/control\.yaml/);
  assert.equal((await fetch(`${base}/openapi/control.yaml`)).status, 200);
});
