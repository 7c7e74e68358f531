/**
 * Transcoding throughput against the limit on this machine (issue 7): the same input and
 * the same ladder through
 *   (a) raw ffmpeg: one process transcoding the whole input with the ladder (split filter),
 *       the same filter graph and encoder options as the transcoder (buildLadderArgs);
 *   (b) mediagate: a gateway (no embedded transcoder, RTMP off) and 1, then 2, standalone
 *       transcoder processes at their default concurrency on one Redis; the input cut into
 *       2 s source segments, every segment pushed over HTTP at once (the whole backlog is
 *       queued from the start), timed from the first push until every rendition of every
 *       segment is listed in the segment index.
 *   (c) mediagate live (issue 14, `--modes live`): the same input published over RTMP as fast
 *       as the server takes it (`ffmpeg -i input -c copy -f flv`, no `-re`) to a gateway (no
 *       embedded transcoder) with one transcoder process; timed from the publisher's spawn
 *       until the stream has ended and every rendition of every seq is listed. It measures
 *       the live path end to end (RTMP ingest, segmenting, the live transcoding, listing)
 *       against the same raw ffmpeg; goal ≥ 0.95 of raw ffmpeg.
 *   (d) the live floor (`--modes floor`, or with `live`): the same publisher command pushing
 *       straight into one ffmpeg that listens for RTMP itself (`-listen 1 -f flv`) and runs
 *       raw ffmpeg's ladder arguments: no server, no segments, no Redis. Timed like (c), from
 *       the publisher's spawn to the ladder's exit; what any live path that takes the media
 *       from a separate RTMP publisher costs on this machine before a gateway adds anything.
 * Reported as real-time factors (media seconds per wall second) and (b)/(a) ratios, with a
 * profile of where the CPU and the wall time go (/proc accounting of every process, machine
 * idle time, ffmpeg processes running, per-segment phases logged by the transcoder).
 *
 * Usage: node --import tsx bench/throughput.ts [--quick] [--seconds 30] [--processes 1,2] [--concurrency 2] [--modes push,floor,live] [--live-readrate R] [--gateway-env 'MEDIAGATE_X=v …'] [--gateway-cpu-prof DIR] [--transcoder-cpu-prof DIR] [--rounds 3 (--quick: 1)] [--out file.json]
 *   --quick: 12 s of input instead of 30; --concurrency: jobs per transcoder process (default: the config default).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs, fmt, gatewayEnv, machineInfo, printGoals, printMachine, printTable, writeResult, type Cell, type GoalRow } from './lib/report.ts';
import { median, percentile } from './lib/stats.ts';
import { cutSegments, source1080p30 } from './lib/inputs.ts';
import { cpuSeconds, machineCpuSeconds, processTree } from './lib/procs.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { freePort } from '../test/helpers/ports.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess } from '../test/helpers/gateway-process.ts';
import { defaultConfig } from '../src/config/config.ts';
import { DEFAULT_LADDER } from '../src/config/config-schema.ts';
import { fitRendition, parseLadder, type FittedRendition } from '../src/domain/profile.ts';
import { SOURCE_RENDITION, segmentKey } from '../src/domain/segment.ts';
import { buildLadderArgs, type X264Preset } from '../src/transcode/ladder-args.ts';
import { probeSegment } from '../src/media/probe.ts';
import { createRedis } from '../src/redis/connections.ts';
import { RedisSegmentIndex } from '../src/hls/segment-index-store.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { silentLogger } from '../src/log/logger.ts';

const GOAL = 0.9;
/** Issue 14, goal 3: one transcoder process on the live path ≥ this × raw ffmpeg. */
const GOAL_LIVE = 0.95;
const { quick, out, values } = benchArgs(['seconds', 'processes', 'concurrency', 'modes', 'live-readrate', 'gateway-env', 'gateway-cpu-prof', 'transcoder-cpu-prof', 'rounds']);
/** live: a directory for the gateway's V8 CPU profile (`node --cpu-prof`, written when it stops; not allowed in NODE_OPTIONS). */
const gatewayCpuProfDir = values['gateway-cpu-prof'];
/** live: the same for the transcoder process. */
const transcoderCpuProfDir = values['transcoder-cpu-prof'];
const extraEnv = gatewayEnv(values['gateway-env']);
/** live: the publisher's `-readrate` (× real time); unset = as fast as the server takes it (the goal's method). */
const liveReadrate = values['live-readrate'] === undefined ? undefined : Number(values['live-readrate']);
if (liveReadrate !== undefined && !(liveReadrate > 0)) throw new Error('--live-readrate a positive number (× real time)');
const modes = (values.modes ?? 'push,floor,live').split(',');
if (modes.some((m) => m !== 'push' && m !== 'live' && m !== 'floor')) throw new Error('--modes a list of push, live, floor');
const seconds = Number(values.seconds ?? (quick ? 12 : 30));
/**
 * Rounds of raw ffmpeg, the floor and live in turn (push runs in the first round only). On a
 * shared or virtual machine the same run's wall time swings by ±15 % over minutes, so the live
 * ratio is taken per round (raw and live a minute apart at most) and the goal judged on the median.
 */
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 9)) throw new Error('--rounds 1..9');
const processCounts = (values.processes ?? '1,2').split(',').map(Number);
if (!(seconds >= 4 && seconds <= 60) || processCounts.some((n) => !(n >= 1 && n <= 8))) throw new Error('--seconds 4..60, --processes a list of 1..8');

const defaults = defaultConfig();
const preset = defaults.transcode.x264Preset as X264Preset;
const slotsPerProcess = Number(values.concurrency ?? defaults.transcode.concurrency);
if (!(slotsPerProcess >= 1 && slotsPerProcess <= 16)) throw new Error('--concurrency 1..16');
const keyPrefix = defaults.redis.keyPrefix;
const ladder = parseLadder(DEFAULT_LADDER);

const machine = await machineInfo();
const work = mkdtempSync(join(tmpdir(), 'mg-bench-throughput-'));
const inputMp4 = await source1080p30(seconds);
const segmentPaths = await cutSegments(inputMp4, join(work, 'source'));
const segmentBodies = segmentPaths.map((p) => readFileSync(p));
// Raw ffmpeg reads the same container the transcoder reads (the ladder arguments force the
// MPEG-TS demuxer): the whole input rewrapped once, stream copy.
const input = join(work, 'input.ts');
execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', inputMp4, '-c', 'copy', '-f', 'mpegts', input]);
const sourceInfo = await probeSegment(input);
const mediaS = sourceInfo.durationMs / 1000;
const fitted = ladder.map((p) => fitRendition(p, sourceInfo.video!)).filter((f): f is FittedRendition => f !== undefined);
const renditions = fitted.map((f) => f.profile.name);

// ---------------------------------------------------------------------------------------
// Accounting helpers

