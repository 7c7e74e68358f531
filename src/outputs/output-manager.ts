/**
 * The restream outputs of the streams this gateway holds (docs/architecture.md, "Restream
 * outputs"). It is ingest's stream tap (ingest-ports.ts StreamTap, passed by the composition
 * root): a stream held here gets its desired outputs from the store (a new session first
 * stores the configured ones: `outputs.defaults`, then the grant's, i.e. its stream key's or
 * the auth webhook's), one {@link OutputRunner} each; source segments come from the tap as
 * they are listed, a profile's segments from the segment index, polled each
 * `renditionPollMs` for the streams with an output of that profile. A change made through
 * the control API on any gateway reaches this one as {@link OutputManager.reconcile} (the
 * control bus, and a periodic re-read of the store as a fallback). States are written back
 * to the store on every change and each `statusFlushMs` (bytes, uptime). A stream that ends
 * stops its outputs (`output.ended`); one that continues at another gateway hands them over
 * quietly.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { segmentKey, SOURCE_RENDITION } from '../domain/segment.ts';
import { redactOutputUrl, type OutputRequest } from '../domain/output-target.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { OutputRunner, type OutputRunnerEvent } from './output-runner.ts';
import type { OutputOrigin, OutputSpec, OutputStatus } from './output-types.ts';
import type { OutputEvents, OutputsStore } from './outputs-ports.ts';

export interface OutputManagerOptions {
  readonly store: OutputsStore;
  readonly supervisor: ChildSupervisor;
  /** The bytes of a stored segment; undefined when it is gone. */
  readonly readSegment: (key: string) => Promise<Buffer | undefined>;
  /** The last `count` listed seqs of a rendition, oldest first (the segment index). */
  readonly listedSeqs: (manifestID: string, rendition: string, count: number) => Promise<readonly number[]>;
  readonly events: OutputEvents;
  readonly logger: Logger;
  /** `outputs.maxPerStream`: configured and granted outputs past it are not started (logged). */
  readonly maxPerStream: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** `outputs.defaults`: started with every new session. */
  readonly defaults: readonly OutputRequest[];
  /** How long an ended stream's outputs stay readable, s; default 3600. */
  readonly endedKeepS?: number;
  /** How often the states of running outputs are written, ms; default 1000. */
  readonly statusFlushMs?: number;
  /**
   * How often every held stream's desired outputs are re-read from the store when no bus
   * message said they changed (a message missed during a Redis reconnect), ms; default 10000.
   * It is one Redis read per held stream, outputs or not, so it is kept rare: at 256 streams
   * every second it was 256 reads a second on the ingest's thread for nothing.
   */
  readonly reconcileMs?: number;
  /** How often a profile rendition's listing is polled, ms; default 500. */
  readonly renditionPollMs?: number;
  /** ffmpeg executable; default `ffmpeg`. */
  readonly ffmpegPath?: string;
}

/** What a held stream carries here. */
interface HeldStream {
  readonly manifestID: string;
  readonly session: string;
  readonly runners: Map<string, OutputRunner>;
  /** Output IDs whose state changed since the last write. */
  readonly dirty: Set<string>;
  /** The last seq fed per profile rendition (polled). */
  readonly polled: Map<string, number>;
  /** Serializes reconciles (a bus message and the periodic one). */
  chain: Promise<void>;
  /** The initial store reset (new session) is done. */
  ready: Promise<void>;
}

/** One runner as /metrics shows it. */
export interface OutputMetricEntry {
  readonly manifestID: string;
  readonly outputId: string;
  readonly state: OutputStatus['state'];
  readonly bytesSent: number;
  readonly uptimeSeconds: number;
}

/** A new output ID: 11 characters of [A-Za-z0-9_-] (64 random bits). */
export function newOutputId(): string {
  return randomBytes(8).toString('base64url');
}

/** Specs for `requests` from one origin, created now. */
export function outputSpecs(requests: readonly OutputRequest[], origin: OutputOrigin, nowMs = Date.now()): OutputSpec[] {
  return requests.map((r, i) => ({ id: newOutputId(), url: r.url, rendition: r.rendition, createdAtMs: nowMs + i, origin }));
}

export class OutputManager {
  readonly #o: OutputManagerOptions;
  readonly #log: Logger;
  readonly #held = new Map<string, HeldStream>();
  readonly #timers: NodeJS.Timeout[];
  #closed = false;

