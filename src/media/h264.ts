/**
 * H.264 bitstream code in one place: the Annex-B byte stream (start codes, emulation
 * prevention, also used for HEVC, which shares both), the SPS (find it, its picture size) and
 * the RFC 6381 `avc1` codec string. Pure functions over bytes; the ffprobe path (probe.ts)
 * and the in-process MPEG-TS measurement (ts-measure.ts) both use them, so the two always
 * agree.
 *
 * Format facts relied on:
 *  - H.264 byte stream (ITU-T H.264 Annex B): NAL units behind 00 00 01 start codes; the
 *    SPS is nal_unit_type 7.
 *  - seq_parameter_set_data (ITU-T H.264 §7.3.2.1.1): profile_idc, the constraint_set
 *    flags byte and level_idc are its first three bytes (never escaped, profile_idc is
 *    non-zero); the size fields further on are Exp-Golomb coded (§9.1) in the RBSP, i.e.
 *    after removing emulation-prevention bytes (§7.4.1). Width and height as ffprobe reports
 *    them: macroblocks × 16 minus the frame cropping (§7.4.2.1.1, CropUnitX/CropUnitY).
 *  - RFC 6381 §3.3: `avc1.PPCCLL` = hex of those three bytes.
 *
 * Hand-written because it is on the hot path (every rendition segment, see ts-measure.ts).
 */
import { BitReader } from './bit-reader.ts';

/** An SPS that is cut short or inconsistent; `failure` is always `malformed` (the TsMeasureFailure it maps to). */
export class H264SpsError extends Error {
  readonly failure = 'malformed' as const;
  constructor(message: string) {
    super(message);
    this.name = 'H264SpsError';
  }
}

function malformed(message: string): H264SpsError {
  return new H264SpsError(message);
}

// ---------------------------------------------------------------------------------------
// Annex-B byte stream

/**
 * Splits an Annex-B byte stream (start codes `00 00 01` or `00 00 00 01`) into NAL units,
 * each returned without its start code (trailing zero bytes of the next start code removed).
 */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  return starts.map((start, k) => {
    let end = k + 1 < starts.length ? starts[k + 1]! - 3 : data.length;
    while (end > start && data[end - 1] === 0) end--;
    return data.subarray(start, end);
  });
}

/** Where the first start code `00 00 01` at or after `from` begins, or -1. */
function startCodeFrom(data: Uint8Array, from: number): number {
  for (let i = from; i + 2 < data.length; i++) {
    if (data[i + 2] === 1 && data[i] === 0 && data[i + 1] === 0) return i;
  }
  return -1;
}

/**
 * The first H.264 SPS NAL unit (nal_unit_type 7, header byte included, at least 4 bytes) in
 * Annex-B data, if any: the NAL unit {@link splitAnnexB} would give, found without splitting
 * the rest (the SPS leads an IDR access unit; the slices after it are most of the bytes).
 */
export function findH264Sps(annexB: Uint8Array): Uint8Array | undefined {
  let code = startCodeFrom(annexB, 0);
  while (code >= 0) {
    const start = code + 3;
    code = startCodeFrom(annexB, start);
    if (start < annexB.length && (annexB[start]! & 0x1f) === 7) {
      let end = code >= 0 ? code : annexB.length;
      while (end > start && annexB[end - 1] === 0) end--;
      if (end - start >= 4) return annexB.subarray(start, end);
    }
  }
  return undefined;
}

/** Removes H.264/HEVC emulation-prevention bytes (`00 00 03` → `00 00`). */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
  const out: number[] = [];
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) { zeros = 0; continue; }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------
// RFC 6381 codec strings

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * RFC 6381 codec string of an H.264 stream from its SPS: `avc1.PPCCLL`, the hex of
 * profile_idc, the constraint_set flags byte and level_idc (ISO/IEC 14496-15 / RFC 6381 §3.3).
 * E.g. `67 64 00 1f ...` (High, level 3.1) → `avc1.64001f`.
 *
 * @param sps the SPS NAL unit starting with its header byte (nal_unit_type 7); these first
 *   four bytes never contain emulation-prevention bytes (profile_idc is non-zero).
 * @throws RangeError when `sps` is shorter than 4 bytes or is not an SPS.
 */
