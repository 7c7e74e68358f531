/**
 * saveWav: audio frames to a PCM WAV file (RIFF/WAVE with a 16-byte `fmt ` chunk, format 1 =
 * PCM, 16-bit; Microsoft's RIFF multimedia specification, as LiveKit's example writes it with
 * Python's `wave`). The header is written first with zero sizes and patched once the last
 * frame is in, so frames are written as they arrive and never held.
 */
import { open, rm } from 'node:fs/promises';
import type { AudioFrame } from './frame-types.ts';

export interface SaveWavOptions {
  /** Stop after this many seconds of audio (the last frame is cut to it, then the source is left: a track is stopped). Default: until the source ends. */
  readonly maxSeconds?: number;
}

export interface SavedWav {
  /** Samples per channel written. */
  readonly samples: number;
  readonly sampleRate: number;
  readonly channels: number;
  /** samples / sampleRate. */
  readonly durationSeconds: number;
}

/** Bytes of the canonical PCM WAV header. */
export const WAV_HEADER_BYTES = 44;
/** RIFF sizes are 32-bit. */
const MAX_DATA_BYTES = 0xffff_ffff - (WAV_HEADER_BYTES - 8);

/** The 44-byte header of a 16-bit PCM WAV file holding `dataBytes` of samples. Pure. */
export function wavHeader(sampleRate: number, channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28); // byte rate
  h.writeUInt16LE(channels * 2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * Writes `audio` to `path` (overwritten) as 16-bit PCM WAV at the first frame's sample rate
 * and channel count.
 * @throws RangeError when frames change rate/channels, `maxSeconds` is not > 0, or the file
 *   would pass 4 GiB; whatever the source throws (e.g. MediaStreamError MEDIA_FAILED). On any
 *   failure the file is removed.
 */
export async function saveWav(path: string, audio: AsyncIterable<AudioFrame>, options: SaveWavOptions = {}): Promise<SavedWav> {
  if (options.maxSeconds !== undefined && !(options.maxSeconds > 0)) throw new RangeError(`maxSeconds must be > 0, got ${options.maxSeconds}`);
  const file = await open(path, 'w');
  let sampleRate = 0;
  let channels = 0;
  let samples = 0;
  let dataBytes = 0;
  try {
    await file.write(wavHeader(48000, 2, 0), 0, WAV_HEADER_BYTES, 0);
    let position = WAV_HEADER_BYTES;
    for await (const frame of audio) {
      if (sampleRate === 0) {
        sampleRate = frame.sampleRate;
        channels = frame.channels;
      } else if (frame.sampleRate !== sampleRate || frame.channels !== channels) {
        throw new RangeError(`audio changed from ${sampleRate} Hz × ${channels} to ${frame.sampleRate} Hz × ${frame.channels}`);
      }
      const limit = options.maxSeconds === undefined ? Infinity : Math.round(options.maxSeconds * sampleRate);
      const take = Math.min(frame.samplesPerChannel, limit - samples);
      const bytes = take * channels * 2;
      if (dataBytes + bytes > MAX_DATA_BYTES) throw new RangeError('a WAV file cannot hold more than 4 GiB of samples');
      if (bytes > 0) {
        await file.write(frame.data, 0, bytes, position);
        position += bytes;
        dataBytes += bytes;
        samples += take;
      }
      if (samples >= limit) break;
    }
    await file.write(wavHeader(sampleRate || 48000, channels || 2, dataBytes), 0, WAV_HEADER_BYTES, 0);
    await file.close();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
  return { samples, sampleRate, channels, durationSeconds: sampleRate ? samples / sampleRate : 0 };
}
