/**
 * Test media derived at test time from the real clip committed in test/fixtures (see its README.md
 * for the CC-BY attribution); derived files are cached in the temp dir, never committed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

/** The real clip: 60.2 s Big Buck Bunny, H.264 640x360 24 fps + AAC, keyframes far apart. */
export const CLIP = resolve(here, '../fixtures/big_buck_bunny_360p24.mp4');

const cacheDir = join(tmpdir(), 'mediagate-test-media');

/**
 * The first `seconds` of the clip re-encoded with a 2 s GOP (what a publisher following
 * the usual advice sends), audio copied. Cached per machine in the temp dir.
 * @throws when the clip or ffmpeg is missing.
 */
export async function clipWith2sGop(seconds: number): Promise<string> {
  if (!existsSync(CLIP)) throw new Error(`test clip missing: ${CLIP} (expected in test/fixtures)`);
  mkdirSync(cacheDir, { recursive: true });
  const out = join(cacheDir, `bbb-gop2s-${seconds}s.mp4`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp.mp4`;
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', CLIP, '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '800k', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
      '-c:a', 'copy', tmp]);
    await run('mv', [tmp, out]);
  }
  return out;
}

/** One source segment of an MPEG-TS stream cut at its video keyframes ({@link tsSourceSegments}). */
export interface TsSourceSegment {
  readonly seq: number;
  /** PTS of its keyframe, 90 kHz. */
  readonly startPts90k: number;
  /** From the PSI packets before its keyframe to the next segment's. */
  readonly bytes: Buffer;
  /** Each video frame's first byte within `bytes` and its DTS (90 kHz), in stream order. */
  readonly frames: readonly { readonly offset: number; readonly dts90k: number }[];
}

/**
 * `input` (its first `seconds`) remuxed to one continuous MPEG-TS stream (`-c copy -f mpegts`,
 * written to `dir`) and cut at every video keyframe, positions and timestamps from ffprobe;
 * the SDT/PAT/PMT packets ffmpeg's muxer writes right before a keyframe go with it. What a live
 * segmenter hands on: concatenated, the segments are the stream; each begins at a keyframe.
 * `muxOptions` go to the muxer (e.g. `-muxdelay 0` for one audio frame per PES, as our renditions have).
 */
export async function tsSourceSegments(input: string, seconds: number, dir: string, firstSeq = 0, muxOptions: readonly string[] = []): Promise<TsSourceSegment[]> {
  const ts = join(dir, `source-${process.pid}-${Math.random().toString(36).slice(2)}.ts`);
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', input, '-t', String(seconds), '-c', 'copy', ...muxOptions, '-f', 'mpegts', ts]);
  const data = await readFile(ts);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts,dts,pos,flags', '-of', 'json', ts],
    { maxBuffer: 1 << 26 });
  const packets = (JSON.parse(stdout) as { packets: { pts: string; dts: string; pos: string; flags: string }[] }).packets
    .map((p) => ({ pts: Number(p.pts), dts: Number(p.dts), pos: Number(p.pos), key: p.flags.startsWith('K') }));
  const pidAt = (pos: number): number => ((data[pos + 1]! & 0x1f) << 8) | data[pos + 2]!;
  const keys = packets.filter((p) => p.key).map((p) => {
    let pos = p.pos;
    // ffmpeg's mpegts muxer writes SDT (0x11), PAT (0) and PMT (0x1000) right before a keyframe.
    while (pos >= 188 && [0, 0x11, 0x1000].includes(pidAt(pos - 188))) pos -= 188;
    return { pts: p.pts, pos };
  });
  keys[0]!.pos = 0;
  return keys.map((k, i) => {
    const end = i + 1 < keys.length ? keys[i + 1]!.pos : data.length;
    const frames = packets.filter((p) => p.pos >= k.pos && p.pos < end).map((p) => ({ offset: p.pos - k.pos, dts90k: p.dts }));
    return { seq: firstSeq + i, startPts90k: k.pts, bytes: data.subarray(k.pos, end), frames };
  });
}

/**
 * ffprobe of a JPEG (written to a file in `dir`), decoding it (`-count_frames`): a truncated or
 * corrupt picture fails.
 * @returns its codec and picture size
 * @throws when it does not decode to exactly one picture
 */
export async function probeJpeg(jpeg: Buffer, dir: string): Promise<{ codec: string; width: number; height: number }> {
  const path = join(dir, `probe-${process.pid}-${Math.random().toString(36).slice(2)}.jpg`);
  await writeFile(path, jpeg);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', path]);
  const s = (JSON.parse(stdout) as { streams: { codec_name: string; width: number; height: number; nb_read_frames: string }[] }).streams[0];
  if (s?.nb_read_frames !== '1') throw new Error(`the JPEG does not decode to one picture: ${stdout}`);
  return { codec: s.codec_name, width: s.width, height: s.height };
}
