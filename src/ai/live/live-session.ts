/**
 * One live video-to-video session (docs/wire-contract.md, "Live video-to-video";
 * docs/architecture.md, "Live video-to-video"): the input stream's listed source segments
 * go to a worker over trickle, the worker's output segments come back and are published as
 * the `<stream>-out` stream; control messages (the params) and the worker's events travel on
 * their own channels. Watchdogs (live-watchdog.ts) leave a failing worker and the session
 * swaps to another within the swap budget. Billing is by interval of wall time: a hold at
 * start, a charge every `chargeIntervalMs` from the moment the session runs, the last
 * partial interval charged at the stop (unless the balance stopped it), the hold released.
 *
 * A session is one object per stream, made and ended by live-sessions.ts. All times are ms.
 */
import type { Logger } from '../../log/logger.ts';
import { GatewayError } from '../../errors/gateway-error.ts';
import { measureTs } from '../../media/ts-measure.ts';
import type {
  LiveEndKind, LiveEvents, LiveIntervalBilling, LiveOutputStream, LiveRecorder, LiveSwapKind, LiveTrickle, LiveTricklePublisher, LiveTrickleSubscriber,
} from './live-ports.ts';
import { askSwap, checkInflight, checkWorker, newSwapBudget, type SwapBudgetState, type WatchdogLimits, type WatchdogVerdict } from './live-watchdog.ts';

/** A worker started for a session: its channel URLs (absolute) and the slot it holds. */
export interface StartedWorker {
  readonly workerID: string;
  readonly publishUrl: string;
  readonly subscribeUrl: string;
  readonly controlUrl: string;
  readonly eventsUrl: string;
  /** Gives the worker's slot back. Idempotent. */
  readonly release: () => void;
}

/** The session's timings (config `ai.live.*`). */
export interface LiveSessionTimings extends WatchdogLimits {
  /** `{"keep":"alive"}` on the control channel this often. Livepeer: 10000. */
  readonly keepaliveIntervalMs: number;
  /** One interval of wall time charged. Livepeer: 5000. */
  readonly chargeIntervalMs: number;
  /** Swaps counted within this window of the previous one. Livepeer: 180000. */
  readonly swapWindowMs: number;
  /** Swaps allowed within the window. Livepeer: 2. */
  readonly maxSwaps: number;
}

export interface LiveSessionOptions {
  readonly requestID: string;
  /** The input stream's manifest ID. */
  readonly stream: string;
  readonly outputManifestID: string;
  readonly modelID: string;
  /** The paying account; undefined = not metered. */
  readonly accountID: string | undefined;
  /** The params of the start request (the start body of every worker). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Selects a worker (not one of `exclude`) and starts it. @throws GatewayError NO_WORKER / WORKER_FAILED / INVALID_REQUEST */
  startWorker(exclude: ReadonlySet<string>, params: Readonly<Record<string, unknown>>): Promise<StartedWorker>;
  /** Keeps a worker out of selection (after it produced no output while input flowed). */
  suspendWorker(workerID: string): void;
  readSegment(key: string): Promise<Buffer | undefined>;
  readonly trickle: LiveTrickle;
  /** Opens the `-out` stream (once, at the first output segment). */
  openOutput(): LiveOutputStream;
  readonly billing?: LiveIntervalBilling;
  readonly events?: LiveEvents;
  readonly recorder?: LiveRecorder;
  readonly timings: LiveSessionTimings;
  readonly logger: Logger;
  /** Told once when the session has ended. */
  onEnded?(session: LiveSession): void;
  now?: () => number;
}

export type LiveSessionState = 'starting' | 'running' | 'swapping' | 'stopped';

/** Why a worker was left. */
interface Leave { readonly reason: string; readonly suspend: boolean; readonly kind: LiveSwapKind }

