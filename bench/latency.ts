/**
 * Live latency (issue 7): a real-time RTMP publish of a 1080p30 OBS-like input to
 *   (1) a real mediagate gateway process (embedded transcoder, default ladder, its own
 *       redis-server), and
 *   (2) nginx with Debian's libnginx-mod-rtmp (HLS on, 2 s fragments), the reference a
 *       user would run instead (RTMP in, HLS out, no transcoding),
 * one after the other, never both at once. Both are timed by the same outside observer
 * (bench/lib/playlist-watch.ts polling every media playlist every `--interval` ms).
 * Time zero is the moment the publishing ffmpeg (`-re -c copy`) is spawned.
 *
 * Reported: time to the first segment listed (mediagate: in `source`, in each rendition and
 * in every rendition; nginx-rtmp: in its playlist), lateness of each listed segment behind
 * the end of its media (first seen − (EXTINF start + duration), publisher timeline), and
 * for mediagate the per-segment time from the source segment complete (= listed in
 * `source`) to listed in every rendition. Where the first-rendition time goes is read from
 * the gateway's own log lines (JSON, epoch ms). Issue 14's goal 2 is printed as ratios with
 * their targets: first segment in every rendition / nginx-rtmp's first segment (≤ 1.2) and the
 * per-segment source → every rendition p95 (≤ 0.5 s); the JSON headline carries both, the
 * targets and whether they were met.
 *
 * The observer costs the gateway something: 4 playlists polled every 50 ms took ~12 % of
 * one core of the gateway process (measured once on an ended stream; 25 ms: ~18 %), while
 * nginx serves its one static playlist for next to nothing.
 *
 * Usage: node --import tsx bench/latency.ts [--quick] [--seconds 30] [--runs 3]
 *        [--interval 50] [--log-level debug|info] [--gateway-log dir] [--gateway-env 'MEDIAGATE_X=v …'] [--out file.json]
 * (debug, the default, adds ~70 log lines per stream and gives the full first-segment timeline)
 */
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchArgs, fmt, gatewayEnv, machineInfo, printGoals, printMachine, printTable, writeResult, type Cell, type GoalRow } from './lib/report.ts';
import { median, percentile } from './lib/stats.ts';
import { source1080p30 } from './lib/inputs.ts';
import { startNginxRtmp, type NginxRtmp } from '../test/helpers/nginx-rtmp.ts';
import { watchPlaylist, type PlaylistWatch, type SeenSegment } from './lib/playlist-watch.ts';
import { processTree } from './lib/procs.ts';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../test/helpers/gateway-process.ts';
import { DEFAULT_LADDER } from '../src/config/config-schema.ts';

const wallStart = performance.now();
const { quick, out, values } = benchArgs(['seconds', 'runs', 'interval', 'log-level', 'gateway-log', 'gateway-env']);
const extraEnv = gatewayEnv(values['gateway-env']);
// 12 s / 30 s: the same inputs as bench/throughput.ts, which runs before this one (cached in the temp dir).
const seconds = Number(values.seconds ?? (quick ? 12 : 30));
const runs = Number(values.runs ?? (quick ? 1 : 3));
const intervalMs = Number(values.interval ?? 50);
const logLevel = values['log-level'] ?? 'debug';
if (!(seconds >= 6 && seconds <= 600) || !(runs >= 1 && runs <= 20) || !(intervalMs >= 5 && intervalMs <= 50)) {
  throw new Error('--seconds 6-600, --runs 1-20, --interval 5-50 (ms)');
}
if (!['info', 'debug', 'warn'].includes(logLevel)) throw new Error('--log-level info|debug|warn');

