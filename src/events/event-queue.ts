/**
 * Event webhooks on BullMQ (queue `events`): `EventQueue` is the `EventSink` the media path
 * emits into, `EventDeliveryWorker` POSTs each event to each configured receiver.
 *
 * One job per (event, receiver URL), with the serialized body, so every receiver retries on
 * its own schedule (exponential backoff from `backoffMs`, `attempts` tries) and every retry
 * sends the same bytes and the same delivery ID. The signature is computed by the worker
 * when it sends each attempt: the `t=` timestamp is fresh on retries and the secret is never
 * written to Redis. Delivery is at least once (a Redis restart can re-run a finished job):
 * receivers deduplicate on `Mediagate-Delivery`. Wire format: src/events/webhook-signature.ts.
 *
 * Redis: the BullMQ queue `events` under the deployment prefix (keys `<prefix>:events:*`).
 * Both sides run on a connection the composition root opened and closes (the producer on a
 * `commands` connection, the worker on a `blocking` one: see src/redis/connections.ts); they
 * close only their BullMQ objects, which leave a connection they were handed open.
 *
 * Logs name a receiver by origin + path only (its query may hold a token), never the secret.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker, UnrecoverableError, DelayedError, type Job } from 'bullmq';
import type { Logger } from '../log/logger.ts';
import type { EventSink, GatewayEvent, GatewayEventType } from './events.ts';
import { serializeWebhookBody, webhookHeaders } from './webhook-signature.ts';
import { deliverWebhook, redactWebhookUrl, WebhookDeliveryError, type WebhookDelivered } from './webhook-delivery.ts';
import { DeliveryGate } from './delivery-gate.ts';
import type { Redis } from '../redis/connections.ts';
import { settleWithin } from '../domain/time-limit.ts';

export const EVENT_QUEUE_NAME = 'events';

/** What one job carries (in Redis): everything but the secret. */
export interface EventDeliveryJob {
  /** Receiver URL, as configured. */
  url: string;
  /** Delivery ID (UUID), the body's `id`. */
  id: string;
  type: GatewayEventType;
  /** The serialized body, sent byte for byte on every attempt. */
  body: string;
}

export interface EventQueueOptions {
  /**
   * A request/response connection (`connections.open('events', 'commands')`): an enqueue
   * during an outage fails after its 3 tries instead of piling up. Not closed here.
   */
  connection: Redis;
  /** Deployment key prefix (`redis.keyPrefix`); the queue's keys are `<prefix>:events:*`. */
  prefix: string;
  logger: Logger;
  /** Receiver URLs; each event becomes one job per URL. Empty = `emit` drops everything. */
  urls: readonly string[];
  /**
   * Accepted for symmetry with the config and ignored: the producer does not sign (the
   * worker signs each attempt), so the secret never reaches Redis.
   */
  secret?: string;
  /** Tries per event and receiver (config default 8). */
  attempts: number;
  /** First retry delay in ms, doubled on each retry (config default 1000). */
  backoffMs: number;
  /** After this many ms an enqueue still waiting for Redis is logged as a warning; default 2000. */
  addTimeoutMs?: number;
  /** Enqueues (one per event) waiting for Redis at once; events beyond are dropped and counted; default 1000. */
  maxPendingAdds?: number;
}

/** Counters of the producer. */
export interface EventQueueStats {
  /** Enqueues sent to Redis and not yet answered. */
  pending: number;
  /** Events dropped since start: too many enqueues pending, or Redis refused the enqueue. */
  dropped: number;
}

/**
 * Producer side, the `EventSink` of the gateway. `emit` returns synchronously and never
 * throws; the enqueue (one BullMQ `addBulk` per event, one job per URL) runs in the
 * background. While Redis is down: an enqueue after a lost connection fails within about a
 * second (the client's 3 tries) and the event is dropped; before the first connection BullMQ
 * waits instead, so enqueues stay pending (delivered if Redis comes up) up to
 * `maxPendingAdds`, and events beyond that are dropped. Drops are counted (`stats()`) and
 * logged at most every 5 s.
 */
export class EventQueue implements EventSink {
  readonly #queue: Queue;
  readonly #logger: Logger;
  readonly #urls: readonly string[];
  readonly #addTimeoutMs: number;
  readonly #maxPendingAdds: number;
  readonly #pending = new Set<Promise<void>>();
  readonly #lastWarnMs = new Map<string, number>();
  #dropped = 0;
  #closed = false;

