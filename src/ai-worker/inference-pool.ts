/**
 * The inference threads of the reference AI worker: `capacity` worker threads, each with
 * its own TensorFlow.js wasm backend and its own copy of the served ESRGAN models, each
 * running one upscale at a time. Keeping inference off the main thread keeps the HTTP server
 * responsive while models run: `GET /health` answers and requests beyond capacity are
 * refused at once.
 *
 * A request takes a slot ({@link InferencePool.tryAcquire}) for its whole life (decode,
 * inference, encode), so `capacity` bounds concurrent work and memory. A thread that dies
 * (e.g. its wasm memory cannot grow) fails its job and is replaced.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.ts';
import { esrganModelsDir, type EsrganScale } from './models.ts';
import type { ThreadReply, ThreadRequest } from './inference-thread.ts';

export type PoolState = 'LOADING' | 'READY' | 'ERROR';

export interface InferencePoolOptions {
  /** Threads, i.e. upscales running at once (1..64). */
  readonly capacity: number;
  /** Model scales every thread loads; none = no threads (a worker serving only the live pipeline): READY at once, no slot ever free. */
  readonly scales: readonly EsrganScale[];
  /** Folder with `x2/`, `x3/`, `x4/` layers models; default the installed @upscalerjs/esrgan-slim `models/`. */
  readonly modelsDir?: string;
  readonly logger: Logger;
  /** Test seam: threads start loading only once this resolves (to observe LOADING). */
  readonly loadGate?: Promise<void>;
}

export interface UpscaleJob {
  readonly scale: EsrganScale;
  readonly width: number;
  readonly height: number;
  /** width × height × 3 bytes, row-major RGB. Copied to the thread. */
  readonly rgb: Uint8Array;
  /** Largest tile side fed to the model, input pixels. */
  readonly tileSize: number;
  /** Context pixels on each inner side of a tile. */
  readonly tileOverlap: number;
}

export interface UpscaleOutcome {
  /** (width·scale) × (height·scale) × 3 bytes. */
  readonly rgb: Uint8Array;
  readonly tiles: number;
  /** Time in the thread, ms. */
  readonly inferMs: number;
  /** The thread's wasm linear memory after the job, bytes. */
  readonly wasmHeapBytes: number;
}

/** A job that did not complete: aborted by the caller, or failed in the thread. */
export class InferenceError extends Error {
  readonly aborted: boolean;
  constructor(message: string, aborted = false) {
    super(message);
    this.name = 'InferenceError';
    this.aborted = aborted;
  }
}

interface PendingJob {
  readonly id: number;
  resolve(outcome: UpscaleOutcome): void;
  reject(err: Error): void;
}

interface Thread {
  readonly worker: Worker;
  ready: boolean;
  reserved: boolean;
  /** The slot was released while its job still ran: free it when the job ends. */
  releaseWhenDone: boolean;
  job: PendingJob | undefined;
}

const THREAD_ENTRY = new URL('./inference-thread.ts', import.meta.url).href;

