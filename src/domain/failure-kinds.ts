/**
 * The public vocabularies that classify failures: why a source segment failed for good, and
 * what kind of failure an AI request met. Features classify their own failures with these
 * (transcode/ and ingest/ for segments, ai/ for requests); metrics/ uses the same lists to
 * check label values at run time. The values are public: they are the label values of
 * `mediagate_segments_failed_total{reason_code}` and `mediagate_ai_errors_total{kind}`
 * listed in docs/operations.md (Metrics), so a value is never renamed.
 *
 * Every mapping goes from a GatewayError code (errors/gateway-error.ts), never from an error
 * message, so no client text can become a value.
 */
import { isGatewayError, type ErrorCode } from '../errors/gateway-error.ts';

/** Why a segment failed for good (label `reason_code` of `mediagate_segments_failed_total`). */
export const SEGMENT_FAILURE_REASONS = [
  /** The source is not decodable media (UNDECODABLE_MEDIA). */
  'undecodable',
  /** ffmpeg failed or timed out after its retries (TRANSCODE_FAILED). */
  'transcode_error',
  /** The object store failed (STORAGE_FAILED). */
  'storage',
  /** The transcode queue was unreachable (QUEUE_UNAVAILABLE). */
  'queue_unavailable',
  /** The account could not pay for the segment (INSUFFICIENT_BALANCE). */
  'insufficient_balance',
  /** A pushed stream skipped this seq (a gap resolved as failed). */
  'never_pushed',
  /** The transcoder working on it stopped (crash, kill, lost lock) more than once. */
  'transcoder_lost',
  'other',
] as const;
export type SegmentFailureReason = (typeof SEGMENT_FAILURE_REASONS)[number];

/** Kinds of failed AI requests (label `kind` of `mediagate_ai_errors_total`). */
export const AI_ERROR_KINDS = [
  /** 400/404/405/422: the request itself is wrong (includes a worker's rejection passed on as 400). */
  'invalid_request',
  /** 401/403. */
  'unauthorized',
  /** 402. */
  'insufficient_balance',
  /** 413. */
  'too_large',
  /** 415, or undecodable media. */
  'unsupported_media',
  /** 503 NO_WORKER: no worker serves the model, or none freed up in time. */
  'no_worker',
  /** 503 WORKER_FAILED: every attempt failed; or 502 WORKER_BAD_RESULT: the last worker's result was unusable (see `mediagate_ai_worker_failures_total`). */
  'worker_failed',
  /** 503 STARTING or SHUTTING_DOWN, or a 503 whose error code is not known here. */
  'unavailable',
  /** Other 5xx. */
  'internal',
  /** The client went away before the answer was sent. */
  'aborted',
  'other',
] as const;
export type AiErrorKind = (typeof AI_ERROR_KINDS)[number];

function errorCodeOf(errOrCode: unknown): ErrorCode | undefined {
  if (isGatewayError(errOrCode)) return errOrCode.code;
  return typeof errOrCode === 'string' ? (errOrCode as ErrorCode) : undefined;
}

const SEGMENT_REASON_BY_CODE: Partial<Record<ErrorCode, SegmentFailureReason>> = {
  UNDECODABLE_MEDIA: 'undecodable',
  TRANSCODE_FAILED: 'transcode_error',
  STORAGE_FAILED: 'storage',
  QUEUE_UNAVAILABLE: 'queue_unavailable',
  INSUFFICIENT_BALANCE: 'insufficient_balance',
};

/**
 * The `reason_code` for a failed segment from a GatewayError or its code (`ErrorCode`);
 * `other` for anything else. Never derived from an error message.
 */
export function segmentFailureReasonFor(errOrCode: unknown): SegmentFailureReason {
  const code = errorCodeOf(errOrCode);
  return (code !== undefined && SEGMENT_REASON_BY_CODE[code]) || 'other';
}

const AI_KIND_BY_CODE: Partial<Record<ErrorCode, AiErrorKind>> = {
  INVALID_REQUEST: 'invalid_request',
  INVALID_NAME: 'invalid_request',
  NOT_FOUND: 'invalid_request',
  METHOD_NOT_ALLOWED: 'invalid_request',
  UNAUTHORIZED: 'unauthorized',
  FORBIDDEN: 'unauthorized',
  HOST_NOT_ALLOWED: 'unauthorized',
  CROSS_SITE_REQUEST: 'unauthorized',
  INSUFFICIENT_BALANCE: 'insufficient_balance',
  PAYLOAD_TOO_LARGE: 'too_large',
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media',
  UNDECODABLE_MEDIA: 'unsupported_media',
  NO_WORKER: 'no_worker',
  WORKER_FAILED: 'worker_failed',
  WORKER_BAD_RESULT: 'worker_failed',
  STARTING: 'unavailable',
  SHUTTING_DOWN: 'unavailable',
  STORAGE_FAILED: 'internal',
  INTERNAL: 'internal',
};

/** The AI error kind for a GatewayError or its code; undefined when the code is unknown. */
export function aiErrorKindFor(errOrCode: unknown): AiErrorKind | undefined {
  const code = errorCodeOf(errOrCode);
  return code !== undefined ? AI_KIND_BY_CODE[code] : undefined;
}

/** The AI error kind implied by an HTTP status alone (used when no error code is known). */
export function aiErrorKindForStatus(statusCode: number | 'aborted'): AiErrorKind {
  if (statusCode === 'aborted') return 'aborted';
  switch (statusCode) {
    case 400: case 404: case 405: case 422: return 'invalid_request';
    case 401: case 403: return 'unauthorized';
    case 402: return 'insufficient_balance';
    case 413: return 'too_large';
    case 415: return 'unsupported_media';
    case 503: return 'unavailable';
    default: return statusCode >= 500 && statusCode <= 599 ? 'internal' : 'other';
  }
}