const SOURCE = 'source';
const LADDER = [...DEFAULT_LADDER];
/** Issue 14, goal 2: publish → first segment in every rendition at most this × nginx-rtmp's first segment. */
const GOAL_FIRST_RATIO = 1.2;
/** Issue 14, goal 2: per segment, source listed → every rendition listed, p95 at most this, s. */
const GOAL_PER_SEGMENT_P95_S = 0.5;
/** After the publisher exits: how long the stream may take to end (ENDLIST everywhere). */
const DRAIN_TIMEOUT_MS = 60_000;
/** Before anything is listed: how long after publish start a rendition may take to appear. */
const FIRST_SEGMENT_TIMEOUT_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seqOf = (uri: string): number => {
  const m = /(\d+)\.ts$/.exec(uri);
  if (!m) throw new Error(`unexpected segment URI ${uri}`);
  return Number(m[1]);
};
const s = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : ms / 1000);

// ---------------------------------------------------------------- process bookkeeping

/** Every pid we started (directly or as a descendant seen while running); checked at the end. */
const startedPids = new Set<number>();
/** Stops for everything still running, in start order; run at the end whatever happened. */
const cleanups = new Set<() => Promise<void>>();
/** Registers a stop; the returned function runs it (once) and unregisters it. */
function track(stop: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = (): Promise<void> => {
    cleanups.delete(run);
    done ??= stop();
    return done;
  };
  cleanups.add(run);
  return run;
}
function noteTree(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const p of processTree(pid)) startedPids.add(p);
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
async function cleanupAll(): Promise<void> {
  for (const stop of [...cleanups].reverse()) await stop().catch((err: Error) => console.error(`cleanup: ${err.message}`));
}
process.once('SIGINT', () => { void cleanupAll().then(() => process.exit(130)); });

// ---------------------------------------------------------------- one observed publish

interface Listed { uri: string; seq: number; seenMs: number; startS: number; durationS: number }

interface Observed {
  server: 'mediagate' | 'nginx-rtmp';
  run: number;
  /** Playlist name -> segments in order first seen, times relative to publish start (ms). */
  playlists: Map<string, Listed[]>;
  publisherExitMs: number;
  endedMs: number | undefined;
  /** Gateway log lines (JSON) for the breakdown; empty for nginx. */
  log: Record<string, unknown>[];
  /** Date.now() at publish start, to place the gateway's log times. */
  t0EpochMs: number;
}

function collect(watch: PlaylistWatch, t0: number): Listed[] {
  return watch.segments.map((x: SeenSegment) => ({ uri: x.uri, seq: seqOf(x.uri), seenMs: x.firstSeenMs - t0, startS: x.startS, durationS: x.durationS }));
}

