/**
 * Ingest scale (issue 7, part 3): how many concurrent RTMP publishers of the clip at its real
 * bitrate (640x360 24 fps, ~421 kb/s H.264 + 96 kb/s AAC, 2 s GOP) mediagate sustains with the
 * `source` rendition only (ladder `[]`: no transcoding) before any segment is listed late,
 * against nginx-rtmp (HLS on, 2 s fragments, worker_processes auto) on the same machine.
 *
 * Per step: a fresh server (mediagate: redis-server + a real gateway process, ladder `[]`; nginx:
 * its own prefix), N ffmpeg publishers (`-re -stream_loop -1 -c copy`, each to its own stream
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
 * Usage: node --import tsx bench/ingest-scale.ts [--quick] [--ramp 1,4,8,16,24,32,48,64,96,128] [--max 128]
 *   [--hold-s 30] [--stagger-s 2] [--poll-ms 500] [--servers mediagate,nginx] [--bisect 1]
 *   [--log-level warn] [--out file.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../test/helpers/gateway-process.ts';
import { clipRealBitrate } from './lib/inputs.ts';
import { startNginxRtmp, type NginxRtmp } from './lib/nginx-rtmp.ts';
import { watchPlaylist, type PlaylistWatch } from './lib/playlist-watch.ts';
import { cpuSeconds, machineCpuSeconds, processTree, rssBytes, treeRssBytes } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { percentile } from './lib/stats.ts';

const { quick, out, values } = benchArgs(['ramp', 'max', 'hold-s', 'stagger-s', 'poll-ms', 'servers', 'bisect', 'log-level']);
/** --quick: three steps per server, ~85 s for both (+ ~4 s to derive the clip on a cold cache). */
const QUICK_RAMP = [8, 24, 48];
const FULL_RAMP = [1, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256];
const maxN = Number(values.max ?? (quick ? 48 : 128));
const ramp = (values.ramp ? values.ramp.split(',').map(Number) : quick ? QUICK_RAMP : FULL_RAMP).filter((n) => n >= 1 && n <= maxN);
const holdS = Number(values['hold-s'] ?? (quick ? 11 : 30));
const staggerS = Number(values['stagger-s'] ?? (quick ? 1 : 2));
const pollMs = Number(values['poll-ms'] ?? 500);
const servers = (values.servers ?? 'mediagate,nginx').split(',') as ServerKind[];
const bisect = values.bisect === undefined ? !quick : values.bisect === '1' || values.bisect === 'true';
const logLevel = values['log-level'] ?? 'warn';
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
   * CPU over the step in cores (CPU s / wall s), by kind: mediagate `node` (the gateway process),
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
    dep = await testDeployment(redis.url, { MEDIAGATE_LADDER: '[]', MEDIAGATE_LOG_LEVEL: logLevel });
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
  /** performance.now() just before spawning it. */
  spawnMs: number;
  /** When it began streaming (see startPublisher); the spawn time until then. */
  startMs: number;
  started: boolean;
  child: ChildProcess;
  stderr: () => string;
  watch: PlaylistWatch;
  exitedAt?: number;
}

/**
 * One publisher: ffmpeg `-re -stream_loop -1 -i clip -c copy -f flv <url>` (what
 * test/helpers/gateway-process.ts publish() runs, at log level info). Its start is when it
 * printed `Output #0`: ffmpeg prints that once connected and the FLV header is written, just
 * before its real-time (-re) read loop starts; the media clock of the stream starts there, not
 * at the spawn (process start-up and the RTMP handshake take 0.05-1 s, more on a loaded machine).
 */
