/**
 * One restream output on the gateway that holds its stream: one ffmpeg copying the stream's
 * segments of one rendition to one target, reconnecting on its own (docs/architecture.md,
 * "Restream outputs").
 *
 * - ffmpeg: `-f mpegts -i pipe:0 -c copy -f flv <url>` for rtmp/rtmps (`-rw_timeout` 10 s, so a
 *   target that stops reading fails the attempt), `-f mpegts <url>` for srt; `-progress pipe:1`
 *   reports `total_size` (the bytes written to the target) every second. No re-encode.
 * - Input: the listed segments of its rendition, whole MPEG-TS files in seq order, written to
 *   ffmpeg's stdin as they are listed ({@link OutputRunner.feed}). A (re)started ffmpeg begins
 *   with the latest listed segment (each starts with a keyframe). At most `maxPendingSegments`
 *   wait while the target is slower than the stream; older ones are dropped.
 * - State: `connecting` from the first spawn until the first progress report with bytes
 *   written, then `live`; when ffmpeg exits on its own, `retrying` with the reason (its last
 *   error line, redacted, e.g. `Connection refused`), kept through the reconnects until one is
 *   live again; a new ffmpeg starts after the backoff: `backoffInitialMs`
 *   × 2^attempt, at most `backoffMaxMs`, minus up to 50 % random jitter (so outputs that failed
 *   together do not retry together); a connection live for `liveResetMs` resets the attempt
 *   count. `stopped` after {@link OutputRunner.stop}.
 * - Its failures stay here: nothing it does reaches the stream or the other outputs.
 *
 * The target's secrets are not on ffmpeg's command line (`ps` shows a process's arguments to
 * every local user): the stream key (RTMP) or `streamid`/`passphrase` (SRT) are ffmpeg
 * protocol options ({@link splitOutputSecrets}) read from a preset file (`-fpre /dev/fd/3`)
 * that the child inherits as its fd 3: a file in a fresh private directory (0700, the file
 * 0600) that is unlinked before ffmpeg starts, so it exists by name for microseconds and its
 * bytes go when the last descriptor closes (a pipe would not do: Node's extra stdio pipes are
 * sockets, which `/dev/fd/3` cannot open, and ffmpeg opens the preset by path). ffmpeg 5.1
 * has no other way to take an output option from outside its arguments (`-/option <file>`
 * arrived in ffmpeg 7.0). Only a userinfo in the URL stays an argument. Everywhere else (logs,
 * API, events, metrics) the URL is redacted.
 */
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import type { Logger } from '../log/logger.ts';
import { redactSecrets } from '../log/redact.ts';
import { onLines, type ChildSupervisor, type SupervisedChild } from '../media/child-supervisor.ts';
import { unlinkedFileWith } from '../media/unlinked-file.ts';
import { getRetryDelayMs } from '../domain/outage-retry.ts';
import { checkOutputUrl, redactOutputUrl, splitOutputSecrets } from '../domain/output-target.ts';
import type { OutputSpec, OutputState, OutputStatus } from './output-types.ts';

/** A listed segment of the output's rendition: its seq and object-store key. */
export interface SegmentRef {
  readonly seq: number;
  readonly key: string;
}

/** What a runner tells its owner; `output.failed` for every failed attempt (with the wait before the next). */
export type OutputRunnerEvent =
  | { type: 'output.started' }
  | { type: 'output.failed'; reason: string; retryInMs: number }
  | { type: 'output.ended'; reason: string };

