/**
 * AAC framing in one place: the AudioSpecificConfig that RTMP/FLV and MP4 carry (ISO/IEC
 * 14496-3 §1.6.2.1) and the ADTS header that MPEG-TS carries before every raw frame
 * (ISO/IEC 14496-3 §1.A.2.2, adts_fixed_header + adts_variable_header; stream_type 0x0F of
 * ISO/IEC 13818-1 Table 2-34). Pure functions over bytes.
 */
import { BitReader } from './bit-reader.ts';

/** sampling_frequency_index → Hz (ISO/IEC 14496-3 Table 1.18); 13 and 14 are reserved. */
const SAMPLE_RATES_HZ = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350] as const;

/** What the muxer and the stream description need from an AudioSpecificConfig. */
export interface AacConfig {
  /** The first audioObjectType (2 = AAC LC, 5 = SBR/HE-AAC, 29 = PS/HE-AACv2, ...): the `mp4a.40.N` of RFC 6381. */
  readonly objectType: number;
  /** The core codec's audioObjectType (= objectType, except for explicit SBR/PS: the underlying one, usually 2). */
  readonly coreObjectType: number;
  /** The core's sampling_frequency_index (0-12), as ADTS carries it. */
  readonly samplingIndex: number;
  /** Output sample rate in Hz (the SBR extension rate for HE-AAC, as ffprobe reports it after decoding). */
  readonly sampleRateHz: number;
  /** channelConfiguration (1-7; 0 = defined by a program_config_element in the frames). */
  readonly channelConfig: number;
  /** Output channels: channelConfiguration's count (7 → 8), 2 for Parametric Stereo (object type 29). */
  readonly channels: number;
}

/** An AudioSpecificConfig that cannot be turned into ADTS. */
export class AacConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AacConfigError';
  }
}

/** GetAudioObjectType() (§1.6.2.1): 5 bits, 31 = escape to 32 + 6 more bits. */
function readObjectType(r: BitReader): number {
  const t = r.u(5);
  return t === 31 ? 32 + r.u(6) : t;
}

/** A 4-bit sampling_frequency_index that ADTS can carry. */
function readSamplingIndex(r: BitReader): number {
  const i = r.u(4);
  if (i === 15) throw new AacConfigError('AudioSpecificConfig with an explicit sampling frequency (index 15) cannot be written as ADTS');
  if (i >= SAMPLE_RATES_HZ.length) throw new AacConfigError(`AudioSpecificConfig sampling_frequency_index ${i} is reserved`);
  return i;
}

/**
 * Parses an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): audioObjectType (5 bits, 31 =
 * escape + 6 bits), samplingFrequencyIndex (4 bits), channelConfiguration (4 bits), and for
 * explicit SBR/PS signalling (object type 5 or 29) the extension sampling index and the core
 * object type.
 *
 * @throws AacConfigError when it is cut short, uses an explicit frequency (index 15; ADTS
 *   has no field for it) or a reserved index, or the core object type is above 4 (ADTS's
 *   2-bit profile field holds object types 1-4 only).
 */
export function parseAudioSpecificConfig(asc: Uint8Array): AacConfig {
  const r = new BitReader(asc, 'AudioSpecificConfig', (message) => new AacConfigError(message));
  const objectType = readObjectType(r);
  const samplingIndex = readSamplingIndex(r);
  const channelConfig = r.u(4);
  let coreObjectType = objectType;
  let sampleRateHz: number = SAMPLE_RATES_HZ[samplingIndex]!;
  if (objectType === 5 || objectType === 29) {
    sampleRateHz = SAMPLE_RATES_HZ[readSamplingIndex(r)]!;
    coreObjectType = readObjectType(r);
  }
  if (coreObjectType < 1 || coreObjectType > 4) {
    throw new AacConfigError(`AAC object type ${coreObjectType} cannot be written as ADTS (profile field holds 1-4)`);
  }
  const channels = objectType === 29 ? 2 : channelConfig === 7 ? 8 : channelConfig;
  return { objectType, coreObjectType, samplingIndex, sampleRateHz, channelConfig, channels };
}

/** Bytes of an ADTS header without CRC (protection_absent = 1). */
export const ADTS_HEADER_BYTES = 7;

/**
 * The 7-byte ADTS header of one raw AAC frame (ISO/IEC 14496-3 §1.A.2.2.1): syncword 0xFFF,
 * ID 0 (MPEG-4), layer 0, protection_absent 1, profile = core object type − 1,
 * sampling_frequency_index, channel_configuration, frame_length = 7 + `rawBytes`,
 * adts_buffer_fullness 0x7FF (variable rate), one raw data block.
 *
 * @throws RangeError when the frame is too long for the 13-bit frame_length (8191 bytes).
 */
export function adtsHeader(config: AacConfig, rawBytes: number): Buffer {
  const frameLength = ADTS_HEADER_BYTES + rawBytes;
  if (frameLength > 0x1fff) throw new RangeError(`AAC frame of ${rawBytes} bytes is too long for ADTS`);
  const h = Buffer.allocUnsafe(ADTS_HEADER_BYTES);
  h[0] = 0xff;
  h[1] = 0xf1;
  h[2] = ((config.coreObjectType - 1) << 6) | (config.samplingIndex << 2) | (config.channelConfig >> 2);
  h[3] = ((config.channelConfig & 0x03) << 6) | (frameLength >> 11);
  h[4] = (frameLength >> 3) & 0xff;
  h[5] = ((frameLength & 0x07) << 5) | 0x1f;
  h[6] = 0xfc;
  return h;
}

/** RFC 6381 codecs part of an AAC stream: `mp4a.40.<first audioObjectType>` (RFC 6381 §3.3). */
export function aacCodecString(config: AacConfig): string {
  return `mp4a.40.${config.objectType}`;
}
