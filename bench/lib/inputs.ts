/**
 * Benchmark inputs, derived at run time from the real clip in test/fixtures and cached in
 * the temp dir (the clip: 60.2 s Big Buck Bunny, H.264 640x360 24 fps ~421 kb/s + AAC 96 kb/s,
 * keyframes up to 10 s apart).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { CLIP } from '../../test/helpers/media.ts';

const run = promisify(execFile);
const cacheDir = join(tmpdir(), 'mediagate-bench-media');

async function derive(name: string, args: readonly string[]): Promise<string> {
  if (!existsSync(CLIP)) throw new Error(`benchmark clip missing: ${CLIP} (expected in test/fixtures)`);
  mkdirSync(cacheDir, { recursive: true });
  const out = join(cacheDir, name);
  if (!existsSync(out)) {
    const tmp = join(cacheDir, `${process.pid}.tmp.${name}`);
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args, tmp], { maxBuffer: 1 << 24 });
    renameSync(tmp, out);
  }
  return out;
}

/**
 * The clip upscaled to 1920x1080 at 30 fps, 6 Mb/s, 2 s GOP (fixed, no scene cuts), AAC
 * copied, MP4: what an OBS publisher at 1080p30 sends. `seconds` ≤ 60; longer inputs loop.
 */
export function source1080p30(seconds: number): Promise<string> {
  const loop = seconds > 60 ? ['-stream_loop', String(Math.ceil(seconds / 60) - 1)] : [];
  return derive(`bbb-1080p30-gop2s-${seconds}s.mp4`, [...loop, '-i', CLIP, '-t', String(seconds),
    '-vf', 'scale=1920:1080:flags=bicubic,fps=30', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '6000k', '-maxrate', '6000k', '-bufsize', '12000k',
    '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'copy', '-movflags', '+faststart']);
}

/**
 * The clip as it is (640x360, 24 fps) re-encoded only to get a 2 s GOP, at its real video
 * bitrate (421 kb/s, capped so no segment bursts far above it), AAC copied: a low-bitrate
 * publisher for ingest-scale runs. `seconds` ≤ 60.
 */
export function clipRealBitrate(seconds: number): Promise<string> {
  return derive(`bbb-360p24-gop2s-421k-${seconds}s.mp4`, ['-i', CLIP, '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '421k', '-maxrate', '500k', '-bufsize', '842k',
    '-g', '48', '-keyint_min', '48', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'copy', '-movflags', '+faststart']);
}

/**
 * `input` rewrapped as FLV (stream copy, ffmpeg's FLV muxer: the tags an `ffmpeg -c copy -f flv
 * rtmp://…` publisher sends), for bench/lib/publisher-pool.ts. Cached beside the input's name.
 */
export function asFlv(input: string): Promise<string> {
  return derive(`${basename(input).replace(/\.[^.]+$/, '')}.flv`, ['-i', input, '-c', 'copy', '-f', 'flv']);
}

/**
 * Cuts `input` into ~2 s MPEG-TS source segments (stream copy, cut at keyframes) in `dir`,
 * named 0.ts, 1.ts, ….
 * @returns the segment paths in sequence order.
 */
export async function cutSegments(input: string, dir: string, segmentS = 2): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', input, '-c', 'copy', '-f', 'segment', '-segment_time', String(segmentS),
    '-segment_format', 'mpegts', '-reset_timestamps', '0', join(dir, '%d.ts')]);
  const paths: string[] = [];
  for (let i = 0; existsSync(join(dir, `${i}.ts`)); i++) paths.push(join(dir, `${i}.ts`));
  return paths;
}
