/**
 * Decoding of a worker's answer (the ai-runner API, see worker-client.ts): the reply shape,
 * bodies read with a size cap, and failures classified into the retry taxonomy of
 * {@link FailureKind} (livekit agents-js style: status errors, connection errors, timeouts)
 * as {@link WorkerCallError}.
 *
 * Classification ({@link classifyErrorReply}): 503, 429 or a body saying "insufficient
 * capacity" → `capacity`; 408 and 5xx → `server`; 401/403/404/405 → `server` too (the
 * worker rejects the gateway's credentials or lacks the route: a worker problem, and the
 * client must not see "Invalid bearer token."); a 400 "pipeline configured with ..." →
 * `server` (the worker runs another model than registered); other 4xx → `client`, with
 * the worker's reason. Connection failures → `connection`; timeout or abort → `timeout`.
 */
import type { FailureKind } from '../domain/pipelines.ts';

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

/** Worker messages are cut to this many characters. */
const MAX_WORKER_MESSAGE_CHARS = 500;

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

export function errorReply(status: number, bodyText: string, path: string): WorkerCallError {
  const { kind, workerMessage } = classifyErrorReply(status, bodyText);
  const reason = workerMessage === undefined ? '' : `: ${workerMessage}`;
  return new WorkerCallError(kind, `worker answered ${status} to ${path}${reason}`, {
    status, ...(workerMessage === undefined ? {} : { workerMessage }),
  });
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

/** The message of an ai-runner stream error event (`{"error": "..."}`), if this payload is one. */
export function streamError(data: string): string | undefined {
  if (!data.startsWith('{"error"')) return undefined;
  try {
    const parsed = JSON.parse(data) as Record<string, unknown>;
    if ('choices' in parsed) return undefined;
    return cut(typeof parsed['error'] === 'string' ? parsed['error'] : JSON.stringify(parsed['error']));
  } catch {
    return undefined;
  }
}