  constructor(options: OutputManagerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'outputs' });
    this.#timers = [
      setInterval(() => this.#flushAll(), options.statusFlushMs ?? 1000),
      setInterval(() => this.#reconcileAll(), options.reconcileMs ?? 10_000),
      setInterval(() => this.#pollRenditions(), options.renditionPollMs ?? 500),
    ];
    for (const t of this.#timers) t.unref();
  }

  /** The runners of the streams held here, for /metrics. */
  metrics(nowMs = Date.now()): OutputMetricEntry[] {
    return [...this.#held.values()].flatMap((h) => [...h.runners.values()].map((r) => {
      const s = r.status;
      return {
        manifestID: h.manifestID, outputId: r.id, state: s.state, bytesSent: s.bytesSent,
        uptimeSeconds: s.liveSinceMs !== undefined ? Math.max(0, (nowMs - s.liveSinceMs) / 1000) : 0,
      };
    }));
  }

  /** Pids of the output ffmpegs running here (tests, diagnostics). */
  pids(manifestID: string): Map<string, number> {
    const held = this.#held.get(manifestID);
    return new Map([...(held?.runners ?? new Map<string, OutputRunner>())].flatMap(([id, r]) => (r.pid === undefined ? [] : [[id, r.pid] as [string, number]])));
  }

  // --- ingest's stream tap -------------------------------------------------------------

  /** The stream is held here: a new session stores its configured and granted outputs; then its outputs start. */
  opened(s: { manifestID: string; session: string; resumed: boolean; grant: { readonly outputs?: readonly OutputRequest[] } }): void {
    if (this.#closed) return;
    const held: HeldStream = {
      manifestID: s.manifestID, session: s.session, runners: new Map(), dirty: new Set(), polled: new Map(), chain: Promise.resolve(), ready: Promise.resolve(),
    };
    this.#held.set(s.manifestID, held);
    if (!s.resumed) {
      const wanted = [...outputSpecs(this.#o.defaults, 'config'), ...outputSpecs(s.grant.outputs ?? [], 'grant')];
      const kept = wanted.slice(0, this.#o.maxPerStream);
      if (kept.length < wanted.length) {
        this.#log.warn({ manifestID: s.manifestID, wanted: wanted.length, maxPerStream: this.#o.maxPerStream }, 'more configured outputs than outputs.maxPerStream: the last ones are not started');
      }
      held.ready = this.#o.store.reset(s.manifestID, kept).catch((err: Error) => {
        this.#log.error({ manifestID: s.manifestID, err: err.message }, 'cannot store the stream\'s outputs');
      });
    }
    void this.reconcile(s.manifestID);
  }

  /** A source segment was listed here: fed to the stream's `source` outputs. */
  sourceListed(s: { manifestID: string; session: string; seq: number; key: string }): void {
    const held = this.#held.get(s.manifestID);
    if (!held || held.session !== s.session) return;
    for (const runner of held.runners.values()) {
      if (runner.rendition === SOURCE_RENDITION) runner.feed({ seq: s.seq, key: s.key });
    }
  }

  /** The stream is not held here any more: its outputs stop (`output.ended` unless it continues elsewhere). */
  closed(s: { manifestID: string; session: string; reason: string; continued: boolean }): void {
    const held = this.#held.get(s.manifestID);
    if (!held || held.session !== s.session) return;
    this.#held.delete(s.manifestID);
    void this.#release(held, s.continued ? undefined : `stream ended: ${s.reason}`);
  }

  // --- control --------------------------------------------------------------------------

  /**
   * Brings the outputs of `manifestID` in line with the store, when it is held here: starts
   * the new ones, stops the removed ones. A no-op for a stream held elsewhere. Never throws.
   */
  reconcile(manifestID: string): Promise<void> {
    const held = this.#held.get(manifestID);
    if (!held || this.#closed) return Promise.resolve();
    held.chain = held.chain.then(() => this.#reconcile(held)).catch((err: Error) => {
      this.#log.warn({ manifestID, err: err.message }, 'cannot read the stream\'s outputs; retried at the next sweep');
    });
    return held.chain;
  }

  async #reconcile(held: HeldStream): Promise<void> {
    await held.ready;
    if (this.#held.get(held.manifestID) !== held) return;
    const desired = await this.#o.store.list(held.manifestID);
    if (this.#held.get(held.manifestID) !== held) return;
    const ids = new Set(desired.map((d) => d.spec.id));
    for (const [id, runner] of held.runners) {
      if (ids.has(id)) continue;
      held.runners.delete(id);
      held.dirty.delete(id);
      void runner.stop('removed through the control API');
    }
    for (const { spec } of desired) {
      if (held.runners.has(spec.id)) continue;
      const runner = this.#runner(held, spec);
      held.runners.set(spec.id, runner);
      runner.start();
      this.#log.info({ manifestID: held.manifestID, outputId: spec.id, target: runner.shownUrl, rendition: spec.rendition, origin: spec.origin }, 'output started');
    }
  }

  #runner(held: HeldStream, spec: OutputSpec): OutputRunner {
    const shownUrl = redactOutputUrl(spec.url);
    const base = { manifestID: held.manifestID, session: held.session, outputId: spec.id, url: shownUrl, rendition: spec.rendition };
    return new OutputRunner({
      manifestID: held.manifestID, spec, supervisor: this.#o.supervisor, readSegment: this.#o.readSegment,
      backoffInitialMs: this.#o.backoffInitialMs, backoffMaxMs: this.#o.backoffMaxMs, logger: this.#log.child({ manifestID: held.manifestID }),
      ...(this.#o.ffmpegPath ? { ffmpegPath: this.#o.ffmpegPath } : {}),
      onStatus: () => {
        held.dirty.add(spec.id);
        void this.#flush(held);
      },
      onEvent: (e: OutputRunnerEvent) => {
        if (e.type === 'output.started') this.#o.events.emit({ type: 'output.started', ...base });
        else if (e.type === 'output.failed') this.#o.events.emit({ type: 'output.failed', ...base, reason: e.reason, retryInMs: e.retryInMs });
        else this.#o.events.emit({ type: 'output.ended', ...base, reason: e.reason });
      },
    });
  }

  /** Writes the states of `held`'s changed outputs (or all, with `all`). */
  async #flush(held: HeldStream, all = false): Promise<void> {
    await held.ready;
    const ids = all ? [...held.runners.keys()] : [...held.dirty];
    held.dirty.clear();
    const states = new Map(ids.flatMap((id) => {
      const r = held.runners.get(id);
      return r ? [[id, r.status] as [string, OutputStatus]] : [];
    }));
    await this.#o.store.setStates(held.manifestID, states).catch((err: Error) => {
      this.#log.warn({ manifestID: held.manifestID, err: err.message }, 'cannot write output states');
    });
  }

  /** Each `statusFlushMs`: every running output's bytes and uptime to the store. */
  #flushAll(): void {
    for (const held of this.#held.values()) if (held.runners.size > 0) void this.#flush(held, true);
  }

  /** Each `reconcileMs`: every held stream's outputs re-read from the store (a missed bus message). */
  #reconcileAll(): void {
    for (const held of this.#held.values()) void this.reconcile(held.manifestID);
  }

  /** Feeds newly listed segments of the profile renditions that have outputs here. */
  #pollRenditions(): void {
    for (const held of this.#held.values()) {
      const renditions = new Set([...held.runners.values()].map((r) => r.rendition).filter((r) => r !== SOURCE_RENDITION));
      for (const rendition of renditions) {
        void this.#o.listedSeqs(held.manifestID, rendition, 3).then((seqs) => {
          const last = held.polled.get(rendition) ?? -1;
          for (const seq of seqs) {
            if (seq <= last) continue;
            held.polled.set(rendition, seq);
            const key = segmentKey(held.manifestID, held.session, rendition, seq);
            for (const runner of held.runners.values()) if (runner.rendition === rendition) runner.feed({ seq, key });
          }
        }, (err: Error) => this.#log.debug({ manifestID: held.manifestID, rendition, err: err.message }, 'cannot read the rendition listing'));
      }
    }
  }

  /** Stops a stream's runners; with a reason (the stream ended) their last states are written and kept for `endedKeepS`. */
  async #release(held: HeldStream, reason: string | undefined): Promise<void> {
    const runners = [...held.runners.values()];
    await Promise.all(runners.map((r) => r.stop(reason ?? 'continued at another gateway', { quiet: reason === undefined })));
    if (reason === undefined) return;
    await held.ready;
    await this.#o.store.setStates(held.manifestID, new Map(runners.map((r) => [r.id, r.status])))
      .then(() => this.#o.store.expire(held.manifestID, this.#o.endedKeepS ?? 3600))
      .catch((err: Error) => this.#log.warn({ manifestID: held.manifestID, err: err.message }, 'cannot write the ended outputs\' states'));
  }

  /** Stops every output here without ending them for the cluster (shutdown: the stream's next holder restarts them). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(held.map((h) => this.#release(h, undefined)));
  }
}
