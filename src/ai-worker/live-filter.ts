/**
 * The per-frame transform of the reference live pipeline `mediagate/cpu-filter`, on the CPU
 * with sharp (libvips), on packed RGB frames (`rgb24`: sharp's raw input, so no conversion
 * happens in Node; the decoder and the encoder convert from and to yuv420p):
 *
 * - `negate`: sharp `negate()`, every channel v → 255 − v.
 * - `grayscale`: sharp `recomb()` with the Rec. 601 luma weights (0.299 R + 0.587 G + 0.114 B)
 *   in all three rows, so the frame stays 3-channel RGB.
 * - `tint`: sharp `tint(rgb)`: keeps each pixel's lightness and takes the colour's chroma.
 * - `none`: the frame as it came.
 *
 * Cost on the 2-core reference machine, 640×360: negate ~1 ms, grayscale and tint ~4 ms per
 * frame (libvips with one thread per operation); bench figures in docs/operations.md.
 */
import sharp from 'sharp';
import type { VideoFrame } from '../frames/frame-types.ts';
import type { LiveFilterParams } from './live-params.ts';

const LUMA_601: [number, number, number] = [0.299, 0.587, 0.114];

/**
 * The filtered frame: same size, format and pts; a new buffer unless the filter is `none`.
 * @throws TypeError for a frame that is not `rgb24`.
 */
export async function applyLiveFilter(frame: VideoFrame, params: LiveFilterParams): Promise<VideoFrame> {
  if (params.filter === 'none') return frame;
  if (frame.format !== 'rgb24') throw new TypeError(`the live filter takes rgb24 frames, got ${frame.format}`);
  let image = sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } });
  if (params.filter === 'negate') image = image.negate();
  else if (params.filter === 'grayscale') image = image.recomb([LUMA_601, LUMA_601, LUMA_601]);
  else image = image.tint(params.tint);
  const data = await image.raw().toBuffer();
  return { ...frame, data };
}
