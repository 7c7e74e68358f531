/**
 * Ingest scale (issue 7, part 3): how many concurrent RTMP publishers of the clip at its real
 * bitrate (640x360 24 fps, ~421 kb/s H.264 + 96 kb/s AAC, 2 s GOP) mediagate sustains with the
 * `source` rendition only (ladder `[]`: no transcoding) before any segment is listed late,
 * against nginx-rtmp (HLS on, 2 s fragments, worker_processes auto) on the same machine.
 *
 * Per step: a fresh server (mediagate: redis-server + a real gateway process, ladder `[]`; nginx:
 * its own prefix), N publishers (real time, like `ffmpeg -re -stream_loop -1 -c copy`, each to its own stream
 * name, started evenly over max(`--stagger-s`, N × 30 ms)), held `--hold-s` after the last one
 * was spawned, each stream's media playlist polled from this process every `--poll-ms` (the
 * same for both servers) by bench/lib/playlist-watch.ts. Everything is killed after each step.
 *
 * Lateness, the same for both servers: segment k of a stream closed at
 *   publisherStart + startS + durationS
 * (its media end from the EXTINF sums; the publisher sends in real time from publisherStart,
 * the moment its ffmpeg was connected and began its -re read loop, see startPublisher) and is
 * late when it was first listed more than its own durationS after that. A segment not listed
 * at all by the end of the step although its deadline passed (the stream stalled) counts as
 * late too ("overdue", "never listed").
 * A step fails on any late segment or any failure: a publisher that exited before the end, a
 * stream that never listed a segment or whose playlist ended, the server process exiting.
 * The sustained count is the largest N of the ramp with no late segment and no failure.
 *
 * Issue 14 adds, per step: memory per stream net of the idle server ((tree RSS and PSS at the
 * end of the hold − the same tree idle before the publishers) / N, for the gateway and its
 * children and for nginx's master and workers), the server's child processes (every
 * descendant, sampled each second: goal 0 per passthrough stream), and the load generator's
 * own CPU and whether it saturated (the publishers' and this process's CPU are never counted
 * as the server's). The publishers are one Node process publishing every stream
 * (bench/lib/publisher-pool-main.ts, `--publisher node`, the default): an `ffmpeg -re -c copy`
 * per stream costs ≈0.11 CPU s to start and ≈7 millicores while streaming on the 2-core bench
 * machine, so 256 of them would take most of the cores themselves (`--publisher ffmpeg` keeps
 * the old generator). After the ramp, a burst step per server: `--burst` publishers (32) started
 * within 1 s, held `--burst-hold-s`; each stream's first listed segment is fetched as soon as it
 * is listed and its first video frame decoded and compared (framemd5) with the clip's first
 * keyframes: seq 0 must start at the publisher's first keyframe (no GOP lost).
 *
 * Usage: node --import tsx bench/ingest-scale.ts [--quick] [--ramp 1,8,16,32,48,64,96,128,192,256] [--max 256]
 *   [--hold-s 30] [--stagger-s 2] [--poll-ms 500] [--servers mediagate,nginx] [--bisect 1]
 *   [--publisher node|ffmpeg] [--burst 32] [--burst-hold-s 10] [--log-level warn] [--gateway-env 'MEDIAGATE_X=v …'] [--out file.json]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../test/helpers/gateway-process.ts';
import { asFlv, clipRealBitrate } from './lib/inputs.ts';
import { readFlvFile } from './lib/flv-file.ts';
import { startPublisherPool, type PoolStats, type PublisherPool } from './lib/publisher-pool.ts';
import { startNginxRtmp, type NginxRtmp } from '../test/helpers/nginx-rtmp.ts';
import { watchPlaylist, type PlaylistWatch } from './lib/playlist-watch.ts';
import { cpuSeconds, machineCpuSeconds, processTree, rssBytes, threadCpuSeconds, treeRssBytes } from './lib/procs.ts';
import { benchArgs, fmt, gatewayEnv, machineInfo, printGoals, printMachine, printTable, writeResult, type GoalRow } from './lib/report.ts';
import { percentile } from './lib/stats.ts';

const { quick, out, values } = benchArgs(['ramp', 'max', 'hold-s', 'stagger-s', 'poll-ms', 'servers', 'bisect', 'log-level', 'publisher', 'burst', 'burst-hold-s', 'gateway-env']);
const extraEnv = gatewayEnv(values['gateway-env']);
/** --quick: three steps per server, ~85 s for both (+ ~4 s to derive the clip on a cold cache). */
const QUICK_RAMP = [8, 24, 48];
const FULL_RAMP = [1, 8, 16, 32, 48, 64, 96, 128, 192, 256];
const maxN = Number(values.max ?? (quick ? 48 : 256));
const ramp = (values.ramp ? values.ramp.split(',').map(Number) : quick ? QUICK_RAMP : FULL_RAMP).filter((n) => n >= 1 && n <= maxN);
const holdS = Number(values['hold-s'] ?? (quick ? 11 : 30));
const staggerS = Number(values['stagger-s'] ?? (quick ? 1 : 2));
const pollMs = Number(values['poll-ms'] ?? 500);
const servers = (values.servers ?? 'mediagate,nginx').split(',') as ServerKind[];
const bisect = values.bisect === undefined ? !quick : values.bisect === '1' || values.bisect === 'true';
const logLevel = values['log-level'] ?? 'warn';
/**
 * The load generator: `node` (default) = one process publishing every stream
 * (bench/lib/publisher-pool-main.ts); `ffmpeg` = one `ffmpeg -re -c copy` per stream as before
 * (≈0.11 CPU s to start and ≈7 millicores each here: 256 of them alone would take ~1.8 of
 * the 2 cores).
 */
const publisherKind = (values.publisher ?? 'node') as 'node' | 'ffmpeg';
if (publisherKind !== 'node' && publisherKind !== 'ffmpeg') throw new Error('--publisher node|ffmpeg');
/** Burst step (issue 14): this many publishers started within 1 s, per server; 0 = none. */
const burstN = Number(values.burst ?? 32);
const burstHoldS = Number(values['burst-hold-s'] ?? 10);
/** Machine CPU busy at or above this over a step: the load generator and the server compete for the cores. */
const SATURATED_BUSY_PCT = 90;
/** Publisher send lag p99 above this (node publisher): the generator did not keep real time. */
const SATURATED_LAG_P99_MS = 100;
/** Issue 14, goal 1: sustained publishers ≥ 1.0 × nginx-rtmp's; memory per stream ≤ 2 × nginx's; no lost GOP in the burst. */
const GOAL_STREAMS_RATIO = 1.0;
const GOAL_MEMORY_RATIO = 2;
const exec = promisify(execFile);
/**
 * Publisher starts are spread evenly over `--stagger-s`, and at least 30 ms apart: each
 * publisher's ffmpeg start-up costs ~0.1 s of CPU, and a burst of them would starve both the
 * server under test and this process (which reads each publisher's start from its stderr).
 */
const staggerFor = (n: number): number => Math.max(staggerS, n * 0.03);
/** The clip's GOP (and both servers' segment target), seconds. */
const GOP_S = 2;

type ServerKind = 'mediagate' | 'nginx';