/** The session's current worker and its channels. */
class WorkerAttempt {
  readonly worker: StartedWorker;
  readonly startedAtMs: number;
  readonly publisher: LiveTricklePublisher;
  readonly control: LiveTricklePublisher;
  readonly subscribers: LiveTrickleSubscriber[] = [];
  /**
   * Input segments sent and not yet answered: the input frame count at the segment's end
   * (counted from this worker's first) and when it was sent.
   */
  readonly sent: { framesEnd: number; sentAtMs: number }[] = [];
  inputFrames = 0;
  outputFrames = 0;
  inputSeq = 0;
  inFlight = 0;
  /** Input segments being sent. */
  readonly writes = new Set<Promise<void>>();
  lastEventAtMs: number | undefined;
  lastOutputAtMs: number | undefined;
  #leave!: (leave: Leave) => void;
  readonly left: Promise<Leave>;
  hasLeft = false;
  /** Resolves when the output subscription has ended (the worker closed it, or it failed). */
  readonly outputDone: Promise<void>;
  outputEnded!: () => void;

  constructor(worker: StartedWorker, trickle: LiveTrickle, nowMs: number) {
    this.worker = worker;
    this.startedAtMs = nowMs;
    this.publisher = trickle.publisher(worker.publishUrl, 'video/MP2T');
    this.control = trickle.publisher(worker.controlUrl, 'application/json');
    this.left = new Promise<Leave>((resolve) => { this.#leave = resolve; });
    this.outputDone = new Promise<void>((resolve) => { this.outputEnded = resolve; });
  }

  leave(leave: Leave): void {
    if (this.hasLeft) return;
    this.hasLeft = true;
    this.#leave(leave);
  }

  /**
   * Closes every channel and gives the slot back. The channels' DELETEs are waited for at most
   * {@link CHANNEL_CLOSE_WAIT_MS}: an unreachable worker must not hold up the swap.
   */
  async close(): Promise<void> {
    for (const s of this.subscribers) s.close();
    this.worker.release();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([this.publisher.close(), this.control.close()]),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, CHANNEL_CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(timer);
  }
}

/**
 * After its input ended, how long a session waits for the worker to send the output of what
 * it was given and close its output channel, ms.
 */
export const OUTPUT_DRAIN_MS = 10_000;

/** Longest wait for a left worker's channels to be closed before the swap goes on, ms. */
const CHANNEL_CLOSE_WAIT_MS = 1000;

/** Keeps `sent` from growing when a worker answers with fewer frames than it was sent. */
const SENT_KEPT = 64;
/** fps figures are over this window of wall time. */
const FPS_WINDOW_MS = 10_000;

/** Frames over a sliding window of wall time. */
class FrameRate {
  readonly #samples: { atMs: number; frames: number }[] = [];
  add(atMs: number, frames: number): void {
    this.#samples.push({ atMs, frames });
    this.#trim(atMs);
  }
  fps(nowMs: number): number {
    this.#trim(nowMs);
    if (this.#samples.length === 0) return 0;
    const frames = this.#samples.reduce((sum, s) => sum + s.frames, 0);
    return Math.round((frames / (FPS_WINDOW_MS / 1000)) * 100) / 100;
  }
  #trim(nowMs: number): void {
    while (this.#samples.length > 0 && nowMs - this.#samples[0]!.atMs > FPS_WINDOW_MS) this.#samples.shift();
  }
}

function framesOf(segment: Buffer): number {
  try {
    return measureTs(segment).frames;
  } catch {
    return 0;
  }
}

async function readAll(body: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part));
  return Buffer.concat(parts);
}

/** What `GET …/status` shows of the gateway's side (`gateway_status`). */
export interface LiveGatewayStatus {
  readonly request_id: string;
  readonly stream: string;
  readonly output_stream: string;
  readonly model_id: string;
  readonly state: LiveSessionState;
  readonly stop_reason?: string;
  readonly worker_id?: string;
  readonly started_at: number;
  /** When the stop began (ms since the epoch): the end of the billed time. */
  readonly stopped_at?: number;
  readonly swaps: number;
  readonly input: { readonly segments: number; readonly fps: number; readonly last_input_time?: number };
  readonly output: { readonly segments: number; readonly fps: number; readonly last_output_time?: number };
  /** The last input segment sent → the output segment completing its frames received, ms. */
  readonly latency_ms?: number;
  readonly charged_intervals: number;
  readonly params_updates: number;
}

export class LiveSession {
  readonly #o: LiveSessionOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly startedAtMs: number;
  #state: LiveSessionState = 'starting';
  #stopReason: string | undefined;
  #attempt: WorkerAttempt | undefined;
  /** The last params update (raw JSON), replayed to every new worker. */
  #cachedUpdate: Buffer | undefined;
  #updates = 0;
  #budget: SwapBudgetState;
  #swaps = 0;
  #lastStatus: Record<string, unknown> | undefined;
  #inputSegments = 0;
  #outputSegments = 0;
  #lastInputAtMs: number | undefined;
  #lastOutputAtMs: number | undefined;
  #latencyMs: number | undefined;
  readonly #inputRate = new FrameRate();
  readonly #outputRate = new FrameRate();
  #output: LiveOutputStream | undefined;
  #interval = 0;
  /** When metering began (the session ran with billing open), epoch ms; unset = nothing to charge. */
  #meteredSinceMs: number | undefined;
  #stoppedAtMs: number | undefined;
  /** The interval charge in flight, awaited before the last partial one. */
  #charging: Promise<void> = Promise.resolve();
  #chargeTimer: NodeJS.Timeout | undefined;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;
  /** Input segments are read in order: each waits for the previous one's read. */
  #inputChain: Promise<void> = Promise.resolve();
  #billingOpen = false;
  #ended: Promise<void> | undefined;
  #stopping = false;
  /** The input ended: no more input, no watchdog, no swap; the output of what was sent is awaited. */
  #draining = false;

