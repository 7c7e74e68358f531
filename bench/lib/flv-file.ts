/**
 * Reads a whole FLV file (Adobe FLV file format: a 9-byte header, then tags of an 11-byte
 * header, a body and a 4-byte PreviousTagSize) into its tags, for the benchmark publishers:
 * what `ffmpeg -re -c copy -f flv rtmp://…` sends over RTMP is these tag bodies as RTMP
 * messages of the same type and timestamp.
 */
import { readFileSync } from 'node:fs';
import { parseFlvTag } from '../../src/media/flv-packets.ts';

/** One FLV tag: `type` 8 audio, 9 video, 18 script data; `tsMs` its DTS in ms. */
export interface FlvTag { type: 8 | 9 | 18; tsMs: number; body: Buffer }

export interface FlvClip {
  tags: FlvTag[];
  /** DTS of the last tag plus one frame of the video (the loop period), ms. */
  durationMs: number;
  /** PTS of the first video keyframe (DTS + composition time), ms. */
  firstKeyframePtsMs: number;
}

/**
 * @throws when the file is not FLV or a tag runs past its end.
 */
export function readFlvFile(path: string): FlvClip {
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, 3) !== 'FLV') throw new Error(`${path}: not an FLV file`);
  const tags: FlvTag[] = [];
  let off = buf.readUInt32BE(5) + 4; // header size, then PreviousTagSize0
  let firstKeyframePtsMs: number | undefined;
  let lastVideoTs = 0;
  let videoStep = 0;
  while (off + 11 <= buf.length) {
    const type = buf[off]! & 0x1f;
    const size = buf.readUIntBE(off + 1, 3);
    const tsMs = buf.readUIntBE(off + 4, 3) | (buf[off + 7]! << 24);
    const end = off + 11 + size;
    if (end + 4 > buf.length) throw new Error(`${path}: tag at ${off} runs past the end`);
    const body = buf.subarray(off + 11, end);
    if (type === 8 || type === 9 || type === 18) tags.push({ type, tsMs, body });
    const packet = type === 9 ? parseFlvTag(buf.subarray(off, end + 4)) : undefined;
    if (packet?.type === 'video') {
      if (firstKeyframePtsMs === undefined && packet.keyframe) firstKeyframePtsMs = packet.dtsMs + packet.ctsMs;
      if (packet.dtsMs > lastVideoTs) videoStep = packet.dtsMs - lastVideoTs;
      lastVideoTs = packet.dtsMs;
    }
    off = end + 4;
  }
  if (tags.length === 0) throw new Error(`${path}: no tags`);
  return { tags, durationMs: tags[tags.length - 1]!.tsMs + videoStep, firstKeyframePtsMs: firstKeyframePtsMs ?? 0 };
}