/** CPU seconds of one process: its own, and its exited children's (ffmpeg, ffprobe). */
type ProcCpu = { self: number; reapedChildren: number };
const cpuDelta = (a: ProcCpu, b: ProcCpu): ProcCpu => ({ self: b.self - a.self, reapedChildren: b.reapedChildren - a.reapedChildren });

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Direct children of `pid` with their command names (from /proc/<pid>/task/<pid>/children). */
function childrenOf(pid: number): { pid: number; comm: string }[] {
  return readText(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter(Boolean)
    .map((c) => ({ pid: Number(c), comm: readText(`/proc/${c}/comm`).trim() }));
}

/**
 * Samples every `intervalMs`: ffmpeg and ffprobe processes running under the given parent
 * pids, and machine busy/total CPU over the interval.
 */
function sampler(transcoderPids: readonly number[], intervalMs = 100): { stop(): Sample[] } {
  const samples: Sample[] = [];
  let last = machineCpuSeconds();
  const timer = setInterval(() => {
    let ffmpeg = 0;
    let ffprobe = 0;
    for (const pid of transcoderPids) {
      for (const c of childrenOf(pid)) {
        if (c.comm === 'ffmpeg') ffmpeg++;
        else if (c.comm === 'ffprobe') ffprobe++;
      }
    }
    const now = machineCpuSeconds();
    samples.push({ atMs: Date.now(), ffmpeg, ffprobe, busy: now.busy - last.busy, total: now.total - last.total });
    last = now;
  }, intervalMs);
  return { stop: () => { clearInterval(timer); return samples; } };
}
interface Sample { atMs: number; ffmpeg: number; ffprobe: number; busy: number; total: number }

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function push(baseUrl: string, manifestID: string, seq: number, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/live/${manifestID}/${seq}.ts`, {
      method: 'POST', agent, headers: { 'Content-Type': 'video/mp2t', 'Content-Length': String(body.length) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function getText(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return res.text();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/**
 * How often a run polls the segment index for its end, ms. The end time itself is the index's
 * last listing time, so polling less often costs no precision; it keeps this process's and
 * Redis's CPU (~100 HGETALLs a second at 50 ms) off the cores the run is measured on.
 */
const INDEX_POLL_MS = 250;

// ---------------------------------------------------------------------------------------
// (a) raw ffmpeg

interface RunCpu {
  /** CPU seconds over the run, by part. */
  ffmpegAndProbes: number; transcoderNode: number; gatewayNode: number; gatewayProbes: number; redis: number;
  machineBusy: number; machineTotal: number;
}

async function rawFfmpeg(): Promise<{ wallS: number; cpu: RunCpu; samples: Sample[] }> {
  const args = buildLadderArgs({
    inputPath: input, outputs: fitted.map((r, i) => ({ rendition: r, path: join(work, `raw-${i}.ts`) })),
    sourceAudioCodec: sourceInfo.audio?.codec, x264Preset: preset,
  });
  const m0 = machineCpuSeconds();
  const c0 = cpuSeconds(process.pid);
  const t0 = performance.now();
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const s = sampler([process.pid]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((res, rej) => { child.once('error', rej); child.once('exit', res); });
  const wallS = (performance.now() - t0) / 1000;
  const samples = s.stop();
  if (code !== 0) throw new Error(`raw ffmpeg exited with ${code}: ${stderr}`);
  const m1 = machineCpuSeconds();
  const d = cpuDelta(c0, cpuSeconds(process.pid));
  return {
    wallS, samples,
    cpu: { ffmpegAndProbes: d.reapedChildren, transcoderNode: 0, gatewayNode: 0, gatewayProbes: 0, redis: 0, machineBusy: m1.busy - m0.busy, machineTotal: m1.total - m0.total },
  };
}

// ---------------------------------------------------------------------------------------
// (d) the live floor: the publisher straight into an ffmpeg ladder that listens for RTMP

/**
 * The publisher of the live run and of the floor, the same command for both: the input as
 * FLV to `url`, stream copy, as fast as the server takes it (no -re) or at `--live-readrate`.
 */
function publisherArgs(url: string): string[] {
  return ['-nostdin', '-v', 'error', ...(liveReadrate === undefined ? [] : ['-readrate', String(liveReadrate)]), '-i', inputMp4, '-c', 'copy', '-f', 'flv', url];
}

/** True when something listens on 127.0.0.1:`port` over TCP (/proc/net/tcp, state 0A). */
function listening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readText('/proc/net/tcp').split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === `0100007F:${hexPort}` && f[3] === '0A';
  });
}

async function liveFloor(): Promise<{ wallS: number; publisherS: number; cpu: RunCpu }> {
  const port = await freePort();
  const url = `rtmp://127.0.0.1:${port}/live/floor`;
  const ladderArgs = buildLadderArgs({
    inputPath: input, outputs: fitted.map((r, i) => ({ rendition: r, path: join(work, `floor-${i}.ts`) })),
    sourceAudioCodec: sourceInfo.audio?.codec, x264Preset: preset,
  });
  // raw's arguments after its input (filter graph, outputs); before it, an RTMP listener instead of the file.
  const afterInput = ladderArgs.slice(ladderArgs.indexOf('-i') + 2);
  const ladder = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-copyts', '-listen', '1', '-f', 'flv', '-i', url, ...afterInput], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  ladder.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const ladderExit = new Promise<number | null>((res, rej) => { ladder.once('error', rej); ladder.once('exit', res); });
  ladderExit.catch(() => undefined);
  const deadline = Date.now() + 10_000;
  while (!listening(port)) {
    if (Date.now() > deadline || ladder.exitCode !== null) throw new Error(`the floor's ffmpeg did not listen on ${port}: ${stderr}`);
    await sleep(20);
  }
  const m0 = machineCpuSeconds();
  const c0 = cpuSeconds(process.pid);
  const ladderCpu0 = cpuSeconds(ladder.pid!).self;
  const t0 = performance.now();
  const publisher = spawn('ffmpeg', publisherArgs(url), { stdio: ['ignore', 'ignore', 'pipe'] });
  let pubErr = '';
  publisher.stderr.on('data', (d: Buffer) => { pubErr += d.toString(); });
  let publisherS = Number.NaN;
  const pubCode = await new Promise<number | null>((res, rej) => { publisher.once('error', rej); publisher.once('exit', (c) => { publisherS = (performance.now() - t0) / 1000; res(c); }); });
  if (pubCode !== 0) throw new Error(`floor publisher exited with ${pubCode}: ${pubErr}`);
  const code = await ladderExit;
  const wallS = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`the floor's ffmpeg exited with ${code}: ${stderr}`);
  const m1 = machineCpuSeconds();
  const d = cpuDelta(c0, cpuSeconds(process.pid));
  return {
    wallS, publisherS,
    // Reaped children: the publisher and the ladder (less what the ladder used while it waited).
    cpu: { ffmpegAndProbes: d.reapedChildren - ladderCpu0, transcoderNode: 0, gatewayNode: 0, gatewayProbes: 0, redis: 0, machineBusy: m1.busy - m0.busy, machineTotal: m1.total - m0.total },
  };
}

// ---------------------------------------------------------------------------------------
// (b) mediagate: gateway + N transcoders on one Redis, every segment pushed over HTTP

interface JobTiming { seq: number; queuedMs: number; spanMs: number; startedAtMs: number; finishedAtMs: number }
interface Phases { elapsedMs: number; fetchMs: number; probeMs: number; ffmpegMs: number; outputsMs: number }

interface PipelineRun {
  processes: number;
  wallS: number;
  cpu: RunCpu;
  samples: Sample[];
  jobs: JobTiming[];
  phases: Phases[];
  /** ffprobe runs the transcoders reported over all jobs of the run. */
  transcoderProbeRuns: number;
  /** Jobs taken by each transcoder process. */
  jobsPerProcess: number[];
  /** ffprobe CPU per call measured after the run (source segment, output segment), seconds. */
  probeCpu?: { sourceS: number; outputS: number };
}

/**
 * The gateway encodes the configured ladder as raw ffmpeg does: without it, the ladder fit
 * (docs/architecture.md, "A ladder that fits its source") caps each rendition's bitrate by the
 * input's, and the two sides would encode different bitrates, which is not the same work.
 * `--gateway-env 'MEDIAGATE_LADDER_FITS_SOURCE=true'` measures the fitted ladder instead.
 */