/** Publishes and watches until every playlist has a segment and the stream ended; throws with context otherwise. */
async function observe(opts: {
  server: Observed['server']; run: number; input: string; rtmpUrl: string; playlists: Map<string, string>;
  /** True once the stream is over for this server (ENDLIST, or quiet after the publisher left). */
  ended: (watches: Map<string, PlaylistWatch>, publisherExitMs: number, nowMs: number) => boolean;
  context: () => string;
  masterUrl?: string;
}): Promise<Observed> {
  const watches = new Map<string, PlaylistWatch>();
  for (const [name, url] of opts.playlists) watches.set(name, watchPlaylist(url, intervalMs));
  try {
    await sleep(3 * intervalMs); // the observer is polling before the publish starts
    const t0EpochMs = Date.now();
    const t0 = performance.now();
    const publisher = publish(opts.input, opts.rtmpUrl);
    noteTree(publisher.child.pid);
    const killPublisher = track(async () => { if (publisher.child.exitCode === null && publisher.child.signalCode === null) publisher.child.kill('SIGKILL'); });
    let publisherExitMs: number | undefined;
    void publisher.exited.then(() => { publisherExitMs = performance.now() - t0; }, () => undefined).finally(() => killPublisher());

    let masterChecked = opts.masterUrl === undefined;
    let endedMs: number | undefined;
    for (;;) {
      const now = performance.now() - t0;
      if (!masterChecked) masterChecked = await checkMaster(opts.masterUrl!, watches);
      const missing = [...watches].filter(([, w]) => w.segments.length === 0).map(([n]) => n);
      if (missing.length > 0 && now > FIRST_SEGMENT_TIMEOUT_MS) {
        throw new Error(`${opts.server} run ${opts.run}: no segment listed in ${missing.join(', ')} within ${FIRST_SEGMENT_TIMEOUT_MS / 1000} s of publish start\n${opts.context()}`);
      }
      if (publisherExitMs !== undefined) {
        const code = await publisher.exited;
        if (code !== 0) throw new Error(`${opts.server} run ${opts.run}: publisher exited with ${code}: ${publisher.stderr()}\n${opts.context()}`);
        if (missing.length === 0 && opts.ended(watches, publisherExitMs, now)) {
          endedMs = now;
          break;
        }
        if (now - publisherExitMs > DRAIN_TIMEOUT_MS) {
          const state = [...watches].map(([n, w]) => `${n}: ${w.segments.length} segments${w.ended ? ', ENDLIST' : ''}`).join('; ');
          throw new Error(`${opts.server} run ${opts.run}: stream did not end within ${DRAIN_TIMEOUT_MS / 1000} s after the publisher left (${state})\n${opts.context()}`);
        }
      }
      await sleep(100);
    }
    if (!masterChecked) throw new Error(`${opts.server} run ${opts.run}: master playlist never answered`);
    const playlists = new Map([...watches].map(([n, w]) => [n, collect(w, t0)]));
    return { server: opts.server, run: opts.run, playlists, publisherExitMs: publisherExitMs!, endedMs, log: [], t0EpochMs };
  } finally {
    for (const w of watches.values()) w.stop();
  }
}

/**
 * Once the master answers, checks that it lists exactly the playlists being watched (ours
 * come from the default ladder; a rendition the source cannot fill is dropped).
 * @returns whether the check is done
 */
async function checkMaster(url: string, watches: Map<string, PlaylistWatch>): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch {
    return false;
  }
  if (res.status !== 200) return false;
  const names = (await res.text()).split('\n').filter((l) => l.trim().endsWith('.m3u8')).map((l) => l.trim().split('/').pop()!.replace(/\.m3u8$/, ''));
  const extra = names.filter((n) => !watches.has(n));
  if (extra.length > 0) throw new Error(`master lists renditions not watched from the start: ${extra.join(', ')} (watched: ${[...watches.keys()].join(', ')})`);
  for (const n of [...watches.keys()]) {
    if (!names.includes(n)) {
      console.error(`note: master does not list ${n}; not waiting for it`);
      watches.get(n)!.stop();
      watches.delete(n);
    }
  }
  return true;
}

async function runMediagate(run: number, input: string): Promise<Observed> {
  const redis: TestRedis = await startRedis();
  const stopRedis = track(() => redis.stop());
  for (const pid of execFileSync('pgrep', ['-f', `redis-server 127.0.0.1:${redis.port}`], { encoding: 'utf8' }).split('\n').filter(Boolean)) startedPids.add(Number(pid));
  const deployment: TestDeployment = await testDeployment(redis.url, { MEDIAGATE_LOG_LEVEL: logLevel, MEDIAGATE_LOG_FORMAT: 'json', ...extraEnv });
  const removeData = track(async () => deployment.cleanup());
  const gateway: MediagateProcess = spawnMediagate('gateway', deployment.env);
  noteTree(gateway.child.pid);
  const stopGateway = track(() => gateway.stop());
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  const manifestID = `latency${run}`;
  const playlists = new Map([SOURCE, ...LADDER].map((r) => [r, `${deployment.httpUrl}/stream/${manifestID}/${r}.m3u8`]));
  const treeSampler = setInterval(() => noteTree(gateway.child.pid), 500);
  try {
    const logStart = gateway.lines.length;
    const observed = await observe({
      server: 'mediagate', run, input, rtmpUrl: `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${manifestID}`, playlists,
      masterUrl: `${deployment.httpUrl}/stream/${manifestID}.m3u8`,
      ended: (watches) => [...watches.values()].every((w) => w.ended),
      context: () => `gateway log tail:\n${gateway.lines.slice(-15).join('\n')}`,
    });
    if (values['gateway-log']) {
      const file = join(values['gateway-log'], `latency-gateway-run${run}.log`);
      mkdirSync(values['gateway-log'], { recursive: true });
      writeFileSync(file, `${gateway.lines.join('\n')}\n`);
      process.stdout.write(`gateway log of run ${run}: ${file}\n`);
    }
    observed.log = gateway.lines.slice(logStart).flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    return observed;
  } finally {
    clearInterval(treeSampler);
    noteTree(gateway.child.pid);
    await stopGateway();
    await stopRedis();
    await removeData();
  }
}

