/**
 * WHIP ingest sessions (RFC 9725): a publisher's SDP offer is answered by a node-datachannel
 * peer connection that receives its video and audio; the decrypted RTP goes to one ffmpeg
 * (media/rtp-ingest.ts) that publishes it to the gateway's own RTMP ingest under a one-time
 * stream name carrying the publish's grant, so a WHIP stream has the same manifest ID rules,
 * ladder (a live transcoding session), HLS, recording, outputs and billing as an RTMP one
 * (docs/architecture.md "WHIP ingest").
 *
 * One session's life:
 * 1. {@link WhipSessions.create}: the offer is parsed (400 when it is not SDP or offers no
 *    codec taken here) and the stream key admitted (401/402/403/409) before any ICE.
 * 2. ffmpeg starts (before the answer, so it is listening when the first RTP arrives), then
 *    the peer connection answers: H.264 (packetization mode 1) is preferred and copied,
 *    VP8/VP9 are re-encoded to H.264, Opus to AAC. The answer carries the gateway's ICE
 *    candidates (gathering finishes before the reply; at most `gatherTimeoutMs`).
 * 3. Keyframes: a PLI (RFC 4585 §6.3.1) when the video track opens, again after 0.5 s and
 *    1.5 s (ffmpeg may have missed the first IDR while starting), then every
 *    `keyframeIntervalMs` (the segment target): browser encoders send an IDR only when asked.
 * 4. End: `DELETE` of the session, the peer connection failing or closing, ICE not connected
 *    within `iceTimeoutMs` (or disconnected that long), ffmpeg exiting (e.g. the stream was
 *    kicked through the control API), or {@link WhipSessions.close}. Each end closes the peer
 *    connection (its sockets), stops ffmpeg (SIGINT: the RTMP publish ends cleanly and the
 *    ingest cuts the last segment) and gives the one-time name up.
 */
import { randomBytes } from 'node:crypto';
import { Audio, PeerConnection, RtcpReceivingSession, Video, type IceServer, type RtcConfig, type Track } from 'node-datachannel';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { RtpIngest, type RtpIngestOptions } from '../media/rtp-ingest.ts';
import { chooseAudioCodec, chooseVideoCodec, filterCandidates, fragmentCandidates, isLoopbackAddress, parseOffer } from './whip-sdp.ts';
import type { WhipAdmission, WhipPublishGrant } from './whip-ports.ts';

export interface WhipSessionsOptions {
  readonly admission: WhipAdmission;
  /** Supervisor of the sessions' ffmpeg children (closed by its owner). */
  readonly supervisor: ChildSupervisor;
  /** Directory for the ffmpeg SDP files. */
  readonly workDir: string;
  /** STUN/TURN servers, in node-datachannel's URL form (`stun:host:port`, `turn:user:password@host:port`). */
  readonly iceServers: readonly (string | IceServer)[];
  /** Local address of the ICE agent's host candidates ('' = every interface). */
  readonly bindAddress: string;
  /** UDP port range of the ICE agent; 0 and 0: any port. */
  readonly portRangeBegin: number;
  readonly portRangeEnd: number;
  /** How long a session may take to connect (or stay disconnected) before it is closed, ms. */
  readonly iceTimeoutMs: number;
  /** Interval of keyframe requests (PLI), ms: the segment target. */
  readonly keyframeIntervalMs: number;
  readonly logger: Logger;
  /** Sessions open at once at most (`webrtc.whipMaxSessions`); one more is refused 503 TOO_MANY_PUBLISHERS. Default no limit. */
  readonly maxSessions?: number;
  /** How long the answer waits for the gateway's ICE candidates, ms. Default 5000. */
  readonly gatherTimeoutMs?: number;
}

/** A created session as the routes answer it. */
export interface CreatedWhipSession {
  readonly id: string;
  readonly answer: string;
  /** Entity tag of the session's ICE state (RFC 9725 §4.3.1 uses it with If-Match on PATCH). */
  readonly etag: string;
}

/** `Retry-After` of a publish refused for the session limit, s: about how long a publisher takes to come and go. */
const TOO_MANY_RETRY_AFTER_S = 10;

/** Delays of the first keyframe requests after the video track opens, ms (then every keyframeIntervalMs). */
const EARLY_PLI_DELAYS_MS = [0, 500, 1500] as const;

/** The WHIP sessions of one gateway. */
export class WhipSessions {
  readonly #o: WhipSessionsOptions;
  readonly #sessions = new Map<string, WhipSession>();
  #closed = false;

