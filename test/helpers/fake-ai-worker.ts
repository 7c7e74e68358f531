/**
 * A fake GPU worker for tests and benchmarks: a real HTTP server on 127.0.0.1 speaking the
 * Livepeer ai-runner API (v0.14) that mediagate calls (docs/wire-contract.md §8), with real,
 * decodable media in its answers and switchable failure modes.
 *
 * What it mirrors from livepeer/ai-runner (`runner/app/routes/*.py`) and go-livepeer:
 *   - `POST /<pipeline>`, JSON or multipart; `GET /health` → `{status}` (no auth, as the
 *     runner's health route); `Authorization: Bearer` checked when a token is set: 401
 *     `{"detail":{"msg":"Invalid bearer token."}}` with `WWW-Authenticate: Bearer`.
 *   - Answers: images `{images:[{url:"data:image/png;base64,...", seed, nsfw:false}]}`;
 *     image-to-video `{frames:[[Media × 8]]}`; audio-to-text `{text, chunks}`; llm an
 *     OpenAI-style completion, or with `stream:true` `text/event-stream` events
 *     `data: <json>\n\n` sent one by one, then `data: [DONE]\n\n`; segment-anything-2
 *     `{masks, scores, logits}` as JSON strings; image-to-text `{text}`; text-to-speech
 *     `{audio:{url:"data:audio/wav;base64,..."}}`.
 *   - Errors: FastAPI 422 `{"detail":[{"type":"missing","loc":["body","prompt"],"msg":"Field required","input":null}]}`
 *     for a missing required field; `{"detail":{"msg"}}` otherwise; a configured model and a
 *     different `model_id` → 400 "pipeline configured with X but called with Y.".
 *   - `capacity` mode answers what go-livepeer answers when no runner is free: 503, plain
 *     text `insufficient capacity` (Go's `http.Error`). The Python runner itself never
 *     refuses work for being busy.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PIPELINES, type Pipeline } from '../../src/domain/pipelines.ts';
import { encodePng, isPng, pngSize } from './png.ts';

/** How the worker answers pipeline requests. */
export type FakeWorkerMode =
  | 'ok'
  /** 500 `{"detail":{"msg":"Pipeline error."}}` (the runner's default message). */
  | 'fail'
  /** Reads the request and never answers. */
  | 'stall'
  /** 400 `{"detail":{"msg": FAKE_BAD_REQUEST_MESSAGE}}`. */
  | 'bad-request'
  /** 503 text/plain `insufficient capacity`. */
  | 'capacity'
  /** 'ok' after this delay. */
  | { readonly delayMs: number };

export type FakeHealthStatus = 'LOADING' | 'OK' | 'ERROR' | 'IDLE';

export const FAKE_BAD_REQUEST_MESSAGE = 'prompt is not acceptable';
/** go-livepeer's refusal body when no runner has room (`http.Error` adds the newline). */
export const CAPACITY_BODY = 'insufficient capacity\n';
export const FAKE_LLM_TEXT = 'Hello from the fake worker.';
export const FAKE_TRANSCRIPT = 'the quick brown fox';
export const FAKE_CAPTION = 'a gradient of colours';
/** Frames in an image-to-video answer. */
export const FAKE_VIDEO_FRAMES = 8;

export interface FakeAiWorkerOptions {
  /** Bearer token required on pipeline and media requests. */
  token?: string;
  /** Pipelines served (others: 404, as a runner serving one pipeline); default all. */
  pipelines?: readonly Pipeline[];
  /** Model per pipeline the "runner" is configured with; a different non-empty model_id gets 400. Default: any. */
  models?: Partial<Record<Pipeline, string>>;
  /** Delay before every answer, ms; default 0. */
  delayMs?: number;
  /** LLM stream: content chunks before [DONE] (default 5) and the gap between them, ms (default 50). */
  streamChunks?: number;
  streamIntervalMs?: number;
  /** How result media are referenced: data: URLs like the runner (default), or URLs served by this fake at /media/<n>. */
  mediaUrls?: 'data' | 'relative' | 'absolute';
}

/** One received request. */
export interface FakeWorkerCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON body, or the multipart text fields. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly files: readonly { field: string; filename: string; contentType: string; size: number }[];
  /** Date.now() when the request body had been read. */
  readonly receivedAt: number;
}

