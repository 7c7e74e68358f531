/**
 * Pure helpers of the segment probe (probe.ts) that name a stream's codec from its bytes:
 * RFC 6381 codec strings of HEVC and audio streams (H.264's: h264.ts), ffprobe's `-show_data`
 * hex dumps read back into bytes, and the codec of a private-data stream sniffed from a
 * packet.
 */
import { splitAnnexB, unescapeRbsp } from './h264.ts';

/** The first HEVC SPS NAL unit (nal_unit_type 33, 2-byte header included) in Annex-B data, if any. */
export function findHevcSps(annexB: Uint8Array): Uint8Array | undefined {
  return splitAnnexB(annexB).find((nal) => nal.length >= 15 && ((nal[0]! >> 1) & 0x3f) === 33);
}

/**
 * RFC 6381 codec string of an HEVC stream from its SPS, per ISO/IEC 14496-15 Annex E:
 * `hvc1.[A|B|C]<profile_idc>.<compat flags, bit-reversed hex>.<L|H><level_idc>[.<constraint bytes>]`,
 * trailing zero constraint bytes omitted; e.g. `hvc1.1.6.L63.B0` for Main, level 2.1.
 * Reads general_profile_tier_level of the SPS (not the VPS).
 *
 * @param sps the SPS NAL unit starting with its 2-byte header (nal_unit_type 33).
 * @throws RangeError when `sps` is not an HEVC SPS or is too short.
 */
export function hevcCodecString(sps: Uint8Array): string {
  if (sps.length < 3 || ((sps[0]! >> 1) & 0x3f) !== 33) throw new RangeError('not an HEVC SPS NAL unit (expected nal_unit_type 33)');
  const rbsp = unescapeRbsp(sps.subarray(2));
  if (rbsp.length < 13) throw new RangeError('HEVC SPS too short for profile_tier_level');
  const ptl = rbsp[1]!;
  const space = ['', 'A', 'B', 'C'][ptl >> 6]!;
  const tier = (ptl & 0x20) !== 0 ? 'H' : 'L';
  const profileIdc = ptl & 0x1f;
  let compat = ((rbsp[2]! << 24) | (rbsp[3]! << 16) | (rbsp[4]! << 8) | rbsp[5]!) >>> 0;
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = ((reversed << 1) | (compat & 1)) >>> 0;
    compat >>>= 1;
  }
  const constraints = Array.from(rbsp.subarray(6, 12));
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const levelIdc = rbsp[12]!;
  const parts = [`hvc1`, `${space}${profileIdc}`, reversed.toString(16).toUpperCase(), `${tier}${levelIdc}`,
    ...constraints.map((b) => b.toString(16).toUpperCase().padStart(2, '0'))];
  return parts.join('.');
}

/**
 * RFC 6381 codec string of an audio stream: AAC by profile (`LC` → `mp4a.40.2`, `HE-AAC`
 * → `mp4a.40.5`, `HE-AACv2` → `mp4a.40.29`, `Main` → `mp4a.40.1`, `LTP` → `mp4a.40.4`;
 * unknown AAC profiles are treated as LC), MP3 → `mp4a.40.34`, AC-3 → `ac-3`, E-AC-3 → `ec-3`,
 * Opus → `Opus`; `undefined` for anything else. Object type numbers: ISO/IEC 14496-3.
 */
export function audioCodecString(codec: string, profile: string): string | undefined {
  switch (codec) {
    case 'aac': {
      const aot: Record<string, number> = { LC: 2, 'HE-AAC': 5, 'HE-AACv2': 29, Main: 1, LTP: 4 };
      return `mp4a.40.${aot[profile] ?? 2}`;
    }
    case 'mp3': return 'mp4a.40.34';
    case 'ac3': return 'ac-3';
    case 'eac3': return 'ec-3';
    case 'opus': return 'Opus';
    default: return undefined;
  }
}

/** Parses ffprobe's `-show_data` hex dump (`00000000: 0000 0167 6400 ...  ascii`) into bytes. */
export function parseFfprobeHexDump(dump: string): Uint8Array {
  const bytes: number[] = [];
  for (const line of dump.split('\n')) {
    const m = /^[0-9a-fA-F]{8}: (.{1,39})/.exec(line);
    if (!m) continue;
    const hex = m[1]!.replace(/ /g, '');
    for (let i = 0; i + 1 < hex.length; i += 2) {
      const b = Number.parseInt(hex.slice(i, i + 2), 16);
      if (Number.isNaN(b)) break;
      bytes.push(b);
    }
  }
  return Uint8Array.from(bytes);
}

/**
 * Names the codec of an elementary stream ffprobe could not identify, from the first bytes of
 * one of its packets: MPEG-TS has no stream_type for VP8, VP9 or AV1 (ISO/IEC 13818-1 table
 * 2-34), so `ffmpeg -c copy -f mpegts` of a WebM writes them as private data (stream_type 0x06)
 * that ffprobe reports as `bin_data`. Signatures: VP8 key frame start code `9d 01 2a` after the
 * 3-byte frame tag (RFC 6386 §9.1); VP9 frame_marker `0b10` then the key-frame sync code
 * `49 83 42` (VP9 bitstream spec §6.2, profiles 0-2); AV1 temporal-delimiter OBU `12 00` that
 * starts every temporal unit (AV1 spec §5.3, §7.5).
 * @returns `vp8`, `vp9`, `av1`, or `undefined` when nothing matches.
 */
export function sniffPrivateCodec(packet: Uint8Array): string | undefined {
  const b = packet;
  if (b.length >= 6 && (b[0]! & 1) === 0 && b[3] === 0x9d && b[4] === 0x01 && b[5] === 0x2a) return 'vp8';
  if (b.length >= 4 && (b[0]! & 0xc0) === 0x80 && b[1] === 0x49 && b[2] === 0x83 && b[3] === 0x42) return 'vp9';
  if (b.length >= 2 && b[0] === 0x12 && b[1] === 0x00) return 'av1';
  return undefined;
}
