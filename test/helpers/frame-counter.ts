/**
 * A frame counter burned into the test clip and read back from decoded frames, so a frame
 * that went through a live AI pipeline can be matched to the input frame it came from
 * (the live video-to-video tests and bench/live-v2v.ts).
 *
 * The pattern: a black bar of 17 blocks of 16×16 px at the top left; block 0 is always white
 * (the marker: black after a negating transform, so the reader knows the polarity), block
 * i + 1 is white when bit i of the frame number is set (16 bits: 45 min at 24 fps). Drawn by
 * ffmpeg's `drawbox` with a timeline `enable` expression on `n`, the frame number
 * (https://ffmpeg.org/ffmpeg-filters.html#Timeline-editing); 16 px blocks are whole
 * macroblocks, so H.264 at ordinary rates keeps them readable.
 *
 * Frames are compared as means of a grid of cells below the bar (linear in the pixels, so a
 * per-pixel transform such as a negation holds for the means, and coding noise averages out).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLIP } from './media.ts';

const run = promisify(execFile);

export const COUNTER_BLOCK_PX = 16;
export const COUNTER_BITS = 16;
/** Rows from the top left out of the comparison grid (the bar and a margin for coding spill). */
const GRID_TOP_PX = 32;
const GRID_COLS = 32;
const GRID_ROWS = 16;

/** The drawbox chain that burns the counter into each frame (an ffmpeg -vf value). */
export function counterFilter(): string {
  const b = COUNTER_BLOCK_PX;
  const boxes = [`drawbox=x=0:y=0:w=${b * (COUNTER_BITS + 1)}:h=${b}:color=black:t=fill`, `drawbox=x=0:y=0:w=${b}:h=${b}:color=white:t=fill`];
  for (let i = 0; i < COUNTER_BITS; i++) {
    boxes.push(`drawbox=x=${b * (i + 1)}:y=0:w=${b}:h=${b}:color=white:t=fill:enable='eq(mod(floor(n/${2 ** i}),2),1)'`);
  }
  return boxes.join(',');
}

/**
 * The first `seconds` of the clip (640×360, 24 fps) with the counter burned in, H.264 with a
 * 2 s GOP (48 frames, no scene cuts), AAC copied: frame n of the file carries n. Cached in the
 * temp dir.
 */
