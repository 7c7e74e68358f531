/**
 * One webhook HTTP attempt and the classification of its failure, in the taxonomy of
 * livekit agents-js (`APIStatusError` / `APIConnectionError` / `APITimeoutError`):
 *
 * | outcome                                   | kind         | retryable |
 * |-------------------------------------------|--------------|-----------|
 * | 2xx                                       | delivered    | —         |
 * | 408, 429, 5xx                             | `status`     | yes       |
 * | other 4xx (the receiver rejected it)      | `status`     | no        |
 * | 3xx (redirects are not followed)          | `status`     | no        |
 * | connection refused/reset, DNS, TLS        | `connection` | yes       |
 * | no answer within `timeoutMs`              | `timeout`    | yes       |
 * | aborted by the caller's signal            | `aborted`    | yes       |
 * | URL that does not parse, or not http(s)   | `invalid`    | no        |
 * | not sent: the receiver's circuit is open  | `circuit-open` | yes     |
 *   (set by the queue worker, src/events/delivery-gate.ts)
 *
 * Redirects are answered, not followed: following a 301/302 would turn the POST into a GET
 * and could carry the signature to another host.
 */
import { loggableUrl } from '../log/loggable-url.ts';

/** What is sent: the serialized body and the headers (see webhook-signature.ts). */
export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
}

export interface DeliverOptions {
  /** Whole-attempt deadline (connect, headers and body) in ms. */
  timeoutMs: number;
  /** Aborts the attempt early (e.g. a worker shutting down); the attempt is then retryable. */
  signal?: AbortSignal;
}

/** A 2xx answer. */
export interface WebhookDelivered {
  /** HTTP status (200–299). */
  status: number;
  /** Time from sending to the answer's headers, in ms. */
  elapsedMs: number;
}

export type WebhookFailureKind = 'status' | 'connection' | 'timeout' | 'aborted' | 'invalid' | 'circuit-open';

/** A failed attempt; `retryable` says whether the same request may succeed later. */
export class WebhookDeliveryError extends Error {
  readonly kind: WebhookFailureKind;
  readonly retryable: boolean;
  /** HTTP status when `kind === 'status'`. */
  readonly status: number | undefined;

  constructor(kind: WebhookFailureKind, message: string, options: { retryable: boolean; status?: number; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WebhookDeliveryError';
    this.kind = kind;
    this.retryable = options.retryable;
    this.status = options.status;
  }
}

/** Whether an HTTP status is worth retrying: 408, 429 and 5xx (everything else non-2xx is final). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * POSTs one webhook attempt. The answer's body is discarded unread.
 * @param url receiver URL (http or https)
 * @param request body and headers, sent as is
 * @returns status and latency on a 2xx answer
 * @throws WebhookDeliveryError on anything else, classified as in the module table
 */
export async function deliverWebhook(url: string, request: WebhookRequest, options: DeliverOptions): Promise<WebhookDelivered> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (err) {
    throw new WebhookDeliveryError('invalid', 'webhook URL does not parse', { retryable: false, cause: err });
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new WebhookDeliveryError('invalid', `webhook URL scheme ${target.protocol} is not http(s)`, { retryable: false });
  }
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const startedAt = performance.now();
  let response: Response;
  try {
    response = await fetch(target, { method: 'POST', headers: request.headers, body: request.body, redirect: 'manual', signal });
  } catch (err) {
    throw classifyFetchError(err, timeout, options.timeoutMs);
  }
  const elapsedMs = Math.round(performance.now() - startedAt);
  // Free the socket without reading what the receiver said.
  await response.body?.cancel().catch(() => undefined);
  if (response.status >= 200 && response.status <= 299) return { status: response.status, elapsedMs };
  throw new WebhookDeliveryError('status', `webhook receiver answered ${response.status}`, { retryable: isRetryableStatus(response.status), status: response.status });
}

function classifyFetchError(err: unknown, timeout: AbortSignal, timeoutMs: number): WebhookDeliveryError {
  if (timeout.aborted) return new WebhookDeliveryError('timeout', `webhook receiver did not answer within ${timeoutMs} ms`, { retryable: true, cause: err });
  if (err instanceof Error && err.name === 'AbortError') return new WebhookDeliveryError('aborted', 'webhook delivery aborted', { retryable: true, cause: err });
  // undici: TypeError('fetch failed') with the socket error (ECONNREFUSED, ENOTFOUND, ...) as cause.
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  const code = cause && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
  const detail = code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  return new WebhookDeliveryError('connection', `webhook receiver unreachable (${detail})`, { retryable: true, cause: err });
}

/**
 * A webhook URL as it may be logged: origin and path only. The query (which may carry a
 * receiver's token), the fragment and any `user:password@` are left out (log/loggable-url.ts).
 */
export const redactWebhookUrl: (url: string) => string = loggableUrl;
