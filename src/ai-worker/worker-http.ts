/**
 * The reference AI worker's HTTP API: the runner side of the gateway → worker protocol
 * (docs/wire-contract.md §8), as Livepeer's ai-runner v0.14 serves it for the upscale pipeline.
 *
 * - `GET /health` → 200 `{"status": "LOADING" | "IDLE" | "OK" | "ERROR"}`: LOADING while the
 *   models load, IDLE when loaded and nothing runs, OK while at least one upscale runs, ERROR
 *   when loading failed. No auth (as ai-runner).
 * - `POST /upscale`, multipart/form-data: `image` (file, required), `prompt`, `model_id`,
 *   `seed`, `safety_check`, `num_inference_steps` (accepted; ESRGAN uses no prompt, steps
 *   or seed, and has no safety checker, so `nsfw` is always false). 200 →
 *   `{"images":[{"url":"data:image/png;base64,...","seed":<int>,"nsfw":false}]}` with the
 *   PNG exactly `scale` × the input's width and height. The seed is the request's, or a
 *   random one (reported).
 * - Errors `{"detail":{"msg"}}` (ai-runner's shape), 422 validation errors
 *   `{"detail":[{"type","loc":["body",field],"msg","input"}]}` (FastAPI's):
 *   400 bad request (unreadable multipart, zero-byte image, undecodable image, unknown
 *   `model_id` as ai-runner's "pipeline configured with X but called with Y."), 401
 *   `Invalid bearer token.` when a token is configured, 413 file or pixel count above the
 *   limits (a body above `maxImageBytes` + 1 MiB is answered as soon as that is known,
 *   unread when its Content-Length says so; the rest is read and dropped, and the connection
 *   kept if the body ends within 2 s of the answer: src/http/refused-body.ts), 415 not an
 *   image, 422 missing/ill-typed field, 503 `insufficient capacity` (every slot busy;
 *   go-livepeer's wording, which the gateway retries elsewhere without suspending the
 *   worker) or models loading / failed (with `Retry-After`), 500 `Pipeline error.` (details
 *   in the log).
 */
import { randomInt, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.ts';
import { lingerAfterRefusal } from '../http/refused-body.ts';
import { decodeImage, encodePng, ImageInputError } from './image-codec.ts';
import { InferenceError, type InferenceSlot, type PoolState } from './inference-pool.ts';
import { offeredModelIDs, resolveModel } from './models.ts';
import type { AiWorkerConfig } from './config.ts';

export type WorkerHealthStatus = 'LOADING' | 'OK' | 'IDLE' | 'ERROR';

/** What the HTTP layer needs from the inference pool (InferencePool implements it). */
export interface SlotSource {
  readonly state: PoolState;
  readonly loadError: string | undefined;
  readonly inFlight: number;
  tryAcquire(): InferenceSlot | undefined;
}

export type WorkerHttpSettings = Pick<AiWorkerConfig, 'token' | 'models' | 'aliasDefaultModel' | 'maxInputPixels' | 'maxImageBytes' | 'tileSize' | 'tileOverlap'>;

/** go-livepeer's refusal when no runner has room; the gateway matches this text. */
export const INSUFFICIENT_CAPACITY = 'insufficient capacity';

/** Room for the text fields and multipart framing beside the image, bytes. */
const FORM_OVERHEAD_BYTES = 1024 * 1024;
const SEED_LIMIT = 2 ** 32;

type Detail = { msg: string } | ValidationItem[] | string;
interface ValidationItem { type: string; loc: (string | number)[]; msg: string; input: unknown }

/** An HTTP error in the runner's shape. */
class RunnerError extends Error {
  readonly status: number;
  readonly detail: Detail;
  readonly headers: Record<string, string>;
  constructor(status: number, detail: Detail, headers: Record<string, string> = {}) {
    super(typeof detail === 'string' ? detail : Array.isArray(detail) ? detail.map((d) => `${d.loc.join('.')}: ${d.msg}`).join('; ') : detail.msg);
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }
}

/** The worker's health as `/health` reports it (pure). */
export function healthStatus(pool: Pick<SlotSource, 'state' | 'inFlight'>): WorkerHealthStatus {
  if (pool.state === 'LOADING') return 'LOADING';
  if (pool.state === 'ERROR') return 'ERROR';
  return pool.inFlight > 0 ? 'OK' : 'IDLE';
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Whether an Authorization header carries `Bearer <token>` (constant-time comparison). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Reads the body, at most `maxBytes`: past it (or when its Content-Length says so, before
 * reading) the promise rejects with 413 and reading stops there: the request is paused, not
 * destroyed, for {@link lingerAfterRefusal} to drop the rest while the 413 goes out.
 */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return consume(req, maxBytes).then((body) => {
    if (body === undefined) throw tooLarge(maxBytes);
    return body;
  });
}

/** Consumes the rest of a request body; false when it is longer than `maxBytes` or broke off. */
async function drain(req: IncomingMessage, maxBytes: number): Promise<boolean> {
  return (await consume(req, maxBytes, false).catch(() => undefined)) !== undefined;
}

/**
 * Reads a request body. Resolves undefined when it exceeds `maxBytes` (reading stops there);
 * rejects when the client goes away before the end.
 */
function consume(req: IncomingMessage, maxBytes: number, keep = true): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        req.pause();
        resolve(undefined);
        return;
      }
      if (keep) parts.push(chunk);
    };
    const onEnd = (): void => { cleanup(); resolve(Buffer.concat(parts)); };
    const onError = (err: Error): void => { cleanup(); reject(err); };
    const onClose = (): void => { cleanup(); reject(new Error('the client closed the connection during the upload')); };
    if (req.readableEnded) {
      resolve(Buffer.alloc(0));
      return;
    }
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

