/**
 * The live ladder (src/transcode/live-ladder.ts: one long-running ffmpeg per stream, fed
 * source chunks on stdin, renditions cut in Node) on the 1080p30 input and the default ladder:
 *   (a) throughput: the runner fed as fast as possible against raw ffmpeg running the
 *       per-segment command (buildLadderArgs) over the whole input file; ratio of wall times;
 *   (b) latency in real time: chunks (one per source video frame) written at the pace of
 *       their DTS; per seq N, from the write of its last chunk to `complete(N)` (every
 *       rendition of N emitted); also from the first write to `complete` of the first seq;
 *   (c) held (`--mode held`, not in `all`): the frames the ladder holds, independent of the
 *       machine's speed and load: chunks written one source frame at a time, each time waiting
 *       until ffmpeg is idle (every thread asleep, no output); per seq N, how many frames of
 *       seq N+1 had to be written before complete(N) (the pipeline's depth at a boundary);
 *   (d) options (`--mode options`, not in `all`): what each difference between the live
 *       ladder's command (buildLiveLadderArgs) and raw ffmpeg's (buildLadderArgs) costs in
 *       CPU: ffmpeg alone, no Node cutting, the same input; the live command with one option
 *       group taken out at a time (or its pipes replaced by files), and raw ffmpeg with the
 *       live command's pipes; variants run in turn, `--runs` rounds; ffmpeg's CPU s per media s
 *       (median) and its difference from the live command. Outputs on pipes are drained by this
 *       process without parsing; the input pipe is fed from the file by this process.
 *
 * Usage: node --import tsx bench/live-ladder.ts [--quick] [--seconds 30] [--runs 1] [--ffmpeg path] [--mode all|throughput|latency|held|options] [--only name,name] [--pace 1] [--out file.json]
 *   --pace: feeding speed of the latency run × real time (below 1 when the machine cannot keep up;
 *   the delays are then also reported in input frames: delay / the pace's frame interval).
 *   --quick: 12 s of input; --ffmpeg: another ffmpeg executable (e.g. a wrapper that adds options, to compare).
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { median, percentile } from './lib/stats.ts';
import { source1080p30 } from './lib/inputs.ts';
import { cpuSeconds } from './lib/procs.ts';
import { tsSourceSegments, type TsSourceSegment } from '../test/helpers/media.ts';
import { defaultConfig } from '../src/config/config.ts';
import { DEFAULT_LADDER } from '../src/config/config-schema.ts';
import { fitRendition, parseLadder, type FittedRendition } from '../src/domain/profile.ts';
import type { SourceSegmentInfo } from '../src/domain/segment.ts';
import { buildLadderArgs, buildLiveLadderArgs, LIVE_DECODER_OPTIONS, LIVE_FIRST_OUTPUT_FD, LIVE_X264_OPTIONS, type X264Preset } from '../src/transcode/ladder-args.ts';
import { LiveLadder, type LiveLadderChunk } from '../src/transcode/live-ladder.ts';
import { ChildSupervisor } from '../src/media/child-supervisor.ts';
import { silentLogger } from '../src/log/logger.ts';

const { quick, out, values } = benchArgs(['seconds', 'runs', 'ffmpeg', 'mode', 'pace', 'only']);
const seconds = Number(values.seconds ?? (quick ? 12 : 30));
const runs = Number(values.runs ?? 1);
const ffmpegPath = values.ffmpeg ?? 'ffmpeg';
const mode = values.mode ?? 'all';
/** Feeding speed of the latency run, × real time (below 1 on a machine too busy to keep up: delays are then also given in frames). */
const pace = Number(values.pace ?? 1);
if (!(seconds >= 4 && seconds <= 60) || !(runs >= 1 && runs <= 5)) throw new Error('--seconds 4..60, --runs 1..5');

const preset = defaultConfig().transcode.x264Preset as X264Preset;
const SOURCE: SourceSegmentInfo = { video: { width: 1920, height: 1080, fpsNum: 30, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } };
const renditions: FittedRendition[] = parseLadder(DEFAULT_LADDER).map((p) => fitRendition(p, SOURCE.video)).filter((r): r is FittedRendition => r !== undefined);

