import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchResultMedia, parseDataUrl } from '../../../src/ai/media-fetch.ts';
import { WorkerClient } from '../../../src/ai/worker-client.ts';
import { classifyErrorReply, WorkerCallError, type WorkerReply } from '../../../src/ai/worker-reply.ts';
import { endpointUrl, type AiRequest, type WorkerEndpoint } from '../../../src/ai/worker-request.ts';
import { SseDataParser } from '../../../src/ai/worker-sse.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { framesToMp4 } from '../../../src/media/frames-to-mp4.ts';
import {
  CAPACITY_BODY, FAKE_BAD_REQUEST_MESSAGE, FAKE_CAPTION, FAKE_LLM_TEXT, FAKE_TRANSCRIPT, FAKE_VIDEO_FRAMES,
  startFakeAiWorker, type FakeAiWorker,
} from '../../helpers/fake-ai-worker.ts';
import { encodePng, pngSize } from '../../helpers/png.ts';
import { freePort } from '../../helpers/ports.ts';

const TOKEN = 'worker-secret-7f3a';
let worker: FakeAiWorker;
let endpoint: WorkerEndpoint;
let dir: string;
const client = new WorkerClient();
const callWorker = client.call.bind(client);
const checkHealth = client.checkHealth.bind(client);

before(async () => {
  worker = await startFakeAiWorker({ token: TOKEN });
  endpoint = { url: worker.url, token: TOKEN };
  dir = mkdtempSync(join(tmpdir(), 'mediagate-ai-'));
});
after(async () => {
  client.close();
  await worker.close();
  rmSync(dir, { recursive: true, force: true });
});

function json(reply: WorkerReply): Record<string, unknown> {
  assert.equal(reply.kind, 'json');
  return (reply as { body: Record<string, unknown> }).body;
}

function lastCall(w: FakeAiWorker = worker) {
  const call = w.calls.at(-1);
  assert.ok(call, 'the worker received a request');
  return call;
}

async function rejection(promise: Promise<unknown>): Promise<WorkerCallError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof WorkerCallError, `expected WorkerCallError, got ${String(err)}`);
    assert.ok(!err.message.includes(TOKEN), 'the token never appears in an error');
    return err;
  }
  assert.fail('expected a rejection');
}

function ffprobe(path: string): { codec_name: string; width: number; height: number; nb_read_frames?: string; pix_fmt?: string } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
    '-show_entries', 'stream=codec_name,width,height,nb_read_frames,pix_fmt', '-of', 'json', path], { encoding: 'utf8' });
  return (JSON.parse(out) as { streams: ReturnType<typeof ffprobe>[] }).streams[0]!;
}

const png = (w: number, h: number): Buffer => encodePng(w, h, (x, y) => [x * 3, y * 3, 90]);
const imageFile = (data: Buffer) => ({ field: 'image', filename: 'input.png', contentType: 'image/png', data });

test('ffmpeg and ffprobe are installed (these tests fail, not skip, without them)', () => {
  assert.match(execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }), /^ffmpeg version/);
  assert.match(execFileSync('ffprobe', ['-version'], { encoding: 'utf8' }), /^ffprobe version/);
});

describe('test PNG encoder', () => {
  test('encodePng writes a PNG that ffprobe decodes at its size, and pngSize reads the size back', () => {
    const buf = encodePng(37, 21, (x, y) => [x * 7, y * 12, 200]);
    assert.deepEqual(pngSize(buf), { width: 37, height: 21 });
    const file = join(dir, 'probe.png');
    writeFileSync(file, buf);
    const s = ffprobe(file);
    assert.equal(s.codec_name, 'png');
    assert.equal(s.width, 37);
    assert.equal(s.height, 21);
    assert.throws(() => pngSize(Buffer.from('GIF89a.................')), /not a PNG/);
  });
});

