/**
 * WHEP viewers of one stream before frames drop (docs/wire-contract.md §9e).
 *
 * A gateway (cmd/gateway.ts, child process) takes one RTMP publish from ffmpeg: 640×360 30 fps
 * H.264 without B-frames (x264 `veryfast`, `zerolatency`, 1 s GOP, 1.5 Mb/s; the WHEP relay
 * copies it) and a 48 kHz AAC tone. Viewers are node-datachannel peer connections in this
 * process (a receive-only H.264 + Opus offer, as a browser sends it, no decoding, so the
 * viewers' side stays cheap): each counts the video frames it receives (RTP marker bits) and
 * the gaps in its RTP sequence numbers. The number of viewers grows in steps; at each step,
 * after a 3 s settle, a 5 s window is measured: a step "drops" when any viewer got fewer than
 * 97 % of the frames the publisher sent in the window, or lost packets. Reported: the
 * largest step without drops, and the gateway's CPU (its process and the relay ffmpeg) and
 * RSS per step. Reference: MediaMTX documents no WebRTC viewer figure; the measured reference
 * here is the same machine's per-viewer cost.
 *
 * Usage: node --import tsx bench/whep-viewers.ts [--quick] [--out file.json] [--steps 10,25,50]
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Audio, PeerConnection, RtcpReceivingSession, Video, type Track } from 'node-datachannel';
import { startRedis } from '../test/helpers/redis-server.ts';
import { startGateway } from '../test/helpers/gateway-process.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult, type GoalRow } from './lib/report.ts';
import { cpuSecondsPrecise, processTree, treeRssBytes } from './lib/procs.ts';

const FPS = 30;
const SETTLE_MS = 3000;
const WINDOW_MS = 5000;
const MIN_FRAME_SHARE = 0.97;

interface Viewer {
  readonly pc: PeerConnection;
  readonly tracks: Track[];
  frames: number;
  packets: number;
  gaps: number;
  lastSeq: number | undefined;
  location: string;
}

const { quick, out, values } = benchArgs(['steps']);
const steps = (values.steps ?? (quick ? '5,10,20' : '10,25,50,75,100,150,200')).split(',').map(Number).filter((n) => n > 0);

const machine = await machineInfo();
printMachine(machine);
const redis = await startRedis();
const gateway = await startGateway(redis.url, {
  MEDIAGATE_LADDER: '[]', MEDIAGATE_LOG_LEVEL: 'info',
  MEDIAGATE_WEBRTC_WHEP_MAX_VIEWERS_PER_STREAM: '10000', MEDIAGATE_WEBRTC_WHEP_MAX_VIEWERS: '10000',
});
const publisher = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${FPS}`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-bf', '0', '-g', String(FPS), '-b:v', '1500k', '-pix_fmt', 'yuv420p',
  '-c:a', 'aac', '-b:a', '96k', '-f', 'flv', gateway.rtmpUrl('whep-bench')], { stdio: ['ignore', 'ignore', 'inherit'] });
const viewers: Viewer[] = [];
const rows: (string | number | undefined)[][] = [];
const results: Record<string, unknown>[] = [];
let maxClean = 0;

async function addViewer(): Promise<Viewer> {
  // The offer is made once, below (no automatic negotiation racing it).
  const pc = new PeerConnection('bench-viewer', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
  const viewer: Viewer = { pc, tracks: [], frames: 0, packets: 0, gaps: 0, lastSeq: undefined, location: '' };
  const video = new Video('0', 'RecvOnly');
  video.addH264Codec(96, 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f');
  const vt = pc.addTrack(video);
  vt.setMediaHandler(new RtcpReceivingSession());
  vt.onMessage((msg) => {
    // RTCP (payload types 200-206 with the marker bit) is not media.
    if (msg.length < 12 || (msg[1]! >= 200 && msg[1]! <= 206)) return;
    viewer.packets += 1;
    if ((msg[1]! & 0x80) !== 0) viewer.frames += 1;
    const seq = msg.readUInt16BE(2);
    if (viewer.lastSeq !== undefined && seq !== ((viewer.lastSeq + 1) & 0xffff)) viewer.gaps += 1;
    viewer.lastSeq = seq;
  });
  const audio = new Audio('1', 'RecvOnly');
  audio.addOpusCodec(111);
  const at = pc.addTrack(audio);
  at.setMediaHandler(new RtcpReceivingSession());
  at.onMessage(() => undefined);
  viewer.tracks.push(vt, at);
  pc.setLocalDescription();
  await new Promise<void>((resolve) => {
    if (pc.gatheringState() === 'complete') resolve();
    pc.onGatheringStateChange((s) => { if (s === 'complete') resolve(); });
  });
  const res = await fetch(`${gateway.httpUrl}/whep/whep-bench`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription()!.sdp });
  if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${await res.text()}`);
  viewer.location = res.headers.get('location') ?? '';
  try {
    pc.setRemoteDescription(await res.text(), 'answer');
  } catch (err) {
    await fetch(`${gateway.httpUrl}${viewer.location}`, { method: 'DELETE' }).catch(() => undefined);
    pc.close();
    throw err;
  }
  return viewer;
}

/** libdatachannel now and then refuses an answer ("remote candidate without ICE transport"): a fresh peer connection then. */
async function addViewerRetrying(): Promise<Viewer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await addViewer();
    } catch (err) {
      if (attempt >= 3) throw err;
      console.error(`viewer ${viewers.length + 1}: ${(err as Error).message}; again`);
    }
  }
}

