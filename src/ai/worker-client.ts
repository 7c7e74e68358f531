/**
 * The gateway → GPU worker call (docs/wire-contract.md §8): one HTTP exchange with a worker
 * that speaks the Livepeer ai-runner API (v0.14), classified into the retry taxonomy of
 * {@link FailureKind} (livekit agents-js style: status errors, connection errors, timeouts).
 *
 * Wire facts this relies on (checked in livepeer/ai-runner `runner/app/routes/*.py` and
 * livepeer/go-livepeer `server/ai_http.go`):
 *   - `POST <base>/<pipeline>`; JSON pipelines take a JSON body, the others multipart
 *     (MULTIPART_FILE_FIELD); `model_id` must be empty or equal to the runner's model, else
 *     400 "pipeline configured with X but called with Y."; the LLM route reads `model`.
 *   - Optional `Authorization: Bearer <AUTH_TOKEN>`; a wrong token gets 401
 *     `{"detail":{"msg":"Invalid bearer token."}}`.
 *   - Errors are `{"detail":{"msg"}}` (400 for bad input/LoRA/inference errors, 500 for
 *     the rest, "GPU out of memory." included); FastAPI validation errors are 422
 *     `{"detail":[{"loc":["body","prompt"],"msg":"Field required",...}]}`.
 *   - LLM `stream:true`: `text/event-stream` with `data: <json>\n\n` events and a final
 *     `data: [DONE]\n\n`; a failure mid-stream is sent as `data: {"error": "..."}` and the
 *     stream ends without [DONE].
 *   - Busy: the Python runner itself never refuses work (it queues/runs requests as they
 *     come). "No room" comes from go-livepeer in front of runners (an orchestrator or its
 *     ai-worker): HTTP 503 with the plain-text body `insufficient capacity` (Go's
 *     `http.Error`); Livepeer's gateway detects it by that substring. Both are handled here.
 *
 * Classification ({@link classifyErrorReply}): 503, 429 or a body saying "insufficient
 * capacity" → `capacity`; 408 and 5xx → `server`; 401/403/404/405 → `server` too (the
 * worker rejects the gateway's credentials or lacks the route: a worker problem, and the
 * client must not see "Invalid bearer token."); a 400 "pipeline configured with ..." →
 * `server` (the worker runs another model than registered); other 4xx → `client`, with
 * the worker's reason. Connection failures → `connection`; timeout or abort → `timeout`.
 *
 * The bearer token never appears in an error message, and worker URLs with credentials in
 * them are refused.
 */
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { MULTIPART_FILE_FIELD, type FailureKind, type Pipeline } from '../domain/pipelines.ts';

/** A worker's address: the ai-runner base URL (paths are appended) and its optional bearer token. */
export interface WorkerEndpoint {
  /** Base URL, e.g. `http://10.0.0.5:8000` or `http://host/runner/` (no credentials in it). */
  readonly url: string;
  readonly token?: string;
}

/**
 * One uploaded file of a multipart request: its bytes in memory (`data`), or a file on
 * disk (`path`, `sizeBytes`) that is streamed to the worker on each attempt without
 * being read into memory.
 */
export type AiRequestFile = {
  readonly field: string;
  readonly filename: string;
  readonly contentType: string;
} & ({ readonly data: Buffer } | { readonly path: string; readonly sizeBytes: number });

/** A validated AI request, ready to be sent to a worker. */
export interface AiRequest {
  readonly pipeline: Pipeline;
  readonly modelID: string;
  /** JSON pipelines: the body as received (validated); `model_id` is set from `modelID`. Multipart: the text fields. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** Multipart pipelines: the uploaded file(s). */
  readonly files?: readonly AiRequestFile[];
}

/**
 * A worker's successful answer: a parsed 2xx JSON body, or (LLM with `stream:true`) the
 * `data:` payloads of its SSE stream as they arrive, ending with `[DONE]`.
 *
 * A stream must be iterated to its end or left early with `break`/`return()` (which closes
 * the connection); iteration throws {@link WorkerCallError} when the worker stalls for more
 * than the timeout between chunks, reports an error event, or ends without `[DONE]`.
 */
