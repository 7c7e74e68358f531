/**
 * CPU per restream output (stream copy), mediagate against nginx-rtmp's `push`, in one run
 * (issue 16, "Cost in bench/"). The same clip (2 s GOP, looped) is published in real time to:
 * - two gateway processes X and Y, source only (`MEDIAGATE_LADDER=[]`), alike; in each window one
 *   of them has `--outputs` K outputs (outputs API, `POST /api/streams/{id}/outputs`) to a
 *   receiving nginx and the other none, and they swap each window (a crossover: the gateway with
 *   the outputs is compared with its twin in the same seconds, and each gateway is on both sides);
 * - nginx-rtmp "relay" with K `push` directives to the same receiving nginx;
 * - nginx-rtmp "plain", the same without `push` (what receiving the publish costs nginx).
 * CPU is process CPU time from the scheduler's counters (/proc/<pid>/task/<tid>/schedstat), never
 * wall clock, so other work on the machine does not count:
 * - mediagate per output = (CPU of the gateway with the outputs − CPU of its twin without, same
 *   window) + the outputs' ffmpeg children's CPU, over K, per media second; the median of the windows;
 * - nginx push per output = (relay nginx CPU − plain nginx CPU, same windows) / K, per media second;
 * - for reference, one `ffmpeg -re -f mpegts -i clip.ts -c copy -f flv rtmp://…` without a gateway
 *   (what an output's ffmpeg does, its input read from a file instead of a pipe).
 * A media second is a second of the window: every publisher sends in real time (`-re`).
 * The ratio (mediagate / nginx push) is the row of bench/README.md.
 *
 * Usage: node --import tsx bench/outputs.ts [--quick] [--outputs 2] [--windows 6] [--window-s 20]
 *   [--gateway-env 'MEDIAGATE_X=v …'] [--out file.json]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startNginxRtmp } from '../test/helpers/nginx-rtmp.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments, type RunningGateway } from '../test/helpers/gateway-process.ts';
import { clipWith2sGop } from '../test/helpers/media.ts';
import { ffmpegsUnder, newLongLivedFfmpegs } from '../test/helpers/receivers.ts';
import { benchArgs, fmt, gatewayEnv, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { cpuSecondsPrecise, processTree } from './lib/procs.ts';
import { median } from './lib/stats.ts';

const run = promisify(execFile);
const { quick, out, values } = benchArgs(['outputs', 'windows', 'window-s', 'gateway-env']);
const outputs = Number(values.outputs ?? 2);
const windows = Number(values.windows ?? (quick ? 4 : 6));
const windowS = Number(values['window-s'] ?? (quick ? 10 : 20));
const TOKEN = 'bench-outputs-admin-token';
const STREAM = 'bench-outputs';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** CPU seconds so far of `pid` and its live descendants (every thread). */
const treeCpuS = (pid: number): number => processTree(pid).reduce((sum, p) => sum + cpuSecondsPrecise(p), 0);

