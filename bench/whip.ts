/**
 * CPU per WHIP publisher (issue 18): what one WebRTC publisher costs the gateway, against a
 * measured reference in the same run: the same gateway taking RTMP publishers.
 *
 * Per phase: a fresh redis-server and gateway (ladder `[]`: source only, so no transcoding is
 * counted; log level warn), N publishers, `--warmup-s` then a window of `--measure-s` in which
 * CPU time is read from the scheduler's counters (bench/lib/procs.ts `cpuSecondsPrecise`):
 *  - WHIP: N tabs of one headless Chromium (test/helpers/chromium.ts, fake camera 640x360 at
 *    30 fps + fake microphone) each publish over WHIP. Counted: the gateway process (every
 *    thread: node-datachannel's ICE/DTLS/SRTP threads included) and its WHIP bridge ffmpeg
 *    children (RTP → FLV: H.264 copied, Opus → AAC). Chromium (the publisher) is not counted.
 *  - RTMP (reference): N `ffmpeg -re -c copy` publishers of the test clip (640x360, 24 fps,
 *    H.264 + AAC) into the same kind of gateway. Counted: the gateway process.
 * Reported in millicores per publisher (1 ms of CPU per media second = 1 millicore), with the
 * source bitrate each phase's streams had (from their listed source segments).
 *
 * Usage: node --import tsx bench/whip.ts [--quick] [--n 4] [--warmup-s 8] [--measure-s 20] [--out file.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../test/helpers/gateway-process.ts';
import { launchChromium } from '../test/helpers/chromium.ts';
import { CLIP } from '../test/helpers/media.ts';
import { fetchMedia } from '../test/helpers/hls.ts';
import { FAKE_CAMERA, SEND_ONLY_OFFER } from '../test/helpers/whip-page.ts';
import { cpuSecondsPrecise, processTree } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';

const { quick, out, values } = benchArgs(['n', 'warmup-s', 'measure-s']);
const n = Number(values.n ?? (quick ? 2 : 4));
const warmupS = Number(values['warmup-s'] ?? 8);
const measureS = Number(values['measure-s'] ?? (quick ? 10 : 20));

interface PhaseResult {
  readonly protocol: 'whip' | 'rtmp';
  readonly publishers: number;
  readonly streamsListed: number;
  /** Gateway process CPU per publisher, millicores. */
  readonly gatewayMillicores: number;
  /** WHIP bridge ffmpeg CPU per publisher, millicores (0 for RTMP). */
  readonly bridgeMillicores: number;
  readonly totalMillicores: number;
  /** Mean source bitrate of the streams' listed segments, kbit/s. */
  readonly sourceKbps: number;
}

/** Whether a child process is a WHIP bridge ffmpeg (its input is an SDP file). */
function isBridge(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.endsWith('.sdp'));
  } catch {
    return false;
  }
}

async function withGateway<T>(fn: (d: TestDeployment, gw: MediagateProcess) => Promise<T>): Promise<T> {
  const redis: TestRedis = await startRedis();
  const streamKeys = Array.from({ length: n }, (_, i) => ({ streamKey: `bench-key-${i}-0123456789`, manifestID: `bench-${i}` }));
  const d = await testDeployment(redis.url, { MEDIAGATE_LADDER: '[]', MEDIAGATE_LOG_LEVEL: 'warn', MEDIAGATE_STREAM_KEYS: JSON.stringify(streamKeys) });
  const gw = spawnMediagate('gateway', d.env);
  try {
    await waitForHttp(`${d.httpUrl}/healthz`, gw);
    return await fn(d, gw);
  } finally {
    await gw.stop();
    d.cleanup();
    await redis.stop();
  }
}

/** Mean bitrate of the listed source segments of the phase's streams, kbit/s. */
async function sourceKbps(d: TestDeployment): Promise<{ kbps: number; listed: number }> {
  let bits = 0;
  let seconds = 0;
  let listed = 0;
  for (let i = 0; i < n; i++) {
    const playlist = `${d.httpUrl}/stream/bench-${i}/source.m3u8`;
    const media = await fetchMedia(playlist).catch(() => undefined);
    if (!media || media.segments.length === 0) continue;
    listed += 1;
    for (const seg of media.segments.slice(-3)) {
      const res = await fetch(new URL(seg.uri, playlist));
      if (res.status !== 200) continue;
      bits += (await res.arrayBuffer()).byteLength * 8;
      seconds += seg.duration;
    }
  }
  return { kbps: seconds > 0 ? bits / seconds / 1000 : 0, listed };
}

