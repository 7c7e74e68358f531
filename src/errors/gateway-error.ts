/**
 * One error class for mediagate and the registry of its codes.
 *
 * Every error that crosses a component boundary is a `GatewayError` carrying a
 * stable machine `code`, the HTTP status it maps to, and whether retrying the
 * same operation can succeed. The HTTP error handler renders it as
 * `{"detail":{"msg","code"}}` (docs/wire-contract.md §12); anything else becomes a
 * generic 500 with the real error in the log.
 */

/** Registry entry: HTTP status, retryability, and a default message. */
export interface ErrorCodeSpec {
  readonly status: number;
  readonly retryable: boolean;
  readonly message: string;
}

/** Every error code mediagate emits. Keep docs and OpenAPI in step with this table. */
export const ERROR_CODES = {
  INVALID_NAME: { status: 400, retryable: false, message: 'invalid stream name: expected [A-Za-z0-9_-]{1,64}' },
  INVALID_PROFILE: { status: 400, retryable: false, message: 'invalid transcoding profile' },
  INVALID_REQUEST: { status: 400, retryable: false, message: 'invalid request' },
  /** A watermark (config, stream key, auth webhook answer) that cannot be drawn: bad field, not a PNG/JPEG, larger than the frame (domain/watermark.ts). */
  INVALID_WATERMARK: { status: 400, retryable: false, message: 'invalid watermark' },
  /** A restream output's target URL is malformed or of an unsupported scheme (domain/output-target.ts). */
  INVALID_OUTPUT_URL: { status: 400, retryable: false, message: 'invalid output url: expected rtmp://, rtmps:// or srt://' },
  /** A restream output names a rendition the stream's ladder does not have. */
  UNKNOWN_RENDITION: { status: 400, retryable: false, message: 'unknown rendition' },
  UNAUTHORIZED: { status: 401, retryable: false, message: 'missing or invalid credentials' },
  PUBLISH_DENIED: { status: 403, retryable: false, message: 'publish not authorized' },
  FORBIDDEN: { status: 403, retryable: false, message: 'forbidden' },
  /** The Host header names no host of this gateway (DNS rebinding guard, http/request-guard.ts). */
  HOST_NOT_ALLOWED: { status: 403, retryable: false, message: 'the Host header names no host of this gateway' },
  /** A browser's cross-site request to a state-changing endpoint (http/request-guard.ts). */
  CROSS_SITE_REQUEST: { status: 403, retryable: false, message: 'cross-site request refused' },
  NOT_FOUND: { status: 404, retryable: false, message: 'not found' },
  /** A restream output was asked for a stream that is not live (unknown or ended). */
  STREAM_NOT_LIVE: { status: 404, retryable: false, message: 'the stream is not live' },
  METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: 'method not allowed' },
  STREAM_BUSY: { status: 409, retryable: false, message: 'stream already has a publisher' },
  /** A stream has `outputs.maxPerStream` restream outputs already. */
  TOO_MANY_OUTPUTS: { status: 409, retryable: false, message: 'the stream has as many outputs as outputs.maxPerStream allows' },
  /** A recording asked for (deleted, played) while its session is still live or not finalized (recording/). */
  RECORDING_IN_PROGRESS: { status: 409, retryable: true, message: 'the recording is still in progress' },
  REQUEST_TIMEOUT: { status: 408, retryable: true, message: 'the request was not received in time' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: 'unsupported media type' },
  HEADERS_TOO_LARGE: { status: 431, retryable: false, message: 'request headers too large' },
  UNDECODABLE_MEDIA: { status: 422, retryable: false, message: 'media could not be decoded' },
  TRANSCODE_FAILED: { status: 422, retryable: true, message: 'transcode failed' },
  QUEUE_UNAVAILABLE: { status: 503, retryable: true, message: 'transcode queue unavailable' },
  REDIS_UNAVAILABLE: { status: 503, retryable: true, message: "the gateway's Redis is unavailable" },
  /** An HTTP push could not store its segment: the object store is unreachable or failing (5xx, timeouts) now. */
  STORAGE_UNAVAILABLE: { status: 503, retryable: true, message: 'the object store is unavailable' },
  /** The HTTP port is bound but the gateway has not finished starting (http/http-app.ts listenEarly). */
  STARTING: { status: 503, retryable: true, message: 'the gateway is starting' },
  SHUTTING_DOWN: { status: 503, retryable: true, message: 'the gateway is shutting down' },
  /** A WHEP viewer over `webrtc.whepMaxViewersPerStream` or `webrtc.whepMaxViewers` (webrtc/whep-sessions.ts). */
  TOO_MANY_VIEWERS: { status: 503, retryable: true, message: 'too many WHEP viewers' },
  /** A WHIP publish over `webrtc.whipMaxSessions` (webrtc/whip-sessions.ts). */
  TOO_MANY_PUBLISHERS: { status: 503, retryable: true, message: 'too many WHIP publishers' },
  NO_WORKER: { status: 503, retryable: true, message: 'no AI worker available' },
  WORKER_FAILED: { status: 503, retryable: true, message: 'every AI worker attempt failed' },
  /** The last worker answered with a result the gateway would not or could not use (e.g. media from another origin). */
  WORKER_BAD_RESULT: { status: 502, retryable: true, message: 'an AI worker answered with an unusable result' },
  INSUFFICIENT_BALANCE: { status: 402, retryable: false, message: 'insufficient balance' },
  STORAGE_FAILED: { status: 500, retryable: true, message: 'object store operation failed' },
  CONFIG_INVALID: { status: 500, retryable: false, message: 'invalid configuration' },
  INTERNAL: { status: 500, retryable: false, message: 'internal error' },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GatewayErrorOptions {
  /** Overrides the registry's retryability for this instance. */
  retryable?: boolean;
  cause?: unknown;
  /**
   * Seconds a client should wait before retrying, sent as `Retry-After` (RFC 9110 §10.2.3).
   * A message that names a wait must name this same number.
   */
  retryAfterS?: number;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  /** `Retry-After` seconds, when the error names a wait. */
  readonly retryAfterS: number | undefined;

  /**
   * @param code registry code; decides status and default retryability
   * @param message human-readable reason naming the problem (defaults to the registry text)
   */
  constructor(code: ErrorCode, message?: string, options: GatewayErrorOptions = {}) {
    const spec: ErrorCodeSpec = ERROR_CODES[code];
    super(message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.retryable = options.retryable ?? spec.retryable;
    this.retryAfterS = options.retryAfterS;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}
