/**
 * The AI worker registry: workers from config and from `POST /api/workers`, each offering
 * (pipeline, model_id) capabilities with a capacity. Tracks real in-flight counts, a latency
 * score per capability, health from the runner's `GET /health`, and suspensions after
 * failures (docs/wire-contract.md §8).
 *
 * State is per gateway process: with several gateways, register each worker with each
 * gateway (the reference worker's keep-alive registration does this for the gateways it is
 * given), so in-flight counts are per gateway too.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { isPipeline, type FailureKind, type Pipeline, type WorkerCapability } from '../domain/pipelines.ts';
import type { Candidate } from './selector.ts';
import { SlotWaiters, type SlotWaitOutcome } from './slot-waiters.ts';

export type WorkerStatus = 'LOADING' | 'OK' | 'ERROR' | 'IDLE' | 'UNREACHABLE';

export interface WorkerSpec {
  url: string;
  token?: string;
  pipelines: { pipeline: string; model_id: string; warm?: boolean; capacity?: number }[];
}

interface CapabilityState extends Omit<WorkerCapability, 'warm'> {
  warm: boolean;
  inFlight: number;
  latencyScoreSPerUnit?: number;
}

interface WorkerState {
  readonly id: string;
  readonly url: string;
  readonly token?: string;
  readonly source: 'config' | 'api';
  capabilities: CapabilityState[];
  status: WorkerStatus;
  suspendedUntilMs: number;
  consecutiveFailures: number;
  registeredAtMs: number;
}

/** The public view of a worker (never the token). */
export interface WorkerView {
  id: string;
  url: string;
  pipelines: { pipeline: Pipeline; model_id: string; warm: boolean; capacity: number; inFlight: number }[];
  healthy: boolean;
  status: WorkerStatus;
  suspendedUntil?: string;
  source: 'config' | 'api';
}

export interface WorkerRegistryOptions {
  logger: Logger;
  /** Polls one worker's health; throws when unreachable. */
  checkHealth(worker: { url: string; token?: string }): Promise<'LOADING' | 'OK' | 'ERROR' | 'IDLE'>;
  /** Health poll interval in ms. */
  healthIntervalMs: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Worker IDs are derived from the base URL, so re-registering the same worker updates it. */
export function workerIDFor(url: string): string {
  return `w-${createHash('sha256').update(url.replace(/\/+$/, '')).digest('hex').slice(0, 12)}`;
}

function key(pipeline: Pipeline, modelID: string): string {
  return `${pipeline} ${modelID}`;
}

/** A worker is usable when its runner reports OK or IDLE (LOADING and ERROR leave the pool). */
function isHealthy(status: WorkerStatus): boolean {
  return status === 'OK' || status === 'IDLE';
}

export class WorkerRegistry {
  readonly #workers = new Map<string, WorkerState>();
  readonly #options: WorkerRegistryOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  readonly #slotWaiters = new SlotWaiters();

