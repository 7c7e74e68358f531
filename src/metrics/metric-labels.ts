/**
 * Label values for mediagate's Prometheus metrics, and the rules that keep secrets and
 * unbounded values out of them.
 *
 * A label value comes only from: a fixed enum (below, or the failure vocabularies of
 * domain/failure-kinds.ts), a known pipeline name, a model ID that
 * passes {@link modelIdLabel}, an HTTP route template written in the code, or (when
 * `metrics.manifestIdLabels` is on) a manifest ID of the stream-name grammar. Anything else
 * becomes {@link OTHER}. Stream keys, API keys, tokens, prompts and error messages never
 * reach a label: callers pass enums, and every value is re-checked here at run time, so a
 * string smuggled past the types (`as never`) is still bucketed as `other`.
 */
import type { FailureKind } from '../domain/pipelines.ts';
import { PIPELINES } from '../domain/pipelines.ts';
import { STREAM_NAME_PATTERN } from '../domain/stream-name.ts';

/** The label value for anything that is not an allowed value. */
export const OTHER = 'other';

/** Failure kinds of one worker attempt (label `kind` of `mediagate_ai_worker_failures_total`): every `FailureKind` of domain/pipelines.ts. */
export const AI_WORKER_FAILURE_KINDS = ['client', 'capacity', 'timeout', 'connection', 'server'] as const satisfies readonly FailureKind[];

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
 * pass a known-model check (AiMetricsOptions.knownModel of ai-metrics.ts) to bound cardinality.
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

/**
 * A non-negative integer amount (credits, pixels) as a bigint, or undefined when it is
 * negative, fractional or not finite. Numbers above 2^53 are refused (they have already
 * lost precision); pass a bigint instead.
 */
export function toNonNegativeBigInt(amount: bigint | number): bigint | undefined {
  if (typeof amount === 'bigint') return amount >= 0n ? amount : undefined;
  return Number.isSafeInteger(amount) && amount >= 0 ? BigInt(amount) : undefined;
}
