/**
 * `POST /live-video-to-video` on the reference worker: starts a live stream, as a Livepeer
 * orchestrator with its ai-runner does (wire in docs/wire-contract.md "Live video-to-video").
 *
 * Request JSON `{model_id?, params?, gateway_request_id?, stream_id?}`. The worker creates
 * four trickle channels on its own HTTP server (`/ai/trickle/<mid>`, `<mid>-out`,
 * `<mid>-control`, `<mid>-events`, `<mid>` a random 24-hex-digit manifest ID) and answers
 * 200 `{publish_url, subscribe_url, control_url, events_url, manifest_id, request_id}` with
 * absolute URLs on its public base URL. Named from the gateway's side: the gateway publishes
 * input segments to `publish_url`, subscribes to output on `subscribe_url`, publishes params
 * to `control_url` and subscribes to status events on `events_url`. DELETE of `publish_url`
 * (the gateway's publisher closing) ends the stream once what was sent is processed.
 *
 * Errors `{"detail":{"msg"}}`: 400 body not a JSON object, unknown `model_id` (ai-runner's
 * "pipeline configured with X but called with Y."), bad `params` (the message names the
 * field); 401 `Invalid bearer token.` when the worker has a token; 413 a body above 1 MiB
 * (answered once that many bytes arrived; the rest is read and dropped, and the connection
 * kept if the body ends within 2 s of the answer: src/http/refused-body.ts); 503 `insufficient
 * capacity` with `Retry-After: 1` when `liveCapacity` streams run (the gateway tries another
 * worker without suspending this one), or when the live pipeline is off (`liveCapacity` 0).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LIVE_DEFAULT_MODEL_ID } from '../domain/pipelines.ts';
import type { Logger } from '../log/logger.ts';
import { lingerAfterRefusal } from '../http/refused-body.ts';
import { MIME_JSON, MIME_MPEGTS, TRICKLE_BASE_PATH, type TrickleServer } from '../trickle/index.ts';
import { LiveParamsError, parseLiveParams } from './live-params.ts';
import { LiveSession } from './live-session.ts';

/** go-livepeer's refusal when no runner has room (the gateway matches the text). */
const INSUFFICIENT_CAPACITY = 'insufficient capacity';
/** Largest start request body, bytes (the JSON is a few hundred bytes; 413 above). */
const MAX_START_BODY_BYTES = 1024 * 1024;

export interface LiveStreamsOptions {
  readonly trickle: TrickleServer;
  /** Where this process reaches its own server (e.g. http://127.0.0.1:8000). */
  readonly localUrl: string;
  /** The base URL handed to the gateway in the channel URLs. */
  readonly publicUrl: string;
  /** Streams at once; 0 = the live pipeline is off. */
  readonly capacity: number;
  /** Bearer token required on the start request; empty = none. */
  readonly token: string;
  readonly statusIntervalMs: number;
  readonly keyframeIntervalSec: number;
  readonly inputTimeoutMs: number;
  readonly logger: Logger;
  /** Test seam and hook: called when a stream starts or ends. */
  readonly onChange?: () => void;
}

class StartError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, msg: string, headers: Record<string, string> = {}) {
    super(msg);
    this.status = status;
    this.headers = headers;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * Reads the start request's JSON body.
 * @throws StartError 413 once more than {@link MAX_START_BODY_BYTES} arrived (the request is
 *   left open and unread from there, for {@link lingerAfterRefusal}); 400 when it is not JSON
 */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let total = 0;
  // An iterator that does not destroy the request when the loop is left: `for await (… of req)`
  // would, and its socket with it, before the 413 is sent.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_START_BODY_BYTES) throw new StartError(413, `request body is larger than ${MAX_START_BODY_BYTES} bytes`);
    parts.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new StartError(400, 'the request body must be JSON');
  }
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new StartError(400, `${key} must be a string`);
  return v;
}

/** The live streams of one worker and the handler of their start request. */
export class LiveStreams {
  readonly #o: LiveStreamsOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, LiveSession>();
  #closed = false;