interface Step {
  server: ServerKind;
  n: number;
  holdS: number;
  /** Segments listed during the step, over all streams. */
  segments: number;
  /** Late segments, overdue ones included. */
  late: number;
  /** Of `late`: segments never listed although their deadline passed. */
  overdue: number;
  /** Of `late`: the first segment of a stream (start-up) rather than a later one. */
  lateFirst: number;
  maxLatenessMs: number | undefined;
  p95LatenessMs: number | undefined;
  medianLatenessMs: number | undefined;
  /** Mean EXTINF, seconds (the clip's GOP is 2.000 s). */
  meanExtinfS: number | undefined;
  failures: string[];
  ok: boolean;
  /** Peak over the step, MiB. mediagate: the node process; tree: node + segmenter ffmpegs + ffprobes. */
  gatewayRssMiB?: number;
  gatewayTreeRssMiB?: number;
  nginxRssMiB?: number;
  /** The same trees' proportional set size at the end of the hold (shared library pages counted once), MiB. */
  gatewayTreePssMiB?: number;
  nginxPssMiB?: number;
  /** mediagate: the gateway tree at its peak: node, its other children (segmenter ffmpegs) and the ffprobes running then. */
  treeAtPeak?: { nodeMiB: number; childrenMiB: number; children: number; ffprobeMiB: number; ffprobes: number };
  /** mediagate's redis-server at the end of the step (not counted as gateway memory), MiB. */
  redisRssMiB?: number;
  /** Machine-wide CPU busy over the step, % of all cores. */
  cpuBusyPct: number;
  /**
   * CPU over the step in cores (CPU s / wall s), by kind: mediagate `node` (the gateway process,
   * every thread), `nodeMain` (of it, its main thread: the one JavaScript thread that carries the
   * RTMP sessions, the muxing, the index writes and the playlist requests),
   * `segmenters` (its live ffmpeg children), `reaped` (its children that exited: the ffprobe per
   * segment), `redis`; `nginx` (master + workers); the load: `publishers` (ffmpeg) and `bench`
   * (this process: the playlist watchers).
   */
  cpu: Record<string, number>;
  /** mediagate only: event loop delay over the step (prom-client monitorEventLoopDelay), ms. */
  eventLoopP99Ms?: number;
  eventLoopMaxMs?: number;
  /** mediagate only: the gateway's log lines during the step (level warn and up by default), counted by message. */
  gatewayLog?: Record<string, number>;
  /** mediagate only: `mediagate_segments_transcoded_total` at the end (0 when nothing was transcoded). */
  transcodedSegments?: number;
  wallS: number;
  /**
   * Where the lateness comes from (medians and p95 over listed segments, ms), from file mtimes.
   * mediagate: `store` = the object was stored after the segment's nominal close (relay
   * through node-media-server + the segmenter's cut + measuring and copying it, queued behind
   * the stream's previous segment; the segmenter's own file is deleted once stored, so the cut
   * is not timed apart); `list` = first listed after it was stored (Redis record + the
   * observer's poll phase). nginx: `cut` = the fragment file was last
   * written after the nominal close (publisher start-up + nginx), `list` = first listed after
   * that (playlist rewrite + poll phase).
   */
  pipeline?: Record<'cut' | 'store' | 'list', { median: number | undefined; p95: number | undefined }>;
  /** Per stream: its publisher's start (ms after the first spawn), its start-up and each listed segment's lateness, ms. */
  streams: { name: string; startOffsetMs: number; startupMs: number; latenessMs: number[]; overdue: number }[];
  /** Publisher start-up (spawn → streaming), median and max, ms: not counted in the lateness. */
  publisherStartupMs: { median: number | undefined; max: number | undefined };
  /**
   * Memory per stream (issue 14): the server's process tree (mediagate: the gateway and its
   * children; nginx: master + workers) at the end of the hold minus the same tree idle (after
   * start, before any publisher), divided by N; RSS and PSS, MiB. tsx's esbuild service is
   * left out of both (see serverPids).
   */
  /** `ramp`: a step of the ramp; `burst`: N publishers started within 1 s (issue 14). */
  mode: 'ramp' | 'burst';
  /**
   * burst only: per stream, its first listed segment (seq 0) decoded: the first video frame
   * compared with the clip's keyframes (framemd5; index 0 = the publisher's first keyframe,
   * k = k GOPs lost), and its first video PTS against the publisher's first keyframe PTS.
   */
  burst?: BurstResult;
  memory?: { idleRssMiB: number; idlePssMiB: number; endRssMiB: number; endPssMiB: number; perStreamRssMiB: number; perStreamPssMiB: number };
  /**
   * Child processes of the server (every descendant but tsx's esbuild), sampled every second: idle before the
   * publishers, the most seen during the step, (max − idle) / N, and their names at the max.
   */
  children?: { idle: number; max: number; perStream: number; atMax: Record<string, number> };
  /**
   * The load generator (publishers, and this process's playlist watchers) over the step: whether
   * it may have limited the result. Saturated when the machine was ≥ 90 % busy (the servers then
   * compete with the publishers for the cores) or, for the node publisher, its send lag p99
   * exceeded 100 ms (it did not keep real time).
   */
  loadGenerator?: { publisher: 'node' | 'ffmpeg'; publisherCores: number; publisherMillicoresPerStream: number; benchCores: number; machineBusyPct: number; lag?: PoolStats; saturated: boolean; why: string[] };
}

const MiB = 2 ** 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A server under test, started fresh for one step. */
interface Server {
  rtmpUrl(stream: string): string;
  playlistUrl(stream: string): string;
  /** Root pid (gateway node process / nginx master). */
  pid: number;
  /** Why it is unusable now (process exited), if so. */
  problem(): string | undefined;
  stop(): Promise<void>;
}

async function startMediagate(): Promise<Server & { dep: TestDeployment; gw: MediagateProcess; redis: TestRedis }> {
  const redis = await startRedis();
  let dep: TestDeployment | undefined;
  let gw: MediagateProcess | undefined;
  try {
    // Empty ladder: every stream lists `source` only and nothing is transcoded.
    dep = await testDeployment(redis.url, { MEDIAGATE_LADDER: '[]', MEDIAGATE_LOG_LEVEL: logLevel, ...extraEnv });
    gw = spawnMediagate('gateway', dep.env);
    await waitForHttp(`${dep.httpUrl}/healthz`, gw);
  } catch (err) {
    if (gw) await killTree(gw.child, 0);
    await redis.stop();
    dep?.cleanup();
    throw err;
  }
  const d = dep;
  const g = gw;
  let exited: string | undefined;
  void g.exited.then((e) => { exited = `gateway exited (code ${e.code}, signal ${e.signal}): ${g.lines.slice(-3).join(' | ').slice(0, 400)}`; });
  return {
    dep: d, gw: g, redis, pid: g.child.pid!,
    rtmpUrl: (s) => `rtmp://127.0.0.1:${d.rtmpPort}/live/${s}`,
    playlistUrl: (s) => `${d.httpUrl}/stream/${s}/source.m3u8`,
    problem: () => exited,
    stop: async () => {
      await killTree(g.child, 0); // nothing to flush: the step is over and everything is discarded
      await redis.stop();
      d.cleanup();
    },
  };
}

async function startNginx(): Promise<Server & { nginx: NginxRtmp }> {
  const nginx = await startNginxRtmp({ fragmentS: GOP_S, workers: 'auto' });
  return {
    nginx, pid: nginx.pid,
    rtmpUrl: (s) => nginx.rtmpUrl(s),
    playlistUrl: (s) => nginx.playlistUrl(s),
    problem: () => (processTree(nginx.pid).length > 0 && rssBytes(nginx.pid) > 0 ? undefined : 'nginx exited'),
    stop: async () => {
      const tree = processTree(nginx.pid);
      await nginx.stop();
      for (const p of tree) killPid(p);
    },
  };
}

