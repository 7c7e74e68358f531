/**
 * Live video-to-video end-to-end latency (issue 17): input frame → output frame, as a viewer
 * of the `<stream>-out` HLS stream sees it. A real gateway process (embedded transcoder, its
 * own redis-server) and one reference AI worker process serving `live-video-to-video`
 * (mediagate/cpu-filter, `--filter`, default negate); the clip with a frame counter burned
 * in (test/helpers/frame-counter.ts: 16-bit block pattern drawn by ffmpeg drawbox) published
 * over RTMP in real time (`-re -c copy`); once the input is listed, `start`.
 *
 * Frame n is taken as sent at spawn + n / 24 s (the publisher's `-re` pacing from its first
 * packet; ffmpeg's own start, ~0.1 s, is counted as latency). The `-out` source playlist is
 * polled every `--interval` ms; each new segment is decoded, the counter of each frame read
 * (inverted back when the marker block shows a negation) and the frame's latency is the
 * time its segment was first listed − its sent time. A frame seen twice (frame-rate changes)
 * counts once, at its first listing. Reported: median and p95 over frames; the same over each
 * segment's newest frame (the part of the latency not spent filling segments); frames
 * delivered (distinct counters seen / frames sent from the first output frame's on); the
 * gateway's own latency metric (input segment sent to the worker → its output segment back,
 * the part spent in trickle and the worker); and, from the same run, the same frames' latency
 * in the input's own HLS (what any stream costs: ingest and 2 s segments).
 *
 * Usage: node --import tsx bench/live-v2v.ts [--quick] [--seconds 40] [--filter negate|grayscale|none]
 *        [--interval 50] [--gateway-env 'MEDIAGATE_X=v …'] [--out file.json]
 */
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { benchArgs, fmt, gatewayEnv, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { median, percentile } from './lib/stats.ts';
import { counterClip } from '../test/helpers/frame-counter.ts';
import { startLiveCluster, publishLoop, startLive, waitFor, OutputWatch, ADMIN_TOKEN, type SeenOutSegment } from '../test/helpers/live-cluster.ts';
import { fetchMedia } from '../test/helpers/hls.ts';

const wallStart = performance.now();
const { quick, out, values } = benchArgs(['seconds', 'filter', 'interval', 'gateway-env']);
const seconds = Number(values.seconds ?? (quick ? 20 : 40));
const filter = values.filter ?? 'negate';
const intervalMs = Number(values.interval ?? 50);
if (!(seconds >= 10 && seconds <= 60)) throw new Error('--seconds 10-60 (the clip is 60 s)');
if (!['negate', 'grayscale', 'none'].includes(filter)) throw new Error('--filter negate|grayscale|none');
const FPS = 24;
const STREAM = 'bench';

/**
 * Per distinct counter, the time from its sending to the first listing of a segment that holds
 * it, s; and per segment, the same for its newest frame.
 */
function frameLatencies(segments: readonly SeenOutSegment[], inverted: boolean, sentAtMs: number): {
  firstSeen: Map<number, number>; latencies: number[]; newest: number[]; unreadable: number; wrongPolarity: number;
} {
  const firstSeen = new Map<number, number>();
  const newest: number[] = [];
  let unreadable = 0;
  let wrongPolarity = 0;
  const sent = (n: number): number => sentAtMs + (n * 1000) / FPS;
  for (const seg of segments) {
    let segNewest: number | undefined;
    for (const f of seg.frames ?? []) {
      if (f.n === undefined) { unreadable++; continue; }
      if (f.inverted !== inverted) wrongPolarity++;
      if (!firstSeen.has(f.n)) firstSeen.set(f.n, seg.seenAtMs);
      segNewest = Math.max(segNewest ?? -1, f.n);
    }
    if (segNewest !== undefined) newest.push((seg.seenAtMs - sent(segNewest)) / 1000);
  }
  const latencies = [...firstSeen.entries()].map(([n, seen]) => (seen - sent(n)) / 1000);
  return { firstSeen, latencies, newest, unreadable, wrongPolarity };
}

const machine = await machineInfo();
printMachine(machine);
const loadBefore = loadavg();
const clip = await counterClip(seconds);
const cluster = await startLiveCluster({ workers: 1, gatewayEnv: { MEDIAGATE_LOG_LEVEL: 'info', ...gatewayEnv(values['gateway-env']) } });
try {
  const { gateway } = cluster;
  const publisher = publishLoop(clip, gateway.rtmpUrl(STREAM));
  const watch = new OutputWatch(gateway.httpUrl, `${STREAM}-out`, { intervalMs });
  // The input's own source playlist, watched the same way: the part of the latency any stream has.
  const watchInput = new OutputWatch(gateway.httpUrl, STREAM, { intervalMs });
  await waitFor('input listed', async () => ((await fetchMedia(`${gateway.httpUrl}/stream/${STREAM}/source.m3u8`).catch(() => undefined))?.segments.length ?? 0) > 0 || undefined, 30_000);
  const startRequestMs = Date.now();
  const started = await startLive(gateway.httpUrl, STREAM, { filter });
  if (started.status !== 200) throw new Error(`start: ${started.status} ${started.text}`);
  const startReplyMs = Date.now() - startRequestMs;
  await publisher.exited;
  // The output is done when no new segment was listed for 8 s after the input ended.
  let count = -1;
  let quietSince = Date.now();
  while (Date.now() - quietSince < 8000) {
    if (watch.segments.length !== count) { count = watch.segments.length; quietSince = Date.now(); }
    await new Promise((r) => setTimeout(r, 500));
  }
  await watch.stop();
  await watchInput.stop();
  const metricsText = await (await fetch(`${gateway.httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text().catch(() => '');

  const output = frameLatencies(watch.segments, filter === 'negate', publisher.startedAtMs);
  const input = frameLatencies(watchInput.segments, false, publisher.startedAtMs);
  const counters = [...output.firstSeen.keys()].sort((a, b) => a - b);
  const sent = counters.length > 0 ? seconds * FPS - counters[0]! : 0;
  const delivered = sent > 0 ? counters.length / sent : 0;
  // The gateway's own figure: input segment sent to the worker → its output segment back (mean of the histogram).
  const metric = (name: string): number | undefined => {
    const line = metricsText.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };
  const latencySum = metric('mediagate_live_v2v_latency_seconds_sum');
  const latencyCount = metric('mediagate_live_v2v_latency_seconds_count');
  const gatewayLatencyMeanS = latencySum !== undefined && latencyCount ? latencySum / latencyCount : undefined;
  const latencies = output.latencies;
  const { unreadable, wrongPolarity, newest } = output;

  const row = {
    filter, seconds, segments: watch.segments.length, frames: latencies.length, unreadable, wrongPolarity,
    p50S: median(latencies), p95S: percentile(latencies, 0.95), minS: Math.min(...latencies), maxS: Math.max(...latencies),
    newestP50S: median(newest), newestP95S: percentile(newest, 0.95), delivered, startReplyMs,
  };
  printTable(`Live video-to-video latency, input frame → output frame listed in ${STREAM}-out/source.m3u8 (${filter}, ${seconds} s of the clip, 640x360 24 fps)`,
    ['frames', 'p50 s', 'p95 s', 'min s', 'max s', 'segment newest frame p50 s', 'p95 s', 'frames delivered', 'unreadable', 'wrong polarity', 'start reply ms'],
    [[row.frames, fmt(row.p50S), fmt(row.p95S), fmt(row.minS), fmt(row.maxS), fmt(row.newestP50S), fmt(row.newestP95S), fmt(row.delivered, 3), unreadable, wrongPolarity, startReplyMs]]);
  const inputRow = { frames: input.latencies.length, p50S: median(input.latencies), p95S: percentile(input.latencies, 0.95), newestP50S: median(input.newest), newestP95S: percentile(input.newest, 0.95) };
  printTable(`The same frames in the input's own ${STREAM}/source.m3u8 (ingest and segmenting alone, same run)`,
    ['frames', 'p50 s', 'p95 s', 'segment newest frame p50 s', 'p95 s'],
    [[inputRow.frames, fmt(inputRow.p50S), fmt(inputRow.p95S), fmt(inputRow.newestP50S), fmt(inputRow.newestP95S)]]);
  process.stdout.write(`gateway metric mediagate_live_v2v_latency_seconds (input segment sent → its output segment back): mean ${fmt(gatewayLatencyMeanS)} s over ${latencyCount ?? 0} segments\n`);
  const loadAfter = loadavg();
  process.stdout.write(`load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}\n`);
  const headline = {
    'live v2v latency p50 s': row.p50S, 'live v2v latency p95 s': row.p95S, 'input HLS latency p50 s (same run)': inputRow.p50S, 'live v2v frames delivered': row.delivered,
  };
  writeResult('live-v2v', machine, { row, inputRow, gatewayLatencyMeanS, loadBefore, loadAfter, wallS: (performance.now() - wallStart) / 1000, headline }, out);
  if (latencies.length === 0) process.exitCode = 1;
} finally {
  await cluster.close();
}
