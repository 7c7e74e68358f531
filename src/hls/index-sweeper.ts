/**
 * Keeps the segment index moving in every gateway: renews the heartbeat of each live stream
 * this gateway holds (and, through `renewOwnership`, its ownership lease, on the same tick), and runs the index sweep (RedisSegmentIndex.sweep) that resolves
 * segments waiting past `hls.maxSegmentWaitMs` and ends streams whose holder's heartbeat
 * expired. Every gateway runs one; the sweep's scripts are idempotent, so they may overlap.
 */
import type { Logger } from '../log/logger.ts';

/** What the sweeper needs from the segment index (segment-index-store.ts). */
export interface SweptIndex {
  renewHeartbeats(held: readonly { manifestID: string; session: string }[]): Promise<{ manifestID: string; session: string }[]>;
  sweep(nowMs?: number, options?: { expireHeartbeats?: boolean }): Promise<{ expired: readonly string[]; resolved: readonly { manifestID: string; skipped: number }[] }>;
}

export interface IndexSweeperOptions {
  index: SweptIndex;
  logger: Logger;
  /** Live streams this gateway holds (publish sessions). */
  held(): readonly { manifestID: string; session: string }[];
  /** Called for a held stream that is no longer live in its session (ended by another gateway). */
  onLost(stream: { manifestID: string; session: string }): void;
  /**
   * Run on every heartbeat beside the index heartbeat renewal, at the same time: the renewal
   * of the ownership leases of the streams held here (ingest), so one timer keeps both the
   * stream's index heartbeat and its lease (same TTL). Must not throw.
   */
  renewOwnership?: () => Promise<void>;
  /** Heartbeat renewal period in ms (`hls.heartbeatIntervalMs`). */
  heartbeatIntervalMs: number;
  /** Sweep period in ms (`hls.sweepIntervalMs`). */
  sweepIntervalMs: number;
  /**
   * The heartbeat TTL in ms (`hls.heartbeatTtlMs`): after this gateway could not reach Redis,
   * it ends no stream for expired heartbeats until Redis has answered for this long, so every
   * holder (all cut off by the same outage) has had the time to renew.
   */
  heartbeatTtlMs: number;
}

export class IndexSweeper {
  readonly #o: IndexSweeperOptions;
  readonly #timers: NodeJS.Timeout[] = [];
  /** Runs in flight, awaited by close(). */
  readonly #running = new Set<Promise<void>>();
  #closed = false;
  /** When a Redis operation of this sweeper last failed (epoch ms); 0 = never. */
  #lastFailureAtMs = 0;

  constructor(options: IndexSweeperOptions) {
    this.#o = options;
  }

  /** Starts both timers (unref'd: they never keep the process alive). */
  start(): void {
    if (this.#closed || this.#timers.length > 0) return;
    this.#every(this.#o.heartbeatIntervalMs, () => this.renew());
    this.#every(this.#o.sweepIntervalMs, () => this.sweep());
  }

  #every(periodMs: number, run: () => Promise<void>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.#closed) return;
      busy = true;
      const p = run().finally(() => { busy = false; this.#running.delete(p); });
      this.#running.add(p);
    }, periodMs);
    timer.unref();
    this.#timers.push(timer);
  }

  /** Renews the heartbeats of held streams once; a held stream found ended elsewhere is handed to `onLost`. */
  async renew(): Promise<void> {
    const ownership = this.#o.renewOwnership?.();
    try {
      const lost = await this.#o.index.renewHeartbeats(this.#o.held());
      for (const stream of lost) {
        this.#o.logger.warn({ manifestID: stream.manifestID, session: stream.session }, 'held stream is no longer live in the index; stopping it here');
        this.#o.onLost(stream);
      }
    } catch (err) {
      this.#lastFailureAtMs = Date.now();
      this.#o.logger.warn({ err: (err as Error).message }, 'heartbeat renewal failed');
    }
    await ownership;
  }

  /** Runs the index sweep once. */
  async sweep(): Promise<void> {
    try {
      const nowMs = Date.now();
      const result = await this.#o.index.sweep(nowMs, { expireHeartbeats: nowMs - this.#lastFailureAtMs > this.#o.heartbeatTtlMs });
      for (const manifestID of result.expired) this.#o.logger.warn({ manifestID }, 'stream heartbeat expired (its gateway is gone): stream ended');
      for (const r of result.resolved) {
        if (r.skipped > 0) this.#o.logger.warn({ manifestID: r.manifestID, segments: r.skipped }, 'segments skipped after waiting hls.maxSegmentWaitMs (listed with a discontinuity)');
      }
    } catch (err) {
      this.#lastFailureAtMs = Date.now();
      this.#o.logger.warn({ err: (err as Error).message }, 'index sweep failed');
    }
  }

  /** Stops the timers and waits for a run in flight. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers.splice(0)) clearInterval(t);
    await Promise.all([...this.#running]);
  }
}