function killPid(pid: number): void {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

/** SIGTERM, then after `graceMs` SIGKILL of the process and every descendant it had. */
async function killTree(child: ChildProcess, graceMs: number): Promise<void> {
  const tree = child.pid ? processTree(child.pid) : [];
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    await Promise.race([exited, sleep(graceMs)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.race([exited, sleep(2000)]);
  }
  for (const p of tree) killPid(p);
}

/** Sum of self CPU seconds of `pids` (those still alive). */
function cpuOf(pids: readonly number[]): number {
  return pids.reduce((s, p) => s + cpuSeconds(p).self, 0);
}

/** The gateway's event-loop delay since the previous scrape, and its transcoded-segment count. */
async function gatewayMetrics(httpUrl: string): Promise<{ p99Ms: number; maxMs: number; transcoded: number } | undefined> {
  try {
    const text = await (await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const get = (name: string): number => Number(new RegExp(`^mediagate_${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    return {
      p99Ms: get('nodejs_eventloop_lag_p99_seconds') * 1000, maxMs: get('nodejs_eventloop_lag_max_seconds') * 1000,
      transcoded: get('segments_transcoded_total'),
    };
  } catch {
    return undefined;
  }
}

/** Checks that the master playlist of `stream` lists exactly one variant, `source`. */
async function sourceOnly(httpUrl: string, stream: string): Promise<string | undefined> {
  try {
    const text = await (await fetch(`${httpUrl}/stream/${stream}.m3u8`, { signal: AbortSignal.timeout(5000) })).text();
    const variants = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    return variants.length === 1 && variants[0] === `${stream}/source.m3u8` ? undefined : `${stream}: master playlist lists ${JSON.stringify(variants)}, not source only`;
  } catch (err) {
    return `${stream}: master playlist unreadable (${(err as Error).message})`;
  }
}

/**
 * Proportional set size of one process, bytes (0 when gone): its private pages plus its share
 * of the pages it maps with others. Summing RSS over N ffmpegs counts their ~40 MiB of
 * shared libav* pages N times; summing PSS counts them once (split among every process mapping
 * them, publishers included).
 */
function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** mtime (epoch ms) of every file in `dir`, by name; empty when it does not exist. */
function mtimes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const f of readdirSync(dir)) out.set(f, statSync(join(dir, f)).mtimeMs);
  } catch { /* none */ }
  return out;
}

interface Publisher {
  name: string;
  /** performance.now() just before spawning it (ffmpeg) or asking the pool for it (node). */
  readonly spawnMs: number;
  /** When it began streaming (see startPublisher); the spawn time until then. */
  readonly startMs: number;
  readonly started: boolean;
  readonly exitedAt: number | undefined;
  /** Why it stopped (exit code and the last stderr line, or the pool's error). */
  exitReason(): string;
  /** ffmpeg: its pid (for its CPU); node: undefined (the pool's CPU is counted as a whole). */
  readonly pid: number | undefined;
  kill(): void;
  /** Resolves once it has exited (ffmpeg), at once for the pool's streams. */
  exited(): Promise<void>;
  watch: PlaylistWatch;
}

/**
 * One ffmpeg publisher: `ffmpeg -re -stream_loop -1 -i clip -c copy -f flv <url>` (what
 * test/helpers/gateway-process.ts publish() runs, at log level info). Its start is when it
 * printed `Output #0`: ffmpeg prints that once connected and the FLV header is written, just
 * before its real-time (-re) read loop starts; the media clock of the stream starts there, not
 * at the spawn (process start-up and the RTMP handshake take 0.05-1 s, more on a loaded machine).
 */
function startFfmpegPublisher(name: string, clip: string, url: string, watch: PlaylistWatch): Publisher {
  const spawnMs = performance.now();
  const child: ChildProcess = spawn('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-v', 'info', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', url],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let startMs = spawnMs;
  let started = false;
  let exitedAt: number | undefined;
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString();
    if (!started && /^Output #0/m.test(stderr.slice(-200) + text)) {
      started = true;
      startMs = performance.now();
    }
    if (stderr.length < 64 * 1024) stderr += text;
  });
  child.once('error', (err) => { stderr += `cannot run ffmpeg: ${err.message}\n`; exitedAt ??= performance.now(); });
  child.once('exit', () => { exitedAt ??= performance.now(); });
  return {
    name, spawnMs, watch, pid: child.pid,
    get startMs() { return startMs; },
    get started() { return started; },
    get exitedAt() { return exitedAt; },
    exitReason: () => `${child.exitCode ?? child.signalCode}: ${stderr.trim().split('\n').pop()?.slice(0, 200) ?? ''}`,
    kill: () => { child.kill('SIGKILL'); },
    exited: () => (child.exitCode === null && child.signalCode === null
      ? Promise.race([new Promise<void>((r) => child.once('exit', () => r())), sleep(3000)]) : Promise.resolve()),
  };
}

/** One stream of the node publisher pool: its start is the server's NetStream.Publish.Start. */
function startPoolPublisher(pool: PublisherPool, name: string, url: string, watch: PlaylistWatch): Publisher {
  const s = pool.start(name, url);
  return {
    name, spawnMs: s.requestedMs, watch, pid: undefined,
    get startMs() { return s.startedMs ?? s.requestedMs; },
    get started() { return s.startedMs !== undefined; },
    get exitedAt() { return s.exitedMs; },
    exitReason: () => s.error ?? 'closed',
    kill: () => undefined, // the pool is closed as a whole
    exited: () => Promise.resolve(),
  };
}

const commOf = (pid: number): string => {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return '?'; }
};
/**
 * The server's processes for the issue 14 figures: `pid` and its descendants, without tsx's
 * `esbuild` service (the gateway runs its TypeScript through tsx, whose transpiler process
 * comes and goes with module loading; it is no part of the data plane).
 */
const serverPids = (pid: number): number[] => processTree(pid).filter((p) => p === pid || commOf(p) !== 'esbuild');
/** Every descendant of `pid` (not itself, not esbuild), by command name. */
function childKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of serverPids(pid)) {
    if (p === pid) continue;
    const comm = commOf(p);
    out[comm] = (out[comm] ?? 0) + 1;
  }
  return out;
}
const countOf = (kinds: Record<string, number>): number => Object.values(kinds).reduce((a, b) => a + b, 0);
const serverRssBytes = (pid: number): number => serverPids(pid).reduce((sum, p) => sum + rssBytes(p), 0);
const serverPssBytes = (pid: number): number => serverPids(pid).reduce((sum, p) => sum + pssBytes(p), 0);

interface BurstResult {
  /** Streams whose seq 0 does not start at the publisher's first keyframe (a GOP or more lost). */
  lostGop: number;
  /** Streams that could not be judged (no segment listed or fetched, nothing decodable). */
  unknown: number;
  /** Streams whose first listed segment is not seq 0. */
  firstNotSeq0: number;
  publisherFirstKeyframePtsS: number;
  streams: { name: string; firstUri?: string; keyframeIndex?: number; firstVideoPtsS?: number; firstPacketKeyframe?: boolean; problem?: string }[];
}

async function fetchBytes(url: string): Promise<Buffer | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : undefined;
  } catch {
    return undefined;
  }
}

/** framemd5 hash of the first decoded video frame of `file` (the decoder starts at its first keyframe). */
async function firstFrameHashes(file: string, frames: number, keyframesOnly: boolean): Promise<string[]> {
  const { stdout } = await exec('ffmpeg', ['-nostdin', '-v', 'error', ...(keyframesOnly ? ['-skip_frame', 'nokey'] : []), '-i', file, '-map', '0:v:0', '-frames:v', String(frames), '-f', 'framemd5', '-'], { maxBuffer: 1 << 22 });
  return stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()!.trim());
}

/** The clip's first keyframes (decoded with -skip_frame nokey) and its publisher's first keyframe PTS. */
async function keyframeRef(clip: string, firstKeyframePtsMs: number): Promise<KeyframeRef> {
  const hashes = await firstFrameHashes(clip, 6, true);
  if (new Set(hashes).size !== hashes.length) throw new Error(`the clip's first keyframes are not distinct (${hashes.join(', ')}): the burst check cannot tell them apart`);
  return { hashes, firstKeyframePtsS: firstKeyframePtsMs / 1000 };
}

