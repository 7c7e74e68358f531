/**
 * CPU per thumbnail (issue 16, "cost in bench/"), against its limit in the same run: mediagate's
 * own thumbnail run (media/thumbnail.ts `extractThumbnail`: one ffmpeg, `-skip_frame nokey`,
 * first keyframe only, scaled to `--width` and written as JPEG, the segment fed on stdin as
 * the gateway feeds it from the store) against ffmpeg decoding the whole segment's video
 * (`-i <segment> -map 0:v:0 -f null -`, ffmpeg's default threads): what a thumbnailer that
 * reads every frame, or one that picks a frame after decoding them all, costs at least.
 *
 * Inputs: 2 s MPEG-TS segments of the real clip (640x360 24 fps) and of the clip upscaled to
 * 1920x1080 30 fps 6 Mb/s (bench/lib/inputs.ts). The two kinds of run alternate segment by
 * segment, one at a time, so both see the same machine. CPU is the children's user + system
 * time as the kernel accounts it for this process's reaped children (`/proc/self/stat`
 * cutime + cstime, 10 ms ticks, summed over every run of a kind and divided by the runs), never
 * wall clock; wall time per run is printed beside it for information only. A third run per
 * segment, `ffmpeg -version`, measures what starting ffmpeg alone costs: the floor of any
 * thumbnailer that runs one ffmpeg per picture.
 *
 * Usage: node --import tsx bench/thumbnails.ts [--quick] [--segments 20] [--width 320] [--out file.json]
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ChildSupervisor } from '../src/media/child-supervisor.ts';
import { extractThumbnail } from '../src/media/thumbnail.ts';
import { createLogger } from '../src/log/logger.ts';
import { clipRealBitrate, cutSegments, source1080p30 } from './lib/inputs.ts';
import { cpuSeconds } from './lib/procs.ts';
import { benchArgs, fmt, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';
import { median } from './lib/stats.ts';

const { quick, out, values } = benchArgs(['segments', 'width']);
const segmentsPerInput = Number(values.segments ?? (quick ? 8 : 20));
const widthPx = Number(values.width ?? 320);
const JPEG_QSCALE = 5;

/** CPU seconds of this process's children that have exited and been waited for. */
const childCpuS = (): number => cpuSeconds(process.pid).reapedChildren;

/** ffmpeg decoding every video frame of `segment` and discarding them (the reference). */
function fullDecode(segment: string): Promise<void> {
  return ffmpeg(['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', segment, '-map', '0:v:0', '-f', 'null', '-']);
}

/** ffmpeg started and ended with no work (`-version`): the floor of any one-process run. */
function ffmpegStart(): Promise<void> {
  return ffmpeg(['-hide_banner', '-version']);
}

function ffmpeg(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited with ${code}`))));
  });
}

interface Row {
  input: string;
  segments: number;
  thumbnailCpuMs: number;
  fullDecodeCpuMs: number;
  ffmpegStartCpuMs: number;
  ratio: number;
  thumbnailWallP50Ms: number | undefined;
  fullDecodeWallP50Ms: number | undefined;
  jpegBytesP50: number | undefined;
  /** A thumbnail at every segment of one stream, as a share of one core (thumbnail CPU / segment duration). */
  eagerCoreShare: number;
}

async function measure(input: string, label: string, dir: string, supervisor: ChildSupervisor): Promise<Row> {
  const segments = (await cutSegments(input, dir)).slice(0, segmentsPerInput);
  let thumbCpuS = 0;
  let fullCpuS = 0;
  let startCpuS = 0;
  const thumbWall: number[] = [];
  const fullWall: number[] = [];
  const jpegBytes: number[] = [];
  // One of each first, not counted (page cache, ffmpeg's libraries).
  await extractThumbnail(supervisor, createReadStream(segments[0]!), { widthPx, jpegQscale: JPEG_QSCALE });
  await fullDecode(segments[0]!);
  for (const segment of segments) {
    let c0 = childCpuS();
    let t0 = performance.now();
    const jpeg = await extractThumbnail(supervisor, createReadStream(segment), { widthPx, jpegQscale: JPEG_QSCALE });
    thumbWall.push(performance.now() - t0);
    thumbCpuS += childCpuS() - c0;
    jpegBytes.push(jpeg.length);
    c0 = childCpuS();
    t0 = performance.now();
    await fullDecode(segment);
    fullWall.push(performance.now() - t0);
    fullCpuS += childCpuS() - c0;
    c0 = childCpuS();
    await ffmpegStart();
    startCpuS += childCpuS() - c0;
  }
  const n = segments.length;
  const thumbnailCpuMs = (thumbCpuS / n) * 1000;
  return {
    input: label, segments: n, thumbnailCpuMs, fullDecodeCpuMs: (fullCpuS / n) * 1000, ffmpegStartCpuMs: (startCpuS / n) * 1000,
    ratio: fullCpuS > 0 ? thumbCpuS / fullCpuS : Number.NaN,
    thumbnailWallP50Ms: median(thumbWall), fullDecodeWallP50Ms: median(fullWall), jpegBytesP50: median(jpegBytes),
    eagerCoreShare: thumbnailCpuMs / 2000,
  };
}

const machine = await machineInfo();
printMachine(machine);
const work = mkdtempSync(join(tmpdir(), 'mg-bench-thumbs-'));
const supervisor = new ChildSupervisor({ logger: createLogger({ level: 'silent' }) });
try {
  const seconds = segmentsPerInput * 2 + 2;
  const rows = [
    await measure(await clipRealBitrate(Math.min(seconds, 60)), '640x360 24 fps (the clip)', join(work, 'clip'), supervisor),
    await measure(await source1080p30(Math.min(seconds, 60)), '1920x1080 30 fps 6 Mb/s', join(work, '1080p'), supervisor),
  ];
  printTable(`CPU per thumbnail (${widthPx} px wide, q ${JPEG_QSCALE}) against decoding the whole 2 s segment, child CPU ms per segment`,
    ['input', 'segments', 'thumbnail CPU ms', 'full decode CPU ms', 'thumbnail / full', 'ffmpeg start alone CPU ms', 'thumb wall p50 ms', 'full wall p50 ms', 'JPEG bytes p50', 'every segment: core share'],
    rows.map((r) => [r.input, r.segments, fmt(r.thumbnailCpuMs, 1), fmt(r.fullDecodeCpuMs, 1), fmt(r.ratio, 2), fmt(r.ffmpegStartCpuMs, 1), fmt(r.thumbnailWallP50Ms, 0), fmt(r.fullDecodeWallP50Ms, 0), r.jpegBytesP50, fmt(r.eagerCoreShare, 3)]));
  const [clip, hd] = rows as [Row, Row];
  const headline = {
    'thumbnail CPU ms, 360p / 1080p': `${fmt(clip.thumbnailCpuMs, 1)} / ${fmt(hd.thumbnailCpuMs, 1)}`,
    'thumbnail / full-segment decode CPU, 360p / 1080p': `${fmt(clip.ratio, 2)} / ${fmt(hd.ratio, 2)}`,
  };
  writeResult('thumbnails', machine, { widthPx, jpegQscale: JPEG_QSCALE, segmentsPerInput, rows, headline }, out);
} finally {
  await supervisor.close();
  rmSync(work, { recursive: true, force: true });
}
