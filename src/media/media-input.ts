/**
 * Keeps client bytes from steering ffmpeg/ffprobe to other files or hosts.
 *
 * Left to itself, ffmpeg picks a demuxer by probing the bytes, and several demuxers read
 * other resources named inside the file: an HLS playlist (`#EXTM3U`) opens its segment
 * URIs (local paths, http...), an ffconcat script opens the files it lists, a DASH manifest
 * its segments, and the MP4/MOV demuxer can open a track's media through a Macintosh alias
 * record in its data reference box (`dref`/`alis`; ffmpeg `libavformat/mov.c`
 * `mov_read_dref`/`mov_open_dref`, only when the demuxer option `enable_drefs` is set).
 * So every ffmpeg/ffprobe run on client bytes (or on a file made from them) gets
 * {@link demuxerInputArgs}: the demuxer is forced (no probing), only the `file` protocol may
 * be opened, and the MOV demuxer's external references are switched off explicitly
 * (`enable_drefs` and `use_absolute_path` default to 0 in ffmpeg 5.1, checked with
 * `ffprobe -h demuxer=mov`; set anyway so a build or version with other defaults cannot
 * turn them on).
 *
 * {@link inspectSegmentFile} looks at a segment before ffmpeg does (the ingest probe and the
 * MP4 rewrap call it first), so the client hears what was wrong ("an HLS playlist", "an
 * external data reference", "a PNG image") instead of a demuxer's "Invalid data found"; the
 * forced demuxer is the guard, this check names it.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { AudioDemuxer } from './media-sniff.ts';
import { GatewayError } from '../errors/gateway-error.ts';

/**
 * Container of a segment file, by the ffmpeg demuxer that reads it: `mpegts` (`.ts`), `mov`
 * (`.mp4`), `matroska` (WebM sent as `.mp4`: read as what it is, so the codec can be named).
 */
export type SegmentDemuxer = 'mpegts' | 'mov' | 'matroska';

/**
 * ffmpeg/ffprobe input options (placed before `-i`/the input path) that read the input with
 * exactly `demuxer` and open nothing but the one local file: `-protocol_whitelist file
 * -f <demuxer>`, plus `-enable_drefs 0 -use_absolute_path 0` for `mov` (MP4/M4A).
 */
export function demuxerInputArgs(demuxer: SegmentDemuxer | AudioDemuxer): string[] {
  const args = ['-protocol_whitelist', 'file', '-f', demuxer];
  if (demuxer === 'mov') args.push('-enable_drefs', '0', '-use_absolute_path', '0');
  return args;
}

/** Bytes read from the start of a segment to recognize it. */
const HEAD_BYTES = 512;
/** MPEG-TS packet sizes: 188 (ISO/IEC 13818-1), 192 (M2TS, 4-byte timestamp prefix). */
const TS_SYNC = 0x47;
/** EBML header ID, the first 4 bytes of WebM/Matroska (RFC 8794 §11.2.1). */
const EBML_MAGIC = 0x1a45dfa3;
/** Largest `moov` box inspected for data references; a segment's index is far smaller. */
const MAX_MOOV_BYTES = 16 * 1024 * 1024;
/** Top-level boxes an MP4 segment may start with (ISO/IEC 14496-12 and QuickTime). */
const MP4_FIRST_BOXES = new Set(['ftyp', 'styp', 'moov', 'moof', 'mdat', 'free', 'skip', 'wide', 'pnot', 'sidx', 'uuid', 'pdin', 'emsg', 'prft']);
/** Boxes on the way from `moov` to `dref` (ISO/IEC 14496-12 §8.7.1: moov/trak/mdia/minf/dinf/dref). */
const DREF_PATH_CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'dinf']);

/**
 * What text at the start of a file is, for the formats ffmpeg reads other resources through;
 * `undefined` for anything else (binary media included).
 */