export function h264CodecString(sps: Uint8Array): string {
  if (sps.length < 4 || (sps[0]! & 0x1f) !== 7) throw new RangeError('not an H.264 SPS NAL unit (expected header byte with nal_unit_type 7 and 3 more bytes)');
  return `avc1.${hex2(sps[1]!)}${hex2(sps[2]!)}${hex2(sps[3]!)}`;
}

const H264_PROFILE_IDC: Record<string, [number, number]> = {
  'Constrained Baseline': [66, 0x40], Baseline: [66, 0], Main: [77, 0], Extended: [88, 0], High: [100, 0],
  'Constrained High': [100, 0x0c], 'High 10': [110, 0], 'High 4:2:2': [122, 0], 'High 4:4:4 Predictive': [244, 0],
};

/**
 * Approximate H.264 codec string from ffprobe's profile name and level, for streams whose
 * SPS could not be read; constraint flags are guessed (0, or set1 for Constrained Baseline).
 */
export function h264CodecStringFromNames(profile: string, level: number): string {
  const [idc, constraints] = H264_PROFILE_IDC[profile] ?? [100, 0];
  return `avc1.${hex2(idc)}${hex2(constraints)}${hex2(Math.max(0, Math.min(255, level)))}`;
}

/**
 * ffmpeg's (and so ffprobe's) name of an H.264 profile (libavcodec `ff_h264_get_profile` and its
 * profile table): profile_idc, with constraint_set1 marking Constrained Baseline and
 * constraint_set3 the Intra variants of the High 10 / 4:2:2 / 4:4:4 profiles.
 * @param constraintFlags the constraint_set flags byte (set0 = 0x80, set1 = 0x40, ... set5 = 0x04)
 * @returns the name, or '' for a profile_idc it does not know
 */
export function h264ProfileName(profileIdc: number, constraintFlags: number): string {
  const intra = (constraintFlags & 0x10) !== 0;
  switch (profileIdc) {
    case 66: return (constraintFlags & 0x40) !== 0 ? 'Constrained Baseline' : 'Baseline';
    case 77: return 'Main';
    case 88: return 'Extended';
    case 100: return 'High';
    case 110: return intra ? 'High 10 Intra' : 'High 10';
    case 122: return intra ? 'High 4:2:2 Intra' : 'High 4:2:2';
    case 244: return intra ? 'High 4:4:4 Intra' : 'High 4:4:4 Predictive';
    case 44: return 'CAVLC 4:4:4';
    default: return '';
  }
}

// ---------------------------------------------------------------------------------------
// SPS picture size

/** profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling matrices (§7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/**
 * Picture size of an H.264 SPS (ITU-T H.264 §7.3.2.1.1, semantics §7.4.2.1.1): width
 * (pic_width_in_mbs_minus1 + 1) × 16 and height (2 − frame_mbs_only_flag) ×
 * (pic_height_in_map_units_minus1 + 1) × 16, each minus its frame cropping in CropUnitX /
 * CropUnitY units.
 *
 * @param sps the SPS NAL unit starting with its header byte (nal_unit_type 7), escaped as in the stream.
 * @throws H264SpsError (`failure` `malformed`) when the SPS is cut short or inconsistent.
 */
