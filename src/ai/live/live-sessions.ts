/**
 * The live video-to-video sessions of this gateway (docs/wire-contract.md, "Live
 * video-to-video"): at most one per input stream, keyed by the stream's manifest ID. It is a
 * stream tap of ingest (ingest-ports.ts `StreamTap`): it learns which streams this gateway
 * holds, feeds each listed source segment to the stream's session, and stops the session
 * when its input stream ends. Workers are chosen by the session manager (capability
 * `live-video-to-video`, model, free capacity; a session holds one slot of its worker) and
 * started with `POST <worker>/live-video-to-video` (one attempt's limit `startTimeoutMs`).
 *
 * An ended session's status stays readable for `statusKeepMs` (Livepeer clears it a minute
 * after the end), so a client sees why it stopped.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../log/logger.ts';
import { GatewayError } from '../../errors/gateway-error.ts';
import { isValidStreamName } from '../../domain/stream-name.ts';
import { LIVE_PIPELINE } from '../../domain/pipelines.ts';
import type { VideoProfile } from '../../domain/profile.ts';
import { SessionManager, type SessionManagerOptions } from '../session-manager.ts';
import type { WorkerRegistry } from '../worker-registry.ts';
import { suspensionMs, type RetryConfig } from '../retry-policy.ts';
import type { LiveEvents, LiveIntervalBilling, LiveOutputs, LiveRecorder, LiveTrickle } from './live-ports.ts';
import { LiveSession, type LiveSessionTimings, type StartedWorker } from './live-session.ts';
import type { LiveStartRequest } from './live-start-request.ts';

/** The start body sent to a worker (`POST <worker>/live-video-to-video`). */
export interface LiveWorkerStart {
  readonly model_id: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly gateway_request_id: string;
  readonly stream_id: string;
}

/** The worker's channel URLs, resolved against its base URL. */
export interface LiveWorkerChannels {
  readonly publishUrl: string;
  readonly subscribeUrl: string;
  readonly controlUrl: string;
  readonly eventsUrl: string;
}

/** Suffix of the output stream's manifest ID; streams with it are never inputs (no loops). */
export const LIVE_OUTPUT_SUFFIX = '-out';

/** The input stream's grant as the tap saw it: the `-out` stream reuses its ladder and recording choice. */
interface HeldStream {
  readonly session: string;
  readonly accountID: string | undefined;
  readonly profiles: readonly VideoProfile[];
  readonly record: boolean | undefined;
  readonly explicitLadder: boolean | undefined;
}

export interface LiveSessionsOptions {
  /** Routes the worker start (a session manager of the live caller: live-worker-caller.ts). */
  readonly manager: SessionManager<LiveWorkerStart, unknown>;
  readonly registry: WorkerRegistry;
  /** The live manager's retry config, for the suspension of a worker that produced no output. */
  readonly retry: RetryConfig;
  readonly readSegment: (key: string) => Promise<Buffer | undefined>;
  readonly trickle: LiveTrickle;
  readonly outputs: LiveOutputs;
  readonly billing?: LiveIntervalBilling;
  readonly events?: LiveEvents;
  readonly recorder?: LiveRecorder;
  readonly timings: LiveSessionTimings;
  /** The worker start's limit per attempt, ms. Livepeer: 5000. */
  readonly startTimeoutMs: number;
  /** How long a start waits for its stream to be live on this gateway, ms (MediaMTX-style hooks may race the publish). */
  readonly streamWaitMs: number;
  /** An ended session's status stays readable this long, ms. Livepeer: 60000. */
  readonly statusKeepMs: number;
  readonly logger: Logger;
  readonly newRequestID: () => string;
  now?: () => number;
}