export interface FakeAiWorker {
  /** Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  readonly url: string;
  /** Pipeline requests received, oldest first. */
  readonly calls: FakeWorkerCall[];
  /** Pipeline requests being handled now (a stalled one counts until its connection closes). */
  readonly inFlight: number;
  /** Highest `inFlight` seen since start or `resetStats()`. */
  readonly maxInFlight: number;
  /** `GET /health` requests answered since start or `resetStats()`. */
  readonly healthHits: number;
  /** When each SSE event was written (Date.now()) and its payload, for stream timing checks. */
  readonly sseWrites: { at: number; data: string }[];
  setMode(mode: FakeWorkerMode): void;
  setHealth(status: FakeHealthStatus): void;
  /** Clears `calls`, `sseWrites` and `healthHits`, and resets `maxInFlight` to the current `inFlight`. */
  resetStats(): void;
  /**
   * Answers every result media reference with this URL instead of its own media (a worker
   * pointing the gateway elsewhere); undefined restores the normal answers.
   */
  setResultUrl(url: string | undefined): void;
  /** Makes `GET /media/<name>` answer 302 with `Location: location` (for redirect tests). */
  addRedirect(name: string, location: string): string;
  /** Serves bytes at `GET /media/<name>` (for media-fetch tests). */
  addMedia(name: string, data: Buffer, contentType: string): string;
  /** Closes every connection (stalled ones included) and the server. Idempotent. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 200 * 1024 * 1024;
const MAX_IMAGE_SIDE = 4096;

/** Required fields per pipeline (FastAPI answers 422 when one is missing). */
const REQUIRED: Readonly<Record<Pipeline, readonly string[]>> = {
  'text-to-image': ['prompt'],
  'image-to-image': ['prompt', 'image'],
  'image-to-video': ['image'],
  upscale: ['prompt', 'image'],
  'audio-to-text': ['audio'],
  llm: ['messages'],
  'segment-anything-2': ['image'],
  'image-to-text': ['image'],
  'text-to-speech': [],
};

const JSON_PIPELINES = new Set<Pipeline>(['text-to-image', 'llm', 'text-to-speech']);

interface ParsedRequest {
  fields: Record<string, unknown>;
  files: Map<string, { filename: string; contentType: string; data: Buffer }>;
  /** Set when the body could not be parsed (422 detail). */
  invalid?: string;
}

/** Starts a fake worker on 127.0.0.1 and a free port. */
export async function startFakeAiWorker(options: FakeAiWorkerOptions = {}): Promise<FakeAiWorker> {
  const served = new Set<Pipeline>(options.pipelines ?? PIPELINES);
  const streamChunks = options.streamChunks ?? 5;
  const streamIntervalMs = options.streamIntervalMs ?? 50;
  let mode: FakeWorkerMode = 'ok';
  let health: FakeHealthStatus = 'OK';
  let inFlight = 0;
  let maxInFlight = 0;
  let healthHits = 0;
  let seedCounter = 1000;
  let mediaCounter = 0;
  let resultUrl: string | undefined;
  const redirects = new Map<string, string>();
  const calls: FakeWorkerCall[] = [];
  const sseWrites: { at: number; data: string }[] = [];
  const media = new Map<string, { data: Buffer; contentType: string }>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let baseUrl = '';

  const later = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
    return t;
  };

  const authorized = (req: IncomingMessage): boolean =>
    options.token === undefined || req.headers.authorization === `Bearer ${options.token}`;

  const mediaUrl = (data: Buffer, contentType: string, ext: string): string => {
    if (resultUrl !== undefined) return resultUrl;
    if ((options.mediaUrls ?? 'data') === 'data') return `data:${contentType};base64,${data.toString('base64')}`;
    const name = `${++mediaCounter}.${ext}`;
    media.set(name, { data, contentType });
    return options.mediaUrls === 'relative' ? `/media/${name}` : `${baseUrl}/media/${name}`;
  };