export type WorkerReply =
  | { readonly kind: 'json'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'stream'; readonly chunks: AsyncIterable<string> };

export interface CallWorkerOptions {
  /**
   * JSON replies: limit for the whole exchange (connect, upload, wait, download), ms.
   * Streams: limit until the response headers, then for each gap between chunks.
   */
  readonly timeoutMs: number;
  /** Aborting ends the call (or the stream) with a `timeout` failure. */
  readonly signal?: AbortSignal;
  /** Largest JSON reply body accepted, bytes; default {@link DEFAULT_MAX_RESPONSE_BYTES}. Bigger → `server`. */
  readonly maxResponseBytes?: number;
}

/** Default cap of a JSON reply: image-to-video answers carry 25 frames as base64 PNG data URLs. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/** At most this much of an error body is read (for its message). */
const ERROR_BODY_BYTES = 64 * 1024;
/** Worker messages are cut to this many characters. */
const MAX_WORKER_MESSAGE_CHARS = 500;

/** ai-runner `/health` statuses (`LOADING` exists from v0.14; older runners answer OK/ERROR/IDLE). */
export const WORKER_HEALTH_STATUSES = ['LOADING', 'OK', 'ERROR', 'IDLE'] as const;
export type WorkerHealthStatus = (typeof WORKER_HEALTH_STATUSES)[number];

/** A failed worker call, classified for the retry policy. */
export class WorkerCallError extends Error {
  readonly kind: FailureKind;
  /** HTTP status when the worker answered. */
  readonly status: number | undefined;
  /** The worker's own reason (`detail.msg`, a 422 summary, or its plain-text body), when it gave one. */
  readonly workerMessage: string | undefined;

  constructor(kind: FailureKind, message: string, options: { status?: number; workerMessage?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WorkerCallError';
    this.kind = kind;
    this.status = options.status;
    this.workerMessage = options.workerMessage;
  }
}

export function isWorkerCallError(err: unknown): err is WorkerCallError {
  return err instanceof WorkerCallError;
}

/**
 * Calls workers over its own keep-alive connection pools. The composition root creates one
 * and closes it on shutdown; `close()` ends the pooled connections (idempotent).
 */
export class WorkerClient {
  readonly #agents: WorkerAgents = { http: new HttpAgent(AGENT_OPTIONS), https: new HttpsAgent(AGENT_OPTIONS) };

  /**
   * Sends one request to one worker.
   * @returns the parsed JSON answer, or a stream of SSE payloads for a streaming LLM request
   *   answered with `text/event-stream`.
   * @throws WorkerCallError classified as described in the module docs.
   */
  async call(worker: WorkerEndpoint, request: AiRequest, options: CallWorkerOptions): Promise<WorkerReply> {
    const path = `/${request.pipeline}`;
    const target = endpointUrl(worker.url, request.pipeline);
    const streaming = request.pipeline === 'llm' && request.fields['stream'] === true;
    const headers: OutgoingHttpHeaders = { accept: streaming ? 'text/event-stream, application/json' : 'application/json' };
    if (worker.token !== undefined && worker.token !== '') headers['authorization'] = `Bearer ${worker.token}`;

    let body: Buffer | MultipartBody;
    if (MULTIPART_FILE_FIELD[request.pipeline] !== undefined) {
      const form = encodeMultipart(request);
      body = form;
      headers['content-type'] = form.contentType;
    } else {
      const json: Record<string, unknown> = { ...request.fields, model_id: request.modelID };
      // The runner's LLM route reads `model` (it must be empty or the runner's model).
      if (request.pipeline === 'llm') json['model'] = request.modelID;
      body = Buffer.from(JSON.stringify(json));
      headers['content-type'] = 'application/json';
    }

    const exchange = new Exchange(this.#agents, options.signal);
    let handedOff = false;
    try {
      exchange.arm(options.timeoutMs);
      const response = await exchange.run(options.timeoutMs, path, () => exchange.send(target, 'POST', headers, body));
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        const text = await exchange.run(options.timeoutMs, path, () => readText(response, ERROR_BODY_BYTES, false));
        throw errorReply(status, text, path);
      }
      const contentType = (response.headers['content-type'] ?? '').toLowerCase();
      if (streaming && contentType.startsWith('text/event-stream')) {
        exchange.disarm();
        handedOff = true;
        return { kind: 'stream', chunks: sseChunks(response, exchange, options.timeoutMs, path) };
      }
      const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
      const text = await exchange.run(options.timeoutMs, path, () => readText(response, maxBytes, true));
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new WorkerCallError('server', `worker answered ${path} with a body that is not JSON`, { status, cause: err });
      }
      return { kind: 'json', status, body: parsed };
    } finally {
      if (!handedOff) exchange.dispose();
    }
  }