/** Parses and checks a worker's start answer; relative URLs are resolved against its base URL. */
export function workerChannels(reply: unknown, workerUrl: string): LiveWorkerChannels {
  if (typeof reply !== 'object' || reply === null) throw new Error('the live start answer is not a JSON object');
  const base = workerUrl.endsWith('/') ? workerUrl : `${workerUrl}/`;
  const field = (name: string): string => {
    const v = (reply as Record<string, unknown>)[name];
    if (typeof v !== 'string' || v === '') throw new Error(`the live start answer has no ${name}`);
    let url: URL;
    try {
      url = new URL(v, base);
    } catch {
      throw new Error(`the live start answer's ${name} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the live start answer's ${name} is not http(s)`);
    return url.toString();
  };
  return { publishUrl: field('publish_url'), subscribeUrl: field('subscribe_url'), controlUrl: field('control_url'), eventsUrl: field('events_url') };
}

export class LiveSessions {
  readonly #o: LiveSessionsOptions;
  readonly #now: () => number;
  readonly #held = new Map<string, HeldStream>();
  readonly #sessions = new Map<string, LiveSession>();
  /** Ended sessions by stream, with their forget timer. */
  readonly #ended = new Map<string, { session: LiveSession; timer: NodeJS.Timeout }>();
  readonly #heldWaiters = new Set<() => void>();
  #closed = false;

  constructor(options: LiveSessionsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  // --- StreamTap (ingest-ports.ts) ---

  opened(s: { manifestID: string; session: string; grant: { accountID?: string; profiles: readonly VideoProfile[]; record?: boolean; explicitLadder?: boolean } }): void {
    this.#held.set(s.manifestID, {
      session: s.session, accountID: s.grant.accountID, profiles: s.grant.profiles, record: s.grant.record, explicitLadder: s.grant.explicitLadder,
    });
    for (const wake of this.#heldWaiters) wake();
  }

  sourceListed(s: { manifestID: string; key: string }): void {
    this.#sessions.get(s.manifestID)?.inputListed(s.key);
  }

  closed(s: { manifestID: string; session: string; continued: boolean }): void {
    if (this.#held.get(s.manifestID)?.session === s.session) this.#held.delete(s.manifestID);
    const session = this.#sessions.get(s.manifestID);
    if (!session) return;
    // Continued elsewhere: that gateway's tap sees it, a session here cannot be fed any more.
    if (s.continued) void session.stop('input stream moved to another gateway', 'input-ended');
    else void session.inputEnded('input stream ended');
  }

  // --- the API ---

  /**
   * Starts a session on `stream` (a manifest ID live on this gateway); resolves once its first
   * worker is set up.
   * @returns undefined when the request is ignored (Livepeer's form on a `-out` stream)
   * @throws GatewayError INVALID_NAME / INVALID_REQUEST (400), STREAM_NOT_LIVE (404), STREAM_BUSY (409),
   *   INSUFFICIENT_BALANCE (402), NO_WORKER / WORKER_FAILED (503)
   */
  async start(stream: string, request: LiveStartRequest, caller: { accountID?: string }): Promise<LiveSession | undefined> {
    if (!isValidStreamName(stream)) throw new GatewayError('INVALID_NAME', 'stream: expected 1-64 characters of [A-Za-z0-9_-]');
    if (stream.endsWith(LIVE_OUTPUT_SUFFIX)) {
      if (request.form) return undefined;
      throw new GatewayError('INVALID_REQUEST', `stream: "${stream}" ends in ${LIVE_OUTPUT_SUFFIX}, the suffix of live session outputs; an output is not processed again`);
    }
    if (this.#closed) throw new GatewayError('SHUTTING_DOWN', 'the gateway is shutting down', { retryAfterS: 1 });
    const held = await this.#waitHeld(stream);
    if (!held) {
      throw new GatewayError('STREAM_NOT_LIVE', `stream "${stream}" is not publishing to this gateway; publish it first (rtmp://<host>/live/<stream key> or HTTP push), then start`);
    }
    if (this.#sessions.has(stream)) throw new GatewayError('STREAM_BUSY', `a live session already runs on stream "${stream}"; stop its input or wait for it to end`);
    const modelID = request.modelID ?? this.#o.registry.modelFor(LIVE_PIPELINE);
    const requestID = this.#o.newRequestID();
    const accountID = caller.accountID ?? held.accountID;
    const outputManifestID = `${stream}${LIVE_OUTPUT_SUFFIX}`;
    const session: LiveSession = new LiveSession({
      requestID, stream, outputManifestID, modelID, accountID, params: request.params,
      startWorker: (exclude, params) => this.#startWorker({ requestID, stream, modelID, exclude, params }),
      suspendWorker: (workerID) => this.#suspend(workerID),
      readSegment: this.#o.readSegment,
      trickle: this.#o.trickle,
      openOutput: () => this.#o.outputs.open({
        manifestID: outputManifestID, accountID, inputManifestID: stream,
        profiles: held.profiles, ...(held.record !== undefined ? { record: held.record } : {}), ...(held.explicitLadder !== undefined ? { explicitLadder: held.explicitLadder } : {}),
      }),
      ...(this.#o.billing ? { billing: this.#o.billing } : {}),
      ...(this.#o.events ? { events: this.#o.events } : {}),
      ...(this.#o.recorder ? { recorder: this.#o.recorder } : {}),
      timings: this.#o.timings,
      logger: this.#o.logger,
      onEnded: (ended) => this.#onEnded(ended),
      ...(this.#o.now ? { now: this.#o.now } : {}),
    });
    this.#sessions.set(stream, session);
    const previous = this.#ended.get(stream);
    if (previous) {
      clearTimeout(previous.timer);
      this.#ended.delete(stream);
    }
    this.#o.logger.info({
      requestID, manifestID: stream, modelID, metered: accountID !== undefined, form: request.form,
      ...(request.source ? { sourceType: request.source.type } : {}),
    }, 'live session starting');
    await session.start();
    return session;
  }

  /**
   * Sends a params update to the session of `stream` (cached and replayed after a swap).
   * @throws GatewayError NOT_FOUND (404) when no session runs on it
   */
  async update(stream: string, params: Buffer): Promise<void> {
    const session = this.#sessions.get(stream);
    if (!session || session.ended) throw new GatewayError('NOT_FOUND', `no live session runs on stream "${stream.slice(0, 64)}"`);
    await session.update(params);
  }

  /**
   * The status of the session of `stream` (running, or ended within `statusKeepMs`).
   * @throws GatewayError NOT_FOUND (404)
   */
  status(stream: string): Record<string, unknown> {
    const session = this.#sessions.get(stream) ?? this.#ended.get(stream)?.session;
    if (!session) throw new GatewayError('NOT_FOUND', `no live session on stream "${stream.slice(0, 64)}"`);
    return session.status();
  }

  /** Running sessions (for the sessions gauge). */
  count(): number {
    return this.#sessions.size;
  }

  /** Stops every session (shutdown). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of this.#heldWaiters) wake();
    await Promise.all([...this.#sessions.values()].map((s) => s.stop('the gateway is shutting down', 'shutdown')));
    for (const { timer } of this.#ended.values()) clearTimeout(timer);
    this.#ended.clear();
  }

  async #waitHeld(stream: string): Promise<HeldStream | undefined> {
    const deadlineMs = this.#now() + this.#o.streamWaitMs;
    for (;;) {
      const held = this.#held.get(stream);
      if (held || this.#closed) return held;
      const leftMs = deadlineMs - this.#now();
      if (leftMs <= 0) return undefined;
      const ac = new AbortController();
      const wake = (): void => ac.abort();
      this.#heldWaiters.add(wake);
      await delay(leftMs, undefined, { signal: ac.signal }).catch(() => undefined);
      this.#heldWaiters.delete(wake);
    }
  }

  async #startWorker(s: { requestID: string; stream: string; modelID: string; exclude: ReadonlySet<string>; params: Readonly<Record<string, unknown>> }): Promise<StartedWorker> {
    const routed = await this.#o.manager.route<LiveWorkerChannels>({
      pipeline: LIVE_PIPELINE, modelID: s.modelID, requestID: s.requestID, workUnits: 1,
      attemptTimeoutMs: this.#o.startTimeoutMs, exclude: s.exclude,
      request: { model_id: s.modelID, params: s.params, gateway_request_id: s.requestID, stream_id: s.stream },
    }, async (reply, worker) => workerChannels(reply, worker.endpoint.url));
    return { workerID: routed.workerID, ...routed.reply, release: routed.done };
  }

  #suspend(workerID: string): void {
    const { registry, retry } = this.#o;
    registry.recordFailure(workerID, 'timeout', suspensionMs(registry.consecutiveFailures(workerID) + 1, retry));
  }

  #onEnded(session: LiveSession): void {
    if (this.#sessions.get(session.stream) === session) this.#sessions.delete(session.stream);
    if (this.#closed) return;
    const timer = setTimeout(() => {
      if (this.#ended.get(session.stream)?.session === session) this.#ended.delete(session.stream);
    }, this.#o.statusKeepMs);
    timer.unref();
    this.#ended.set(session.stream, { session, timer });
  }
}

/**
 * The session manager of live starts: `POST <worker>/live-video-to-video` through the worker
 * client's JSON call, failures classified like the batch pipelines' (a worker's 4xx is the
 * request's fault, passed on as 400; the rest fail over to another worker).
 */
export function createLiveWorkerManager(options: {
  registry: WorkerRegistry;
  postJson(endpoint: { url: string; token?: string }, path: string, json: unknown, options: { timeoutMs: number }): Promise<unknown>;
  classify: SessionManagerOptions<LiveWorkerStart, unknown>['classify'];
  onAttemptFailure?: SessionManagerOptions<LiveWorkerStart, unknown>['onAttemptFailure'];
  retry: RetryConfig;
  logger: Logger;
}): SessionManager<LiveWorkerStart, unknown> {
  return new SessionManager<LiveWorkerStart, unknown>({
    registry: options.registry,
    caller: { call: (endpoint, request, { timeoutMs }) => options.postJson(endpoint, LIVE_PIPELINE, request, { timeoutMs }) },
    classify: options.classify,
    ...(options.onAttemptFailure ? { onAttemptFailure: options.onAttemptFailure } : {}),
    retry: options.retry,
    logger: options.logger,
  });
}