export function h264SpsPictureSize(sps: Uint8Array): { width: number; height: number } {
  const r = new BitReader(unescapeRbsp(sps.subarray(1)), 'SPS', malformed);
  const profileIdc = r.u(8);
  r.u(16); // constraint flags, level_idc
  r.ue(); // seq_parameter_set_id
  let chromaFormatIdc = 1;
  let separateColourPlane = 0;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3) throw malformed(`SPS chroma_format_idc ${chromaFormatIdc}`);
    if (chromaFormatIdc === 3) separateColourPlane = r.u(1);
    r.ue(); // bit_depth_luma_minus8
    r.ue(); // bit_depth_chroma_minus8
    r.u(1); // qpprime_y_zero_transform_bypass_flag
    if (r.u(1)) { // seq_scaling_matrix_present_flag
      for (let i = 0; i < (chromaFormatIdc !== 3 ? 8 : 12); i++) {
        if (!r.u(1)) continue; // seq_scaling_list_present_flag[i]
        const size = i < 6 ? 16 : 64;
        let last = 8;
        let next = 8;
        for (let j = 0; j < size; j++) {
          if (next !== 0) next = (last + r.se() + 256) % 256;
          last = next === 0 ? last : next;
        }
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    r.u(1); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ue();
    if (cycle > 255) throw malformed(`SPS num_ref_frames_in_pic_order_cnt_cycle ${cycle}`);
    for (let i = 0; i < cycle; i++) r.se();
  } else if (pocType !== 2) {
    throw malformed(`SPS pic_order_cnt_type ${pocType}`);
  }
  r.ue(); // max_num_ref_frames
  r.u(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.u(1);
  if (!frameMbsOnly) r.u(1); // mb_adaptive_frame_field_flag
  r.u(1); // direct_8x8_inference_flag
  let crop = [0, 0, 0, 0];
  if (r.u(1)) crop = [r.ue(), r.ue(), r.ue(), r.ue()]; // left, right, top, bottom
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaArrayType === 3 ? 1 : 2;
  const subHeightC = chromaArrayType === 1 ? 2 : 1;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (2 - frameMbsOnly);
  const width = widthMbs * 16 - cropUnitX * (crop[0]! + crop[1]!);
  const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropUnitY * (crop[2]! + crop[3]!);
  if (width <= 0 || height <= 0) throw malformed(`SPS crops the picture to ${width}x${height}`);
  return { width, height };
}

// ---------------------------------------------------------------------------------------
// AVCC: the MP4/FLV form (ISO/IEC 14496-15 §5.2.4.1 / §5.3.3.1)

/** What an AVCDecoderConfigurationRecord declares: the NAL length size and the parameter sets. */
export interface AvcDecoderConfig {
  /** Bytes of each NAL unit's length prefix in the samples: 1, 2 or 4 (lengthSizeMinusOne + 1). */
  readonly nalLengthBytes: number;
  /** The SPS NAL units (header byte included), in record order; at least one. */
  readonly sps: readonly Uint8Array[];
  /** The PPS NAL units (header byte included), in record order. */
  readonly pps: readonly Uint8Array[];
}

/**
 * Parses an AVCDecoderConfigurationRecord ("avcC", ISO/IEC 14496-15 §5.3.3.1): version 1,
 * profile, compatibility, level, 6 reserved bits + lengthSizeMinusOne, 3 reserved bits +
 * numOfSequenceParameterSets, each as a 16-bit length and the NAL unit, then
 * numOfPictureParameterSets and the PPS the same way (trailing High-profile fields ignored).
 * The returned NAL units are views into `avcC`.
 *
 * @throws H264SpsError (`malformed`) when the record is cut short, is not version 1, declares
 *   a 3-byte NAL length, or carries no SPS.
 */
export function parseAvcDecoderConfig(avcC: Uint8Array): AvcDecoderConfig {
  if (avcC.length < 7) throw malformed(`avcC of ${avcC.length} bytes is too short`);
  if (avcC[0] !== 1) throw malformed(`avcC configurationVersion ${avcC[0]} (expected 1)`);
  const nalLengthBytes = (avcC[4]! & 0x03) + 1;
  if (nalLengthBytes === 3) throw malformed('avcC declares 3-byte NAL unit lengths');
  let at = 6; // after numOfSequenceParameterSets
  const readSets = (count: number, what: string): Uint8Array[] => {
    const sets: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      if (at + 2 > avcC.length) throw malformed(`avcC ends inside its ${what} list`);
      const length = (avcC[at]! << 8) | avcC[at + 1]!;
      if (at + 2 + length > avcC.length) throw malformed(`avcC ${what} of ${length} bytes runs past the record`);
      sets.push(avcC.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
    return sets;
  };
  const sps = readSets(avcC[5]! & 0x1f, 'SPS');
  if (sps.length === 0 || (sps[0]![0]! & 0x1f) !== 7) throw malformed('avcC carries no SPS');
  if (at >= avcC.length) throw malformed('avcC ends before its PPS count');
  const ppsCount = avcC[at++]!;
  const pps = readSets(ppsCount, 'PPS');
  return { nalLengthBytes, sps, pps };
}

/**
 * Splits length-prefixed NAL units (the AVCC sample form; `lengthBytes` from the avcC) into
 * views of the NAL units. A length that runs past the data ends the list (the rest is ignored).
 */
export function splitAvcc(data: Uint8Array, lengthBytes: number): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let at = 0;
  while (at + lengthBytes <= data.length) {
    let length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + data[at + i]!;
    at += lengthBytes;
    if (length === 0) continue;
    if (at + length > data.length) break;
    nals.push(data.subarray(at, at + length));
    at += length;
  }
  return nals;
}
