/**
 * Label values for mediagate's Prometheus metrics, and the rules that keep secrets and
 * unbounded values out of them.
 *
 * A label value comes only from: a fixed enum below, a known pipeline name, a model ID that
 * passes {@link modelIdLabel}, an HTTP route template written in the code, or (when
 * `metrics.manifestIdLabels` is on) a manifest ID of the stream-name grammar. Anything else
 * becomes {@link OTHER}. Stream keys, API keys, tokens, prompts and error messages never
 * reach a label: callers pass enums, and every value is re-checked here at run time, so a
 * string smuggled past the types (`as never`) is still bucketed as `other`.
 */
import { isGatewayError, type ErrorCode } from '../errors/gateway-error.ts';
import { PIPELINES } from '../domain/pipelines.ts';
import { STREAM_NAME_PATTERN } from '../domain/stream-name.ts';

/** The label value for anything that is not an allowed value. */
export const OTHER = 'other';

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
  /** 503 STARTING or SHUTTING_DOWN, or a 503 whose error code is not known to the metrics. */
  'unavailable',
  /** Other 5xx. */
  'internal',
  /** The client went away before the answer was sent. */
  'aborted',
  'other',
] as const;
export type AiErrorKind = (typeof AI_ERROR_KINDS)[number];

/** Failure kinds of one worker attempt (`FailureKind` of src/domain/pipelines.ts). */
export const AI_WORKER_FAILURE_KINDS = ['client', 'capacity', 'timeout', 'connection', 'server'] as const;
export type AiWorkerFailureKind = (typeof AI_WORKER_FAILURE_KINDS)[number];

/** Status classes of AI requests (label `status_class`). */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** Ledger entry kinds (label `kind` of `mediagate_ledger_*`). */
export const LEDGER_KINDS = ['transcode', 'ai', 'topup'] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

/** Ingest protocols (label `protocol` of `mediagate_live_streams`). */
export const INGEST_PROTOCOLS = ['rtmp', 'push'] as const;
export type IngestProtocol = (typeof INGEST_PROTOCOLS)[number];

/** Pipelines that may appear as label values: the batch pipelines and the live one (§7, §9). */
export const PIPELINE_LABELS: readonly string[] = [...PIPELINES, 'live-video-to-video'];

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/** Longest model ID kept as a label (Hugging Face repo IDs are `org/name`, name ≤ 96). */
export const MODEL_ID_MAX_LENGTH = 128;

/** `name` or `org/name`, each part starting alphanumeric, then `[A-Za-z0-9._-]`. */
const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** Common credential prefixes: OpenAI/Stripe `sk-`/`pk-`/`rk-`, Hugging Face `hf_`, GitHub, GitLab, npm, Slack, AWS, JWT. */
const CREDENTIAL_PREFIX = /(?:^|[/._-])(?:(?:sk|pk|rk)[-_]|(?:hf|ghp|gho|ghs|ghu|ghr|github_pat|glpat|npm)_|xox[abprs]-|AKIA[0-9A-Z]|eyJ)/;
/** 24+ letters/digits with no separator: random base62/hex keys (real names are words joined by `-`, `_`, `.`). */
const LONG_RANDOM_RUN = /[A-Za-z0-9]{24,}/;

/**
 * Shapes of credentials, refused as model IDs even when the grammar allows them: the
 * prefixes above, long unbroken runs, 16+ hex digits (digests, tokens), UUIDs.
 */
const SECRET_SHAPES: readonly RegExp[] = [
  CREDENTIAL_PREFIX,
  LONG_RANDOM_RUN,
  /[0-9a-f]{16,}/i,
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i,
];

/** True when `value` looks like a credential or a random token (see SECRET_SHAPES above). */
export function looksSecret(value: string): boolean {
  return SECRET_SHAPES.some((re) => re.test(value));
}

/**
 * The label value for a model ID: the ID itself when it is a string of at most
 * {@link MODEL_ID_MAX_LENGTH} characters of the `org/name` grammar that does not look like
 * a credential, otherwise `other`. Model IDs arrive from clients, so callers should also
 * pass a known-model check (GatewayMetricsOptions.knownModel) to bound cardinality.
 */
export function modelIdLabel(modelID: unknown): string {
  if (typeof modelID !== 'string' || modelID.length === 0 || modelID.length > MODEL_ID_MAX_LENGTH) return OTHER;
  if (!MODEL_ID_PATTERN.test(modelID) || looksSecret(modelID)) return OTHER;
  return modelID;
}

/** A known pipeline name, else `other`. */
export function pipelineLabel(pipeline: unknown): string {
  return typeof pipeline === 'string' && PIPELINE_LABELS.includes(pipeline) ? pipeline : OTHER;
}

/**
 * A manifest ID of the stream-name grammar (docs/wire-contract.md §2), else `other`. Stream
 * keys share that grammar, so a value shaped like a credential (a key prefix such as
 * `sk-`, or 24+ letters/digits without a separator) is `other` too: manifest IDs are
 * public names, and readable ones (`studio-a`, a UUID) are kept.
 */
export function manifestIdLabel(manifestID: unknown): string {
  if (typeof manifestID !== 'string' || !STREAM_NAME_PATTERN.test(manifestID)) return OTHER;
  return CREDENTIAL_PREFIX.test(manifestID) || LONG_RANDOM_RUN.test(manifestID) ? OTHER : manifestID;
}

/** `value` when it is one of `allowed`, else `other` (a run-time guard behind the types). */
export function enumLabel<T extends string>(allowed: readonly T[], value: unknown): T | typeof OTHER {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value) ? (value as T) : OTHER;
}

/** A three-digit HTTP status as a string, `aborted` as is, anything else `other`. */
export function statusCodeLabel(statusCode: number | 'aborted'): string {
  if (statusCode === 'aborted') return 'aborted';
  return Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599 ? String(statusCode) : OTHER;
}

/** `2xx`-style class of an HTTP status, or `aborted`. */
export function statusClassLabel(statusCode: number | 'aborted'): StatusClass | typeof OTHER {
  if (statusCode === 'aborted') return 'aborted';
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return OTHER;
  return `${Math.floor(statusCode / 100)}xx` as StatusClass;
}

/** An HTTP method of the usual set, else `other`. */
export function methodLabel(method: unknown): string {
  return enumLabel(HTTP_METHODS, typeof method === 'string' ? method.toUpperCase() : method);
}

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

/**
 * A non-negative integer amount (credits, pixels) as a bigint, or undefined when it is
 * negative, fractional or not finite. Numbers above 2^53 are refused (they have already
 * lost precision); pass a bigint instead.
 */
export function toNonNegativeBigInt(amount: bigint | number): bigint | undefined {
  if (typeof amount === 'bigint') return amount >= 0n ? amount : undefined;
  return Number.isSafeInteger(amount) && amount >= 0 ? BigInt(amount) : undefined;
}