const SAME_LADDER_AS_RAW = { MEDIAGATE_LADDER_FITS_SOURCE: 'false' };

async function pipeline(processes: number, measureProbes: boolean): Promise<PipelineRun> {
  const redis = await startRedis();
  const deployment = await testDeployment(redis.url, {
    MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_LOG_LEVEL: 'warn',
    // The whole backlog is pushed at once: the last reply may wait for every segment before it.
    MEDIAGATE_PUSH_REPLY_TIMEOUT_MS: '600000',
    // And the queue runs the pushes in arrival order, not seq order: a seq that arrived last
    // finishes up to a whole backlog after later seqs, past the live playlists' wait for a
    // missing segment (hls.maxSegmentWaitMs, 10 s), which then skips it. A live stream never
    // has a 30 s backlog; the benchmark measures throughput, so the playlists wait for it.
    MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS: '600000',
    ...SAME_LADDER_AS_RAW,
    ...extraEnv,
  });
  const procs: MediagateProcess[] = [];
  const client = createRedis({ url: redis.url, logger: silentLogger(), name: 'bench-throughput' });
  try {
    const gateway = spawnMediagate('gateway', deployment.env);
    procs.push(gateway);
    const transcoders: MediagateProcess[] = [];
    for (let i = 0; i < processes; i++) {
      // info: each job logs `segment transcoded` with its phases.
      const t = spawnMediagate('transcoder', {
        ...deployment.env, MEDIAGATE_LOG_LEVEL: 'info', MEDIAGATE_TRANSCODE_CONCURRENCY: String(slotsPerProcess), MEDIAGATE_TRANSCODE_METRICS_PORT: String(await freePort()),
      });
      transcoders.push(t);
      procs.push(t);
    }
    await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
    await Promise.all(transcoders.map(async (t) => {
      const deadline = Date.now() + 60_000;
      while (!t.lines.some((l) => l.includes('transcoder ready'))) {
        if (Date.now() > deadline || t.child.exitCode !== null) throw new Error(`transcoder did not start:\n${t.lines.slice(-20).join('\n')}`);
        await sleep(100);
      }
    }));
    const index = new RedisSegmentIndex({ redis: client, keys: new RedisKeys(keyPrefix), retainSegments: 64 });

    // Warm-up (not timed): one segment per transcoder slot on another stream, so each
    // process has run ffmpeg once (fluent-ffmpeg's capability check, JIT) before timing.
    const warm = await Promise.all(Array.from({ length: processes * slotsPerProcess }, (_, i) => push(deployment.httpUrl, `throughput-warmup-${processes}p`, i, segmentBodies[i % segmentBodies.length]!)));
    if (warm.some((r) => r.status !== 200)) throw new Error(`warm-up push failed: ${warm.map((r) => `${r.status} ${r.text}`).join('; ')}`);

    const manifestID = `throughput-${processes}p`;
    const n = segmentBodies.length;
    const pids = { gateway: gateway.child.pid!, transcoders: transcoders.map((t) => t.child.pid!), redis: redis.pid };
    const snap = (): { m: { busy: number; total: number }; g: ProcCpu; t: ProcCpu[]; r: ProcCpu } => ({
      m: machineCpuSeconds(), g: cpuSeconds(pids.gateway), t: pids.transcoders.map(cpuSeconds), r: cpuSeconds(pids.redis),
    });
    const s0 = snap();
    const samp = sampler(pids.transcoders);
    const startedAtMs = Date.now();
    // seq 0 first: the first push that arrives opens the session and sets its first seq.
    const replies: Promise<{ status: number; text: string }>[] = [push(deployment.httpUrl, manifestID, 0, segmentBodies[0]!)];
    let failure: Error | undefined;
    const watch = (p: Promise<{ status: number; text: string }>, seq: number): void => {
      p.then((r) => { if (r.status !== 200) failure ??= new Error(`push of seq ${seq} answered ${r.status}: ${r.text}`); }, (err: Error) => { failure ??= err; });
    };
    watch(replies[0]!, 0);
    while (!(await index.getStream(manifestID))) {
      if (failure) throw failure;
      await sleep(2);
    }
    for (let seq = 1; seq < n; seq++) {
      replies.push(push(deployment.httpUrl, manifestID, seq, segmentBodies[seq]!));
      watch(replies[seq]!, seq);
    }

    // Done when every rendition (source included) lists all n segments; any failed segment fails the run.
    const deadline = Date.now() + Math.max(180_000, mediaS * 20_000);
    let lastListedAtMs = 0;
    for (;;) {
      if (failure) throw failure;
      const stats = await Promise.all([SOURCE_RENDITION, ...renditions].map((r) => index.renditionStats(manifestID, r)));
      const failed = stats.reduce((a, s) => a + s.failed, 0);
      if (failed > 0) throw new Error(`${failed} rendition segment(s) failed: ${[gateway, ...transcoders].flatMap((t) => t.lines).filter((l) => /fail|skipped/.test(l)).slice(-5).join('\n')}`);
      if (stats.every((s) => s.count === n)) {
        lastListedAtMs = Math.max(...stats.map((s) => s.lastListedAtMs));
        break;
      }
      if (Date.now() > deadline) throw new Error(`not every segment listed in time: ${stats.map((s) => s.count).join('/')} of ${n}`);
      await sleep(INDEX_POLL_MS);
    }
    const s1 = snap();
    const samples = samp.stop();
    const wallS = (lastListedAtMs - startedAtMs) / 1000;

    // Every reply is 200; the playlists list the last window of every rendition; the stream knows the ladder.
    const answered = await Promise.all(replies);
    const bad = answered.findIndex((r) => r.status !== 200);
    if (bad >= 0) throw new Error(`push of seq ${bad} answered ${answered[bad]!.status}: ${answered[bad]!.text}`);
    const stream = await index.getStream(manifestID);
    if (stream?.renditions.map((r) => r.name).join() !== renditions.join()) throw new Error(`stream renditions ${JSON.stringify(stream?.renditions)} != ${renditions.join()}`);
    const window = defaults.hls.windowSegments;
    const expected = Array.from({ length: Math.min(window, n) }, (_, i) => `${n - Math.min(window, n) + i}.ts`);
    for (const r of [SOURCE_RENDITION, ...renditions]) {
      const listed = (await getText(`${deployment.httpUrl}/stream/${manifestID}/${r}.m3u8`)).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('/').pop());
      if (listed.join() !== expected.join()) throw new Error(`playlist of ${r} lists ${listed.join()} instead of ${expected.join()}`);
    }
    const master = await getText(`${deployment.httpUrl}/stream/${manifestID}.m3u8`);
    for (const r of renditions) if (!master.includes(`${r}.m3u8`)) throw new Error(`master playlist lacks ${r}:\n${master}`);

    // Per job: BullMQ's own timestamps (added, processedOn, finishedOn).
    const jobs: JobTiming[] = [];
    for (let seq = 0; seq < n; seq++) {
      const [added, processedOn, finishedOn] = await client.hmget(`${keyPrefix}:transcode:${manifestID}.${stream!.session}.${seq}`, 'timestamp', 'processedOn', 'finishedOn');
      if (!added || !processedOn || !finishedOn) throw new Error(`job ${seq} has no BullMQ timestamps`);
      jobs.push({ seq, queuedMs: Number(processedOn) - Number(added), spanMs: Number(finishedOn) - Number(processedOn), startedAtMs: Number(processedOn), finishedAtMs: Number(finishedOn) });
    }
    // Per job: the phases the transcoder logged.
    const phases: Phases[] = [];
    /** ffprobe runs the transcoders reported (`ffprobeRuns`: 0 when the job carried the source facts and every output was measured in process). */
    let transcoderProbeRuns = 0;
    const jobsPerProcess = transcoders.map((t) => {
      let count = 0;
      for (const line of t.lines) {
        if (!line.includes('"msg":"segment transcoded"')) continue;
        const o = JSON.parse(line) as { manifestID: string; elapsedMs: number; phases?: Omit<Phases, 'elapsedMs'>; ffprobeRuns?: number };
        if (o.manifestID !== manifestID) continue;
        count++;
        transcoderProbeRuns += o.ffprobeRuns ?? 0;
        if (o.phases) phases.push({ elapsedMs: o.elapsedMs, ...o.phases });
      }
      return count;
    });
    if (jobsPerProcess.reduce((a, b) => a + b, 0) !== n) throw new Error(`transcoders logged ${jobsPerProcess.join('+')} jobs for ${n} segments`);

    const tDelta = pids.transcoders.map((_, i) => cpuDelta(s0.t[i]!, s1.t[i]!));
    const g = cpuDelta(s0.g, s1.g);
    const run: PipelineRun = {
      processes, wallS, samples, jobs, phases, jobsPerProcess, transcoderProbeRuns,
      cpu: {
        ffmpegAndProbes: tDelta.reduce((a, d) => a + d.reapedChildren, 0),
        transcoderNode: tDelta.reduce((a, d) => a + d.self, 0),
        gatewayNode: g.self, gatewayProbes: g.reapedChildren, redis: cpuDelta(s0.r, s1.r).self,
        machineBusy: s1.m.busy - s0.m.busy, machineTotal: s1.m.total - s0.m.total,
      },
    };

    if (measureProbes) {
      // ffprobe CPU per call, measured here one call at a time on this run's files: the transcoder
      // probes the source segment and each output, the gateway probes the source.
      const count = Math.min(n, quick ? 3 : 6);
      const c0 = cpuSeconds(process.pid).reapedChildren;
      for (let seq = 0; seq < count; seq++) await probeSegment(segmentPaths[seq]!);
      const c1 = cpuSeconds(process.pid).reapedChildren;
      // The newest outputs: older ones may already have left the live window and been deleted (segment keeping).
      for (let seq = n - count; seq < n; seq++) {
        for (const r of renditions) await probeSegment(join(deployment.env['MEDIAGATE_STORAGE_DIR']!, segmentKey(manifestID, stream!.session, r, seq)));
      }
      const c2 = cpuSeconds(process.pid).reapedChildren;
      run.probeCpu = { sourceS: (c1 - c0) / count, outputS: (c2 - c1) / (count * renditions.length) };
    }
    return run;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    client.disconnect();
    await redis.stop();
    deployment.cleanup();
  }
}


