/**
 * The AI gateway's routing core as the gateway runs it: the configured workers registered,
 * and a session manager that calls them through the worker client with the configured
 * retry policy (docs/operations.md, AI workers).
 */
import type { Logger } from '../log/logger.ts';
import { loggableUrl } from '../log/loggable-url.ts';
import { PIPELINES } from '../domain/pipelines.ts';
import { makeRetryConfig } from './retry-policy.ts';
import { SessionManager, type SessionManagerOptions } from './session-manager.ts';
import type { WorkerClient } from './worker-client.ts';
import { isWorkerCallError, type WorkerReply } from './worker-reply.ts';
import type { AiRequest } from './worker-request.ts';
import type { WorkerRegistry, WorkerSpec } from './worker-registry.ts';

/** The retry settings of config `ai.*` (docs/config.md), all in ms except `maxAttempts`. */
export interface AiRetrySettings {
  readonly maxAttempts: number;
  readonly totalBudgetMs: number;
  readonly queueWaitMs: number;
  readonly suspendBaseMs: number;
  /** One attempt's limit for every pipeline; 0 keeps the per-pipeline defaults. */
  readonly attemptTimeoutMs: number;
  /** How long a request waits for a worker still loading its model (session-manager.ts). */
  readonly modelLoadWaitMs: number;
}

/**
 * Registers each configured worker (`ai.workers`); a worker that cannot be registered is
 * logged (error, URL without credentials) and skipped, so the gateway still starts.
 */
export async function registerConfiguredWorkers(registry: WorkerRegistry, workers: readonly WorkerSpec[], logger: Logger): Promise<void> {
  for (const worker of workers) {
    try {
      await registry.register(worker, 'config');
    } catch (err) {
      logger.error({ url: loggableUrl(worker.url), err: (err as Error).message }, 'cannot register configured AI worker');
    }
  }
}

/**
 * A session manager over `registry` that calls workers through `client`. Suspensions grow
 * from `suspendBaseMs` up to 5 minutes (or `suspendBaseMs` when larger).
 * @throws Error naming the bad setting (retry-policy.ts `validateRetryConfig`)
 */
export function createAiSessions(options: {
  registry: WorkerRegistry;
  client: WorkerClient;
  settings: AiRetrySettings;
  onAttemptFailure: NonNullable<SessionManagerOptions<AiRequest, WorkerReply>['onAttemptFailure']>;
  logger: Logger;
}): SessionManager<AiRequest, WorkerReply> {
  const { client, settings } = options;
  return new SessionManager<AiRequest, WorkerReply>({
    registry: options.registry,
    caller: { call: (endpoint, request, { timeoutMs }) => client.call(endpoint, request, { timeoutMs }) },
    // Failed calls and refused or failed result media alike.
    onAttemptFailure: options.onAttemptFailure,
    classify: (err) => isWorkerCallError(err)
      ? { kind: err.kind, message: err.message, ...(err.workerMessage ? { workerMessage: err.workerMessage } : {}) }
      : { kind: 'server', message: (err as Error).message },
    retry: makeRetryConfig({
      maxAttempts: settings.maxAttempts, totalBudgetMs: settings.totalBudgetMs, queueWaitMs: settings.queueWaitMs,
      suspendBaseMs: settings.suspendBaseMs, suspendMaxMs: Math.max(300_000, settings.suspendBaseMs),
      ...(settings.attemptTimeoutMs > 0 ? { attemptTimeoutMsByPipeline: Object.fromEntries(PIPELINES.map((p) => [p, settings.attemptTimeoutMs])) } : {}),
    }),
    modelLoadWaitMs: settings.modelLoadWaitMs,
    logger: options.logger,
  });
}