  constructor(options: EventQueueOptions) {
    this.#logger = options.logger;
    this.#urls = [...options.urls];
    this.#addTimeoutMs = options.addTimeoutMs ?? 2000;
    this.#maxPendingAdds = options.maxPendingAdds ?? 1000;
    this.#queue = new Queue(EVENT_QUEUE_NAME, {
      connection: options.connection,
      prefix: options.prefix,
      defaultJobOptions: {
        attempts: options.attempts,
        backoff: { type: 'exponential', delay: options.backoffMs },
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 10_000 },
      },
    });
    this.#queue.on('error', (err: Error) => this.#warn('queue-error', { err: err.message }, 'event queue error'));
  }

  /** Queues `event` for every receiver; returns at once, never throws (see the class comment). */
  emit(event: GatewayEvent): void {
    try {
      if (this.#closed || this.#urls.length === 0) return;
      if (this.#pending.size >= this.#maxPendingAdds) {
        this.#dropped += 1;
        this.#warn('overflow', { dropped: this.#dropped, pending: this.#pending.size }, 'event dropped: too many enqueues waiting for Redis');
        return;
      }
      const id = randomUUID();
      const body = serializeWebhookBody(event, { id, createdAt: new Date().toISOString() });
      const jobs = this.#urls.map((url, i) => {
        const data: EventDeliveryJob = { url, id, type: event.type, body };
        return { name: event.type, data, opts: { jobId: `${id}.${i}` } };
      });
      const timer = setTimeout(() => {
        this.#warn('slow', { pending: this.#pending.size, timeoutMs: this.#addTimeoutMs }, 'event enqueue is waiting for Redis');
      }, this.#addTimeoutMs);
      timer.unref();
      const add: Promise<void> = this.#queue.addBulk(jobs).then(
        () => undefined,
        (err: unknown) => {
          this.#dropped += 1;
          if (!this.#closed) this.#warn('add-failed', { err: err instanceof Error ? err.message : String(err), dropped: this.#dropped }, 'event dropped: enqueue failed');
        },
      ).finally(() => {
        clearTimeout(timer);
        this.#pending.delete(add);
      });
      this.#pending.add(add);
    } catch (err) {
      this.#dropped += 1;
      this.#warn('emit-failed', { err: err instanceof Error ? err.message : String(err) }, 'event dropped: cannot queue it');
    }
  }

  /** Pending enqueues and dropped events so far. */
  stats(): EventQueueStats {
    return { pending: this.#pending.size, dropped: this.#dropped };
  }

  /**
   * Stops accepting events, waits up to `addTimeoutMs` for pending enqueues (so a
   * `stream.ended` emitted during shutdown is still queued), then closes the BullMQ queue
   * (not the connection, which its owner closes). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pending.size > 0) {
      await settleWithin(Promise.allSettled([...this.#pending]), this.#addTimeoutMs, () => undefined);
    }
    await this.#queue.close().catch(() => undefined);
  }

  /** A warning at most every 5 s per kind (an outage would otherwise log once per event). */
  #warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - (this.#lastWarnMs.get(kind) ?? 0) < 5000) return;
    this.#lastWarnMs.set(kind, now);
    this.#logger.warn(fields, msg);
  }
}

export interface EventDeliveryWorkerOptions {
  /**
   * A blocking connection (`connections.open('events-worker', 'blocking')`,
   * `maxRetriesPerRequest: null`, as a BullMQ Worker requires). Not closed here.
   */
  connection: Redis;
  /** Deployment key prefix (`redis.keyPrefix`), the same as the producer's. */
  prefix: string;
  logger: Logger;
  /** HMAC-SHA256 key for `Mediagate-Signature`; empty = requests are not signed. */
  secret: string;
  /** Per-attempt HTTP deadline in ms (config default 5000). */
  timeoutMs: number;
  /** Deliveries in flight at once in this worker; default 4. */
  concurrency?: number;
  /** Deliveries in flight to one receiver URL at once; default max(1, ⌊concurrency / 2⌋). */
  maxInFlightPerReceiver?: number;
  /** Consecutive retryable failures of one receiver that open its circuit; default 3. */
  circuitFailureThreshold?: number;
  /** How long an open circuit fails that receiver's attempts without sending, in ms; default 10 000. */
  circuitOpenMs?: number;
}