  constructor(options: LiveSessionOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.startedAtMs = this.#now();
    this.#budget = newSwapBudget(this.startedAtMs);
    this.#log = options.logger.child({ requestID: options.requestID, manifestID: options.stream, modelID: options.modelID });
  }

  get requestID(): string { return this.#o.requestID; }
  get stream(): string { return this.#o.stream; }
  get state(): LiveSessionState { return this.#state; }
  get stopReason(): string | undefined { return this.#stopReason; }
  get ended(): boolean { return this.#state === 'stopped'; }

  /**
   * Holds the first interval's credits and starts the first worker; resolves once it is set up.
   * On failure the session is stopped with the reason.
   * @throws GatewayError INSUFFICIENT_BALANCE (402) from the hold; NO_WORKER / WORKER_FAILED (503),
   *   INVALID_REQUEST (400, the worker refused the params) from the start
   */
  async start(): Promise<void> {
    const { billing } = this.#o;
    try {
      if (billing && this.#o.accountID !== undefined) {
        await billing.open({ requestID: this.#o.requestID, accountID: this.#o.accountID, pipeline: 'live-video-to-video', modelID: this.#o.modelID });
        this.#billingOpen = true;
      }
      this.#attempt = await this.#startAttempt(new Set());
    } catch (err) {
      await this.stop(`start failed: ${(err as Error).message}`, err instanceof GatewayError && err.code === 'INSUFFICIENT_BALANCE' ? 'insufficient-balance' : 'no-worker');
      throw err;
    }
    if (this.#stopping) {
      // Stopped while the worker was being started: the stop's close may have missed it.
      this.#attempt.leave({ reason: this.#stopReason ?? 'stopped', suspend: false, kind: 'worker' });
      await this.#attempt.close().catch(() => undefined);
      return;
    }
    this.#state = 'running';
    this.#o.events?.emit({ type: 'live.started', manifestID: this.#o.stream, requestID: this.#o.requestID, modelID: this.#o.modelID, outputManifestID: this.#o.outputManifestID });
    this.#log.info({ workerID: this.#attempt.worker.workerID }, 'live session started');
    if (this.#billingOpen) {
      this.#meteredSinceMs = Date.now();
      this.#chargeTimer = setInterval(() => { this.#charging = this.#charge(); }, this.#o.timings.chargeIntervalMs);
      this.#chargeTimer.unref();
    }
    this.#keepaliveTimer = setInterval(() => { void this.#keepalive(); }, this.#o.timings.keepaliveIntervalMs);
    this.#keepaliveTimer.unref();
    const checkMs = Math.max(50, Math.min(1000, Math.floor(Math.min(this.#o.timings.eventTimeoutMs, this.#o.timings.outputTimeoutMs) / 10)));
    this.#watchdogTimer = setInterval(() => this.#watchdog(), checkMs);
    this.#watchdogTimer.unref();
    this.#ended = this.#swapLoop();
  }

  /** A source segment of the input stream is listed (in seq order): it goes to the worker. */
  inputListed(key: string): void {
    if (this.#state !== 'running' || this.#draining) return;
    const attempt = this.#attempt;
    if (!attempt || attempt.hasLeft) return;
    const slow = checkInflight(attempt.inFlight, this.#o.timings);
    if (slow.leave) {
      attempt.leave({ reason: slow.reason, suspend: false, kind: 'slow' });
      return;
    }
    attempt.inFlight += 1;
    const read = this.#o.readSegment(key);
    this.#inputChain = this.#inputChain.then(async () => {
      let bytes: Buffer | undefined;
      try {
        bytes = await read;
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'cannot read an input segment');
      }
      if (bytes === undefined || attempt.hasLeft) {
        attempt.inFlight -= 1;
        return;
      }
      const seq = attempt.inputSeq++;
      const nowMs = this.#now();
      this.#lastInputAtMs = nowMs;
      this.#inputSegments += 1;
      const frames = framesOf(bytes);
      attempt.inputFrames += frames;
      attempt.sent.push({ framesEnd: attempt.inputFrames, sentAtMs: nowMs });
      if (attempt.sent.length > SENT_KEPT) attempt.sent.shift();
      this.#inputRate.add(nowMs, frames);
      this.#o.recorder?.recordInputFrames(frames);
      // Not awaited: the next segment may start while this one is still being sent (in flight).
      const write = attempt.publisher.write(bytes).then(
        () => { attempt.inFlight -= 1; },
        (err: Error) => {
          attempt.inFlight -= 1;
          if (!attempt.hasLeft) this.#log.warn({ workerID: attempt.worker.workerID, seq, err: err.message }, 'cannot publish an input segment');
        },
      ).finally(() => attempt.writes.delete(write));
      attempt.writes.add(write);
    });
  }

  /**
   * A params update (raw JSON): sent on the control channel now, and cached to be sent to
   * every worker this session swaps to.
   */
  async update(params: Buffer): Promise<void> {
    this.#cachedUpdate = params;
    this.#updates += 1;
    const attempt = this.#attempt;
    // Between workers it is only cached: the next worker gets it when it starts.
    if (!attempt || attempt.hasLeft || this.#state === 'stopped') return;
    // A failed write is not the caller's problem: the update is cached and a worker that
    // cannot take it is soon left by the watchdogs, the next one getting it at its start.
    await attempt.control.write(params).catch((err: Error) => {
      this.#log.warn({ workerID: attempt.worker.workerID, err: err.message }, 'cannot send a params update; it is cached for the next worker');
    });
  }

  /** The last status event of the worker (Livepeer's shape) with `gateway_status`. */
  status(): Record<string, unknown> {
    const nowMs = this.#now();
    const gateway: LiveGatewayStatus = {
      request_id: this.#o.requestID, stream: this.#o.stream, output_stream: this.#o.outputManifestID, model_id: this.#o.modelID,
      state: this.#state, ...(this.#stopReason !== undefined ? { stop_reason: this.#stopReason } : {}),
      ...(this.#attempt && this.#state !== 'stopped' ? { worker_id: this.#attempt.worker.workerID } : {}),
      started_at: this.startedAtMs, ...(this.#stoppedAtMs !== undefined ? { stopped_at: this.#stoppedAtMs } : {}), swaps: this.#swaps,
      input: { segments: this.#inputSegments, fps: this.#inputRate.fps(nowMs), ...(this.#lastInputAtMs !== undefined ? { last_input_time: this.#lastInputAtMs } : {}) },
      output: { segments: this.#outputSegments, fps: this.#outputRate.fps(nowMs), ...(this.#lastOutputAtMs !== undefined ? { last_output_time: this.#lastOutputAtMs } : {}) },
      ...(this.#latencyMs !== undefined ? { latency_ms: this.#latencyMs } : {}),
      charged_intervals: this.#interval, params_updates: this.#updates,
    };
    return { ...(this.#lastStatus ?? {}), gateway_status: gateway };
  }

  /**
   * The input stream ended: the worker's input channel is closed, its output of what it was
   * sent is taken until it closes its output channel (at most {@link OUTPUT_DRAIN_MS}), then
   * the session stops with `reason`.
   */
  async inputEnded(reason: string): Promise<void> {
    if (this.#stopping || this.#draining) return;
    this.#draining = true;
    const attempt = this.#attempt;
    if (attempt && !attempt.hasLeft && this.#state === 'running') {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, OUTPUT_DRAIN_MS); });
      const drain = async (): Promise<void> => {
        // The last segments read and sent, then the input channel closed: the worker finishes.
        await this.#inputChain.catch(() => undefined);
        await Promise.all([...attempt.writes]);
        await attempt.publisher.close();
        await attempt.outputDone;
      };
      await Promise.race([drain(), deadline]);
      clearTimeout(timer);
    }
    await this.stop(reason, 'input-ended');
  }

  /** Stops the session (idempotent): the worker is left, the hold released, the `-out` stream ended. */
  async stop(reason: string, kind: LiveEndKind = 'stopped'): Promise<void> {
    if (this.#stopping) return this.#ended ?? Promise.resolve();
    const stoppedAtMs = Date.now();
    this.#stoppedAtMs = stoppedAtMs;
    this.#stopping = true;
    this.#stopReason = reason;
    clearInterval(this.#chargeTimer);
    clearInterval(this.#keepaliveTimer);
    clearInterval(this.#watchdogTimer);
    this.#attempt?.leave({ reason, suspend: false, kind: 'worker' });
    const finish = (async () => {
      await this.#ended?.catch(() => undefined);
      await this.#attempt?.close().catch(() => undefined);
      // The balance stopping the session took what was left: nothing more to charge.
      if (kind !== 'insufficient-balance') await this.#chargeRest(stoppedAtMs);
      if (this.#billingOpen) await this.#o.billing!.close(this.#o.requestID).catch((err: Error) => this.#log.error({ err: err.message }, 'cannot release the live session hold'));
      await this.#output?.end(reason).catch(() => undefined);
      this.#state = 'stopped';
      this.#o.recorder?.recordSessionEnd(kind);
      this.#o.events?.emit({ type: 'live.ended', manifestID: this.#o.stream, requestID: this.#o.requestID, reason });
      this.#log.info({ reason, swaps: this.#swaps, inputSegments: this.#inputSegments, outputSegments: this.#outputSegments }, 'live session ended');
      this.#o.onEnded?.(this);
    })();
    this.#ended = finish;
    return finish;
  }

  /** Waits while the worker runs; after it is left, swaps to another within the budget, or ends. */
  async #swapLoop(): Promise<void> {
    for (;;) {
      const attempt = this.#attempt!;
      const left = await attempt.left;
      if (this.#stopping || this.#draining) return;
      this.#state = 'swapping';
      const workerID = attempt.worker.workerID;
      this.#log.warn({ workerID, reason: left.reason }, 'leaving live worker');
      if (left.suspend) this.#o.suspendWorker(workerID);
      await attempt.close().catch(() => undefined);
      if (this.#stopping) return;
      const asked = askSwap(this.#budget, this.#now(), { windowMs: this.#o.timings.swapWindowMs, maxSwaps: this.#o.timings.maxSwaps });
      this.#budget = asked.state;
      if (!asked.allowed) {
        void this.stop(`Too many swaps (last: ${left.reason})`, 'too-many-swaps');
        return;
      }
      this.#swaps += 1;
      this.#o.recorder?.recordSwap(left.kind);
      this.#o.events?.emit({ type: 'live.swapped', manifestID: this.#o.stream, requestID: this.#o.requestID, reason: left.reason, swaps: this.#swaps });
      try {
        this.#attempt = await this.#startAttempt(new Set([workerID]));
      } catch (err) {
        void this.stop(`no worker to swap to: ${(err as Error).message}`, 'no-worker');
        return;
      }
      if (this.#stopping) {
        this.#attempt.leave({ reason: 'stopped', suspend: false, kind: 'worker' });
        return;
      }
      this.#state = 'running';
      this.#log.info({ from: workerID, to: this.#attempt.worker.workerID, swaps: this.#swaps }, 'live session swapped worker');
    }
  }

  async #startAttempt(exclude: ReadonlySet<string>): Promise<WorkerAttempt> {
    const worker = await this.#o.startWorker(exclude, this.#o.params);
    const attempt = new WorkerAttempt(worker, this.#o.trickle, this.#now());
    this.#readOutput(attempt);
    this.#readEvents(attempt);
    // The cached update replayed (Livepeer: up to 3 tries 100 ms apart, else the worker is left).
    const cached = this.#cachedUpdate;
    if (cached !== undefined) void this.#replay(attempt, cached);
    return attempt;
  }

  async #replay(attempt: WorkerAttempt, params: Buffer): Promise<void> {
    let last: Error | undefined;
    for (let i = 0; i < 3; i++) {
      try {
        await attempt.control.write(params);
        return;
      } catch (err) {
        last = err as Error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    attempt.leave({ reason: `control write failed: ${last?.message ?? ''}`, suspend: false, kind: 'worker' });
  }

  #readOutput(attempt: WorkerAttempt): void {
    const subscriber = this.#o.trickle.subscriber(attempt.worker.subscribeUrl);
    attempt.subscribers.push(subscriber);
    void (async () => {
      try {
        for await (const segment of subscriber) {
          if (attempt.hasLeft) break;
          const bytes = await readAll(segment.body);
          if (attempt.hasLeft) break;
          if (bytes.length === 0) continue;
          const nowMs = this.#now();
          attempt.lastOutputAtMs = nowMs;
          this.#lastOutputAtMs = nowMs;
          this.#outputSegments += 1;
          const frames = framesOf(bytes);
          this.#outputRate.add(nowMs, frames);
          this.#o.recorder?.recordOutputFrames(frames);
          // A worker may cut its output differently from its input (the reference worker cuts at
          // its own keyframes), so segments are matched by frames: an input segment is answered
          // once the worker has returned as many frames as had been sent up to its end.
          attempt.outputFrames += frames;
          while (attempt.sent.length > 0 && attempt.sent[0]!.framesEnd > 0 && attempt.sent[0]!.framesEnd <= attempt.outputFrames) {
            this.#latencyMs = nowMs - attempt.sent.shift()!.sentAtMs;
            this.#o.recorder?.recordLatencyMs(this.#latencyMs);
          }
          this.#output ??= this.#o.openOutput();
          this.#output.write(bytes);
        }
        attempt.leave({ reason: 'the worker closed its output channel', suspend: false, kind: 'worker' });
      } catch (err) {
        attempt.leave({ reason: `trickle subscribe error: ${(err as Error).message}`, suspend: false, kind: 'worker' });
      } finally {
        attempt.outputEnded();
      }
    })();
  }

  #readEvents(attempt: WorkerAttempt): void {
    const subscriber = this.#o.trickle.subscriber(attempt.worker.eventsUrl);
    attempt.subscribers.push(subscriber);
    void (async () => {
      try {
        for await (const segment of subscriber) {
          if (attempt.hasLeft) return;
          const body = await readAll(segment.body);
          if (attempt.hasLeft) return;
          let parsed: unknown;
          try {
            parsed = JSON.parse(body.toString('utf8'));
          } catch {
            continue;
          }
          if (typeof parsed !== 'object' || parsed === null) continue;
          attempt.lastEventAtMs = this.#now();
          // `{queue_event_type, event}`, or (older runners) the event itself.
          const wrapped = (parsed as { event?: unknown }).event;
          const event = (typeof wrapped === 'object' && wrapped !== null ? wrapped : parsed) as Record<string, unknown>;
          if (event['type'] === 'status') this.#lastStatus = coalesceStatus(this.#lastStatus, event);
        }
      } catch (err) {
        // Livepeer stops reading events here; the events watchdog then leaves the worker.
        if (!attempt.hasLeft) this.#log.warn({ workerID: attempt.worker.workerID, err: (err as Error).message }, 'live events subscription failed');
      }
    })();
  }

  #watchdog(): void {
    const attempt = this.#attempt;
    if (!attempt || attempt.hasLeft || this.#state !== 'running' || this.#draining) return;
    const verdict: WatchdogVerdict = checkWorker({
      startedAtMs: attempt.startedAtMs,
      ...(attempt.lastEventAtMs !== undefined ? { lastEventAtMs: attempt.lastEventAtMs } : {}),
      ...(attempt.lastOutputAtMs !== undefined ? { lastOutputAtMs: attempt.lastOutputAtMs } : {}),
      ...(this.#lastInputAtMs !== undefined ? { lastInputAtMs: this.#lastInputAtMs } : {}),
    }, this.#now(), this.#o.timings);
    if (verdict.leave) attempt.leave({ reason: verdict.reason, suspend: verdict.suspend, kind: verdict.suspend ? 'output' : 'events' });
  }

  async #keepalive(): Promise<void> {
    const attempt = this.#attempt;
    if (!attempt || attempt.hasLeft || this.#state !== 'running') return;
    await attempt.control.write(Buffer.from('{"keep":"alive"}')).catch((err: Error) => {
      this.#log.debug({ err: err.message }, 'control keepalive failed');
    });
  }

  /**
   * Charges the wall time from the last full interval to the stop (`stoppedAtMs`) as one more
   * interval, so a session pays for the time it ran and no more: 12.3 s at 5 s intervals is
   * charged 5 + 5 + 2.3 s. Waits for an interval charge in flight first.
   */
  async #chargeRest(stoppedAtMs: number): Promise<void> {
    if (this.#meteredSinceMs === undefined) return;
    await this.#charging;
    const intervalMs = this.#o.timings.chargeIntervalMs;
    const restMs = Math.min(intervalMs, stoppedAtMs - this.#meteredSinceMs - this.#interval * intervalMs);
    if (restMs < 1) return;
    await this.#chargeNext(restMs / 1000);
  }

  /** The timer's charge: one full interval, stopping the session when the balance ran out. */
  async #charge(): Promise<void> {
    if (this.#stopping) return;
    const charged = await this.#chargeNext(this.#o.timings.chargeIntervalMs / 1000);
    if (charged && !charged.ok) void this.stop(charged.reason, 'insufficient-balance');
  }

  /** Charges `seconds` as the next interval; undefined when the ledger could not be reached (logged). */
  async #chargeNext(seconds: number): Promise<{ ok: true } | { ok: false; reason: 'insufficient balance' } | undefined> {
    const interval = ++this.#interval;
    try {
      return await this.#o.billing!.charge({ requestID: this.#o.requestID, interval, seconds });
    } catch (err) {
      this.#log.warn({ interval, seconds, err: (err as Error).message }, 'cannot charge a live session interval');
      return undefined;
    }
  }
}

/**
 * A status event merged over the previous one: the large `last_params` and
 * `last_restart_logs` fields of `inference_status` are sent once and then left out by the
 * runner, so the previous values are kept (as Livepeer's gateway does).
 */
export function coalesceStatus(previous: Record<string, unknown> | undefined, event: Record<string, unknown>): Record<string, unknown> {
  const inference = event['inference_status'];
  const before = previous?.['inference_status'];
  if (typeof inference !== 'object' || inference === null || typeof before !== 'object' || before === null) return event;
  const merged: Record<string, unknown> = { ...(inference as Record<string, unknown>) };
  for (const field of ['last_params', 'last_restart_logs']) {
    if (merged[field] === undefined || merged[field] === null) {
      const kept = (before as Record<string, unknown>)[field];
      if (kept !== undefined) merged[field] = kept;
    }
  }
  return { ...event, inference_status: merged };
}
