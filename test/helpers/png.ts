/**
 * A tiny dependency-free PNG encoder and IHDR reader for tests and the fake AI worker.
 *
 * Output: 8-bit truecolour (colour type 2), no interlace, filter type 0 (None) on every
 * row, one zlib-compressed IDAT chunk (PNG spec, ISO/IEC 15948). Decodable by ffmpeg,
 * browsers and PIL.
 */
import { crc32, deflateSync } from 'node:zlib';

/** The 8-byte PNG signature. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Encodes an RGB image as PNG.
 * @param width pixels, integer 1..65535
 * @param height pixels, integer 1..65535
 * @param rgb colour of the pixel at (x, y), each component 0..255 (clamped, rounded)
 * @throws RangeError on a bad size
 */
export function encodePng(width: number, height: number, rgb: (x: number, y: number) => readonly [number, number, number]): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 65535 || height > 65535) {
    throw new RangeError(`bad PNG size ${width}x${height}`);
  }
  const stride = 1 + width * 3;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const row = y * stride; // raw[row] = 0: filter type None
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      const o = row + 1 + x * 3;
      raw[o] = clampByte(r);
      raw[o + 1] = clampByte(g);
      raw[o + 2] = clampByte(b);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method
  ihdr[12] = 0; // no interlace
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 6 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A solid-colour PNG. */
export function solidPng(width: number, height: number, colour: readonly [number, number, number] = [32, 96, 160]): Buffer {
  return encodePng(width, height, () => colour);
}

/**
 * The size recorded in a PNG's IHDR chunk (which the PNG spec requires to come first).
 * @throws Error when the buffer is not a PNG.
 */
export function pngSize(buf: Buffer): { width: number; height: number } {
  if (!isPng(buf) || buf.length < 24 || buf.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG (no signature or IHDR)');
  }
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

/** Whether the buffer starts with the PNG signature. */
export function isPng(buf: Buffer): boolean {
  return buf.length >= 8 && buf.subarray(0, 8).equals(PNG_SIGNATURE);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
