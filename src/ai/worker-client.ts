/**
 * The gateway → GPU worker call (docs/wire-contract.md §8): one HTTP exchange with a worker
 * that speaks the Livepeer ai-runner API (v0.14), classified into the retry taxonomy of
 * `FailureKind` (livekit agents-js style: status errors, connection errors, timeouts).
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
 * This file holds the client object ({@link WorkerClient}). Failures are classified into
 * the retry taxonomy in worker-reply.ts (`classifyErrorReply`); the request encoding (JSON
 * or multipart, worker URLs) is in worker-request.ts, one HTTP exchange with its timer and
 * abort in worker-exchange.ts, and the LLM's SSE stream in worker-sse.ts.
 *
 * The bearer token never appears in an error message, and worker URLs with credentials in
 * them are refused.
 */
import { MULTIPART_FILE_FIELD } from '../domain/pipelines.ts';
import { Exchange, WorkerConnections, type WorkerRequestHeaders } from './worker-exchange.ts';
import { errorReply, WorkerCallError, type WorkerReply } from './worker-reply.ts';
import { encodeMultipart, endpointUrl, type AiRequest, type MultipartBody, type WorkerEndpoint } from './worker-request.ts';
import { sseChunks } from './worker-sse.ts';

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

/** ai-runner `/health` statuses (`LOADING` exists from v0.14; older runners answer OK/ERROR/IDLE). */
export const WORKER_HEALTH_STATUSES = ['LOADING', 'OK', 'ERROR', 'IDLE'] as const;
export type WorkerHealthStatus = (typeof WORKER_HEALTH_STATUSES)[number];

/**
 * Calls workers over its own keep-alive connection pools. The composition root creates one
 * and closes it on shutdown; `close()` ends the pooled connections (idempotent).
 */
export class WorkerClient {
  readonly #connections = new WorkerConnections(KEEP_ALIVE_TIMEOUT_MS);
  /** `endpointUrl` results by worker URL and path, so a call parses no URL (never mutated; cleared past {@link MAX_CACHED_TARGETS}). */
  readonly #targets = new Map<string, URL>();

  #target(workerUrl: string, path: string): URL {
    const key = `${path} ${workerUrl}`;
    let target = this.#targets.get(key);
    if (target === undefined) {
      target = endpointUrl(workerUrl, path);
      if (this.#targets.size >= MAX_CACHED_TARGETS) this.#targets.clear();
      this.#targets.set(key, target);
    }
    return target;
  }

  /**
   * Sends one request to one worker.
   * @returns the parsed JSON answer, or a stream of SSE payloads for a streaming LLM request
   *   answered with `text/event-stream`.
   * @throws WorkerCallError classified as described in the module docs.
   */
  async call(worker: WorkerEndpoint, request: AiRequest, options: CallWorkerOptions): Promise<WorkerReply> {
    const path = `/${request.pipeline}`;
    const target = this.#target(worker.url, request.pipeline);
    const streaming = request.pipeline === 'llm' && request.fields['stream'] === true;
    const headers: WorkerRequestHeaders = { accept: streaming ? 'text/event-stream, application/json' : 'application/json' };
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

    const exchange = new Exchange(this.#connections, options.signal);
    let handedOff = false;
    try {
      exchange.arm(options.timeoutMs);
      const response = await exchange.run(options.timeoutMs, path, () => exchange.send(target, 'POST', headers, body));
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        const text = await exchange.run(options.timeoutMs, path, () => exchange.readText(response, ERROR_BODY_BYTES, false));
        throw errorReply(status, text, path);
      }
      const contentType = (response.header('content-type') ?? '').toLowerCase();
      if (streaming && contentType.startsWith('text/event-stream')) {
        exchange.disarm();
        handedOff = true;
        return { kind: 'stream', chunks: sseChunks(response.body, exchange, options.timeoutMs, path) };
      }
      const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
      const text = await exchange.run(options.timeoutMs, path, () => exchange.readText(response, maxBytes, true));
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
   * Posts a JSON body to `<base>/<path>` and returns the parsed JSON answer (the live
   * pipeline's start, `POST /live-video-to-video`, whose body is not an ai-runner batch request).
   * @param timeoutMs limit for the whole exchange, ms
   * @throws WorkerCallError classified like {@link call}'s failures
   */
  async postJson(worker: WorkerEndpoint, path: string, json: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    const target = this.#target(worker.url, path);
    const headers: WorkerRequestHeaders = { accept: 'application/json', 'content-type': 'application/json' };
    if (worker.token !== undefined && worker.token !== '') headers['authorization'] = `Bearer ${worker.token}`;
    const exchange = new Exchange(this.#connections, options.signal);
    const label = `/${path}`;
    try {
      exchange.arm(options.timeoutMs);
      const response = await exchange.run(options.timeoutMs, label, () => exchange.send(target, 'POST', headers, Buffer.from(JSON.stringify(json))));
      const status = response.statusCode ?? 0;
      const ok = status >= 200 && status <= 299;
      const text = await exchange.run(options.timeoutMs, label, () => exchange.readText(response, ok ? DEFAULT_MAX_RESPONSE_BYTES : ERROR_BODY_BYTES, ok));
      if (!ok) throw errorReply(status, text, label);
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new WorkerCallError('server', `worker answered ${label} with a body that is not JSON`, { status, cause: err });
      }
    } finally {
      exchange.dispose();
    }
  }

  /**
   * Asks a worker for its state (`GET <base>/health`).
   * @param timeoutMs limit for the whole exchange, ms
   * @throws WorkerCallError on no answer, an error status, or a body without a known status.
   */
  async checkHealth(worker: WorkerEndpoint, timeoutMs: number): Promise<WorkerHealthStatus> {
    const target = this.#target(worker.url, 'health');
    const headers: WorkerRequestHeaders = { accept: 'application/json' };
    if (worker.token !== undefined && worker.token !== '') headers['authorization'] = `Bearer ${worker.token}`;
    const exchange = new Exchange(this.#connections, undefined);
    try {
      exchange.arm(timeoutMs);
      const response = await exchange.run(timeoutMs, '/health', () => exchange.send(target, 'GET', headers, undefined));
      const httpStatus = response.statusCode ?? 0;
      const ok = httpStatus >= 200 && httpStatus <= 299;
      const text = await exchange.run(timeoutMs, '/health', () => exchange.readText(response, ERROR_BODY_BYTES, ok));
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
    this.#connections.close();
  }
}

/** Worker URLs × paths whose parsed URL is kept (a few workers × a few paths in practice). */
const MAX_CACHED_TARGETS = 1024;

/**
 * How long an idle connection to a worker stays open, ms: closed before the runners' servers
 * close it (uvicorn's default keep-alive timeout is 5 s), so a request is rarely sent on a
 * connection the worker is closing. The connections are undici's (worker-exchange.ts
 * `WorkerConnections`): about half the CPU per call of node:http's client, a third of
 * fetch's (bench/README.md §4).
 */
const KEEP_ALIVE_TIMEOUT_MS = 4000;