/** burst: judges every stream's first listed segment (see BurstResult). */
async function judgeBurst(publishers: readonly Publisher[], firsts: Map<string, { uri: string; bytes: Promise<Buffer | undefined> }>, ref: KeyframeRef): Promise<BurstResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-burst-'));
  try {
    const streams: BurstResult['streams'] = [];
    for (const p of publishers) {
      const first = firsts.get(p.name);
      const bytes = first ? await first.bytes : undefined;
      if (!first || !bytes) { streams.push({ name: p.name, ...(first ? { firstUri: first.uri } : {}), problem: first ? 'first segment not fetched' : 'no segment listed' }); continue; }
      const file = join(dir, `${p.name}.ts`);
      writeFileSync(file, bytes);
      try {
        const [hash] = await firstFrameHashes(file, 1, false);
        const { stdout } = await exec('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-read_intervals', '%+#1', '-of', 'csv=p=0', file]);
        const [pts, flags] = stdout.trim().split('\n')[0]!.split(',');
        const k = hash === undefined ? -1 : ref.hashes.indexOf(hash);
        streams.push({
          name: p.name, firstUri: first.uri, firstVideoPtsS: Number(pts), firstPacketKeyframe: (flags ?? '').includes('K'),
          ...(k >= 0 ? { keyframeIndex: k } : { problem: 'first frame matches none of the clip\'s first keyframes' }),
        });
      } catch (err) {
        streams.push({ name: p.name, firstUri: first.uri, problem: `not decodable: ${(err as Error).message.slice(0, 200)}` });
      }
    }
    return {
      lostGop: streams.filter((x) => x.keyframeIndex !== undefined && x.keyframeIndex > 0).length,
      unknown: streams.filter((x) => x.keyframeIndex === undefined).length,
      firstNotSeq0: streams.filter((x) => x.firstUri !== undefined && !/(?:^|[/-])0\.ts$/.test(x.firstUri)).length,
      publisherFirstKeyframePtsS: ref.firstKeyframePtsS, streams,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the burst step checks: the clip's first keyframes decoded (framemd5 of each), and the publisher's first keyframe PTS. */
interface KeyframeRef { hashes: string[]; firstKeyframePtsS: number }

async function runStep(kind: ServerKind, n: number, clip: string, flv: string, mode: 'ramp' | 'burst' = 'ramp', keyframes?: KeyframeRef): Promise<Step> {
  const stepStart = performance.now();
  const failures: string[] = [];
  const server = kind === 'mediagate' ? await startMediagate() : await startNginx();
  const serverStartS = (performance.now() - stepStart) / 1000;
  let pool: PublisherPool | undefined;
  try {
    pool = publisherKind === 'node' ? await startPublisherPool(flv) : undefined;
  } catch (err) {
    await server.stop();
    throw err;
  }
  // Idle baseline of the server's tree (issue 14: memory and children per stream are net of it).
  await sleep(500);
  const idleRss = serverRssBytes(server.pid);
  const idlePss = serverPssBytes(server.pid);
  const idleChildren = countOf(childKinds(server.pid));
  let childMax = idleChildren;
  let childAtMax: Record<string, number> = childKinds(server.pid);
  /** burst: the bytes of each stream's first listed segment, fetched as soon as it is listed. */
  const firstSegments = new Map<string, { uri: string; bytes: Promise<Buffer | undefined> }>();
  const publishers: Publisher[] = [];
  const mg = 'gw' in server ? server : undefined;
  let gwPeak = 0;
  let treePeak = 0;
  let nginxPeak = 0;
  let redisRss = 0;
  let treePss = 0;
  let nginxPss = 0;
  let treeAtPeak: Step['treeAtPeak'];
  const sampleMemory = (): void => {
    const kinds = childKinds(server.pid);
    if (countOf(kinds) > childMax) { childMax = countOf(kinds); childAtMax = kinds; }
    if (mg) {
      gwPeak = Math.max(gwPeak, rssBytes(mg.pid));
      const tree = processTree(mg.pid);
      const parts = { node: rssBytes(mg.pid), segmenters: 0, segmenterCount: 0, probes: 0, probeCount: 0 };
      for (const pid of tree) {
        if (pid === mg.pid) continue;
        const rss = rssBytes(pid);
        let cmd = '';
        try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? ''; } catch { /* gone */ }
        if (cmd.endsWith('ffprobe')) { parts.probes += rss; parts.probeCount += 1; } else { parts.segmenters += rss; parts.segmenterCount += 1; }
      }
      const total = parts.node + parts.segmenters + parts.probes;
      if (total > treePeak) {
        treePeak = total;
        treeAtPeak = { nodeMiB: parts.node / MiB, childrenMiB: parts.segmenters / MiB, children: parts.segmenterCount, ffprobeMiB: parts.probes / MiB, ffprobes: parts.probeCount };
      }
    } else {
      nginxPeak = Math.max(nginxPeak, treeRssBytes(server.pid));
    }
  };
  const memTimer = setInterval(sampleMemory, 1000);
  try {
    if (mg) await gatewayMetrics(mg.dep.httpUrl); // resets the event-loop histogram: the next read covers the step
    const serverCpu0 = cpuSeconds(server.pid);
    const mainCpu0 = mg ? threadCpuSeconds(mg.pid) : 0;
    const redis = mg?.redis.pid;
    const redisCpu0 = redis ? cpuSeconds(redis).self : 0;
    const nginxCpu0 = mg ? 0 : cpuOf(processTree(server.pid));
    const machine0 = machineCpuSeconds();
    const self0 = process.cpuUsage();
    const logFrom = mg ? mg.gw.lines.length : 0;
    const pool0 = pool ? cpuSeconds(pool.pid).self : 0;
    const t0 = performance.now();
    // burst: every publisher within 1 s (issue 14); ramp: spread to spare the load generator.
    const spreadS = mode === 'burst' ? 1 : staggerFor(n);
    for (let i = 0; i < n; i++) {
      // Always yield: the start of a publisher is read from its stderr by this event loop.
      await sleep(Math.max(0, t0 + (i * spreadS * 1000) / n - performance.now()));
      const name = `s${i}`;
      const playlistUrl = server.playlistUrl(name);
      const watch = watchPlaylist(playlistUrl, pollMs, mode === 'burst' ? (seg) => {
        if (seg.index === 0) firstSegments.set(name, { uri: seg.uri, bytes: fetchBytes(new URL(seg.uri, playlistUrl).href) });
      } : undefined);
      publishers.push(pool ? startPoolPublisher(pool, name, server.rtmpUrl(name), watch) : startFfmpegPublisher(name, clip, server.rtmpUrl(name), watch));
    }
    // Every stream runs for about holdS (less its publisher's start-up).
    const tEnd = performance.now() + (mode === 'burst' ? burstHoldS : holdS) * 1000;
    await sleep(Math.max(0, tEnd - performance.now()));
    const endMs = performance.now();
    for (const p of publishers) p.watch.stop();

    // CPU over the step, in cores (read first: what follows costs CPU here).
    const wallS = (endMs - t0) / 1000;
    const machine1 = machineCpuSeconds();
    const cpuBusyPct = (100 * (machine1.busy - machine0.busy)) / Math.max(1e-9, machine1.total - machine0.total);
    const cpu: Record<string, number> = {};
    const selfUse = process.cpuUsage(self0);
    cpu['bench'] = (selfUse.user + selfUse.system) / 1e6 / wallS;
    cpu['publishers'] = (pool ? cpuSeconds(pool.pid).self - pool0 : cpuOf(publishers.flatMap((p) => (p.pid === undefined ? [] : [p.pid])))) / wallS;
    const lag = pool ? await pool.stats() : undefined;
    const why: string[] = [];
    if (cpuBusyPct >= SATURATED_BUSY_PCT) why.push(`machine ${cpuBusyPct.toFixed(0)} % busy`);
    if (lag && (lag.lagP99Ms ?? 0) > SATURATED_LAG_P99_MS) why.push(`publisher send lag p99 ${lag.lagP99Ms} ms`);
    const loadGenerator: Step['loadGenerator'] = {
      publisher: publisherKind, publisherCores: cpu['publishers'], publisherMillicoresPerStream: (1000 * cpu['publishers']) / n,
      benchCores: cpu['bench'], machineBusyPct: cpuBusyPct, ...(lag ? { lag } : {}), saturated: why.length > 0, why,
    };
    if (mg) {
      const now = cpuSeconds(mg.pid);
      const children = processTree(mg.pid).filter((p) => p !== mg.pid);
      cpu['node'] = (now.self - serverCpu0.self) / wallS;
      cpu['nodeMain'] = (threadCpuSeconds(mg.pid) - mainCpu0) / wallS;
      cpu['segmenters'] = cpuOf(children) / wallS; // live children: the segmenter ffmpegs (and any ffprobe in flight)
      cpu['reaped'] = (now.reapedChildren - serverCpu0.reapedChildren) / wallS; // exited children: ffprobe runs
      cpu['redis'] = redis ? (cpuSeconds(redis).self - redisCpu0) / wallS : Number.NaN;
      if (redis) redisRss = rssBytes(redis);
    } else {
      cpu['nginx'] = (cpuOf(processTree(server.pid)) - nginxCpu0) / wallS;
    }
    sampleMemory();
    // PSS once, at the end of the hold (reading smaps_rollup of every process is too slow for 1 Hz).
    if (mg) treePss = processTree(mg.pid).reduce((sum, p) => sum + pssBytes(p), 0);
    else nginxPss = processTree(server.pid).reduce((sum, p) => sum + pssBytes(p), 0);
    const endRss = serverRssBytes(server.pid);
    const endPss = serverPssBytes(server.pid);
    const memory: Step['memory'] = {
      idleRssMiB: idleRss / MiB, idlePssMiB: idlePss / MiB, endRssMiB: endRss / MiB, endPssMiB: endPss / MiB,
      perStreamRssMiB: (endRss - idleRss) / MiB / n, perStreamPssMiB: (endPss - idlePss) / MiB / n,
    };
    const children: Step['children'] = { idle: idleChildren, max: childMax, perStream: (childMax - idleChildren) / n, atMax: childAtMax };
    const burst = mode === 'burst' && keyframes ? await judgeBurst(publishers, firstSegments, keyframes) : undefined;
    const loop = mg ? await gatewayMetrics(mg.dep.httpUrl) : undefined;
    const gatewayLog: Record<string, number> = {};
    if (mg) {
      for (const line of mg.gw.lines.slice(logFrom)) {
        let msg = line.slice(0, 120);
        try { msg = String((JSON.parse(line) as { msg?: unknown }).msg ?? msg); } catch { /* not JSON */ }
        gatewayLog[msg] = (gatewayLog[msg] ?? 0) + 1;
      }
    }
    if (mg) {
      const notSourceOnly = await sourceOnly(mg.dep.httpUrl, publishers[0]!.name);
      if (notSourceOnly) failures.push(notSourceOnly);
    }
    const nginxHls = 'nginx' in server ? mtimes(server.nginx.hlsDir) : undefined;
    const pipe = { cut: [] as number[], store: [] as number[], list: [] as number[] };

    // Judge every stream.
    const problem = server.problem();
    if (problem) failures.push(problem);
    const lateness: number[] = [];
    let segments = 0;
    let late = 0;
    let overdue = 0;
    let lateFirst = 0;
    let extinfSum = 0;
    const streams: Step['streams'] = [];
    const startups: number[] = [];
    for (const p of publishers) {
      const detail = { name: p.name, startOffsetMs: Math.round(p.startMs - t0), startupMs: Math.round(p.startMs - p.spawnMs), latenessMs: [] as number[], overdue: 0 };
      startups.push(p.startMs - p.spawnMs);
      if (!p.started) failures.push(`${p.name}: publisher never started streaming: ${p.exitReason()}`);
      streams.push(detail);
      if (p.exitedAt !== undefined) {
        failures.push(`${p.name}: publisher exited at ${((p.exitedAt - p.startMs) / 1000).toFixed(1)} s (${p.exitReason()})`);
      }
      const segs = p.watch.segments;
      if (segs.length === 0) {
        failures.push(`${p.name}: no segment listed in ${((endMs - p.startMs) / 1000).toFixed(1)} s`);
        continue;
      }
      if (p.watch.ended) failures.push(`${p.name}: playlist ended (EXT-X-ENDLIST) while publishing`);
      if (nginxHls) {
        for (const seg of segs) {
          const closeEpoch = performance.timeOrigin + p.startMs + (seg.startS + seg.durationS) * 1000;
          const cut = nginxHls.get(seg.uri.split('/').pop()!);
          if (cut !== undefined) {
            pipe.cut.push(cut - closeEpoch);
            pipe.list.push(performance.timeOrigin + seg.firstSeenMs - cut);
          }
        }
      }
      if (mg) {
        const stored = mtimes(join(mg.dep.env['MEDIAGATE_STORAGE_DIR']!, p.name, 'source'));
        for (const seg of segs) {
          const closeEpoch = performance.timeOrigin + p.startMs + (seg.startS + seg.durationS) * 1000;
          const put = stored.get(seg.uri.split('/').pop()!);
          if (put !== undefined) {
            pipe.store.push(put - closeEpoch);
            pipe.list.push(performance.timeOrigin + seg.firstSeenMs - put);
          }
        }
      }
      for (const s of segs) {
        const closeMs = p.startMs + (s.startS + s.durationS) * 1000;
        const l = s.firstSeenMs - closeMs;
        lateness.push(l);
        detail.latenessMs.push(Math.round(l));
        segments += 1;
        extinfSum += s.durationS;
        if (l > s.durationS * 1000) {
          late += 1;
          if (s.index === 0) lateFirst += 1;
        }
      }
      // Overdue: the next segment's deadline (its close + its duration, taking 2 GOPs from
      // the last listed end) passed before the last poll, and it was never listed.
      const last = segs[segs.length - 1]!;
      const listedEndMs = p.startMs + (last.startS + last.durationS) * 1000;
      const lastPollMs = endMs - pollMs;
      const unlistedMs = lastPollMs - listedEndMs;
      if (unlistedMs > 2 * GOP_S * 1000 * 1.05) {
        const missing = Math.max(1, Math.floor(unlistedMs / (GOP_S * 1000)) - 1);
        overdue += missing;
        detail.overdue = missing;
        late += missing;
        lateness.push(unlistedMs - GOP_S * 1000);
      }
    }
    const step: Step = {
      server: kind, n, holdS: mode === 'burst' ? burstHoldS : holdS, segments, late, overdue, lateFirst,
      maxLatenessMs: lateness.length ? Math.max(...lateness) : undefined,
      p95LatenessMs: percentile(lateness, 0.95),
      medianLatenessMs: percentile(lateness, 0.5),
      meanExtinfS: segments ? extinfSum / segments : undefined,
      failures, ok: failures.length === 0 && late === 0,
      cpuBusyPct, cpu, wallS: 0, streams, ...(mg ? { gatewayLog } : {}),
      publisherStartupMs: { median: percentile(startups, 0.5), max: startups.length ? Math.max(...startups) : undefined },
      memory, children, loadGenerator, ...(burst ? { burst } : {}), mode,
      pipeline: {
        cut: { median: percentile(pipe.cut, 0.5), p95: percentile(pipe.cut, 0.95) },
        store: { median: percentile(pipe.store, 0.5), p95: percentile(pipe.store, 0.95) },
        list: { median: percentile(pipe.list, 0.5), p95: percentile(pipe.list, 0.95) },
      },
      ...(mg ? { gatewayRssMiB: gwPeak / MiB, gatewayTreeRssMiB: treePeak / MiB, gatewayTreePssMiB: treePss / MiB, treeAtPeak, redisRssMiB: redisRss / MiB } : { nginxRssMiB: nginxPeak / MiB, nginxPssMiB: nginxPss / MiB }),
      ...(loop ? { eventLoopP99Ms: loop.p99Ms, eventLoopMaxMs: loop.maxMs, transcodedSegments: loop.transcoded } : {}),
    };
    return step;
  } finally {
    clearInterval(memTimer);
    for (const p of publishers) p.watch.stop();
    for (const p of publishers) p.kill();
    await pool?.close();
    const tKill = performance.now();
    await Promise.all(publishers.map((p) => p.exited()));
    const t = performance.now();
    await server.stop();
    process.stdout.write(`  (${kind} N=${n}: server start ${serverStartS.toFixed(1)} s, publishers exit ${((t - tKill) / 1000).toFixed(1)} s, teardown ${((performance.now() - t) / 1000).toFixed(1)} s)\n`);
  }
}

