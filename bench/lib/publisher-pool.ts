/**
 * The benchmark side of bench/lib/publisher-pool-main.ts: one child process that publishes
 * many RTMP streams of one FLV file in real time (see there for the method and why).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** One stream of the pool; times are this process's performance.now(). */
export interface PoolStream {
  readonly name: string;
  /** When start() was called. */
  readonly requestedMs: number;
  /** When the server accepted the publish (NetStream.Publish.Start) and the stream's clock started. */
  startedMs?: number;
  /** When the stream stopped (connection closed or failed), with why. */
  exitedMs?: number;
  error?: string;
}

/** Send-lag of every tag written so far (written − due by its DTS), over all streams, ms. */
export interface PoolStats {
  tags: number;
  bytes: number;
  lagP50Ms: number | undefined;
  lagP99Ms: number | undefined;
  lagMaxMs: number;
  /** Tags written more than 100 ms after they were due. */
  over100Ms: number;
  /** Largest socket write buffer seen (bytes the server had not yet taken). */
  maxBufferedBytes: number;
  streams: number;
}

export interface PublisherPool {
  readonly pid: number;
  /** PTS of the file's first video keyframe, ms (what seq 0 of every stream should start with). */
  readonly firstKeyframePtsMs: number;
  start(name: string, url: string): PoolStream;
  stats(): Promise<PoolStats>;
  /** Closes every stream and ends the process (idempotent). */
  close(): Promise<void>;
}

/**
 * Starts the pool process on `flvPath` and waits until it has read the file.
 * @throws when the process cannot start or exits before it is ready.
 */
export async function startPublisherPool(flvPath: string): Promise<PublisherPool> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'publisher-pool-main.ts'), flvPath],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const streams = new Map<string, PoolStream>();
  let statsWaiter: ((s: PoolStats) => void) | undefined;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const ready = new Promise<{ firstKeyframePtsMs: number }>((resolve, reject) => {
    child.once('error', reject);
    void exited.then(() => reject(new Error('publisher pool exited before it was ready')));
    child.on('message', (m: { ev: string; name?: string; epochMs?: number; error?: string; firstKeyframePtsMs?: number } & PoolStats) => {
      const at = m.epochMs === undefined ? undefined : m.epochMs - performance.timeOrigin;
      if (m.ev === 'ready') resolve({ firstKeyframePtsMs: m.firstKeyframePtsMs ?? 0 });
      else if (m.ev === 'started') { const s = streams.get(m.name!); if (s) s.startedMs = at; }
      else if (m.ev === 'exited') { const s = streams.get(m.name!); if (s) { s.exitedMs = at; if (m.error !== undefined) s.error = m.error; } }
      else if (m.ev === 'stats') { statsWaiter?.(m); statsWaiter = undefined; }
    });
  });
  const info = await ready;
  let closed: Promise<void> | undefined;
  return {
    pid: child.pid!,
    firstKeyframePtsMs: info.firstKeyframePtsMs,
    start: (name, url) => {
      const s: PoolStream = { name, requestedMs: performance.now() };
      streams.set(name, s);
      child.send({ op: 'start', name, url });
      return s;
    },
    stats: () => new Promise<PoolStats>((resolve) => { statsWaiter = resolve; child.send({ op: 'stats' }); }),
    close: () => {
      closed ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          try { child.send({ op: 'stop' }); } catch { child.kill('SIGKILL'); }
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        }
      })();
      return closed;
    },
  };
}