async function runNginx(run: number, input: string): Promise<Observed> {
  const nginx: NginxRtmp = await startNginxRtmp({ fragmentS: 2 });
  noteTree(nginx.pid);
  const stopNginx = track(() => nginx.stop());
  try {
    const stream = `latency${run}`;
    let lastCount = -1;
    let lastChangeMs = 0;
    return await observe({
      server: 'nginx-rtmp', run, input, rtmpUrl: nginx.rtmpUrl(stream), playlists: new Map([['hls', nginx.playlistUrl(stream)]]),
      // nginx-rtmp writes no ENDLIST: the stream is over when the last fragment (flushed at
      // unpublish) is listed, i.e. nothing new for 2 s after the publisher left.
      ended: (watches, exitMs, nowMs) => {
        const w = watches.get('hls')!;
        if (w.segments.length !== lastCount) { lastCount = w.segments.length; lastChangeMs = nowMs; }
        return w.ended || nowMs - Math.max(exitMs, lastChangeMs) > 2000;
      },
      context: () => '',
    });
  } finally {
    noteTree(nginx.pid);
    await stopNginx();
  }
}

// ---------------------------------------------------------------- analysis

interface FirstRow { server: string; playlist: string; firstS: number[]; segments: number; latenessS: number[] }

function firstRows(obs: Observed[], server: Observed['server']): FirstRow[] {
  const mine = obs.filter((o) => o.server === server);
  const names = [...mine[0]!.playlists.keys()];
  const rows: FirstRow[] = names.map((name) => {
    const lists = mine.map((o) => o.playlists.get(name)!);
    return {
      server, playlist: name,
      firstS: lists.map((l) => l[0]!.seenMs / 1000),
      segments: lists.reduce((n, l) => n + l.length, 0),
      latenessS: lists.flatMap((l) => l.map((x) => x.seenMs / 1000 - (x.startS + x.durationS))),
    };
  });
  if (server === 'mediagate') {
    // Every rendition (source included): the time at which a player could start on any variant.
    const every = mine.map((o) => {
      const lists = [...o.playlists.values()];
      const seqs = [...new Set(lists.flatMap((l) => l.map((x) => x.seq)))].sort((a, b) => a - b);
      return seqs.flatMap((seq) => {
        const seen = lists.map((l) => l.find((x) => x.seq === seq));
        if (seen.some((x) => x === undefined)) return [];
        const src = seen[0]!;
        return [{ seq, seenMs: Math.max(...seen.map((x) => x!.seenMs)), end: src.startS + src.durationS }];
      });
    });
    rows.push({
      server, playlist: 'every rendition',
      firstS: every.map((l) => l[0]!.seenMs / 1000),
      segments: every.reduce((n, l) => n + l.length, 0),
      latenessS: every.flatMap((l) => l.map((x) => x.seenMs / 1000 - x.end)),
    });
  }
  return rows;
}