export interface OutputRunnerOptions {
  readonly manifestID: string;
  readonly spec: OutputSpec;
  /** Owns the ffmpeg children (stopped with it at shutdown). */
  readonly supervisor: ChildSupervisor;
  /** The bytes of a listed segment; undefined when it is gone (the segment is then skipped). */
  readonly readSegment: (key: string) => Promise<Buffer | undefined>;
  /** First reconnect wait, ms (`outputs.backoffInitialMs`). */
  readonly backoffInitialMs: number;
  /** Longest reconnect wait, ms (`outputs.backoffMaxMs`). */
  readonly backoffMaxMs: number;
  /** A connection live this long resets the backoff, ms; default 30000. */
  readonly liveResetMs?: number;
  /** Segments waiting for a slow target before the oldest is dropped; default 4. */
  readonly maxPendingSegments?: number;
  /** Uniform [0, 1) for the jitter; default Math.random. */
  readonly random?: () => number;
  /** ffmpeg executable; default `ffmpeg`. */
  readonly ffmpegPath?: string;
  readonly logger: Logger;
  /** Called on every state change (not on byte counts: read {@link OutputRunner.status}). Must not throw. */
  readonly onStatus: (status: OutputStatus) => void;
  /** Must not throw. */
  readonly onEvent: (event: OutputRunnerEvent) => void;
}

/** SIGTERM, then SIGKILL after this long, ms: a removed output's ffmpeg is gone within a second. */
const STOP_GRACE_MS = 300;
/** Longest failure reason kept, characters. */
const MAX_REASON_CHARS = 200;

/** Where the output's ffmpeg reads its secret options: a pipe on its fd 3 (see the module doc). */
const SECRET_OPTIONS_PATH = '/dev/fd/3';

/**
 * How an output's ffmpeg is started (exported for tests): its arguments, which hold the target
 * URL without its secrets, and the text of the preset file it reads them from on fd 3
 * (`name=value` lines; empty when the URL has no secret).
 */
export function outputInvocation(url: string): { args: string[]; secretOptions: string } {
  const { muxer } = checkOutputUrl(url);
  const { publicUrl, options } = splitOutputSecrets(url);
  const output = muxer === 'flv'
    ? ['-f', 'flv', '-flvflags', 'no_duration_filesize', '-rw_timeout', '10000000']
    : ['-f', 'mpegts'];
  const args = [
    '-hide_banner', '-nostats', '-loglevel', 'error', '-progress', 'pipe:1', '-stats_period', '1',
    // At most 1 s of media is probed (the first segment holds it), so the target is connected once
    // the first segment is written instead of after ffmpeg's default 5 s of input.
    '-f', 'mpegts', '-analyzeduration', '1000000', '-probesize', '1000000', '-i', 'pipe:0', '-c', 'copy', ...output,
    ...(options.length > 0 ? ['-fpre', SECRET_OPTIONS_PATH] : []), publicUrl,
  ];
  return { args, secretOptions: options.map(([name, value]) => `${name}=${value}\n`).join('') };
}

/**
 * The secret parts of a target URL, for removing them from ffmpeg's stderr: the whole URL,
 * its userinfo, its last path segment and its query values.
 */