const machine = await machineInfo();
printMachine(machine);
const work = mkdtempSync(join(tmpdir(), 'mg-bench-live-ladder-'));
const segments = await tsSourceSegments(await source1080p30(seconds), seconds, work);
const whole = Buffer.concat(segments.map((s) => s.bytes));
const inputPath = join(work, 'input.ts');
writeFileSync(inputPath, whole);
const mediaS = (segments[segments.length - 1]!.frames.at(-1)!.dts90k - segments[0]!.frames[0]!.dts90k) / 90_000 + 1 / 30;
process.stderr.write(`input: ${mediaS.toFixed(1)} s of 1080p30 in ${segments.length} segments; ladder ${renditions.map((r) => r.profile.name).join(' + ')} at ${preset}; ffmpeg ${ffmpegPath}\n`);

/**
 * Wall and CPU seconds of one run; CPU: ffmpeg (reaped by this process) plus this process's own.
 * `nodeCpuS`: this process's own CPU over a live run (process.cpuUsage: feeding ffmpeg's stdin,
 * reading its pipes, cutting and measuring the renditions), the transcoder's Node work but the feed read from Redis.
 */
interface Run { wallS: number; cpuS: number; nodeCpuS?: number }

/** CPU seconds used so far by this process and its reaped children (the ffmpeg runs). */
function cpuNow(): number {
  const c = cpuSeconds(process.pid);
  return c.self + c.reapedChildren;
}

/** Raw ffmpeg: the per-segment command over the whole file. */
async function rawRun(): Promise<Run> {
  const cpu0 = cpuNow();
  const args = buildLadderArgs({ inputPath, outputs: renditions.map((rendition, i) => ({ rendition, path: join(work, `raw-${i}.ts`) })), sourceAudioCodec: 'aac', x264Preset: preset });
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`raw ffmpeg exited with ${code}`))));
  });
  return { wallS: (performance.now() - t) / 1000, cpuS: cpuNow() - cpu0 };
}

function chunksOf(segment: TsSourceSegment): LiveLadderChunk[] {
  return segment.frames.map((f, i) => ({
    seq: segment.seq, first: i === 0, ...(i === 0 ? { startPts90k: segment.startPts90k } : {}),
    bytes: segment.bytes.subarray(i === 0 ? 0 : f.offset, segment.frames[i + 1]?.offset ?? segment.bytes.length),
  }));
}

function startLadder(supervisor: ChildSupervisor): LiveLadder {
  const ladder = new LiveLadder({ renditions, source: SOURCE, x264Preset: preset, supervisor, logger: silentLogger(), ffmpegPath });
  ladder.on('error', (err) => process.stderr.write(`live ladder error: ${err.message}\n`));
  ladder.on('failed', (f) => process.stderr.write(`rendition segment failed: ${JSON.stringify(f)}\n`));
  return ladder;
}

/** The runner fed as fast as possible, from the first write to end() resolved (CPU includes the cutting and measuring in this process). */
async function liveFast(): Promise<Run> {
  const cpu0 = cpuNow();
  const node0 = process.cpuUsage();
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const ladder = startLadder(supervisor);
  let completes = 0;
  ladder.on('complete', () => { completes++; });
  const t = performance.now();
  for (const seg of segments) for (const chunk of chunksOf(seg)) ladder.write(chunk);
  await ladder.end();
  const wallS = (performance.now() - t) / 1000;
  const node = process.cpuUsage(node0);
  await supervisor.close();
  if (completes !== segments.length) throw new Error(`${completes} of ${segments.length} seqs completed`);
  return { wallS, cpuS: cpuNow() - cpu0, nodeCpuS: (node.user + node.system) / 1e6 };
}