function startPublisher(name: string, clip: string, url: string, watchUrl: string): Publisher {
  const spawnMs = performance.now();
  const child = spawn('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-v', 'info', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', url],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const pub: Publisher = { name, spawnMs, startMs: spawnMs, started: false, child, stderr: () => stderr, watch: watchPlaylist(watchUrl, pollMs) };
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString();
    if (!pub.started && /^Output #0/m.test(stderr.slice(-200) + text)) {
      pub.started = true;
      pub.startMs = performance.now();
    }
    if (stderr.length < 64 * 1024) stderr += text;
  });
  child.once('error', (err) => { stderr += `cannot run ffmpeg: ${err.message}\n`; pub.exitedAt ??= performance.now(); });
  child.once('exit', () => { pub.exitedAt ??= performance.now(); });
  return pub;
}

async function runStep(kind: ServerKind, n: number, clip: string): Promise<Step> {
  const stepStart = performance.now();
  const failures: string[] = [];
  const server = kind === 'mediagate' ? await startMediagate() : await startNginx();
  const serverStartS = (performance.now() - stepStart) / 1000;
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
    const redis = mg?.redis.pid;
    const redisCpu0 = redis ? cpuSeconds(redis).self : 0;
    const nginxCpu0 = mg ? 0 : cpuOf(processTree(server.pid));
    const machine0 = machineCpuSeconds();
    const self0 = process.cpuUsage();
    const logFrom = mg ? mg.gw.lines.length : 0;
    const t0 = performance.now();
    const spreadS = staggerFor(n);
    for (let i = 0; i < n; i++) {
      // Always yield: the start of a publisher is read from its stderr by this event loop.
      await sleep(Math.max(0, t0 + (i * spreadS * 1000) / n - performance.now()));
      const name = `s${i}`;
      publishers.push(startPublisher(name, clip, server.rtmpUrl(name), server.playlistUrl(name)));
    }
    // Every stream runs for about holdS (less its publisher's start-up).
    const tEnd = performance.now() + holdS * 1000;
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
    cpu['publishers'] = cpuOf(publishers.map((p) => p.child.pid!).filter(Boolean)) / wallS;
    if (mg) {
      const now = cpuSeconds(mg.pid);
      const children = processTree(mg.pid).filter((p) => p !== mg.pid);
      cpu['node'] = (now.self - serverCpu0.self) / wallS;
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
      if (!p.started) failures.push(`${p.name}: publisher never started streaming: ${p.stderr().trim().split('\n').pop()?.slice(0, 200) ?? ''}`);
      streams.push(detail);
      if (p.exitedAt !== undefined) {
        failures.push(`${p.name}: publisher exited at ${((p.exitedAt - p.startMs) / 1000).toFixed(1)} s (${p.child.exitCode ?? p.child.signalCode}): ${p.stderr().trim().split('\n').pop()?.slice(0, 200) ?? ''}`);
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
      server: kind, n, holdS, segments, late, overdue, lateFirst,
      maxLatenessMs: lateness.length ? Math.max(...lateness) : undefined,
      p95LatenessMs: percentile(lateness, 0.95),
      medianLatenessMs: percentile(lateness, 0.5),
      meanExtinfS: segments ? extinfSum / segments : undefined,
      failures, ok: failures.length === 0 && late === 0,
      cpuBusyPct, cpu, wallS: 0, streams, ...(mg ? { gatewayLog } : {}),
      publisherStartupMs: { median: percentile(startups, 0.5), max: startups.length ? Math.max(...startups) : undefined },
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
    for (const p of publishers) p.child.kill('SIGKILL');
    const tKill = performance.now();
    await Promise.all(publishers.map((p) => (p.child.exitCode === null && p.child.signalCode === null
      ? Promise.race([new Promise((r) => p.child.once('exit', r)), sleep(3000)]) : undefined)));
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
  return `${s.server} N=${s.n}: ${s.ok ? 'ok' : 'FAIL'} · late ${s.late}/${s.segments + s.overdue}${s.overdue ? ` (${s.overdue} overdue)` : ''}${s.lateFirst ? ` (${s.lateFirst} first segments)` : ''}, lateness median ${fmt(s.medianLatenessMs, 0)} p95 ${fmt(s.p95LatenessMs, 0)} max ${fmt(s.maxLatenessMs, 0)} ms · ${mem} · CPU busy ${s.cpuBusyPct.toFixed(0)} % (cores: ${cpu})${pipe} · publisher start-up median/max ${fmt(s.publisherStartupMs.median, 0)}/${fmt(s.publisherStartupMs.max, 0)} ms · ${s.wallS.toFixed(1)} s`
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
  process.stdout.write(`ramp ${ramp.join(',')} (cap ${maxN}), hold ${holdS} s per step, publishers started over max(${staggerS} s, N × 30 ms), playlists polled every ${pollMs} ms, servers ${servers.join(', ')}\n`);

  const steps: Step[] = [];
  const state = new Map<ServerKind, { good?: number; bad?: number }>(servers.map((s) => [s, {}]));
  const run = async (kind: ServerKind, n: number): Promise<Step> => {
    const t = performance.now();
    const s = await runStep(kind, n, clip);
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
    ['server', 'N', 'server cores', 'per stream (millicores)', 'node', 'segmenters', 'ffprobes', 'redis', 'publishers', 'bench', 'event loop p99 / max ms', 'cut ms', 'store ms', 'list ms'],
    steps.map((s) => {
      const st = (x: { median: number | undefined; p95: number | undefined } | undefined): string => (x && x.median !== undefined ? `${fmt(x.median, 0)} / ${fmt(x.p95, 0)}` : '');
      return [
        s.server, s.n, fmt(serverCores(s)), fmt((1000 * serverCores(s)) / s.n, 1),
        fmt(s.cpu['node']), fmt(s.cpu['segmenters']), fmt(s.cpu['reaped']), fmt(s.cpu['redis']),
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
    process.stdout.write(`CPU per stream, mediagate at N=${mgOk.n}: ${fmt((1000 * serverCores(mgOk)) / mgOk.n, 1)} millicores = node ${mc(mgOk, 'node')} + segmenter ffmpeg ${mc(mgOk, 'segmenters')}`
      + ` + ffprobe per segment ${mc(mgOk, 'reaped')} + redis ${mc(mgOk, 'redis')}; load generator ${mc(mgOk, 'publishers')} (publisher ffmpeg) + ${mc(mgOk, 'bench')} (watchers)\n`);
  }
  if (ngOk) process.stdout.write(`CPU per stream, nginx-rtmp at N=${ngOk.n}: ${mc(ngOk, 'nginx')} millicores; load generator ${mc(ngOk, 'publishers')} + ${mc(ngOk, 'bench')}\n`);
  const wallS = (performance.now() - wallStart) / 1000;
  process.stdout.write(`wall ${wallS.toFixed(0)} s\n`);
  writeResult('ingest-scale', machine, {
    config: { quick, ramp, maxN, holdS, staggerS, pollMs, servers, bisect, clip: `clipRealBitrate(${clipS})`, wallS },
    steps,
    headline: {
      mediagateStreams: mgS.n, nginxStreams: ngS.n, ratio, mediagateCapped: mgS.capped, nginxCapped: ngS.capped,
      gatewayRssMiB: atSustained?.gatewayRssMiB, gatewayTreeRssMiB: atSustained?.gatewayTreeRssMiB, pollIntervalMs: pollMs,
      gatewayTreePssMiB: atSustained?.gatewayTreePssMiB,
      gatewayTreeRssMiBPerStream: atSustained?.gatewayTreeRssMiB === undefined ? undefined : atSustained.gatewayTreeRssMiB / atSustained.n,
      nginxRssMiBAtSameN: steps.find((x) => x.server === 'nginx' && x.n === atSustained?.n)?.nginxRssMiB,
    },
    goal: 'issue 7: concurrent RTMP publishers at the clip\'s real bitrate, source only, before any segment is listed more than one segment duration after it closed; mediagate vs nginx-rtmp on the same machine',
  }, out);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