describe('requests', () => {
  test('a JSON call carries model_id and the bearer token and returns PNGs of the requested size', async () => {
    const reply = await callWorker(endpoint, {
      pipeline: 'text-to-image', modelID: 'stabilityai/sdxl-turbo',
      fields: { prompt: 'a red fox', width: 96, height: 64, num_images_per_prompt: 2, seed: 42 },
    }, { timeoutMs: 10_000 });
    assert.equal((reply as { status: number }).status, 200);
    const call = lastCall();
    assert.equal(call.path, '/text-to-image');
    assert.equal(call.headers['authorization'], `Bearer ${TOKEN}`);
    assert.match(call.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(call.fields, { prompt: 'a red fox', width: 96, height: 64, num_images_per_prompt: 2, seed: 42, model_id: 'stabilityai/sdxl-turbo' });
    const images = json(reply)['images'] as { url: string; seed: number; nsfw: boolean }[];
    assert.equal(images.length, 2);
    assert.deepEqual(images.map((i) => [i.seed, i.nsfw]), [[42, false], [43, false]]);
    for (const image of images) {
      const media = parseDataUrl(image.url);
      assert.equal(media.contentType, 'image/png');
      assert.deepEqual(pngSize(media.data), { width: 96, height: 64 });
    }
  });

  test('a multipart call rebuilds the form: text fields (non-strings stringified), model_id, and the file with its name and type', async () => {
    const input = png(40, 30);
    const reply = await callWorker(endpoint, {
      pipeline: 'image-to-image', modelID: 'stabilityai/sdxl-turbo',
      fields: { prompt: 'make it blue', strength: 0.5, safety_check: false, loras: { 'a/b': 1 }, image: '', model_id: 'ignored', skipped: undefined },
      files: [imageFile(input)],
    }, { timeoutMs: 10_000 });
    const call = lastCall();
    assert.equal(call.path, '/image-to-image');
    assert.equal(call.headers['authorization'], `Bearer ${TOKEN}`);
    assert.match(call.headers['content-type'] ?? '', /^multipart\/form-data; boundary=/);
    assert.deepEqual(call.fields, { prompt: 'make it blue', strength: '0.5', safety_check: 'false', loras: '{"a/b":1}', model_id: 'stabilityai/sdxl-turbo' });
    assert.deepEqual(call.files, [{ field: 'image', filename: 'input.png', contentType: 'image/png', size: input.length }]);
    const [image] = json(reply)['images'] as { url: string }[];
    assert.deepEqual(pngSize(parseDataUrl(image!.url).data), { width: 40, height: 30 }, 'image-to-image keeps the input size');
  });

  test('upscale answers an image twice the size of the input', async () => {
    const reply = await callWorker(endpoint, {
      pipeline: 'upscale', modelID: 'stabilityai/stable-diffusion-x4-upscaler', fields: { prompt: 'sharper' }, files: [imageFile(png(33, 20))],
    }, { timeoutMs: 10_000 });
    const [image] = json(reply)['images'] as { url: string }[];
    assert.deepEqual(pngSize(parseDataUrl(image!.url).data), { width: 66, height: 40 });
  });

  test('image-to-video answers the runner shape {frames:[[Media]]} with decodable frames of the requested size', async () => {
    const reply = await callWorker(endpoint, {
      pipeline: 'image-to-video', modelID: 'stabilityai/stable-video-diffusion-img2vid-xt',
      fields: { width: 64, height: 48, fps: 6 }, files: [imageFile(png(64, 48))],
    }, { timeoutMs: 10_000 });
    assert.equal(lastCall().fields['width'], '64');
    const frames = json(reply)['frames'] as { url: string; seed: number; nsfw: boolean }[][];
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.length, FAKE_VIDEO_FRAMES);
    for (const frame of frames[0]!) assert.deepEqual(pngSize(parseDataUrl(frame.url).data), { width: 64, height: 48 });
  });

  test('audio-to-text, segment-anything-2, image-to-text and text-to-speech answer in the runner shapes', async () => {
    const audio = await callWorker(endpoint, {
      pipeline: 'audio-to-text', modelID: 'openai/whisper-large-v3', fields: { return_timestamps: 'true' },
      files: [{ field: 'audio', filename: 'a.wav', contentType: 'audio/wav', data: Buffer.from('RIFF....WAVE') }],
    }, { timeoutMs: 10_000 });
    assert.deepEqual(json(audio), { text: FAKE_TRANSCRIPT, chunks: [{ timestamp: [0, 1.5], text: FAKE_TRANSCRIPT }] });
    assert.equal(lastCall().files[0]!.field, 'audio');

    const sam = json(await callWorker(endpoint, {
      pipeline: 'segment-anything-2', modelID: 'facebook/sam2-hiera-large', fields: { point_coords: [[1, 2]], multimask_output: true }, files: [imageFile(png(8, 8))],
    }, { timeoutMs: 10_000 }));
    assert.deepEqual(lastCall().fields, { point_coords: '[[1,2]]', multimask_output: 'true', model_id: 'facebook/sam2-hiera-large' });
    for (const key of ['masks', 'scores', 'logits']) assert.ok(Array.isArray(JSON.parse(sam[key] as string)), `${key} is a JSON array string`);

    const caption = await callWorker(endpoint, {
      pipeline: 'image-to-text', modelID: 'Salesforce/blip-image-captioning-large', fields: {}, files: [imageFile(png(8, 8))],
    }, { timeoutMs: 10_000 });
    assert.deepEqual(json(caption), { text: FAKE_CAPTION });

    const speech = json(await callWorker(endpoint, {
      pipeline: 'text-to-speech', modelID: 'parler-tts/parler-tts-large-v1', fields: { text: 'hello', description: 'calm' },
    }, { timeoutMs: 10_000 }));
    const wav = parseDataUrl((speech['audio'] as { url: string }).url);
    assert.equal(wav.contentType, 'audio/wav');
    assert.equal(wav.data.toString('latin1', 0, 4), 'RIFF');
    const file = join(dir, 'speech.wav');
    writeFileSync(file, wav.data);
    const probed = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate:format=duration', '-of', 'json', file], { encoding: 'utf8' })) as
      { streams: { codec_name: string; sample_rate: string }[]; format: { duration: string } };
    assert.equal(probed.streams[0]!.codec_name, 'pcm_s16le');
    assert.equal(Number(probed.format.duration), 0.25);
  });

  test('a non-streaming LLM call sends model and model_id and returns the completion', async () => {
    const reply = await callWorker(endpoint, {
      pipeline: 'llm', modelID: 'meta-llama/llama-3.1-8B-Instruct', fields: { messages: [{ role: 'user', content: 'hi there' }], max_tokens: 64 },
    }, { timeoutMs: 10_000 });
    assert.equal(lastCall().fields['model'], 'meta-llama/llama-3.1-8B-Instruct');
    assert.equal(lastCall().fields['model_id'], 'meta-llama/llama-3.1-8B-Instruct');
    const body = json(reply) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
    assert.equal(body.choices[0]!.message.content, FAKE_LLM_TEXT);
    assert.equal(body.usage.completion_tokens, 5);
  });

  test('the fake worker counts concurrent requests and applies a per-mode delay', async () => {
    worker.resetStats();
    worker.setMode({ delayMs: 200 });
    try {
      const started = Date.now();
      await Promise.all([1, 2, 3].map(() => callWorker(endpoint, { pipeline: 'image-to-text', modelID: 'm', fields: {}, files: [imageFile(png(8, 8))] }, { timeoutMs: 5_000 })));
      assert.ok(Date.now() - started >= 190);
      assert.equal(worker.maxInFlight, 3);
      assert.equal(worker.inFlight, 0);
      assert.equal(worker.calls.length, 3);
    } finally {
      worker.setMode('ok');
    }
  });

  test('an answer slower than the pooled connections\' 4 s idle limit still arrives, and an idle pooled connection is not reused once closed', async () => {
    worker.setMode({ delayMs: 4_500 });
    try {
      const slow = json(await callWorker(endpoint, { pipeline: 'text-to-image', modelID: 'm', fields: { prompt: 'slow' } }, { timeoutMs: 10_000 }));
      assert.ok(Array.isArray(slow['images']));
    } finally {
      worker.setMode('ok');
    }
    await new Promise((r) => setTimeout(r, 4_300)); // the pool closes the connection after 4 s idle
    const next = json(await callWorker(endpoint, { pipeline: 'text-to-image', modelID: 'm', fields: { prompt: 'after idle' } }, { timeoutMs: 5_000 }));
    assert.ok(Array.isArray(next['images']));
  });

  test('a worker client keeps its connection pooled until close(), which ends it at once; close() twice is harmless', async () => {
    let open = 0;
    let opened = 0;
    const server = createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"OK"}'); });
    server.on('connection', (socket) => { open++; opened++; socket.once('close', () => { open--; }); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const own = new WorkerClient();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      assert.equal(await own.checkHealth({ url }, 2_000), 'OK');
      assert.equal(await own.checkHealth({ url }, 2_000), 'OK');
      assert.equal(opened, 1, 'the second call reused the pooled connection');
      assert.equal(open, 1, 'the idle connection stays pooled');
      own.close();
      own.close();
      for (let i = 0; i < 100 && open > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(open, 0, 'close() ended the pooled connection (well before the 4 s idle limit)');
    } finally {
      own.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('calls in flight together each get a connection, later calls reuse them, and an answer split across many reads arrives whole', async () => {
    let opened = 0;
    const big = JSON.stringify({ images: [{ url: `data:image/png;base64,${'A'.repeat(3 * 1024 * 1024)}`, seed: 1, nsfw: false }] });
    const server = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        // Written in 64 KiB pieces (chunked transfer encoding): many reads on the client side.
        for (let at = 0; at < big.length; at += 65_536) res.write(big.slice(at, at + 65_536));
        res.end();
      });
    });
    server.on('connection', () => { opened++; });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const own = new WorkerClient();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const call = (): Promise<WorkerReply> => own.call({ url }, { pipeline: 'text-to-image', modelID: 'm', fields: { prompt: 'x' } }, { timeoutMs: 10_000 });
      const first = await Promise.all([call(), call(), call()]);
      assert.equal(opened, 3, 'three calls in flight: three connections');
      for (const reply of first) assert.equal(JSON.stringify(json(reply)), big, 'the whole answer, byte for byte');
      await new Promise((r) => setImmediate(r));
      for (let i = 0; i < 3; i++) assert.equal(JSON.stringify(json(await call())), big);
      await Promise.all([call(), call()]);
      assert.equal(opened, 3, 'later calls went over the pooled connections');
    } finally {
      own.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('an error answer is read up to its 64 KiB cap and still classified, and its connection is closed', async () => {
    let open = 0;
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' });
      // A long error page that never ends by itself: the client must stop reading at its cap.
      const write = (): void => {
        if (res.destroyed) return;
        if (res.write(`Insufficient capacity ${'x'.repeat(16_384)}`)) setImmediate(write);
        else res.once('drain', write);
      };
      write();
    });
    server.on('connection', (socket) => { open++; socket.once('close', () => { open--; }); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const own = new WorkerClient();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const err = await rejection(own.call({ url }, { pipeline: 'text-to-image', modelID: 'm', fields: { prompt: 'x' } }, { timeoutMs: 5_000 }));
      assert.equal(err.kind, 'capacity');
      assert.equal(err.status, 500);
      assert.ok(err.workerMessage?.startsWith('Insufficient capacity'));
      for (let i = 0; i < 100 && open > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(open, 0, 'the connection of the cut answer was closed');
    } finally {
      own.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('the pipeline path is appended to the worker base URL, keeping a path prefix; URLs with credentials are refused', () => {
    assert.equal(endpointUrl('http://10.0.0.5:8000', 'llm').href, 'http://10.0.0.5:8000/llm');
    assert.equal(endpointUrl('http://10.0.0.5:8000/', 'text-to-image').href, 'http://10.0.0.5:8000/text-to-image');
    assert.equal(endpointUrl('https://gpu.example/runner', 'health').href, 'https://gpu.example/runner/health');
    assert.throws(() => endpointUrl('http://user:pw@gpu.example', 'llm'), (err: WorkerCallError) => err.kind === 'connection' && !err.message.includes('pw'));
    assert.throws(() => endpointUrl('ftp://gpu.example', 'llm'), WorkerCallError);
  });
});

describe('failure classification', () => {
  const request: AiRequest = { pipeline: 'text-to-image', modelID: 'stabilityai/sdxl-turbo', fields: { prompt: 'x', width: 16, height: 16 } };

  test('a 500 from the worker is a server failure carrying the worker message', async () => {
    worker.setMode('fail');
    try {
      const err = await rejection(callWorker(endpoint, request, { timeoutMs: 5_000 }));
      assert.equal(err.kind, 'server');
      assert.equal(err.status, 500);
      assert.equal(err.workerMessage, 'Pipeline error.');
    } finally {
      worker.setMode('ok');
    }
  });

  test('a worker that never answers is a timeout close to timeoutMs, and the connection is released', async () => {
    worker.setMode('stall');
    try {
      const started = Date.now();
      const err = await rejection(callWorker(endpoint, request, { timeoutMs: 300 }));
      const elapsed = Date.now() - started;
      assert.equal(err.kind, 'timeout');
      assert.ok(elapsed >= 280 && elapsed < 1_500, `timed out after ${elapsed} ms`);
      for (let i = 0; i < 50 && worker.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(worker.inFlight, 0, 'the aborted request no longer occupies the worker');
    } finally {
      worker.setMode('ok');
    }
  });

  test('a 400 with detail.msg is a client failure with the worker reason', async () => {
    worker.setMode('bad-request');
    try {
      const err = await rejection(callWorker(endpoint, request, { timeoutMs: 5_000 }));
      assert.equal(err.kind, 'client');
      assert.equal(err.status, 400);
      assert.equal(err.workerMessage, FAKE_BAD_REQUEST_MESSAGE);
    } finally {
      worker.setMode('ok');
    }
  });

  test('a 422 validation error is a client failure summarized as "field: message"', async () => {
    const err = await rejection(callWorker(endpoint, { pipeline: 'text-to-image', modelID: 'm', fields: { width: 16 } }, { timeoutMs: 5_000 }));
    assert.equal(err.kind, 'client');
    assert.equal(err.status, 422);
    assert.equal(err.workerMessage, 'prompt: Field required');
  });

  test('go-livepeer\'s 503 "insufficient capacity" is a capacity failure', async () => {
    worker.setMode('capacity');
    try {
      const err = await rejection(callWorker(endpoint, request, { timeoutMs: 5_000 }));
      assert.equal(err.kind, 'capacity');
      assert.equal(err.status, 503);
      assert.equal(err.workerMessage, CAPACITY_BODY.trim());
    } finally {
      worker.setMode('ok');
    }
  });

  test('a wrong token is a server failure (worker misconfigured), never passed to the client', async () => {
    const err = await rejection(callWorker({ url: worker.url, token: 'wrong-token' }, request, { timeoutMs: 5_000 }));
    assert.equal(err.kind, 'server');
    assert.equal(err.status, 401);
    assert.ok(!err.message.includes('wrong-token'));
  });

  test('a runner configured with another model is a server failure (the registry is wrong, another worker may fit)', async () => {
    const other = await startFakeAiWorker({ models: { 'text-to-image': 'stabilityai/sd-turbo' } });
    try {
      const err = await rejection(callWorker({ url: other.url }, request, { timeoutMs: 5_000 }));
      assert.equal(err.kind, 'server');
      assert.equal(err.status, 400);
      assert.equal(err.workerMessage, 'pipeline configured with stabilityai/sd-turbo but called with stabilityai/sdxl-turbo.');
      assert.equal(other.calls[0]!.headers['authorization'], undefined, 'no token configured, no Authorization header');
    } finally {
      await other.close();
    }
  });

  test('nothing listening is a connection failure', async () => {
    const port = await freePort();
    const err = await rejection(callWorker({ url: `http://127.0.0.1:${port}`, token: TOKEN }, request, { timeoutMs: 5_000 }));
    assert.equal(err.kind, 'connection');
    assert.match(err.message, /ECONNREFUSED/);
  });

  test('the caller aborting ends the call as a timeout', async () => {
    worker.setMode('stall');
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const started = Date.now();
      const err = await rejection(callWorker(endpoint, request, { timeoutMs: 10_000, signal: controller.signal }));
      assert.equal(err.kind, 'timeout');
      assert.ok(Date.now() - started < 2_000);
    } finally {
      worker.setMode('ok');
    }
  });

  test('a JSON answer over maxResponseBytes is a server failure', async () => {
    const err = await rejection(callWorker(endpoint, request, { timeoutMs: 5_000, maxResponseBytes: 100 }));
    assert.equal(err.kind, 'server');
    assert.match(err.message, /larger than 100 bytes/);
  });

  test('classifyErrorReply maps statuses and bodies to failure kinds', () => {
    const cases: [number, string, string, string | undefined][] = [
      [400, '{"detail":{"msg":"bad lora"}}', 'client', 'bad lora'],
      [413, '', 'client', undefined],
      [422, '{"detail":[{"loc":["body","image"],"msg":"Field required"},{"loc":["body","width"],"msg":"Input should be a valid integer"}]}', 'client', 'image: Field required; width: Input should be a valid integer'],
      [408, '', 'server', undefined],
      [429, '{"detail":{"msg":"slow down"}}', 'capacity', 'slow down'],
      [503, '', 'capacity', undefined],
      [500, 'Insufficient capacity', 'capacity', 'Insufficient capacity'],
      [500, '{"detail":{"msg":"GPU out of memory."}}', 'server', 'GPU out of memory.'],
      [502, '<html>bad gateway</html>', 'server', '<html>bad gateway</html>'],
      [404, '{"detail":"Not Found"}', 'server', 'Not Found'],
      [401, '{"detail":{"msg":"Invalid bearer token."}}', 'server', 'Invalid bearer token.'],
    ];
    for (const [status, body, kind, message] of cases) {
      assert.deepEqual(classifyErrorReply(status, body), { kind, workerMessage: message }, `${status} ${body}`);
    }
  });
});

describe('LLM streaming', () => {
  const streamRequest: AiRequest = {
    pipeline: 'llm', modelID: 'meta-llama/llama-3.1-8B-Instruct', fields: { messages: [{ role: 'user', content: 'hello' }], stream: true },
  };

  test('chunks are yielded as they arrive, and the stream ends with [DONE]', async () => {
    worker.resetStats();
    const reply = await callWorker(endpoint, streamRequest, { timeoutMs: 5_000 });
    assert.equal(reply.kind, 'stream');
    const arrivals: { at: number; data: string }[] = [];
    for await (const data of (reply as { chunks: AsyncIterable<string> }).chunks) arrivals.push({ at: Date.now(), data });
    assert.deepEqual(arrivals.map((a) => a.data), worker.sseWrites.map((w) => w.data), 'every payload, in order, nothing merged');
    assert.equal(arrivals.length, 6);
    assert.equal(arrivals.at(-1)!.data, '[DONE]');
    const text = arrivals.slice(0, -1).map((a) => (JSON.parse(a.data) as { choices: { delta: { content: string } }[] }).choices[0]!.delta.content).join('');
    assert.equal(text, FAKE_LLM_TEXT);
    const lastSentAt = worker.sseWrites.at(-1)!.at;
    assert.ok(arrivals[0]!.at + 150 <= lastSentAt, `first chunk at ${arrivals[0]!.at}, last sent at ${lastSentAt}: not buffered`);
    assert.equal(lastCall().fields['stream'], true);
  });

  test('a stream faster than its reader arrives whole and in order (the connection pauses while the reader lags)', async () => {
    const events = Array.from({ length: 400 }, (_, i) => JSON.stringify({ choices: [{ delta: { content: `${i}:${'y'.repeat(8_000)}` } }] }));
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const e of events) res.write(`data: ${e}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const own = new WorkerClient();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const reply = await own.call({ url }, streamRequest, { timeoutMs: 5_000 });
      const got: string[] = [];
      for await (const data of (reply as { chunks: AsyncIterable<string> }).chunks) {
        got.push(data);
        if (got.length % 50 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(got, [...events, '[DONE]']);
    } finally {
      own.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('leaving the stream early closes the worker connection', async () => {
    const slow = await startFakeAiWorker({ streamChunks: 20, streamIntervalMs: 50 });
    try {
      const reply = await callWorker({ url: slow.url }, streamRequest, { timeoutMs: 5_000 });
      for await (const data of (reply as { chunks: AsyncIterable<string> }).chunks) {
        assert.notEqual(data, '[DONE]');
        break;
      }
      for (let i = 0; i < 50 && slow.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(slow.inFlight, 0);
      assert.ok(slow.sseWrites.length < 20, 'the worker stopped sending');
    } finally {
      await slow.close();
    }
  });

  test('a stall between chunks longer than timeoutMs fails the stream as a timeout', async () => {
    const slow = await startFakeAiWorker({ streamChunks: 3, streamIntervalMs: 2_000 });
    try {
      const reply = await callWorker({ url: slow.url }, streamRequest, { timeoutMs: 300 });
      const got: string[] = [];
      const started = Date.now();
      const err = await rejection((async () => {
        for await (const data of (reply as { chunks: AsyncIterable<string> }).chunks) got.push(data);
      })());
      assert.equal(err.kind, 'timeout');
      assert.equal(got.length, 1, 'the first chunk was delivered before the stall');
      assert.ok(Date.now() - started < 1_500);
    } finally {
      await slow.close();
    }
  });

  describe('against a hand-written SSE server', () => {
    let server: Server;
    let url: string;
    let script: (Buffer | string)[] = [];
    before(async () => {
      server = createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const parts = [...script];
        const next = (): void => {
          const part = parts.shift();
          if (part === undefined) { res.end(); return; }
          res.write(part);
          setTimeout(next, 5);
        };
        next();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); });

    async function collect(): Promise<string[]> {
      const reply = await callWorker({ url }, streamRequest, { timeoutMs: 2_000 });
      const out: string[] = [];
      for await (const d of (reply as { chunks: AsyncIterable<string> }).chunks) out.push(d);
      return out;
    }

    test('events split across writes, CRLF line ends, comments, multi-line data and split UTF-8 are parsed', async () => {
      const euro = Buffer.from('data: {"t":"€"}\r\n\r\n');
      const cut = euro.indexOf(0xe2) + 1; // inside the 3-byte euro sign
      script = [': keep-alive\n\n', 'da', 'ta: {"a":', '1}\n', '\n', euro.subarray(0, cut), euro.subarray(cut), 'event: x\ndata: line1\ndata: line2\r', '\n\r\n', 'data: [DONE]\n\n', 'data: after\n\n'];
      assert.deepEqual(await collect(), ['{"a":1}', '{"t":"€"}', 'line1\nline2', '[DONE]']);
    });

    test('an error event from the runner fails the stream with the worker message', async () => {
      script = ['data: {"choices":[]}\n\n', 'data: {"error": "CUDA error: device-side assert"}\n\n'];
      const reply = await callWorker({ url }, streamRequest, { timeoutMs: 2_000 });
      const got: string[] = [];
      const err = await rejection((async () => { for await (const d of (reply as { chunks: AsyncIterable<string> }).chunks) got.push(d); })());
      assert.deepEqual(got, ['{"choices":[]}']);
      assert.equal(err.kind, 'server');
      assert.equal(err.workerMessage, 'CUDA error: device-side assert');
    });

    test('a stream that ends without [DONE] is a server failure', async () => {
      script = ['data: {"choices":[]}\n\n'];
      const err = await rejection(collect());
      assert.equal(err.kind, 'server');
      assert.match(err.message, /without \[DONE\]/);
    });
  });

  test('SseDataParser delivers a final event without a blank line at the end of input', () => {
    const p = new SseDataParser();
    assert.deepEqual(p.push('data: a\n\ndata: b'), ['a']);
    assert.deepEqual(p.end(), ['b']);
  });

  test('SseDataParser takes CR-only line ends, a bare `data` line, and ignores id, retry, unknown fields and comments', () => {
    const p = new SseDataParser();
    assert.deepEqual(p.push('id: 7\rretry: 10\rfoo: bar\r: note\rdata: x\r\rdata\r\rdata: y\r'), ['x', '']);
    assert.deepEqual(p.push('\n\r\n'), ['y'], 'a CR at the end of a chunk may be half of a CRLF');
    assert.deepEqual(p.end(), []);
  });
});

describe('health', () => {
  test('checkHealth returns each status the worker reports', async () => {
    for (const status of ['LOADING', 'IDLE', 'ERROR', 'OK'] as const) {
      worker.setHealth(status);
      assert.equal(await checkHealth(endpoint, 2_000), status);
    }
  });

  test('checkHealth fails as a connection failure when nothing listens, and as a server failure on an unknown answer', async () => {
    const port = await freePort();
    assert.equal((await rejection(checkHealth({ url: `http://127.0.0.1:${port}` }, 2_000))).kind, 'connection');
    const other = await startFakeAiWorker();
    try {
      other.setHealth('READY' as 'OK');
      assert.equal((await rejection(checkHealth({ url: other.url }, 2_000))).kind, 'server');
    } finally {
      await other.close();
    }
  });
});

describe('result media over http', () => {
  test('absolute and worker-relative URLs are fetched with the worker token', async () => {
    const data = png(12, 10);
    const absolute = worker.addMedia('abs.png', data, 'image/png');
    const a = await fetchResultMedia(absolute, { timeoutMs: 5_000, maxBytes: 1_000_000, baseUrl: worker.url, token: TOKEN });
    assert.deepEqual(a, { data, contentType: 'image/png' });
    const r = await fetchResultMedia('/media/abs.png', { timeoutMs: 5_000, maxBytes: 1_000_000, baseUrl: worker.url, token: TOKEN });
    assert.ok(r.data.equals(data));
  });

  test('a worker answering with its own relative URLs round-trips through fetchResultMedia', async () => {
    const other = await startFakeAiWorker({ token: TOKEN, mediaUrls: 'relative' });
    try {
      const reply = await callWorker({ url: other.url, token: TOKEN }, { pipeline: 'text-to-image', modelID: 'm', fields: { prompt: 'p', width: 24, height: 16 } }, { timeoutMs: 5_000 });
      const [image] = json(reply)['images'] as { url: string }[];
      assert.match(image!.url, /^\/media\//);
      const media = await fetchResultMedia(image!.url, { timeoutMs: 5_000, maxBytes: 1_000_000, baseUrl: other.url, token: TOKEN });
      assert.equal(media.contentType, 'image/png');
      assert.deepEqual(pngSize(media.data), { width: 24, height: 16 });
      await assert.rejects(fetchResultMedia(image!.url, { timeoutMs: 5_000, maxBytes: 1_000_000, baseUrl: other.url }),
        (err: WorkerCallError) => err.kind === 'server' && err.status === 401);
    } finally {
      await other.close();
    }
  });

  test('media over maxBytes, missing media and unreachable hosts are server failures', async () => {
    const big = worker.addMedia('big.bin', Buffer.alloc(50_000, 7), 'application/octet-stream');
    const tooBig = await rejection(fetchResultMedia(big, { timeoutMs: 5_000, maxBytes: 49_999, baseUrl: worker.url, token: TOKEN }));
    assert.equal(tooBig.kind, 'server');
    assert.match(tooBig.message, /larger than 49999 bytes/);
    const missing = await rejection(fetchResultMedia('/media/none.png', { timeoutMs: 5_000, maxBytes: 1_000, baseUrl: worker.url, token: TOKEN }));
    assert.equal(missing.kind, 'server');
    assert.equal(missing.status, 404);
    const port = await freePort();
    assert.equal((await rejection(fetchResultMedia(`http://127.0.0.1:${port}/x.png`, { timeoutMs: 5_000, maxBytes: 1_000, baseUrl: `http://127.0.0.1:${port}` }))).kind, 'server');
  });

  test('maxBytes is enforced while streaming when the length is not announced', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' }); // chunked, no content-length
      res.write(Buffer.alloc(30_000));
      setTimeout(() => res.end(Buffer.alloc(30_000)), 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m.png`;
      const err = await rejection(fetchResultMedia(url, { timeoutMs: 5_000, maxBytes: 40_000, baseUrl: url }));
      assert.match(err.message, /larger than 40000 bytes/);
      const ok = await fetchResultMedia(url, { timeoutMs: 5_000, maxBytes: 60_000, baseUrl: url });
      assert.equal(ok.data.length, 60_000);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('redirects are followed within the worker origin only: another origin is refused before it is contacted', async () => {
    const seen: (string | undefined)[] = [];
    const other = createServer((req, res) => {
      seen.push(`other:${req.headers.authorization ?? ''}`);
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end('x');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    const otherUrl = `http://localhost:${(other.address() as AddressInfo).port}/elsewhere.png`;
    const redirector = createServer((req, res) => {
      seen.push(`redirector:${req.url}:${req.headers.authorization ?? ''}`);
      if (req.url === '/away') res.writeHead(302, { location: otherUrl });
      else if (req.url === '/hop') res.writeHead(307, { location: '/final.png' });
      else if (req.url === '/loop') res.writeHead(302, { location: '/loop' });
      else res.writeHead(200, { 'content-type': 'image/png' });
      res.end(req.url === '/final.png' ? 'png' : undefined);
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', () => r()));
    try {
      const base = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
      const options = { timeoutMs: 5_000, maxBytes: 100, baseUrl: base, token: TOKEN };
      assert.match((await rejection(fetchResultMedia(otherUrl, options))).message, /result media URL points at another origin/);
      assert.match((await rejection(fetchResultMedia('/away', options))).message, /result media redirect points at another origin/);
      assert.deepEqual(seen, [`redirector:/away:Bearer ${TOKEN}`], 'the other origin was never contacted');
      const hopped = await fetchResultMedia('/hop', options);
      assert.equal(hopped.data.toString(), 'png');
      assert.deepEqual(seen.slice(1), [`redirector:/hop:Bearer ${TOKEN}`, `redirector:/final.png:Bearer ${TOKEN}`]);
      assert.match((await rejection(fetchResultMedia('/loop', options))).message, /redirected more than 3 times/);
    } finally {
      for (const s of [other, redirector]) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
    }
  });
});

describe('frames to mp4', () => {
  function childFfmpegPids(): number[] {
    const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,comm='], { encoding: 'utf8' });
    return out.split('\n').filter((l) => /\bffmpeg\b/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
  }

  test('the frames of an image-to-video answer become an H.264 mp4 with every frame at the frame size', async () => {
    const reply = await callWorker(endpoint, {
      pipeline: 'image-to-video', modelID: 'stabilityai/stable-video-diffusion-img2vid-xt', fields: { width: 64, height: 48 }, files: [imageFile(png(64, 48))],
    }, { timeoutMs: 10_000 });
    const frames = (json(reply)['frames'] as { url: string }[][])[0]!.map((f) => parseDataUrl(f.url).data);
    const out = join(dir, 'video.mp4');
    await framesToMp4(frames, 6, out);
    const s = ffprobe(out);
    assert.equal(s.codec_name, 'h264');
    assert.equal(s.pix_fmt, 'yuv420p');
    assert.equal(s.width, 64);
    assert.equal(s.height, 48);
    assert.equal(Number(s.nb_read_frames), FAKE_VIDEO_FRAMES);
    assert.equal(readFileSync(out).indexOf('moov') < readFileSync(out).indexOf('mdat'), true, '+faststart puts moov before mdat');
  });

  test('odd-sized frames are padded to even dimensions', async () => {
    const out = join(dir, 'odd.mp4');
    await framesToMp4([png(31, 17), png(31, 17), png(31, 17)], 3, out);
    const s = ffprobe(out);
    assert.deepEqual([s.width, s.height, Number(s.nb_read_frames)], [32, 18, 3]);
  });

  test('a corrupt frame is UNDECODABLE_MEDIA and leaves no output file', async () => {
    const out = join(dir, 'corrupt.mp4');
    const good = png(16, 16);
    const broken = Buffer.concat([good.subarray(0, 30), Buffer.alloc(20, 0x41), good.subarray(50)]);
    await assert.rejects(framesToMp4([good, broken, good], 6, out), (err: GatewayError) => {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.code, 'UNDECODABLE_MEDIA');
      return true;
    });
    assert.equal(existsSync(out), false);
  });

  test('frames that are not images, or mix formats, are refused before ffmpeg starts', async () => {
    const out = join(dir, 'never.mp4');
    const jpegHead = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]);
    for (const frames of [[], [Buffer.from('not an image')], [png(8, 8), jpegHead]]) {
      await assert.rejects(framesToMp4(frames, 6, out), (err: GatewayError) => err instanceof GatewayError && err.code === 'UNDECODABLE_MEDIA');
    }
    await assert.rejects(framesToMp4([png(8, 8)], 0, out), RangeError);
  });

  test('an encode over its time limit is TRANSCODE_FAILED and leaves no ffmpeg process', async () => {
    const frames = Array.from({ length: 60 }, () => png(640, 480));
    const out = join(dir, 'slow.mp4');
    await assert.rejects(framesToMp4(frames, 30, out, { timeoutMs: 30, killGraceMs: 500 }), (err: GatewayError) => {
      assert.equal(err.code, 'TRANSCODE_FAILED');
      assert.match(err.message, /timed out after 30 ms/);
      return true;
    });
    assert.deepEqual(childFfmpegPids(), []);
    assert.equal(existsSync(out), false);
  });

  test('a missing ffmpeg binary is TRANSCODE_FAILED', async () => {
    await assert.rejects(framesToMp4([png(8, 8)], 6, join(dir, 'x.mp4'), { ffmpegPath: join(dir, 'no-such-ffmpeg') }),
      (err: GatewayError) => err.code === 'TRANSCODE_FAILED' && /could not be started/.test(err.message));
  });
});