/** Real-time feeding: per-seq delays (ms) from the last chunk of seq N written to complete(N), and the first seq's from the first write. */
async function liveRealTime(): Promise<{ perSeqMs: number[]; firstSeqMs: number }> {
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const ladder = startLadder(supervisor);
  const lastWrite = new Map<number, number>();
  const delays = new Map<number, number>();
  let firstCompleteAt = 0;
  ladder.on('complete', ({ seq }) => {
    delays.set(seq, performance.now() - lastWrite.get(seq)!);
    if (seq === segments[0]!.seq) firstCompleteAt = performance.now();
  });
  const frame90k = 3000;
  const dts0 = segments[0]!.frames[0]!.dts90k;
  const t0 = performance.now();
  for (const seg of segments) {
    for (const [i, chunk] of chunksOf(seg).entries()) {
      // A frame is handed on once it is whole: one frame duration after its DTS.
      const dueMs = (seg.frames[i]!.dts90k - dts0 + frame90k) / 90 / pace;
      const waitMs = t0 + dueMs - performance.now();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      ladder.write(chunk);
      lastWrite.set(seg.seq, performance.now());
    }
  }
  await ladder.end();
  await supervisor.close();
  // The last seq is only known to be over at end(): not a live figure.
  const lastSeq = segments[segments.length - 1]!.seq;
  const perSeqMs = [...delays.entries()].filter(([seq]) => seq !== lastSeq).map(([, ms]) => ms);
  return { perSeqMs, firstSeqMs: firstCompleteAt - t0 };
}

/** Whether every thread of `pid` is asleep (state S/D... not R), read from /proc/<pid>/task/<tid>/stat. */
function allAsleep(pid: number): boolean {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'R') return false;
    }
    return true;
  } catch {
    return true; // exited
  }
}

/**
 * Frames held: one source frame written at a time, then wait until ffmpeg has gone idle (every
 * thread asleep on three reads 20 ms apart, no rendition output for 60 ms); per seq N, the
 * frames of the next seqs written before complete(N).
 */
async function liveHeld(): Promise<{ framesPastBoundary: number[] }> {
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const ladder = startLadder(supervisor);
  const pid = ladder.pid!;
  let written = 0;
  let lastOutputAt = performance.now();
  const lastFrameOf = new Map<number, number>();
  const past = new Map<number, number>();
  ladder.on('segment', () => { lastOutputAt = performance.now(); });
  ladder.on('complete', ({ seq }) => { past.set(seq, written - lastFrameOf.get(seq)!); });
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const idle = async (): Promise<void> => {
    for (let quiet = 0; quiet < 3;) {
      await sleep(20);
      quiet = allAsleep(pid) && performance.now() - lastOutputAt >= 60 ? quiet + 1 : 0;
    }
  };
  for (const seg of segments) {
    for (const chunk of chunksOf(seg)) {
      ladder.write(chunk);
      written++;
      lastFrameOf.set(seg.seq, written);
      await idle();
    }
  }
  await ladder.end();
  await supervisor.close();
  const lastSeq = segments[segments.length - 1]!.seq;
  return { framesPastBoundary: [...past.entries()].filter(([seq]) => seq !== lastSeq).map(([, n]) => n) };
}

/** `args` without every occurrence of the contiguous run `seq`. */
function without(args: readonly string[], seq: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length;) {
    if (seq.length > 0 && seq.every((v, k) => args[i + k] === v)) i += seq.length;
    else out.push(args[i++]!);
  }
  return out;
}

/** The live command with its input and outputs on files instead of pipes (`-y`: the files are overwritten). */
function onFiles(args: readonly string[]): string[] {
  const out = args.map((a) => {
    if (a === 'pipe:0') return inputPath;
    const m = /^pipe:(\d+)$/.exec(a);
    return m ? join(work, `opt-${Number(m[1]) - LIVE_FIRST_OUTPUT_FD}.ts`) : a;
  });
  const i = out.indexOf('-protocol_whitelist');
  out[i + 1] = 'file';
  return ['-y', ...out];
}

/** Raw ffmpeg's command with the live command's pipes: stdin for the input, fd 3 + i for rendition i. */
function onPipes(args: readonly string[]): string[] {
  let output = 0;
  const out = args.map((a) => (a === inputPath ? 'pipe:0' : a.startsWith(join(work, 'raw-')) ? `pipe:${LIVE_FIRST_OUTPUT_FD + output++}` : a));
  const i = out.indexOf('-protocol_whitelist');
  out[i + 1] = 'pipe';
  return without(out, ['-y']);
}

interface OptionVariant { name: string; args: string[] }

