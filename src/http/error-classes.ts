/**
 * Classes of failures that are not `GatewayError`s but have a known meaning for a client:
 * thrown by ioredis, body-parser, multer/busboy or node:http. The HTTP error handler turns
 * them into the contract's `{"detail":{"msg","code"}}` answers instead of a generic 500.
 */
import { GatewayError } from '../errors/gateway-error.ts';

/**
 * Seconds a client is asked to wait when the gateway's Redis is unavailable: ioredis
 * reconnects with a backoff capped near 2 s, so a blip is usually over by then.
 */
export const REDIS_RETRY_AFTER_S = 5;

/** Messages of ioredis errors that mean "no usable connection" (ioredis `built/redis/event_handler.js`, `built/Redis.js`). */
const REDIS_DOWN_MESSAGES = [
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
];

/** Error codes of a connection to Redis that failed or dropped (libuv errno names). */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * True for ioredis errors that mean Redis cannot be reached right now: a command failed
 * after `maxRetriesPerRequest` reconnect attempts (`MaxRetriesPerRequestError`), was sent on
 * a closed connection, or was refused while offline. A command error Redis itself answered
 * (`ReplyError`) is not one of these.
 */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown; code?: unknown; syscall?: unknown; address?: unknown } | null;
  if (typeof e !== 'object' || e === null) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (typeof e.message === 'string' && REDIS_DOWN_MESSAGES.includes(e.message)) return true;
  // ioredis passes a socket error through as-is when no reconnect is configured: the code
  // names it, and it was a connect/write on a socket (not on a client's request stream).
  return typeof e.code === 'string' && CONNECTION_CODES.has(e.code) && (e.syscall === 'connect' || e.syscall === 'write') && e.address !== undefined;
}

/**
 * True when the error only says the client went away mid-request: the request stream was
 * aborted or reset (`ECONNRESET` "aborted" from node:http, body-parser's `request.aborted`,
 * multer's "Request aborted"/"Request closed", a premature close of a piped stream).
 * These are not server errors; nobody is left to answer.
 */
export function isClientAbort(err: unknown): boolean {
  const e = err as { type?: unknown; code?: unknown; message?: unknown; syscall?: unknown } | null;
  if (typeof e !== 'object' || e === null) return false;
  if (e.type === 'request.aborted') return true;
  if (e.message === 'Request aborted' || e.message === 'Request closed') return true;
  if (e.code === 'ECONNABORTED' || e.code === 'ERR_STREAM_PREMATURE_CLOSE') return true;
  return e.code === 'ECONNRESET' && e.message === 'aborted' && e.syscall === undefined;
}

/** body-parser / raw-body error types (their `type` field) and what each becomes. */
const BODY_ERRORS: Record<string, (message: string) => GatewayError> = {
  'entity.parse.failed': (m) => new GatewayError('INVALID_REQUEST', `request body is not valid JSON: ${m}`.trim()),
  'entity.too.large': () => new GatewayError('PAYLOAD_TOO_LARGE', 'request body too large'),
  'entity.verify.failed': () => new GatewayError('INVALID_REQUEST', 'request body failed verification'),
  'request.size.invalid': () => new GatewayError('INVALID_REQUEST', 'request body size does not match Content-Length'),
  'parameters.too.many': () => new GatewayError('PAYLOAD_TOO_LARGE', 'too many parameters in the request body'),
  // body-parser answers 415 for a charset other than UTF-8 on JSON, and for an unknown Content-Encoding.
  'charset.unsupported': (m) => new GatewayError('UNSUPPORTED_MEDIA_TYPE', `${m}: JSON bodies must be UTF-8 (send Content-Type: application/json or application/json; charset=utf-8)`),
  'encoding.unsupported': (m) => new GatewayError('UNSUPPORTED_MEDIA_TYPE', `${m}: send the body uncompressed or with Content-Encoding gzip, deflate or br`),
};

/** multer error codes (`MulterError.code`) and their statuses; the field is named when multer knows it. */
const MULTER_ERRORS: Record<string, 'PAYLOAD_TOO_LARGE' | 'INVALID_REQUEST'> = {
  LIMIT_FILE_SIZE: 'PAYLOAD_TOO_LARGE', LIMIT_FILE_COUNT: 'PAYLOAD_TOO_LARGE', LIMIT_PART_COUNT: 'PAYLOAD_TOO_LARGE',
  LIMIT_FIELD_COUNT: 'PAYLOAD_TOO_LARGE', LIMIT_FIELD_VALUE: 'PAYLOAD_TOO_LARGE', LIMIT_FIELD_KEY: 'INVALID_REQUEST',
  LIMIT_UNEXPECTED_FILE: 'INVALID_REQUEST', MISSING_FIELD_NAME: 'INVALID_REQUEST', LIMIT_FIELD_NESTING: 'INVALID_REQUEST',
  LIMIT_FIELD_ARRAY_INDEX: 'INVALID_REQUEST', INVALID_FIELD_NAME: 'INVALID_REQUEST',
};

/** Messages busboy (1.6) throws for a malformed or truncated multipart body. */
const BUSBOY_MESSAGES: Record<string, string> = {
  'Unexpected end of form': 'multipart body ended before its closing boundary (truncated upload)',
  'Malformed part header': 'multipart body has a malformed part header',
  'Unexpected end of file': 'multipart body ended before its closing boundary (truncated upload)',
  'Multipart: Boundary not found': 'Content-Type multipart/form-data lacks a boundary',
  'Unsupported content type: multipart/form-data': 'Content-Type multipart/form-data lacks a boundary',
};

/**
 * The `GatewayError` a known non-gateway failure stands for, or undefined when the failure
 * is unknown (a real 500). Client aborts are not mapped here: see {@link isClientAbort}.
 */
export function classifyError(err: unknown): GatewayError | undefined {
  const e = err as { type?: unknown; message?: unknown; name?: unknown; code?: unknown; field?: unknown } | null;
  if (typeof e !== 'object' || e === null) return undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  if (typeof e.type === 'string' && BODY_ERRORS[e.type]) return BODY_ERRORS[e.type]!(message);
  if (e.name === 'MulterError' && typeof e.code === 'string' && MULTER_ERRORS[e.code]) {
    const field = typeof e.field === 'string' ? `${e.field}: ` : '';
    return new GatewayError(MULTER_ERRORS[e.code]!, `${field}${message.toLowerCase()}`);
  }
  if (BUSBOY_MESSAGES[message]) return new GatewayError('INVALID_REQUEST', BUSBOY_MESSAGES[message]);
  if (isRedisUnavailable(err)) {
    return new GatewayError('REDIS_UNAVAILABLE', `the gateway's Redis is unavailable; retry in ${REDIS_RETRY_AFTER_S} s`, { retryAfterS: REDIS_RETRY_AFTER_S, cause: err });
  }
  return undefined;
}
