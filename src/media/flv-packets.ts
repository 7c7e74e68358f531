/**
 * Reads one FLV tag, as node-media-server hands it to an in-process subscriber, into an
 * audio/video packet for the MPEG-TS segmenter (ts-segmenter.ts). Pure; never throws and
 * never mutates its input (the buffers are also the RTMP server's GOP cache): the byte
 * fields of a packet are views into the tag, not copies.
 *
 * Format facts relied on (Adobe "Video File Format Specification" v10.1, Annex E):
 *  - FLV header: `FLV`, version, flags, header size (9), then PreviousTagSize0 (0): 13 bytes.
 *  - FLV tag (E.4.1): TagType (bits 0-4; bit 5 = Filter, i.e. encrypted), DataSize (UI24),
 *    Timestamp (UI24, ms) then TimestampExtended (UI8, the upper 8 bits), StreamID (UI24),
 *    then DataSize bytes of body and PreviousTagSize (UI32). TagType 8 audio, 9 video,
 *    18 script data.
 *  - Video body (E.4.3.1): FrameType (4 bits: 1 key frame, 2 inter, 3 disposable inter,
 *    5 video info/command) and CodecID (4 bits: 7 = AVC); for AVC then AVCPacketType (0 =
 *    sequence header, an AVCDecoderConfigurationRecord "avcC"; 1 = NAL units; 2 = end of
 *    sequence) and CompositionTime (SI24, ms: PTS − DTS). The NAL units are length-prefixed
 *    as declared by the avcC (ISO/IEC 14496-15). ffmpeg marks its closing end-of-sequence tag
 *    as a key frame: it is reported as `video-end`, never as a keyframe.
 *  - Audio body (E.4.2.1): SoundFormat (4 bits: 10 = AAC), rate, size, type; for AAC then
 *    AACPacketType (0 = AudioSpecificConfig of ISO/IEC 14496-3 §1.6.2.1, 1 = one raw AAC frame).
 *  - Enhanced RTMP (veovera enhanced-rtmp v1) sets bit 7 of the video byte (IsExHeader) for
 *    HEVC/AV1/VP9 by FourCC: reported as `unsupported`.
 */

/** One audio/video packet of an FLV stream (times in ms on the FLV timeline). */
export type FlvPacket =
  /** AVCPacketType 0: the AVCDecoderConfigurationRecord (SPS, PPS, NAL length size). */
  | { type: 'avc-config'; dtsMs: number; avcC: Buffer }
  /** AVCPacketType 1: one access unit; `ctsMs` = PTS − DTS (signed 24-bit), `data` = length-prefixed NAL units. */
  | { type: 'video'; dtsMs: number; ctsMs: number; keyframe: boolean; data: Buffer }
  /** AVCPacketType 2: end of sequence (not a keyframe, whatever its FrameType says). */
  | { type: 'video-end'; dtsMs: number }
  /** AACPacketType 0: the AudioSpecificConfig. */
  | { type: 'aac-config'; dtsMs: number; asc: Buffer }
  /** AACPacketType 1: one raw AAC frame (no ADTS header). */
  | { type: 'audio'; dtsMs: number; data: Buffer }
  /** Anything else (other codecs, script data, encrypted or truncated tags), named in `what`. */
  | { type: 'unsupported'; what: string };

const TAG_HEADER_BYTES = 11;
const TAG_AUDIO = 8;
const TAG_VIDEO = 9;
const TAG_SCRIPT = 18;
const CODEC_AVC = 7;
const SOUND_AAC = 10;
/** The FLV file header's length (`FLV`, version, flags, header size), sent before the first tag. */
export const FLV_FILE_HEADER_BYTES = 13;

/**
 * Whether a whole FLV tag is a video key frame carrying NAL units (frame type 1, AVCPacketType
 * 1), read from the header bytes only: what a tag holder needs to keep a decodable start.
 */
export function isFlvVideoKeyframe(tag: Buffer): boolean {
  return tag[0] === TAG_VIDEO && tag.length > TAG_HEADER_BYTES + 1 && tag[TAG_HEADER_BYTES]! >> 4 === 1 && tag[TAG_HEADER_BYTES + 1] === 1;
}

/** Whether a whole FLV tag is script data (metadata), the AVC decoder configuration or the AAC AudioSpecificConfig. */
export function isFlvConfigTag(tag: Buffer): boolean {
  if (tag[0] === TAG_SCRIPT) return true;
  if (tag.length <= TAG_HEADER_BYTES + 1) return false;
  if (tag[0] === TAG_VIDEO) return tag[TAG_HEADER_BYTES + 1] === 0;
  return tag[0] === TAG_AUDIO && tag[TAG_HEADER_BYTES]! >> 4 === SOUND_AAC && tag[TAG_HEADER_BYTES + 1] === 0;
}