/** The variants of `--mode options`: raw, live, and live with one difference taken out at a time. */
function optionVariants(): OptionVariant[] {
  const live = buildLiveLadderArgs({ renditions, sourceAudioCodec: 'aac', x264Preset: preset });
  const raw = buildLadderArgs({ inputPath, outputs: renditions.map((rendition, i) => ({ rendition, path: join(work, `raw-${i}.ts`) })), sourceAudioCodec: 'aac', x264Preset: preset });
  const decoder = ['-analyzeduration', '500000', ...LIVE_DECODER_OPTIONS];
  return [
    { name: 'raw ffmpeg (buildLadderArgs: file in, files out)', args: raw },
    { name: 'raw ffmpeg with the live pipes (stdin, fd 3..)', args: onPipes(raw) },
    { name: 'live (buildLiveLadderArgs)', args: live },
    { name: 'live without -force_key_frames source', args: without(live, ['-force_key_frames', 'source']) },
    { name: 'live without the x264 options (threads 2, rc-lookahead 3, sync-lookahead 1, max_interleave_delta 1)', args: without(live, LIVE_X264_OPTIONS) },
    { name: 'live without x264 -threads 2', args: without(live, LIVE_X264_OPTIONS.slice(0, 2)) },
    { name: 'live without x264 -rc-lookahead 3', args: without(live, ['-rc-lookahead', '3']) },
    { name: 'live without x264 sync-lookahead=1', args: without(live, ['-x264-params', 'sync-lookahead=1']) },
    { name: 'live without -max_interleave_delta 1', args: without(live, ['-max_interleave_delta', '1']) },
    { name: 'live without the decoder options (threads 2, analyzeduration)', args: without(live, decoder) },
    { name: 'live without -flush_packets 1', args: without(live, ['-flush_packets', '1']) },
    { name: 'live on files instead of pipes', args: onFiles(live) },
  ];
}