  const answer = (pipeline: Pipeline, parsed: ParsedRequest, res: ServerResponse): void => {
    const f = parsed.fields;
    const seed = typeof f['seed'] === 'number' ? f['seed'] : Number(f['seed']) || seedCounter++;
    switch (pipeline) {
      case 'text-to-image': {
        const width = side(f['width'], 512);
        const height = side(f['height'], 512);
        const count = Math.max(1, Math.min(8, Math.trunc(Number(f['num_images_per_prompt'] ?? 1)) || 1));
        const images = Array.from({ length: count }, (_, i) => ({
          url: mediaUrl(picture(width, height, seed + i), 'image/png', 'png'), seed: seed + i, nsfw: false,
        }));
        return sendJson(res, 200, { images });
      }
      case 'image-to-image':
      case 'upscale': {
        const input = parsed.files.get('image')!.data;
        if (!isPng(input)) return sendJson(res, 400, { detail: { msg: 'cannot identify image file' } });
        const { width, height } = pngSize(input);
        const k = pipeline === 'upscale' ? 2 : 1;
        if (width * k > MAX_IMAGE_SIDE || height * k > MAX_IMAGE_SIDE) return sendJson(res, 400, { detail: { msg: 'image too large' } });
        return sendJson(res, 200, { images: [{ url: mediaUrl(picture(width * k, height * k, seed), 'image/png', 'png'), seed, nsfw: false }] });
      }
      case 'image-to-video': {
        const width = side(f['width'], 1024);
        const height = side(f['height'], 576);
        const frames = Array.from({ length: FAKE_VIDEO_FRAMES }, (_, i) => ({
          url: mediaUrl(picture(width, height, seed, i), 'image/png', 'png'), seed, nsfw: false,
        }));
        return sendJson(res, 200, { frames: [frames] });
      }
      case 'audio-to-text':
        return sendJson(res, 200, { text: FAKE_TRANSCRIPT, chunks: [{ timestamp: [0, 1.5], text: FAKE_TRANSCRIPT }] });
      case 'llm':
        if (f['stream'] === true) return streamLlm(f, res);
        return sendJson(res, 200, llmResponse(f, { role: 'assistant', content: FAKE_LLM_TEXT }, 'stop', 'message'));
      case 'segment-anything-2':
        return sendJson(res, 200, {
          masks: JSON.stringify([[[0, 1, 1], [0, 1, 0]]]),
          scores: JSON.stringify([0.93]),
          logits: JSON.stringify([[[-3.2, 4.1, 5.0], [-2.7, 3.3, -1.9]]]),
        });
      case 'image-to-text':
        return sendJson(res, 200, { text: FAKE_CAPTION });
      case 'text-to-speech':
        return sendJson(res, 200, { audio: { url: mediaUrl(sineWav(0.25), 'audio/wav', 'wav') } });
    }
  };

  const streamLlm = (f: Record<string, unknown>, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const words = FAKE_LLM_TEXT.split(/(?= )/);
    const pieces = Array.from({ length: streamChunks }, (_, i) => words[i % words.length]!);
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const send = (data: string): void => {
      sseWrites.push({ at: Date.now(), data });
      res.write(`data: ${data}\n\n`);
    };
    const next = (): void => {
      if (res.destroyed) return;
      if (i < pieces.length) {
        const last = i === pieces.length - 1;
        send(JSON.stringify(llmResponse(f, { role: 'assistant', content: pieces[i]! }, last ? 'stop' : '', 'delta')));
        i++;
        timer = later(streamIntervalMs, next);
        return;
      }
      send('[DONE]');
      res.end();
    };
    res.on('close', () => { if (timer) { clearTimeout(timer); timers.delete(timer); } });
    next();
  };

  const handlePipeline = async (pipeline: Pipeline, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => { inFlight--; });

    const body = await readBody(req);
    if (!authorized(req)) {
      return sendJson(res, 401, { detail: { msg: 'Invalid bearer token.' } }, { 'www-authenticate': 'Bearer' });
    }
    const parsed = await parseRequest(pipeline, req, body);
    calls.push({
      method: req.method ?? '',
      path: req.url ?? '',
      headers: flatHeaders(req),
      fields: parsed.fields,
      files: [...parsed.files].map(([field, v]) => ({ field, filename: v.filename, contentType: v.contentType, size: v.data.length })),
      receivedAt: Date.now(),
    });

    const current = mode;
    if (current === 'stall') return; // never answered; close() destroys the socket
    const delayMs = typeof current === 'object' ? current.delayMs : options.delayMs ?? 0;
    if (delayMs > 0) await new Promise<void>((r) => later(delayMs, r));
    if (res.destroyed) return;

