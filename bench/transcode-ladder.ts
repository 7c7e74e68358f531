/**
 * Ladder throughput on this machine, in one run, against the limit:
 *   (a) raw ffmpeg: one process transcoding the whole input with the ladder (split filter);
 *   (b) mediagate's SegmentTranscoder on the same input cut into ~2 s source segments,
 *       with 1 and 2 segments in flight.
 * Reported as real-time factors (media seconds per wall second) and (b)/(a) ratios.
 *
 * Input: the first N s of ../shared/media's clip upscaled to 1080p30 with a 2 s GOP.
 * Usage: node --import tsx bench/transcode-ladder.ts [--seconds 20] [--presets veryfast,superfast]
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import { CLIP } from '../test/helpers/media.ts';
import { parseLadder, fitRendition } from '../src/domain/profile.ts';
import { DEFAULT_LADDER } from '../src/config/config.ts';
import { SegmentTranscoder } from '../src/transcode/segment-transcoder.ts';
import { FfmpegRunner } from '../src/transcode/ffmpeg/ffmpeg-runner.ts';
import { buildLadderArgs, type X264Preset } from '../src/transcode/ffmpeg/ladder-args.ts';
import { probeSegment } from '../src/transcode/probe.ts';
import { silentLogger } from '../src/log/logger.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, presets: { type: 'string', default: 'veryfast,superfast' }, ladder: { type: 'string', default: DEFAULT_LADDER.join(',') } } });
const seconds = Number(values.seconds);
const presets = values.presets!.split(',');
const ladder = parseLadder(values.ladder!.split(','));

const work = mkdtempSync(join(tmpdir(), 'mg-bench-'));
const input = join(tmpdir(), `mg-bench-1080p30-${seconds}s.ts`);
if (!existsSync(input)) {
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', CLIP, '-t', String(seconds), '-vf', 'scale=1920:1080:flags=bicubic,fps=30',
    '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '6000k', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'copy', '-f', 'mpegts', input]);
}
const segDir = join(work, 'source');
mkdirSync(segDir);
await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', input, '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(segDir, '%d.ts')]);
const segments = readdirSync(segDir).map((f) => Number(f.replace('.ts', ''))).sort((a, b) => a - b);
const sourceInfo = await probeSegment(input);
const mediaS = sourceInfo.durationMs / 1000;

interface Row { what: string; preset: string; wallS: number; realTimeFactor: number; ratioToRaw?: number; segmentMsMedian?: number; segmentMsP95?: number }
const rows: Row[] = [];

for (const preset of presets) {
  // (a) raw ffmpeg, whole input, same ladder and encoder settings.
  const fitted = ladder.map((p) => fitRendition(p, sourceInfo.video!)).filter((f) => f !== undefined);
  const args = buildLadderArgs({ inputPath: input, outputs: fitted.map((r, i) => ({ rendition: r!, path: join(work, `raw-${i}.ts`) })), sourceAudioCodec: sourceInfo.audio?.codec, x264Preset: preset as X264Preset });
  let t0 = performance.now();
  await run('ffmpeg', args);
  const rawS = (performance.now() - t0) / 1000;
  rows.push({ what: 'raw ffmpeg (one process, whole input)', preset, wallS: rawS, realTimeFactor: mediaS / rawS });

  // (b) SegmentTranscoder, segment by segment, N in flight.
  for (const inFlight of [1, 2]) {
    const storageDir = join(work, `store-${preset}-${inFlight}`);
    const storage = {
      getFile: async (key: string) => ({ path: join(segDir, key.split('/').pop()!), release: async () => undefined }),
      putFile: async (key: string, path: string) => {
        mkdirSync(join(storageDir, key, '..'), { recursive: true });
        await run('cp', [path, join(storageDir, key)]);
        return { sizeBytes: 0 };
      },
    };
    const runner = new FfmpegRunner({ logger: silentLogger() });
    const transcoder = new SegmentTranscoder({ storage, workDir: join(work, 'tmp'), logger: silentLogger(), runner, x264Preset: preset });
    const perSegmentMs: number[] = [];
    const queue = [...segments];
    t0 = performance.now();
    await Promise.all(Array.from({ length: inFlight }, async () => {
      for (let seq = queue.shift(); seq !== undefined; seq = queue.shift()) {
        const s0 = performance.now();
        await transcoder.transcode({ manifestID: 'bench', seq, sourceKey: `bench/source/${seq}.ts`, durationMs: 2000, profiles: ladder });
        perSegmentMs.push(performance.now() - s0);
      }
    }));
    const wallS = (performance.now() - t0) / 1000;
    await transcoder.close();
    await runner.close();
    perSegmentMs.sort((a, b) => a - b);
    rows.push({
      what: `SegmentTranscoder, ${inFlight} segment(s) in flight`, preset, wallS, realTimeFactor: mediaS / wallS, ratioToRaw: rawS / wallS,
      segmentMsMedian: Math.round(perSegmentMs[Math.floor(perSegmentMs.length / 2)]!), segmentMsP95: Math.round(perSegmentMs[Math.ceil(perSegmentMs.length * 0.95) - 1]!),
    });
  }
}

const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, ffmpeg: (await run('ffmpeg', ['-version'])).stdout.split('\n')[0] };
process.stdout.write(`\nLadder ${ladder.map((p) => p.name).join(' + ')} from ${sourceInfo.video!.width}x${sourceInfo.video!.height}@${sourceInfo.frameRate} (${mediaS.toFixed(1)} s, ${segments.length} segments) on ${machine.cores} cores (${machine.cpu})\n\n`);
process.stdout.write('| run | preset | wall s | real-time factor | / raw ffmpeg | segment ms median | p95 |\n|---|---|---|---|---|---|---|\n');
for (const r of rows) {
  process.stdout.write(`| ${r.what} | ${r.preset} | ${r.wallS.toFixed(2)} | ${r.realTimeFactor.toFixed(2)} | ${r.ratioToRaw?.toFixed(2) ?? '1.00'} | ${r.segmentMsMedian ?? ''} | ${r.segmentMsP95 ?? ''} |\n`);
}
mkdirSync('bench/results', { recursive: true });
const out = join('bench/results', `transcode-ladder-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, ladder: ladder.map((p) => p.name), mediaS, rows }, null, 2));
process.stdout.write(`\nwrote ${out}\n`);
rmSync(work, { recursive: true, force: true });