export function urlSecrets(url: string): string[] {
  const secrets = [url];
  try {
    const u = new URL(url);
    secrets.push(u.username, u.password, decodeURIComponent(u.username), decodeURIComponent(u.password));
    const last = u.pathname.split('/').filter((s) => s !== '').pop();
    if (last !== undefined) secrets.push(last, decodeURIComponent(last));
    for (const value of u.searchParams.values()) secrets.push(value, encodeURIComponent(value));
    secrets.push(u.search.slice(1), u.hash.slice(1));
  } catch {
    // An unparseable URL never reaches ffmpeg (checkOutputUrl refuses it).
  }
  // Longest first, so a secret that contains another is replaced whole.
  return [...new Set(secrets.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
}

export class OutputRunner {
  readonly id: string;
  readonly rendition: string;
  /** The target as it may be shown ({@link redactOutputUrl}). */
  readonly shownUrl: string;
  readonly #o: OutputRunnerOptions;
  readonly #log: Logger;
  readonly #secrets: string[];
  #state: OutputState = 'connecting';
  #reason: string | undefined;
  #bytesBefore = 0;
  #bytesNow = 0;
  #liveSinceMs: number | undefined;
  #attempt = 0;
  #child: SupervisedChild | undefined;
  #lastError: string | undefined;
  #pending: SegmentRef[] = [];
  #latest: SegmentRef | undefined;
  #writing = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: OutputRunnerOptions) {
    this.#o = options;
    this.id = options.spec.id;
    this.rendition = options.spec.rendition;
    this.shownUrl = redactOutputUrl(options.spec.url);
    this.#secrets = urlSecrets(options.spec.url);
    this.#log = options.logger.child({ outputId: this.id, target: this.shownUrl, rendition: this.rendition });
  }

  /** The current state, bytes sent over every connection and the live connection's start. */
  get status(): OutputStatus {
    return {
      state: this.#state,
      ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
      bytesSent: this.#bytesBefore + this.#bytesNow,
      ...(this.#liveSinceMs !== undefined ? { liveSinceMs: this.#liveSinceMs } : {}),
      updatedAtMs: Date.now(),
    };
  }

  /** Pid of the running ffmpeg, if any. */
  get pid(): number | undefined {
    return this.#child?.hasExited === false ? this.#child.pid : undefined;
  }

  /** Starts the first ffmpeg (it begins with the latest segment fed so far, if any). */
  start(): void {
    if (this.#stopping || this.#child) return;
    this.#spawn();
  }

  /** A segment of the rendition was listed; segments at or below the last seq fed are ignored. */
  feed(segment: SegmentRef): void {
    if (this.#stopping || (this.#latest && segment.seq <= this.#latest.seq)) return;
    this.#latest = segment;
    if (!this.#child || this.#child.hasExited) return;
    this.#pending.push(segment);
    const max = this.#o.maxPendingSegments ?? 4;
    if (this.#pending.length > max) {
      const dropped = this.#pending.splice(0, this.#pending.length - max);
      this.#log.warn({ droppedSeqs: dropped.map((s) => s.seq) }, 'output target slower than the stream: segments dropped');
    }
    void this.#pump();
  }

  /**
   * Stops the output: no reconnect; its ffmpeg's stdin is closed and it gets SIGTERM, SIGKILL after 300 ms. State
   * `stopped`; `output.ended` with `reason` unless `quiet` (the stream goes on at another
   * gateway, whose runner takes over). Idempotent; resolves once ffmpeg has exited.
   */
  stop(reason: string, options: { quiet?: boolean } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#retryTimer);
      this.#pending = [];
      const child = this.#child;
      if (!options.quiet) {
        this.#setState('stopped');
        this.#o.onEvent({ type: 'output.ended', reason });
        this.#log.info({ reason, bytesSent: this.#bytesBefore + this.#bytesNow }, 'output stopped');
      }
      // End of input first: ffmpeg flushes what it holds and exits at once; SIGTERM, then SIGKILL, bound it.
      child?.process.stdin?.end();
      if (child) await child.stop();
    })();
    return this.#stopping;
  }

  #spawn(): void {
    const { args, secretOptions } = outputInvocation(this.#o.spec.url);
    const secretFd = secretOptions === '' ? undefined : unlinkedFileWith(secretOptions);
    let child: SupervisedChild;
    try {
      child = this.#o.supervisor.spawn(this.#o.ffmpegPath ?? 'ffmpeg', args, {
        name: 'output', stdio: ['pipe', 'pipe', 'pipe', secretFd ?? 'ignore'], killGraceMs: STOP_GRACE_MS, logger: this.#log,
        redact: (line) => redactSecrets(line.split(this.#o.spec.url).join(this.shownUrl), this.#secrets),
        onStderrLine: (line) => { this.#lastError = cleanReason(line); },
      });
    } finally {
      // The child has its own copy of the descriptor (or none, if the spawn failed).
      if (secretFd !== undefined) closeSync(secretFd);
    }
    this.#child = child;
    this.#lastError = undefined;
    this.#bytesNow = 0;
    // A reconnect stays `retrying` (with the last reason) until it is live again.
    this.#setState(this.#state === 'retrying' ? 'retrying' : 'connecting');
    child.process.stdin?.on('error', () => undefined); // EPIPE once ffmpeg is gone: its exit is handled below.
    if (child.process.stdout) onLines(child.process.stdout, (line) => this.#onProgress(child, line));
    void child.exited.then((exit) => this.#onExit(child, exit.spawnError ? `cannot start ffmpeg: ${exit.spawnError.message}` : `ffmpeg exited (${exit.code ?? exit.signal})`));
    this.#pending = this.#latest ? [this.#latest] : [];
    void this.#pump();
  }

  /** `-progress` lines: `total_size=<bytes>` … `progress=continue|end` per report. */
  #onProgress(child: SupervisedChild, line: string): void {
    if (child !== this.#child) return;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'total_size') {
      const bytes = Number(value);
      if (Number.isFinite(bytes) && bytes > this.#bytesNow) this.#bytesNow = bytes;
    } else if (key === 'progress' && this.#bytesNow > 0 && this.#state !== 'live' && !this.#stopping) {
      this.#liveSinceMs = Date.now();
      this.#reason = undefined;
      this.#setState('live');
      this.#o.onEvent({ type: 'output.started' });
      this.#log.info('output live');
    }
  }

  #onExit(child: SupervisedChild, fallbackReason: string): void {
    if (child !== this.#child) return;
    this.#bytesBefore += this.#bytesNow;
    this.#bytesNow = 0;
    if (this.#stopping) return;
    const liveMs = this.#liveSinceMs !== undefined ? Date.now() - this.#liveSinceMs : 0;
    if (liveMs >= (this.#o.liveResetMs ?? 30_000)) this.#attempt = 0;
    this.#liveSinceMs = undefined;
    const reason = this.#lastError ?? fallbackReason;
    const base = getRetryDelayMs({ retryDelayMs: this.#o.backoffInitialMs, maxRetryDelayMs: this.#o.backoffMaxMs, backoff: 'exponential', budgetMs: 1 }, this.#attempt);
    const retryInMs = Math.max(1, Math.round(base * (1 - 0.5 * (this.#o.random ?? Math.random)())));
    this.#attempt += 1;
    this.#reason = reason;
    this.#setState('retrying');
    this.#o.onEvent({ type: 'output.failed', reason, retryInMs });
    this.#log.warn({ reason, retryInMs, attempt: this.#attempt }, 'output failed; retrying');
    this.#retryTimer = setTimeout(() => {
      if (!this.#stopping) this.#spawn();
    }, retryInMs);
  }

  /** Runs {@link #writeAll} unless it runs already; never rejects. */
  async #pump(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      await this.#writeAll();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'output feed failed; the next attempt starts over');
    } finally {
      this.#writing = false;
    }
  }

  /** Writes the pending segments to the running ffmpeg, one at a time, honouring backpressure. */
  async #writeAll(): Promise<void> {
    for (;;) {
      const child = this.#child;
      const stdin = child?.process.stdin;
      if (!child || child.hasExited || !stdin || stdin.destroyed || this.#stopping) return;
      const segment = this.#pending.shift();
      if (!segment) return;
      let bytes: Buffer | undefined;
      try {
        bytes = await this.#o.readSegment(segment.key);
      } catch (err) {
        this.#log.warn({ seq: segment.seq, err: (err as Error).message }, 'cannot read a segment for the output; skipped');
      }
      if (!bytes || child !== this.#child || child.hasExited) continue;
      // A write to an ffmpeg that just died fails with EPIPE: its exit is handled in #onExit, never thrown here.
      if (!stdin.write(bytes)) await Promise.race([once(stdin, 'drain').catch(() => undefined), child.exited]);
    }
  }

  #setState(state: OutputState): void {
    this.#state = state;
    this.#o.onStatus(this.status);
  }
}

/** An ffmpeg error line as a reason: without its `[tcp @ 0x…] ` context prefix, at most 200 characters. */
function cleanReason(line: string): string {
  const text = line.replace(/^\[[^\]]*@ ?0x[0-9a-f]+\]\s*/i, '').trim();
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text;
}
