/**
 * Runs ffmpeg processes through fluent-ffmpeg (the project's chosen command builder) behind a
 * small interface, so fluent-ffmpeg could be replaced inside this folder alone.
 *
 * How the invocation is expressed in fluent-ffmpeg: `ffmpeg(input)`,
 * `.inputOptions(...opts)`, `.complexFilter(graph)`, then per output
 * `.output(path).outputOptions(...opts)`. Options always go in the varargs form, because
 * the array form (and a single string) splits any element containing exactly one space
 * into two arguments (fluent-ffmpeg 2.1.3 `lib/options/custom.js`: `-var_stream_map
 * "v:0,a:0 v:1,a:1"` would reach ffmpeg as two arguments). No `progress` listener is attached (it would run
 * ffprobe on the input first), and fluent's own `timeout` option is not used (it kills with
 * SIGKILL); the process fluent-ffmpeg spawns is adopted by a child supervisor
 * (child-supervisor.ts) as soon as it starts, which logs its stderr lines and stops it with
 * SIGTERM, then SIGKILL after the kill grace.
 */
import type { ChildProcess } from 'node:child_process';
import ffmpeg from 'fluent-ffmpeg';
import type { Logger } from '../log/logger.ts';
import { ChildSupervisor, type SupervisedChild } from './child-supervisor.ts';
import type { FfmpegInvocation } from './invocation.ts';

/** Options of one run. */
export interface FfmpegRunOptions {
  /** Wall-time limit in milliseconds; on expiry the process gets SIGTERM, then SIGKILL after the kill grace. */
  readonly timeoutMs: number;
  /** Aborting stops the process the same way as a timeout. */
  readonly signal?: AbortSignal;
}

/** Result of a successful run. */
export interface FfmpegRunResult {
  /** The last lines ffmpeg wrote to stderr (at most the runner's `stderrLines`). */
  readonly stderrTail: string;
}

/** Why a run failed: non-zero exit, killed by a signal we did not send, timeout, abort, runner closed, or ffmpeg could not be started. */
export type FfmpegFailureReason = 'exit' | 'signal' | 'timeout' | 'aborted' | 'closed' | 'spawn';

/** A failed ffmpeg run. */
export class FfmpegRunError extends Error {
  readonly reason: FfmpegFailureReason;
  /** Exit code when ffmpeg exited by itself with a non-zero code. */
  readonly exitCode: number | undefined;
  /** The last stderr lines (may be empty). */
  readonly stderrTail: string;