export async function counterClip(seconds: number): Promise<string> {
  if (!existsSync(CLIP)) throw new Error(`test clip missing: ${CLIP}`);
  const dir = join(tmpdir(), 'mediagate-test-media');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `bbb-counter-${seconds}s.mp4`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp.mp4`;
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', CLIP, '-t', String(seconds), '-vf', counterFilter(),
      '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '1200k', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
      '-c:a', 'copy', tmp]);
    await run('mv', [tmp, out]);
  }
  return out;
}

/** What is kept of one decoded frame: its counter and the grid's mean R, G, B per cell. */
export interface FrameSummary {
  /** The frame number read from the counter; undefined when the pattern is unreadable. */
  readonly n: number | undefined;
  /** The marker block is dark: the frame went through a negation. */
  readonly inverted: boolean;
  /** GRID_COLS × GRID_ROWS cells, R, G, B each (0-255 means). */
  readonly cells: Float64Array;
}

function blockMean(data: Buffer, width: number, x0: number, y0: number, size: number): number {
  let sum = 0;
  for (let y = y0; y < y0 + size; y++) {
    for (let x = x0; x < x0 + size; x++) {
      const p = (y * width + x) * 3;
      sum += data[p]! + data[p + 1]! + data[p + 2]!;
    }
  }
  return sum / (3 * size * size);
}

/** Reads the counter and the grid of one rgb24 frame. */
export function summarizeFrame(data: Buffer, width: number, height: number): FrameSummary {
  const b = COUNTER_BLOCK_PX;
  // The centre 8×8 of each block: edges carry the coding spill of their neighbours.
  const level = (i: number): number => blockMean(data, width, i * b + 4, 4, 8);
  const marker = level(0);
  const inverted = marker < 128;
  const bright = (v: number): boolean => (inverted ? v < 128 : v >= 128);
  const margin = Math.abs(marker - 128);
  let n: number | undefined = 0;
  for (let i = 0; i < COUNTER_BITS; i++) {
    const v = level(i + 1);
    if (Math.abs(v - 128) < 40 && n !== undefined) n = undefined;
    else if (n !== undefined && bright(v)) n += 2 ** i;
  }
  if (margin < 40) n = undefined;
  const cells = new Float64Array(GRID_COLS * GRID_ROWS * 3);
  const cw = Math.floor(width / GRID_COLS);
  const ch = Math.floor((height - GRID_TOP_PX) / GRID_ROWS);
  for (let r = 0; r < GRID_ROWS; r++) {
    for (let c = 0; c < GRID_COLS; c++) {
      const sums = [0, 0, 0];
      for (let y = GRID_TOP_PX + r * ch; y < GRID_TOP_PX + (r + 1) * ch; y++) {
        for (let x = c * cw; x < (c + 1) * cw; x++) {
          const p = (y * width + x) * 3;
          sums[0]! += data[p]!;
          sums[1]! += data[p + 1]!;
          sums[2]! += data[p + 2]!;
        }
      }
      for (let k = 0; k < 3; k++) cells[(r * GRID_COLS + c) * 3 + k] = sums[k]! / (cw * ch);
    }
  }
  return { n, inverted, cells };
}

/**
 * Decodes every video frame of `input` (a file or URL: an MP4, a TS segment) scaled to
 * `width`×`height` rgb24 with ffmpeg, and summarizes each.
 * @throws Error with ffmpeg's stderr when it fails
 */
export async function summarizeFrames(input: string, width = 640, height = 360): Promise<FrameSummary[]> {
  const frameBytes = width * height * 3;
  const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-i', input, '-map', '0:v:0', '-vf', `scale=${width}:${height}`, '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const summaries: FrameSummary[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const exited = new Promise<number | null>((res, rej) => { child.once('error', rej); child.once('exit', (code) => res(code)); });
  for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= frameBytes) {
      const all = Buffer.concat(pending);
      summaries.push(summarizeFrame(all.subarray(0, frameBytes), width, height));
      pending = [all.subarray(frameBytes)];
      pendingBytes -= frameBytes;
    }
  }
  const code = await exited;
  if (code !== 0) throw new Error(`ffmpeg decoding ${input} exited ${code}: ${stderr}`);
  return summaries;
}

/** The summaries of a counter clip by frame number. */
export async function referenceFrames(clip: string): Promise<Map<number, FrameSummary>> {
  const map = new Map<number, FrameSummary>();
  (await summarizeFrames(clip)).forEach((s, i) => map.set(i, s));
  return map;
}

const luma = (c: Float64Array, i: number): number => 0.299 * c[i]! + 0.587 * c[i + 1]! + 0.114 * c[i + 2]!;

/** How an output frame relates to its input frame, means over the grid's cells, 0-255 levels. */
export interface FrameComparison {
  /** mean |out − in| over cells and channels: ≈ 0 for an unchanged frame. */
  readonly identityError: number;
  /** mean |out − (255 − in)|: ≈ 0 for a negated frame. */
  readonly negateError: number;
  /** mean |luma(out) − luma(in)| with BT.601 weights: ≈ 0 for an unchanged or greyscaled frame. */
  readonly lumaError: number;
  /** mean of (|R − G| + |G − B| + |B − R|) / 3 of the output: ≈ 0 for a grey frame. */
  readonly outChroma: number;
  /** The same of the input. */
  readonly inChroma: number;
}

export function compareFrames(out: FrameSummary, input: FrameSummary): FrameComparison {
  let identity = 0;
  let negate = 0;
  let lumaErr = 0;
  let outChroma = 0;
  let inChroma = 0;
  const cells = out.cells.length / 3;
  const chroma = (c: Float64Array, i: number): number => (Math.abs(c[i]! - c[i + 1]!) + Math.abs(c[i + 1]! - c[i + 2]!) + Math.abs(c[i + 2]! - c[i]!)) / 3;
  for (let i = 0; i < out.cells.length; i += 3) {
    for (let k = 0; k < 3; k++) {
      identity += Math.abs(out.cells[i + k]! - input.cells[i + k]!);
      negate += Math.abs(out.cells[i + k]! - (255 - input.cells[i + k]!));
    }
    lumaErr += Math.abs(luma(out.cells, i) - luma(input.cells, i));
    outChroma += chroma(out.cells, i);
    inChroma += chroma(input.cells, i);
  }
  return { identityError: identity / (3 * cells), negateError: negate / (3 * cells), lumaError: lumaErr / cells, outChroma: outChroma / cells, inChroma: inChroma / cells };
}

/** Means of each field over comparisons (undefined for none). */
export function meanComparison(list: readonly FrameComparison[]): FrameComparison | undefined {
  if (list.length === 0) return undefined;
  const avg = (f: (c: FrameComparison) => number): number => list.reduce((s, c) => s + f(c), 0) / list.length;
  return {
    identityError: avg((c) => c.identityError), negateError: avg((c) => c.negateError), lumaError: avg((c) => c.lumaError),
    outChroma: avg((c) => c.outChroma), inChroma: avg((c) => c.inChroma),
  };
}
