/**
 * Runs mediagate entry points (cmd/gateway.ts, cmd/transcoder.ts) as real child processes
 * with their own ports, Redis key prefix and data directory, and collects their log lines.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';
import { startRedis, stopChild, type TestRedis } from './redis-server.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface MediagateProcess {
  readonly child: ChildProcess;
  /** Every line written to stdout/stderr so far. */
  readonly lines: string[];
  /** Resolves with the exit code/signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/**
 * @param nodeArgs extra Node.js flags (e.g. `--cpu-prof`), placed before the entry point.
 * @param launcher command prefix that runs the process elsewhere, e.g. in a network namespace
 *   (`[ip, netns, exec, <ns>]`, netns.ts); the pid is still the node process's (`ip netns exec` execs it).
 * @param root the checkout to run (default this one; a benchmark may compare another, bench/ai-compare.ts)
 */
export function spawnMediagate(entry: 'gateway' | 'transcoder' | 'ai-worker', env: Record<string, string>, nodeArgs: readonly string[] = [], launcher: readonly string[] = [], root: string = repo): MediagateProcess {
  const command = [...launcher, process.execPath, ...nodeArgs, '--import', 'tsx', join(root, 'cmd', `${entry}.ts`)];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (buf: Buffer): void => { for (const l of buf.toString().split('\n')) if (l) lines.push(l); };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  return { child, lines, exited, stop: () => stopChild(child, 20_000) };
}

export interface TestDeployment {
  readonly httpPort: number;
  readonly rtmpPort: number;
  readonly httpUrl: string;
  readonly dataDir: string;
  /** Environment shared by gateways and transcoders of this deployment. */
  readonly env: Record<string, string>;
  cleanup(): void;
}

/** Ports, data dir and env for one gateway deployment on a given Redis. */
export async function testDeployment(redisUrl: string, extra: Record<string, string> = {}): Promise<TestDeployment> {
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'mg-e2e-'));
  const env = {
    MEDIAGATE_HTTP_PORT: String(httpPort),
    MEDIAGATE_RTMP_PORT: String(rtmpPort),
    MEDIAGATE_REDIS_URL: redisUrl,
    MEDIAGATE_STORAGE_DIR: join(dataDir, 'objects'),
    MEDIAGATE_WORK_DIR: join(dataDir, 'work'),
    MEDIAGATE_LOG_LEVEL: 'debug',
    ...extra,
  };
  return {
    httpPort, rtmpPort, httpUrl: `http://127.0.0.1:${httpPort}`, dataDir, env,
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** A gateway process of its own deployment, up (its /healthz answered 200). */
export interface RunningGateway {
  readonly deployment: TestDeployment;
  readonly proc: MediagateProcess;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `rtmp://127.0.0.1:<rtmp port>/live/<key>`: where a publisher (or another server's restream) sends `key`. */
  rtmpUrl(key: string): string;
  /** Stops the process and removes the deployment's data dir. */
  stop(): Promise<void>;
}

/**
 * Starts `cmd/gateway.ts` (embedded transcoder) as a child process on `redisUrl` with free ports,
 * its own data dir and `extra` settings (a second gateway on the same Redis needs its own
 * `MEDIAGATE_REDIS_KEY_PREFIX`), and waits for its /healthz.
 * @throws when it exits or does not answer within 30 s (with its last log lines)
 */
export async function startGateway(redisUrl: string, extra: Record<string, string> = {}): Promise<RunningGateway> {
  const deployment = await testDeployment(redisUrl, extra);
  const proc = spawnMediagate('gateway', deployment.env);
  try {
    await waitForHttp(`${deployment.httpUrl}/healthz`, proc);
  } catch (err) {
    await proc.stop();
    deployment.cleanup();
    throw err;
  }
  return {
    deployment, proc, httpUrl: deployment.httpUrl,
    rtmpUrl: (key) => `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${key}`,
    stop: async () => {
      await proc.stop();
      deployment.cleanup();
    },
  };
}

/** Polls `url` until it answers 200 or the process exits. */
export async function waitForHttp(url: string, proc: MediagateProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`process exited before ${url} answered:\n${proc.lines.slice(-20).join('\n')}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${proc.lines.slice(-20).join('\n')}`);
}

/** Publishes `file` in real time (-re) over RTMP with stream copy; resolves when ffmpeg exits. */
export function publish(file: string, rtmpUrl: string, extraInput: string[] = []): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', ...extraInput, '-i', file, '-c', 'copy', '-f', 'flv', rtmpUrl], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((res, rej) => {
    child.once('error', (err) => rej(new Error(`cannot run ffmpeg (${err.message}); install it with apt-get install -y ffmpeg`)));
    child.once('exit', (code) => res(code));
  });
  return { child, exited, stderr: () => stderr };
}

