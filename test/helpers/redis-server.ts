/**
 * A private redis-server for one test file: started on a free port with persistence off,
 * stopped (SIGTERM, then SIGKILL) by `stop()`. A missing redis-server fails the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './ports.ts';

export interface TestRedis {
  /** The redis-server process (for CPU/memory accounting in benchmarks). */
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}); install it with: apt-get install -y redis-server`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${stderr}`)));
  });
  await Promise.race([waitForPort(port, 10_000), spawnError]);
  return {
    pid: child.pid!,
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => stopChild(child),
  };
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