function describeStep(s: Step): string {
  const mem = s.server === 'mediagate'
    ? `gateway ${fmt(s.gatewayRssMiB, 0)} MiB, +children ${fmt(s.gatewayTreeRssMiB, 0)} MiB, PSS ${fmt(s.gatewayTreePssMiB, 0)} MiB (at peak: ${s.treeAtPeak ? `${s.treeAtPeak.children} segmenters/other ${fmt(s.treeAtPeak.childrenMiB, 0)} MiB, ${s.treeAtPeak.ffprobes} ffprobes ${fmt(s.treeAtPeak.ffprobeMiB, 0)} MiB` : '?'}), loop p99 ${fmt(s.eventLoopP99Ms, 0)} ms`
    : `nginx ${fmt(s.nginxRssMiB, 0)} MiB, PSS ${fmt(s.nginxPssMiB, 0)} MiB`;
  const pipe = s.pipeline ? ` · pipeline median/p95 ms: cut ${fmt(s.pipeline.cut.median, 0)}/${fmt(s.pipeline.cut.p95, 0)}, store ${fmt(s.pipeline.store.median, 0)}/${fmt(s.pipeline.store.p95, 0)}, list ${fmt(s.pipeline.list.median, 0)}/${fmt(s.pipeline.list.p95, 0)}` : '';
  const cpu = Object.entries(s.cpu).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  const m = s.memory;
  const c = s.children;
  const lg = s.loadGenerator;
  const i14 = `\n  per stream net of idle: RSS ${fmt(m?.perStreamRssMiB, 2)} / PSS ${fmt(m?.perStreamPssMiB, 2)} MiB · children idle ${c?.idle} max ${c?.max} (${fmt(c?.perStream, 2)} per stream${c && c.max > 0 ? `: ${Object.entries(c.atMax).map(([k, v]) => `${v}× ${k}`).join(', ')}` : ''})`
    + ` · load generator (${lg?.publisher}) ${fmt(lg?.publisherCores)} cores = ${fmt(lg?.publisherMillicoresPerStream, 1)} millicores per publisher${lg?.lag ? `, send lag p50/p99/max ${lg.lag.lagP50Ms}/${lg.lag.lagP99Ms}/${lg.lag.lagMaxMs} ms` : ''}${lg?.saturated ? `, SATURATED (${lg.why.join('; ')})` : ', not saturated'}`
    + (s.burst ? `\n  burst: ${s.burst.lostGop} of ${s.n} streams lost a GOP, ${s.burst.unknown} not judged, ${s.burst.firstNotSeq0} first listed segment not seq 0; publisher's first keyframe PTS ${s.burst.publisherFirstKeyframePtsS.toFixed(3)} s, seq 0 first video PTS median ${fmt(percentile(s.burst.streams.flatMap((x) => (x.firstVideoPtsS === undefined ? [] : [x.firstVideoPtsS])), 0.5), 3)} s` : '');
  return `${s.mode === 'burst' ? '[burst] ' : ''}${s.server} N=${s.n}: ${s.ok ? 'ok' : 'FAIL'} · late ${s.late}/${s.segments + s.overdue}${s.overdue ? ` (${s.overdue} overdue)` : ''}${s.lateFirst ? ` (${s.lateFirst} first segments)` : ''}, lateness median ${fmt(s.medianLatenessMs, 0)} p95 ${fmt(s.p95LatenessMs, 0)} max ${fmt(s.maxLatenessMs, 0)} ms · ${mem} · CPU busy ${s.cpuBusyPct.toFixed(0)} % (cores: ${cpu})${pipe} · publisher start-up median/max ${fmt(s.publisherStartupMs.median, 0)}/${fmt(s.publisherStartupMs.max, 0)} ms · ${s.wallS.toFixed(1)} s`
    + i14
    + (s.gatewayLog && Object.keys(s.gatewayLog).length ? `\n  gateway log: ${Object.entries(s.gatewayLog).map(([m, c]) => `${c}× ${m}`).join('; ').slice(0, 600)}` : '')
    + (s.failures.length ? `\n  failures (${s.failures.length}): ${s.failures.slice(0, 5).join('\n  ')}` : '');
}