function tooLarge(maxBytes: number): RunnerError {
  return new RunnerError(413, { msg: `request body is larger than ${maxBytes} bytes` });
}

interface UpscaleForm {
  image: { data: Uint8Array; type: string } | undefined;
  fields: Map<string, string>;
  errors: ValidationItem[];
}

async function parseForm(req: IncomingMessage, body: Buffer): Promise<UpscaleForm> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(contentType)) {
    throw new RunnerError(400, { msg: 'the request must be multipart/form-data with an "image" file part' });
  }
  let form: FormData;
  try {
    form = await new Request('http://ai-worker.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
  } catch {
    throw new RunnerError(400, { msg: 'the multipart/form-data body could not be parsed' });
  }
  const out: UpscaleForm = { image: undefined, fields: new Map(), errors: [] };
  for (const [name, value] of form) {
    if (name === 'image') {
      if (out.image !== undefined) continue;
      if (typeof value === 'string') {
        out.errors.push({ type: 'value_error', loc: ['body', 'image'], msg: 'Value error, Expected UploadFile, received a text field', input: value.slice(0, 100) });
        continue;
      }
      out.image = { data: new Uint8Array(await value.arrayBuffer()), type: value.type };
    } else if (typeof value === 'string') {
      if (!out.fields.has(name)) out.fields.set(name, value);
    } else if (['prompt', 'model_id', 'seed', 'safety_check', 'num_inference_steps'].includes(name)) {
      out.errors.push({ type: 'string_type', loc: ['body', name], msg: 'Input should be a valid string', input: null });
    }
  }
  if (out.image === undefined && !out.errors.some((e) => e.loc[1] === 'image')) {
    out.errors.push({ type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null });
  }
  return out;
}

function integerField(form: UpscaleForm, name: string, min: number, max: number): number | undefined {
  const raw = form.fields.get(name);
  if (raw === undefined || raw === '') return undefined;
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) {
    form.errors.push({ type: 'int_parsing', loc: ['body', name], msg: 'Input should be a valid integer, unable to parse string as an integer', input: raw.slice(0, 100) });
    return undefined;
  }
  const n = Number(raw);
  if (n < min || n > max) {
    form.errors.push({ type: 'value_error', loc: ['body', name], msg: `Input should be between ${min} and ${max}`, input: raw.slice(0, 100) });
    return undefined;
  }
  return n;
}

function booleanField(form: UpscaleForm, name: string): boolean | undefined {
  const raw = form.fields.get(name);
  if (raw === undefined || raw === '') return undefined;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 't', 'yes', 'y', 'on'].includes(v)) return true;
  if (['0', 'false', 'f', 'no', 'n', 'off'].includes(v)) return false;
  form.errors.push({ type: 'bool_parsing', loc: ['body', name], msg: 'Input should be a valid boolean, unable to interpret input', input: raw.slice(0, 100) });
  return undefined;
}

/**
 * The request handler of the worker's HTTP server.
 * @param pool where slots come from (capacity, health)
 */