interface SegmentSample { run: number; seq: number; sourceSeenS: number; renditionsSeenS: Record<string, number>; latencyS: number }

/** Per segment: listed in every rendition − listed in `source`, matched by seq. */
function perSegment(obs: Observed[]): { samples: SegmentSample[]; missing: number } {
  const samples: SegmentSample[] = [];
  let missing = 0;
  for (const o of obs.filter((x) => x.server === 'mediagate')) {
    const source = o.playlists.get(SOURCE)!;
    const renditions = [...o.playlists.keys()].filter((n) => n !== SOURCE);
    for (const src of source) {
      const seen: Record<string, number> = {};
      for (const r of renditions) {
        const hit = o.playlists.get(r)!.find((x) => x.seq === src.seq);
        if (hit) seen[r] = hit.seenMs / 1000;
      }
      if (Object.keys(seen).length !== renditions.length) { missing++; continue; }
      const all = Math.max(...Object.values(seen));
      samples.push({ run: o.run, seq: src.seq, sourceSeenS: src.seenMs / 1000, renditionsSeenS: seen, latencyS: all - src.seenMs / 1000 });
    }
  }
  return { samples, missing };
}

/** One step of the path to the first segment in every rendition, and which log line marks it. */
interface Step { key: string; label: string; level: 'debug' | 'info' | 'observer' }

const STEPS: Step[] = [
  { key: 'publishStart', label: 'publisher connected, RTMP publish started (NMS)', level: 'debug' },
  { key: 'streamStarted', label: 'publish authorized, stream started in the index', level: 'info' },
  { key: 'segmenterSpawned', label: 'segmenter started (in process; before issue 14: its ffmpeg spawned)', level: 'debug' },
  { key: 'publishAccepted', label: 'RTMP publish accepted', level: 'info' },
  { key: 'liveClaimed', label: 'live session claimed by the transcoder', level: 'info' },
  { key: 'liveLadderStarted', label: 'live ladder ffmpeg spawned', level: 'debug' },
  { key: 'segmenterConnected', label: 'segmenter connected (RTMP play from our NMS)', level: 'debug' },
  { key: 'segmenterProbed', label: 'segmenter input probed, output opened', level: 'debug' },
  { key: 'seq0Cut', label: 'seq 0 cut (2 s keyframe arrived), reported by the segmenter', level: 'debug' },
  { key: 'seq0SourceListedLog', label: 'seq 0 probed, stored, listed in source (gateway)', level: 'info' },
  { key: 'seq0SourceSeen', label: 'seq 0 listed in source (observer)', level: 'observer' },
  { key: 'seq0TranscodeStarted', label: 'seq 0 first chunk into the live ladder (per-segment path: job picked up)', level: 'info' },
  { key: 'seq0SourceProbed', label: 'seq 0 source probed by the transcoder', level: 'info' },
  { key: 'seq0FfmpegDone', label: 'seq 0 ladder ffmpeg done', level: 'info' },
  { key: 'seq0Transcoded', label: 'seq 0 every rendition cut, measured and stored (transcoded)', level: 'info' },
  { key: 'seq0Recorded', label: 'seq 0 renditions recorded in the index', level: 'debug' },
  { key: 'seq0AllSeen', label: 'seq 0 listed in every rendition (observer)', level: 'observer' },
];