/**
 * SIGKILLs a mediagate process and every process under it (its ffmpeg), as a machine or
 * container crash would, and waits for it to exit.
 */
export async function crashProcessTree(proc: MediagateProcess): Promise<void> {
  const descendants: number[] = [];
  const walk = (parent: number): void => {
    for (const child of childPids(parent)) {
      descendants.push(child);
      walk(child);
    }
  };
  walk(proc.child.pid!);
  process.kill(proc.child.pid!, 'SIGKILL');
  for (const d of descendants) {
    try { process.kill(d, 'SIGKILL'); } catch { /* already gone */ }
  }
  await proc.exited;
}

/** Pids of the direct children of `pid` (e.g. the ffmpeg processes a gateway about to be killed started). */
export function childPids(pid: number): number[] {
  return childProcesses(pid).map((l) => Number(l.split(' ')[0]));
}

/** The direct children of `pid` as `<pid> <command name>`, e.g. `1234 ffmpeg` (ps exits 1 when there is none: []). */
export function childProcesses(pid: number): string[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(pid)]).toString().split('\n').map((l) => l.trim().replace(/\s+/, ' ')).filter((l) => Number(l.split(' ')[0]) > 0);
  } catch {
    return [];
  }
}

/**
 * Polls a media playlist every 250 ms until it lists at least `count` segments.
 * @throws Error with the process's last 20 log lines when `timeoutMs` passes first
 */
export async function waitForListedSegments(playlistUrl: string, count: number, proc: MediagateProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let listed = 0;
  while (listed < count) {
    if (Date.now() > deadline) throw new Error(`no segments listed:\n${proc.lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
    const res = await fetch(playlistUrl);
    if (res.status === 200) listed = (await res.text()).split('\n').filter((l) => l.endsWith('.ts')).length;
  }
}

/** Two gateways' deployments on one real redis-server and one object store dir, as a scaled-out deployment has. */
export interface GatewayPair {
  readonly redis: TestRedis;
  readonly first: TestDeployment;
  readonly second: TestDeployment;
  /** Processes to stop at close(). */
  readonly processes: MediagateProcess[];
  /** Pids a killed gateway left behind (its ffmpeg children), SIGKILLed at close(). */
  readonly orphans: number[];
  close(): Promise<void>;
}

/** Starts Redis and two deployments with `env` (the second shares the first's `MEDIAGATE_STORAGE_DIR`). */
export async function startGatewayPair(env: Record<string, string>): Promise<GatewayPair> {
  const redis = await startRedis();
  const first = await testDeployment(redis.url, env);
  const second = await testDeployment(redis.url, { ...env, MEDIAGATE_STORAGE_DIR: first.env['MEDIAGATE_STORAGE_DIR']! });
  const processes: MediagateProcess[] = [];
  const orphans: number[] = [];
  return {
    redis, first, second, processes, orphans,
    close: async () => {
      await Promise.all(processes.map((p) => p.stop()));
      for (const pid of orphans) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      await redis.stop();
      first.cleanup();
      second.cleanup();
    },
  };
}

/**
 * Polls `check` every 20 ms until it is true.
 * @throws Error with `what()` as its message after `timeoutMs`
 */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The JSON log lines of a mediagate process with the given message, parsed. */
export function logLines(proc: MediagateProcess, msg: string): Record<string, unknown>[] {
  return proc.lines.filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}
