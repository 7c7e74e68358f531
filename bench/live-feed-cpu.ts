/**
 * The gateway's side of a live transcoding session's feed alone (issue 14 goal 3): an
 * RtmpSegmenter (src/ingest/rtmp-segmenter.ts) fed the FLV tags of the 1080p30 bench input,
 * its chunks handed to a LiveFeedWriter (src/transcode/live-feed-store.ts) as ingest does
 * (rtmp-publish.ts), the feed written to a real redis-server. No sockets, node-media-server,
 * transcoder or HTTP: a change to the muxer → feed → Redis path is judged with far less noise
 * than bench/throughput.ts `--modes live` gives on a shared machine, where the gateway's idle
 * timers over a wall time that varies with the load outweigh it.
 *
 * Per run: the input's tags in `--slice-ms` slices of media with a turn of the event loop
 * between them (100 ms: about one 64 KiB socket read of the ~6.4 Mbit/s input, as a publisher
 * faster than real time is read), a settlement per segment as ingest writes it, then the end and
 * `flushed()`. Measured: CPU of this process (all threads) and of redis-server (schedstat ns),
 * in ms per media second, and Redis's commands (`INFO commandstats`) per run. Trees alternate
 * (`--roots a,b`, `--rounds` times, the order reversed every other round).
 *
 * Usage: node --import tsx bench/live-feed-cpu.ts [--seconds 12] [--slice-ms 100] [--roots dirA,dirB] [--rounds 5] [--out file.json]
 * A root is a checkout of mediagate (its rtmp-segmenter.ts and live-feed-store.ts are loaded); default: this checkout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFlvTags } from '../test/helpers/flv.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { silentLogger } from '../src/log/logger.ts';
import { createRedis } from '../src/redis/connections.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import type { FlvTagReader } from '../src/ingest/rtmp/packet-tap.ts';
import { asFlv, source1080p30 } from './lib/inputs.ts';
import { cpuSecondsPrecise } from './lib/procs.ts';
import { median } from './lib/stats.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';

const { out, values } = benchArgs(['seconds', 'slice-ms', 'roots', 'rounds']);
const mediaS = Number(values.seconds ?? 12);
const sliceMs = Number(values['slice-ms'] ?? 100);
const rounds = Number(values.rounds ?? 5);
const roots = (values.roots ? values.roots.split(',') : [resolve(import.meta.dirname, '..')]).map((r) => resolve(r));
if (!(mediaS >= 4 && mediaS <= 60) || !(sliceMs > 0) || !(rounds >= 1)) throw new Error('--seconds 4..60, --slice-ms > 0, --rounds ≥ 1');

interface Chunk { seq: number; first: boolean; startPts90k?: number; bytes: Buffer }
interface SegmenterLike {
  on(event: 'chunk', listener: (c: Chunk) => void): unknown;
  on(event: 'segment', listener: (s: { seq: number; durationMs: number }) => void): unknown;
  start(): void;
  readonly done: Promise<unknown>;
  cleanup(): Promise<void>;
}
type SegmenterClass = new (options: { tags: { read(r: FlvTagReader): void }; workDir: string; logger: ReturnType<typeof silentLogger>; segmentTargetMs: number }) => SegmenterLike;
interface WriterLike {
  append(m: string, s: string, c: Chunk): void;
  settle(m: string, s: string, x: { seq: number; transcode: boolean; durationMs: number; readyAtMs: number }): void;
  end(m: string, s: string): void;
  flushed(): Promise<void>;
  close(): Promise<void>;
}
type WriterClass = new (options: { redis: ReturnType<typeof createRedis>; keys: RedisKeys; logger: ReturnType<typeof silentLogger> }) => WriterLike;

interface Run { root: string; round: number; processMsPerMediaS: number; redisMsPerMediaS: number; commands: Record<string, { calls: number; usec: number }> }

const machine = await machineInfo();
printMachine(machine);
const tags = readFlvTags(await asFlv(await source1080p30(mediaS))).slice(1); // without the FLV file header
const dtsOf = (tag: Buffer): number => ((tag[7]! << 24) | tag.readUIntBE(4, 3)) >>> 0;
const classes = new Map<string, { Segmenter: SegmenterClass; Writer: WriterClass }>();
for (const root of roots) {
  const seg = (await import(pathToFileURL(join(root, 'src', 'ingest', 'rtmp-segmenter.ts')).href)) as { RtmpSegmenter: SegmenterClass };
  const feed = (await import(pathToFileURL(join(root, 'src', 'transcode', 'live-feed-store.ts')).href)) as { LiveFeedWriter: WriterClass };
  classes.set(root, { Segmenter: seg.RtmpSegmenter, Writer: feed.LiveFeedWriter });
}
const redisServer = await startRedis();
const redis = createRedis({ url: redisServer.url, logger: silentLogger(), name: 'bench-live-feed-cpu' });
const keys = new RedisKeys('mgbench');
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function commandStats(text: string): Record<string, { calls: number; usec: number }> {
  const out: Record<string, { calls: number; usec: number }> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) };
  return out;
}

async function runOnce(root: string, round: number): Promise<Run> {
  const { Segmenter, Writer } = classes.get(root)!;
  const work = mkdtempSync(join(tmpdir(), 'mediagate-live-feed-cpu-'));
  const writer = new Writer({ redis, keys, logger: silentLogger() });
  let reader: FlvTagReader | undefined;
  const segmenter = new Segmenter({ tags: { read(r) { reader = r; } }, workDir: join(work, 'seg'), logger: silentLogger(), segmentTargetMs: 2000 });
  const m = `feed-${round}`;
  segmenter.on('chunk', (c) => writer.append(m, 's', c));
  segmenter.on('segment', (s) => writer.settle(m, 's', { seq: s.seq, transcode: true, durationMs: s.durationMs, readyAtMs: Date.now() }));
  try {
    segmenter.start();
    await new Promise((r) => setTimeout(r, 100));
    await redis.config('RESETSTAT');
    const p0 = cpuSecondsPrecise(process.pid);
    const r0 = cpuSecondsPrecise(redisServer.pid);
    let at = 0;
    for (let until = sliceMs; at < tags.length; until += sliceMs) {
      while (at < tags.length && dtsOf(tags[at]!) < until) reader!.tag(tags[at++]!);
      await turn();
    }
    reader!.end();
    await segmenter.done;
    writer.end(m, 's');
    await writer.flushed();
    const run: Run = {
      root, round,
      processMsPerMediaS: ((cpuSecondsPrecise(process.pid) - p0) * 1000) / mediaS,
      redisMsPerMediaS: ((cpuSecondsPrecise(redisServer.pid) - r0) * 1000) / mediaS,
      commands: commandStats(String(await redis.info('commandstats'))),
    };
    return run;
  } finally {
    await writer.close();
    await segmenter.cleanup();
    await redis.del(keys.key('transcode', 'feed', m, 's'));
    rmSync(work, { recursive: true, force: true });
  }
}

const runs: Run[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    for (const root of round % 2 === 0 ? roots : [...roots].reverse()) {
      const r = await runOnce(root, round);
      runs.push(r);
      const xadd = r.commands['xadd'];
      process.stdout.write(`${root} round ${round}: process ${fmt(r.processMsPerMediaS, 2)}, redis-server ${fmt(r.redisMsPerMediaS, 2)} ms per media s; ${xadd?.calls ?? 0} XADDs (${fmt((xadd?.usec ?? 0) / 1000, 1)} ms in redis)\n`);
    }
  }
} finally {
  redis.disconnect();
  await redisServer.stop();
}
const rows = roots.map((root) => {
  const mine = runs.filter((r) => r.root === root);
  return {
    root, runs: mine.length,
    processMsPerMediaS: median(mine.map((r) => r.processMsPerMediaS))!, redisMsPerMediaS: median(mine.map((r) => r.redisMsPerMediaS))!,
    xadds: median(mine.map((r) => r.commands['xadd']?.calls ?? 0))!, xaddUsec: median(mine.map((r) => r.commands['xadd']?.usec ?? 0))!,
  };
});
printTable(`Live feed, gateway side: ${mediaS} s of 1080p30 in ${sliceMs} ms slices (medians of ${rounds} alternating rounds)`,
  ['tree', 'runs', 'process CPU ms per media s', 'redis-server CPU ms per media s', 'XADDs per run', 'XADD ms in redis per run'],
  rows.map((r) => [r.root, r.runs, fmt(r.processMsPerMediaS, 2), fmt(r.redisMsPerMediaS, 2), r.xadds, fmt(r.xaddUsec / 1000, 1)]));
writeResult('live-feed-cpu', machine, { params: { mediaS, sliceMs, rounds, roots }, rows, runs }, out);
