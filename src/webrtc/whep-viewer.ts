/**
 * One WHEP viewer (RFC 9725's egress counterpart, draft-ietf-wish-whep): a node-datachannel
 * peer connection that answers the viewer's offer with a send-only H.264 track (packetization
 * mode 1, the offered profile-level-id, preferring Constrained Baseline `42e01f`) and, when
 * offered, a send-only Opus track, each with an SSRC of its own. It is handed the stream's RTP
 * (whep-stream.ts) and forwards it, rewritten to its SSRC and negotiated payload types, once
 * its DTLS is up; video from the first packet of a keyframe on (the SPS or IDR NAL unit, RFC
 * 6184 §5.4-5.8), so its decoder starts on a picture it can decode.
 *
 * A viewer whose ICE does not connect within `connectTimeoutMs`, or that fails or closes, is
 * closed (peer connection closed, `closed` emitted once).
 */
import { EventEmitter } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { Audio, PeerConnection, Video, type IceServer, type RtcConfig, type Track } from 'node-datachannel';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { chooseAudioCodec, filterCandidates, fmtpParams, isLoopbackAddress, parseOffer, type OfferedCodec, type OfferedMedia } from './whip-sdp.ts';

/** Peer connection settings shared by every viewer. */
export interface WhepPeerSettings {
  readonly iceServers: readonly (string | IceServer)[];
  /** Local address of the ICE agent; '' = every interface. */
  readonly bindAddress: string;
  readonly portRangeBegin: number;
  readonly portRangeEnd: number;
  /** A viewer not connected this long after its answer is closed, ms. */
  readonly connectTimeoutMs: number;
  /** How long the answer waits for local ICE candidates to be gathered, ms. */
  readonly gatherTimeoutMs?: number;
}

/** RTP header bytes this code reads (RFC 3550 §5.1: V/P/X/CC, M/PT, seq, timestamp, SSRC). */
const RTP_HEADER_BYTES = 12;

/**
 * The H.264 format of the offer the answer takes: packetization mode 1 (RFC 6184 §5.8), the
 * Constrained Baseline `42e0xx` first, then any other profile (the decoder of a browser takes
 * what its offer lists). Undefined when the offer has none.
 */
export function chooseH264(codecs: readonly OfferedCodec[]): OfferedCodec | undefined {
  const rank = (c: OfferedCodec): number => {
    const p = fmtpParams(c.fmtp);
    if (p.get('packetization-mode') !== '1') return -1;
    const profile = (p.get('profile-level-id') ?? '42e01f').toLowerCase();
    return profile.startsWith('42e0') ? 3 : profile.startsWith('42') ? 2 : 1;
  };
  let best: OfferedCodec | undefined;
  for (const c of codecs) {
    if (c.name.toUpperCase() === 'H264' && c.clockRate === 90000 && rank(c) >= 0 && (!best || rank(c) > rank(best))) best = c;
  }
  return best;
}

/**
 * Whether an H.264 RTP payload starts a decodable picture: an SPS (7) or IDR slice (5) as a
 * single NAL unit, the first NAL unit of a STAP-A (24), or the start fragment of a FU-A (28).
 */
export function startsKeyframe(payload: Buffer): boolean {
  if (payload.length < 2) return false;
  const type = payload[0]! & 0x1f;
  if (type === 5 || type === 7) return true;
  if (type === 24 && payload.length > 3) {
    const inner = payload[3]! & 0x1f;
    return inner === 5 || inner === 7;
  }
  if (type === 28) return (payload[1]! & 0x80) !== 0 && ((payload[1]! & 0x1f) === 5 || (payload[1]! & 0x1f) === 7);
  return false;
}

/** The payload of an RTP packet (after the CSRCs and the header extension). */
function rtpPayload(packet: Buffer): Buffer {
  let offset = RTP_HEADER_BYTES + (packet[0]! & 0x0f) * 4;
  if ((packet[0]! & 0x10) !== 0 && packet.length >= offset + 4) offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  return packet.subarray(Math.min(offset, packet.length));
}

/** A checked offer: its video section and H.264 format, its audio section and Opus format if offered. */
export interface WhepOffer {
  readonly sdp: string;
  readonly video: OfferedMedia;
  readonly h264: OfferedCodec;
  readonly audio?: OfferedMedia;
  readonly opus?: OfferedCodec;
}

/**
 * Checks a viewer's offer.
 * @throws GatewayError INVALID_REQUEST (400) when the text is not an SDP offer or has no
 *   video section that receives H.264 with packetization mode 1
 */
export function checkWhepOffer(sdp: string): WhepOffer {
  const media = parseOffer(sdp);
  const receives = (m: OfferedMedia): boolean => m.direction !== 'sendonly' && m.direction !== 'inactive';
  const video = media.find((m) => m.kind === 'video' && receives(m));
  const h264 = video && chooseH264(video.codecs);
  if (!video || !h264) {
    throw new GatewayError('INVALID_REQUEST', 'the offer has no video section that receives H.264 with packetization-mode=1 (RFC 6184); WHEP here plays H.264');
  }
  const audio = media.find((m) => m.kind === 'audio' && receives(m));
  const opus = audio && chooseAudioCodec(audio.codecs);
  return { sdp, video, h264, ...(audio && opus ? { audio, opus } : {}) };
}

interface OutTrack {
  readonly track: Track;
  readonly ssrc: number;
  readonly payloadType: number;
}

