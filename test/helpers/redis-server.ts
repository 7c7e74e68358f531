/**
 * A private redis-server for one test file: started on a free port with persistence off,
 * stopped (SIGTERM, then SIGKILL) by `stop()`. A missing redis-server fails the test.
 *
 * `startRestartableRedis` gives a fault test one it can stop and start again on the same
 * port, with AOF persistence in its own directory or with none.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { freePort } from './ports.ts';

export interface TestRedis {
  /** The redis-server process (for CPU/memory accounting in benchmarks). */
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

/** Where a test redis-server runs: by default 127.0.0.1 on a free port, in this network namespace. */
export interface RedisPlacement {
  /** Bind address; default 127.0.0.1. */
  readonly host?: string;
  /** Default: a free port on 127.0.0.1. */
  readonly port?: number;
  /** Command prefix that runs redis-server elsewhere, e.g. in a network namespace (`netns.ts` `NetnsHost.exec`). */
  readonly launcher?: readonly string[];
}

export async function startRedis(placement: RedisPlacement = {}): Promise<TestRedis> {
  const host = placement.host ?? '127.0.0.1';
  const port = placement.port ?? await freePort();
  // Protected mode refuses clients from other hosts when there is no password (redis.conf `protected-mode`).
  const access = host === '127.0.0.1' ? [] : ['--protected-mode', 'no'];
  const child = await spawnRedis(port, ['--save', '', '--appendonly', 'no', ...access], host, placement.launcher);
  return {
    pid: child.pid!,
    port,
    url: `redis://${host}:${port}`,
    stop: () => stopChild(child),
  };
}

export interface RestartableRedis {
  readonly port: number;
  readonly url: string;
  /** Data directory (the AOF lives under it); removed by `destroy()`. */
  readonly dir: string;
  /** Whether the server runs with `appendonly yes`, `appendfsync everysec`. */
  readonly appendOnly: boolean;
  /** PID of the running server, undefined while stopped. */
  pid(): number | undefined;
  /** Stops the server: SIGTERM (a clean shutdown that writes the AOF) by default, or SIGKILL (a crash). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port with the same directory and persistence. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/**
 * A redis-server that can be stopped and started again on the same port: with
 * `appendOnly` its data survives a restart (AOF in its own temporary directory), without it
 * a restart starts empty (as a Redis run without persistence does).
 */
export async function startRestartableRedis(options: { appendOnly: boolean }): Promise<RestartableRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mg-redis-'));
  const persistence = options.appendOnly
    ? ['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '']
    : ['--appendonly', 'no', '--save', ''];
  const args = ['--dir', dir, ...persistence];
  let child: ChildProcess | undefined = await spawnRedis(port, args);
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running) return;
    if (signal === 'SIGKILL') {
      const exited = new Promise((r) => running.once('exit', r));
      if (running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
      await exited;
    } else {
      await stopChild(running);
    }
  };
  return {
    port, url: `redis://127.0.0.1:${port}`, dir, appendOnly: options.appendOnly,
    pid: () => child?.pid,
    stop,
    start: async () => {
      if (child) throw new Error('redis-server is already running');
      child = await spawnRedis(port, args);
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function spawnRedis(port: number, extraArgs: readonly string[], host = '127.0.0.1', launcher: readonly string[] = []): Promise<ChildProcess> {
  const command = [...launcher, 'redis-server', '--port', String(port), '--bind', host, ...extraArgs, '--loglevel', 'warning'];
  const child: ChildProcess = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}); install it with: apt-get install -y redis-server`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${stderr}`)));
  });
  spawnError.catch(() => undefined);
  await Promise.race([waitForPort(port, 10_000, host), spawnError]);
  return child;
}

export function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = createConnection({ port, host });
      socket.once('connect', () => { socket.destroy(); resolve(); });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${host}:${port} did not open within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

/**
 * `INFO commandstats` of the Redis at `url` (through redis-cli), as calls per command, e.g.
 * `{ evalsha: 120, hset: 4 }` (lower-case command names; `cmdstat_` dropped).
 */
export async function commandStats(url: string): Promise<Record<string, number>> {
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile('redis-cli', ['-u', url, 'INFO', 'commandstats'], (err, out) => (err ? reject(err) : resolve({ stdout: out })));
  });
  const calls: Record<string, number> = {};
  for (const m of stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

/** The calls per command between two {@link commandStats} readings (commands not called left out). */
export function commandStatsDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0);
    if (d > 0) delta[name] = d;
  }
  return delta;
}
