/**
 * The transcode queue on BullMQ: one job per source segment, job ID
 * `<manifestID>.<session>.<seq>` so a duplicate enqueue of the same segment is a no-op.
 *
 * Delivery is at least once (a Redis restart or a dead worker re-runs a job), so the
 * processor must be idempotent: deterministic output keys and an index that ignores
 * repeats (PACKAGES.md, BullMQ).
 */
import { Queue, QueueEvents, Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from '../log/logger.ts';
import type { TranscodeJob, TranscodeResult } from '../domain/segment.ts';
import { GatewayError, isGatewayError, type ErrorCode } from '../errors/gateway-error.ts';
import { createRedis, type Redis } from './redis.ts';

export const TRANSCODE_QUEUE_NAME = 'transcode';

/** A job as it travels: the domain job plus the publish session it belongs to. */
export interface QueuedTranscodeJob extends TranscodeJob {
  /** Publish session ID; results for an older session of the same manifest ID are ignored. */
  readonly session: string;
  /** When the source segment was complete and queued (epoch ms); latency is measured from here. */
  readonly enqueuedAtMs: number;
  /** Account charged for the transcode (absent on jobs queued before metering existed). */
  readonly accountID?: string;
}

export interface TranscodeQueueOptions {
  redisUrl: string;
  /** BullMQ key prefix (shared by every gateway and transcoder of one deployment). */
  prefix: string;
  logger: Logger;
  /** Tries per job before it is failed for good; default 3. */
  attempts: number;
  /** First retry delay in ms, doubled on each retry. */
  backoffMs: number;
  /** How long `enqueue` waits for Redis before failing with QUEUE_UNAVAILABLE, in ms; default 5000. */
  enqueueTimeoutMs?: number;
}

/** Producer side: what ingest uses to hand a source segment to the transcoders. */
export class TranscodeQueue {
  readonly #queue: Queue;
  readonly #connection: Redis;
  readonly #options: TranscodeQueueOptions;
  #events: QueueEvents | undefined;
  #eventsConnection: Redis | undefined;
  #closed = false;

  constructor(options: TranscodeQueueOptions) {
    this.#options = options;
    this.#connection = createRedis({ url: options.redisUrl, logger: options.logger, name: 'mediagate:queue', maxRetriesPerRequest: null });
    this.#queue = new Queue(TRANSCODE_QUEUE_NAME, {
      connection: this.#connection,
      prefix: options.prefix,
      defaultJobOptions: {
        attempts: options.attempts,
        backoff: { type: 'exponential', delay: options.backoffMs },
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 24 * 3600, count: 10_000 },
      },
    });
    this.#queue.on('error', (err: Error) => options.logger.warn({ err: err.message }, 'transcode queue error'));
  }

  /**
   * Adds one job. A job with the same identity already queued or done is not added again.
   * @throws GatewayError QUEUE_UNAVAILABLE when Redis does not answer within the timeout
   *   (BullMQ's `add` neither resolves nor rejects while Redis is down).
   */
  async enqueue(job: QueuedTranscodeJob): Promise<void> {
    const timeoutMs = this.#options.enqueueTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#queue.add('segment', job, { jobId: transcodeJobId(job) }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new GatewayError('QUEUE_UNAVAILABLE', `transcode queue did not accept the job within ${timeoutMs} ms (is Redis up?)`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Adds one job (or joins the identical one already queued or done) and waits for its
   * result, as an HTTP push reply needs.
   * @throws GatewayError QUEUE_UNAVAILABLE when no transcoder is connected or nothing
   *   finished within `timeoutMs` (HTTP 503); TRANSCODE_FAILED / UNDECODABLE_MEDIA when the
   *   job failed for good (HTTP 422).
   */
  async enqueueAndWait(job: QueuedTranscodeJob, timeoutMs: number): Promise<TranscodeResult> {
    if ((await this.transcoderCount()) === 0) {
      throw new GatewayError('QUEUE_UNAVAILABLE', 'no transcoder is connected to the queue; start one (make run-transcoder) or enable the embedded transcoder');
    }
    this.#events ??= this.#createEvents();
    await this.#events.waitUntilReady();
    await this.enqueue(job);
    const added = await this.#queue.getJob(transcodeJobId(job));
    if (!added) throw new GatewayError('QUEUE_UNAVAILABLE', 'transcode job vanished from the queue');
    try {
      return (await added.waitUntilFinished(this.#events, timeoutMs)) as TranscodeResult;
    } catch (err) {
      const failure = decodeFailure((err as Error).message);
      if (!failure) {
        throw new GatewayError('QUEUE_UNAVAILABLE', `renditions not ready within ${timeoutMs} ms; transcoders are saturated`, { cause: err });
      }
      throw new GatewayError(failure.code === 'UNDECODABLE_MEDIA' ? 'UNDECODABLE_MEDIA' : 'TRANSCODE_FAILED', failure.reason, { retryable: false });
    }
  }

  /** Transcoder workers currently connected to the queue. */
  async transcoderCount(): Promise<number> {
    return this.#queue.getWorkersCount();
  }

  #createEvents(): QueueEvents {
    // BullMQ does not close a connection it was handed: keep it to disconnect in close().
    this.#eventsConnection = createRedis({ url: this.#options.redisUrl, logger: this.#options.logger, name: 'mediagate:queue-events', maxRetriesPerRequest: null });
    const events = new QueueEvents(TRANSCODE_QUEUE_NAME, { connection: this.#eventsConnection, prefix: this.#options.prefix });
    events.on('error', (err: Error) => this.#options.logger.warn({ err: err.message }, 'transcode queue events error'));
    return events;
  }

  /** Job counts by state, for health and the control API. */
  async counts(): Promise<Record<string, number>> {
    return this.#queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#events?.close().catch(() => undefined);
    this.#eventsConnection?.disconnect();
    await this.#queue.close().catch(() => undefined);
    this.#connection.disconnect();
  }
}

/** A job's final failure reason carries its error code: `[CODE] reason`. */
function encodeFailure(code: ErrorCode, reason: string): string {
  return `[${code}] ${reason}`;
}

function decodeFailure(message: string): { code: string; reason: string } | undefined {
  const m = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(message);
  return m ? { code: m[1]!, reason: m[2]! } : undefined;
}

/** `<manifestID>.<session>.<seq>`: BullMQ forbids `:` in custom IDs and pure integers. */
export function transcodeJobId(job: Pick<QueuedTranscodeJob, 'manifestID' | 'session' | 'seq'>): string {
  return `${job.manifestID}.${job.session}.${job.seq}`;
}

export interface TranscodeWorkerHooks {
  /** Does the work. Throw a non-retryable GatewayError for input that can never succeed. */
  process(job: QueuedTranscodeJob, attempt: number): Promise<TranscodeResult>;
  /** Called once per job after success (at least once under redelivery). */
  onCompleted(job: QueuedTranscodeJob, result: TranscodeResult): Promise<void>;
  /** Called when the job has failed for good (no more attempts, or a non-retryable error). */
  onFailedForGood(job: QueuedTranscodeJob, reason: string, code: ErrorCode): Promise<void>;
}

export interface TranscodeWorkerOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  /** Jobs run at once by this worker; default 1. */
  concurrency: number;
  hooks: TranscodeWorkerHooks;
}

/**
 * Consumer side: a BullMQ worker that runs the transcoder on each job. Retryable failures
 * are rethrown so BullMQ retries with backoff; non-retryable ones become
 * `UnrecoverableError` so they fail at once. On the last failed attempt the segment is
 * reported failed for good so playlists can skip it with a discontinuity.
 */
export class TranscodeWorker {
  readonly #worker: Worker;
  readonly #connection: Redis;
  readonly #logger: Logger;
  #closed = false;

  constructor(options: TranscodeWorkerOptions) {
    this.#logger = options.logger;
    this.#connection = createRedis({ url: options.redisUrl, logger: options.logger, name: 'mediagate:transcoder', maxRetriesPerRequest: null });
    this.#worker = new Worker(TRANSCODE_QUEUE_NAME, async (job: Job) => this.#run(job, options.hooks), {
      connection: this.#connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      autorun: true,
    });
    this.#worker.on('error', (err: Error) => options.logger.warn({ err: err.message }, 'transcode worker error'));
  }

  async #run(job: Job, hooks: TranscodeWorkerHooks): Promise<TranscodeResult> {
    const data = job.data as QueuedTranscodeJob;
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const log = this.#logger.child({ manifestID: data.manifestID, seq: data.seq, attempt });
    try {
      const result = await hooks.process(data, attempt);
      await hooks.onCompleted(data, result);
      return result;
    } catch (err) {
      const retryable = isGatewayError(err) ? err.retryable : true;
      const code: ErrorCode = isGatewayError(err) ? err.code : 'TRANSCODE_FAILED';
      const reason = err instanceof Error ? err.message : String(err);
      if (!retryable || attempt >= maxAttempts) {
        log.warn({ reason, retryable }, 'segment failed for good');
        await hooks.onFailedForGood(data, reason, code).catch((e: Error) => log.error({ err: e.message }, 'cannot record failed segment'));
        throw new UnrecoverableError(encodeFailure(code, reason));
      }
      log.warn({ reason }, 'segment transcode failed; will retry');
      throw err;
    }
  }

  /** Waits until the worker is connected and taking jobs. */
  async waitUntilReady(): Promise<void> {
    await this.#worker.waitUntilReady();
  }

  /**
   * Stops taking jobs and waits for in-flight ones to finish (graceful), for at most
   * `waitMs` when given (0: do not wait). Jobs still running then, or when the process is
   * killed, keep their BullMQ lock until it expires, and stalled-job detection redelivers
   * them to another transcoder. Idempotent.
   */
  async close(options: { waitMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const waitMs = options.waitMs;
    const closed = this.#worker.close(waitMs !== undefined && waitMs <= 0).then(() => true, () => true);
    let timer: NodeJS.Timeout | undefined;
    const done = waitMs === undefined || waitMs <= 0 ? await closed
      : await Promise.race([closed, new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), waitMs); })]);
    clearTimeout(timer);
    if (!done) this.#logger.warn({ waitMs }, 'transcodes still running at shutdown are left to other transcoders (redelivered once their lock expires)');
    this.#connection.disconnect();
  }
}
