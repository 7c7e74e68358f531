/**
 * The AI worker registry: workers from config and from `POST /api/workers`, each offering
 * (pipeline, model_id) capabilities with a capacity. Tracks real in-flight counts, a latency
 * score per capability, health from the runner's `GET /health`, and suspensions after
 * failures (docs/wire-contract.md §8).
 *
 * With a {@link WorkerPool} attached (the gateway attaches the Redis one, worker-pool-store.ts)
 * the registrations, health and in-flight slots are the cluster's: a worker registered through
 * any gateway is routed to by all of them; a slot is a lease taken and given back in Redis
 * (one round trip each), so a worker's capacity holds across gateways, and a dying gateway's
 * slots come back when their lease expires (`slotLeaseTtlMs` after their last renewal); each
 * worker's health is polled by one gateway per interval (elected per worker) and shared.
 * This process keeps a cache of the pool, refreshed every `syncIntervalMs`, for its routing
 * decisions; latency scores, suspensions and "warm after a success" stay per gateway (each
 * gateway's own experience of a worker). Without a pool, everything is this process's own.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { defaultModelID, isWorkerPipeline, type FailureKind, type WorkerPipeline, type WorkerCapability } from '../domain/pipelines.ts';
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
  url: string;
  token?: string;
  source: 'config' | 'api';
  capabilities: CapabilityState[];
  status: WorkerStatus;
  /** When `status` was last polled (local clock), 0 = never. */
  checkedAtMs: number;
  /** When this gateway last registered it (local clock), 0 = learnt from the pool: a pool read older than this does not drop it. */
  touchedAtMs?: number;
  suspendedUntilMs: number;
  consecutiveFailures: number;
  registeredAtMs: number;
}

/** A registration as the cluster's pool stores it (worker-pool-store.ts `PooledWorker`). */
export interface PoolRegistration {
  readonly id: string;
  readonly url: string;
  readonly token?: string;
  readonly source: 'config' | 'api';
  readonly pipelines: readonly { readonly pipeline: string; readonly model_id: string; readonly warm: boolean; readonly capacity: number }[];
  readonly registeredAtMs: number;
}

/** One slot's identity in the pool. */
export interface PoolSlot {
  readonly workerID: string;
  readonly pipeline: string;
  readonly modelID: string;
}

/**
 * The cluster's worker pool the registry shares (implemented in Redis by
 * worker-pool-store.ts `RedisWorkerPool`; ms are the store's clock).
 */
export interface WorkerPool {
  saveWorker(worker: PoolRegistration, ttlMs: number): Promise<boolean>;
  removeWorker(id: string): Promise<boolean>;
  saveHealth(id: string, status: string, registrationTtlMs: number, ageMs?: number): Promise<boolean>;
  read(): Promise<{ nowMs: number; workers: { worker: PoolRegistration; health?: { status: string; checkedAtMs: number }; inFlight: readonly number[] }[] }>;
  claimPolls(ids: readonly string[], holdMs: number, owner: string): Promise<string[]>;
  acquire(slot: PoolSlot, leaseID: string, capacity: number, ttlMs: number): Promise<{ acquired: boolean; inFlight: number }>;
  release(slot: PoolSlot, leaseID: string): Promise<void>;
  renewLeases(leases: readonly { slotKey: string; leaseID: string }[], ttlMs: number): Promise<number>;
  slotKey(slot: PoolSlot): string;
}

/** How the registry uses an attached pool. */
export interface WorkerPoolOptions {
  /** A registration not renewed (by registering again, or by a health answer) for this long leaves the pool, ms. */
  readonly registrationTtlMs: number;
  /** A slot's lease: renewed every third of it while held; a dead gateway's slot returns within it, ms. */
  readonly slotLeaseTtlMs: number;
  /** How often this gateway refreshes its cache of the pool, ms. */
  readonly syncIntervalMs: number;
  /**
   * Longest single wait for a slot before the pool is asked again, ms: slots released on
   * other gateways wake nobody here. Default 250.
   */
  readonly recheckMs?: number;
}

