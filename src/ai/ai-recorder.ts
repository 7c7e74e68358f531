/**
 * What the AI feature records about its own requests: the recorder port the AI routes call
 * when a pipeline request's response is over (metrics/ai-metrics.ts `AiMetrics` fits it;
 * app.ts passes it in). Every value is one the routes already hold typed: the pipeline of the
 * route, the model ID they resolved, the status sent and the error kind they classified.
 */
import { aiErrorKindFor, type AiErrorKind } from '../domain/failure-kinds.ts';
import type { Pipeline } from '../domain/pipelines.ts';
import { isClientAbort } from '../http/error-classes.ts';
import { toGatewayError } from '../http/http-app.ts';

/** One finished pipeline request. */
export interface AiRequestRecord {
  readonly pipeline: Pipeline;
  /** The model ID routed to (the pipeline's default when the client named none). */
  readonly modelID: string;
  /** The HTTP status answered, or `aborted` when the client went away first. */
  readonly statusCode: number | 'aborted';
  /** Request received by the AI routes → response finished (an LLM stream: its last chunk), ms. */
  readonly durationMs: number;
  /** For a failed request: its kind; omitted when no error was classified (the status then decides). */
  readonly errorKind?: AiErrorKind;
}

/** The AI routes' recorder port. Must not throw. */
export interface AiRecorder {
  recordAiRequest(record: AiRequestRecord): void;
}

/**
 * The error kind of a failure the AI routes pass on to the HTTP error handler: the kind of
 * the GatewayError that handler will render (validator and body-parser errors included);
 * undefined for a client that went away or an error rendered as a generic 500.
 */
export function aiErrorKindOf(err: unknown): AiErrorKind | undefined {
  return isClientAbort(err) ? undefined : aiErrorKindFor(toGatewayError(err));
}
