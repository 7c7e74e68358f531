/**
 * Real frames from the clip in test/fixtures (extracted with ffmpeg at test time), raw
 * pixels with sharp, and PSNR, for the AI worker tests.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import sharp, { type Sharp } from 'sharp';
import { CLIP } from '../../helpers/media.ts';

const run = promisify(execFile);

/**
 * One frame of the clip as PNG, scaled with ffmpeg's Lanczos scaler.
 * @param atSeconds position in the clip
 * @throws when the clip or ffmpeg is missing (tests fail rather than skip)
 */
export async function clipFrame(atSeconds: number, width: number, height: number): Promise<Buffer> {
  if (!existsSync(CLIP)) throw new Error(`test clip missing: ${CLIP} (expected in test/fixtures)`);
  const { stdout } = await run('ffmpeg', [
    '-nostdin', '-v', 'error', '-ss', String(atSeconds), '-i', CLIP, '-frames:v', '1',
    '-vf', `scale=${width}:${height}:flags=lanczos`, '-f', 'image2pipe', '-c:v', 'png', '-',
  ], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export interface RawImage {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Uint8Array;
}

export async function rawPixels(image: Buffer | Sharp): Promise<RawImage> {
  const pipeline = Buffer.isBuffer(image) ? sharp(image) : image;
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The input upscaled by `scale` with libvips' Lanczos-3 kernel (RGB). */
export async function lanczosUpscale(png: Buffer, scale: number): Promise<RawImage> {
  const meta = await sharp(png).metadata();
  return rawPixels(sharp(png).removeAlpha().resize(meta.width! * scale, meta.height! * scale, { kernel: 'lanczos3', fit: 'fill' }));
}

/** Peak signal-to-noise ratio of two same-sized 8-bit images, dB (Infinity when identical). */
export function psnr(a: RawImage, b: RawImage): number {
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new Error(`PSNR of different shapes: ${a.width}x${a.height}x${a.channels} vs ${b.width}x${b.height}x${b.channels}`);
  }
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    sum += d * d;
  }
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** The PNG inside a `data:image/png;base64,` URL. */
export function dataUrlBytes(url: string): Buffer {
  const m = /^data:image\/png;base64,(.+)$/.exec(url);
  if (!m) throw new Error(`not a PNG data URL: ${url.slice(0, 40)}`);
  return Buffer.from(m[1]!, 'base64');
}

export function uploadForm(fields: Record<string, string>, image?: { data: Uint8Array; type?: string; name?: string }): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (image) form.append('image', new Blob([image.data], { type: image.type ?? 'image/png' }), image.name ?? 'frame.png');
  return form;
}