  constructor(options: LiveStreamsOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'ai-worker-live' });
  }

  /** Streams running now. */
  get active(): number {
    return this.#sessions.size;
  }

  /** The running sessions by manifest ID. */
  get sessions(): ReadonlyMap<string, LiveSession> {
    return this.#sessions;
  }

  /** Handles `POST /live-video-to-video` (see the module docs); `tokenOk` checks the bearer token. */
  async handleStart(req: IncomingMessage, res: ServerResponse, tokenOk: (header: string | undefined) => boolean): Promise<void> {
    try {
      if (req.method !== 'POST') throw new StartError(405, 'Method Not Allowed', { allow: 'POST' });
      if (this.#o.token !== '' && !tokenOk(req.headers.authorization)) throw new StartError(401, 'Invalid bearer token.', { 'www-authenticate': 'Bearer' });
      const raw = await readJson(req);
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new StartError(400, 'the request body must be a JSON object');
      const body = raw as Record<string, unknown>;
      const requested = optionalString(body, 'model_id');
      const modelID = requested === undefined || requested === '' ? LIVE_DEFAULT_MODEL_ID : requested;
      if (modelID !== LIVE_DEFAULT_MODEL_ID) throw new StartError(400, `pipeline configured with ${LIVE_DEFAULT_MODEL_ID} but called with ${modelID.slice(0, 256)}.`);
      let params;
      try {
        params = parseLiveParams(body['params']);
      } catch (err) {
        if (err instanceof LiveParamsError) throw new StartError(400, err.message);
        throw err;
      }
      const requestID = optionalString(body, 'gateway_request_id') ?? randomBytes(8).toString('hex');
      const streamID = optionalString(body, 'stream_id');
      if (this.#closed || this.#o.capacity === 0 || this.#sessions.size >= this.#o.capacity) {
        throw new StartError(503, INSUFFICIENT_CAPACITY, { 'retry-after': '1' });
      }
      const mid = randomBytes(12).toString('hex');
      const names = { input: mid, output: `${mid}-out`, control: `${mid}-control`, events: `${mid}-events` };
      const { trickle } = this.#o;
      trickle.createChannel(names.input, { mimeType: MIME_MPEGTS });
      trickle.createChannel(names.output, { mimeType: MIME_MPEGTS });
      trickle.createChannel(names.control, { mimeType: MIME_JSON });
      trickle.createChannel(names.events, { mimeType: MIME_JSON });
      const local = (name: string): string => `${this.#o.localUrl}${TRICKLE_BASE_PATH}${name}`;
      const pub = (name: string): string => `${this.#o.publicUrl}${TRICKLE_BASE_PATH}${name}`;
      const session = new LiveSession({
        manifestID: mid, modelID, rawParams: body['params'] ?? {}, params,
        channels: { inputUrl: local(names.input), outputUrl: local(names.output), controlUrl: local(names.control), eventsUrl: local(names.events) },
        statusIntervalMs: this.#o.statusIntervalMs, keyframeIntervalSec: this.#o.keyframeIntervalSec, inputTimeoutMs: this.#o.inputTimeoutMs,
        logger: this.#log.child({ requestID, ...(streamID !== undefined ? { streamID } : {}) }),
      });
      this.#sessions.set(mid, session);
      void session.done.finally(() => {
        this.#sessions.delete(mid);
        for (const name of Object.values(names)) trickle.closeChannel(name);
        this.#o.onChange?.();
      });
      this.#o.onChange?.();
      this.#log.info({ manifestID: mid, requestID, streamID, modelID, params: body['params'] ?? {} }, 'live stream started');
      sendJson(res, 200, {
        publish_url: pub(names.input), subscribe_url: pub(names.output), control_url: pub(names.control), events_url: pub(names.events),
        manifest_id: mid, request_id: requestID,
      });
    } catch (err) {
      if (err instanceof StartError) {
        if (!req.readableEnded && !req.destroyed) lingerAfterRefusal(req, res);
        this.#log.debug({ status: err.status, err: err.message }, 'live start refused');
        sendJson(res, err.status, { detail: { msg: err.message } }, err.headers);
        return;
      }
      this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'live start failed');
      sendJson(res, 500, { detail: { msg: 'Pipeline error.' } });
    }
  }

  /** Stops every stream (worker shutdown). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions.values()].map((s) => s.stop('worker shutting down')));
  }
}