export function describeIndirectFormat(head: Buffer): string | undefined {
  let text = head.toString('latin1');
  if (text.startsWith('\xef\xbb\xbf')) text = text.slice(3);
  text = text.trimStart();
  if (text.startsWith('#EXTM3U')) return 'an HLS playlist (#EXTM3U)';
  if (text.startsWith('ffconcat')) return 'an ffconcat script';
  if (/^<(\?xml|MPD|smil)/i.test(text)) return 'an XML manifest (DASH/SMIL)';
  if (text.startsWith('#EXT')) return 'a playlist (#EXT...)';
  if (text.startsWith('[playlist]')) return 'a PLS playlist';
  return undefined;
}

/** What common binary formats' first bytes are, for messages; undefined when unknown. */
export function describeBinaryFormat(head: Buffer): string | undefined {
  const ascii = (start: number, end: number): string => head.toString('latin1', start, end);
  if (head.length >= 8 && head.readUInt32BE(0) === 0x89504e47) return 'a PNG image';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'a JPEG image';
  if (ascii(0, 3) === 'GIF') return 'a GIF image';
  if (ascii(4, 8) === 'ftyp' || ascii(4, 8) === 'moov' || ascii(4, 8) === 'mdat') return 'MP4/QuickTime';
  if (head.length >= 4 && head.readUInt32BE(0) === EBML_MAGIC) return 'WebM/Matroska';
  if (ascii(0, 3) === 'FLV') return 'FLV';
  if (ascii(0, 4) === 'OggS') return 'Ogg';
  if (ascii(0, 4) === 'RIFF') return `RIFF (${ascii(8, 12).replace(/[^ -~]/g, '?')})`;
  if (ascii(0, 3) === 'ID3') return 'MP3 (ID3)';
  return undefined;
}

