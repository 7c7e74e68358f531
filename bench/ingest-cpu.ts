/**
 * Ingest CPU probe (issue 14 goal 1): the gateway's CPU per passthrough RTMP publisher per
 * media second, under a moderate load a shared machine can carry, by CPU time rather than
 * wall-clock lateness. Several gateway code trees can be compared in the same run
 * (`--roots before,after`, run alternately, `--rounds` times), so a change is judged against
 * the same machine conditions.
 *
 * Per run: a fresh redis-server and gateway (ladder `[]`: source only, log level warn, as in
 * bench/ingest-scale.ts), N publishers of the clip from one load-generator process
 * (bench/lib/publisher-pool-main.ts) started over `--stagger-s`, every stream's source playlist
 * polled every `--poll-ms` (as ingest-scale does; 0 = no polling), `--warmup-s` then a window
 * of `--measure-s` in which the CPU is read:
 *  - gateway process (every thread: main thread, libuv pool, V8's GC helpers), from
 *    /proc/<pid>/stat; and its main thread alone, from /proc/<pid>/task/<pid>/stat (the thread
 *    that carries RTMP, muxing, index writes and HTTP);
 *  - redis-server; the load generator (never counted as the server's).
 * Reported per publisher per media second, i.e. millicores per publisher (1 ms of CPU per
 * media second = 1 millicore).
 * `--profile DIR` runs each gateway under `node --cpu-prof` and prints where the main thread's
 * time goes in the window (by component and by function, bench/lib/cpu-profile.ts).
 *
 * Usage: node --import tsx bench/ingest-cpu.ts [--n 64] [--warmup-s 10] [--measure-s 30] [--stagger-s 4]
 *   [--poll-ms 500] [--roots dirA,dirB] [--rounds 1] [--profile DIR] [--gateway-env 'MEDIAGATE_X=v …'] [--out file.json]
 * A root is a checkout of mediagate (its cmd/gateway.ts is run, with this checkout's node_modules
 * when it has none); default: this checkout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { commandStats, commandStatsDelta, startRedis } from '../test/helpers/redis-server.ts';
import { testDeployment, waitForHttp } from '../test/helpers/gateway-process.ts';
import { asFlv, clipRealBitrate } from './lib/inputs.ts';
import { summarizeCpuProfile, type ProfileComponent, type ProfileSummary } from './lib/cpu-profile.ts';
import { startPublisherPool } from './lib/publisher-pool.ts';
import { watchPlaylist, type PlaylistWatch } from './lib/playlist-watch.ts';
import { cpuSeconds, machineCpuSeconds, rssBytes, threadCpuSeconds } from './lib/procs.ts';
import { benchArgs, fmt, gatewayEnv, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';

const { out, values } = benchArgs(['n', 'warmup-s', 'measure-s', 'stagger-s', 'poll-ms', 'roots', 'rounds', 'profile', 'gateway-env']);
const n = Number(values.n ?? 64);
const warmupS = Number(values['warmup-s'] ?? 10);
const measureS = Number(values['measure-s'] ?? 30);
const staggerS = Number(values['stagger-s'] ?? 4);
const pollMs = Number(values['poll-ms'] ?? 500);
const rounds = Number(values.rounds ?? 1);
const repo = resolve(import.meta.dirname, '..');
const roots = (values.roots ? values.roots.split(',') : [repo]).map((r) => resolve(r));
const profileDir = values.profile ? resolve(values.profile) : undefined;
const extraEnv = gatewayEnv(values['gateway-env']);

/**
 * Where the gateway's main thread spends its time on the ingest path (first match from the
 * sample's leaf up decides; cpu-profile.ts ProfileComponent).
 */
