/**
 * The session manager: for one AI request, picks a worker for its (pipeline, model_id)
 * (selector.ts), holds a slot of that worker's capacity while calling it, and fails over
 * to another worker within the retry policy (retry-policy.ts). When every worker is busy it
 * waits up to `queueWaitMs` for a free slot (woken by a release; with the cluster's pool, also
 * re-asking it every quarter second for slots freed on other gateways), then answers 503 with
 * Retry-After. When no worker is usable but one for the model is still loading it (its
 * `/health` says LOADING), the request waits for it up to `modelLoadWaitMs` instead.
 * Latency scores are updated from each success, normalized by the request's work units.
 *
 * A caller can pass an `accept` step that checks and completes a reply inside its attempt
 * (the AI routes fetch the worker's result media there): a failure of that step is the
 * worker's failure like a failed call (classified, the worker suspended, the request
 * failed over), and when it is the last failure the request ends with 502
 * WORKER_BAD_RESULT naming the problem.
 */
import type { Logger } from '../log/logger.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { isPipeline, type FailureKind, type WorkerPipeline } from '../domain/pipelines.ts';
import { freeCapacity, selectWorker, updateLatencyScore } from './selector.ts';
import { attemptTimeoutMs, retryAfterS, shouldRetry, suspendsWorker, suspensionMs, type RetryConfig } from './retry-policy.ts';
import type { WorkerRegistry } from './worker-registry.ts';

/** What the manager needs to call a worker (worker-client.ts). */
export interface WorkerCaller<Request, Reply> {
  call(endpoint: { url: string; token?: string }, request: Request, options: { timeoutMs: number }): Promise<Reply>;
}

/**
 * Checks and completes a worker's reply within its attempt, e.g. fetches the media it
 * points at. Must throw only for problems of the worker's answer (each throw counts against
 * the worker). Called with the worker's endpoint and a time limit: the pipeline's attempt
 * timeout clipped to what is left of the budget, ms.
 */
export type ReplyAcceptor<Reply, Result> = (
  reply: Reply,
  worker: { readonly workerID: string; readonly endpoint: { url: string; token?: string }; readonly timeoutMs: number },
) => Promise<Result>;

/** An error from a worker call, classified. */
export interface ClassifiedFailure {
  readonly kind: FailureKind;
  readonly message: string;
  /** The worker's own reason, for `client` failures (passed to the caller as 400). */
  readonly workerMessage?: string;
}

export interface SessionManagerOptions<Request, Reply> {
  registry: WorkerRegistry;
  caller: WorkerCaller<Request, Reply>;
  /** Maps a thrown error to its failure kind (unknown errors count as `server`). */
  classify(err: unknown): ClassifiedFailure;
  /**
   * Told of every failed attempt, of the call or of the accept step (`stage`), after
   * classification; for metrics. Must not throw.
   */
  onAttemptFailure?(attempt: { pipeline: WorkerPipeline; modelID: string; workerID: string; kind: FailureKind; stage: 'call' | 'result' }): void;
  retry: RetryConfig;
  /**
   * How long a request waits, from its arrival, for a worker that is still loading its model
   * (health LOADING) when no other worker can take it, ms; within `retry.totalBudgetMs`.
   * Default 0 (answer 503 at once).
   */
  modelLoadWaitMs?: number;
  logger: Logger;
  random?: () => number;
  now?: () => number;
}

export interface RoutedRequest<Request> {
  readonly pipeline: WorkerPipeline;
  readonly modelID: string;
  readonly request: Request;
  /** Work units of this request (work-units.ts), for latency normalization. */
  readonly workUnits: number;
  /** Request ID, for logs. */
  readonly requestID: string;
  /**
   * One attempt's limit, ms (clipped to what is left of the budget); absent: the retry
   * policy's per-pipeline limit. Required for the live pipeline, which has none there.
   */
  readonly attemptTimeoutMs?: number;
  /** Workers not to try (a live session swapping away from its worker). */
  readonly exclude?: ReadonlySet<string>;
  /**
   * Awaited after the first worker slot is taken and before any worker is called (the AI
   * routes' credit hold, taken concurrently with the slot): when it rejects, the slot is
   * given back and `route` rejects with its error, no worker called.
   */
  readonly before?: Promise<unknown>;
  /** Told when each step of an attempt ends (`slot`, `call`, `media`): the AI routes' Server-Timing (stage-times.ts). */
  readonly stages?: { mark(name: string): void };
}