  constructor(options: WorkerRegistryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Adds or updates a worker (same URL = same worker: capabilities replaced, counters kept).
   * Its health is checked at once; until it answers it is not used.
   * @throws GatewayError INVALID_REQUEST naming the bad field (also for a URL with
   *   `user:password@`: the message never repeats the URL).
   */
  async register(spec: WorkerSpec, source: 'config' | 'api'): Promise<WorkerView> {
    let url: URL;
    try {
      url = new URL(spec.url);
    } catch {
      throw new GatewayError('INVALID_REQUEST', 'url: must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new GatewayError('INVALID_REQUEST', 'url: must be http or https');
    // A password in the URL would be echoed by GET /api/workers and logged; the worker client refuses such URLs anyway.
    if (url.username !== '' || url.password !== '') {
      throw new GatewayError('INVALID_REQUEST', 'url: must not contain credentials (user:password@); send the worker\'s bearer token in "token"');
    }
    const base = spec.url.replace(/\/+$/, '');
    const capabilities: CapabilityState[] = spec.pipelines.map((p, i) => {
      if (!isPipeline(p.pipeline)) throw new GatewayError('INVALID_REQUEST', `pipelines[${i}].pipeline: unknown pipeline "${String(p.pipeline).slice(0, 40)}"`);
      if (typeof p.model_id !== 'string' || p.model_id === '') throw new GatewayError('INVALID_REQUEST', `pipelines[${i}].model_id: required`);
      return { pipeline: p.pipeline, modelID: p.model_id, warm: p.warm ?? false, capacity: p.capacity ?? 1, inFlight: 0 };
    });
    const id = workerIDFor(base);
    const existing = this.#workers.get(id);
    if (existing) {
      existing.capabilities = capabilities.map((c) => {
        const old = existing.capabilities.find((o) => o.pipeline === c.pipeline && o.modelID === c.modelID);
        return old ? { ...c, inFlight: old.inFlight, ...(old.latencyScoreSPerUnit !== undefined ? { latencyScoreSPerUnit: old.latencyScoreSPerUnit } : {}) } : c;
      });
      existing.registeredAtMs = this.#now();
    } else {
      this.#workers.set(id, {
        id, url: base, ...(spec.token ? { token: spec.token } : {}), source, capabilities,
        status: 'UNREACHABLE', suspendedUntilMs: 0, consecutiveFailures: 0, registeredAtMs: this.#now(),
      });
      this.#options.logger.info({ workerID: id, url: base, pipelines: capabilities.map((c) => key(c.pipeline, c.modelID)), source }, 'AI worker registered');
    }
    await this.#poll(this.#workers.get(id)!);
    // New or changed capacity may serve requests waiting for a slot.
    this.#slotWaiters.wakeAll();
    return this.view(id)!;
  }

  /** Removes a worker; in-flight requests finish. Returns false when unknown. */
  remove(id: string): boolean {
    const removed = this.#workers.delete(id);
    if (removed) this.#options.logger.info({ workerID: id }, 'AI worker removed');
    return removed;
  }

  list(): WorkerView[] {
    return [...this.#workers.keys()].map((id) => this.view(id)!);
  }

  view(id: string): WorkerView | undefined {
    const w = this.#workers.get(id);
    if (!w) return undefined;
    return {
      id: w.id, url: w.url, healthy: isHealthy(w.status), status: w.status, source: w.source,
      ...(w.suspendedUntilMs > this.#now() ? { suspendedUntil: new Date(w.suspendedUntilMs).toISOString() } : {}),
      pipelines: w.capabilities.map((c) => ({ pipeline: c.pipeline, model_id: c.modelID, warm: c.warm, capacity: c.capacity, inFlight: c.inFlight })),
    };
  }

  /** Endpoint of a worker for calling it. */
  endpoint(id: string): { url: string; token?: string } | undefined {
    const w = this.#workers.get(id);
    return w ? { url: w.url, ...(w.token ? { token: w.token } : {}) } : undefined;
  }

  /** Whether any registered worker offers this (pipeline, model_id), healthy or not. */
  serves(pipeline: Pipeline, modelID: string): boolean {
    return [...this.#workers.values()].some((w) => w.capabilities.some((c) => c.pipeline === pipeline && c.modelID === modelID));
  }

  /** Candidates for (pipeline, model_id), for the selector. */
  candidates(pipeline: Pipeline, modelID: string): Candidate[] {
    const out: Candidate[] = [];
    for (const w of this.#workers.values()) {
      const c = w.capabilities.find((x) => x.pipeline === pipeline && x.modelID === modelID);
      if (!c) continue;
      out.push({
        workerID: w.id, warm: c.warm, capacity: c.capacity, inFlight: c.inFlight, healthy: isHealthy(w.status),
        ...(c.latencyScoreSPerUnit !== undefined ? { latencyScoreSPerUnit: c.latencyScoreSPerUnit } : {}),
        ...(w.suspendedUntilMs > 0 ? { suspendedUntilMs: w.suspendedUntilMs } : {}),
      });
    }
    return out;
  }

  #capability(id: string, pipeline: Pipeline, modelID: string): CapabilityState | undefined {
    return this.#workers.get(id)?.capabilities.find((c) => c.pipeline === pipeline && c.modelID === modelID);
  }

  /** Takes one slot of a worker's capacity; false when it is full or gone. */
  acquire(id: string, pipeline: Pipeline, modelID: string): boolean {
    const c = this.#capability(id, pipeline, modelID);
    if (!c || c.inFlight >= c.capacity) return false;
    c.inFlight += 1;
    return true;
  }

  /** Gives a slot back and wakes the requests waiting for one of this (pipeline, model_id). */
  release(id: string, pipeline: Pipeline, modelID: string): void {
    const c = this.#capability(id, pipeline, modelID);
    if (c && c.inFlight > 0) c.inFlight -= 1;
    this.#slotWaiters.wake(key(pipeline, modelID));
  }

  /**
   * Waits until a slot of (pipeline, model_id) may have freed up: one was released, or a
   * worker was registered or came back healthy. The caller re-checks ({@link acquire});
   * another request may have taken the slot first.
   * @param timeoutMs longest wait, ms
   * @returns `woken`, `timeout` or `aborted` (never rejects)
   */
  waitForSlot(pipeline: Pipeline, modelID: string, timeoutMs: number, signal?: AbortSignal): Promise<SlotWaitOutcome> {
    return this.#slotWaiters.wait(key(pipeline, modelID), timeoutMs, signal);
  }

  /** A success: new latency score (computed by the caller), failures reset, the model is now warm. */
  recordSuccess(id: string, pipeline: Pipeline, modelID: string, latencyScoreSPerUnit: number): void {
    const w = this.#workers.get(id);
    const c = this.#capability(id, pipeline, modelID);
    if (!w || !c) return;
    c.latencyScoreSPerUnit = latencyScoreSPerUnit;
    c.warm = true;
    w.consecutiveFailures = 0;
  }

  /** A failure that suspends the worker for `suspendMs` (the retry policy decides both). */
  recordFailure(id: string, kind: FailureKind, suspendMs: number): void {
    const w = this.#workers.get(id);
    if (!w) return;
    w.consecutiveFailures += 1;
    if (suspendMs > 0) {
      w.suspendedUntilMs = this.#now() + suspendMs;
      this.#options.logger.warn({ workerID: id, kind, suspendMs, consecutiveFailures: w.consecutiveFailures }, 'AI worker suspended');
    }
  }

  consecutiveFailures(id: string): number {
    return this.#workers.get(id)?.consecutiveFailures ?? 0;
  }

  /** Starts polling every worker's health. */
  start(): void {
    this.#timer ??= setInterval(() => void this.pollAll(), this.#options.healthIntervalMs);
    this.#timer.unref();
  }

  /** Polls every worker once (the timer's work; exposed for tests). */
  async pollAll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      await Promise.all([...this.#workers.values()].map((w) => this.#poll(w)));
    } finally {
      this.#polling = false;
    }
  }

  async #poll(w: WorkerState): Promise<void> {
    let status: WorkerStatus;
    try {
      status = await this.#options.checkHealth({ url: w.url, ...(w.token ? { token: w.token } : {}) });
    } catch {
      status = 'UNREACHABLE';
    }
    if (status !== w.status) {
      const level = isHealthy(status) ? 'info' : 'warn';
      this.#options.logger[level]({ workerID: w.id, from: w.status, to: status }, isHealthy(status) ? 'AI worker healthy' : 'AI worker left the pool');
      // A worker that comes back healthy is readmitted at once.
      if (isHealthy(status)) {
        w.suspendedUntilMs = 0;
        w.consecutiveFailures = 0;
      }
      w.status = status;
      if (isHealthy(status)) this.#slotWaiters.wakeAll();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