/** Gateway log events of one mediagate run, placed on the publish timeline (s after publish start). */
function breakdown(o: Observed): Record<string, number | undefined> {
  const at = (line: Record<string, unknown> | undefined): number | undefined => (line ? (Number(line['time']) - o.t0EpochMs) / 1000 : undefined);
  const find = (pred: (l: Record<string, unknown>) => boolean): Record<string, unknown> | undefined => o.log.find(pred);
  const msg = (m: string | RegExp) => (l: Record<string, unknown>): boolean => typeof l['msg'] === 'string' && (typeof m === 'string' ? l['msg'] === m : m.test(l['msg']));
  const ffmpeg = (re: RegExp) => (l: Record<string, unknown>): boolean => l['msg'] === 'ffmpeg' && typeof l['ffmpeg'] === 'string' && re.test(l['ffmpeg']);
  const transcoded = find((l) => l['msg'] === 'segment transcoded' && l['seq'] === 0);
  const recorded = find((l) => l['msg'] === 'segment renditions recorded' && l['seq'] === 0);
  const transcodedAt = at(transcoded);
  const startedAt = transcodedAt !== undefined ? transcodedAt - Number(transcoded!['elapsedMs']) / 1000 : undefined;
  // `phases` (ms) when the transcoder logs them: fetch, probe, ffmpeg, outputs.
  const phases = transcoded?.['phases'] as Record<string, number> | undefined;
  const afterStart = (ms: number | undefined): number | undefined => (startedAt !== undefined && ms !== undefined ? startedAt + ms / 1000 : undefined);
  const seen0 = (name: string): number => (o.playlists.get(name)?.find((x) => x.seq === 0)?.seenMs ?? Number.NaN) / 1000;
  return {
    publishStart: at(find(msg(/start push/))),
    streamStarted: at(find(msg('stream started'))),
    segmenterSpawned: at(find(msg('segmenter started'))),
    publishAccepted: at(find(msg('RTMP publish accepted'))),
    liveClaimed: at(find(msg('live session claimed'))),
    liveLadderStarted: at(find(msg('live ladder started'))),
    segmenterConnected: at(find(msg(/start play/))),
    segmenterProbed: at(find(ffmpeg(/^Output #0/))),
    // ingest's enqueuedAtMs of seq 0 = when it took the completed segment from the segmenter
    seq0Cut: recorded ? at(recorded)! - Number(recorded['latencyMs']) / 1000 : at(find(ffmpeg(/Opening '.*\/1\.ts' for writing/))),
    seq0SourceListedLog: at(find(msg('first source segment listed'))),
    seq0SourceSeen: seen0(SOURCE),
    seq0TranscodeStarted: startedAt,
    seq0SourceProbed: phases ? afterStart((phases['fetchMs'] ?? 0) + (phases['probeMs'] ?? 0)) : undefined,
    seq0FfmpegDone: phases ? afterStart((phases['fetchMs'] ?? 0) + (phases['probeMs'] ?? 0) + (phases['ffmpegMs'] ?? 0)) : undefined,
    seq0Transcoded: transcodedAt,
    seq0Recorded: at(recorded),
    seq0AllSeen: Math.max(...[...o.playlists.keys()].map(seen0)),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const machine = await machineInfo();
  const prepStart = performance.now();
  const input = await source1080p30(seconds);
  const prepS = (performance.now() - prepStart) / 1000;
  const observed: Observed[] = [];
  for (let run = 1; run <= runs; run++) {
    observed.push(await runMediagate(run, input));
    observed.push(await runNginx(run, input));
  }

  const rowsFirst = [...firstRows(observed, 'mediagate'), ...firstRows(observed, 'nginx-rtmp')];
  const { samples, missing } = perSegment(observed);
  const latencies = samples.map((x) => x.latencyS);
  const renditionNames = [...observed[0]!.playlists.keys()].filter((n) => n !== SOURCE);
  const firstOf = (server: string, playlist: string): number => median(rowsFirst.find((r) => r.server === server && r.playlist === playlist)!.firstS)!;
  const headline = {
    mediagateFirstSourceS: firstOf('mediagate', SOURCE),
    mediagateFirstAllRenditionsS: firstOf('mediagate', 'every rendition'),
    nginxFirstSegmentS: firstOf('nginx-rtmp', 'hls'),
    ratioFirstRenditionsToNginx: firstOf('mediagate', 'every rendition') / firstOf('nginx-rtmp', 'hls'),
    perSegmentMedianS: median(latencies),
    perSegmentP95S: percentile(latencies, 0.95),
    // Issue 14, goal 2: the ratio above ≤ 1.2 and the per-segment p95 ≤ 0.5 s.
    goalRatioFirstRenditionsToNginx: GOAL_FIRST_RATIO,
    goalPerSegmentP95S: GOAL_PER_SEGMENT_P95_S,
    ratioFirstRenditionsToNginxGoalMet: firstOf('mediagate', 'every rendition') / firstOf('nginx-rtmp', 'hls') <= GOAL_FIRST_RATIO,
    perSegmentP95GoalMet: (percentile(latencies, 0.95) ?? Infinity) <= GOAL_PER_SEGMENT_P95_S,
  };
  const breakdowns: Record<string, number | undefined>[] = observed.filter((o) => o.server === 'mediagate').map((o) => ({ run: o.run, ...breakdown(o) }));

  printMachine(machine);
  process.stdout.write(`input: ${input.split('/').pop()} (1080p30, 6 Mb/s, 2 s GOP, AAC), published with ffmpeg -re -c copy for ${seconds} s; ` +
    `${runs} run(s) per server, alternating, never both at once; playlists polled every ${intervalMs} ms by one outside observer; ` +
    `time zero = publisher spawn; mediagate: default ladder ${LADDER.join(' + ')}, embedded transcoder, log level ${logLevel}\n`);

  const firstTable: Cell[][] = rowsFirst.map((r) => [
    r.server, r.playlist === 'hls' ? 'hls (source only, no transcoding)' : r.playlist, r.firstS.length, fmt(median(r.firstS)), fmt(Math.min(...r.firstS)), fmt(Math.max(...r.firstS)),
    r.segments, fmt(median(r.latenessS)), fmt(percentile(r.latenessS, 0.95)),
  ]);
  printTable('Time to first listed segment (s after publish start; median, min, max over runs) and lateness of every listed segment behind the end of its media',
    ['server', 'playlist', 'runs', 'first segment s', 'min', 'max', 'segments', 'lateness median s', 'lateness p95 s'], firstTable);

  // Growth over the stream: the first and the second half of each run's segments, pooled.
  const half = (which: 0 | 1, pick: (x: SegmentSample) => number): number[] => observed.filter((o) => o.server === 'mediagate').flatMap((o) => {
    const mine = samples.filter((x) => x.run === o.run);
    const cut = Math.floor(mine.length / 2);
    return (which === 0 ? mine.slice(0, cut) : mine.slice(cut)).map(pick);
  });
  const segRow = (label: string, pick: (x: SegmentSample) => number): Cell[] => {
    const d = samples.map(pick);
    return [label, d.length, fmt(median(d)), fmt(percentile(d, 0.95)), fmt(Math.max(...d)), fmt(median(half(0, pick))), fmt(median(half(1, pick)))];
  };
  printTable('mediagate per segment: source segment complete (= first listed in `source`) → listed in the rendition(s), s, pooled over runs',
    ['interval', 'segments', 'median s', 'p95 s', 'max s', '1st half median s', '2nd half median s'],
    [...renditionNames.map((r) => segRow(`source → ${r}`, (x) => x.renditionsSeenS[r]! - x.sourceSeenS)), segRow('source → every rendition', (x) => x.latencyS)]);
  if (missing > 0) process.stdout.write(`(${missing} source segments were never seen in some rendition and are left out)\n`);

  // In time order (a step's Δ is from the one before it on the timeline).
  const stepTimes = STEPS.flatMap((step) => {
    const v = breakdowns.map((b) => b[step.key]).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return v.length === 0 ? [] : [{ step, m: median(v)!, runs: v.length }];
  }).sort((x, y) => x.m - y.m);
  const stepRows: Cell[][] = stepTimes.map((x, i) => [x.step.label, fmt(x.m), i === 0 ? '' : fmt(x.m - stepTimes[i - 1]!.m), x.runs]);
  const hidden = STEPS.filter((st) => !breakdowns.some((b) => b[st.key] !== undefined && Number.isFinite(b[st.key]!))).map((st) => st.level);
  printTable(`mediagate: where the time to the first segment in every rendition goes (gateway log times, s after publish start, median over runs${hidden.includes('debug') ? '; more steps with --log-level debug' : ''})`,
    ['step', 's', 'Δ s', 'runs'], stepRows);

  printTable('Headline', ['measure', 'value'], [
    ['mediagate first segment in source, s', fmt(headline.mediagateFirstSourceS)],
    ['mediagate first segment in every rendition, s', fmt(headline.mediagateFirstAllRenditionsS)],
    ['nginx-rtmp first segment, s', fmt(headline.nginxFirstSegmentS)],
    ['ratio: mediagate every rendition / nginx-rtmp', fmt(headline.ratioFirstRenditionsToNginx)],
    ['mediagate per segment source → every rendition, median s', fmt(headline.perSegmentMedianS)],
    ['mediagate per segment source → every rendition, p95 s', fmt(headline.perSegmentP95S)],
  ]);
  const goals: GoalRow[] = [
    { goal: 'publish → first segment in every rendition / nginx-rtmp first segment', measured: headline.ratioFirstRenditionsToNginx, target: `≤ ${GOAL_FIRST_RATIO}`, met: headline.ratioFirstRenditionsToNginxGoalMet },
    { goal: 'per segment: source listed → every rendition listed, p95 s', measured: headline.perSegmentP95S, target: `≤ ${GOAL_PER_SEGMENT_P95_S} s`, met: headline.perSegmentP95GoalMet },
  ];
  printGoals('Issue 14 goal 2 (same run, same machine)', goals);

  const rows = rowsFirst.map((r) => ({
    server: r.server, playlist: r.playlist, runs: r.firstS.length, firstSegmentS: r.firstS, firstSegmentMedianS: median(r.firstS),
    segments: r.segments, latenessMedianS: median(r.latenessS), latenessP95S: percentile(r.latenessS, 0.95),
  }));
  const wallS = (performance.now() - wallStart) / 1000;
  process.stdout.write(`\nwall ${wallS.toFixed(1)} s (input preparation ${prepS.toFixed(1)} s)\n`);
  writeResult('latency', machine, {
    params: { gatewayEnv: extraEnv, seconds, runs, intervalMs, logLevel, ladder: LADDER, input, quick },
    rows,
    perSegment: { samples, missing, perRendition: Object.fromEntries(renditionNames.map((r) => {
      const d = samples.map((x) => x.renditionsSeenS[r]! - x.sourceSeenS);
      return [r, { medianS: median(d), p95S: percentile(d, 0.95) }];
    })) },
    breakdown: breakdowns,
    runs: observed.map((o) => ({
      server: o.server, run: o.run, publisherExitS: s(o.publisherExitMs), endedS: s(o.endedMs),
      playlists: Object.fromEntries([...o.playlists].map(([n, l]) => [n, l.map((x) => ({ uri: x.uri, seenS: x.seenMs / 1000, startS: x.startS, durationS: x.durationS }))])),
    })),
    headline,
    goals,
    goal: `first segment in every rendition ≤ ${GOAL_FIRST_RATIO} × nginx-rtmp's first segment; per segment source → every rendition p95 ≤ ${GOAL_PER_SEGMENT_P95_S} s (issue 14, goal 2)`,
    wallS,
  }, out);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`\nlatency benchmark FAILED: ${(err as Error).message}`);
} finally {
  await cleanupAll();
  await sleep(200);
  const left = [...startedPids].filter(alive);
  if (left.length > 0) {
    failed = true;
    console.error(`processes started by this benchmark still running: ${left.join(', ')}`);
    for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}
process.exit(failed ? 1 : 0);