    if (current === 'capacity') {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end(CAPACITY_BODY);
      return;
    }
    if (parsed.invalid !== undefined) {
      return sendJson(res, 422, { detail: [{ type: 'json_invalid', loc: ['body', 0], msg: parsed.invalid, input: {} }] });
    }
    const missing = REQUIRED[pipeline].filter((name) =>
      parsed.fields[name] === undefined && !parsed.files.has(name));
    if (missing.length > 0) {
      return sendJson(res, 422, { detail: missing.map((name) => ({ type: 'missing', loc: ['body', name], msg: 'Field required', input: null })) });
    }
    const configured = options.models?.[pipeline];
    const requested = pipeline === 'llm' ? parsed.fields['model'] : parsed.fields['model_id'];
    if (configured !== undefined && typeof requested === 'string' && requested !== '' && requested !== configured) {
      const msg = pipeline === 'llm'
        ? `pipeline configured with ${configured} but called with ${requested}`
        : `pipeline configured with ${configured} but called with ${requested}.`;
      return sendJson(res, 400, { detail: { msg } });
    }
    if (current === 'fail') return sendJson(res, 500, { detail: { msg: 'Pipeline error.' } });
    if (current === 'bad-request') return sendJson(res, 400, { detail: { msg: FAKE_BAD_REQUEST_MESSAGE } });
    answer(pipeline, parsed, res);
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = path.replace(/\/+$/, '') || '/';
    void (async () => {
      if (req.method === 'GET' && route === '/health') {
        healthHits++;
        return sendJson(res, 200, { status: health });
      }
      if (req.method === 'GET' && route.startsWith('/media/')) {
        if (!authorized(req)) return sendJson(res, 401, { detail: { msg: 'Invalid bearer token.' } });
        const location = redirects.get(route.slice('/media/'.length));
        if (location !== undefined) {
          res.writeHead(302, { location, 'content-length': 0 });
          res.end();
          return;
        }
        const item = media.get(route.slice('/media/'.length));
        if (item === undefined) return sendJson(res, 404, { detail: 'Not Found' });
        res.writeHead(200, { 'content-type': item.contentType, 'content-length': item.data.length });
        res.end(item.data);
        return;
      }
      const pipeline = route.slice(1) as Pipeline;
      if (req.method === 'POST' && served.has(pipeline)) return handlePipeline(pipeline, req, res);
      req.resume();
      return sendJson(res, 404, { detail: 'Not Found' });
    })().catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { detail: { msg: `fake worker error: ${String(err)}` } });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    calls,
    get inFlight() { return inFlight; },
    get maxInFlight() { return maxInFlight; },
    get healthHits() { return healthHits; },
    sseWrites,
    setMode(m) { mode = m; },
    setHealth(s) { health = s; },
    resetStats() {
      calls.length = 0;
      sseWrites.length = 0;
      maxInFlight = inFlight;
      healthHits = 0;
    },
    setResultUrl(url) { resultUrl = url; },
    addRedirect(name, location) {
      redirects.set(name, location);
      return `${baseUrl}/media/${name}`;
    },
    addMedia(name, data, contentType) {
      media.set(name, { data, contentType });
      return `${baseUrl}/media/${name}`;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > MAX_BODY_BYTES) throw new Error('request body too large for the fake worker');
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

async function parseRequest(pipeline: Pipeline, req: IncomingMessage, body: Buffer): Promise<ParsedRequest> {
  const contentType = req.headers['content-type'] ?? '';
  const files: ParsedRequest['files'] = new Map();
  if (JSON_PIPELINES.has(pipeline)) {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { fields: {}, files, invalid: 'Input should be a valid dictionary' };
      return { fields: parsed as Record<string, unknown>, files };
    } catch {
      return { fields: {}, files, invalid: 'JSON decode error' };
    }
  }
  if (!/^multipart\/form-data/i.test(contentType)) return { fields: {}, files };
  const form = await new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
  const fields: Record<string, unknown> = {};
  for (const [name, value] of form) {
    if (typeof value === 'string') fields[name] = value;
    else files.set(name, { filename: value.name, contentType: value.type, data: Buffer.from(await value.arrayBuffer()) });
  }
  return { fields, files };
}

/** An image side from a request field (number or numeric string), clamped to 8..4096. */
function side(value: unknown, fallback: number): number {
  const n = Math.trunc(Number(value ?? fallback));
  return Number.isFinite(n) && n > 0 ? Math.max(8, Math.min(MAX_IMAGE_SIDE, n)) : fallback;
}

const pictureCache = new Map<string, Buffer>();

/** A deterministic gradient PNG; `frame` shifts it so video frames differ. Cached (bounded). */
function picture(width: number, height: number, seed: number, frame = 0): Buffer {
  const variant = seed % 4;
  const key = `${width}x${height}:${variant}:${frame}`;
  let png = pictureCache.get(key);
  if (png === undefined) {
    png = encodePng(width, height, (x, y) => [
      ((x + frame * 8) * 255) / width,
      (y * 255) / height,
      (variant * 60 + frame * 20) % 256,
    ]);
    if (pictureCache.size >= 64) pictureCache.delete(pictureCache.keys().next().value!);
    pictureCache.set(key, png);
  }
  return png;
}

function llmResponse(f: Record<string, unknown>, content: { role: string; content: string }, finishReason: string, field: 'delta' | 'message'): unknown {
  const messages = Array.isArray(f['messages']) ? f['messages'] as { content?: unknown }[] : [];
  const promptTokens = messages.reduce((n, m) => n + String(m.content ?? '').split(/\s+/).filter(Boolean).length, 0);
  const completionTokens = FAKE_LLM_TEXT.split(' ').length;
  return {
    id: 'chatcmpl-fake',
    model: typeof f['model'] === 'string' && f['model'] !== '' ? f['model'] : String(f['model_id'] ?? 'fake-model'),
    created: Math.floor(Date.now() / 1000),
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    choices: [{ index: 0, finish_reason: finishReason, delta: field === 'delta' ? content : null, message: field === 'message' ? content : null }],
  };
}

/** A real mono 16-bit PCM WAV: a 440 Hz tone at 16 kHz. */
export function sineWav(seconds: number, sampleRate = 16_000): Buffer {
  const samples = Math.round(seconds * sampleRate);
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / sampleRate) * 8000), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
