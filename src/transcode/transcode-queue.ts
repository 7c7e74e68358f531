/**
 * The transcode queue on BullMQ: one job per source segment, job ID
 * `<manifestID>.<session>.<seq>` so a duplicate enqueue of the same segment is a no-op.
 *
 * Delivery is at least once (a Redis restart or a dead worker re-runs a job), so the
 * processor must be idempotent: deterministic output keys and an index that ignores
 * repeats (BullMQ moves a job whose lock expired back to wait and runs it again).
 */
import { Queue, QueueEvents, Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from '../log/logger.ts';
import type { TranscodeJob, TranscodeResult } from '../domain/segment.ts';
import { GatewayError, isGatewayError, type ErrorCode } from '../errors/gateway-error.ts';
import type { Redis } from '../redis/connections.ts';
import { settleWithin } from '../domain/time-limit.ts';

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
  /**
   * The queue's connection, opened by the composition root with `maxRetriesPerRequest: null`
   * (a `blocking` connection of redis/connections.ts) and closed by it after `close()`.
   */
  connection: Redis;
  /**
   * Opens the connection of the queue's event stream (BullMQ QueueEvents: a blocking XREAD, so
   * a connection of its own, `blocking` too), called once on the first `enqueueAndWait`: a
   * gateway that never waits for a job (RTMP only) opens none. Closed by its opener, like the
   * queue's (BullMQ 6 runs QueueEvents on a duplicate of it, which BullMQ closes itself).
   */
  openEventsConnection: () => Redis;
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
  readonly #options: TranscodeQueueOptions;
  #events: QueueEvents | undefined;
  #closed = false;

  constructor(options: TranscodeQueueOptions) {
    this.#options = options;
    this.#queue = new Queue(TRANSCODE_QUEUE_NAME, {
      connection: options.connection,
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
    await this.#withinTimeout(this.#queue.add('segment', job, { jobId: transcodeJobId(job) }), 'transcode queue did not accept the job');
  }

  /**
   * `work`, or QUEUE_UNAVAILABLE after `enqueueTimeoutMs`: BullMQ's calls on a connection with
   * `maxRetriesPerRequest: null` wait for Redis for ever. (The call itself stays queued in
   * ioredis and runs once Redis is back; every call made through here is idempotent.)
   */
  async #withinTimeout<T>(work: Promise<T>, what: string): Promise<T> {
    const timeoutMs = this.#options.enqueueTimeoutMs ?? 5000;
    return settleWithin(work, timeoutMs, () => {
      throw new GatewayError('QUEUE_UNAVAILABLE', `${what} within ${timeoutMs} ms (is Redis up?)`);
    });
  }

  /**
   * Adds one job (or joins the identical one already queued or done) and waits for its
   * result, as an HTTP push reply needs.
   * @throws GatewayError QUEUE_UNAVAILABLE when no transcoder is connected or nothing
   *   finished within `timeoutMs` (HTTP 503); TRANSCODE_FAILED / UNDECODABLE_MEDIA when the
   *   job failed for good (HTTP 422).
   */
  async enqueueAndWait(job: QueuedTranscodeJob, timeoutMs: number): Promise<TranscodeResult> {
    if ((await this.#withinTimeout(this.transcoderCount(), 'cannot count transcoders')) === 0) {
      throw new GatewayError('QUEUE_UNAVAILABLE', 'no transcoder is connected to the queue; start one (make run-transcoder) or enable the embedded transcoder');
    }
    this.#events ??= this.#createEvents();
    await this.#withinTimeout(this.#events.waitUntilReady(), 'transcode queue events not ready');
    await this.enqueue(job);
    const added = await this.#withinTimeout(this.#queue.getJob(transcodeJobId(job)), 'cannot read the queued job');
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
    const events = new QueueEvents(TRANSCODE_QUEUE_NAME, { connection: this.#options.openEventsConnection(), prefix: this.#options.prefix });
    events.on('error', (err: Error) => this.#options.logger.warn({ err: err.message }, 'transcode queue events error'));
    return events;
  }

  /**
   * The queue's backlog for the autoscaling gauges (metrics/backlog-metrics.ts): jobs not yet
   * taken (wait + prioritized + delayed), jobs running, and when the oldest job ready to run
   * was queued (its BullMQ `timestamp`, epoch ms). Two Redis round trips (BullMQ's
   * `getJobCounts` and `getJobs(['wait'], 0, 0, asc)`, each one script), whatever the depth.
   * @throws Error when Redis does not answer (the caller bounds the wait)
   */
  async backlog(): Promise<{ waitingJobs: number; activeJobs: number; oldestWaitingQueuedAtMs?: number }> {
    const [counts, oldest] = await Promise.all([
      this.#queue.getJobCounts('wait', 'prioritized', 'delayed', 'active'),
      this.#queue.getJobs(['wait'], 0, 0, true),
    ]);
    const queuedAtMs = oldest[0]?.timestamp;
    return {
      waitingJobs: (counts['wait'] ?? 0) + (counts['prioritized'] ?? 0) + (counts['delayed'] ?? 0),
      activeJobs: counts['active'] ?? 0,
      ...(queuedAtMs !== undefined ? { oldestWaitingQueuedAtMs: queuedAtMs } : {}),
    };
  }

  /** Job counts by state, for health and the control API. */
  async counts(): Promise<Record<string, number>> {
    return this.#queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
  }

  /** Closes the queue and its event stream (not the queue's connection: its opener's). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#events?.close().catch(() => undefined);
    await this.#queue.close().catch(() => undefined);
  }
}

/** A job's final failure reason carries its error code: `[CODE] reason`. */
function encodeFailure(code: ErrorCode, reason: string): string {
  return `[${code}] ${reason}`;
}

function decodeFailure(message: string): { code: string; reason: string } | undefined {
  if (message === BULLMQ_STALLED_LIMIT_REASON) return { code: 'TRANSCODE_FAILED', reason: TRANSCODER_LOST_REASON };
  const m = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(message);
  return m ? { code: m[1]!, reason: m[2]! } : undefined;
}

/**
 * How often a job may lose its transcoder (crash, kill, or a lock not renewed in time) and
 * still be retried: the first loss re-queues it, the second fails it for good. This is
 * BullMQ's own default `maxStalledCount` (1); a segment that took two transcoders down
 * with it is more likely poison than bad luck.
 */
export const MAX_TRANSCODER_LOSSES = 1;

/**
 * The failed reason BullMQ 6 gives a job whose stalled count went above `maxStalledCount`
 * (`moveStalledJobsToWait` stores it as a deferred failure; the next worker to take the
 * job fails it with this message without running the processor).
 */
const BULLMQ_STALLED_LIMIT_REASON = 'job stalled more than allowable limit';
const TRANSCODER_LOST_REASON = `the transcoder working on this segment stopped (crashed or lost its lock) more than ${MAX_TRANSCODER_LOSSES} time(s)`;

/**
 * Lock and stalled-check timing of transcode workers (BullMQ Worker options
 * `lockDuration`, `lockRenewTime`, `stalledInterval`), all in ms.
 */
export interface TranscodeLockTiming {
  /** How long a job's lock lives without renewal; a dead transcoder's job is free after it. */
  readonly lockDurationMs: number;
  /** Renewal period of the locks of running jobs. */
  readonly lockRenewTimeMs: number;
  /** Period of the stalled-job check that re-queues jobs whose lock expired. */
  readonly stalledIntervalMs: number;
}

/** Lower bound of the lock duration, in ms: room for Redis round trips and GC pauses. */
const MIN_LOCK_DURATION_MS = 2000;

/**
 * Lock timing derived from the source segment target, so a killed transcoder's job is
 * taken over within about two segment durations.
 *
 * - `lockDurationMs` = max(1.5 × segmentTargetMs, 2000): 3000 for the default 2 s segments.
 * - `lockRenewTimeMs` = lockDuration / 3 (1000): BullMQ's lock manager ticks every
 *   renewTime / 2 and extends a lock at most once per renewTime, so a lock is renewed about
 *   every second and stays valid two more seconds; a live transcoder loses it only if no
 *   renewal got through Redis for a whole lockDuration. The transcoder's event loop stays
 *   free for the renewals: ffmpeg runs in child processes, and the in-process work of a job
 *   (MPEG-TS measurement, object store copies) yields within milliseconds. A Redis round
 *   trip above ~2 s (an outage) does lose locks; the job then runs again elsewhere, which
 *   the processors tolerate (idempotent outputs, charge keyed by segment).
 * - `stalledIntervalMs` = lockDuration / 2 (1500). BullMQ's stalled check marks the active
 *   jobs on one run and re-queues, on a later run, the marked ones whose lock has expired
 *   (`moveStalledJobsToWait`; a renewal unmarks a job). As the lock outlives one interval,
 *   a dead transcoder's job is re-queued at the first check after its lock expired:
 *   at most lockDuration + stalledInterval = 2.25 × segmentTargetMs after the kill (4.5 s
 *   for 2 s segments; 2.5 to 4.5 s in practice), and a waiting transcoder takes it at once.
 *   Every worker runs the check; a Redis key makes one run per interval deployment-wide.
 */
export function transcodeLockTimingFor(segmentTargetMs: number): TranscodeLockTiming {
  const lockDurationMs = Math.max(MIN_LOCK_DURATION_MS, Math.round(1.5 * segmentTargetMs));
  return { lockDurationMs, lockRenewTimeMs: Math.round(lockDurationMs / 3), stalledIntervalMs: Math.round(lockDurationMs / 2) };
}

/** `<manifestID>.<session>.<seq>`: BullMQ forbids `:` in custom IDs and pure integers. */
export function transcodeJobId(job: Pick<QueuedTranscodeJob, 'manifestID' | 'session' | 'seq'>): string {
  return `${job.manifestID}.${job.session}.${job.seq}`;
}

/** Inverse of {@link transcodeJobId}; undefined for an ID of another shape. */
export function parseTranscodeJobId(id: string): { manifestID: string; session: string; seq: number } | undefined {
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.(\d+)$/.exec(id);
  return m ? { manifestID: m[1]!, session: m[2]!, seq: Number(m[3]) } : undefined;
}

/** Why a job failed for good: its own error, or losing its transcoder too often. */
export type FailedForGoodCause = 'error' | 'transcoder_lost';

export interface TranscodeWorkerHooks {
  /** Does the work. Throw a non-retryable GatewayError for input that can never succeed. */
  process(job: QueuedTranscodeJob, attempt: number): Promise<TranscodeResult>;
  /** Called once per job after success (at least once under redelivery). */
  onCompleted(job: QueuedTranscodeJob, result: TranscodeResult): Promise<void>;
  /**
   * Called once when the job has failed for good: no more attempts, a non-retryable error,
   * or (cause `transcoder_lost`) its transcoder stopped more than MAX_TRANSCODER_LOSSES
   * times. Runs while the job is still held, before waiters learn of the failure.
   */
  onFailedForGood(job: QueuedTranscodeJob, reason: string, code: ErrorCode, cause: FailedForGoodCause): Promise<void>;
  /**
   * Called in the process whose stalled check re-queued a job because its transcoder
   * stopped renewing the lock (at most once per loss, deployment-wide).
   */
  onTranscoderLost?(job: { manifestID: string; seq: number }): void;
}

export interface TranscodeWorkerOptions {
  /**
   * The worker's connection, opened by the composition root with `maxRetriesPerRequest: null`
   * (BullMQ requires it on a Worker's connection) and closed by it after `close()`. BullMQ 6
   * runs the worker's blocking commands on duplicates of it, which BullMQ closes itself.
   */
  connection: Redis;
  prefix: string;
  logger: Logger;
  /** Jobs run at once by this worker; default 1. */
  concurrency: number;
  /** Lock and stalled-check timing; default `transcodeLockTimingFor(2000)`. */
  lockTiming?: TranscodeLockTiming;
  hooks: TranscodeWorkerHooks;
}

/**
 * Consumer side: a BullMQ worker that runs the transcoder on each job. Retryable failures
 * are rethrown so BullMQ retries with backoff; non-retryable ones become
 * `UnrecoverableError` so they fail at once. On the last failed attempt the segment is
 * reported failed for good so playlists can skip it with a discontinuity.
 *
 * A transcoder that dies mid-job stops renewing the job's lock; the stalled check of any
 * live worker re-queues the job within lockDuration + stalledInterval (see
 * {@link transcodeLockTimingFor}), logs it and calls `onTranscoderLost`. A job re-queued
 * more than MAX_TRANSCODER_LOSSES times is failed for good by the worker that takes it next,
 * through the same `onFailedForGood` path (cause `transcoder_lost`, code TRANSCODE_FAILED).
 * BullMQ's own stalled limit is set one higher as a backstop: should that worker die too,
 * BullMQ fails the job itself and the next worker still runs `onFailedForGood` from its
 * `failed` event.
 */
export class TranscodeWorker {
  readonly #worker: Worker;
  readonly #logger: Logger;
  #closed = false;

  constructor(options: TranscodeWorkerOptions) {
    this.#logger = options.logger;
    const timing = options.lockTiming ?? transcodeLockTimingFor(2000);
    this.#worker = new Worker(TRANSCODE_QUEUE_NAME, async (job: Job) => this.#run(job, options.hooks), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      autorun: true,
      lockDuration: timing.lockDurationMs,
      lockRenewTime: timing.lockRenewTimeMs,
      stalledInterval: timing.stalledIntervalMs,
      maxStalledCount: MAX_TRANSCODER_LOSSES + 1,
    });
    this.#worker.on('error', (err: Error) => options.logger.warn({ err: err.message }, 'transcode worker error'));
    // Emitted only by the worker whose stalled check moved the job (one Lua script run per interval).
    this.#worker.on('stalled', (jobId: string) => {
      const ref = parseTranscodeJobId(jobId);
      options.logger.warn({ manifestID: ref?.manifestID, seq: ref?.seq, jobId: ref ? undefined : jobId }, 'transcoder stopped mid-job; segment re-queued for another transcoder');
      if (ref) options.hooks.onTranscoderLost?.(ref);
    });
    // Backstop: BullMQ failed a job over its own stalled limit without running #run.
    this.#worker.on('failed', (job: Job | undefined, err: Error) => {
      if (!job || err.message !== BULLMQ_STALLED_LIMIT_REASON) return;
      const data = job.data as QueuedTranscodeJob;
      const log = this.#logger.child({ manifestID: data.manifestID, seq: data.seq });
      log.warn({ reason: TRANSCODER_LOST_REASON, stalls: job.stalledCounter }, 'segment failed for good');
      options.hooks.onFailedForGood(data, TRANSCODER_LOST_REASON, 'TRANSCODE_FAILED', 'transcoder_lost')
        .catch((e: Error) => log.error({ err: e.message }, 'cannot record failed segment'));
    });
  }

  async #run(job: Job, hooks: TranscodeWorkerHooks): Promise<TranscodeResult> {
    const data = job.data as QueuedTranscodeJob;
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const log = this.#logger.child({ manifestID: data.manifestID, seq: data.seq, attempt });
    // stalledCounter counts every time this job's transcoder was lost (it is never reset).
    if (job.stalledCounter > MAX_TRANSCODER_LOSSES) {
      log.warn({ reason: TRANSCODER_LOST_REASON, stalls: job.stalledCounter }, 'segment failed for good');
      await hooks.onFailedForGood(data, TRANSCODER_LOST_REASON, 'TRANSCODE_FAILED', 'transcoder_lost')
        .catch((e: Error) => log.error({ err: e.message }, 'cannot record failed segment'));
      throw new UnrecoverableError(encodeFailure('TRANSCODE_FAILED', TRANSCODER_LOST_REASON));
    }
    log.debug({ stalls: job.stalledCounter }, 'segment job started');
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
        await hooks.onFailedForGood(data, reason, code, 'error').catch((e: Error) => log.error({ err: e.message }, 'cannot record failed segment'));
        throw new UnrecoverableError(encodeFailure(code, reason));
      }
      log.warn({ reason }, 'segment transcode failed; will retry');
      throw err;
    }
  }

  /**
   * Changes how many jobs this worker runs at once from now on (BullMQ `Worker.concurrency`):
   * live sessions take slots from the per-segment jobs (live-session-runner.ts).
   * @throws RangeError when `concurrency` is not a positive integer.
   */
  setConcurrency(concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`worker concurrency must be a positive integer, got ${concurrency}`);
    this.#worker.concurrency = concurrency;
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
    const done = waitMs === undefined || waitMs <= 0 ? await closed : await settleWithin(closed, waitMs, () => false);
    if (!done) this.#logger.warn({ waitMs }, 'transcodes still running at shutdown are left to other transcoders (redelivered once their lock expires)');
  }
}