/**
 * Consumer side: a BullMQ worker that POSTs each job to its receiver (`deliverWebhook`).
 * A 2xx completes the job. Retryable failures (408/429/5xx, connection errors, timeouts)
 * are rethrown so BullMQ retries with backoff; non-retryable ones (other 4xx, redirects)
 * become `UnrecoverableError` and fail at once. A `DeliveryGate` keeps one slow or dead
 * receiver from taking every slot: excess jobs for a busy receiver are put back without
 * spending an attempt, and a receiver that keeps failing has its attempts failed fast for
 * a while (src/events/delivery-gate.ts).
 */
export class EventDeliveryWorker {
  readonly #worker: Worker;
  readonly #logger: Logger;
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #gate: DeliveryGate;
  #closed = false;

  constructor(options: EventDeliveryWorkerOptions) {
    this.#logger = options.logger;
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs;
    const concurrency = options.concurrency ?? 4;
    this.#gate = new DeliveryGate({
      maxInFlight: options.maxInFlightPerReceiver ?? Math.max(1, Math.floor(concurrency / 2)),
      failureThreshold: options.circuitFailureThreshold ?? 3,
      openMs: options.circuitOpenMs ?? 10_000,
      timeoutMs: options.timeoutMs,
    });
    this.#worker = new Worker(EVENT_QUEUE_NAME, async (job: Job, token?: string, signal?: AbortSignal) => this.#run(job, token, signal), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency,
      autorun: true,
    });
    this.#worker.on('error', (err: Error) => options.logger.warn({ err: err.message }, 'event delivery worker error'));
  }

  async #run(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<WebhookDelivered> {
    const data = job.data as Partial<EventDeliveryJob>;
    if (typeof data.url !== 'string' || typeof data.body !== 'string' || typeof data.id !== 'string' || typeof data.type !== 'string') {
      throw new UnrecoverableError('malformed event delivery job');
    }
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const log = this.#logger.child({ delivery: data.id, type: data.type, url: redactWebhookUrl(data.url), attempt });
    const decision = this.#gate.admit(data.url);
    if (decision.action === 'defer' && token !== undefined) {
      await job.moveToDelayed(Date.now() + decision.delayMs, token);
      throw new DelayedError();
    }
    let failure: WebhookDeliveryError;
    if (decision.action === 'send') {
      try {
        const headers = webhookHeaders({ id: data.id, type: data.type, body: data.body, secret: this.#secret, nowS: Math.floor(Date.now() / 1000) });
        const delivered = await deliverWebhook(data.url, { body: data.body, headers }, { timeoutMs: this.#timeoutMs, ...(signal ? { signal } : {}) });
        decision.release('delivered');
        log.debug({ status: delivered.status, elapsedMs: delivered.elapsedMs }, 'webhook delivered');
        return delivered;
      } catch (err) {
        failure = err instanceof WebhookDeliveryError ? err : new WebhookDeliveryError('connection', err instanceof Error ? err.message : String(err), { retryable: true, cause: err });
        if (decision.release(failure.retryable ? 'retryable' : 'permanent')) {
          log.warn({ reason: failure.message }, 'webhook receiver keeps failing; failing its attempts fast for a while');
        }
      }
    } else if (decision.action === 'fail-fast') {
      failure = new WebhookDeliveryError('circuit-open', `webhook receiver keeps failing; not sent (circuit open for another ${decision.openForMs} ms)`, { retryable: true });
    } else {
      // A deferral needs the job's lock token; without one, retry with backoff instead.
      failure = new WebhookDeliveryError('circuit-open', 'webhook receiver busy; not sent', { retryable: true });
    }
    if (!failure.retryable) {
      log.warn({ reason: failure.message, status: failure.status }, 'webhook rejected by receiver; not retried');
      throw new UnrecoverableError(failure.message);
    }
    if (attempt >= maxAttempts) {
      log.warn({ reason: failure.message, attempts: maxAttempts }, 'webhook delivery failed for good');
    } else {
      log.debug({ reason: failure.message }, 'webhook delivery failed; will retry');
    }
    throw failure;
  }

  /** Waits until the worker is connected and taking jobs. */
  async waitUntilReady(): Promise<void> {
    await this.#worker.waitUntilReady();
  }

  /**
   * Stops taking jobs and waits for attempts in flight to end (each within `timeoutMs`).
   * Idempotent. Jobs cut off by a kill are redelivered by stalled-job detection. Closes the
   * BullMQ worker (and the blocking connection BullMQ duplicated for it), not the connection
   * it was handed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.close().catch(() => undefined);
  }
}
