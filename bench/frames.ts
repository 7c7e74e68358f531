/**
 * Frames per second through the frame API (issue 17, "bench/"): decode → a per-frame
 * JavaScript transform → encode, against one raw ffmpeg applying the same filter to the same
 * input with the same encoder settings, in the same run.
 *
 * - Frame API: `openVideoTrack({ file })` (yuv420p, overflow `wait`: nothing dropped, the
 *   decoder waits for the loop), the transform in JS on each frame's bytes, `VideoSource` +
 *   `publish({ mpegts: true })` (x264 ultrafast, zerolatency, no B-frames, a keyframe every
 *   2 s), its MPEG-TS output read and discarded in this process. Two ffmpeg processes
 *   (decoder, encoder) and this process's JavaScript.
 * - Raw ffmpeg: `ffmpeg -t <s> -i <clip> -map 0:v:0 -vf <filter> <the same x264 options>
 *   -f mpegts pipe:1`, its output read and discarded the same way. One process.
 * - Filters, each the same picture both ways: `negate` (ffmpeg `lutyuv=y=255-val:u=255-val:v=255-val`, the lookup table `negate` is built on, with the full 0-255 range: every Y, U and V
 *   byte b → 255 − b; JS: the same loop over the frame's bytes) and `gray` (ffmpeg
 *   `lutyuv=u=128:v=128`; JS: U and V planes filled with 128).
 * - The two kinds alternate run by run (`--runs` of each per filter), so both see the same
 *   machine; the figures are medians. fps = frames / wall s (what a user waiting for a
 *   processed file gets); CPU s per frame = user + system of every process involved (this
 *   process's own CPU for the frame API, plus its reaped ffmpeg children; for raw ffmpeg its
 *   reaped child), from /proc (bench/lib/procs.ts), so CPU holds on a busy machine where wall
 *   time does not. The JS transform's own time is printed beside them.
 *
 * Usage: node --import tsx bench/frames.ts [--quick] [--seconds 30] [--runs 3] [--out file.json]
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { CLIP } from '../test/helpers/media.ts';
import { VideoSource, openVideoTrack, publish, type VideoFrame } from '../src/frames/index.ts';
import { cpuSeconds } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { median } from './lib/stats.ts';

const { quick, out, values } = benchArgs(['seconds', 'runs']);
const seconds = Number(values.seconds ?? (quick ? 10 : 30));
const runs = Number(values.runs ?? (quick ? 1 : 3));
/** The clip's frame rate and the encoder's keyframe interval (a keyframe every 2 s). */
const FRAME_RATE = 24;
const KEYFRAME_INTERVAL_S = 2;

interface Filter {
  readonly name: string;
  /** ffmpeg's filter for the raw run. */
  readonly ffmpeg: string;
  /** The same picture change in JS, in place on a yuv420p frame's bytes. */
  readonly js: (frame: VideoFrame) => void;
}

const FILTERS: Filter[] = [
  {
    name: 'negate', ffmpeg: 'lutyuv=y=255-val:u=255-val:v=255-val',
    js: (f) => {
      const d = f.data;
      for (let i = 0; i < d.length; i++) d[i] = 255 - d[i]!;
    },
  },
  {
    name: 'gray', ffmpeg: 'lutyuv=u=128:v=128',
    js: (f) => { f.data.fill(128, f.width * f.height); },
  },
];

interface Run { frames: number; wallS: number; cpuS: number; jsS: number }

/** Total CPU seconds of this process and its reaped children. */
const cpuNow = (): number => {
  const c = cpuSeconds(process.pid);
  return c.self + c.reapedChildren;
};

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

async function frameApiRun(filter: Filter): Promise<Run> {
  const cpu0 = cpuNow();
  const t0 = performance.now();
  const track = await openVideoTrack({ file: CLIP }, { videoOverflow: 'wait' });
  let source: VideoSource | undefined;
  let publication: ReturnType<typeof publish> | undefined;
  let draining: Promise<number> | undefined;
  let frames = 0;
  let jsMs = 0;
  for await (const frame of track) {
    if (frame.pts >= seconds * 90_000) break;
    if (!source) {
      source = new VideoSource({ width: frame.width, height: frame.height, frameRate: FRAME_RATE });
      publication = publish({ mpegts: true }, { video: source }, { keyframeIntervalSec: KEYFRAME_INTERVAL_S });
      draining = drain(publication.output!);
    }
    const j0 = performance.now();
    filter.js(frame);
    jsMs += performance.now() - j0;
    await source.captureFrame(frame);
    frames++;
  }
  source?.close();
  await publication?.done;
  await draining;
  await track.stop();
  const wallS = (performance.now() - t0) / 1000;
  return { frames, wallS, cpuS: cpuNow() - cpu0, jsS: jsMs / 1000 };
}