/**
 * Parses one whole FLV tag (11-byte header, body, 4-byte PreviousTagSize; a missing
 * PreviousTagSize is tolerated).
 *
 * @param tag the bytes of exactly one tag, or the 13-byte FLV file header
 * @returns `undefined` for the FLV file header; otherwise a {@link FlvPacket} whose Buffers
 *   are views into `tag`. Malformed, encrypted, script-data and non-AVC/AAC tags give
 *   `{ type: 'unsupported', what }`; this function never throws.
 */
export function parseFlvTag(tag: Buffer): FlvPacket | undefined {
  if (tag.length >= 3 && tag[0] === 0x46 && tag[1] === 0x4c && tag[2] === 0x56) return undefined; // "FLV"
  if (tag.length < TAG_HEADER_BYTES) return { type: 'unsupported', what: `tag of ${tag.length} bytes (shorter than the 11-byte tag header)` };
  const tagType = tag[0]! & 0x1f;
  if ((tag[0]! & 0x20) !== 0) return { type: 'unsupported', what: 'encrypted tag (Filter bit set)' };
  const dataSize = tag.readUIntBE(1, 3);
  if (tag.length < TAG_HEADER_BYTES + dataSize) {
    return { type: 'unsupported', what: `truncated tag (DataSize ${dataSize}, ${tag.length - TAG_HEADER_BYTES} body bytes)` };
  }
  const dtsMs = (tag[7]! * 0x1000000) + tag.readUIntBE(4, 3);
  return parseFlvBody(tagType, dtsMs, tag.subarray(TAG_HEADER_BYTES, TAG_HEADER_BYTES + dataSize));
}

/**
 * Parses the body of one FLV tag (what follows its 11-byte header, DataSize bytes) given its
 * TagType and timestamp: what {@link parseFlvTag} reads after the header, for a caller that
 * has the body without a tag around it (an RTMP message's payload is a tag body).
 *
 * @param tagType TagType (8 audio, 9 video, 18 script data; without the Filter bit)
 * @param dtsMs the tag's timestamp, ms (32-bit, TimestampExtended included)
 * @returns a {@link FlvPacket} whose Buffers are views into `body`; never throws
 */
export function parseFlvBody(tagType: number, dtsMs: number, body: Buffer): FlvPacket {
  switch (tagType) {
    case TAG_VIDEO: return videoPacket(body, dtsMs);
    case TAG_AUDIO: return audioPacket(body, dtsMs);
    case TAG_SCRIPT: return { type: 'unsupported', what: 'script data' };
    default: return { type: 'unsupported', what: `tag type ${tagType}` };
  }
}

function videoPacket(body: Buffer, dtsMs: number): FlvPacket {
  if (body.length < 1) return { type: 'unsupported', what: 'empty video tag' };
  if ((body[0]! & 0x80) !== 0) return { type: 'unsupported', what: 'enhanced RTMP video (FourCC codec)' };
  const frameType = body[0]! >> 4;
  const codecId = body[0]! & 0x0f;
  if (codecId !== CODEC_AVC) return { type: 'unsupported', what: `video codec id ${codecId}` };
  if (frameType === 5) return { type: 'unsupported', what: 'video info/command frame' };
  if (body.length < 5) return { type: 'unsupported', what: 'AVC video tag shorter than its 5-byte header' };
  const packetType = body[1]!;
  switch (packetType) {
    case 0: return { type: 'avc-config', dtsMs, avcC: body.subarray(5) };
    case 1: return { type: 'video', dtsMs, ctsMs: (body.readUIntBE(2, 3) << 8) >> 8, keyframe: frameType === 1, data: body.subarray(5) };
    case 2: return { type: 'video-end', dtsMs };
    default: return { type: 'unsupported', what: `AVCPacketType ${packetType}` };
  }
}

function audioPacket(body: Buffer, dtsMs: number): FlvPacket {
  if (body.length < 1) return { type: 'unsupported', what: 'empty audio tag' };
  const soundFormat = body[0]! >> 4;
  if (soundFormat !== SOUND_AAC) return { type: 'unsupported', what: `audio sound format ${soundFormat}` };
  if (body.length < 2) return { type: 'unsupported', what: 'AAC audio tag shorter than its 2-byte header' };
  const packetType = body[1]!;
  switch (packetType) {
    case 0: return { type: 'aac-config', dtsMs, asc: body.subarray(2) };
    case 1: return { type: 'audio', dtsMs, data: body.subarray(2) };
    default: return { type: 'unsupported', what: `AACPacketType ${packetType}` };
  }
}