/** The public view of a worker (never the token). */
export interface WorkerView {
  id: string;
  url: string;
  pipelines: { pipeline: WorkerPipeline; model_id: string; warm: boolean; capacity: number; inFlight: number }[];
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

function key(pipeline: WorkerPipeline, modelID: string): string {
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
  #syncTimer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #polling = false;
  #syncing: Promise<void> | undefined;
  readonly #slotWaiters = new SlotWaiters();
  #pool: { readonly store: WorkerPool; readonly options: WorkerPoolOptions } | undefined;
  /** Slots this gateway holds in the pool: lease ID → slot key (renewed until released). */
  readonly #leases = new Map<string, string>();
  /** Lease IDs: this process's random tag and a counter. */
  readonly #leaseTag = randomBytes(6).toString('hex');
  #leaseCounter = 0;
  /** Workers removed through this gateway, and when (local clock): a pool read older than that does not bring them back. */
  readonly #removedAtMs = new Map<string, number>();
  /** Workers this gateway registered from its config: renewed in the pool while it runs. */
  readonly #configured = new Map<string, PoolRegistration>();

  constructor(options: WorkerRegistryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Shares this registry's workers, health and slots with every gateway on `pool` (call
   * before registering workers and before {@link start}).
   */
  attachPool(pool: WorkerPool, options: WorkerPoolOptions): void {
    this.#pool = { store: pool, options };
  }

  /** This registry's workers as stored in the pool. */
  #registration(w: WorkerState): PoolRegistration {
    return {
      id: w.id, url: w.url, ...(w.token ? { token: w.token } : {}), source: w.source, registeredAtMs: w.registeredAtMs,
      pipelines: w.capabilities.map((c) => ({ pipeline: c.pipeline, model_id: c.modelID, warm: c.warm, capacity: c.capacity })),
    };
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
      if (!isWorkerPipeline(p.pipeline)) throw new GatewayError('INVALID_REQUEST', `pipelines[${i}].pipeline: unknown pipeline "${String(p.pipeline).slice(0, 40)}"`);
      if (typeof p.model_id !== 'string' || p.model_id === '') throw new GatewayError('INVALID_REQUEST', `pipelines[${i}].model_id: required`);
      return { pipeline: p.pipeline, modelID: p.model_id, warm: p.warm ?? false, capacity: p.capacity ?? 1, inFlight: 0 };
    });
    const id = workerIDFor(base);
    const existing = this.#workers.get(id);
    let changed = true;
    if (existing) {
      changed = JSON.stringify(existing.capabilities.map((c) => [c.pipeline, c.modelID, c.capacity, c.warm]))
        !== JSON.stringify(capabilities.map((c) => [c.pipeline, c.modelID, c.capacity, c.warm])) || existing.url !== base || existing.token !== spec.token;
      existing.capabilities = capabilities.map((c) => {
        const old = existing.capabilities.find((o) => o.pipeline === c.pipeline && o.modelID === c.modelID);
        return old ? { ...c, inFlight: old.inFlight, ...(old.latencyScoreSPerUnit !== undefined ? { latencyScoreSPerUnit: old.latencyScoreSPerUnit } : {}) } : c;
      });
      if (spec.token) existing.token = spec.token;
      else delete existing.token;
      existing.source = source;
      if (changed) existing.registeredAtMs = this.#now();
    } else {
      this.#workers.set(id, {
        id, url: base, ...(spec.token ? { token: spec.token } : {}), source, capabilities,
        status: 'UNREACHABLE', checkedAtMs: 0, suspendedUntilMs: 0, consecutiveFailures: 0, registeredAtMs: this.#now(),
      });
      this.#options.logger.info({ workerID: id, url: base, pipelines: capabilities.map((c) => key(c.pipeline, c.modelID)), source }, 'AI worker registered');
    }
    const w = this.#workers.get(id)!;
    w.touchedAtMs = this.#now();
    this.#removedAtMs.delete(id);
    if (this.#pool) {
      const registration = this.#registration(w);
      if (source === 'config') this.#configured.set(id, registration);
      await this.#pool.store.saveWorker(registration, this.#pool.options.registrationTtlMs);
    }
    // A renewal of a known worker whose health is fresh (polled here or by another gateway
    // within two intervals) is not polled again: health is polled once per interval in the cluster.
    const fresh = w.checkedAtMs > 0 && this.#now() - w.checkedAtMs < 2 * this.#options.healthIntervalMs;
    if (changed || !fresh) await this.#poll(w);
    // New or changed capacity may serve requests waiting for a slot.
    this.#slotWaiters.wakeAll();
    return this.view(id)!;
  }

  /** Removes a worker (from the cluster's pool too); in-flight requests finish. Resolves false when unknown. */
  async remove(id: string): Promise<boolean> {
    let removed = this.#workers.delete(id);
    this.#configured.delete(id);
    if (this.#pool) this.#removedAtMs.set(id, this.#now());
    if (this.#pool) removed = (await this.#pool.store.removeWorker(id)) || removed;
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
  serves(pipeline: WorkerPipeline, modelID: string): boolean {
    return [...this.#workers.values()].some((w) => w.capabilities.some((c) => c.pipeline === pipeline && c.modelID === modelID));
  }

  /**
   * The model a request of `pipeline` that names none goes to: the pipeline's default model
   * (domain/pipelines.ts defaultModelID) when any worker serves it, or none serves the
   * pipeline at all; otherwise the served model of the pipeline with the most free slots on
   * healthy, unsuspended workers now (ties: the most slots in all, then the lowest model ID),
   * so the request starts as soon as it can (docs/wire-contract.md §8).
   */
  modelFor(pipeline: WorkerPipeline): string {
    const preferred = defaultModelID(pipeline);
    if (this.serves(pipeline, preferred)) return preferred;
    const nowMs = this.#now();
    const models = new Map<string, { free: number; total: number }>();
    for (const w of this.#workers.values()) {
      for (const c of w.capabilities) {
        if (c.pipeline !== pipeline) continue;
        const m = models.get(c.modelID) ?? { free: 0, total: 0 };
        m.total += c.capacity;
        if (isHealthy(w.status) && w.suspendedUntilMs <= nowMs) m.free += Math.max(0, c.capacity - c.inFlight);
        models.set(c.modelID, m);
      }
    }
    let best: [string, { free: number; total: number }] | undefined;
    for (const entry of models) {
      const [model, m] = entry;
      if (best === undefined || m.free > best[1].free || (m.free === best[1].free && (m.total > best[1].total || (m.total === best[1].total && model < best[0])))) best = entry;
    }
    return best?.[0] ?? preferred;
  }

  /** Candidates for (pipeline, model_id), for the selector. */
  candidates(pipeline: WorkerPipeline, modelID: string): Candidate[] {
    const out: Candidate[] = [];
    for (const w of this.#workers.values()) {
      const c = w.capabilities.find((x) => x.pipeline === pipeline && x.modelID === modelID);
      if (!c) continue;
      out.push({
        workerID: w.id, warm: c.warm, capacity: c.capacity, inFlight: c.inFlight, healthy: isHealthy(w.status),
        ...(w.status === 'LOADING' ? { loading: true } : {}),
        ...(c.latencyScoreSPerUnit !== undefined ? { latencyScoreSPerUnit: c.latencyScoreSPerUnit } : {}),
        ...(w.suspendedUntilMs > 0 ? { suspendedUntilMs: w.suspendedUntilMs } : {}),
      });
    }
    return out;
  }

  #capability(id: string, pipeline: WorkerPipeline, modelID: string): CapabilityState | undefined {
    return this.#workers.get(id)?.capabilities.find((c) => c.pipeline === pipeline && c.modelID === modelID);
  }

  /**
   * Takes one slot of a worker's capacity (with a pool: a lease in it, one round trip).
   * @returns the lease to give to {@link release}; undefined when the worker is full or gone
   * @throws the pool's error (Redis unreachable)
   */
  async acquire(id: string, pipeline: WorkerPipeline, modelID: string): Promise<string | undefined> {
    const c = this.#capability(id, pipeline, modelID);
    if (!c) return undefined;
    if (!this.#pool) {
      if (c.inFlight >= c.capacity) return undefined;
      c.inFlight += 1;
      return 'local';
    }
    const leaseID = `${this.#leaseTag}:${++this.#leaseCounter}`;
    const slot = { workerID: id, pipeline, modelID };
    const { acquired, inFlight } = await this.#pool.store.acquire(slot, leaseID, c.capacity, this.#pool.options.slotLeaseTtlMs);
    c.inFlight = inFlight;
    if (!acquired) return undefined;
    this.#leases.set(leaseID, this.#pool.store.slotKey(slot));
    return leaseID;
  }

  /**
   * Gives a slot back (with a pool: its lease, one round trip, not awaited: a failure is
   * logged and the lease expires) and wakes the requests waiting for one of this (pipeline, model_id).
   */
  release(id: string, pipeline: WorkerPipeline, modelID: string, leaseID: string): void {
    const c = this.#capability(id, pipeline, modelID);
    if (c && c.inFlight > 0) c.inFlight -= 1;
    if (this.#pool && this.#leases.delete(leaseID)) {
      this.#pool.store.release({ workerID: id, pipeline, modelID }, leaseID).catch((err: Error) => {
        this.#options.logger.warn({ workerID: id, err: err.message }, 'cannot release an AI worker slot; its lease will expire');
      });
    }
    // With a pool, one slot freed wakes one waiter (the others re-ask the pool on their own
    // timers): waking all of them would send one acquire each for a single slot.
    if (this.#pool) this.#slotWaiters.wakeOne(key(pipeline, modelID));
    else this.#slotWaiters.wake(key(pipeline, modelID));
  }

  /**
   * Waits until a slot of (pipeline, model_id) may have freed up: one was released, or a
   * worker was registered or came back healthy. The caller re-checks ({@link acquire});
   * another request may have taken the slot first.
   * @param timeoutMs longest wait, ms
   * @returns `woken`, `timeout` or `aborted` (never rejects)
   */
  waitForSlot(pipeline: WorkerPipeline, modelID: string, timeoutMs: number, signal?: AbortSignal): Promise<SlotWaitOutcome> {
    // Slots released and workers readied on other gateways wake nobody here: ask the pool again soon.
    const waitMs = this.#pool ? Math.min(timeoutMs, this.#pool.options.recheckMs ?? 250) : timeoutMs;
    return this.#slotWaiters.wait(key(pipeline, modelID), waitMs, signal);
  }

  /** A success: new latency score (computed by the caller), failures reset, the model is now warm. */
  recordSuccess(id: string, pipeline: WorkerPipeline, modelID: string, latencyScoreSPerUnit: number): void {
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

  /**
   * Starts polling every worker's health (with a pool: the workers this gateway is elected
   * for, per interval), and with a pool also the cache refresh and the renewal of held leases.
   */
  start(): void {
    this.#timer ??= setInterval(() => void this.pollAll(), this.#options.healthIntervalMs);
    this.#timer.unref();
    if (!this.#pool) return;
    const { syncIntervalMs, slotLeaseTtlMs } = this.#pool.options;
    this.#syncTimer ??= setInterval(() => void this.sync().catch(() => undefined), syncIntervalMs);
    this.#syncTimer.unref();
    this.#renewTimer ??= setInterval(() => void this.#renewLeases(), Math.max(100, Math.floor(slotLeaseTtlMs / 3)));
    this.#renewTimer.unref();
  }

  /**
   * Refreshes this gateway's cache from the pool (the sync timer's work; exposed for tests):
   * workers registered elsewhere appear, removed or expired ones go, health and in-flight
   * counts are the cluster's. Requests waiting for a slot are woken when a worker became usable.
   * @throws the pool's error (logged by the timer)
   */
  sync(): Promise<void> {
    if (!this.#pool) return Promise.resolve();
    this.#syncing ??= this.#sync().finally(() => { this.#syncing = undefined; });
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    let read: Awaited<ReturnType<WorkerPool['read']>>;
    // Taken before the read: a health answer's age is then never under-estimated, so a read
    // that raced a newer poll of this gateway cannot override it.
    const localNowMs = this.#now();
    try {
      read = await this.#pool!.store.read();
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'cannot read the AI worker pool');
      throw err;
    }
    const seen = new Set<string>();
    let readied = false;
    for (const { worker, health, inFlight } of read.workers) {
      seen.add(worker.id);
      const removedAtMs = this.#removedAtMs.get(worker.id);
      if (removedAtMs !== undefined && removedAtMs >= localNowMs) continue; // removed here while this read was under way
      const capabilities: CapabilityState[] = [];
      worker.pipelines.forEach((p, i) => {
        if (!isWorkerPipeline(p.pipeline)) return;
        capabilities.push({ pipeline: p.pipeline, modelID: p.model_id, warm: p.warm, capacity: p.capacity, inFlight: inFlight[i] ?? 0 });
      });
      let w = this.#workers.get(worker.id);
      if (w === undefined) {
        w = {
          id: worker.id, url: worker.url, ...(worker.token ? { token: worker.token } : {}), source: worker.source, capabilities,
          status: 'UNREACHABLE', checkedAtMs: 0, suspendedUntilMs: 0, consecutiveFailures: 0, registeredAtMs: worker.registeredAtMs,
        };
        this.#workers.set(worker.id, w);
        this.#options.logger.info({ workerID: worker.id, url: worker.url }, 'AI worker joined from the pool');
      } else {
        w.url = worker.url;
        if (worker.token) w.token = worker.token;
        else delete w.token;
        w.source = worker.source;
        w.registeredAtMs = worker.registeredAtMs;
        const old = w.capabilities;
        w.capabilities = capabilities.map((c) => {
          const o = old.find((x) => x.pipeline === c.pipeline && x.modelID === c.modelID);
          return o ? { ...c, warm: c.warm || o.warm, ...(o.latencyScoreSPerUnit !== undefined ? { latencyScoreSPerUnit: o.latencyScoreSPerUnit } : {}) } : c;
        });
      }
      if (health !== undefined) {
        // Its age on the pool's clock, placed on this process's clock.
        const checkedAtMs = localNowMs - Math.max(0, read.nowMs - health.checkedAtMs);
        if (checkedAtMs > w.checkedAtMs) readied = this.#apply(w, health.status as WorkerStatus, checkedAtMs) || readied;
      }
    }
    for (const id of this.#removedAtMs.keys()) if (!seen.has(id)) this.#removedAtMs.delete(id);
    for (const [id, w] of [...this.#workers]) {
      // A worker registered here after this read began is kept: the read may predate its registration.
      if (!seen.has(id) && (w.touchedAtMs ?? 0) < localNowMs) {
        this.#workers.delete(id);
        this.#options.logger.info({ workerID: id }, 'AI worker left the pool (removed or expired)');
      }
    }
    if (readied) this.#slotWaiters.wakeAll();
  }

  async #renewLeases(): Promise<void> {
    if (!this.#pool || this.#leases.size === 0) return;
    try {
      await this.#pool.store.renewLeases([...this.#leases].map(([leaseID, slotKey]) => ({ slotKey, leaseID })), this.#pool.options.slotLeaseTtlMs);
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message, leases: this.#leases.size }, 'cannot renew AI worker slot leases');
    }
  }

  /**
   * Polls health once (the timer's work; exposed for tests): every worker without a pool;
   * with one, the workers this gateway wins the per-worker poll lock of (held for 90% of the
   * interval, so each worker is polled about once per interval in the cluster), sharing the
   * answers, and it renews the workers of its own config.
   */
  async pollAll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      if (!this.#pool) {
        await Promise.all([...this.#workers.values()].map((w) => this.#poll(w)));
        return;
      }
      const { store, options } = this.#pool;
      for (const registration of this.#configured.values()) await store.saveWorker(registration, options.registrationTtlMs);
      const won = await store.claimPolls([...this.#workers.keys()], this.#options.healthIntervalMs * 0.9, this.#leaseTag);
      await Promise.all(won.map((id) => this.#workers.get(id)).filter((w) => w !== undefined).map((w) => this.#poll(w)));
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'AI worker health round failed');
    } finally {
      this.#polling = false;
    }
  }

  async #poll(w: WorkerState): Promise<void> {
    let status: WorkerStatus = 'UNREACHABLE';
    // The answer is dated when it was asked for: a poll that began before a newer answer arrived
    // (from another gateway's poll through the pool, or this one's) must not replace it.
    let askedAtMs = this.#now();
    // A worker that answered before gets a second try at once: one lost or late answer (a busy
    // host) would otherwise take it out of the pool of every gateway for a whole interval.
    for (let attempt = 0; attempt < (w.status === 'UNREACHABLE' ? 1 : 2) && status === 'UNREACHABLE'; attempt++) {
      askedAtMs = this.#now();
      try {
        status = await this.#options.checkHealth({ url: w.url, ...(w.token ? { token: w.token } : {}) });
      } catch {
        status = 'UNREACHABLE';
      }
    }
    if (this.#pool) {
      await this.#pool.store.saveHealth(w.id, status, this.#pool.options.registrationTtlMs, this.#now() - askedAtMs).catch((err: Error) => {
        this.#options.logger.warn({ workerID: w.id, err: err.message }, 'cannot share an AI worker\'s health');
      });
    }
    if (askedAtMs < w.checkedAtMs) return; // a newer answer was applied while this one was on its way
    if (this.#apply(w, status, askedAtMs)) this.#slotWaiters.wakeAll();
  }

  /** Takes a health answer; true when the worker just became usable. */
  #apply(w: WorkerState, status: WorkerStatus, checkedAtMs: number): boolean {
    w.checkedAtMs = checkedAtMs;
    if (status !== w.status) {
      const level = isHealthy(status) ? 'info' : 'warn';
      this.#options.logger[level]({ workerID: w.id, from: w.status, to: status }, isHealthy(status) ? 'AI worker healthy' : 'AI worker left the pool');
      // A worker that comes back healthy is readmitted at once.
      if (isHealthy(status)) {
        w.suspendedUntilMs = 0;
        w.consecutiveFailures = 0;
      }
      w.status = status;
      return isHealthy(status);
    }
    return false;
  }

  /** Stops the timers; leases still held expire in the pool unless released. Idempotent. */
  close(): void {
    clearInterval(this.#timer);
    clearInterval(this.#syncTimer);
    clearInterval(this.#renewTimer);
    this.#timer = undefined;
    this.#syncTimer = undefined;
    this.#renewTimer = undefined;
  }
}