const COMPONENTS: ProfileComponent[] = [
  { component: 'TS muxing (ts-segmenter, ts-muxer, h264, aac)', match: /\/src\/media\/(ts-segmenter|ts-muxer|h264|aac|bit-reader)/ },
  { component: 'FLV tag parse (flv-packets)', match: /\/src\/media\/flv-packets/ },
  { component: 'segment file writes (rtmp-segmenter, fs streams)', match: /\/src\/ingest\/rtmp-segmenter|node:internal\/fs\/streams/ },
  { component: 'packet tap', match: /\/src\/ingest\/rtmp\/packet-tap/ },
  { component: 'NMS FLV tag + broadcast', match: /node-media-server\/src\/(protocol\/flv|server\/broadcast)/ },
  { component: 'NMS RTMP chunk parsing + session', match: /node-media-server\/src\/(protocol\/rtmp|session\/rtmp|core)/ },
  { component: 'segment store + index (storage, ingest, Redis)', match: /\/src\/(storage|ingest|hls|redis)\/|ioredis|redis-parser|\/src\/domain\// },
  { component: 'HTTP: playlist requests', match: /express|router|node:_http_server|node:_http_common|\/src\/http\// },
  { component: 'logging + metrics', match: /pino|\/src\/log\/|prom-client|\/src\/metrics\// },
  { component: 'socket reads/writes (net, streams)', match: /node:net|node:internal\/stream_base_commons|node:internal\/streams/ },
  { component: 'GC', match: /^\(garbage collector\) / },
  { component: '(program)', match: /^\(program\) / },
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  root: string;
  round: number;
  n: number;
  measureS: number;
  /** millicores per publisher (= CPU ms per publisher per media second). */
  gatewayMc: number;
  mainThreadMc: number;
  redisMc: number;
  publishersMc: number;
  machineBusyPct: number;
  gatewayRssMiB: number;
  eventLoopP99Ms: number | undefined;
  segmentsListed: number;
  /**
   * Media seconds listed in the window (EXTINF of the segments first seen in it, all streams);
   * with polling on, the CPU per listed media second (`*PerMediaS`, ms) holds also when the
   * gateway falls behind (then the per-wall-second figures undercount: less media got through).
   */
  mediaSListed: number;
  gatewayMsPerMediaS?: number;
  mainThreadMsPerMediaS?: number;
  /** Redis commands per publisher per second in the window, by command (INFO commandstats). */
  redisCommands: Record<string, number>;
  profile?: ProfileSummary;
}

async function metricsP99(httpUrl: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const v = /^mediagate_nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([0-9.eE+-]+)$/m.exec(text)?.[1];
    return v === undefined ? undefined : Number(v) * 1000;
  } catch {
    return undefined;
  }
}

function startGateway(root: string, env: Record<string, string>, nodeArgs: string[]): { child: ChildProcess; lines: string[]; exited: Promise<void> } {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(root, 'cmd', 'gateway.ts')], {
    cwd: root, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (b: Buffer): void => { for (const l of b.toString().split('\n')) if (l && lines.length < 2000) lines.push(l); };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return { child, lines, exited: new Promise((r) => child.once('exit', () => r())) };
}

async function runOnce(root: string, round: number, flv: string): Promise<Run> {
  if (!existsSync(join(root, 'cmd', 'gateway.ts'))) throw new Error(`${root}: no cmd/gateway.ts`);
  const redis = await startRedis();
  const dep = await testDeployment(redis.url, { MEDIAGATE_LADDER: '[]', MEDIAGATE_LOG_LEVEL: 'warn', ...extraEnv });
  const profDir = profileDir ? join(profileDir, `${round}-${root.split('/').pop()}`) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const gw = startGateway(root, dep.env, profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=500'] : []);
  const pool = await startPublisherPool(flv);
  const watches: PlaylistWatch[] = [];
  try {
    await waitForHttp(`${dep.httpUrl}/healthz`, { exited: gw.exited.then(() => ({ code: null, signal: null })), lines: gw.lines, child: gw.child, stop: async () => undefined });
    const pid = gw.child.pid!;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await sleep(Math.max(0, t0 + (i * staggerS * 1000) / n - performance.now()));
      const name = `s${i}`;
      pool.start(name, `rtmp://127.0.0.1:${dep.rtmpPort}/live/${name}`);
      if (pollMs > 0) watches.push(watchPlaylist(`${dep.httpUrl}/stream/${name}/source.m3u8`, pollMs));
    }
    await sleep(warmupS * 1000);
    await metricsP99(dep.httpUrl); // resets the event-loop histogram
    const read = (): { gw: number; main: number; redis: number; pool: number; machine: { busy: number; total: number }; at: number; us: number } => ({
      gw: cpuSeconds(pid).self, main: threadCpuSeconds(pid), redis: cpuSeconds(redis.pid).self, pool: cpuSeconds(pool.pid).self,
      machine: machineCpuSeconds(), at: performance.now(), us: Number(process.hrtime.bigint() / 1000n),
    });
    const cmd0 = await commandStats(redis.url);
    const a = read();
    await sleep(measureS * 1000);
    const b = read();
    const cmds = commandStatsDelta(cmd0, await commandStats(redis.url));
    const p99 = await metricsP99(dep.httpUrl);
    const wallS = (b.at - a.at) / 1000;
    const mc = (x: number, y: number): number => (1000 * (y - x)) / wallS / n;
    const run: Run = {
      root, round, n, measureS: wallS,
      gatewayMc: mc(a.gw, b.gw), mainThreadMc: mc(a.main, b.main), redisMc: mc(a.redis, b.redis), publishersMc: mc(a.pool, b.pool),
      machineBusyPct: (100 * (b.machine.busy - a.machine.busy)) / Math.max(1e-9, b.machine.total - a.machine.total),
      gatewayRssMiB: rssBytes(pid) / 2 ** 20, eventLoopP99Ms: p99,
      segmentsListed: watches.reduce((s, w) => s + w.segments.length, 0),
      mediaSListed: watches.reduce((s, w) => s + w.segments.filter((x) => x.firstSeenMs >= a.at && x.firstSeenMs < b.at).reduce((t, x) => t + x.durationS, 0), 0),
      redisCommands: Object.fromEntries(Object.entries(cmds).filter(([k]) => k !== 'info').map(([k, v]) => [k, v / wallS / n])),
    };
    if (run.mediaSListed > 0) {
      run.gatewayMsPerMediaS = (1000 * (b.gw - a.gw)) / run.mediaSListed;
      run.mainThreadMsPerMediaS = (1000 * (b.main - a.main)) / run.mediaSListed;
    }
    for (const w of watches) w.stop();
    await pool.close();
    if (profDir) {
      gw.child.kill('SIGINT'); // a clean exit writes the profile
      await Promise.race([gw.exited, sleep(20_000)]);
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) run.profile = summarizeCpuProfile(join(profDir, file), 30, { fromUs: a.us, toUs: b.us }, COMPONENTS);
    }
    return run;
  } finally {
    for (const w of watches) w.stop();
    await pool.close();
    if (gw.child.exitCode === null && gw.child.signalCode === null) {
      gw.child.kill('SIGKILL');
      await gw.exited;
    }
    await redis.stop();
    dep.cleanup();
  }
}

const machine = await machineInfo();
printMachine(machine);
const flv = await asFlv(await clipRealBitrate(Math.min(60, Math.ceil((warmupS + measureS + staggerS + 5) / 10) * 10)));
const runs: Run[] = [];
for (let round = 0; round < rounds; round++) {
  for (const root of roots) {
    const run = await runOnce(root, round, flv);
    runs.push(run);
    process.stdout.write(`${root} round ${round}: gateway ${fmt(run.gatewayMc)} (main thread ${fmt(run.mainThreadMc)}) millicores per publisher (per listed media s: ${fmt(run.gatewayMsPerMediaS)} / ${fmt(run.mainThreadMsPerMediaS)} ms, ${fmt(run.mediaSListed / Math.max(1e-9, run.measureS * n), 2)} media s listed per wall s per stream), redis ${fmt(run.redisMc)}, publishers ${fmt(run.publishersMc)}; machine ${fmt(run.machineBusyPct, 0)} % busy, loop p99 ${fmt(run.eventLoopP99Ms, 0)} ms, ${run.segmentsListed} segments listed\n`
      + `  redis commands per publisher per s: ${Object.entries(run.redisCommands).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}\n`);
  }
}
printMachine(machine);
printTable(`Gateway CPU per passthrough publisher per media second (millicores = CPU ms per media s), N=${n}, ${measureS} s window after ${warmupS} s, playlists polled every ${pollMs} ms`,
  ['root', 'round', 'gateway (all threads)', 'main thread', 'gateway ms / listed media s', 'main thread ms / listed media s', 'listed media s / wall s / stream', 'redis', 'load generator', 'machine busy %', 'loop p99 ms', 'gateway RSS MiB'],
  runs.map((r) => [r.root, r.round, fmt(r.gatewayMc), fmt(r.mainThreadMc), fmt(r.gatewayMsPerMediaS), fmt(r.mainThreadMsPerMediaS), fmt(r.mediaSListed / (r.measureS * r.n)), fmt(r.redisMc), fmt(r.publishersMc), fmt(r.machineBusyPct, 0), fmt(r.eventLoopP99Ms, 0), fmt(r.gatewayRssMiB, 0)]));
if (roots.length > 1) {
  const med = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]!; };
  const medOf = (xs: (number | undefined)[]): number | undefined => { const v = xs.filter((x): x is number => x !== undefined); return v.length ? med(v) : undefined; };
  printTable('Median over rounds', ['root', 'gateway mc / publisher', 'main thread mc / publisher', 'gateway ms / listed media s', 'main thread ms / listed media s'],
    roots.map((root) => { const rs = runs.filter((r) => r.root === root); return [root, fmt(med(rs.map((r) => r.gatewayMc))), fmt(med(rs.map((r) => r.mainThreadMc))), fmt(medOf(rs.map((r) => r.gatewayMsPerMediaS))), fmt(medOf(rs.map((r) => r.mainThreadMsPerMediaS)))]; }));
}
for (const r of runs) {
  const p = r.profile;
  if (!p) continue;
  const perPubS = (ms: number): string => fmt(ms / r.n / (p.totalMs / 1000), 3);
  printTable(`Main-thread profile, ${r.root} round ${r.round}: busy ${fmt(p.busyMs, 0)} of ${fmt(p.totalMs, 0)} ms (ms per publisher per media s)`,
    ['component', 'ms / publisher / s', '% of busy'], (p.byComponent ?? []).map((c) => [c.component, perPubS(c.ms), fmt(c.shareOfBusy * 100, 1)]));
  printTable('Top functions by self time', ['function', 'area', 'ms / publisher / s', '% of busy'], p.byFunction.slice(0, 30).map((f) => [f.fn, f.area, perPubS(f.ms), fmt(f.shareOfBusy * 100, 1)]));
}
writeResult('ingest-cpu', machine, { config: { n, warmupS, measureS, staggerS, pollMs, rounds, roots, gatewayEnv: extraEnv }, runs }, out);