  constructor(reason: FfmpegFailureReason, message: string, stderrTail: string, exitCode?: number, cause?: unknown) {
    super(stderrTail === '' ? message : `${message}: ${stderrTail}`, cause === undefined ? undefined : { cause });
    this.name = 'FfmpegRunError';
    this.reason = reason;
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** What a user of ffmpeg needs: run one invocation; stop everything on close. {@link FfmpegRunner} implements it; tests may pass fakes. */
export interface FfmpegExecutor {
  /**
   * Runs one ffmpeg process and settles only after it has exited (so the caller may delete
   * its output files safely).
   * @throws FfmpegRunError on non-zero exit, signal, timeout, abort, or after `close()`.
   */
  run(invocation: FfmpegInvocation, options: FfmpegRunOptions): Promise<FfmpegRunResult>;
  /** Stops every running process (SIGTERM, SIGKILL after the grace) and waits for them to exit. Idempotent. */
  close(): Promise<void>;
}

export interface FfmpegRunnerOptions {
  logger: Logger;
  /** Delay between SIGTERM and SIGKILL when stopping a process, ms; default 2000. */
  killGraceMs?: number;
  /** stderr lines kept for error messages; default 20. */
  stderrLines?: number;
  /** Supervisor that adopts each ffmpeg process; default one owned (and closed) by this runner. */
  supervisor?: ChildSupervisor;
}

interface LiveProcess {
  readonly command: ffmpeg.FfmpegCommand;
  started: boolean;
  settled: boolean;
  /** Set when we decided to stop the process; the run rejects with this reason. */
  stopReason: FfmpegFailureReason | undefined;
  /** The spawned ffmpeg under the supervisor, from fluent's `start` on. */
  child: SupervisedChild | undefined;
  readonly done: Promise<void>;
}

/** Builds the fluent-ffmpeg command for an invocation (exported so tests can compare its argv with the pure form). */
export function toFluentCommand(invocation: FfmpegInvocation, stderrLines = 20): ffmpeg.FfmpegCommand {
  const command = ffmpeg({ stdoutLines: stderrLines });
  command.input(invocation.inputPath);
  addOptions(invocation.inputOptions, (...o) => command.inputOptions(...o));
  for (const input of invocation.extraInputs ?? []) {
    // fluent-ffmpeg applies inputOptions to the input added last.
    command.input(input.path);
    addOptions(input.options, (...o) => command.inputOptions(...o));
  }
  if (invocation.filterComplex !== '') command.complexFilter(invocation.filterComplex);
  for (const output of invocation.outputs) {
    command.output(output.path);
    addOptions(output.options, (...o) => command.outputOptions(...o));
  }
  return command;
}

/** Adds options in fluent's varargs form, which never splits values (a lone option is passed alone only if it has no space). */
function addOptions(options: readonly string[], add: (...options: string[]) => unknown): void {
  if (options.length === 0) return;
  if (options.length === 1 && options[0]!.split(' ').length === 2) {
    throw new Error(`fluent-ffmpeg would split the lone option "${options[0]}"`);
  }
  add(...options);
}

/** The exact argv fluent-ffmpeg will pass to ffmpeg for an invocation (before its `-strict experimental` pass, which only touches `-acodec`/`-vcodec`). */
export function fluentArgs(invocation: FfmpegInvocation): string[] {
  return toFluentCommand(invocation)._getArguments();
}

/**
 * {@link FfmpegExecutor} on fluent-ffmpeg 2.1.3. Keeps a set of live processes; `close()`
 * stops them all, so no ffmpeg outlives the runner. ffmpeg is found by fluent-ffmpeg
 * (`FFMPEG_PATH`, else `PATH`); its first run also spawns `ffmpeg -formats`/`-encoders`
 * once per Node process for its capability check.
 */
export class FfmpegRunner implements FfmpegExecutor {
  readonly #logger: Logger;
  readonly #killGraceMs: number;
  readonly #stderrLines: number;
  readonly #live = new Set<LiveProcess>();
  readonly #supervisor: ChildSupervisor;
  readonly #ownsSupervisor: boolean;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: FfmpegRunnerOptions) {
    this.#logger = options.logger.child({ component: 'ffmpeg-runner' });
    this.#killGraceMs = options.killGraceMs ?? 2000;
    this.#stderrLines = options.stderrLines ?? 20;
    this.#ownsSupervisor = options.supervisor === undefined;
    this.#supervisor = options.supervisor ?? new ChildSupervisor({ logger: this.#logger, killGraceMs: this.#killGraceMs });
  }

  /** Number of ffmpeg processes currently running or starting. */
  get liveCount(): number {
    return this.#live.size;
  }

  run(invocation: FfmpegInvocation, options: FfmpegRunOptions): Promise<FfmpegRunResult> {
    if (this.#closed) return Promise.reject(new FfmpegRunError('closed', 'ffmpeg runner is closed', ''));
    if (options.signal?.aborted) return Promise.reject(new FfmpegRunError('aborted', 'ffmpeg run aborted before start', ''));

    const command = toFluentCommand(invocation, this.#stderrLines);
    let resolveDone!: () => void;
    const live: LiveProcess = {
      command, started: false, settled: false, stopReason: undefined, child: undefined,
      done: new Promise<void>((r) => { resolveDone = r; }),
    };
    this.#live.add(live);

    return new Promise<FfmpegRunResult>((resolve, reject) => {
      const timer = setTimeout(() => this.#stop(live, 'timeout'), options.timeoutMs);
      const onAbort = (): void => this.#stop(live, 'aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });

      const finish = (): void => {
        live.settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#live.delete(live);
        resolveDone();
      };

      command.on('start', () => {
        live.started = true;
        // fluent-ffmpeg 2.1.3 sets `ffmpegProc` just before emitting `start` (lib/processor.js).
        const proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
        if (proc) live.child = this.#supervisor.adopt(proc, { name: 'ffmpeg', killGraceMs: this.#killGraceMs, logger: this.#logger });
        // A stop requested while fluent-ffmpeg was still preparing: apply it now.
        if (live.stopReason !== undefined) this.#signal(live);
      });
      command.on('end', (_stdout: string | null, stderr: string | null) => {
        finish();
        const tail = (stderr ?? '').trim();
        if (live.stopReason !== undefined) reject(stopError(live.stopReason, options.timeoutMs, tail));
        else resolve({ stderrTail: tail });
      });
      command.on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
        finish();
        const tail = (stderr ?? '').trim();
        if (live.stopReason !== undefined) {
          reject(stopError(live.stopReason, options.timeoutMs, tail));
          return;
        }
        const exit = /ffmpeg exited with code (\d+)/.exec(err.message);
        if (exit) reject(new FfmpegRunError('exit', `ffmpeg exited with code ${exit[1]}`, tail, Number(exit[1])));
        else if (/killed with signal/.test(err.message)) reject(new FfmpegRunError('signal', err.message, tail));
        else reject(new FfmpegRunError('spawn', `ffmpeg could not be run: ${err.message}`, tail, undefined, err));
      });
      command.run();
    });
  }

  /** Asks a process to stop: SIGTERM now (or as soon as it has started), SIGKILL after the grace. */
  #stop(live: LiveProcess, reason: FfmpegFailureReason): void {
    if (live.settled || live.stopReason !== undefined) return;
    live.stopReason = reason;
    this.#logger.warn({ reason }, 'stopping ffmpeg');
    if (live.started) this.#signal(live);
  }

  #signal(live: LiveProcess): void {
    if (live.child) void live.child.stop();
    else live.command.kill('SIGTERM'); // not reached with fluent-ffmpeg 2.1.3, which always sets ffmpegProc
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const waits = [...this.#live].map((live) => {
      this.#stop(live, 'closed');
      return live.done;
    });
    this.#closing = Promise.all(waits).then(async () => {
      if (this.#ownsSupervisor) await this.#supervisor.close();
    });
    return this.#closing;
  }
}

function stopError(reason: FfmpegFailureReason, timeoutMs: number, tail: string): FfmpegRunError {
  const message = reason === 'timeout' ? `ffmpeg timed out after ${timeoutMs} ms`
    : reason === 'aborted' ? 'ffmpeg run aborted' : 'ffmpeg stopped: runner closed';
  return new FfmpegRunError(reason, message, tail);
}