/** One ffmpeg run of a variant; its wall and CPU s (reaped by this process). Pipes: stdin fed from the input file, outputs drained. */
async function optionRun(variant: OptionVariant): Promise<Run> {
  const pipes = variant.args.includes('pipe:0');
  const outputs = pipes ? variant.args.filter((a) => /^pipe:[1-9]\d*$/.test(a)).length : 0;
  const c0 = cpuSeconds(process.pid).reapedChildren;
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('ffmpeg', variant.args, { stdio: [pipes ? 'pipe' : 'ignore', 'ignore', 'inherit', ...Array.from({ length: outputs }, () => 'pipe' as const)] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${variant.name}: ffmpeg exited with ${code}`))));
    for (let i = 0; i < outputs; i++) (child.stdio[LIVE_FIRST_OUTPUT_FD + i] as NodeJS.ReadableStream).resume();
    if (pipes) createReadStream(inputPath).pipe(child.stdin!);
  });
  return { wallS: (performance.now() - t) / 1000, cpuS: cpuSeconds(process.pid).reapedChildren - c0 };
}

const result: Record<string, unknown> = { seconds: mediaS, segments: segments.length, renditions: renditions.map((r) => r.profile.name), preset, ffmpeg: ffmpegPath };
try {
  if (mode === 'all' || mode === 'throughput') {
    const raw: Run[] = [];
    const live: Run[] = [];
    for (let i = 0; i < runs; i++) {
      raw.push(await rawRun());
      live.push(await liveFast());
    }
    const wall = (r: Run[]): number => median(r.map((x) => x.wallS))!;
    const cpu = (r: Run[]): number => median(r.map((x) => x.cpuS))!;
    const ratio = wall(raw) / wall(live);
    const cpuRatio = cpu(raw) / cpu(live);
    printTable('Throughput (fed as fast as possible)', ['', 'wall s (median)', 'real-time factor', 'CPU s (median)', 'runs: wall / CPU s'], [
      ['raw ffmpeg, buildLadderArgs, whole file', fmt(wall(raw)), fmt(mediaS / wall(raw)), fmt(cpu(raw)), raw.map((x) => `${fmt(x.wallS)} / ${fmt(x.cpuS)}`).join(', ')],
      ['live ladder (stdin + pipes + cuts)', fmt(wall(live)), fmt(mediaS / wall(live)), fmt(cpu(live)), live.map((x) => `${fmt(x.wallS)} / ${fmt(x.cpuS)}`).join(', ')],
      ['ratio raw / live (throughput of live, raw = 1)', fmt(ratio), '', fmt(cpuRatio), 'goal >= 0.95; the CPU ratio holds on a busy machine'],
    ]);
    const nodePerMediaS = live.map((x) => x.nodeCpuS! / mediaS);
    printTable('Live ladder: this process\'s CPU (stdin writes, pipe reads, cutting, measuring) per media s', ['', 'median', 'runs'], [
      ['Node CPU s per media s', fmt(median(nodePerMediaS), 4), nodePerMediaS.map((x) => fmt(x, 4)).join(', ')],
    ]);
    Object.assign(result, { raw, live, throughputRatio: ratio, cpuRatio, nodeCpuSPerMediaS: median(nodePerMediaS) });
  }
  if (mode === 'all' || mode === 'latency') {
    const all: number[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await liveRealTime();
      all.push(...r.perSeqMs);
      firsts.push(r.firstSeqMs);
    }
    const frameMs = 1000 / 30 / pace;
    printTable(`Latency, feeding at ${pace} x real time: last chunk of seq N written -> complete(N)`, ['', 'p50', 'p95', 'max', 'samples', 'first seq: first write -> complete'], [
      ['ms', fmt(median(all), 0), fmt(percentile(all, 95), 0), fmt(Math.max(...all), 0), all.length, firsts.map((m) => fmt(m, 0)).join(' ')],
      ['input frames', fmt(median(all)! / frameMs, 1), fmt(percentile(all, 95)! / frameMs, 1), fmt(Math.max(...all) / frameMs, 1), '', firsts.map((m) => fmt(m / frameMs, 1)).join(' ')],
    ]);
    Object.assign(result, { pace, latencyMs: { p50: median(all), p95: percentile(all, 95), max: Math.max(...all), samples: all }, firstSeqMs: firsts });
  }
  if (mode === 'options') {
    // --only a,b: the variants whose names contain one of these (raw and live always run).
    const only = values.only?.split(',');
    const variants = optionVariants().filter((v, k) => k <= 2 || only === undefined || only.some((o) => v.name.includes(o)));
    const done = variants.map(() => [] as Run[]);
    for (let i = 0; i < runs; i++) {
      for (const [k, v] of variants.entries()) {
        const r = await optionRun(v);
        done[k]!.push(r);
        process.stderr.write(`round ${i} ${v.name}: ${fmt(r.wallS)} s wall, ${fmt(r.cpuS)} CPU s\n`);
      }
    }
    const perMediaS = done.map((rs) => median(rs.map((r) => r.cpuS))! / mediaS);
    const cores = done.map((rs) => median(rs.map((r) => r.cpuS / r.wallS))!);
    const liveIdx = 2;
    printTable(`ffmpeg's CPU per option difference (ffmpeg alone, the same input, ${runs} rounds in turn)`, ['variant', 'CPU s per media s (median)', 'Δ vs live', 'cores used (CPU s / wall s, median)', 'runs: wall / CPU s'], variants.map((v, k) => [
      v.name, fmt(perMediaS[k]!, 3), k === liveIdx ? '' : fmt(perMediaS[k]! - perMediaS[liveIdx]!, 3), fmt(cores[k]!), done[k]!.map((r) => `${fmt(r.wallS)} / ${fmt(r.cpuS)}`).join(', '),
    ]));
    Object.assign(result, { options: variants.map((v, k) => ({ name: v.name, args: v.args, runs: done[k], cpuSPerMediaS: perMediaS[k], coresUsed: cores[k] })) });
  }
  if (mode === 'held') {
    const r = await liveHeld();
    printTable('Frames held: source frames of the next seqs written before complete(N), ffmpeg idle after each', ['', 'per seq', 'median'], [
      ['frames', r.framesPastBoundary.join(' '), fmt(median(r.framesPastBoundary), 1)],
    ]);
    Object.assign(result, { framesPastBoundary: r.framesPastBoundary });
  }
  process.stderr.write(`result: ${writeResult('live-ladder', machine, result, out)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