const machine = await machineInfo();
printMachine(machine);
const work = mkdtempSync(join(tmpdir(), 'mg-bench-outputs-'));
const cleanups: (() => Promise<unknown>)[] = [];
const kill = (child: ChildProcess): (() => Promise<unknown>) => () => new Promise((r) => {
  if (child.exitCode !== null || child.signalCode !== null) return r(undefined);
  child.once('exit', r);
  child.kill('SIGKILL');
});
try {
  const clip = await clipWith2sGop(60);
  const clipTs = join(work, 'clip.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', clip, '-c', 'copy', '-f', 'mpegts', clipTs]);

  const receiver = await startNginxRtmp({ workers: 1, hls: false, apps: [...range(outputs).map((i) => `mg${i}`), ...range(outputs).map((i) => `ng${i}`), 'floor'] });
  cleanups.push(() => receiver.stop());
  const relay = await startNginxRtmp({ workers: 1, hls: false, push: range(outputs).map((i) => `rtmp://127.0.0.1:${receiver.rtmpPort}/ng${i}`) });
  cleanups.push(() => relay.stop());
  const plain = await startNginxRtmp({ workers: 1, hls: false });
  cleanups.push(() => plain.stop());
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const twins: RunningGateway[] = [];
  for (const prefix of ['x', 'y']) {
    const gw = await startGateway(redis.url, { MEDIAGATE_REDIS_KEY_PREFIX: prefix, MEDIAGATE_LADDER: '[]', MEDIAGATE_HTTP_ADMIN_TOKEN: TOKEN, MEDIAGATE_LOG_LEVEL: 'info', ...gatewayEnv(values['gateway-env']) });
    cleanups.push(() => gw.stop());
    twins.push(gw);
  }

  const loop = ['-stream_loop', '-1'];
  for (const url of [...twins.map((gw) => gw.rtmpUrl(STREAM)), relay.rtmpUrl('bench'), plain.rtmpUrl('bench')]) cleanups.push(kill(publish(clip, url, loop).child));
  for (const gw of twins) await waitForListedSegments(`${gw.httpUrl}/stream/${STREAM}/source.m3u8`, 2, gw.proc, 60_000);
  const floor = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', ...loop, '-f', 'mpegts', '-i', clipTs, '-c', 'copy', '-f', 'flv', receiver.rtmpUrl('floor', 'floor')], { stdio: 'ignore' });
  cleanups.push(kill(floor));

  const api = (gw: RunningGateway, path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${gw.httpUrl}${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } });
  const listed = async (gw: RunningGateway): Promise<{ id: string; state: string; bytesSent: number }[]> =>
    ((await (await api(gw, `/api/streams/${STREAM}/outputs`)).json()) as { outputs: { id: string; state: string; bytesSent: number }[] }).outputs;

  interface Window { on: number; gatewayAdded: number; ffmpegs: number[]; sentBps: number[]; relay: number; plain: number; floor: number }
  const measured: Window[] = [];
  for (const w of range(windows)) {
    const on = twins[w % 2]!;
    const off = twins[(w + 1) % 2]!;
    const before = ffmpegsUnder(on.proc.child.pid!);
    const ids: string[] = [];
    for (const i of range(outputs)) {
      const res = await api(on, `/api/streams/${STREAM}/outputs`, { method: 'POST', body: JSON.stringify({ url: receiver.rtmpUrl(`w${w}`, `mg${i}`), rendition: 'source' }) });
      if (res.status !== 201) throw new Error(`POST outputs answered ${res.status}: ${await res.text()}`);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const liveBy = Date.now() + 30_000;
    while (!(await listed(on)).every((o) => o.state === 'live' && o.bytesSent > 0)) {
      if (Date.now() > liveBy) throw new Error(`outputs not live within 30 s: ${JSON.stringify(await listed(on))}`);
      await sleep(250);
    }
    await sleep(1000);
    const procs = await newLongLivedFfmpegs(on.proc.child.pid!, before);
    if (procs.length !== outputs) throw new Error(`expected ${outputs} output ffmpeg processes under the gateway, found ${procs.length}`);
    const sample = (): { on: number; off: number; ff: number[]; relay: number; plain: number; floor: number } => ({
      on: cpuSecondsPrecise(on.proc.child.pid!), off: cpuSecondsPrecise(off.proc.child.pid!), ff: procs.map((p) => cpuSecondsPrecise(p.pid)),
      relay: treeCpuS(relay.pid), plain: treeCpuS(plain.pid), floor: cpuSecondsPrecise(floor.pid!),
    });
    const bytes0 = await listed(on);
    const t0 = sample();
    await sleep(windowS * 1000);
    const t1 = sample();
    const bytes1 = await listed(on);
    if (t1.ff.some((v) => v === 0)) throw new Error('an output ffmpeg exited during the window');
    measured.push({
      on: w % 2,
      gatewayAdded: ((t1.on - t0.on) - (t1.off - t0.off)) / windowS,
      ffmpegs: t1.ff.map((v, i) => (v - t0.ff[i]!) / windowS),
      sentBps: ids.map((id) => ((bytes1.find((o) => o.id === id)?.bytesSent ?? 0) - (bytes0.find((o) => o.id === id)?.bytesSent ?? 0)) * 8 / windowS),
      relay: (t1.relay - t0.relay) / windowS, plain: (t1.plain - t0.plain) / windowS, floor: (t1.floor - t0.floor) / windowS,
    });
    for (const id of ids) {
      const res = await api(on, `/api/streams/${STREAM}/outputs/${id}`, { method: 'DELETE' });
      if (res.status !== 204) throw new Error(`DELETE output answered ${res.status}: ${await res.text()}`);
    }
    await sleep(1500);
  }

  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const perWindow = measured.map((m) => (m.gatewayAdded + sum(m.ffmpegs)) / outputs);
  // The median of the windows: a burst of one gateway's own work (its CPU moved by ±30 ms/s between
  // 10 s windows at load 17) lands in one window and would swing a mean.
  const mediagatePerOutput = median(perWindow)!;
  const mediagateMean = mean(perWindow);
  const gatewayAdded = mean(measured.map((m) => m.gatewayAdded));
  const ffmpegPerOutput = mean(measured.map((m) => mean(m.ffmpegs)));
  const relayRate = mean(measured.map((m) => m.relay));
  const plainRate = mean(measured.map((m) => m.plain));
  const nginxPerPush = (relayRate - plainRate) / outputs;
  const floorRate = mean(measured.map((m) => m.floor));
  const ratio = mediagatePerOutput / nginxPerPush;
  const sentBps = mean(measured.flatMap((m) => m.sentBps));
  const ms = (cores: number): string => fmt(cores * 1000, 1);
  printTable(`Per window (${windowS} s): the gateway with ${outputs} outputs against its twin without, CPU ms per media s`,
    ['window', 'outputs on', 'gateway added', 'output ffmpegs (each)', 'mediagate per output', 'nginx relay − plain, per push'],
    measured.map((m, i) => [i + 1, m.on === 0 ? 'X' : 'Y', ms(m.gatewayAdded), m.ffmpegs.map(ms).join(' / '), ms(perWindow[i]!), ms((m.relay - m.plain) / outputs)]));
  printTable(`CPU per media second (CPU ms per s = millicores), means of ${windows} windows`, ['process', 'CPU ms per media s', 'note'], [
    [`gateway with ${outputs} outputs − its twin without`, ms(gatewayAdded), `${ms(gatewayAdded / outputs)} per output; median window ${ms(median(measured.map((m) => m.gatewayAdded)) ?? 0)}`],
    ['one output ffmpeg (-c copy, TS on stdin → FLV)', ms(ffmpegPerOutput), `${fmt(sentBps / 1e6)} Mb/s sent`],
    ['ffmpeg -re -f mpegts -i file -c copy -f flv (reference, no gateway)', ms(floorRate), 'what an output ffmpeg does, reading a file'],
    ['nginx-rtmp relay (publish in + push out)', ms(relayRate), `${outputs} push directives`],
    ['nginx-rtmp plain (publish in)', ms(plainRate), ''],
  ]);
  printTable('CPU per restream output (copy), mediagate against nginx-rtmp push', ['mediagate per output (median of windows)', 'mean', 'min–max of windows', 'nginx push per output', 'ratio mediagate / nginx'], [
    [ms(mediagatePerOutput), ms(mediagateMean), `${ms(Math.min(...perWindow))}–${ms(Math.max(...perWindow))}`, ms(nginxPerPush), fmt(ratio, 1)],
  ]);
  const headline = {
    'CPU ms per media s per output, mediagate': Number((mediagatePerOutput * 1000).toFixed(2)),
    'CPU ms per media s per push, nginx-rtmp': Number((nginxPerPush * 1000).toFixed(2)),
    'ratio mediagate / nginx push': Number(ratio.toFixed(2)),
  };
  writeResult('outputs', machine, {
    outputs, windows, windowS, headline,
    cpuMsPerMediaS: { gatewayAdded: gatewayAdded * 1000, outputFfmpeg: ffmpegPerOutput * 1000, ffmpegCopyReference: floorRate * 1000, nginxRelay: relayRate * 1000, nginxPlain: plainRate * 1000, mediagatePerOutput: mediagatePerOutput * 1000, mediagatePerOutputMean: mediagateMean * 1000, nginxPerPush: nginxPerPush * 1000 },
    windowsMeasured: measured, outputBitsPerS: sentBps, ratio,
  }, out);
} finally {
  for (const stop of cleanups.reverse()) await stop().catch((err: Error) => console.error(`cleanup: ${err.message}`));
  rmSync(work, { recursive: true, force: true });
}
