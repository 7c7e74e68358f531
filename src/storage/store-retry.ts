/**
 * Retrying object-store writes and reads of the media path across a store outage (S3 or its
 * network down for seconds, a restarting MinIO): the policy and executor of
 * domain/outage-retry.ts with what counts as a transient store error.
 *
 * A layer above the AWS SDK's own retries (`storage.s3.maxAttempts` tries per request,
 * about 1.5 s in all against a refused connection): an outage of ~10 s outlasts them, so a
 * source segment (ingest) or a transcode job (the transcoder) retries the whole request until
 * its deadline (ready time + `storage.outageBudgetMs`) while later segments wait on local
 * disk in order. Store operations are idempotent (a put replaces the object under the same key).
 */
import { OutageRetry, type OutageRetryConfig, type RetryLog } from '../domain/outage-retry.ts';
import { isGatewayError } from '../errors/gateway-error.ts';

/** Default backoff: 250 ms doubling to 2 s; budget 30 s (three times the 10 s outage the fault suite survives). */
export const DEFAULT_STORE_RETRY_CONFIG: OutageRetryConfig = Object.freeze({
  retryDelayMs: 250,
  maxRetryDelayMs: 2000,
  backoff: 'exponential',
  budgetMs: 30_000,
});

/** Network errors (Node's `code`) that mean the store is unreachable now, not that the request is wrong. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'EHOSTDOWN', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'EIO', 'ENOSPC',
]);

/** Error names of the SDK (and of S3 services) for timeouts and throttling. */
const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'Throttling', 'ThrottlingException',
  'ServiceUnavailable', 'InternalError', 'AbortError',
]);

interface MaybeSdkError { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown }; cause?: unknown; errors?: unknown }

function transientCause(err: unknown, depth: number): boolean {
  if (depth > 4 || typeof err !== 'object' || err === null) return false;
  const e = err as MaybeSdkError;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status >= 500 || status === 429 || status === 408;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => transientCause(x, depth + 1))) return true; // AggregateError of a dual-stack connect
  return transientCause(e.cause, depth + 1);
}

/**
 * Whether a store error means "not now" rather than "never": a `STORAGE_FAILED` (or a raw
 * error) caused by a network error (connection refused or reset, timeouts, DNS), an HTTP 5xx,
 * 408 or 429 answer, SDK timeouts and throttling, or a local disk that is full or failing
 * (ENOSPC, EIO). Not transient: 4xx answers (access denied, no such bucket), `NOT_FOUND`, a
 * bad key, anything else.
 */
export function isTransientStoreError(err: unknown): boolean {
  if (isGatewayError(err)) return err.code === 'STORAGE_FAILED' && err.retryable && transientCause(err.cause, 0);
  return transientCause(err, 0);
}

export interface StoreRetryOptions {
  logger: RetryLog;
  /** Overrides of {@link DEFAULT_STORE_RETRY_CONFIG}; `budgetMs` is `storage.outageBudgetMs`. */
  config?: Partial<OutageRetryConfig>;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** The executor for object-store operations; one per process, shared by ingest and the transcoder. */
export class StoreRetry extends OutageRetry {
  /** @throws Error naming a bad config field. */
  constructor(options: StoreRetryOptions) {
    super({
      config: { ...DEFAULT_STORE_RETRY_CONFIG, ...options.config },
      label: 'store retry',
      isTransient: isTransientStoreError,
      logger: options.logger,
      messages: { retrying: 'object store unavailable; retrying', recovered: 'object store operation succeeded after retries' },
      ...(options.now ? { now: options.now } : {}),
    });
  }
}
