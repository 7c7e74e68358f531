/**
 * Gateway main-thread CPU per media playlist request, per code tree (`--roots before,after`,
 * alternated `--rounds` times): one gateway on its own redis-server, `--streams` live
 * streams of 6 listed source segments each written to the segment index directly (no
 * publisher, no transcoding: nothing else runs on the gateway), then `--requests` GETs of
 * their `source.m3u8` from this process, `--concurrency` at a time over keep-alive
 * connections. The gateway's main thread CPU (/proc) over the requests, divided by their
 * number, is the cost of one poll. Nothing changes during the requests, so a tree with the
 * playlist cache answers all but the first of each stream from it (its cost of a hit); a
 * tree without reads Redis every time. `--change-every K` lists one more segment of every
 * stream after each K requests per stream (a poll that follows a change is a miss then).
 *
 * Usage: node --import tsx bench/playlist-poll.ts --roots /work/main,. [--rounds 2]
 *   [--streams 32] [--requests 8000] [--concurrency 8] [--change-every 0] [--out file.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { startRedis } from '../test/helpers/redis-server.ts';
import { testDeployment, waitForHttp } from '../test/helpers/gateway-process.ts';
import { threadCpuSeconds } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { RedisConnections } from '../src/redis/connections.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { RedisSegmentIndex } from '../src/hls/segment-index-store.ts';
import { silentLogger } from '../src/log/logger.ts';
import type { SegmentOutcome } from '../src/domain/segment.ts';

const { values, out } = benchArgs(['roots', 'rounds', 'streams', 'requests', 'concurrency', 'change-every']);
const roots = (values.roots ?? '.').split(',').map((r) => resolve(r));
const rounds = Number(values.rounds ?? 1);
const streams = Number(values.streams ?? 32);
const requests = Number(values.requests ?? 8000);
const concurrency = Number(values.concurrency ?? 8);
const changeEvery = Number(values['change-every'] ?? 0);

interface Run { root: string; round: number; requests: number; mainMsPerRequest: number; wallS: number; redisReadsPerRequest?: number }

const ok = (seq: number): SegmentOutcome => ({ status: 'ok', seq, segment: { rendition: 'source', key: `k/${seq}.ts`, width: 640, height: 360, frames: 48, bytes: 130_000, durationMs: 2000, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24 } });

async function runOnce(root: string, round: number): Promise<Run> {
  const redis = await startRedis();
  const dep = await testDeployment(redis.url, { MEDIAGATE_LADDER: '[]', MEDIAGATE_LOG_LEVEL: 'warn' });
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, 'cmd', 'gateway.ts')], {
    cwd: root, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...dep.env }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const connections = new RedisConnections({ url: redis.url, logger: silentLogger(), namePrefix: 'bench' });
  const index = new RedisSegmentIndex({ redis: connections.open('state'), keys: new RedisKeys('mg'), retainSegments: 32, heartbeatTtlMs: 3_600_000 });
  const agent = new Agent({ connections: concurrency, pipelining: 1 });
  try {
    await waitForHttp(`${dep.httpUrl}/healthz`, { exited: exited.then(() => ({ code: null, signal: null })), lines: [], child, stop: async () => undefined } as never);
    const next = new Map<string, number>();
    for (let s = 0; s < streams; s++) {
      const m = `s${s}`;
      await index.startStream(m, 'sess', Date.now());
      for (let seq = 0; seq < 6; seq++) await index.record(m, 'sess', ok(seq));
      next.set(m, 6);
    }
    const get = async (i: number): Promise<void> => {
      const res = await fetch(`${dep.httpUrl}/stream/s${i % streams}/source.m3u8`, { dispatcher: agent } as RequestInit);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`playlist answered ${res.status}`);
    };
    for (let i = 0; i < streams * 4; i++) await get(i); // warm-up: JIT, connections, first reads
    const pid = child.pid!;
    const cpu0 = threadCpuSeconds(pid);
    const t0 = performance.now();
    let issued = 0;
    const worker = async (): Promise<void> => {
      while (issued < requests) {
        const i = issued++;
        if (changeEvery > 0 && i > 0 && i % (changeEvery * streams) === 0) {
          for (const [m, seq] of next) { await index.record(m, 'sess', ok(seq)); next.set(m, seq + 1); }
        }
        await get(i);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const wallS = (performance.now() - t0) / 1000;
    const cpuMs = (threadCpuSeconds(pid) - cpu0) * 1000;
    return { root, round, requests, mainMsPerRequest: cpuMs / requests, wallS };
  } finally {
    await agent.close();
    await connections.close();
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    await redis.stop();
  }
}

const machine = await machineInfo();
printMachine(machine);
const runs: Run[] = [];
for (let round = 0; round < rounds; round++) {
  for (const root of round % 2 === 0 ? roots : [...roots].reverse()) {
    const run = await runOnce(root, round);
    runs.push(run);
    process.stdout.write(`${root} round ${round}: main thread ${fmt(run.mainMsPerRequest, 3)} ms per playlist request (${run.requests} in ${fmt(run.wallS, 1)} s)\n`);
  }
}
printTable(`Gateway main-thread CPU per media playlist request, ${streams} streams, ${requests} requests, ${concurrency} at a time, change every ${changeEvery || 'never'}`,
  ['root', 'round', 'main thread ms / request', 'requests / s'],
  runs.map((r) => [r.root, r.round, fmt(r.mainMsPerRequest, 3), fmt(r.requests / r.wallS, 0)]));
writeResult('playlist-poll', machine, { streams, requests, concurrency, changeEvery, runs }, out);
