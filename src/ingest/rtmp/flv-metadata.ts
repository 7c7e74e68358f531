/**
 * Reads what a publisher declares about its stream in the FLV `onMetaData` script tag
 * (Adobe "Video File Format Specification" v10.1, E.5: a script data tag whose body is the
 * AMF0 string `onMetaData` then an ECMA array of properties; over RTMP it arrives prefixed
 * with `@setDataFrame`, as ffmpeg's flv muxer and OBS send it). The AMF0 values are decoded
 * with node-media-server 4.4.3's own codec (`src/protocol/amf.js`, the one its broadcast
 * reads the same properties with).
 *
 * Only the declared bitrate is read: `videodatarate` and `audiodatarate`, in kbit/s, taken
 * as 1000 bit/s (ffmpeg's flv muxer writes `bit_rate / 1024`, so its figures read ~2 % low;
 * and caps derived from them are that much lower).
 */
import { decodeAmf0Data } from 'node-media-server/src/protocol/amf.js';

/** What an `onMetaData` tag declares. */
export interface FlvMetadata {
  /**
   * (videodatarate + audiodatarate) × 1000, bit/s, rounded: the publisher's declared total
   * media bitrate. Only when `videodatarate` is a finite number > 0 (an audio rate alone says
   * nothing about the picture); a missing, negative or non-numeric `audiodatarate` counts as 0.
   */
  readonly declaredBitrateBps?: number;
}

const TAG_HEADER_BYTES = 11;
/** FLV TagType of script data (E.4.1). */
const FLV_TAG_SCRIPT = 18;
/** AMF0 string marker, then a UI16 length (AMF0 specification §2.4). */
const AMF0_STRING = 0x02;
const METADATA_NAMES: ReadonlySet<string> = new Set(['onMetaData', '@setDataFrame']);

/**
 * The metadata declared by one whole FLV tag (11-byte header, body, PreviousTagSize), or
 * `undefined` when the tag is not an `onMetaData` script tag (other script data such as
 * `onFI` or `|RtmpSampleAccess`, audio, video, encrypted or truncated tags). Never throws and
 * never modifies `tag`.
 */
export function readFlvMetadata(tag: Buffer): FlvMetadata | undefined {
  if (tag.length < TAG_HEADER_BYTES + 3 || (tag[0]! & 0x3f) !== FLV_TAG_SCRIPT) return undefined;
  const dataSize = tag.readUIntBE(1, 3);
  const body = tag.subarray(TAG_HEADER_BYTES, Math.min(tag.length, TAG_HEADER_BYTES + dataSize));
  // The name is checked first: NMS's decoder logs an error for names it does not know.
  if (body.length < 3 || body[0] !== AMF0_STRING) return undefined;
  const nameBytes = body.readUInt16BE(1);
  if (!METADATA_NAMES.has(body.toString('utf8', 3, 3 + nameBytes))) return undefined;
  let decoded;
  try {
    decoded = decodeAmf0Data(body);
  } catch {
    return undefined;
  }
  if (decoded.cmd === '@setDataFrame' && decoded.method !== 'onMetaData') return undefined;
  const props = decoded.dataObj;
  if (typeof props !== 'object' || props === null) return {};
  const { videodatarate: videoKbps, audiodatarate: audioKbps } = props as Record<string, unknown>;
  if (typeof videoKbps !== 'number' || !Number.isFinite(videoKbps) || videoKbps <= 0) return {};
  const audio = typeof audioKbps === 'number' && Number.isFinite(audioKbps) && audioKbps > 0 ? audioKbps : 0;
  return { declaredBitrateBps: Math.round((videoKbps + audio) * 1000) };
}
