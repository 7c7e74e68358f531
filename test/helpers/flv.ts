/**
 * FLV test input without an RTMP server: ffmpeg writes an FLV file from the real clip and
 * {@link splitFlvTags} cuts it into what node-media-server hands an in-process subscriber,
 * one `sendBuffer` each: the 13-byte FLV header, then whole tags (11-byte header, body,
 * 4-byte PreviousTagSize; Adobe FLV specification v10.1 Annex E.4.1). Files are cached in
 * the temp dir like test/helpers/media.ts's.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLIP } from './media.ts';

const run = promisify(execFile);
const cacheDir = join(tmpdir(), 'mediagate-test-media');

/** Splits FLV file bytes into the header and whole tags (copies, as separate Buffers). */
export function splitFlvTags(file: Buffer): Buffer[] {
  if (file.subarray(0, 3).toString('latin1') !== 'FLV') throw new Error('not an FLV file');
  const headerBytes = file.readUInt32BE(5);
  const out: Buffer[] = [Buffer.from(file.subarray(0, headerBytes + 4))];
  let at = headerBytes + 4;
  while (at + 11 <= file.length) {
    const end = at + 11 + file.readUIntBE(at + 1, 3) + 4;
    if (end > file.length) throw new Error(`truncated FLV tag at ${at}`);
    out.push(Buffer.from(file.subarray(at, end)));
    at = end;
  }
  return out;
}

/**
 * An FLV file made by ffmpeg from the clip (cached): `copy` = the clip's own H.264 (High,
 * B-frames, 10 s GOPs) and AAC stream-copied; `bf3` / `bf0` = re-encoded with libx264 3 or no
 * B-frames and a 2 s GOP (`-g 48`), audio copied; `1080p30` = scaled to 1920x1080 at 30 fps,
 * 6 Mb/s (x264 ultrafast), 2 s GOP, 3 B-frames; `ntsc` = 29.97 fps (30000/1001, in FLV's
 * millisecond timestamps), x264 ultrafast, 2 s GOP; `audio` = the AAC only; `mono48k` / `six22k` = the
 * audio only, re-encoded by ffmpeg's AAC encoder as mono 48 kHz / 5.1 at 22.05 kHz.
 * @param seconds length from the clip's start
 * @returns the file's path
 */
export async function clipFlv(kind: 'copy' | 'bf3' | 'bf0' | '1080p30' | 'ntsc' | 'audio' | 'mono48k' | 'six22k', seconds: number): Promise<string> {
  if (!existsSync(CLIP)) throw new Error(`test clip missing: ${CLIP} (expected in test/fixtures)`);
  mkdirSync(cacheDir, { recursive: true });
  const out = join(cacheDir, `bbb-${kind}-${seconds}s.flv`);
  if (existsSync(out)) return out;
  const video: Record<typeof kind, string[]> = {
    copy: ['-c:v', 'copy'],
    bf3: ['-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '800k', '-bf', '3', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0'],
    bf0: ['-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '800k', '-bf', '0', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0'],
    '1080p30': ['-vf', 'scale=1920:1080,fps=30', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '6M', '-maxrate', '6M', '-bufsize', '12M',
      '-bf', '3', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0'],
    ntsc: ['-vf', 'fps=30000/1001', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0'],
    audio: ['-vn'],
    mono48k: ['-vn'],
    six22k: ['-vn'],
  };
  const audio: Record<typeof kind, string[]> = {
    copy: ['-c:a', 'copy'], bf3: ['-c:a', 'copy'], bf0: ['-c:a', 'copy'], '1080p30': ['-c:a', 'copy'], ntsc: ['-c:a', 'copy'], audio: ['-c:a', 'copy'],
    mono48k: ['-c:a', 'aac', '-ac', '1', '-ar', '48000'], six22k: ['-c:a', 'aac', '-ac', '6', '-ar', '22050'],
  };
  const tmp = `${out}.${process.pid}.tmp`;
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', CLIP, '-t', String(seconds), ...video[kind], ...audio[kind], '-f', 'flv', tmp]);
  await run('mv', [tmp, out]);
  return out;
}

/** The tags of an FLV file ({@link splitFlvTags}). */
export function readFlvTags(path: string): Buffer[] {
  return splitFlvTags(readFileSync(path));
}
