/**
 * A process's heartbeat in the cluster membership (cluster-member-store.ts): every
 * `intervalMs` it publishes the record of each role the process runs (a gateway, a
 * transcoder, or both with the embedded transcoder), valid for
 * {@link MEMBER_TTL_HEARTBEATS} intervals, so a member that dies (SIGKILL, a lost host, a cut
 * link) is gone from `GET /api/cluster` within that TTL with nobody cleaning up. A clean
 * `close()` withdraws the records at once.
 *
 * The figures come through small ports the composition root wires: the gateway's live
 * streams (ingest), the transcoder's slots and work in flight (transcode); the host load is
 * read here (`os.loadavg()[0] / os.availableParallelism()`).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import type { Logger } from '../log/logger.ts';
import type { GatewayRecord, MemberKind, MemberRecord, TranscoderRecord } from './cluster-member-store.ts';

/**
 * A member's record lives this many heartbeat intervals: one late or lost heartbeat (a GC
 * pause, a slow Redis round trip) does not drop a live member; a dead one is gone within 3.
 */
export const MEMBER_TTL_HEARTBEATS = 3;

/** The member store as the heartbeat uses it (`RedisClusterMembers`). */
export interface HeartbeatStore {
  publish(records: readonly MemberRecord[], ttlMs: number): Promise<void>;
  withdraw(members: readonly { kind: MemberKind; id: string }[]): Promise<void>;
}

/** The gateway role's port: its addresses and its live streams now. */
export interface GatewayFigures {
  readonly address: string;
  readonly rtmpAddress?: string;
  /** Live streams held by this gateway (e.g. `ingest.list().length`). */
  streams(): number;
}

/** The transcoder role's port: its slots and what runs on them now. */
export interface TranscoderFigures {
  readonly address?: string;
  readonly embedded: boolean;
  /** `transcode.concurrency`. */
  readonly slots: number;
  /** Live sessions owned and per-segment jobs running now. */
  inFlight(): { liveSessions: number; jobs: number };
}

export interface ClusterHeartbeatOptions {
  store: HeartbeatStore;
  /** This process's member ID (core's `memberId`). */
  id: string;
  /** Set when the process runs the gateway role. */
  gateway?: GatewayFigures;
  /** Set when the process runs a transcode worker (standalone or embedded). */
  transcoder?: TranscoderFigures;
  /** Heartbeat period, ms (`cluster.heartbeatIntervalMs`). */
  intervalMs: number;
  logger: Logger;
  /** mediagate's version; default package.json's. */
  version?: string;
  /** When the process started, epoch ms; default now minus `process.uptime()`. */
  startedAtMs?: number;
  /** Host load: 1-minute load average over CPU count; default from node:os. */
  load?: () => number;
  /** Clock, epoch ms (tests); default `Date.now`. */
  now?: () => number;
}

/** The `version` of mediagate's package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/** The host's 1-minute load average divided by its CPU count, rounded to 2 decimals. */
export function hostLoad(): number {
  return Math.round((loadavg()[0]! / Math.max(1, availableParallelism())) * 100) / 100;
}

export class ClusterHeartbeat {
  readonly #o: ClusterHeartbeatOptions;
  readonly #version: string;
  readonly #startedAtMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #failing = false;
  #closed = false;

  constructor(options: ClusterHeartbeatOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#version = options.version ?? packageVersion();
    this.#startedAtMs = options.startedAtMs ?? Math.round(this.#now() - process.uptime() * 1000);
  }

  /** The TTL of each published record, ms: {@link MEMBER_TTL_HEARTBEATS} intervals. */
  get ttlMs(): number {
    return this.#o.intervalMs * MEMBER_TTL_HEARTBEATS;
  }

  /** The records this process publishes now. */
  records(): MemberRecord[] {
    const now = this.#now();
    const base = { id: this.#o.id, version: this.#version, startedAtMs: this.#startedAtMs, heartbeatAtMs: now };
    const records: MemberRecord[] = [];
    const g = this.#o.gateway;
    if (g) {
      const gateway: GatewayRecord = { kind: 'gateway', ...base, address: g.address, ...(g.rtmpAddress ? { rtmpAddress: g.rtmpAddress } : {}), streams: g.streams() };
      records.push(gateway);
    }
    const t = this.#o.transcoder;
    if (t) {
      const { liveSessions, jobs } = t.inFlight();
      const transcoder: TranscoderRecord = {
        kind: 'transcoder', ...base, ...(t.address ? { address: t.address } : {}), embedded: t.embedded,
        slots: t.slots, inFlight: liveSessions + jobs, liveSessions, jobs, load: (this.#o.load ?? hostLoad)(),
      };
      records.push(transcoder);
    }
    return records;
  }

  /**
   * Publishes now and then every interval. Resolves after the first publish (a failure is
   * logged, not thrown: the next heartbeat tries again).
   */
  async start(): Promise<void> {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => { void this.#beat(); }, this.#o.intervalMs);
    this.#timer.unref();
    await this.#beat();
  }

  #beat(): Promise<void> {
    // One heartbeat at a time: a slow Redis must not pile them up.
    this.#beating ??= this.#publish().finally(() => { this.#beating = undefined; });
    return this.#beating;
  }

  async #publish(): Promise<void> {
    try {
      await this.#o.store.publish(this.records(), this.ttlMs);
      if (this.#failing) this.#o.logger.info('cluster heartbeat published again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#o.logger.warn({ err: (err as Error).message }, 'cluster heartbeat failed; retrying every interval');
      this.#failing = true;
    }
  }

  /** Stops the heartbeat and withdraws this process's records (other members see it gone at once). Idempotent; never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#beating;
    const members: { kind: MemberKind; id: string }[] = [];
    if (this.#o.gateway) members.push({ kind: 'gateway', id: this.#o.id });
    if (this.#o.transcoder) members.push({ kind: 'transcoder', id: this.#o.id });
    await this.#o.store.withdraw(members).catch((err: Error) => this.#o.logger.warn({ err: err.message }, 'cannot withdraw from the cluster membership'));
  }
}
