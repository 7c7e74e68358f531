/**
 * Crafts MP4 files whose track data lives in another file, the way QuickTime reference
 * movies do: the `dref` box of each track gets a Macintosh alias record (`alis`) naming the
 * other file, without the self-contained flag. ffmpeg's MOV demuxer follows such an alias
 * when its option `enable_drefs` is on (libavformat/mov.c `mov_read_dref`, `mov_open_dref`):
 * it opens `<directory of the input>/` + `../` × (nlvl_from − 1) + the last nlvl_to
 * components of the alias path.
 */

function box(type: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + payload.length, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, payload]);
}

/** The boxes of `data` at one level: type and payload (32-bit sizes only, as ffmpeg writes small files). */
function boxes(data: Buffer): { type: string; payload: Buffer }[] {
  const out: { type: string; payload: Buffer }[] = [];
  for (let pos = 0; pos + 8 <= data.length;) {
    const size = data.readUInt32BE(pos);
    if (size < 8) throw new Error(`unexpected box size ${size} at ${pos}`);
    out.push({ type: data.toString('latin1', pos + 4, pos + 8), payload: data.subarray(pos + 8, pos + size) });
    pos += size;
  }
  return out;
}

const ON_THE_WAY = new Set(['moov', 'trak', 'mdia', 'minf', 'dinf']);

function rewrite(data: Buffer, replaceDref: (payload: Buffer) => Buffer, blankMdat: boolean): Buffer {
  return Buffer.concat(boxes(data).map(({ type, payload }) => {
    if (type === 'dref') return box(type, replaceDref(payload));
    if (ON_THE_WAY.has(type)) return box(type, rewrite(payload, replaceDref, false));
    if (type === 'mdat' && blankMdat) return box(type, Buffer.alloc(payload.length));
    return box(type, payload);
  }));
}

/**
 * A `dref` payload with one QuickTime alias entry (flags 0: data not in this file) whose
 * absolute path is `path`; `nlvlFrom`/`nlvlTo` as in the alias record (levels up from the
 * referencing file's directory, path components down to the target).
 */
export function aliasDrefPayload(path: string, nlvlFrom: number, nlvlTo: number): Buffer {
  const record = Buffer.alloc(150); // entry bytes 12..161: the fixed part of the alias record
  // entry offset 22 → record offset 10: volume name length 0; offset 50: file name length.
  const fileName = path.slice(path.lastIndexOf('/') + 1).slice(0, 63);
  record.writeUInt8(fileName.length, 50);
  record.write(fileName, 51, 'latin1');
  record.writeUInt16BE(nlvlFrom, 130);
  record.writeUInt16BE(nlvlTo, 132);
  const pathBytes = Buffer.from(path, 'latin1');
  const padded = Buffer.concat([pathBytes, Buffer.alloc(pathBytes.length % 2)]);
  const tlv = Buffer.alloc(4);
  tlv.writeUInt16BE(2, 0); // type 2: absolute path
  tlv.writeUInt16BE(pathBytes.length, 2);
  const end = Buffer.from([0xff, 0xff, 0, 0]);
  const entryBody = Buffer.concat([Buffer.alloc(4) /* version 0, flags 0 */, record, tlv, padded, end]);
  const entry = box('alis', entryBody);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(1, 4); // version/flags 0, one entry
  return Buffer.concat([head, entry]);
}

/**
 * Turns an MP4 written by ffmpeg (moov after mdat, one or more tracks) into one whose tracks
 * read their samples from `targetPath` at the same offsets, and blanks its own mdat so the
 * file itself holds none of the media. `fromDir` is the directory the crafted file will be
 * read from; the alias climbs to `/` from there and descends to `targetPath`.
 */
export function craftExternalReferenceMp4(mp4: Buffer, targetPath: string, fromDir: string): Buffer {
  const levelsUp = fromDir.split('/').filter(Boolean).length + 1;
  const levelsDown = targetPath.split('/').filter(Boolean).length;
  return rewrite(mp4, () => aliasDrefPayload(targetPath, levelsUp, levelsDown), true);
}