export interface RoutedReply<Reply> {
  readonly reply: Reply;
  readonly workerID: string;
  readonly attempts: number;
  /**
   * Must be called once the reply is fully consumed (a streamed LLM answer holds its
   * worker slot until then). Idempotent.
   */
  readonly done: () => void;
}

export class SessionManager<Request, Reply> {
  readonly #o: SessionManagerOptions<Request, Reply>;
  readonly #now: () => number;
  readonly #random: () => number;

  constructor(options: SessionManagerOptions<Request, Reply>) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /**
   * Routes one request.
   * @param accept optional step run on each reply inside its attempt ({@link ReplyAcceptor});
   *   its result is the returned `reply`. Without it the worker's reply is returned as is.
   * @throws GatewayError NO_WORKER (503, Retry-After) when no worker serves the model or none
   *   frees up in time; INVALID_REQUEST (400) with the worker's reason when a worker rejects
   *   the request; WORKER_BAD_RESULT (502) naming the problem when the last attempt failed
   *   in `accept`; WORKER_FAILED (503) when every attempt failed otherwise.
   */
  async route<Result = Reply>(routed: RoutedRequest<Request>, accept?: ReplyAcceptor<Reply, Result>): Promise<RoutedReply<Result>> {
    const { registry, retry, logger } = this.#o;
    const { pipeline, modelID } = routed;
    // Made when first needed: a request that succeeds at once logs nothing, and a pino child
    // (bindings serialized, redaction prepared) is the costliest step of an idle logger.
    let child: Logger | undefined;
    const log = (): Logger => (child ??= logger.child({ requestID: routed.requestID, pipeline, modelID }));
    const startedMs = this.#now();
    const tried = new Set<string>(routed.exclude ?? []);
    let attempt = 0;
    const limitMs = (elapsedMs: number): number => {
      if (routed.attemptTimeoutMs !== undefined) return Math.max(0, Math.min(routed.attemptTimeoutMs, retry.totalBudgetMs - elapsedMs));
      if (!isPipeline(pipeline)) throw new Error(`no attempt timeout for pipeline ${pipeline}`);
      return attemptTimeoutMs(pipeline, elapsedMs, retry);
    };
    let lastFailure: (ClassifiedFailure & { inAccept: boolean }) | undefined;

    if (!registry.serves(pipeline, modelID)) {
      throw new GatewayError('NO_WORKER', `no worker serves ${pipeline} with model_id "${modelID}"`, { retryAfterS: retryAfterS(retry) });
    }
    for (;;) {
      const elapsedMs = this.#now() - startedMs;
      const acquired = await this.#acquire(pipeline, modelID, tried, startedMs);
      if (acquired === undefined) {
        if (lastFailure) throw this.#exhausted(lastFailure, attempt);
        const waitS = retryAfterS(retry);
        throw new GatewayError('NO_WORKER', `no worker for ${pipeline} model_id "${modelID}" is free or healthy; retry in ${waitS} s`, { retryAfterS: waitS });
      }
      const { workerID, leaseID } = acquired;
      routed.stages?.mark('slot');
      attempt += 1;
      const endpoint = registry.endpoint(workerID)!;
      const timeoutMs = limitMs(elapsedMs);
      const callStartMs = this.#now();
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        registry.release(workerID, pipeline, modelID, leaseID);
      };
      if (attempt === 1 && routed.before !== undefined) {
        try {
          await routed.before;
        } catch (err) {
          release();
          throw err;
        }
        routed.stages?.mark('hold');
      }
      let inAccept = false;
      try {
        const answer = await this.#o.caller.call(endpoint, routed.request, { timeoutMs });
        routed.stages?.mark('call');
        inAccept = true;
        const reply = accept === undefined
          ? answer as unknown as Result
          : await accept(answer, { workerID, endpoint, timeoutMs: limitMs(this.#now() - startedMs) });
        if (accept !== undefined) routed.stages?.mark('media');
        inAccept = false;
        const seconds = (this.#now() - callStartMs) / 1000;
        const previous = registry.candidates(pipeline, modelID).find((c) => c.workerID === workerID)?.latencyScoreSPerUnit;
        registry.recordSuccess(workerID, pipeline, modelID, updateLatencyScore(previous, seconds / Math.max(routed.workUnits, 1)));
        if (attempt > 1) log().info({ workerID, attempts: attempt }, 'AI request succeeded after failover');
        return { reply, workerID, attempts: attempt, done: release };
      } catch (err) {
        release();
        const failure = this.#o.classify(err);
        lastFailure = { ...failure, inAccept };
        this.#o.onAttemptFailure?.({ pipeline, modelID, workerID, kind: failure.kind, stage: inAccept ? 'result' : 'call' });
        tried.add(workerID);
        if (suspendsWorker(failure.kind)) {
          registry.recordFailure(workerID, failure.kind, suspensionMs(registry.consecutiveFailures(workerID) + 1, retry));
        }
        log().warn({ workerID, kind: failure.kind, attempt, reason: failure.message, stage: inAccept ? 'result' : 'call' }, 'AI worker call failed');
        if (failure.kind === 'client' && !inAccept) {
          throw new GatewayError('INVALID_REQUEST', failure.workerMessage ?? failure.message);
        }
        if (!shouldRetry(failure.kind, attempt, this.#now() - startedMs, retry)) throw this.#exhausted(lastFailure, attempt);
      }
    }
  }

  /**
   * Picks a worker and takes a slot, waiting up to `queueWaitMs` while every untried worker
   * is busy, or up to `modelLoadWaitMs` (from arrival) while the only ones left are loading
   * their model. Returns undefined when none can be had.
   */
  async #acquire(pipeline: WorkerPipeline, modelID: string, tried: ReadonlySet<string>, startedMs: number): Promise<{ workerID: string; leaseID: string } | undefined> {
    const { registry, retry } = this.#o;
    const queueUntil = this.#now() + retry.queueWaitMs;
    const loadUntil = startedMs + (this.#o.modelLoadWaitMs ?? 0);
    let misses = 0;
    for (;;) {
      const nowMs = this.#now();
      const candidates = registry.candidates(pipeline, modelID);
      const chosen = selectWorker(candidates, { nowMs, excluded: tried, random: this.#random });
      if (chosen) {
        const leaseID = await registry.acquire(chosen.workerID, pipeline, modelID);
        if (leaseID !== undefined) return { workerID: chosen.workerID, leaseID };
        // Full in the cluster (the registry now knows its count): choose again at once, a few times.
        if (++misses <= candidates.length) continue;
      }
      // Wait only while some untried, usable worker exists that is merely busy, or one is loading its model.
      const busyButUsable = candidates.some((c) => !tried.has(c.workerID) && c.healthy && !(c.suspendedUntilMs && c.suspendedUntilMs > nowMs) && c.inFlight >= c.capacity);
      const loading = !busyButUsable && nowMs < loadUntil && candidates.some((c) => !tried.has(c.workerID) && c.loading === true);
      if (!chosen && !busyButUsable && !loading && freeCapacity(candidates, nowMs, tried) === 0) return undefined;
      const waitUntil = loading ? Math.max(queueUntil, loadUntil) : queueUntil;
      if (nowMs >= waitUntil || nowMs - startedMs >= retry.totalBudgetMs) return undefined;
      // Sleep until a slot is released (or a worker appears or is ready), the deadline, or the
      // end of the earliest suspension among the untried workers (it may then serve).
      let wakeAtMs = Math.min(waitUntil, startedMs + retry.totalBudgetMs);
      for (const c of candidates) {
        if (!tried.has(c.workerID) && c.suspendedUntilMs !== undefined && c.suspendedUntilMs > nowMs) wakeAtMs = Math.min(wakeAtMs, c.suspendedUntilMs);
      }
      await registry.waitForSlot(pipeline, modelID, wakeAtMs - nowMs);
    }
  }

  #exhausted(failure: ClassifiedFailure & { inAccept: boolean }, attempts: number): GatewayError {
    if (failure.inAccept) {
      return new GatewayError('WORKER_BAD_RESULT', `the request failed on ${attempts} worker attempt(s); last failure: the worker's result was unusable: ${failure.message}`);
    }
    return new GatewayError('WORKER_FAILED', `the request failed on ${attempts} worker attempt(s); last failure: ${failure.kind}`);
  }
}