function refuse(why: string): GatewayError {
  return new GatewayError('UNDECODABLE_MEDIA', `segment is not decodable media: ${why}`);
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await file.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

function looksLikeTs(head: Buffer): boolean {
  for (const packet of [188, 192]) {
    const first = packet === 192 ? 4 : 0;
    if (head[first] !== TS_SYNC) continue;
    if (head.length < first + packet + 1 || head[first + packet] === TS_SYNC) return true;
  }
  return false;
}

/**
 * Data reference entries of a `dref` box payload (after the box header) that point outside
 * the file: every entry without the self-contained flag (flags bit 0, ISO/IEC 14496-12
 * §8.7.2), e.g. `url ` with a location or a QuickTime `alis` record. Returns their types.
 */
export function externalDataReferences(dref: Buffer): string[] {
  const found: string[] = [];
  if (dref.length < 8) return found;
  const entries = dref.readUInt32BE(4);
  let pos = 8;
  for (let i = 0; i < entries && pos + 12 <= dref.length; i++) {
    const size = dref.readUInt32BE(pos);
    const type = dref.toString('latin1', pos + 4, pos + 8);
    const flags = dref.readUIntBE(pos + 9, 3);
    if ((flags & 1) === 0) found.push(type);
    if (size < 12) break;
    pos += size;
  }
  return found;
}

/** Walks the boxes of `data` (one level), calling `visit(type, payload)`. */
function forEachBox(data: Buffer, visit: (type: string, payload: Buffer) => void): void {
  let pos = 0;
  while (pos + 8 <= data.length) {
    let size = data.readUInt32BE(pos);
    const type = data.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (size === 1 && pos + 16 <= data.length) {
      size = Number(data.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) {
      size = data.length - pos;
    }
    if (size < header) return;
    visit(type, data.subarray(pos + header, Math.min(data.length, pos + size)));
    pos += size;
  }
}

/** Data reference problems inside a `moov` box payload: external entries, or a compressed header that cannot be checked. */
function moovProblems(moov: Buffer): string[] {
  const problems: string[] = [];
  const walk = (data: Buffer): void => forEachBox(data, (type, payload) => {
    if (type === 'cmov') problems.push('cmov');
    else if (type === 'dref') problems.push(...externalDataReferences(payload).map((t) => `dref '${t}'`));
    else if (DREF_PATH_CONTAINERS.has(type)) walk(payload);
  });
  walk(moov);
  return problems;
}

/**
 * Checks that a segment file is the container its name says, before ffmpeg reads it:
 * MPEG-TS must start with a sync byte (0x47, 188- or 192-byte packets); MP4 must start with
 * an ISO BMFF box, and every track's data must be inside the file (no `dref` entry without
 * the self-contained flag, no compressed `cmov` header); WebM/Matroska (EBML header) is
 * accepted where MP4 is expected and read as Matroska. Playlists, concat scripts and
 * manifests are named as such. Reads the first 512 bytes, the top-level box headers and the
 * `moov` box (at most 16 MiB).
 *
 * @param path the segment file
 * @param demuxer `mpegts` for `.ts`, `mov` for `.mp4` (`matroska`: EBML header only)
 * @returns the demuxer to read it with: `demuxer`, or `matroska` for WebM where MP4 was expected
 * @throws GatewayError UNDECODABLE_MEDIA (422) naming what the file is or what is wrong.
 */
export async function inspectSegmentFile(path: string, demuxer: SegmentDemuxer): Promise<SegmentDemuxer> {
  const file = await open(path, 'r');
  try {
    const head = await readAt(file, 0, HEAD_BYTES);
    const indirect = describeIndirectFormat(head);
    const expected = demuxer === 'mpegts' ? 'a .ts segment must be MPEG-TS' : 'an .mp4 segment must be ISO BMFF (MP4)';
    if (indirect) throw refuse(`${expected}, this is ${indirect}; playlists, concat scripts and other formats that reference other files are refused`);
    if (demuxer === 'mpegts') {
      if (!looksLikeTs(head)) {
        const looks = describeBinaryFormat(head);
        throw refuse(`${expected}: no sync byte 0x47 at the start${looks ? ` (this is ${looks})` : ''}`);
      }
      return demuxer;
    }
    if (head.length >= 4 && head.readUInt32BE(0) === EBML_MAGIC) return 'matroska';
    if (demuxer === 'matroska') throw refuse('a WebM/Matroska segment must start with an EBML header');
    if (head.length < 8 || !MP4_FIRST_BOXES.has(head.toString('latin1', 4, 8))) {
      const looks = looksLikeTs(head) ? 'MPEG-TS' : describeBinaryFormat(head);
      throw refuse(`${expected}: it does not start with an MP4 box (ftyp, moov, ...)${looks ? ` (this is ${looks})` : ''}`);
    }
    const { size: fileBytes } = await file.stat();
    let pos = 0;
    while (pos + 8 <= fileBytes) {
      const header = await readAt(file, pos, 16);
      if (header.length < 8) break;
      let size = header.readUInt32BE(0);
      const type = header.toString('latin1', 4, 8);
      let headerBytes = 8;
      if (size === 1) {
        if (header.length < 16) break;
        size = Number(header.readBigUInt64BE(8));
        headerBytes = 16;
      } else if (size === 0) {
        size = fileBytes - pos;
      }
      if (size < headerBytes) throw refuse(`${expected}: box "${type.replace(/[^ -~]/g, '?')}" at byte ${pos} has an invalid size`);
      if (type === 'moov' || type === 'free' || type === 'hoov') {
        // ffmpeg also reads a `free`/`hoov` box holding a movie header as `moov`.
        if (size - headerBytes > MAX_MOOV_BYTES) throw refuse(`${expected}: its ${type} box exceeds ${MAX_MOOV_BYTES} bytes`);
        const problems = moovProblems(await readAt(file, pos + headerBytes, size - headerBytes));
        if (problems.length > 0) {
          throw refuse(`the MP4's track data must be inside the file; it has ${problems.includes('cmov') ? 'a compressed movie header (cmov), which cannot be checked' : `an external data reference (${problems[0]!})`}`);
        }
      }
      pos += size;
    }
    return demuxer;
  } finally {
    await file.close();
  }
}