// ---------------------------------------------------------------------------------------
// (c) mediagate live: RTMP publish as fast as taken → gateway → one transcoder → listed

interface LiveRun {
  wallS: number;
  segments: number;
  /** CPU seconds over the run: each process with its exited and its live descendants. */
  cpu: { transcoder: number; transcoderNode: number; gateway: number; gatewayNode: number; redis: number; publisher: number; machineBusy: number; machineTotal: number };
  /**
   * The gateway's and redis-server's CPU seconds split at the first poll that saw the stream
   * ended (the source side done: every source segment listed, the feed ended), and that time (s
   * after the publisher's spawn): what ingest cost, and what they spend while the ladder runs on.
   */
  sourceSide: { endedS: number; gatewayUntilEnded: number; gatewayAfter: number; redisUntilEnded: number; redisAfter: number } | undefined;
  /** Redis over the run (`CONFIG RESETSTAT` at the start): `INFO commandstats` per command, and the bytes it read and wrote. */
  redisStats: { commands: Record<string, { calls: number; usec: number }>; netInputBytes: number; netOutputBytes: number };
  /** Publisher spawn → exited (all media handed to the server), s. */
  publisherS: number;
  samples: Sample[];
  /** Where the wall time goes: each step's time after the publisher's spawn, s (undefined: not logged). */
  timeline: LiveTimeline;
}

/**
 * The live run's steps, s after the publisher's spawn: the gateway's stream record (index), the
 * transcoder's session timeline (its `live session stopped` log line, epoch ms of the same
 * machine clock) and the segment index's last listings.
 */
interface LiveTimeline {
  streamStarted?: number; sessionOpened?: number; sessionClaimed?: number; sourceKnown?: number; ladderSpawned?: number; firstChunkIntoLadder?: number;
  firstRenditionSegment?: number; publisherDone?: number; streamEnded?: number; sourceLastListed?: number; feedEndRead?: number;
  ladderExited?: number; lastSeqRecorded?: number; lastRenditionListed?: number;
}

/** Timeline steps in order, with their labels. */
const LIVE_STEPS: [keyof LiveTimeline, string][] = [
  ['streamStarted', 'stream started (gateway, publish accepted)'], ['sessionOpened', 'live session opened (gateway)'],
  ['sessionClaimed', 'session claimed (transcoder)'], ['sourceKnown', 'source measurement known to the transcoder'], ['ladderSpawned', 'ladder ffmpeg spawned'], ['firstChunkIntoLadder', 'first source chunk written to the ladder'],
  ['firstRenditionSegment', 'first rendition segment out of the ladder'], ['publisherDone', 'publisher done (all media sent)'],
  ['streamEnded', 'stream ended (gateway)'], ['sourceLastListed', 'last source segment listed'], ['feedEndRead', 'feed end read (transcoder)'],
  ['ladderExited', 'ladder ffmpeg exited (encoders drained)'], ['lastSeqRecorded', 'last seq recorded (transcoder)'], ['lastRenditionListed', 'last rendition segment listed (the run\'s end)'],
];

/** CPU seconds of `pid` itself, its exited children, and every live descendant (with theirs). */
function treeCpuSeconds(pid: number): { self: number; all: number } {
  const own = cpuSeconds(pid);
  let all = own.self + own.reapedChildren;
  for (const p of processTree(pid)) if (p !== pid) { const c = cpuSeconds(p); all += c.self + c.reapedChildren; }
  return { self: own.self, all };
}

/**
 * Waits until every process in `pids` used at most 20 ms of CPU (2 clock ticks) in the last
 * 500 ms, at most `maxS`; resolves with the seconds waited.
 */
async function untilQuiet(pids: readonly number[], maxS = 30): Promise<number> {
  const t0 = performance.now();
  const cpu = (): number[] => pids.map((p) => cpuSeconds(p).self);
  let last = cpu();
  while ((performance.now() - t0) / 1000 < maxS) {
    await sleep(500);
    const now = cpu();
    const quiet = now.every((c, i) => c - last[i]! <= 0.02);
    last = now;
    if (quiet) break;
  }
  return (performance.now() - t0) / 1000;
}

/** `INFO commandstats` and `INFO stats` text → calls and µs per command (`cmdstat_` dropped, lower case), net bytes in and out. */
function parseRedisStats(text: string): LiveRun['redisStats'] {
  const commands: Record<string, { calls: number; usec: number }> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) commands[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) };
  const num = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { commands, netInputBytes: num('total_net_input_bytes'), netOutputBytes: num('total_net_output_bytes') };
}

