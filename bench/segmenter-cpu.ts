/**
 * In-process RTMP segmenter probe (issue 14 goal 1): the CPU and garbage collections of the
 * gateway's per-frame ingest work alone (FLV tag → parse → mux → segment file), without
 * sockets, node-media-server, Redis or HTTP, so that a change to that path is judged with far
 * less noise than a whole gateway on a shared machine gives (bench/ingest-cpu.ts).
 *
 * Per run: `--n` RtmpSegmenters (src/ingest/rtmp-segmenter.ts of the code tree) in this
 * process, each with its own work dir under the OS temp dir, fed the same FLV tags (the clip at
 * its real bitrate with 2 s GOPs, as bench/ingest-scale.ts publishes it) in 100 ms slices of
 * media, every stream's slice in turn, with a turn of the event loop between slices (so timers
 * and thread-pool work complete as they would between socket reads). Measured over the run:
 * CPU of this process's main thread (/proc/<pid>/task/<pid>/stat) and of the whole process,
 * both in ms per stream per media second (= millicores at real time), and V8's garbage
 * collections (count and ms, PerformanceObserver `gc`). Trees alternate (`--roots a,b`,
 * `--rounds` times, the order reversed every other round).
 *
 * Usage: node --import tsx bench/segmenter-cpu.ts [--n 64] [--media-s 30] [--roots dirA,dirB] [--rounds 3] [--out file.json]
 * A root is a checkout of mediagate (its src/ingest/rtmp-segmenter.ts is loaded); default: this checkout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { readFlvTags } from '../test/helpers/flv.ts';
import { silentLogger } from '../src/log/logger.ts';
import type { FlvTagReader } from '../src/ingest/rtmp/packet-tap.ts';
import { asFlv, clipRealBitrate } from './lib/inputs.ts';
import { cpuSeconds, threadCpuSeconds } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';

const { out, values } = benchArgs(['n', 'media-s', 'roots', 'rounds']);
const n = Number(values.n ?? 64);
const mediaS = Number(values['media-s'] ?? 30);
const rounds = Number(values.rounds ?? 3);
const roots = (values.roots ? values.roots.split(',') : [resolve(import.meta.dirname, '..')]).map((r) => resolve(r));
/** Media per feeding turn, ms. */
const SLICE_MS = 100;

interface SegmenterLike {
  on(event: 'segment', listener: () => void): unknown;
  start(): void;
  readonly done: Promise<unknown>;
  cleanup(): Promise<void>;
}
type SegmenterClass = new (options: { tags: { read(r: FlvTagReader): void }; workDir: string; logger: ReturnType<typeof silentLogger>; segmentTargetMs: number }) => SegmenterLike;

interface Run { root: string; round: number; mainMsPerStreamS: number; processMsPerStreamS: number; gcs: number; gcMsPerStreamS: number }

const machine = await machineInfo();
printMachine(machine);
const tags = readFlvTags(await asFlv(await clipRealBitrate(Math.ceil(mediaS / 10) * 10))).slice(1); // without the FLV file header
const dtsOf = (tag: Buffer): number => ((tag[7]! << 24) | tag.readUIntBE(4, 3)) >>> 0;
const classes = new Map<string, SegmenterClass>();
for (const root of roots) {
  const mod = (await import(pathToFileURL(join(root, 'src', 'ingest', 'rtmp-segmenter.ts')).href)) as { RtmpSegmenter: SegmenterClass };
  classes.set(root, mod.RtmpSegmenter);
}
let gcCount = 0;
let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount += 1;
    gcMs += e.duration;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function runOnce(root: string, round: number): Promise<Run> {
  const Segmenter = classes.get(root)!;
  const base = mkdtempSync(join(tmpdir(), 'mediagate-segmenter-cpu-'));
  const readers: FlvTagReader[] = [];
  const segmenters: SegmenterLike[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = new Segmenter({ tags: { read(r) { readers[i] = r; } }, workDir: join(base, String(i)), logger: silentLogger(), segmentTargetMs: 2000 });
      s.on('segment', () => undefined);
      s.start();
      segmenters.push(s);
    }
    await new Promise((r) => setTimeout(r, 50));
    const pid = process.pid;
    const gc0 = gcCount;
    const gcMs0 = gcMs;
    const main0 = threadCpuSeconds(pid);
    const all0 = cpuSeconds(pid).self;
    let at = 0;
    for (let until = SLICE_MS; until <= mediaS * 1000; until += SLICE_MS) {
      const from = at;
      while (at < tags.length && dtsOf(tags[at]!) < until) at++;
      for (const reader of readers) for (let k = from; k < at; k++) reader.tag(tags[k]!);
      await turn();
    }
    for (const reader of readers) reader.end();
    await Promise.all(segmenters.map((s) => s.done));
    const streamS = n * mediaS;
    return {
      root, round,
      mainMsPerStreamS: ((threadCpuSeconds(pid) - main0) * 1000) / streamS,
      processMsPerStreamS: ((cpuSeconds(pid).self - all0) * 1000) / streamS,
      gcs: gcCount - gc0,
      gcMsPerStreamS: (gcMs - gcMs0) / streamS,
    };
  } finally {
    await Promise.all(segmenters.map((s) => s.cleanup()));
    rmSync(base, { recursive: true, force: true });
  }
}

const runs: Run[] = [];
for (let round = 0; round < rounds; round++) {
  for (const root of round % 2 === 0 ? roots : [...roots].reverse()) {
    const r = await runOnce(root, round);
    runs.push(r);
    process.stdout.write(`${root} round ${round}: main thread ${fmt(r.mainMsPerStreamS, 3)}, process ${fmt(r.processMsPerStreamS, 3)} ms per stream per media s; ${r.gcs} GCs (${fmt(r.gcMsPerStreamS, 3)} ms per stream per media s)\n`);
  }
}
gcObserver.disconnect();
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
printTable(`Median over ${rounds} rounds, ${n} streams × ${mediaS} media s (ms per stream per media s = millicores at real time)`,
  ['root', 'main thread', 'process', 'GCs', 'GC ms'],
  roots.map((root) => { const rs = runs.filter((r) => r.root === root); return [root, fmt(median(rs.map((r) => r.mainMsPerStreamS)), 3), fmt(median(rs.map((r) => r.processMsPerStreamS)), 3), fmt(median(rs.map((r) => r.gcs)), 0), fmt(median(rs.map((r) => r.gcMsPerStreamS)), 3)]; }));
writeResult('segmenter-cpu', machine, { config: { n, mediaS, rounds, roots }, runs }, out);