function gatewayCpuSeconds(): number {
  return processTree(gateway.proc.child.pid!).reduce((sum, pid) => sum + cpuSecondsPrecise(pid), 0);
}

try {
  // Live once ingest lists it.
  for (let i = 0; i < 100 && !(await (await fetch(`${gateway.httpUrl}/api/streams`)).text()).includes('"whep-bench"'); i++) await sleep(200);
  for (const n of steps) {
    while (viewers.length < n) viewers.push(await addViewerRetrying());
    await sleep(SETTLE_MS);
    const before = viewers.map((v) => ({ frames: v.frames, gaps: v.gaps }));
    const cpu0 = gatewayCpuSeconds();
    const t0 = Date.now();
    await sleep(WINDOW_MS);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = (gatewayCpuSeconds() - cpu0) / seconds;
    const frames = viewers.map((v, i) => v.frames - before[i]!.frames);
    const gaps = viewers.reduce((sum, v, i) => sum + v.gaps - before[i]!.gaps, 0);
    const expected = FPS * seconds;
    const worst = Math.min(...frames) / expected;
    const clean = worst >= MIN_FRAME_SHARE && gaps === 0;
    if (clean) maxClean = n;
    const rss = treeRssBytes(gateway.proc.child.pid!) / 1024 / 1024;
    rows.push([n, fmt(worst * 100, 1), gaps, fmt(cpu * 100, 0), fmt((cpu * 100) / n, 2), fmt(rss, 0), clean ? 'yes' : 'no']);
    results.push({ viewers: n, worstFrameShare: worst, sequenceGaps: gaps, gatewayCpuCores: cpu, gatewayRssMiB: rss, clean });
    if (!clean) break;
  }
} finally {
  for (const v of viewers) {
    await fetch(`${gateway.httpUrl}${v.location}`, { method: 'DELETE' }).catch(() => undefined);
    v.pc.close();
  }
  publisher.kill('SIGINT');
  await gateway.stop();
  await redis.stop();
}

printTable('WHEP viewers of one stream (640×360 30 fps H.264 copied, AAC → Opus; viewers in this process)',
  ['viewers', 'worst viewer frames %', 'RTP gaps', 'gateway CPU %', 'CPU % per viewer', 'gateway RSS MiB', 'no drops'], rows);
const goals: GoalRow[] = [{ goal: 'WHEP viewers of one stream before frames drop', measured: maxClean, target: `≥ ${steps[0]}`, met: maxClean >= steps[0]! }];
console.log(`viewers of one stream before frames drop: ${maxClean}${maxClean === steps.at(-1) ? ' (the largest step tried)' : ''}`);
writeResult('whep-viewers', machine, { steps: results, maxViewersWithoutDrops: maxClean, headline: { 'WHEP viewers of one stream before frames drop': maxClean }, goals }, out);
process.exit(0);