async function rawRun(filter: Filter): Promise<Run> {
  const cpu0 = cpuSeconds(process.pid).reapedChildren;
  const t0 = performance.now();
  const gop = String(FRAME_RATE * KEYFRAME_INTERVAL_S);
  const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:3', '-t', String(seconds), '-i', CLIP,
    '-map', '0:v:0', '-vf', filter.ffmpeg,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-g', gop, '-keyint_min', gop, '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
    '-f', 'mpegts', '-muxdelay', '0', '-muxpreload', '0', '-flush_packets', '1', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let progress = '';
  let stderr = '';
  (child.stdio[3] as Readable).on('data', (c: Buffer) => { progress = (progress + c.toString()).slice(-2000); });
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const draining = drain(child.stdout!);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  await draining;
  if (code !== 0) throw new Error(`ffmpeg exited with ${code}: ${stderr}`);
  const wallS = (performance.now() - t0) / 1000;
  const frames = Number([...progress.matchAll(/frame=(\d+)/g)].pop()?.[1] ?? Number.NaN);
  return { frames, wallS, cpuS: cpuSeconds(process.pid).reapedChildren - cpu0, jsS: 0 };
}

interface Row {
  filter: string;
  frames: number;
  apiFps: number;
  rawFps: number;
  fpsRatio: number;
  apiCpuMsPerFrame: number;
  rawCpuMsPerFrame: number;
  cpuRatio: number;
  jsMsPerFrame: number;
}

const machine = await machineInfo();
printMachine(machine);
process.stdout.write(`input: the clip's first ${seconds} s (640x360 ${FRAME_RATE} fps), ${runs} run(s) of each kind per filter, alternating\n`);
const rows: Row[] = [];
const samples: Record<string, { api: Run[]; raw: Run[] }> = {};
for (const filter of FILTERS) {
  const api: Run[] = [];
  const raw: Run[] = [];
  for (let i = 0; i < runs; i++) {
    raw.push(await rawRun(filter));
    api.push(await frameApiRun(filter));
  }
  samples[filter.name] = { api, raw };
  const fps = (r: Run): number => r.frames / r.wallS;
  const cpuPerFrameMs = (r: Run): number => (r.cpuS / r.frames) * 1000;
  const apiFps = median(api.map(fps))!;
  const rawFps = median(raw.map(fps))!;
  const apiCpu = median(api.map(cpuPerFrameMs))!;
  const rawCpu = median(raw.map(cpuPerFrameMs))!;
  rows.push({
    filter: filter.name, frames: api[0]!.frames, apiFps, rawFps, fpsRatio: apiFps / rawFps,
    apiCpuMsPerFrame: apiCpu, rawCpuMsPerFrame: rawCpu, cpuRatio: apiCpu / rawCpu,
    jsMsPerFrame: median(api.map((r) => (r.jsS / r.frames) * 1000))!,
  });
  if (api.some((r) => r.frames !== raw[0]!.frames)) process.stdout.write(`note: ${filter.name}: frame counts differ (frame API ${api.map((r) => r.frames).join(',')}, raw ${raw.map((r) => r.frames).join(',')})\n`);
}

printTable('Decode → filter → encode (x264 ultrafast zerolatency, MPEG-TS), the frame API with a JS filter against raw ffmpeg with the same filter',
  ['filter', 'frames', 'frame API fps', 'raw ffmpeg fps', 'API / raw fps', 'frame API CPU ms/frame', 'raw CPU ms/frame', 'API / raw CPU', 'of which JS ms/frame'],
  rows.map((r) => [r.filter, r.frames, fmt(r.apiFps, 0), fmt(r.rawFps, 0), fmt(r.fpsRatio, 2), fmt(r.apiCpuMsPerFrame, 2), fmt(r.rawCpuMsPerFrame, 2), fmt(r.cpuRatio, 2), fmt(r.jsMsPerFrame, 2)]));
const headline: Record<string, string> = {};
for (const r of rows) {
  headline[`${r.filter}: frame API fps / raw ffmpeg fps`] = `${fmt(r.apiFps, 0)} / ${fmt(r.rawFps, 0)} = ${fmt(r.fpsRatio, 2)}`;
  headline[`${r.filter}: CPU per frame, frame API / raw ffmpeg`] = fmt(r.cpuRatio, 2);
}
writeResult('frames', machine, { seconds, runs, rows, samples, headline }, out);
