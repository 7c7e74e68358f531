/**
 * Registers the reference AI worker with a mediagate gateway and keeps it registered:
 * `POST <gateway>/api/workers` with `{url, token?, pipelines:[{pipeline, model_id, warm,
 * capacity}]}` (openapi/ai.yaml `RegisterWorkerRequest`), authorized with the gateway's
 * admin token.
 *
 * The gateway keeps its registry in memory and treats a registration of a known URL as an
 * update (src/ai/worker-registry.ts), so the worker simply registers again every
 * `intervalMs`: a restarted gateway learns of it within one interval, and a change of warm
 * state (models loaded) is pushed at once with {@link GatewayRegistration.registerNow}.
 * Failed attempts are retried sooner (1 s, doubling, up to the interval). On close the
 * worker removes itself (`DELETE /api/workers/<id>`), so the gateway stops routing to it at
 * once instead of after its next failed health check.
 */
import type { Logger } from '../log/logger.ts';
import type { WorkerPipeline } from '../domain/pipelines.ts';

export interface RegistrationOffer {
  readonly pipeline: WorkerPipeline;
  readonly model_id: string;
  readonly warm: boolean;
  readonly capacity: number;
}

export interface GatewayRegistrationOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:9935. */
  readonly gatewayUrl: string;
  /** The gateway's admin token; empty = none (a gateway on loopback without one). */
  readonly adminToken: string;
  /** This worker's base URL as the gateway should call it. */
  readonly workerUrl: string;
  /** This worker's bearer token, handed to the gateway; empty = none. */
  readonly workerToken: string;
  /** What to offer, evaluated at each registration (warm changes once models load). */
  offers(): RegistrationOffer[];
  readonly intervalMs: number;
  /** Per-request timeout, ms; default 5000. */
  readonly timeoutMs?: number;
  readonly logger: Logger;
}

export class GatewayRegistration {
  readonly #options: GatewayRegistrationOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #failures = 0;
  #workerID: string | undefined;
  #inFlight: Promise<boolean> | undefined;
  #again = false;

  constructor(options: GatewayRegistrationOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  /** The gateway's ID for this worker, once registered. */
  get workerID(): string | undefined {
    return this.#workerID;
  }

  /** Registers now and then every interval. Idempotent. */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    void this.registerNow();
  }

  /**
   * Registers now (coalescing with an attempt already running: one more follows it, so the
   * latest offers are sent). Resolves true when the gateway accepted it.
   */
  registerNow(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#inFlight !== undefined) {
      this.#again = true;
      return this.#inFlight;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#inFlight = this.#attempt().finally(() => {
      this.#inFlight = undefined;
      if (this.#again) {
        this.#again = false;
        void this.registerNow();
      } else {
        this.#schedule();
      }
    });
    return this.#inFlight;
  }

  #schedule(): void {
    if (this.#closed) return;
    const delayMs = this.#failures === 0 ? this.#options.intervalMs : Math.min(this.#options.intervalMs, 1000 * 2 ** (this.#failures - 1));
    this.#timer = setTimeout(() => void this.registerNow(), delayMs);
    this.#timer.unref();
  }

  #headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (json) headers['content-type'] = 'application/json';
    if (this.#options.adminToken !== '') headers['authorization'] = `Bearer ${this.#options.adminToken}`;
    return headers;
  }

  async #attempt(): Promise<boolean> {
    const { gatewayUrl, workerUrl, workerToken } = this.#options;
    const offers = this.#options.offers();
    const body = { url: workerUrl, ...(workerToken !== '' ? { token: workerToken } : {}), pipelines: offers };
    try {
      const res = await fetch(`${gatewayUrl}/api/workers`, {
        method: 'POST', headers: this.#headers(true), body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 5000), redirect: 'manual',
      });
      const text = await res.text();
      if (res.status !== 200 && res.status !== 201) throw new Error(`gateway answered ${res.status}: ${gatewayMessage(text)}`);
      const id = (JSON.parse(text) as { id?: unknown }).id;
      if (typeof id === 'string') this.#workerID = id;
      if (this.#failures > 0) this.#log.info({ gatewayUrl, attempts: this.#failures + 1 }, 'registered with the gateway again');
      else this.#log.debug({ gatewayUrl, workerID: this.#workerID, offers: offers.map((o) => `${o.model_id}${o.warm ? '' : ' (cold)'}`) }, 'registered with the gateway');
      this.#failures = 0;
      return true;
    } catch (err) {
      this.#failures++;
      const reason = err instanceof Error ? (err.name === 'TimeoutError' ? 'timed out' : causeOf(err)) : String(err);
      // Loud on the first failure, then quiet until it works again.
      if (this.#failures === 1) this.#log.warn({ gatewayUrl, err: reason }, 'cannot register with the gateway; retrying');
      else this.#log.debug({ gatewayUrl, err: reason, failures: this.#failures }, 'gateway registration failed');
      return false;
    }
  }

  /** Stops the keep-alive and removes the worker from the gateway (best effort). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#inFlight?.catch(() => undefined);
    if (this.#workerID === undefined) return;
    try {
      const res = await fetch(`${this.#options.gatewayUrl}/api/workers/${encodeURIComponent(this.#workerID)}`, {
        method: 'DELETE', headers: this.#headers(false), signal: AbortSignal.timeout(2000), redirect: 'manual',
      });
      await res.arrayBuffer();
      if (res.status === 204 || res.status === 404) this.#log.info({ workerID: this.#workerID }, 'removed from the gateway');
    } catch {
      // the gateway is gone; it will notice through its health checks
    }
  }
}

/** The gateway's `detail.msg`, or the start of the body. */
function gatewayMessage(text: string): string {
  try {
    const msg = (JSON.parse(text) as { detail?: { msg?: unknown } }).detail?.msg;
    if (typeof msg === 'string') return msg;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

function causeOf(err: Error): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return err.message;
}