  /**
   * Asks a worker for its state (`GET <base>/health`).
   * @param timeoutMs limit for the whole exchange, ms
   * @throws WorkerCallError on no answer, an error status, or a body without a known status.
   */
  async checkHealth(worker: WorkerEndpoint, timeoutMs: number): Promise<WorkerHealthStatus> {
    const target = endpointUrl(worker.url, 'health');
    const headers: OutgoingHttpHeaders = { accept: 'application/json' };
    if (worker.token !== undefined && worker.token !== '') headers['authorization'] = `Bearer ${worker.token}`;
    const exchange = new Exchange(this.#agents, undefined);
    try {
      exchange.arm(timeoutMs);
      const response = await exchange.run(timeoutMs, '/health', () => exchange.send(target, 'GET', headers, undefined));
      const httpStatus = response.statusCode ?? 0;
      const ok = httpStatus >= 200 && httpStatus <= 299;
      const text = await exchange.run(timeoutMs, '/health', () => readText(response, ERROR_BODY_BYTES, ok));
      if (!ok) throw errorReply(httpStatus, text, '/health');
      let status: unknown;
      try {
        status = (JSON.parse(text) as { status?: unknown } | null)?.status;
      } catch {
        status = undefined;
      }
      if (typeof status === 'string' && (WORKER_HEALTH_STATUSES as readonly string[]).includes(status)) return status as WorkerHealthStatus;
      throw new WorkerCallError('server', 'worker health answer has no known status', { status: httpStatus });
    } finally {
      exchange.dispose();
    }
  }

  /** Closes the pooled connections (in-flight exchanges are ended too). Idempotent. */
  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}

/**
 * Classifies a non-2xx worker answer (pure).
 * @param status HTTP status
 * @param bodyText the start of the body (JSON or plain text)
 */
export function classifyErrorReply(status: number, bodyText: string): { kind: FailureKind; workerMessage: string | undefined } {
  const workerMessage = workerMessageOf(bodyText);
  const said = workerMessage ?? '';
  let kind: FailureKind;
  if (/insufficient capacity/i.test(said) || status === 503 || status === 429) kind = 'capacity';
  else if (status === 408 || status >= 500) kind = 'server';
  else if (status === 401 || status === 403 || status === 404 || status === 405) kind = 'server';
  else if (status === 400 && /^pipeline configured with /i.test(said)) kind = 'server';
  else if (status >= 400) kind = 'client';
  else kind = 'server'; // 1xx/3xx: not part of the protocol
  return { kind, workerMessage };
}

/**
 * The worker's reason in an error body: `detail.msg`, a FastAPI 422 `detail` array as
 * "field: message; ...", a string `detail`, an `error` string/message, or a plain-text body.
 * Cut to 500 characters; undefined for an empty body.
 */
export function workerMessageOf(bodyText: string): string | undefined {
  const text = bodyText.trim();
  if (text === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return cut(text);
  }
  if (typeof parsed !== 'object' || parsed === null) return cut(text);
  const record = parsed as Record<string, unknown>;
  const detail = record['detail'];
  if (typeof detail === 'string') return cut(detail);
  if (Array.isArray(detail)) return cut(detail.map(validationItem).join('; '));
  if (typeof detail === 'object' && detail !== null) {
    const msg = (detail as Record<string, unknown>)['msg'];
    if (typeof msg === 'string') return cut(msg);
  }
  const error = record['error'];
  if (typeof error === 'string') return cut(error);
  if (typeof error === 'object' && error !== null && typeof (error as Record<string, unknown>)['message'] === 'string') {
    return cut((error as Record<string, string>)['message']!);
  }
  return cut(text);
}

/** One FastAPI validation item as "field: message" (the `body`/`query` location prefix dropped). */
function validationItem(item: unknown): string {
  if (typeof item !== 'object' || item === null) return String(item);
  const { loc, msg } = item as { loc?: unknown; msg?: unknown };
  const parts = Array.isArray(loc) ? loc.map(String) : [];
  if (parts.length > 1 && ['body', 'query', 'path', 'header', 'form'].includes(parts[0]!)) parts.shift();
  const message = typeof msg === 'string' ? msg : 'invalid';
  return parts.length > 0 ? `${parts.join('.')}: ${message}` : message;
}

function cut(s: string): string {
  return s.length > MAX_WORKER_MESSAGE_CHARS ? `${s.slice(0, MAX_WORKER_MESSAGE_CHARS)}…` : s;
}

function errorReply(status: number, bodyText: string, path: string): WorkerCallError {
  const { kind, workerMessage } = classifyErrorReply(status, bodyText);
  const reason = workerMessage === undefined ? '' : `: ${workerMessage}`;
  return new WorkerCallError(kind, `worker answered ${status} to ${path}${reason}`, {
    status, ...(workerMessage === undefined ? {} : { workerMessage }),
  });
}

/**
 * `<base>/<path>`, keeping any path prefix of the base.
 * @throws WorkerCallError('connection') for an unusable base URL.
 */
export function endpointUrl(base: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch (err) {
    throw new WorkerCallError('connection', 'worker URL is not a valid URL', { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WorkerCallError('connection', 'worker URL must be http or https');
  if (url.username !== '' || url.password !== '') throw new WorkerCallError('connection', 'worker URL must not contain credentials (use the token)');
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return new URL(path, url);
}

/**
 * A multipart body as its pieces: bytes in memory and files on disk, in order. Its length
 * is known up front (sent as Content-Length); `open()` gives a fresh stream of it per attempt.
 */
export interface MultipartBody {
  readonly contentType: string;
  readonly lengthBytes: number;
  readonly parts: readonly (Buffer | { readonly path: string; readonly sizeBytes: number })[];
  /** The whole body as a stream, files read from disk in chunks as the socket drains. */
  open(): Readable;
}

/**
 * A `multipart/form-data` body (RFC 7578) for a multipart pipeline: the text fields, then
 * `model_id`, then the file(s). Names and filenames are escaped as browsers and undici's
 * FormData do (`"` → %22, CR → %0D, LF → %0A). Files on disk stay there until sent.
 */
export function encodeMultipart(request: AiRequest): MultipartBody {
  const boundary = `----mediagate${randomBytes(16).toString('hex')}`;
  const escape = (name: string): string => name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const parts: (Buffer | { readonly path: string; readonly sizeBytes: number })[] = [];
  const field = (name: string, value: string): void => {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"\r\n\r\n${value}\r\n`));
  };
  const fileFields = new Set((request.files ?? []).map((f) => f.field));
  for (const [name, value] of Object.entries(request.fields)) {
    // Files travel as files; a validator may have left placeholders for them in the fields.
    if (value === undefined || value === null || name === 'model_id' || fileFields.has(name)) continue;
    field(name, typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  field('model_id', request.modelID);
  for (const file of request.files ?? []) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${escape(file.field)}"; filename="${escape(file.filename)}"\r\nContent-Type: ${file.contentType}\r\n\r\n`));
    parts.push('data' in file ? file.data : { path: file.path, sizeBytes: file.sizeBytes }, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const lengthBytes = parts.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.sizeBytes), 0);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    lengthBytes,
    parts,
    open: () => Readable.from(multipartChunks(parts), { objectMode: false }),
  };
}

async function* multipartChunks(parts: MultipartBody['parts']): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (Buffer.isBuffer(part)) {
      yield part;
      continue;
    }
    let sent = 0;
    for await (const chunk of createReadStream(part.path)) {
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    // The declared Content-Length must hold: a file that changed size would corrupt the body.
    if (sent !== part.sizeBytes) throw new Error(`upload file is ${sent} bytes, expected ${part.sizeBytes}`);
  }
}

/**
 * Reads at most `maxBytes` of a body (a fetch Response's `body`, an IncomingMessage, any
 * byte stream); stops reading (and closes the stream) once past it.
 * @param overflow what a longer body does: `throw` `tooLarge()`, or `truncate` to `maxBytes`.
 */
export async function readBodyCapped(body: AsyncIterable<Uint8Array> | null, maxBytes: number, overflow: 'throw' | 'truncate', tooLarge: () => Error): Promise<Buffer> {
  if (body === null) return Buffer.alloc(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const value of body) {
    total += value.byteLength;
    if (total > maxBytes) {
      if (overflow === 'throw') throw tooLarge();
      parts.push(value.subarray(0, value.byteLength - (total - maxBytes)));
      break;
    }
    parts.push(value);
  }
  return parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength) : Buffer.concat(parts);
}

/**
 * Reads a body as UTF-8 text.
 * @param strict true: a body over `maxBytes` is an error; false: keep the first `maxBytes`.
 */
async function readText(response: IncomingMessage, maxBytes: number, strict: boolean): Promise<string> {
  const body = await readBodyCapped(response, maxBytes, strict ? 'throw' : 'truncate',
    () => new WorkerCallError('server', `worker answer is larger than ${maxBytes} bytes`, { status: response.statusCode }));
  // A connection that closed mid-body must not pass for a short answer.
  if (strict && !response.complete) throw new Error('connection closed before the answer was complete');
  return body.toString('utf8');
}

/**
 * Keep-alive connection pools to workers (one pair per {@link WorkerClient}). Idle connections are closed after 4 s, before the
 * runners' servers close them (uvicorn's default keep-alive timeout is 5 s), so a request is
 * rarely sent on a connection the worker is closing. node:http rather than fetch: a third of
 * the CPU per call (bench/ai-overhead.ts).
 */
const AGENT_OPTIONS = { keepAlive: true, timeout: 4000, scheduling: 'lifo' } as const;

/** The connection pools of one worker client, by URL scheme. */
interface WorkerAgents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

/**
 * One HTTP exchange with a worker: a resettable timer and the caller's signal both end it
 * (destroying the request and its connection) and remember why, so a failed step can be
 * classified.
 */
class Exchange {
  #reason: 'timeout' | 'aborted' | undefined;
  #timer: NodeJS.Timeout | undefined;
  #request: ClientRequest | undefined;
  #response: IncomingMessage | undefined;
  readonly #agents: WorkerAgents;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#abort('aborted');

  constructor(agents: WorkerAgents, signal: AbortSignal | undefined) {
    this.#agents = agents;
    this.#signal = signal;
    if (signal?.aborted) this.#abort('aborted');
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Sends the request; resolves with the response once its headers arrived. A multipart
   * body is streamed (files read from disk as the connection drains).
   */
  send(target: URL, method: 'GET' | 'POST', headers: OutgoingHttpHeaders, body: Buffer | MultipartBody | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const https = target.protocol === 'https:';
      const lengthBytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body.length : body.lengthBytes;
      const req = (https ? httpsRequest : httpRequest)(target, {
        method, agent: https ? this.#agents.https : this.#agents.http,
        headers: lengthBytes === undefined ? headers : { ...headers, 'content-length': lengthBytes },
      });
      this.#request = req;
      req.once('response', (res) => { this.#response = res; resolve(res); });
      req.on('error', reject);
      req.once('close', () => reject(new Error('connection closed before an answer')));
      if (this.#reason !== undefined) {
        req.destroy();
      } else if (body === undefined || Buffer.isBuffer(body)) {
        req.end(body);
      } else {
        const source = body.open();
        source.once('error', (err) => req.destroy(err));
        req.once('close', () => source.destroy());
        source.pipe(req);
      }
    });
  }

  arm(timeoutMs: number): void {
    this.disarm();
    this.#timer = setTimeout(() => this.#abort('timeout'), timeoutMs);
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Ends the exchange and releases the listener. A response read to its end leaves its
   * connection to the keep-alive pool; anything else (unread or partly read) is destroyed.
   */
  dispose(): void {
    this.disarm();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#response === undefined || !this.#response.complete) this.#destroy();
  }

  #destroy(): void {
    this.#response?.destroy();
    this.#request?.destroy();
  }

  #abort(reason: 'timeout' | 'aborted'): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#destroy();
  }

  /** Runs one step; a rejection becomes a classified WorkerCallError. */
  async run<T>(timeoutMs: number, path: string, step: () => Promise<T>): Promise<T> {
    if (this.#reason !== undefined) throw this.failure(undefined, timeoutMs, path);
    try {
      return await step();
    } catch (err) {
      throw this.failure(err, timeoutMs, path);
    }
  }

  failure(err: unknown, timeoutMs: number, path: string): WorkerCallError {
    if (this.#reason === 'timeout') return new WorkerCallError('timeout', `worker did not answer ${path} within ${timeoutMs} ms`);
    if (this.#reason === 'aborted') return new WorkerCallError('timeout', `worker call to ${path} was aborted`);
    if (err instanceof WorkerCallError) return err;
    return new WorkerCallError('connection', `worker connection failed on ${path}: ${connectionReason(err)}`, { cause: err });
  }
}

/** A short reason for a connection/stream failure: the system error code when there is one. */
function connectionReason(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code !== 'ERR_STREAM_PREMATURE_CLOSE') return code;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The `data:` payloads of an SSE body, yielded as each event completes. The stall timer
 * runs only while waiting for the worker, not while the consumer handles a chunk.
 */
async function* sseChunks(body: IncomingMessage, exchange: Exchange, stallMs: number, path: string): AsyncGenerator<string> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const decoder = new TextDecoder();
  const parser = new SseDataParser();
  try {
    let ended = false;
    while (!ended) {
      exchange.arm(stallMs);
      const result = await exchange.run(stallMs, path, () => chunks.next()).finally(() => exchange.disarm());
      const payloads = result.done ? [...parser.push(decoder.decode()), ...parser.end()] : parser.push(decoder.decode(result.value, { stream: true }));
      ended = result.done === true;
      for (const data of payloads) {
        const error = streamError(data);
        if (error !== undefined) {
          throw new WorkerCallError('server', `worker stream on ${path} failed: ${error}`, { status: 200, workerMessage: error });
        }
        yield data;
        if (data === '[DONE]') return;
      }
    }
    throw new WorkerCallError('server', `worker stream on ${path} ended without [DONE]`, { status: 200 });
  } finally {
    exchange.dispose();
  }
}

/** The message of an ai-runner stream error event (`{"error": "..."}`), if this payload is one. */
function streamError(data: string): string | undefined {
  if (!data.startsWith('{"error"')) return undefined;
  try {
    const parsed = JSON.parse(data) as Record<string, unknown>;
    if ('choices' in parsed) return undefined;
    return cut(typeof parsed['error'] === 'string' ? parsed['error'] : JSON.stringify(parsed['error']));
  } catch {
    return undefined;
  }
}

/**
 * The `data` payloads of a Server-Sent Events stream (WHATWG HTML §9.2.6), parsed by
 * `eventsource-parser`: lines end in CRLF, LF or CR; `data:` lines of one event are joined
 * with LF; comments and other fields are ignored; a blank line dispatches the event.
 * Exported for tests.
 */
export class SseDataParser {
  readonly #parser: EventSourceParser;
  #completed: string[] = [];

  constructor() {
    this.#parser = createParser({ onEvent: (event) => { this.#completed.push(event.data); } });
  }

  /** Feeds decoded text; returns the payloads of the events it completed. */
  push(text: string): string[] {
    this.#parser.feed(text);
    return this.#take();
  }

  /** End of input: a last event not followed by a blank line is still delivered (lenient). */
  end(): string[] {
    this.#parser.feed('\n\n');
    this.#parser.reset();
    return this.#take();
  }

  #take(): string[] {
    const out = this.#completed;
    this.#completed = [];
    return out;
  }
}