async function main(): Promise<void> {
  const wallStart = performance.now();
  const machine = await machineInfo();
  printMachine(machine);
  // Long enough that -stream_loop never wraps within a step (it would still play on, with a
  // short last GOP at the wrap); shorter clips derive faster on a cold cache.
  const clipS = Math.min(60, Math.ceil((holdS + 5) / 10) * 10);
  const clip = await clipRealBitrate(clipS);
  const flv = await asFlv(clip);
  const keyframes = burstN > 0 ? await keyframeRef(clip, readFlvFile(flv).firstKeyframePtsMs) : undefined;
  process.stdout.write(`ramp ${ramp.join(',')} (cap ${maxN}), hold ${holdS} s per step, publishers started over max(${staggerS} s, N × 30 ms), playlists polled every ${pollMs} ms, servers ${servers.join(', ')}\n`);

  const steps: Step[] = [];
  const state = new Map<ServerKind, { good?: number; bad?: number }>(servers.map((s) => [s, {}]));
  const run = async (kind: ServerKind, n: number): Promise<Step> => {
    const t = performance.now();
    const s = await runStep(kind, n, clip, flv);
    s.wallS = (performance.now() - t) / 1000;
    steps.push(s);
    process.stdout.write(`${describeStep(s)}\n`);
    const st = state.get(kind)!;
    if (s.ok) st.good = Math.max(st.good ?? 0, n);
    else st.bad = Math.min(st.bad ?? Infinity, n);
    return s;
  };
  // Alternate the servers at each N (background load on this shared machine drifts over time);
  // a server leaves the ramp at its first failing N.
  for (const n of ramp) {
    for (const kind of servers) {
      if (state.get(kind)!.bad !== undefined) continue;
      await run(kind, n);
    }
  }
  if (bisect) {
    for (const kind of servers) {
      const st = state.get(kind)!;
      if (st.bad !== undefined && st.good !== undefined && st.bad - st.good > 1) {
        const mid = Math.round((st.good + st.bad) / 2);
        await run(kind, mid);
      }
    }
  }

  // The burst (issue 14): burstN publishers within 1 s, once per server, after the ramp.
  const bursts: Step[] = [];
  if (burstN > 0) {
    for (const kind of servers) {
      const t = performance.now();
      const b = await runStep(kind, burstN, clip, flv, 'burst', keyframes);
      b.wallS = (performance.now() - t) / 1000;
      bursts.push(b);
      process.stdout.write(`${describeStep(b)}\n`);
    }
  }

  const sustained = (kind: ServerKind): { n: number; capped: boolean } => {
    const st = state.get(kind);
    return { n: st?.good ?? 0, capped: st !== undefined && st.bad === undefined };
  };
  const mgS = sustained('mediagate');
  const ngS = sustained('nginx');
  const atSustained = steps.find((s) => s.server === 'mediagate' && s.n === mgS.n && s.ok);

  const serverCores = (s: Step): number => (s.server === 'mediagate'
    ? (s.cpu['node'] ?? 0) + (s.cpu['segmenters'] ?? 0) + (s.cpu['reaped'] ?? 0) + (Number.isNaN(s.cpu['redis']) ? 0 : s.cpu['redis'] ?? 0)
    : s.cpu['nginx'] ?? 0);
  const perStream = (s: Step, v: number | undefined): string => fmt(v === undefined ? undefined : v / s.n, 1);
  printMachine(machine);
  printTable(
    `Ingest scale: N publishers of the clip (640x360 24 fps, ~517 kb/s video+audio, 2 s GOP) each to its own stream, source only; hold ${holdS} s per step (after the last publisher's spawn), publishers started over max(${staggerS} s, N × 30 ms), playlists polled every ${pollMs} ms; late = first listed more than one segment duration after its media end`,
    ['server', 'N', 'result', 'late / segments', 'lateness median ms', 'p95 ms', 'max ms', 'failures', 'gateway RSS MiB', 'gateway + children MiB', 'nginx RSS MiB', 'MiB / stream', 'PSS at end MiB', 'machine CPU busy %'],
    steps.map((s) => [
      s.server, s.n, s.ok ? 'ok' : 'late/fail', `${s.late} / ${s.segments + s.overdue}${s.overdue ? ` (${s.overdue} never listed)` : ''}`,
      fmt(s.medianLatenessMs, 0), fmt(s.p95LatenessMs, 0), fmt(s.maxLatenessMs, 0), s.failures.length,
      fmt(s.gatewayRssMiB, 0), fmt(s.gatewayTreeRssMiB, 0), fmt(s.nginxRssMiB, 0),
      perStream(s, s.gatewayTreeRssMiB ?? s.nginxRssMiB),
      fmt(s.gatewayTreePssMiB ?? s.nginxPssMiB, 0),
      fmt(s.cpuBusyPct, 0),
    ]),
  );
  printTable(
    'Where it goes: CPU in cores over the step (mediagate = gateway node + segmenter ffmpegs + exited children, i.e. the ffprobe per segment, + redis-server), and lateness by stage (median / p95 ms, from file mtimes: cut = nginx fragment closed after the media end, store = mediagate object stored after the media end, list = listed after stored/closed)',
    ['server', 'N', 'server cores', 'per stream (millicores)', 'node', 'node main thread / stream (millicores)', 'segmenters', 'ffprobes', 'redis', 'publishers', 'bench', 'event loop p99 / max ms', 'cut ms', 'store ms', 'list ms'],
    steps.map((s) => {
      const st = (x: { median: number | undefined; p95: number | undefined } | undefined): string => (x && x.median !== undefined ? `${fmt(x.median, 0)} / ${fmt(x.p95, 0)}` : '');
      return [
        s.server, s.n, fmt(serverCores(s)), fmt((1000 * serverCores(s)) / s.n, 1),
        fmt(s.cpu['node']), s.cpu['nodeMain'] === undefined ? '' : fmt((1000 * s.cpu['nodeMain']) / s.n, 1), fmt(s.cpu['segmenters']), fmt(s.cpu['reaped']), fmt(s.cpu['redis']),
        fmt(s.cpu['publishers']), fmt(s.cpu['bench']),
        s.eventLoopP99Ms === undefined ? '' : `${fmt(s.eventLoopP99Ms, 0)} / ${fmt(s.eventLoopMaxMs, 0)}`,
        st(s.pipeline?.cut), st(s.pipeline?.store), st(s.pipeline?.list),
      ];
    }),
  );
  for (const s of steps.filter((x) => x.failures.length > 0)) {
    process.stdout.write(`\n${s.server} N=${s.n} failures (${s.failures.length}):\n  ${s.failures.slice(0, 8).join('\n  ')}${s.failures.length > 8 ? '\n  …' : ''}\n`);
  }
  const capTxt = (x: { n: number; capped: boolean }, kind: ServerKind): string => (!servers.includes(kind) ? 'not run' : `${x.capped ? '≥ ' : ''}${x.n}`);
  const ratio = ngS.n > 0 ? mgS.n / ngS.n : undefined;
  process.stdout.write(`\nSustained publishers (no late segment, no failure): mediagate ${capTxt(mgS, 'mediagate')}, nginx-rtmp ${capTxt(ngS, 'nginx')}, ratio ${fmt(ratio)}`
    + `${ngS.capped && !mgS.capped ? ' (nginx reached the cap: its count is a lower bound, the ratio an upper bound)' : ''}`
    + `${mgS.capped && !ngS.capped ? ' (mediagate reached the cap: its count and the ratio are lower bounds)' : ''}`
    + `${mgS.capped && ngS.capped ? ' (both reached the cap: the ratio says nothing)' : ''}\n`);
  const nginxSameN = steps.find((x) => x.server === 'nginx' && x.n === atSustained?.n);
  if (atSustained) {
    process.stdout.write(`Gateway memory at N=${atSustained.n} (peak): node ${fmt(atSustained.gatewayRssMiB, 0)} MiB, with its children (segmenter ffmpegs, ffprobes) ${fmt(atSustained.gatewayTreeRssMiB, 0)} MiB RSS / ${fmt(atSustained.gatewayTreePssMiB, 0)} MiB PSS`
      + ` (${fmt((atSustained.gatewayTreeRssMiB ?? 0) / atSustained.n, 1)} MiB RSS per stream)`
      + `${nginxSameN ? `; nginx-rtmp at the same N: ${fmt(nginxSameN.nginxRssMiB, 0)} MiB RSS / ${fmt(nginxSameN.nginxPssMiB, 0)} MiB PSS` : ''}\n`);
  }
  // Per-stream CPU at each server's largest passing step (fixed costs spread over more streams).
  const lastOk = (kind: ServerKind): Step | undefined => steps.filter((x) => x.server === kind && x.ok).sort((a, b) => b.n - a.n)[0];
  const mgOk = lastOk('mediagate');
  const ngOk = lastOk('nginx');
  const mc = (st: Step, key: string): string => fmt((1000 * (st.cpu[key] ?? Number.NaN)) / st.n, 1);
  if (mgOk) {
    process.stdout.write(`CPU per stream, mediagate at N=${mgOk.n}: ${fmt((1000 * serverCores(mgOk)) / mgOk.n, 1)} millicores = node ${mc(mgOk, 'node')} (main thread ${mc(mgOk, 'nodeMain')}) + segmenter ffmpeg ${mc(mgOk, 'segmenters')}`
      + ` + ffprobe per segment ${mc(mgOk, 'reaped')} + redis ${mc(mgOk, 'redis')}; load generator ${mc(mgOk, 'publishers')} (publishers, ${publisherKind}) + ${mc(mgOk, 'bench')} (watchers)\n`);
  }
  if (ngOk) process.stdout.write(`CPU per stream, nginx-rtmp at N=${ngOk.n}: ${mc(ngOk, 'nginx')} millicores; load generator ${mc(ngOk, 'publishers')} + ${mc(ngOk, 'bench')}\n`);
  // ---- issue 14: memory and children per stream, the load generator, the burst, the goals
  const all = [...steps, ...bursts];
  printTable(
    'Issue 14: per stream, net of the idle server (end of hold − idle, / N), the server\'s child processes (every descendant but tsx\'s esbuild, sampled each second), and the load generator (publishers + this process\'s watchers; saturated = machine ≥ 90 % busy or node publisher send lag p99 > 100 ms)',
    ['server', 'step', 'N', 'result', 'RSS MiB / stream', 'PSS MiB / stream', 'idle RSS MiB', 'end RSS MiB', 'children idle', 'children max', 'children / stream', 'publisher', 'publisher cores', 'millicores / publisher', 'send lag p50 / p99 / max ms', 'bench cores', 'machine busy %', 'load generator saturated'],
    all.map((s) => [
      s.server, s.mode, s.n, s.ok ? 'ok' : 'late/fail', fmt(s.memory?.perStreamRssMiB, 2), fmt(s.memory?.perStreamPssMiB, 2), fmt(s.memory?.idleRssMiB, 0), fmt(s.memory?.endRssMiB, 0),
      s.children?.idle, s.children?.max, fmt(s.children?.perStream, 2), s.loadGenerator?.publisher, fmt(s.loadGenerator?.publisherCores), fmt(s.loadGenerator?.publisherMillicoresPerStream, 1),
      s.loadGenerator?.lag ? `${s.loadGenerator.lag.lagP50Ms} / ${s.loadGenerator.lag.lagP99Ms} / ${s.loadGenerator.lag.lagMaxMs}` : '', fmt(s.loadGenerator?.benchCores), fmt(s.cpuBusyPct, 0),
      s.loadGenerator?.saturated ? `yes (${s.loadGenerator.why.join('; ')})` : 'no',
    ]),
  );
  if (bursts.length > 0) {
    printTable(
      `Issue 14 burst: ${burstN} publishers started within 1 s, source only, held ${burstHoldS} s; per stream the first listed segment is fetched when listed and its first video frame decoded and compared with the clip's keyframes (framemd5): keyframe 0 = seq 0 starts at the publisher's first keyframe, k > 0 = k GOPs lost`,
      ['server', 'N', 'lost a GOP', 'not judged', 'first listed not seq 0', 'keyframe index (streams)', 'seq 0 first video PTS median s', 'publisher first keyframe PTS s', 'late / segments'],
      bursts.map((b) => {
        const byK: Record<string, number> = {};
        for (const x of b.burst?.streams ?? []) { const k = x.keyframeIndex === undefined ? '?' : String(x.keyframeIndex); byK[k] = (byK[k] ?? 0) + 1; }
        const pts = (b.burst?.streams ?? []).flatMap((x) => (x.firstVideoPtsS === undefined ? [] : [x.firstVideoPtsS]));
        return [b.server, b.n, b.burst?.lostGop, b.burst?.unknown, b.burst?.firstNotSeq0, Object.entries(byK).map(([k, v]) => `${k}: ${v}`).join(', '),
          fmt(percentile(pts, 0.5), 3), fmt(b.burst?.publisherFirstKeyframePtsS, 3), `${b.late} / ${b.segments + b.overdue}`];
      }),
    );
  }
  // Memory per stream compared at the largest N both servers passed (else the largest both ran).
  const commonN = (okOnly: boolean): number | undefined => {
    const ns = steps.filter((x) => x.server === 'mediagate' && (!okOnly || x.ok)).map((x) => x.n)
      .filter((n) => steps.some((y) => y.server === 'nginx' && y.n === n && (!okOnly || y.ok)));
    return ns.length ? Math.max(...ns) : undefined;
  };
  const memN = commonN(true) ?? commonN(false);
  const mgMem = steps.find((x) => x.server === 'mediagate' && x.n === memN)?.memory;
  const ngMem = steps.find((x) => x.server === 'nginx' && x.n === memN)?.memory;
  const memRatioRss = mgMem && ngMem && ngMem.perStreamRssMiB > 0 ? mgMem.perStreamRssMiB / ngMem.perStreamRssMiB : undefined;
  const memRatioPss = mgMem && ngMem && ngMem.perStreamPssMiB > 0 ? mgMem.perStreamPssMiB / ngMem.perStreamPssMiB : undefined;
  // CPU per stream (millicores) at the largest N both servers ran (passed or not: the step that
  // fell behind is where the headroom is missing), and at each server's largest passing step.
  const cpuN = commonN(false);
  const mgCpuStep = steps.find((x) => x.server === 'mediagate' && x.n === cpuN);
  const ngCpuStep = steps.find((x) => x.server === 'nginx' && x.n === cpuN);
  const millicores = (st: Step | undefined, cores: number | undefined): number | undefined => (st && cores !== undefined && !Number.isNaN(cores) ? (1000 * cores) / st.n : undefined);
  const cpuPerStream = {
    cpuComparedAtN: cpuN,
    mediagateMillicoresPerStream: millicores(mgCpuStep, mgCpuStep && serverCores(mgCpuStep)),
    mediagateNodeMillicoresPerStream: millicores(mgCpuStep, mgCpuStep?.cpu['node']),
    mediagateMainThreadMillicoresPerStream: millicores(mgCpuStep, mgCpuStep?.cpu['nodeMain']),
    nginxMillicoresPerStream: millicores(ngCpuStep, ngCpuStep?.cpu['nginx']),
    mediagateMillicoresPerStreamAtSustained: millicores(mgOk, mgOk && serverCores(mgOk)),
    nginxMillicoresPerStreamAtSustained: millicores(ngOk, ngOk?.cpu['nginx']),
  };
  const cpuRatio = cpuPerStream.mediagateMillicoresPerStream !== undefined && cpuPerStream.nginxMillicoresPerStream ? cpuPerStream.mediagateMillicoresPerStream / cpuPerStream.nginxMillicoresPerStream : undefined;
  if (cpuN !== undefined) {
    process.stdout.write(`CPU per stream at N=${cpuN} (both servers): mediagate ${fmt(cpuPerStream.mediagateMillicoresPerStream, 1)} millicores (node ${fmt(cpuPerStream.mediagateNodeMillicoresPerStream, 1)}, its main thread ${fmt(cpuPerStream.mediagateMainThreadMillicoresPerStream, 1)}), nginx-rtmp ${fmt(cpuPerStream.nginxMillicoresPerStream, 1)}, ratio ${fmt(cpuRatio)}; one core = 1000 millicores: were all of it per stream, the main thread would saturate near ${cpuPerStream.mediagateMainThreadMillicoresPerStream ? Math.floor(1000 / cpuPerStream.mediagateMainThreadMillicoresPerStream) : '?'} streams\n`);
  }
  const mgSteps = all.filter((x) => x.server === 'mediagate');
  const childrenPerStream = mgSteps.length ? Math.max(...mgSteps.map((x) => x.children?.perStream ?? 0)) : undefined;
  const childrenMax = mgSteps.length ? Math.max(...mgSteps.map((x) => x.children?.max ?? 0)) : undefined;
  const mgBurst = bursts.find((b) => b.server === 'mediagate')?.burst;
  const ngBurst = bursts.find((b) => b.server === 'nginx')?.burst;
  const saturatedSteps = all.filter((x) => x.loadGenerator?.saturated).map((x) => `${x.server} ${x.mode} N=${x.n}`);
  const publisherMc = steps.filter((x) => x.n === Math.max(...steps.map((y) => y.n))).map((x) => x.loadGenerator?.publisherMillicoresPerStream ?? Number.NaN);
  const goals: GoalRow[] = [
    { goal: 'concurrent passthrough publishers, mediagate / nginx-rtmp (ramp to 256)', measured: ratio, target: `≥ ${GOAL_STREAMS_RATIO.toFixed(1)}`,
      // Both capped: equal at the cap (1.0). nginx capped alone: the ratio is an upper bound, so below 1 is a miss.
      met: ratio === undefined || !servers.includes('mediagate') ? undefined : ratio >= GOAL_STREAMS_RATIO },
    { goal: `memory per stream (net of idle, / N), mediagate / nginx-rtmp at N=${memN ?? '?'}, RSS`, measured: memRatioRss, target: `≤ ${GOAL_MEMORY_RATIO}`, met: memRatioRss === undefined ? undefined : memRatioRss <= GOAL_MEMORY_RATIO },
    { goal: `memory per stream (net of idle, / N), mediagate / nginx-rtmp at N=${memN ?? '?'}, PSS`, measured: memRatioPss, target: `≤ ${GOAL_MEMORY_RATIO}`, met: memRatioPss === undefined ? undefined : memRatioPss <= GOAL_MEMORY_RATIO },
    { goal: 'child processes of the gateway per passthrough stream (most over every step)', measured: childrenPerStream, target: '0', met: childrenPerStream === undefined ? undefined : childrenPerStream === 0 },
    { goal: `burst of ${burstN} publishers within 1 s: mediagate streams that lost a GOP (seq 0 not at the first keyframe)`, measured: mgBurst === undefined ? undefined : `${mgBurst.lostGop}${mgBurst.unknown ? ` (+${mgBurst.unknown} not judged)` : ''}`, target: '0', met: mgBurst === undefined ? undefined : mgBurst.lostGop === 0 && mgBurst.unknown === 0 },
    { goal: 'no step CPU-saturated (machine < 90 % busy, other work included; node publisher send lag p99 ≤ 100 ms)', measured: saturatedSteps.length ? `saturated at ${saturatedSteps.join(', ')}` : 'never', target: 'never', met: saturatedSteps.length === 0 },
  ];
  printGoals('Issue 14 goal 1 (same run, same machine)', goals);
  if (ngBurst) process.stdout.write(`nginx-rtmp under the same burst: ${ngBurst.lostGop} of ${burstN} streams lost a GOP, ${ngBurst.unknown} not judged\n`);
  if (mgMem && ngMem) process.stdout.write(`Memory per stream at N=${memN}: mediagate ${fmt(mgMem.perStreamRssMiB, 2)} MiB RSS / ${fmt(mgMem.perStreamPssMiB, 2)} MiB PSS, nginx-rtmp ${fmt(ngMem.perStreamRssMiB, 2)} / ${fmt(ngMem.perStreamPssMiB, 2)} MiB\n`);

  const wallS = (performance.now() - wallStart) / 1000;
  process.stdout.write(`wall ${wallS.toFixed(0)} s\n`);
  writeResult('ingest-scale', machine, {
    config: { quick, ramp, maxN, holdS, staggerS, pollMs, servers, bisect, clip: `clipRealBitrate(${clipS})`, wallS, publisher: publisherKind, burstN, burstHoldS, gatewayEnv: extraEnv },
    steps,
    bursts,
    goals,
    headline: {
      mediagateStreams: mgS.n, nginxStreams: ngS.n, ratio, mediagateCapped: mgS.capped, nginxCapped: ngS.capped,
      gatewayRssMiB: atSustained?.gatewayRssMiB, gatewayTreeRssMiB: atSustained?.gatewayTreeRssMiB, pollIntervalMs: pollMs,
      gatewayTreePssMiB: atSustained?.gatewayTreePssMiB,
      gatewayTreeRssMiBPerStream: atSustained?.gatewayTreeRssMiB === undefined ? undefined : atSustained.gatewayTreeRssMiB / atSustained.n,
      nginxRssMiBAtSameN: steps.find((x) => x.server === 'nginx' && x.n === atSustained?.n)?.nginxRssMiB,
      // issue 14, goal 1
      streamsRatioGoal: GOAL_STREAMS_RATIO,
      memoryComparedAtN: memN,
      mediagateRssMiBPerStream: mgMem?.perStreamRssMiB, mediagatePssMiBPerStream: mgMem?.perStreamPssMiB,
      nginxRssMiBPerStream: ngMem?.perStreamRssMiB, nginxPssMiBPerStream: ngMem?.perStreamPssMiB,
      memoryRatioRss: memRatioRss, memoryRatioPss: memRatioPss, memoryRatioGoal: GOAL_MEMORY_RATIO,
      gatewayChildrenPerStream: childrenPerStream, gatewayChildrenMax: childrenMax,
      burstStreams: burstN, burstLostGopMediagate: mgBurst?.lostGop, burstNotJudgedMediagate: mgBurst?.unknown,
      burstLostGopNginx: ngBurst?.lostGop, burstNotJudgedNginx: ngBurst?.unknown,
      publisher: publisherKind, publisherMillicoresPerStreamAtTopN: publisherMc.length ? Math.max(...publisherMc) : undefined,
      loadGeneratorSaturatedSteps: saturatedSteps.length,
      ...cpuPerStream, cpuRatioPerStream: cpuRatio,
    },
    goal: 'issue 14 goal 1: sustained passthrough publishers ≥ 1.0 × nginx-rtmp over a ramp to 256, memory per stream ≤ 2 × nginx\'s, no child process per stream, no lost GOP under a 32-publisher burst (issue 7: concurrent RTMP publishers at the clip\'s real bitrate, source only, before any segment is listed more than one segment duration after it closed; mediagate vs nginx-rtmp on the same machine)',
  }, out);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