async function liveRun(): Promise<LiveRun> {
  const redis = await startRedis();
  const deployment = await testDeployment(redis.url, { MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_LOG_LEVEL: 'warn', ...SAME_LADDER_AS_RAW, ...extraEnv });
  const procs: MediagateProcess[] = [];
  const client = createRedis({ url: redis.url, logger: silentLogger(), name: 'bench-throughput-live' });
  let publisher: ReturnType<typeof spawn> | undefined;
  try {
    const gateway = spawnMediagate('gateway', deployment.env, gatewayCpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${gatewayCpuProfDir}`]);
    procs.push(gateway);
    const transcoder = spawnMediagate('transcoder', { ...deployment.env, MEDIAGATE_LOG_LEVEL: 'info', MEDIAGATE_TRANSCODE_METRICS_PORT: String(await freePort()) },
      transcoderCpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${transcoderCpuProfDir}`]);
    procs.push(transcoder);
    await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
    const deadline0 = Date.now() + 60_000;
    while (!transcoder.lines.some((l) => l.includes('transcoder ready'))) {
      if (Date.now() > deadline0 || transcoder.child.exitCode !== null) throw new Error(`transcoder did not start:\n${transcoder.lines.slice(-20).join('\n')}`);
      await sleep(100);
    }
    const index = new RedisSegmentIndex({ redis: client, keys: new RedisKeys(keyPrefix), retainSegments: 64 });
    const manifestID = 'throughput-live';
    const pids = { gateway: gateway.child.pid!, transcoder: transcoder.child.pid!, redis: redis.pid };
    const snap = () => ({ m: machineCpuSeconds(), g: treeCpuSeconds(pids.gateway), t: treeCpuSeconds(pids.transcoder), r: cpuSeconds(pids.redis).self, me: cpuSeconds(process.pid).reapedChildren });
    // The gateway compiles its OpenAPI validators in the background after it answers /healthz
    // (~1 s of CPU, longer on a loaded machine): the window starts once both are quiet, so that
    // their figures are the stream's.
    const quietS = await untilQuiet([pids.gateway, pids.transcoder]);
    if (quietS > 0.6) process.stderr.write(`  gateway and transcoder quiet ${quietS.toFixed(1)} s after both were up\n`);
    await client.config('RESETSTAT');
    const s0 = snap();
    let sEnded: { s: ReturnType<typeof snap>; atS: number } | undefined;
    const samp = sampler([pids.transcoder]);
    const startedAtMs = Date.now();
    const t0 = performance.now();
    // No -re: the publisher sends as fast as the server reads (--live-readrate R: at most R × real time).
    publisher = spawn('ffmpeg', publisherArgs(`rtmp://127.0.0.1:${deployment.rtmpPort}/live/${manifestID}`), { stdio: ['ignore', 'ignore', 'pipe'] });
    let pubErr = '';
    publisher.stderr!.on('data', (d: Buffer) => { pubErr += d.toString(); });
    let publisherS: number | undefined;
    const pubExit = new Promise<number | null>((res, rej) => { publisher!.once('error', rej); publisher!.once('exit', (c) => { publisherS = (performance.now() - t0) / 1000; res(c); }); });
    pubExit.catch(() => undefined);
    const deadline = Date.now() + Math.max(180_000, mediaS * 20_000);
    let lastListedAtMs = 0;
    let segments = 0;
    for (;;) {
      if (publisherS !== undefined && (await pubExit) !== 0) throw new Error(`live publisher exited with ${await pubExit}: ${pubErr}`);
      const stream = await index.getStream(manifestID);
      if (stream?.state === 'ended' && sEnded === undefined) sEnded = { s: snap(), atS: (performance.now() - t0) / 1000 };
      if (stream?.state === 'ended' && stream.endSeq !== undefined) {
        const names = [SOURCE_RENDITION, ...stream.renditions.map((r) => r.name)];
        const stats = await Promise.all(names.map((r) => index.renditionStats(manifestID, r)));
        const failed = stats.reduce((a, x) => a + x.failed, 0);
        if (failed > 0) throw new Error(`live: ${failed} rendition segment(s) failed: ${transcoder.lines.filter((l) => l.includes('fail')).slice(-5).join('\n')}`);
        const n = stream.endSeq - stream.firstSeq;
        if (n === 0) throw new Error(`live: the stream ended without a source segment: the publisher sent everything before the gateway's segmenter saw it (a segmenter ffmpeg per stream that pulls from our RTMP server); try --live-readrate 1 to check the bench on such a gateway`);
        if (stream.renditions.map((r) => r.name).join() !== renditions.join()) throw new Error(`live stream renditions ${stream.renditions.map((r) => r.name).join()} != ${renditions.join()} (${JSON.stringify(stream)}):\n${gateway.lines.slice(-15).join('\n')}`);
        if (stats.every((x) => x.count === n)) {
          lastListedAtMs = Math.max(...stats.map((x) => x.lastListedAtMs));
          segments = n;
          break;
        }
      }
      if (Date.now() > deadline) throw new Error(`live: not every rendition of every seq listed in time (stream ${JSON.stringify(stream)})`);
      await sleep(INDEX_POLL_MS);
    }
    const s1 = snap();
    const samples = samp.stop();
    const redisStats = parseRedisStats(String(await client.info('commandstats')) + String(await client.info('stats')));
    // The session's own timeline, logged when it finishes (just after its last listing).
    const timelineDeadline = Date.now() + 3000;
    let sessionLine: Record<string, unknown> | undefined;
    while (!sessionLine && Date.now() < timelineDeadline) {
      sessionLine = transcoder.lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } })
        .find((o) => o['msg'] === 'live session stopped' && o['manifestID'] === manifestID && typeof o['timeline'] === 'object');
      if (!sessionLine) await sleep(50);
    }
    const at = (ms: unknown): number | undefined => (typeof ms === 'number' && ms > 0 ? (ms - startedAtMs) / 1000 : undefined);
    const t = (sessionLine?.['timeline'] ?? {}) as Record<string, number | undefined>;
    const stream = await index.getStream(manifestID);
    const sourceStats = await index.renditionStats(manifestID, SOURCE_RENDITION);
    const timeline: LiveTimeline = {
      streamStarted: at(stream?.startedAtMs), sessionOpened: at(t['openedAtMs']), sessionClaimed: at(t['claimedAtMs']), sourceKnown: at(t['sourceAtMs']), ladderSpawned: at(t['ladderSpawnedAtMs']),
      firstChunkIntoLadder: at(t['firstChunkAtMs']), firstRenditionSegment: at(t['firstSegmentAtMs']), publisherDone: publisherS,
      streamEnded: at(stream?.endedAtMs), sourceLastListed: at(sourceStats.lastListedAtMs), feedEndRead: at(t['feedEndAtMs']),
      ladderExited: at(t['ladderExitedAtMs']), lastSeqRecorded: at(t['lastRecordedAtMs']), lastRenditionListed: at(lastListedAtMs),
    };
    return {
      wallS: (lastListedAtMs - startedAtMs) / 1000, segments, samples, publisherS: publisherS ?? Number.NaN, timeline, redisStats,
      sourceSide: sEnded && {
        endedS: sEnded.atS, gatewayUntilEnded: sEnded.s.g.all - s0.g.all, gatewayAfter: s1.g.all - sEnded.s.g.all,
        redisUntilEnded: sEnded.s.r - s0.r, redisAfter: s1.r - sEnded.s.r,
      },
      cpu: {
        transcoder: s1.t.all - s0.t.all, transcoderNode: s1.t.self - s0.t.self, gateway: s1.g.all - s0.g.all, gatewayNode: s1.g.self - s0.g.self,
        redis: s1.r - s0.r, publisher: s1.me - s0.me, machineBusy: s1.m.busy - s0.m.busy, machineTotal: s1.m.total - s0.m.total,
      },
    };
  } finally {
    if (publisher && publisher.exitCode === null && publisher.signalCode === null) publisher.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.stop()));
    client.disconnect();
    await redis.stop();
    deployment.cleanup();
  }
}

