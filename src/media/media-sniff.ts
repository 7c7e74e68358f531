/**
 * Recognizes uploaded media by its first bytes (never by the client's declared type) and
 * reads image dimensions from the headers, so a text file posted as `image` is refused
 * with 415 before any worker is called and billing uses measured sizes.
 *
 * Signatures: PNG (RFC 2083 §12.11), JPEG SOI + SOFn markers (ITU T.81 B.1.1.3), GIF87a/89a,
 * WebP RIFF/WEBP with VP8/VP8L/VP8X chunks; audio WAV (RIFF/WAVE), MP3 (ID3 or frame sync),
 * FLAC, Ogg, MP4/M4A (ftyp), WebM/Matroska (EBML).
 */
import { open } from 'node:fs/promises';

/** The first `maxBytes` of the file at `path` (fewer when the file is shorter), for the sniffers below. */
export async function readFileHead(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(maxBytes);
    const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export interface ImageInfo {
  readonly format: 'png' | 'jpeg' | 'gif' | 'webp';
  readonly width: number;
  readonly height: number;
}

/** Dimensions and format of an image, or undefined when the bytes are not a supported image. */
export function sniffImage(data: Buffer): ImageInfo | undefined {
  if (data.length >= 24 && data.readUInt32BE(0) === 0x89504e47 && data.readUInt32BE(4) === 0x0d0a1a0a && data.toString('latin1', 12, 16) === 'IHDR') {
    return { format: 'png', width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
  }
  if (data.length >= 10 && (data.toString('latin1', 0, 6) === 'GIF87a' || data.toString('latin1', 0, 6) === 'GIF89a')) {
    return { format: 'gif', width: data.readUInt16LE(6), height: data.readUInt16LE(8) };
  }
  if (data.length >= 30 && data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') {
    const chunk = data.toString('latin1', 12, 16);
    if (chunk === 'VP8 ') return { format: 'webp', width: data.readUInt16LE(26) & 0x3fff, height: data.readUInt16LE(28) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = data.readUInt32LE(21);
      return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { format: 'webp', width: data.readUIntLE(24, 3) + 1, height: data.readUIntLE(27, 3) + 1 };
    return undefined;
  }
  if (data.length >= 4 && data[0] === 0xff && data[1] === 0xd8) return sniffJpeg(data);
  return undefined;
}

function sniffJpeg(data: Buffer): ImageInfo | undefined {
  let pos = 2;
  while (pos + 9 < data.length) {
    if (data[pos] !== 0xff) return undefined;
    const marker = data[pos + 1]!;
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2;
      continue;
    }
    const length = data.readUInt16BE(pos + 2);
    // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { format: 'jpeg', height: data.readUInt16BE(pos + 5), width: data.readUInt16BE(pos + 7) };
    }
    pos += 2 + length;
  }
  return undefined;
}

/**
 * Audio containers the audio upload accepts, named by the ffmpeg demuxer that reads them
 * (`ffmpeg -demuxers`); the audio probe forces that demuxer instead of letting ffmpeg guess.
 */
export type AudioDemuxer = 'wav' | 'mp3' | 'aac' | 'flac' | 'ogg' | 'mov' | 'matroska';

/**
 * The container `data` starts like, or undefined when it is none of the supported ones.
 * A 12-bit frame sync is ADTS AAC when the layer bits are 00 (ISO/IEC 13818-7 §6.2.1),
 * MPEG audio otherwise (ISO/IEC 11172-3 §2.4.1.3).
 */
export function sniffAudioDemuxer(data: Buffer): AudioDemuxer | undefined {
  if (data.length < 12) return undefined;
  const head4 = data.toString('latin1', 0, 4);
  if (head4 === 'RIFF' && data.toString('latin1', 8, 12) === 'WAVE') return 'wav';
  if (head4 === 'fLaC') return 'flac';
  if (head4 === 'OggS') return 'ogg';
  if (data.toString('latin1', 0, 3) === 'ID3') return 'mp3';
  if (data[0] === 0xff && (data[1]! & 0xf6) === 0xf0) return 'aac';
  if (data[0] === 0xff && (data[1]! & 0xe0) === 0xe0) return 'mp3';
  if (data.toString('latin1', 4, 8) === 'ftyp') return 'mov'; // MP4 / M4A
  if (data.readUInt32BE(0) === 0x1a45dfa3) return 'matroska'; // EBML: WebM / Matroska
  return undefined;
}

/** True when the bytes start like a supported audio container. */
export function sniffAudio(data: Buffer): boolean {
  return sniffAudioDemuxer(data) !== undefined;
}