export interface WhepViewerEvents {
  /** Once: the viewer is gone (`reason`: deleted, timed out, failed, stream ended, closed). */
  closed: [{ reason: string }];
  /** Once: ICE and DTLS are up. */
  connected: [];
}

/** One viewer; see the module comment. */
export class WhepViewer extends EventEmitter<WhepViewerEvents> {
  /** The session ID in the resource URL (128 bits, base64url). */
  readonly id = randomBytes(16).toString('base64url');
  readonly manifestID: string;
  readonly #log: Logger;
  #pc: PeerConnection | undefined;
  #video: OutTrack | undefined;
  #audio: OutTrack | undefined;
  #waitingKeyframe = true;
  #connectTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** RTP packets forwarded, by kind. */
  readonly sent = { video: 0, audio: 0 };

  constructor(manifestID: string, logger: Logger) {
    super();
    this.manifestID = manifestID;
    this.#log = logger.child({ whepSession: this.id.slice(0, 8) });
  }

  /**
   * Answers the viewer's offer (checked by {@link checkWhepOffer}).
   * @returns the SDP answer, with the gathered candidates
   */
  async answer(offer: WhepOffer, settings: WhepPeerSettings): Promise<string> {
    const { sdp: offerSdp, video: videoSection, h264, audio: audioSection, opus } = offer;
    const config: RtcConfig = {
      iceServers: [...settings.iceServers],
      ...(settings.bindAddress !== '' ? { bindAddress: settings.bindAddress } : {}),
      ...(settings.portRangeBegin > 0 && settings.portRangeEnd > 0 ? { portRangeBegin: settings.portRangeBegin, portRangeEnd: settings.portRangeEnd } : {}),
    };
    const pc = new PeerConnection(`whep-${this.id.slice(0, 8)}`, config);
    this.#pc = pc;
    pc.onStateChange((state) => {
      if (state === 'connected') {
        clearTimeout(this.#connectTimer);
        this.#log.info({}, 'WHEP viewer connected');
        this.emit('connected');
      } else if (state === 'failed' || state === 'closed') {
        this.close(`peer connection ${state}`);
      } else if (state === 'disconnected') {
        // Consent lost: give it the connect timeout to come back.
        clearTimeout(this.#connectTimer);
        this.#connectTimer = setTimeout(() => this.close('disconnected too long'), settings.connectTimeoutMs);
      }
    });
    const cname = randomBytes(8).toString('base64url');
    const video = new Video(videoSection.mid, 'SendOnly');
    video.addH264Codec(h264.payloadType, h264.fmtp || 'packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1');
    const videoSsrc = randomInt(1, 0xffffffff);
    video.addSSRC(videoSsrc, cname, 'mediagate', 'video');
    this.#video = { track: pc.addTrack(video), ssrc: videoSsrc, payloadType: h264.payloadType };
    if (audioSection && opus) {
      const audio = new Audio(audioSection.mid, 'SendOnly');
      audio.addOpusCodec(opus.payloadType, opus.fmtp || undefined);
      const audioSsrc = randomInt(1, 0xffffffff);
      audio.addSSRC(audioSsrc, cname, 'mediagate', 'audio');
      this.#audio = { track: pc.addTrack(audio), ssrc: audioSsrc, payloadType: opus.payloadType };
    }
    // An agent bound to loopback reaches only loopback candidates: checks to the others would only time out.
    const remote = isLoopbackAddress(settings.bindAddress) ? filterCandidates(offerSdp, isLoopbackAddress) : offerSdp;
    pc.setRemoteDescription(remote, 'offer');
    await this.#gathered(pc, settings.gatherTimeoutMs ?? 2000);
    const answer = pc.localDescription();
    if (this.#closed || !answer) throw new GatewayError('INTERNAL', 'the WHEP session closed before its answer');
    this.#connectTimer = setTimeout(() => this.close('ICE did not connect in time'), settings.connectTimeoutMs);
    return answer.sdp;
  }

  #gathered(pc: PeerConnection, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (pc.gatheringState() === 'complete') {
        resolve();
        return;
      }
      const timer = setTimeout(resolve, timeoutMs);
      pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  /**
   * Forwards one RTP packet of the stream (header rewritten in place: the caller's buffer is
   * reused for the next viewer; the binding copies it when sending). Dropped until the track
   * is open, and video until a keyframe starts.
   */
  send(kind: 'video' | 'audio', packet: Buffer): void {
    const out = kind === 'video' ? this.#video : this.#audio;
    if (!out || this.#closed || packet.length < RTP_HEADER_BYTES || !out.track.isOpen()) return;
    if (kind === 'video' && this.#waitingKeyframe) {
      if (!startsKeyframe(rtpPayload(packet))) return;
      this.#waitingKeyframe = false;
    }
    packet[1] = (packet[1]! & 0x80) | out.payloadType;
    packet.writeUInt32BE(out.ssrc, 8);
    try {
      out.track.sendMessageBinary(packet);
      this.sent[kind] += 1;
    } catch (err) {
      this.#log.debug({ err: (err as Error).message, kind }, 'WHEP send failed');
    }
  }

  /** The next video packet sent starts at a keyframe again (after a gap in the stream's RTP). */
  resync(): void {
    this.#waitingKeyframe = true;
  }

  /** Closes the peer connection; emits `closed` once. Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#connectTimer);
    try {
      this.#pc?.close();
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'WHEP peer connection close failed');
    }
    this.#log.info({ reason, sentVideo: this.sent.video, sentAudio: this.sent.audio }, 'WHEP viewer closed');
    this.emit('closed', { reason });
  }
}