// ---------------------------------------------------------------------------------------
// Runs

try {
  process.stderr.write(`input: ${mediaS.toFixed(1)} s of 1080p30, ${segmentPaths.length} segments; ladder ${renditions.join(' + ')} at ${preset}\n`);
  interface Round { rawS: number; floorS?: number; liveS?: number }
  const roundRows: Round[] = [];
  let raw!: Awaited<ReturnType<typeof rawFfmpeg>>;
  let floor: Awaited<ReturnType<typeof liveFloor>> | undefined;
  let live: LiveRun | undefined;
  const runs: PipelineRun[] = [];
  for (let round = 0; round < rounds; round++) {
    if (rounds > 1) process.stderr.write(`round ${round + 1} of ${rounds}\n`);
    process.stderr.write('raw ffmpeg...\n');
    const r = await rawFfmpeg();
    for (const [i, p] of (modes.includes('push') && round === 0 ? processCounts : []).entries()) {
      process.stderr.write(`mediagate with ${p} transcoder process(es)...\n`);
      runs.push(await pipeline(p, i === 0));
    }
    let f: typeof floor;
    if (modes.includes('floor')) {
      process.stderr.write('live floor: the publisher straight into an ffmpeg ladder listening for RTMP...\n');
      f = await liveFloor();
    }
    let l: LiveRun | undefined;
    if (modes.includes('live')) {
      process.stderr.write('mediagate live: RTMP as fast as taken, 1 transcoder process...\n');
      l = await liveRun();
    }
    // The tables below are the first round's; the rounds' ratios follow them.
    if (round === 0) {
      raw = r;
      floor = f;
      live = l;
    }
    roundRows.push({ rawS: r.wallS, ...(f ? { floorS: f.wallS } : {}), ...(l ? { liveS: l.wallS } : {}) });
  }

  // ---- main table
  const rawRtf = mediaS / raw.wallS;
  const ownCpu = (c: RunCpu): number => c.ffmpegAndProbes + c.transcoderNode + c.gatewayNode + c.gatewayProbes + c.redis;
  const busyPct = (c: RunCpu): number => (100 * c.machineBusy) / c.machineTotal;
  interface Row { run: string; processes?: number; inFlight?: number; wallS: number; realTimeFactor: number; ratioToRaw: number; machineBusyPct: number; cpuSPerMediaS: number; ownCpuSPerMediaS: number }
  const rows: Row[] = [
    { run: 'raw ffmpeg (one process, whole input)', wallS: raw.wallS, realTimeFactor: rawRtf, ratioToRaw: 1, machineBusyPct: busyPct(raw.cpu), cpuSPerMediaS: raw.cpu.machineBusy / mediaS, ownCpuSPerMediaS: ownCpu(raw.cpu) / mediaS },
    ...runs.map((r) => ({
      run: 'mediagate: HTTP push → queue → transcoders → listed', processes: r.processes, inFlight: r.processes * slotsPerProcess, wallS: r.wallS,
      realTimeFactor: mediaS / r.wallS, ratioToRaw: raw.wallS / r.wallS, machineBusyPct: busyPct(r.cpu), cpuSPerMediaS: r.cpu.machineBusy / mediaS, ownCpuSPerMediaS: ownCpu(r.cpu) / mediaS,
    })),
    ...(floor ? [{
      run: 'live floor: publisher (no -re) → ffmpeg listening for RTMP, raw\'s ladder arguments', wallS: floor.wallS, realTimeFactor: mediaS / floor.wallS, ratioToRaw: raw.wallS / floor.wallS,
      machineBusyPct: busyPct(floor.cpu), cpuSPerMediaS: floor.cpu.machineBusy / mediaS, ownCpuSPerMediaS: ownCpu(floor.cpu) / mediaS,
    }] : []),
    ...(live ? [{
      run: `mediagate live: RTMP (${liveReadrate === undefined ? 'no -re' : `-readrate ${liveReadrate}`}) → segments → 1 transcoder → listed`, processes: 1, wallS: live.wallS, realTimeFactor: mediaS / live.wallS, ratioToRaw: raw.wallS / live.wallS,
      machineBusyPct: (100 * live.cpu.machineBusy) / live.cpu.machineTotal, cpuSPerMediaS: live.cpu.machineBusy / mediaS,
      ownCpuSPerMediaS: (live.cpu.transcoder + live.cpu.gateway + live.cpu.redis) / mediaS,
    }] : []),
  ];
  process.stdout.write('\n');
  printMachine(machine);
  process.stdout.write(`Input ${sourceInfo.video!.width}x${sourceInfo.video!.height}@${sourceInfo.frameRate} ${mediaS.toFixed(1)} s (${segmentPaths.length} source segments of 2 s, all pushed at once); ladder ${renditions.join(' + ')}, x264 ${preset}\n`);
  printTable('Throughput', ['run', 'transcoder processes', 'segments in flight', 'wall s', 'real-time factor', '/ raw ffmpeg', 'CPU busy % (machine)', 'CPU s per media s (machine)', 'CPU s per media s (own processes)'],
    rows.map((r) => [r.run, r.processes, r.inFlight, fmt(r.wallS), fmt(r.realTimeFactor), fmt(r.ratioToRaw), fmt(r.machineBusyPct, 0), fmt(r.cpuSPerMediaS), fmt(r.ownCpuSPerMediaS)]));

  // ---- profile: CPU
  const probe = runs.find((r) => r.probeCpu)?.probeCpu;
  const transcoderProbeRuns = runs.reduce((a, r) => a + r.transcoderProbeRuns, 0);
  const probesPerSegment = { transcoder: transcoderProbeRuns / (runs.length * segmentPaths.length), gateway: 1 };
  // The transcoders' ffprobe CPU, from the runs they reported and the cost of one call (an output-sized probe).
  const probeCpuPerMediaSOf = (r: PipelineRun): number | undefined => (probe ? (r.transcoderProbeRuns * probe.outputS) / mediaS : undefined);
  const i0 = (x: number | undefined): Cell => (x === undefined ? undefined : fmt(x, 3));
  const cpuRows = [raw.cpu, ...runs.map((r) => r.cpu)].map((c, i) => {
    const label = i === 0 ? 'raw ffmpeg' : `mediagate, ${runs[i - 1]!.processes} transcoder(s)`;
    const probeCpuPerMediaS = i === 0 ? 0 : probeCpuPerMediaSOf(runs[i - 1]!);
    const ffmpegOnly = probeCpuPerMediaS === undefined ? c.ffmpegAndProbes / mediaS : c.ffmpegAndProbes / mediaS - probeCpuPerMediaS;
    return {
      run: label,
      ffmpeg: ffmpegOnly, transcoderProbes: probeCpuPerMediaS, transcoderNode: c.transcoderNode / mediaS, gatewayNode: c.gatewayNode / mediaS,
      gatewayProbes: c.gatewayProbes / mediaS, redis: c.redis / mediaS, own: ownCpu(c) / mediaS, otherOnMachine: (c.machineBusy - ownCpu(c)) / mediaS,
      idlePct: 100 - busyPct(c), ownBusyPct: (100 * ownCpu(c)) / c.machineTotal,
    };
  });
  printTable('Profile: CPU seconds per media second, by process (from /proc; ffprobe part measured separately, one call at a time)',
    ['run', 'ffmpeg', 'transcoder ffprobe', 'transcoder Node', 'gateway Node', 'gateway ffprobe', 'redis-server', 'all ours', 'other work on the machine', 'machine idle %', 'ours busy % of machine'],
    cpuRows.map((r) => [r.run, fmt(r.ffmpeg, 3), i0(r.transcoderProbes), i0(r.transcoderNode), i0(r.gatewayNode), i0(r.gatewayProbes), i0(r.redis), fmt(r.own, 3), fmt(r.otherOnMachine, 3), fmt(r.idlePct, 0), fmt(r.ownBusyPct, 0)]));
  if (probe) process.stdout.write(`\nffprobe CPU per call: ${fmt(probe.sourceS * 1000, 0)} ms on a 1080p source segment, ${fmt(probe.outputS * 1000, 0)} ms on an output segment; per segment the transcoders ran ffprobe ${fmt(probesPerSegment.transcoder, 2)} times on average (the job carries the gateway's source probe; H.264 outputs are measured in process), the gateway once (pushed segments are always probed).\n`);

  // ---- profile: wall time per segment and occupancy of the transcoder slots
  const slotRows = runs.map((r) => {
    const slots = r.processes * slotsPerProcess;
    // While the backlog lasts (until the last job started), every slot could run an ffmpeg.
    const lastStart = Math.max(...r.jobs.map((j) => j.startedAtMs));
    const backlog = r.samples.filter((s) => s.atMs <= lastStart);
    const tail = r.samples.filter((s) => s.atMs > lastStart);
    const meanFfmpeg = (xs: Sample[]): number | undefined => (xs.length ? xs.reduce((a, s) => a + s.ffmpeg, 0) / xs.length : undefined);
    const idleWhen = (xs: Sample[]): number | undefined => {
      const t = xs.reduce((a, s) => a + s.total, 0);
      return t > 0 ? 100 * (1 - xs.reduce((a, s) => a + s.busy, 0) / t) : undefined;
    };
    const med = (k: keyof Phases): number | undefined => median(r.phases.map((p) => p[k]));
    const jobMed = median(r.jobs.map((j) => j.spanMs));
    return {
      run: `mediagate, ${r.processes} transcoder(s)`, slots, jobs: r.jobs.length, jobsPerProcess: r.jobsPerProcess.join('+'),
      jobSpanMsMedian: jobMed, transcodeMsMedian: med('elapsedMs'), fetchMsMedian: med('fetchMs'), probeMsMedian: med('probeMs'),
      ffmpegMsMedian: med('ffmpegMs'), ffmpegMsP95: percentile(r.phases.map((p) => p.ffmpegMs), 0.95), outputsMsMedian: med('outputsMs'),
      ffmpegShareOfJobPct: jobMed ? (100 * (med('ffmpegMs') ?? 0)) / jobMed : undefined,
      ffmpegRunningBacklog: meanFfmpeg(backlog), noFfmpegPctBacklog: backlog.length ? (100 * backlog.filter((s) => s.ffmpeg === 0).length) / backlog.length : undefined, idlePctBacklog: idleWhen(backlog),
      tailS: (Math.max(...r.jobs.map((j) => j.finishedAtMs)) - lastStart) / 1000, ffmpegRunningTail: meanFfmpeg(tail), idlePctTail: idleWhen(tail),
    };
  });
  printTable('Profile: wall time per segment (transcoder log and BullMQ timestamps, medians) and how busy the slots were',
    ['run', 'slots', 'jobs (per process)', 'job ms (BullMQ)', 'transcode ms', 'fetch ms', 'source ffprobe ms', 'ffmpeg ms', 'ffmpeg p95 ms', 'output ffprobe + store ms', 'ffmpeg % of job',
      'ffmpeg running, backlog', 'time with no ffmpeg %, backlog', 'machine idle %, backlog', 'drain s', 'ffmpeg running, drain', 'machine idle %, drain'],
    slotRows.map((r) => [r.run, r.slots, `${r.jobs} (${r.jobsPerProcess})`, fmt(r.jobSpanMsMedian, 0), fmt(r.transcodeMsMedian, 0), fmt(r.fetchMsMedian, 0), fmt(r.probeMsMedian, 0),
      fmt(r.ffmpegMsMedian, 0), fmt(r.ffmpegMsP95, 0), fmt(r.outputsMsMedian, 0), fmt(r.ffmpegShareOfJobPct, 0), fmt(r.ffmpegRunningBacklog), fmt(r.noFfmpegPctBacklog, 0), fmt(r.idlePctBacklog, 0), fmt(r.tailS), fmt(r.ffmpegRunningTail), fmt(r.idlePctTail, 0)]));

  // ---- where the ratio goes: wall = CPU / (cores × busy fraction), so
  // ratio = (raw CPU per media s / pipeline CPU per media s) × (pipeline busy fraction / raw busy fraction), own processes only.
  const rawOwn = ownCpu(raw.cpu);
  const decomposition = runs.map((r) => {
    const own = ownCpu(r.cpu);
    const cpuFactor = rawOwn / own;
    const busyFactor = (own / r.wallS) / (rawOwn / raw.wallS);
    const row = cpuRows[runs.indexOf(r) + 1]!;
    // Extra CPU seconds per media second over raw ffmpeg, by cause.
    const extra = {
      ffmpegPerSegment: row.ffmpeg - cpuRows[0]!.ffmpeg,
      ffprobe: (row.transcoderProbes ?? 0) + row.gatewayProbes,
      nodeAndRedis: row.transcoderNode + row.gatewayNode + row.redis,
    };
    return { processes: r.processes, ratio: raw.wallS / r.wallS, cpuFactor, busyFactor, extraCpuPct: 100 * (own / rawOwn - 1), extraCpuPerMediaS: extra };
  });
  process.stdout.write('\nWhere the ratio goes (own processes): ratio = CPU factor (raw CPU / pipeline CPU per media s) × busy factor (pipeline cores used / raw cores used)\n');
  for (const d of decomposition) {
    process.stdout.write(`  ${d.processes} transcoder(s): ${fmt(d.ratio)} = ${fmt(d.cpuFactor)} (pipeline uses ${fmt(d.extraCpuPct, 0)} % more CPU per media s) × ${fmt(d.busyFactor)} (cores kept busy relative to raw ffmpeg)\n`
      + `    extra CPU s per media s over raw ffmpeg: ffmpeg one process per segment ${fmt(d.extraCpuPerMediaS.ffmpegPerSegment, 3)}, ffprobe ${fmt(d.extraCpuPerMediaS.ffprobe, 3)}, Node + Redis ${fmt(d.extraCpuPerMediaS.nodeAndRedis, 3)}\n`);
  }

  if (live) {
    const per = (x: number): string => fmt(x / mediaS, 3);
    const lf = live.samples.length ? live.samples.reduce((a, x) => a + x.ffmpeg, 0) / live.samples.length : undefined;
    printTable(`Live (issue 14): ${live.segments} source segments; CPU seconds per media second, each process with its children (exited and running); the publisher is not ours and not counted in "all ours"`,
      ['transcoder (Node + ffmpeg)', 'transcoder Node', 'gateway (Node + children)', 'gateway Node', 'redis-server', 'all ours', 'publisher ffmpeg', 'publisher done s', 'ffmpeg running under the transcoder (mean)', 'machine busy %'],
      [[per(live.cpu.transcoder), per(live.cpu.transcoderNode), per(live.cpu.gateway), per(live.cpu.gatewayNode), per(live.cpu.redis),
        per(live.cpu.transcoder + live.cpu.gateway + live.cpu.redis), per(live.cpu.publisher), fmt(live.publisherS), fmt(lf), fmt((100 * live.cpu.machineBusy) / live.cpu.machineTotal, 0)]]);
    const ss = live.sourceSide;
    if (ss) {
      process.stdout.write(`  gateway CPU s until the stream was seen ended (${fmt(ss.endedS)} s after the publisher's spawn) ${fmt(ss.gatewayUntilEnded, 3)}, after it ${fmt(ss.gatewayAfter, 3)}; `
        + `redis-server ${fmt(ss.redisUntilEnded, 3)} / ${fmt(ss.redisAfter, 3)}\n`);
    }
    const rs = live.redisStats;
    process.stdout.write(`  Redis read ${fmt(rs.netInputBytes / 1e6, 2)} MB and wrote ${fmt(rs.netOutputBytes / 1e6, 2)} MB over the run\n`);
    printTable('Live: Redis commands over the run (INFO commandstats; the bench\'s own index polling included)', ['command', 'calls', 'µs per call', 'ms in all'],
      Object.entries(rs.commands).sort((a, b) => b[1].usec - a[1].usec).map(([c, v]) => [c, v.calls, fmt(v.usec / v.calls, 1), fmt(v.usec / 1000, 1)]));
  }
  if (live) {
    const tl = live.timeline;
    let prev: number | undefined = 0;
    const rawS = raw.wallS;
    printTable(`Live: where the wall time goes (s after the publisher's spawn; Δ from the step before; raw ffmpeg took ${fmt(rawS)} s for the same input, the live run ${fmt(live.wallS)} s: live − raw ${fmt(live.wallS - rawS)} s)`,
      ['step', 's', 'Δ s'],
      // In time order (steps of the gateway and of the transcoder overlap).
      [...LIVE_STEPS].sort(([a], [b]) => (tl[a] ?? Infinity) - (tl[b] ?? Infinity)).map(([k, label]) => {
        const v = tl[k];
        const row: Cell[] = [label, fmt(v), v !== undefined && prev !== undefined ? fmt(v - prev) : undefined];
        if (v !== undefined) prev = v;
        return row;
      }));
    const span = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined ? b - a : undefined);
    process.stdout.write(`  before the ladder runs (publisher spawn → first chunk into the ladder): ${fmt(tl.firstChunkIntoLadder)} s (claim ${fmt(span(tl.sessionOpened, tl.sessionClaimed))} s after the open, ladder spawned ${fmt(span(tl.sessionClaimed, tl.ladderSpawned))} s after the claim); `
      + `after the feed's end was read: ladder drained ${fmt(span(tl.feedEndRead, tl.ladderExited))} s, last listing ${fmt(span(tl.ladderExited, tl.lastRenditionListed))} s after its exit.\n`);
  }
  const ratioOf = (p: number): number | undefined => rows.find((r) => r.processes === p && r.run.startsWith('mediagate: HTTP push'))?.ratioToRaw;
  if (floor) {
    process.stdout.write(`  live floor: publisher done ${fmt(floor.publisherS)} s after its spawn, the ladder exited ${fmt(floor.wallS)} s after it (raw ffmpeg ${fmt(raw.wallS)} s): ${fmt(raw.wallS / floor.wallS)} × raw`
      + `${live ? `; mediagate live / floor ${fmt(floor.wallS / live.wallS)}` : ''}\n`);
  }
  const roundRatio = (k: 'floorS' | 'liveS'): number[] => roundRows.flatMap((r) => (r[k] === undefined ? [] : [r.rawS / r[k]!]));
  if (rounds > 1) {
    printTable(`Rounds: raw ffmpeg, then the floor and live, in turn (${rounds} rounds); ratios to the same round's raw ffmpeg`, ['round', 'raw s', 'floor s', 'live s', 'floor / raw', 'live / raw'],
      [...roundRows.map((r, i): Cell[] => [i + 1, fmt(r.rawS), fmt(r.floorS), fmt(r.liveS), r.floorS === undefined ? undefined : fmt(r.rawS / r.floorS), r.liveS === undefined ? undefined : fmt(r.rawS / r.liveS)]),
        ['median', fmt(median(roundRows.map((r) => r.rawS))), undefined, undefined, roundRatio('floorS').length ? fmt(median(roundRatio('floorS'))) : undefined, roundRatio('liveS').length ? fmt(median(roundRatio('liveS'))) : undefined]]);
  }
  // The goal's figure: the median over the rounds of live / the same round's raw.
  const liveRatio = live ? median(roundRatio('liveS')) : undefined;
  const goals: GoalRow[] = [
    { goal: `transcoding throughput, live (RTMP ${liveReadrate === undefined ? 'as fast as taken' : `at -readrate ${liveReadrate}, not the goal's method`}), one transcoder process / raw ffmpeg, 1080p30 default ladder`, measured: liveRatio, target: `≥ ${GOAL_LIVE}`, met: liveRatio === undefined ? undefined : liveRatio >= GOAL_LIVE },
    ...(ratioOf(1) === undefined ? [] : [{ goal: 'transcoding throughput, HTTP push (per-segment jobs), one transcoder process / raw ffmpeg', measured: ratioOf(1), target: `≥ ${GOAL} (issue 7)`, met: (ratioOf(1) ?? 0) >= GOAL }]),
  ];
  printGoals('Issue 14 goal 3 (same run, same machine)', goals);
  writeResult('throughput', machine, {
    params: { gatewayEnv: extraEnv, modes, liveReadrate: liveReadrate ?? 'as fast as taken', seconds, mediaS, segments: segmentPaths.length, ladder: renditions, preset, transcoderConcurrency: slotsPerProcess, pushed: 'all segments at once (seq 0 first)', quick },
    rows,
    headline: {
      rawRealTimeFactor: rawRtf,
      realTimeFactor1Process: mediaS / (runs.find((r) => r.processes === 1)?.wallS ?? NaN),
      realTimeFactor2Processes: mediaS / (runs.find((r) => r.processes === 2)?.wallS ?? NaN),
      ratio1Process: ratioOf(1), ratio2Processes: ratioOf(2),
      goalMet: processCounts.every((p) => (ratioOf(p) ?? 0) >= GOAL),
      // issue 14, goal 3
      realTimeFactorLive1Process: live ? mediaS / live.wallS : undefined,
      ratioLive1Process: liveRatio,
      ratioLiveFloor: floor ? median(roundRatio('floorS')) : undefined,
      rounds: roundRows,
      goalLive: GOAL_LIVE,
      goalLiveMet: liveRatio === undefined ? undefined : liveRatio >= GOAL_LIVE,
    },
    goals,
    live,
    floor,
    goal: `live path with one transcoder process >= ${GOAL_LIVE} of raw ffmpeg (issue 14); HTTP push pipeline >= ${GOAL} of raw ffmpeg (issue 7)`,
    profile: {
      cpuPerMediaS: cpuRows, ffprobeCpuPerCallS: probe, probesPerSegment, perSegment: slotRows, decomposition,
      samples: runs.map((r) => ({ processes: r.processes, intervalMs: 100, ffmpegRunning: r.samples.map((s) => s.ffmpeg), machineBusyFraction: r.samples.map((s) => Number((s.busy / Math.max(s.total, 1e-9)).toFixed(3))) })),
      jobs: runs.map((r) => ({ processes: r.processes, jobs: r.jobs, phases: r.phases })),
    },
  }, out);
} finally {
  agent.destroy();
  rmSync(work, { recursive: true, force: true });
}
