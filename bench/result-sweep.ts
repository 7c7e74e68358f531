/**
 * CPU of one AI results expiry run (recording/recording-sweeper.ts `#expireResults`) with many
 * results kept, through mediagate's own classes: a real redis-server (test/helpers/redis-server.ts)
 * and the filesystem results store in its flat layout (as the gateway opens it), holding
 * `--kept` results (default 20,000) within the TTL plus `--expiring` (default 10) past it
 * before each run. Modes, interleaved run by run:
 * - `listing`: the sweep without the results index, which lists the store and reads every
 *   result's modification time on each run (how every run worked before the index);
 * - `index`: the sweep with the index between two full listings (its steady state: one range
 *   read, the deletes, one ZREM);
 * - `index+listing`: the run with the index that also does the full listing due every half TTL.
 * CPU is the node process's (every thread: the stat and unlink calls run on libuv's pool) and
 * redis-server's, from /proc schedstat; figures are medians over `--runs` runs, ms per run.
 * Also prints the index's Redis memory per result (MEMORY USAGE).
 *
 * Usage: node --import tsx bench/result-sweep.ts [--kept 20000] [--expiring 10] [--runs 5] [--out file.json]
 */
import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis } from '../test/helpers/redis-server.ts';
import { createRedis } from '../src/redis/connections.ts';
import { createLogger } from '../src/log/logger.ts';
import { FsObjectStore } from '../src/storage/fs-store.ts';
import { RecordingStore } from '../src/recording/recording-store.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { RecordingSweeper } from '../src/recording/recording-sweeper.ts';
import { RedisResultIndex } from '../src/ai/result-index-store.ts';
import { cpuSecondsPrecise } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { median } from './lib/stats.ts';

const { quick, out, values } = benchArgs(['kept', 'expiring', 'runs']);
const kept = Number(values.kept ?? (quick ? 2000 : 20_000));
const expiring = Number(values.expiring ?? 10);
const runs = Number(values.runs ?? (quick ? 3 : 5));
const TTL_MS = 86_400_000;

const machine = await machineInfo();
printMachine(machine);
const redis = await startRedis();
const client = createRedis({ url: redis.url, logger: createLogger({ level: 'silent' }), name: 'bench' });
const dir = mkdtempSync(join(tmpdir(), 'mg-bench-result-sweep-'));
try {
  const keys = new RedisKeys('bench');
  const root = join(dir, '.results');
  const results = new FsObjectStore(root, { layout: 'flat' });
  const index = new RedisResultIndex({ redis: client, keys });
  const store = new RecordingStore({ redis: client, keys });
  const sweeper = (withIndex: boolean): RecordingSweeper => new RecordingSweeper({
    store, results, ...(withIndex ? { resultIndex: index } : {}),
    index: { getStream: async () => undefined, renditionStats: async () => ({ frontier: 0 }), sessionComplete: async () => true },
    objects: { putBytes: async () => undefined, deleteKeys: async () => undefined, deletePrefix: async () => undefined },
    events: { emit: () => undefined }, logger: createLogger({ level: 'silent' }), publicUrl: 'http://gw',
    sweepIntervalMs: 5000, windowSegments: 6, marginSegments: 6, endedKeepMs: 600_000, recordingKeepMs: 0, resultTtlMs: TTL_MS, segmentTargetMs: 2000,
  });
  const png = Buffer.alloc(8 * 1024, 1);
  let next = 0;
  const requestID = (): string => `ai-${(next++).toString(16).padStart(24, '0')}`;
  const nowMs = Date.now();
  for (let i = 0; i < kept; i += 100) {
    const batch = Array.from({ length: Math.min(100, kept - i) }, () => `${requestID()}/0.png`);
    await Promise.all(batch.map((key) => results.putBytes(key, png, { newKey: true })));
    await index.add(batch, nowMs);
  }
  const indexBytesPerResult = Number(await client.call('MEMORY', 'USAGE', 'bench:ai:results', 'SAMPLES', '0')) / kept;
  /** Stores `expiring` results past the TTL: files dated so, and noted so in the index when `noted`. */
  const addExpiring = async (noted: boolean): Promise<void> => {
    const batch = Array.from({ length: expiring }, () => `${requestID()}/0.png`);
    const pastMs = Date.now() - TTL_MS - 60_000;
    for (const key of batch) {
      await results.putBytes(key, png, { newKey: true });
      utimesSync(join(root, key.replace('/', '+')), pastMs / 1000, pastMs / 1000);
    }
    if (noted) await index.add(batch, pastMs);
  };
  const measure = async (mode: 'listing' | 'index' | 'index+listing'): Promise<{ nodeMs: number; redisMs: number }> => {
    await addExpiring(mode !== 'listing');
    await client.del('bench:rec:lock:ai-results', 'bench:rec:lock:ai-results-listing');
    // `index`: a listing ran within this half TTL (its lock is held).
    if (mode === 'index') await client.set('bench:rec:lock:ai-results-listing', '1', 'PX', TTL_MS);
    const s = sweeper(mode !== 'listing');
    const node0 = cpuSecondsPrecise(process.pid);
    const redis0 = cpuSecondsPrecise(redis.pid);
    await s.sweep({ force: true });
    const nodeMs = (cpuSecondsPrecise(process.pid) - node0) * 1000;
    const redisMs = (cpuSecondsPrecise(redis.pid) - redis0) * 1000;
    const left = readdirSync(root).length;
    if (left !== kept) throw new Error(`${mode}: ${left} results left, expected ${kept}`);
    return { nodeMs, redisMs };
  };
  // Warm-up, not counted.
  await measure('index+listing');
  const modes = ['listing', 'index', 'index+listing'] as const;
  const samples = new Map(modes.map((m) => [m, [] as { nodeMs: number; redisMs: number }[]]));
  for (let r = 0; r < runs; r++) for (const m of modes) samples.get(m)!.push(await measure(m));
  const rows = modes.map((m) => {
    const s = samples.get(m)!;
    return [m, kept, expiring, fmt(median(s.map((x) => x.nodeMs)), 1), fmt(median(s.map((x) => x.redisMs)), 2)];
  });
  printTable(`AI results expiry run, ${kept} kept, ${expiring} expiring per run, median of ${runs}`, ['mode', 'kept', 'expiring', 'node CPU ms/run', 'redis CPU ms/run'], rows);
  console.log(`index: ${fmt(indexBytesPerResult, 0)} bytes of Redis memory per result (MEMORY USAGE of ${'<p>'}:ai:results / kept)`);
  writeResult('result-sweep', machine, { kept, expiring, runs, indexBytesPerResult, samples: Object.fromEntries(samples) }, out);
} finally {
  client.disconnect();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
