/**
 * Image decoding and encoding for the reference AI worker, with sharp (libvips).
 *
 * Input: any format sharp reads (PNG, JPEG, WebP, GIF (first frame), AVIF, TIFF, ...),
 * EXIF orientation applied, converted to 8-bit sRGB. An alpha channel is kept apart: the
 * network upscales the colour, the alpha plane is resized with Lanczos-3 and joined again.
 * Output: 8-bit PNG (RGB, or RGBA when the input had alpha).
 *
 * Limits are checked on the header before any pixel is decoded (a decompression bomb is
 * refused from its header), and again by libvips (`limitInputPixels`) while decoding.
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';

/** A request image the worker cannot use; `status` is the HTTP status to answer. */
export class ImageInputError extends Error {
  readonly status: 400 | 413 | 415;
  constructor(status: 400 | 413 | 415, message: string) {
    super(message);
    this.name = 'ImageInputError';
    this.status = status;
  }
}

export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  /** width × height × 3 bytes, row-major RGB. */
  readonly rgb: Uint8Array;
  /** width × height bytes when the image has an alpha channel. */
  readonly alpha?: Uint8Array;
}

/**
 * Decodes an uploaded image.
 * @param maxInputPixels largest width × height accepted
 * @throws ImageInputError 400 (empty, undecodable body of a known format), 413 (above the
 *   pixel limit), 415 (not an image format sharp knows)
 */
export async function decodeImage(data: Uint8Array, maxInputPixels: number): Promise<DecodedImage> {
  if (data.length === 0) throw new ImageInputError(400, 'image: the uploaded file is empty');
  let meta: Metadata;
  try {
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch {
    throw new ImageInputError(415, 'image: not an image format this worker can read (PNG, JPEG, WebP, GIF, AVIF or TIFF expected)');
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width < 1 || height < 1) throw new ImageInputError(415, 'image: the file has no readable image size');
  if (width * height > maxInputPixels) {
    throw new ImageInputError(413, `image: ${width}x${height} is ${width * height} pixels, above this worker's limit of ${maxInputPixels} pixels`);
  }
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(data, { limitInputPixels: maxInputPixels, failOn: 'error' })
      .autoOrient()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
    throw new ImageInputError(400, `image: the file could not be decoded (${reason})`);
  }
  const { info } = decoded;
  const pixels = info.width * info.height;
  if (info.channels === 3) return { width: info.width, height: info.height, rgb: new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, pixels * 3) };
  if (info.channels !== 4) throw new ImageInputError(400, `image: unexpected ${info.channels} channels after conversion to sRGB`);
  const rgb = new Uint8Array(pixels * 3);
  const alpha = new Uint8Array(pixels);
  const src = decoded.data;
  for (let i = 0, j = 0, k = 0; i < pixels; i++, j += 4, k += 3) {
    rgb[k] = src[j]!;
    rgb[k + 1] = src[j + 1]!;
    rgb[k + 2] = src[j + 2]!;
    alpha[i] = src[j + 3]!;
  }
  return { width: info.width, height: info.height, rgb, alpha };
}

/**
 * Encodes an upscaled image as PNG.
 * @param rgb width × height × 3 bytes
 * @param alpha the input's alpha plane (inputWidth × inputHeight bytes), resized to width × height with Lanczos-3
 */
export async function encodePng(
  rgb: Uint8Array, width: number, height: number,
  alpha?: { readonly data: Uint8Array; readonly width: number; readonly height: number },
): Promise<Buffer> {
  const png = { compressionLevel: 6, adaptiveFiltering: false } as const;
  if (alpha === undefined) return sharp(rgb, { raw: { width, height, channels: 3 } }).png(png).toBuffer();
  const resized = await sharp(alpha.data, { raw: { width: alpha.width, height: alpha.height, channels: 1 } })
    .resize(width, height, { kernel: 'lanczos3', fit: 'fill' })
    .extractChannel(0) // libvips would otherwise hand back the grey plane as sRGB (3 channels)
    .raw()
    .toBuffer();
  if (resized.length !== width * height) throw new Error(`alpha plane resize gave ${resized.length} bytes for ${width}x${height}`);
  const rgba = Buffer.allocUnsafe(width * height * 4);
  for (let i = 0, j = 0, k = 0; i < width * height; i++, j += 4, k += 3) {
    rgba[j] = rgb[k]!;
    rgba[j + 1] = rgb[k + 1]!;
    rgba[j + 2] = rgb[k + 2]!;
    rgba[j + 3] = resized[i]!;
  }
  return sharp(rgba, { raw: { width, height, channels: 4 } }).png(png).toBuffer();
}