/**
 * Worker threads do not inherit tsx's module hooks in Node 20, so a tiny CommonJS
 * bootstrap registers tsx (resolved from this module) before importing the TypeScript entry.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsxApi) (await import(workerData.tsxApi)).register();
  await import(workerData.entry);
})().catch((err) => { setImmediate(() => { throw err; }); });
`;

export class InferencePool {
  readonly #options: InferencePoolOptions;
  readonly #log: Logger;
  readonly #threads = new Set<Thread>();
  #state: PoolState = 'LOADING';
  #loadError: string | undefined;
  #nextJobID = 1;
  #closed = false;
  #started = false;
  #resolveReady!: (state: PoolState) => void;
  /** Resolves once the first load finished: READY, or ERROR (see {@link loadError}). */
  readonly ready: Promise<PoolState>;

  constructor(options: InferencePoolOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1 || options.capacity > 64) throw new RangeError(`capacity must be 1..64, got ${options.capacity}`);
    this.#options = options;
    this.#log = options.logger;
    this.ready = new Promise((resolve) => { this.#resolveReady = resolve; });
  }

  get state(): PoolState {
    return this.#state;
  }

  /** Why loading failed (state ERROR). */
  get loadError(): string | undefined {
    return this.#loadError;
  }

  get capacity(): number {
    return this.#options.capacity;
  }

  /** Slots taken now. */
  get inFlight(): number {
    let n = 0;
    for (const t of this.#threads) if (t.reserved) n++;
    return n;
  }

  /** Spawns the threads and loads the models; see {@link ready}. Idempotent. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    void (async () => {
      await this.#options.loadGate;
      if (this.#closed) return;
      if (this.#options.scales.length === 0) {
        this.#state = 'READY';
        this.#resolveReady('READY');
        return;
      }
      let modelsDir: string;
      try {
        modelsDir = this.#options.modelsDir ?? esrganModelsDir();
      } catch (err) {
        this.#fail((err as Error).message);
        return;
      }
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: this.#options.capacity }, () => this.#spawn(modelsDir)));
      if (this.#closed || this.#state === 'ERROR' || !results.every(Boolean)) return;
      this.#state = 'READY';
      this.#log.info({ threads: this.#threads.size, scales: this.#options.scales, loadMs: Math.round(performance.now() - started) }, 'models loaded');
      this.#resolveReady('READY');
    })();
  }

  /** Takes a free slot, or undefined when every thread is busy (or not loaded). Release it with `slot.release()`. */
  tryAcquire(): InferenceSlot | undefined {
    if (this.#state !== 'READY' || this.#closed) return undefined;
    for (const thread of this.#threads) {
      if (thread.ready && !thread.reserved) {
        thread.reserved = true;
        return new InferenceSlot(this, thread);
      }
    }
    return undefined;
  }

  /** @internal used by InferenceSlot */
  runOn(thread: Thread, job: UpscaleJob, signal: AbortSignal | undefined): Promise<UpscaleOutcome> {
    if (!thread.ready || !this.#threads.has(thread)) return Promise.reject(new InferenceError('the inference thread is gone'));
    if (thread.job !== undefined) return Promise.reject(new InferenceError('the slot is already running a job'));
    const abort = new Int32Array(new SharedArrayBuffer(4));
    const id = this.#nextJobID++;
    return new Promise<UpscaleOutcome>((resolve, reject) => {
      const onAbort = (): void => { Atomics.store(abort, 0, 1); };
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        thread.job = undefined;
        if (thread.releaseWhenDone) {
          thread.releaseWhenDone = false;
          thread.reserved = false;
        }
      };
      thread.job = {
        id,
        resolve: (outcome) => { done(); resolve(outcome); },
        reject: (err) => { done(); reject(err); },
      };
      // Copy the pixels into a buffer of their own and transfer it (no second copy).
      const rgb = job.rgb.slice().buffer as ArrayBuffer;
      const message: ThreadRequest = {
        type: 'upscale', id, scale: job.scale, width: job.width, height: job.height, rgb,
        tileSize: job.tileSize, tileOverlap: job.tileOverlap, abort: abort.buffer as SharedArrayBuffer,
      };
      thread.worker.postMessage(message, [rgb]);
    });
  }

  /** @internal A thread still running a job (its caller gave up) is freed when the job ends. */
  releaseThread(thread: Thread): void {
    if (thread.job === undefined) thread.reserved = false;
    else thread.releaseWhenDone = true;
  }

  /** Stops every thread; pending jobs fail. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#state === 'LOADING') {
      this.#state = 'ERROR';
      this.#loadError = 'closed while loading';
      this.#resolveReady('ERROR');
    }
    const threads = [...this.#threads];
    this.#threads.clear();
    for (const t of threads) t.job?.reject(new InferenceError('the worker is shutting down', true));
    await Promise.all(threads.map((t) => t.worker.terminate().catch(() => undefined)));
  }

  #fail(message: string): void {
    if (this.#state === 'ERROR') return;
    this.#state = 'ERROR';
    this.#loadError = message;
    this.#log.error({ err: message }, 'model loading failed');
    this.#resolveReady('ERROR');
    const threads = [...this.#threads];
    this.#threads.clear();
    for (const t of threads) {
      t.job?.reject(new InferenceError('model loading failed'));
      void t.worker.terminate();
    }
  }

  /** Starts one thread and loads the models in it; resolves true once loaded, false on failure. */
  #spawn(modelsDir: string): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const worker = new Worker(BOOTSTRAP, {
        eval: true,
        workerData: { entry: THREAD_ENTRY, tsxApi: THREAD_ENTRY.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : undefined },
      });
      const thread: Thread = { worker, ready: false, reserved: false, releaseWhenDone: false, job: undefined };
      this.#threads.add(thread);
      let settled = false;
      const settle = (ok: boolean): void => {
        if (!settled) {
          settled = true;
          resolve(ok);
        }
      };
      worker.on('message', (reply: ThreadReply) => {
        switch (reply.type) {
          case 'loaded':
            thread.ready = true;
            this.#log.debug({ threadID: worker.threadId, loadMs: reply.loadMs, backend: reply.backend }, 'inference thread ready');
            settle(true);
            return;
          case 'load-failed':
            this.#fail(reply.message);
            settle(false);
            return;
          case 'upscaled':
            if (thread.job?.id === reply.id) {
              thread.job.resolve({ rgb: new Uint8Array(reply.rgb), tiles: reply.tiles, inferMs: reply.inferMs, wasmHeapBytes: reply.wasmHeapBytes });
            }
            return;
          case 'upscale-failed':
            if (thread.job?.id === reply.id) thread.job.reject(new InferenceError(reply.message, reply.aborted));
        }
      });
      worker.on('error', (err) => {
        this.#log.error({ threadID: worker.threadId, err: err.message }, 'inference thread failed');
      });
      worker.on('exit', (code) => {
        const known = this.#threads.delete(thread);
        thread.job?.reject(new InferenceError(`the inference thread exited (code ${code})`));
        if (!settled) {
          if (!this.#closed) this.#fail(`an inference thread exited while loading (code ${code})`);
          settle(false);
          return;
        }
        if (!known || this.#closed || this.#state === 'ERROR') return;
        this.#log.warn({ threadID: worker.threadId, code }, 'inference thread died; starting a replacement');
        void this.#spawn(modelsDir);
      });
      worker.postMessage({ type: 'load', modelsDir, scales: this.#options.scales } satisfies ThreadRequest);
    });
  }
}

/** One reserved inference thread. */
export class InferenceSlot {
  readonly #pool: InferencePool;
  readonly #thread: Thread;
  #released = false;

  /** @internal created by InferencePool.tryAcquire */
  constructor(pool: InferencePool, thread: Thread) {
    this.#pool = pool;
    this.#thread = thread;
  }

  /**
   * Upscales on this slot's thread.
   * @param signal aborting stops the job before its next tile (InferenceError with `aborted`)
   * @throws InferenceError when the thread fails, dies or the job is aborted
   */
  run(job: UpscaleJob, signal?: AbortSignal): Promise<UpscaleOutcome> {
    if (this.#released) return Promise.reject(new InferenceError('the slot was released'));
    return this.#pool.runOn(this.#thread, job, signal);
  }

  /** Frees the slot. Idempotent. A job still running keeps the thread busy until it ends. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#pool.releaseThread(this.#thread);
  }
}