  constructor(options: WhipSessionsOptions) {
    this.#o = options;
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Manifest IDs and states of the open sessions. */
  list(): { id: string; manifestID: string; state: string }[] {
    return [...this.#sessions.values()].map((s) => ({ id: s.id, manifestID: s.manifestID, state: s.state }));
  }

  /**
   * Admits a publish and answers its offer.
   * @param url the WHIP URL the publisher used (given to the admission; it holds the key)
   * @throws GatewayError INVALID_REQUEST (400: not SDP, no codec taken here), TOO_MANY_PUBLISHERS
   *   (503 with Retry-After, `maxSessions` open: checked before the key, so a full gateway starts
   *   nothing for it), the admission's errors (400/402/403/409), SHUTTING_DOWN (503) after close,
   *   INTERNAL when the peer connection cannot be set up
   */
  async create(streamKey: string, offer: string, url: string): Promise<CreatedWhipSession> {
    if (this.#closed) throw new GatewayError('SHUTTING_DOWN', 'the gateway is shutting down; publish again in a few seconds');
    const media = parseOffer(offer);
    const videoSection = media.find((m) => m.kind === 'video' && m.direction !== 'inactive' && m.direction !== 'recvonly');
    const audioSection = media.find((m) => m.kind === 'audio' && m.direction !== 'inactive' && m.direction !== 'recvonly');
    const video = videoSection && chooseVideoCodec(videoSection.codecs);
    const audio = audioSection && chooseAudioCodec(audioSection.codecs);
    if (!video) {
      throw new GatewayError('INVALID_REQUEST', videoSection
        ? `the offer's video codecs (${videoSection.codecs.map((c) => c.name).join(', ')}) include none taken here: H.264 (packetization-mode=1), VP8 or VP9`
        : 'the offer sends no video: a WHIP publish needs a video track (H.264, VP8 or VP9)');
    }
    this.#checkRoom();
    const grant = await this.#o.admission.admit(streamKey, url);
    try {
      this.#checkRoom(); // another publish may have taken the last place while this one was admitted
    } catch (err) {
      grant.release();
      throw err;
    }
    const id = randomBytes(16).toString('hex');
    const session = new WhipSession(id, grant, this.#o, (s) => { this.#sessions.delete(s.id); });
    this.#sessions.set(id, session);
    try {
      const answer = await session.start(offer, {
        video: { mid: videoSection!.mid, codec: video.codec, payloadType: video.payloadType, clockRate: video.clockRate, fmtp: video.fmtp },
        ...(audio && audioSection ? { audio: { mid: audioSection.mid, payloadType: audio.payloadType, clockRate: audio.clockRate, channels: audio.channels, fmtp: audio.fmtp } } : {}),
      });
      if (this.#closed) throw new GatewayError('SHUTTING_DOWN', 'the gateway is shutting down; publish again in a few seconds');
      return { id, answer, etag: session.etag };
    } catch (err) {
      await session.close('the session could not start');
      throw err;
    }
  }

  /** @throws GatewayError TOO_MANY_PUBLISHERS when `maxSessions` sessions are open */
  #checkRoom(): void {
    const max = this.#o.maxSessions;
    if (max !== undefined && this.#sessions.size >= max) {
      throw new GatewayError('TOO_MANY_PUBLISHERS', `this gateway has ${max} WHIP sessions (webrtc.whipMaxSessions); retry later or publish over RTMP`,
        { retryAfterS: TOO_MANY_RETRY_AFTER_S });
    }
  }

  /**
   * Adds trickled ICE candidates to a session (PATCH, RFC 9725 §4.3.1).
   * @throws GatewayError NOT_FOUND (no such session)
   */
  addCandidates(id: string, fragment: string): void {
    this.#get(id).addCandidates(fragment);
  }

  /** The session's current entity tag. @throws GatewayError NOT_FOUND */
  etag(id: string): string {
    return this.#get(id).etag;
  }

  /** Ends a session (DELETE). @throws GatewayError NOT_FOUND */
  async end(id: string): Promise<void> {
    await this.#get(id).close('the publisher ended the session (DELETE)');
  }

  /** Ends every session and refuses new ones. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions.values()].map((s) => s.close('the gateway is shutting down')));
  }

  #get(id: string): WhipSession {
    const session = this.#sessions.get(id);
    if (!session) throw new GatewayError('NOT_FOUND', 'no such WHIP session (it ended, or never existed)');
    return session;
  }
}

interface SessionMedia {
  readonly video: { mid: string; codec: 'H264' | 'VP8' | 'VP9'; payloadType: number; clockRate: number; fmtp: string };
  readonly audio?: { mid: string; payloadType: number; clockRate: number; channels: number; fmtp: string };
}

/** One publisher's peer connection and its ffmpeg. */
class WhipSession {
  readonly id: string;
  readonly manifestID: string;
  etag: string;
  state = 'new';
  readonly #grant: WhipPublishGrant;
  readonly #o: WhipSessionsOptions;
  readonly #log: Logger;
  readonly #onClosed: (s: WhipSession) => void;
  readonly #timers = new Set<NodeJS.Timeout>();
  #pc: PeerConnection | undefined;
  #rtp: RtpIngest | undefined;
  #videoTrack: Track | undefined;
  /**
   * Every node-datachannel object of the session, held until it closes: a track whose JS
   * wrapper is garbage-collected stops delivering its packets (seen: the audio stopped after
   * the first GC, and with it ffmpeg's output, which waits for audio).
   */
  readonly #held: unknown[] = [];
  #mids: string[] = [];
  #iceTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(id: string, grant: WhipPublishGrant, options: WhipSessionsOptions, onClosed: (s: WhipSession) => void) {
    this.id = id;
    this.manifestID = grant.manifestID;
    this.etag = `"${randomBytes(8).toString('hex')}"`;
    this.#grant = grant;
    this.#o = options;
    this.#onClosed = onClosed;
    this.#log = options.logger.child({ manifestID: grant.manifestID, whipSession: id.slice(0, 8) });
  }

  /** Starts ffmpeg and the peer connection; resolves with the SDP answer. */
  async start(offer: string, media: SessionMedia): Promise<string> {
    const o = this.#o;
    const rtpOptions: RtpIngestOptions = {
      video: { codec: media.video.codec, payloadType: media.video.payloadType, clockRate: media.video.clockRate, ...(media.video.fmtp ? { fmtp: media.video.fmtp } : {}) },
      ...(media.audio ? { audio: { codec: 'opus' as const, payloadType: media.audio.payloadType, clockRate: media.audio.clockRate, channels: media.audio.channels, ...(media.audio.fmtp ? { fmtp: media.audio.fmtp } : {}) } } : {}),
      rtmpUrl: this.#grant.rtmpUrl, supervisor: o.supervisor, workDir: o.workDir, keyframeIntervalMs: o.keyframeIntervalMs, logger: this.#log,
    };
    const rtp = await RtpIngest.start(rtpOptions);
    this.#rtp = rtp;
    void rtp.exited.then((exit) => {
      void this.close(exit.code === 0 || exit.signal === 'SIGINT' ? 'the stream ended' : 'the stream was ended by the gateway (ffmpeg exited)');
    });
    if (this.#closing) throw new GatewayError('INTERNAL', 'the WHIP session ended while starting');

    const config: RtcConfig = {
      iceServers: [...o.iceServers],
      disableAutoNegotiation: true,
      ...(o.bindAddress !== '' ? { bindAddress: o.bindAddress } : {}),
      ...(o.portRangeBegin > 0 && o.portRangeEnd > 0 ? { portRangeBegin: o.portRangeBegin, portRangeEnd: o.portRangeEnd } : {}),
    };
    const pc = new PeerConnection(`whip-${this.id.slice(0, 8)}`, config);
    this.#pc = pc;
    pc.onStateChange((state) => this.#onState(state));

    const video = new Video(media.video.mid, 'RecvOnly');
    if (media.video.codec === 'H264') video.addH264Codec(media.video.payloadType, media.video.fmtp || undefined);
    else if (media.video.codec === 'VP8') video.addVP8Codec(media.video.payloadType);
    else video.addVP9Codec(media.video.payloadType);
    const videoTrack = pc.addTrack(video);
    const videoHandler = new RtcpReceivingSession();
    videoTrack.setMediaHandler(videoHandler);
    this.#held.push(videoHandler);
    videoTrack.onMessage((packet) => rtp.sendVideo(packet));
    videoTrack.onOpen(() => this.#startKeyframeRequests());
    this.#videoTrack = videoTrack;
    this.#held.push(video, videoTrack);
    this.#mids = [media.video.mid];
    if (media.audio) {
      const audio = new Audio(media.audio.mid, 'RecvOnly');
      audio.addOpusCodec(media.audio.payloadType, media.audio.fmtp || undefined);
      const audioTrack = pc.addTrack(audio);
      const audioHandler = new RtcpReceivingSession();
      audioTrack.setMediaHandler(audioHandler);
      audioTrack.onMessage((packet) => rtp.sendAudio(packet));
      this.#held.push(audio, audioTrack, audioHandler);
      this.#mids.push(media.audio.mid);
    }

    // An agent bound to loopback reaches only loopback candidates; the others would only time out.
    const remote = isLoopbackAddress(o.bindAddress) ? filterCandidates(offer, isLoopbackAddress) : offer;
    try {
      pc.setRemoteDescription(remote, 'offer');
      pc.setLocalDescription('answer');
    } catch (err) {
      throw new GatewayError('INVALID_REQUEST', `the offer was refused by the WebRTC stack: ${(err as Error).message}`);
    }
    await this.#gathered(pc, o.gatherTimeoutMs ?? 5000);
    const answer = pc.localDescription()?.sdp;
    if (!answer) throw new GatewayError('INTERNAL', 'no SDP answer was produced');
    this.#iceTimer = this.#later(o.iceTimeoutMs, () => {
      if (this.state !== 'connected') void this.close(`ICE did not connect within ${o.iceTimeoutMs} ms`);
    });
    this.#log.info({ video: media.video.codec, audio: media.audio ? 'opus' : 'none' }, 'WHIP session answered');
    return answer;
  }

  /** Adds the candidates of a trickle ICE fragment. */
  addCandidates(fragment: string): void {
    const pc = this.#pc;
    if (!pc || this.#closing) throw new GatewayError('NOT_FOUND', 'no such WHIP session (it ended)');
    const keepAll = !isLoopbackAddress(this.#o.bindAddress);
    for (const { candidate, mid } of fragmentCandidates(fragment, this.#mids[0] ?? '0')) {
      if (!keepAll && !isLoopbackAddress(candidate.split(' ')[4] ?? '')) continue;
      try {
        pc.addRemoteCandidate(candidate, mid);
      } catch (err) {
        throw new GatewayError('INVALID_REQUEST', `a candidate was refused: ${(err as Error).message}`);
      }
    }
    this.etag = `"${randomBytes(8).toString('hex')}"`;
  }

  /** Closes the peer connection, stops ffmpeg and releases the grant. Idempotent. */
  close(reason: string): Promise<void> {
    this.#closing ??= (async () => {
      this.#log.info({ reason, state: this.state }, 'WHIP session ended');
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      try {
        this.#pc?.close();
      } catch (err) {
        this.#log.debug({ err: (err as Error).message }, 'closing the peer connection failed');
      }
      this.state = 'closed';
      this.#held.length = 0;
      await this.#rtp?.stop();
      this.#grant.release();
      this.#onClosed(this);
    })();
    return this.#closing;
  }

  #onState(state: string): void {
    if (this.#closing) return;
    this.state = state;
    this.#log.debug({ state }, 'WHIP peer connection state');
    if (state === 'connected') {
      if (this.#iceTimer) clearTimeout(this.#iceTimer);
    } else if (state === 'disconnected') {
      this.#iceTimer = this.#later(this.#o.iceTimeoutMs, () => {
        if (this.state !== 'connected') void this.close(`disconnected for ${this.#o.iceTimeoutMs} ms`);
      });
    } else if (state === 'failed' || state === 'closed') {
      void this.close(`the peer connection ${state}`);
    }
  }

  #startKeyframeRequests(): void {
    const ask = (): void => {
      const track = this.#videoTrack;
      if (this.#closing || !track || track.isClosed()) return;
      try {
        track.requestKeyframe();
      } catch (err) {
        this.#log.debug({ err: (err as Error).message }, 'keyframe request failed');
      }
    };
    for (const delayMs of EARLY_PLI_DELAYS_MS) this.#later(delayMs, ask);
    const every = (): void => {
      ask();
      this.#later(this.#o.keyframeIntervalMs, every);
    };
    this.#later(this.#o.keyframeIntervalMs, every);
  }

  #later(delayMs: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, delayMs);
    this.#timers.add(timer);
    return timer;
  }

  #gathered(pc: PeerConnection, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (pc.gatheringState() === 'complete') {
        resolve();
        return;
      }
      const timer = this.#later(timeoutMs, resolve);
      pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          this.#timers.delete(timer);
          resolve();
        }
      });
    });
  }
}
