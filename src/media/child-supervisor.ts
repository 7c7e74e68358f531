/**
 * One owner for every ffmpeg/ffprobe child process (the pattern of mediasoup's Worker: the
 * parent keeps a set of its children and closing the parent closes them all).
 *
 * - Every child's stderr is read line by line (node:readline) and each line goes to the
 *   logger at debug level with the child's `pid` and `name` (after the caller's redaction).
 * - Every exit is an `exit` event `{ name, pid, code, signal }` (Node's `close`: the process
 *   has exited and its stdio is drained).
 * - `stop()` of one child, and `close()` of the supervisor for all of them: the child's
 *   graceful signal (SIGTERM by default; SIGINT for an ffmpeg that must flush what it
 *   wrote, like the segmenter), then SIGKILL after its grace (default 2000 ms). Both are
 *   idempotent and resolve once the process has exited, so no child outlives `close()`.
 *
 * Sites keep their own timeouts and error messages; they use {@link SupervisedChild.stop}
 * (graceful) or {@link SupervisedChild.kill} (an immediate signal, e.g. ffprobe's SIGKILL on
 * timeout) and read the result from {@link SupervisedChild.exited}.
 */
import { spawn, type ChildProcess, type SpawnOptions, type StdioOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { createLogger, type Logger } from '../log/logger.ts';

/** How a supervised child ended. */
export interface ChildExit {
  /** The name given at spawn (e.g. `ffprobe`, `segmenter`). */
  readonly name: string;
  /** Undefined when the process could not be started. */
  readonly pid: number | undefined;
  /** Exit code; null when killed by a signal or never started. */
  readonly code: number | null;
  /** The signal that ended it; null when it exited by itself or never started. */
  readonly signal: NodeJS.Signals | null;
  /** Why it could not be started (ENOENT ...); then pid, code and signal are absent. */
  readonly spawnError?: Error;
}

/** Per-child options. */
export interface SuperviseOptions {
  /** Label in logs and exit events, e.g. `ffprobe`. */
  readonly name: string;
  /** First signal of `stop()`/`close()`; default SIGTERM. */
  readonly gracefulSignal?: NodeJS.Signals;
  /** Delay between the graceful signal and SIGKILL, ms; default the supervisor's `killGraceMs`. */
  readonly killGraceMs?: number;
  /** Logger for this child's stderr lines and stop warnings; default the supervisor's. */
  readonly logger?: Logger;
  /** Applied to every stderr line before it is logged or handed to `onStderrLine` (e.g. to remove a stream key). */
  readonly redact?: (line: string) => string;
  /** Called with each non-empty stderr line (redacted). */
  readonly onStderrLine?: (line: string) => void;
  /** Called once when the grace ran out and SIGKILL is sent. */
  readonly onKill?: () => void;
}

/** Options of {@link ChildSupervisor.spawn}: {@link SuperviseOptions} plus the stdio of node:child_process. */
export interface SpawnChildOptions extends SuperviseOptions {
  /** Default `['ignore', 'pipe', 'pipe']`; stderr must be a pipe for the logging. */
  readonly stdio?: StdioOptions;
  readonly env?: SpawnOptions['env'];
}

export interface ChildSupervisorOptions {
  readonly logger: Logger;
  /** Default delay between the graceful signal and SIGKILL, ms; default 2000. */
  readonly killGraceMs?: number;
}

/**
 * Calls `fn` for each non-empty line of a child's output: lines end in LF, CRLF or a lone CR
 * (ffmpeg ends its progress lines with CR), and a final unterminated line is delivered too.
 */
export function onLines(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  // crlfDelay Infinity: a CR and the LF after it are one line end even across chunks.
  createInterface({ input: stream, crlfDelay: Infinity, terminal: false }).on('line', (line) => {
    if (line !== '') fn(line);
  });
}

/** One child under a {@link ChildSupervisor}. */
export class SupervisedChild {
  readonly name: string;
  /** The Node child process (its stdin/stdout as spawned). */
  readonly process: ChildProcess;
  /** Resolves once the process has exited (never rejects; a start failure resolves with `spawnError`). */
  readonly exited: Promise<ChildExit>;
  readonly #gracefulSignal: NodeJS.Signals;
  readonly #killGraceMs: number;
  readonly #logger: Logger;
  readonly #onKill: (() => void) | undefined;
  #exit: ChildExit | undefined;
  #stopping: Promise<ChildExit> | undefined;
  #killTimer: NodeJS.Timeout | undefined;

  /** @internal created by {@link ChildSupervisor}. */
  constructor(child: ChildProcess, options: SuperviseOptions, defaults: { killGraceMs: number; logger: Logger }) {
    this.name = options.name;
    this.process = child;
    this.#gracefulSignal = options.gracefulSignal ?? 'SIGTERM';
    this.#killGraceMs = options.killGraceMs ?? defaults.killGraceMs;
    this.#logger = options.logger ?? defaults.logger;
    this.#onKill = options.onKill;
    const redact = options.redact ?? ((line: string) => line);
    if (child.stderr) {
      onLines(child.stderr, (raw) => {
        const line = redact(raw);
        this.#logger.debug({ pid: child.pid, name: this.name, line }, 'child stderr');
        options.onStderrLine?.(line);
      });
    }
    this.exited = new Promise<ChildExit>((resolve) => {
      let spawnError: Error | undefined;
      const done = (exit: ChildExit): void => {
        if (this.#exit) return;
        this.#exit = exit;
        clearTimeout(this.#killTimer);
        resolve(exit);
      };
      child.once('error', (err) => {
        spawnError = err;
        // A process that never started emits no 'close' on some Node versions.
        if (child.pid === undefined) done({ name: this.name, pid: undefined, code: null, signal: null, spawnError: err });
      });
      child.once('close', (code, signal) => done({ name: this.name, pid: child.pid, code, signal, ...(spawnError && child.pid === undefined ? { spawnError } : {}) }));
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** True once the process has exited (or could not be started). */
  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  /** Sends `signal` now (no escalation); ignored once exited. */
  kill(signal: NodeJS.Signals): void {
    if (this.#exit || this.process.pid === undefined) return;
    this.process.kill(signal);
  }

  /**
   * The graceful signal now, SIGKILL after the grace; idempotent. Resolves when the process
   * has exited.
   */
  stop(): Promise<ChildExit> {
    if (this.#stopping) return this.#stopping;
    if (!this.#exit && this.process.pid !== undefined && this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill(this.#gracefulSignal);
      this.#killTimer = setTimeout(() => {
        if (this.#exit) return;
        this.#logger.warn({ pid: this.process.pid, name: this.name, killGraceMs: this.#killGraceMs, signal: this.#gracefulSignal }, 'child ignored its stop signal, killing');
        this.#onKill?.();
        this.process.kill('SIGKILL');
      }, this.#killGraceMs);
    }
    this.#stopping = this.exited;
    return this.#stopping;
  }
}

/**
 * Keeps the set of live children; `close()` stops them all and waits for their exit.
 * Emits `exit` ({@link ChildExit}) for every child that ends.
 */
export class ChildSupervisor extends EventEmitter<{ exit: [ChildExit] }> {
  readonly #logger: Logger;
  readonly #killGraceMs: number;
  readonly #children = new Set<SupervisedChild>();
  #closing: Promise<void> | undefined;

  constructor(options: ChildSupervisorOptions) {
    super();
    this.#logger = options.logger.child({ component: 'child-supervisor' });
    this.#killGraceMs = options.killGraceMs ?? 2000;
  }

  /** Children started and not yet exited. */
  get size(): number {
    return this.#children.size;
  }

  /** Pids of the children started and not yet exited. */
  get pids(): number[] {
    return [...this.#children].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  }

  /** True after `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Starts `command` with `args` (no shell) and supervises it.
   * @throws Error when the supervisor is closed.
   */
  spawn(command: string, args: readonly string[], options: SpawnChildOptions): SupervisedChild {
    if (this.closed) throw new Error('child supervisor is closed');
    const child = spawn(command, args, { stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}) });
    return this.adopt(child, options);
  }

  /**
   * Supervises a child someone else spawned (fluent-ffmpeg spawns its own). A child adopted
   * after `close()` is stopped at once.
   */
  adopt(child: ChildProcess, options: SuperviseOptions): SupervisedChild {
    const supervised = new SupervisedChild(child, options, { killGraceMs: this.#killGraceMs, logger: this.#logger });
    this.#children.add(supervised);
    this.#logger.debug({ pid: child.pid, name: options.name }, 'child started');
    void supervised.exited.then((exit) => {
      this.#children.delete(supervised);
      const level = exit.spawnError ? 'warn' : 'debug';
      this.#logger[level]({ pid: exit.pid, name: exit.name, code: exit.code, signal: exit.signal, ...(exit.spawnError ? { err: exit.spawnError.message } : {}) }, 'child exited');
      this.emit('exit', exit);
    });
    if (this.closed) void supervised.stop();
    return supervised;
  }

  /** Stops every child (graceful signal, SIGKILL after its grace) and waits until all have exited. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all([...this.#children].map((c) => c.stop())).then(() => undefined);
    return this.#closing;
  }
}

/**
 * A supervisor of its own for one run of a plain function (an ffprobe run, the audio probe,
 * frames-to-mp4, a segmenter) whose caller passed none: the child still gets its stderr
 * lines logged (at debug, under a root logger at `info`, so dropped by default), its exit
 * event and its stop policy, but nobody closes it at shutdown, so those runs are bounded by
 * their own timeouts. The composition root passes one supervisor of its own to every site
 * and closes it last (src/app.ts).
 */
export function oneRunSupervisor(): ChildSupervisor {
  return new ChildSupervisor({ logger: createLogger() });
}