/** Reads CPU over the window: gateway process and its bridge children. */
async function measure(gatewayPid: number): Promise<{ gatewayS: number; bridgeS: number }> {
  const bridges = (): number[] => processTree(gatewayPid).filter((p) => p !== gatewayPid && isBridge(p));
  const before = { gw: cpuSecondsPrecise(gatewayPid), br: new Map(bridges().map((p) => [p, cpuSecondsPrecise(p)])) };
  await delay(measureS * 1000);
  const gatewayS = cpuSecondsPrecise(gatewayPid) - before.gw;
  let bridgeS = 0;
  for (const p of bridges()) bridgeS += cpuSecondsPrecise(p) - (before.br.get(p) ?? cpuSecondsPrecise(p));
  return { gatewayS, bridgeS };
}

const PUBLISH = (path: string): string => `(async () => {
  ${FAKE_CAMERA}
  ${SEND_ONLY_OFFER}
  const res = await fetch(${JSON.stringify(path)}, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error('WHIP POST answered ' + res.status + ': ' + await res.text());
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  window.whip = { pc, stream };
  return res.status;
})()`;

async function whipPhase(): Promise<PhaseResult> {
  return withGateway(async (d, gw) => {
    const browser = await launchChromium();
    try {
      for (let i = 0; i < n; i++) {
        const page = await browser.newPage();
        await page.goto(`${d.httpUrl}/healthz`);
        await page.evaluate(PUBLISH(`/whip/bench-key-${i}-0123456789`));
      }
      await delay(warmupS * 1000);
      const cpu = await measure(gw.child.pid!);
      const { kbps, listed } = await sourceKbps(d);
      const gatewayMillicores = (cpu.gatewayS / measureS / n) * 1000;
      const bridgeMillicores = (cpu.bridgeS / measureS / n) * 1000;
      return { protocol: 'whip', publishers: n, streamsListed: listed, gatewayMillicores, bridgeMillicores, totalMillicores: gatewayMillicores + bridgeMillicores, sourceKbps: kbps };
    } finally {
      await browser.close();
    }
  });
}

async function rtmpPhase(): Promise<PhaseResult> {
  return withGateway(async (d, gw) => {
    const publishers: ChildProcess[] = [];
    try {
      for (let i = 0; i < n; i++) {
        publishers.push(spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-stream_loop', '-1', '-i', CLIP, '-c', 'copy', '-f', 'flv',
          `rtmp://127.0.0.1:${d.env['MEDIAGATE_RTMP_PORT']}/live/bench-key-${i}-0123456789`], { stdio: 'ignore' }));
      }
      await delay(warmupS * 1000);
      const cpu = await measure(gw.child.pid!);
      const { kbps, listed } = await sourceKbps(d);
      const gatewayMillicores = (cpu.gatewayS / measureS / n) * 1000;
      return { protocol: 'rtmp', publishers: n, streamsListed: listed, gatewayMillicores, bridgeMillicores: 0, totalMillicores: gatewayMillicores, sourceKbps: kbps };
    } finally {
      for (const p of publishers) p.kill('SIGKILL');
    }
  });
}

const machine = await machineInfo();
printMachine(machine);
const whip = await whipPhase();
const rtmp = await rtmpPhase();
printTable(`CPU per publisher, ${n} publishers, ${measureS} s window after ${warmupS} s (millicores = ms of CPU per media second)`,
  ['ingest', 'streams listed', 'source kbit/s', 'gateway process', 'WHIP bridge ffmpeg', 'total'],
  [whip, rtmp].map((r) => [r.protocol.toUpperCase(), `${r.streamsListed}/${r.publishers}`, fmt(r.sourceKbps, 0), fmt(r.gatewayMillicores, 1), fmt(r.bridgeMillicores, 1), fmt(r.totalMillicores, 1)]));
const ratio = rtmp.totalMillicores > 0 ? whip.totalMillicores / rtmp.totalMillicores : undefined;
process.stdout.write(`\nWHIP / RTMP total CPU per publisher: ${fmt(ratio)}\n`);
writeResult('whip', machine, {
  config: { n, warmupS, measureS }, whip, rtmp, ratio,
  headline: { whipMillicoresPerPublisher: whip.totalMillicores, rtmpMillicoresPerPublisher: rtmp.totalMillicores, whipOverRtmp: ratio },
}, out);
