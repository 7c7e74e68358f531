/**
 * CPU per restream output (stream copy), mediagate against nginx-rtmp's `push`, in one run
 * (issue 16, "Cost in bench/"). The same clip (2 s GOP, looped) is published in real time to:
 * - mediagate (a gateway process, source only: `MEDIAGATE_LADDER=[]`), which gets `--outputs` K
 *   outputs through the outputs API (`POST /api/streams/{id}/outputs`) to a receiving nginx;
 * - nginx-rtmp "relay" with K `push` directives to the same receiving nginx;
 * - nginx-rtmp "plain", the same without `push` (what receiving the publish costs nginx).
 * CPU is process CPU time (the scheduler's counters, /proc/<pid>/task/<tid>/schedstat), never
 * wall clock, so other work on the machine does not count:
 * - mediagate per output = (gateway CPU with the outputs − gateway CPU before them, same length
 *   windows, same stream) + the outputs' ffmpeg children's CPU, over K, per media second;
 * - nginx push per output = (relay nginx CPU − plain nginx CPU, same window), over K, per media second;
 * - for reference, one `ffmpeg -re -f mpegts -i clip.ts -c copy -f flv rtmp://…` without a gateway
 *   (what an output's ffmpeg does, its input read from a file instead of a pipe).
 * A media second is a second of the window: every publisher sends in real time (`-re`).
 * The ratio (mediagate / nginx push) is the row of bench/README.md.
 *
 * Usage: node --import tsx bench/outputs.ts [--quick] [--outputs 2] [--window-s 30]
 *   [--gateway-env 'MEDIAGATE_X=v …'] [--out file.json]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startNginxRtmp } from '../test/helpers/nginx-rtmp.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments } from '../test/helpers/gateway-process.ts';
import { clipWith2sGop } from '../test/helpers/media.ts';
import { ffmpegsUnder, newLongLivedFfmpegs } from '../test/helpers/receivers.ts';
import { benchArgs, fmt, gatewayEnv, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { cpuSecondsPrecise, processTree } from './lib/procs.ts';

const run = promisify(execFile);
const { quick, out, values } = benchArgs(['outputs', 'window-s', 'gateway-env']);
const outputs = Number(values.outputs ?? 2);
const windowS = Number(values['window-s'] ?? (quick ? 15 : 30));
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
  const gateway = await startGateway(redis.url, { MEDIAGATE_LADDER: '[]', MEDIAGATE_HTTP_ADMIN_TOKEN: TOKEN, MEDIAGATE_LOG_LEVEL: 'info', ...gatewayEnv(values['gateway-env']) });
  cleanups.push(() => gateway.stop());
  const gatewayPid = gateway.proc.child.pid!;

  const loop = ['-stream_loop', '-1'];
  for (const url of [gateway.rtmpUrl(STREAM), relay.rtmpUrl('bench'), plain.rtmpUrl('bench')]) cleanups.push(kill(publish(clip, url, loop).child));
  await waitForListedSegments(`${gateway.httpUrl}/stream/${STREAM}/source.m3u8`, 2, gateway.proc, 60_000);
  await sleep(2000);

  // Window A: the gateway with the stream and no output.
  const gwA0 = cpuSecondsPrecise(gatewayPid);
  await sleep(windowS * 1000);
  const gwA = (cpuSecondsPrecise(gatewayPid) - gwA0) / windowS;

  // K outputs to the receiver, and the reference ffmpeg.
  const before = ffmpegsUnder(gatewayPid);
  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${gateway.httpUrl}${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } });
  const ids: string[] = [];
  for (const i of range(outputs)) {
    const res = await api(`/api/streams/${STREAM}/outputs`, { method: 'POST', body: JSON.stringify({ url: receiver.rtmpUrl(`out${i}`, `mg${i}`), rendition: 'source' }) });
    if (res.status !== 201) throw new Error(`POST outputs answered ${res.status}: ${await res.text()}`);
    ids.push(((await res.json()) as { id: string }).id);
  }
  const listed = async (): Promise<{ id: string; state: string; bytesSent: number }[]> =>
    ((await (await api(`/api/streams/${STREAM}/outputs`)).json()) as { outputs: { id: string; state: string; bytesSent: number }[] }).outputs;
  const liveBy = Date.now() + 30_000;
  while (!(await listed()).every((o) => o.state === 'live' && o.bytesSent > 0)) {
    if (Date.now() > liveBy) throw new Error(`outputs not live within 30 s: ${JSON.stringify(await listed())}`);
    await sleep(250);
  }
  const floor = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', ...loop, '-f', 'mpegts', '-i', clipTs, '-c', 'copy', '-f', 'flv', receiver.rtmpUrl('floor', 'floor')], { stdio: 'ignore' });
  cleanups.push(kill(floor));
  await sleep(2000);
  const outputProcs = await newLongLivedFfmpegs(gatewayPid, before);
  if (outputProcs.length !== outputs) throw new Error(`expected ${outputs} output ffmpeg processes under the gateway, found ${outputProcs.length}`);

  // Window B: everything at once.
  const bytes0 = await listed();
  const t0 = { gw: cpuSecondsPrecise(gatewayPid), ff: outputProcs.map((p) => cpuSecondsPrecise(p.pid)), relay: treeCpuS(relay.pid), plain: treeCpuS(plain.pid), floor: cpuSecondsPrecise(floor.pid!) };
  await sleep(windowS * 1000);
  const t1 = { gw: cpuSecondsPrecise(gatewayPid), ff: outputProcs.map((p) => cpuSecondsPrecise(p.pid)), relay: treeCpuS(relay.pid), plain: treeCpuS(plain.pid), floor: cpuSecondsPrecise(floor.pid!) };
  const bytes1 = await listed();
  if (t1.ff.some((v) => v === 0)) throw new Error('an output ffmpeg exited during the window');

  const gwB = (t1.gw - t0.gw) / windowS;
  const ffmpegPerOutput = t1.ff.map((v, i) => (v - t0.ff[i]!) / windowS);
  const gatewayAdded = gwB - gwA;
  const mediagatePerOutput = (gatewayAdded + ffmpegPerOutput.reduce((a, b) => a + b, 0)) / outputs;
  const relayRate = (t1.relay - t0.relay) / windowS;
  const plainRate = (t1.plain - t0.plain) / windowS;
  const nginxPerPush = (relayRate - plainRate) / outputs;
  const floorRate = (t1.floor - t0.floor) / windowS;
  const ratio = mediagatePerOutput / nginxPerPush;
  const sentBps = ids.map((id) => ((bytes1.find((o) => o.id === id)?.bytesSent ?? 0) - (bytes0.find((o) => o.id === id)?.bytesSent ?? 0)) * 8 / windowS);

  const ms = (cores: number): string => fmt(cores * 1000, 1);
  printTable(`CPU per media second (CPU ms per s = millicores), ${outputs} outputs / pushes, ${windowS} s windows`, ['process', 'CPU ms per media s', 'note'], [
    ['gateway, stream, no output (window A)', ms(gwA), 'source only, in-process segmenter'],
    ['gateway, stream + outputs (window B)', ms(gwB), `added ${ms(gatewayAdded)} for ${outputs} outputs`],
    ...ffmpegPerOutput.map((v, i) => [`output ${i + 1} ffmpeg (-c copy, TS on stdin → FLV)`, ms(v), `${fmt(sentBps[i]! / 1e6)} Mb/s sent`]),
    ['ffmpeg -re -f mpegts -i file -c copy -f flv (reference, no gateway)', ms(floorRate), 'what an output ffmpeg does'],
    ['nginx-rtmp relay (publish in + push out)', ms(relayRate), `${outputs} push directives`],
    ['nginx-rtmp plain (publish in)', ms(plainRate), ''],
  ]);
  printTable('CPU per restream output (copy), mediagate against nginx-rtmp push', ['mediagate per output', 'nginx push per output', 'ratio mediagate / nginx'], [
    [ms(mediagatePerOutput), ms(nginxPerPush), fmt(ratio, 1)],
  ]);
  const headline = {
    'CPU ms per media s per output, mediagate': Number((mediagatePerOutput * 1000).toFixed(2)),
    'CPU ms per media s per push, nginx-rtmp': Number((nginxPerPush * 1000).toFixed(2)),
    'ratio mediagate / nginx push': Number(ratio.toFixed(2)),
  };
  writeResult('outputs', machine, {
    outputs, windowS, headline,
    cpuMsPerMediaS: { gatewayNoOutput: gwA * 1000, gatewayWithOutputs: gwB * 1000, gatewayAdded: gatewayAdded * 1000, outputFfmpegs: ffmpegPerOutput.map((v) => v * 1000), ffmpegCopyReference: floorRate * 1000, nginxRelay: relayRate * 1000, nginxPlain: plainRate * 1000, mediagatePerOutput: mediagatePerOutput * 1000, nginxPerPush: nginxPerPush * 1000 },
    outputBitsPerS: sentBps, ratio,
  }, out);
} finally {
  for (const stop of cleanups.reverse()) await stop().catch((err: Error) => console.error(`cleanup: ${err.message}`));
  rmSync(work, { recursive: true, force: true });
}