export function createWorkerHandler(pool: SlotSource, settings: WorkerHttpSettings, logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  const log = logger.child({ component: 'ai-worker-http' });
  const servedIDs = offeredModelIDs(settings.models, settings.aliasDefaultModel);

  async function upscale(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    if (pool.state === 'LOADING') throw new RunnerError(503, { msg: 'the models are still loading' }, { 'retry-after': '5' });
    if (pool.state === 'ERROR') throw new RunnerError(503, { msg: `the models failed to load: ${pool.loadError ?? 'unknown error'}` }, { 'retry-after': '30' });
    if (settings.token !== '' && !tokenMatches(req.headers.authorization, settings.token)) {
      throw new RunnerError(401, { msg: 'Invalid bearer token.' }, { 'www-authenticate': 'Bearer' });
    }
    if (settings.models.length === 0) throw new RunnerError(404, { msg: 'this worker serves no upscale model (models is empty)' });
    // The slot is held for the whole request (decode, inference, encode): capacity bounds memory too.
    const slot = pool.tryAcquire();
    if (slot === undefined) throw new RunnerError(503, { msg: INSUFFICIENT_CAPACITY }, { 'retry-after': '1' });
    const aborted = new AbortController();
    const onClose = (): void => { if (!res.writableFinished) aborted.abort(); };
    res.once('close', onClose);
    try {
      const body = await readBody(req, settings.maxImageBytes + FORM_OVERHEAD_BYTES);
      const form = await parseForm(req, body);
      const seedField = integerField(form, 'seed', 0, SEED_LIMIT - 1);
      integerField(form, 'num_inference_steps', 1, 100_000);
      booleanField(form, 'safety_check');
      if (form.errors.length > 0) throw new RunnerError(422, form.errors);
      const requested = form.fields.get('model_id');
      const model = resolveModel(requested, settings.models, settings.aliasDefaultModel);
      if (model === undefined) {
        throw new RunnerError(400, { msg: `pipeline configured with ${servedIDs.join(', ')} but called with ${String(requested).slice(0, 256)}.` });
      }
      const image = form.image!;
      if (image.data.length > settings.maxImageBytes) {
        throw new RunnerError(413, { msg: `image: ${image.data.length} bytes exceeds this worker's limit of ${settings.maxImageBytes} bytes` });
      }
      const decoded = await decodeImage(image.data, settings.maxInputPixels);
      const outcome = await slot.run({
        scale: model.scale, width: decoded.width, height: decoded.height, rgb: decoded.rgb,
        tileSize: settings.tileSize, tileOverlap: settings.tileOverlap,
      }, aborted.signal);
      const outWidth = decoded.width * model.scale;
      const outHeight = decoded.height * model.scale;
      const png = await encodePng(outcome.rgb, outWidth, outHeight,
        decoded.alpha === undefined ? undefined : { data: decoded.alpha, width: decoded.width, height: decoded.height });
      const seed = seedField ?? randomInt(0, SEED_LIMIT - 1);
      sendJson(res, 200, { images: [{ url: `data:image/png;base64,${png.toString('base64')}`, seed, nsfw: false }] });
      log.info({
        modelID: model.id, width: decoded.width, height: decoded.height, scale: model.scale, tiles: outcome.tiles,
        inferMs: outcome.inferMs, totalMs: Math.round(performance.now() - started), pngBytes: png.length,
      }, 'upscale done');
    } catch (err) {
      if (err instanceof ImageInputError) throw new RunnerError(err.status, { msg: err.message });
      if (err instanceof InferenceError && err.aborted) {
        log.info({ totalMs: Math.round(performance.now() - started) }, 'upscale abandoned by the client');
        return;
      }
      throw err;
    } finally {
      res.off('close', onClose);
      slot.release();
    }
  }

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    void (async () => {
      if (path === '/health') {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new RunnerError(405, 'Method Not Allowed', { allow: 'GET' });
        sendJson(res, 200, { status: healthStatus(pool) });
        return;
      }
      if (path === '/upscale') {
        if (req.method !== 'POST') throw new RunnerError(405, 'Method Not Allowed', { allow: 'POST' });
        await upscale(req, res);
        return;
      }
      throw new RunnerError(404, 'Not Found');
    })().catch(async (err: unknown) => {
      if (res.destroyed) {
        log.debug({ err: err instanceof Error ? err.message : String(err) }, 'client went away');
        return;
      }
      if (!req.readableEnded && !(err instanceof RunnerError && err.status === 413)) {
        // Read what the client is still sending before answering, so the answer is not lost
        // to a reset connection (a gateway would take that for a dead worker, not a refusal).
        await drain(req, settings.maxImageBytes + FORM_OVERHEAD_BYTES);
      }
      // A body refused (413) or longer than the limit: the rest is read and dropped while the
      // answer goes out, rather than the connection closed under a client still writing.
      if (!req.readableEnded && !req.destroyed) lingerAfterRefusal(req, res);
      if (err instanceof RunnerError) {
        // 503 (busy, loading) is routine under load; other 5xx are worth a look.
        if (err.status >= 500 && err.status !== 503) log.warn({ status: err.status, err: err.message }, 'request refused');
        else log.debug({ status: err.status, err: err.message }, 'request rejected');
        sendJson(res, err.status, { detail: err.detail }, err.headers);
      } else {
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'upscale failed');
        sendJson(res, 500, { detail: { msg: 'Pipeline error.' } });
      }
    });
  };
}
