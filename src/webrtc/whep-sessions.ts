/**
 * The WHEP playback sessions of this gateway (docs/wire-contract.md, "WHEP"): one
 * {@link WhepViewer} per `POST /whep/<manifestID>`, one {@link WhepStream} (one ffmpeg) per
 * watched stream shared by its viewers, a viewer limit per stream and per gateway.
 */
import type { Logger } from '../log/logger.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { isValidStreamName } from '../domain/stream-name.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import type { WhepPackets } from './whep-ports.ts';
import { WhepStream } from './whep-stream.ts';
import { checkWhepOffer, WhepViewer, type WhepPeerSettings } from './whep-viewer.ts';

export interface WhepSessionsOptions {
  readonly packets: WhepPackets;
  /** Owner of the relays' ffmpeg children. */
  readonly supervisor: ChildSupervisor;
  readonly peer: WhepPeerSettings;
  /** Viewers of one stream at most. */
  readonly maxViewersPerStream: number;
  /** Viewers of this gateway at most. */
  readonly maxViewers: number;
  /** `Retry-After` of a refusal for a full limit, s. */
  readonly retryAfterS?: number;
  readonly logger: Logger;
  readonly ffmpegPath?: string;
}

/** A created session: its ID (the last segment of its resource URL) and the SDP answer. */
export interface CreatedWhepSession {
  readonly id: string;
  readonly answer: string;
}

export class WhepSessions {
  readonly #o: WhepSessionsOptions;
  readonly #viewers = new Map<string, WhepViewer>();
  readonly #streams = new Map<string, WhepStream>();
  #closed = false;

  constructor(options: WhepSessionsOptions) {
    this.#o = options;
  }

  /** Viewers now, and per stream. */
  counts(): { viewers: number; streams: Record<string, number> } {
    const streams: Record<string, number> = {};
    for (const [manifestID, stream] of this.#streams) streams[manifestID] = stream.viewerCount;
    return { viewers: this.#viewers.size, streams };
  }

  /**
   * Starts a viewer of `manifestID` from its SDP offer.
   * @throws GatewayError INVALID_NAME / INVALID_REQUEST (400), STREAM_NOT_LIVE (404: not live on
   *   this gateway over RTMP or WHIP), TOO_MANY_VIEWERS (503 with Retry-After), SHUTTING_DOWN (503)
   */
  async create(manifestID: string, offerSdp: string): Promise<CreatedWhepSession> {
    if (!isValidStreamName(manifestID)) throw new GatewayError('INVALID_NAME', 'manifestID: expected 1-64 characters of [A-Za-z0-9_-]');
    if (this.#closed) throw new GatewayError('SHUTTING_DOWN', 'the gateway is shutting down', { retryAfterS: 1 });
    const offer = checkWhepOffer(offerSdp);
    const o = this.#o;
    const retryAfterS = o.retryAfterS ?? 10;
    if (this.#viewers.size >= o.maxViewers) {
      throw new GatewayError('TOO_MANY_VIEWERS', `this gateway has ${o.maxViewers} WHEP viewers (webrtc.whepMaxViewers); retry later`, { retryAfterS });
    }
    let stream = this.#streams.get(manifestID);
    if (stream && stream.viewerCount >= o.maxViewersPerStream) {
      throw new GatewayError('TOO_MANY_VIEWERS', `stream "${manifestID}" has ${o.maxViewersPerStream} WHEP viewers (webrtc.whepMaxViewersPerStream); retry later`, { retryAfterS });
    }
    const viewer = new WhepViewer(manifestID, o.logger.child({ manifestID }));
    // Counted from now, so concurrent offers cannot pass the limits together.
    this.#viewers.set(viewer.id, viewer);
    let newStream = false;
    if (!stream) {
      stream = new WhepStream(manifestID, { packets: o.packets, supervisor: o.supervisor, logger: o.logger, ...(o.ffmpegPath ? { ffmpegPath: o.ffmpegPath } : {}) });
      newStream = true;
    }
    stream.add(viewer);
    viewer.once('closed', () => { this.#viewers.delete(viewer.id); });
    if (newStream) {
      const s = stream;
      this.#streams.set(manifestID, s);
      s.once('closed', () => { if (this.#streams.get(manifestID) === s) this.#streams.delete(manifestID); });
      if (!s.start()) {
        s.close('stream not live');
        throw new GatewayError('STREAM_NOT_LIVE', `stream "${manifestID}" is not live on this gateway over RTMP or WHIP; WHEP plays such streams (HLS plays every stream: /stream/${manifestID}.m3u8)`);
      }
    }
    try {
      const answer = await viewer.answer(offer, o.peer);
      return { id: viewer.id, answer };
    } catch (err) {
      viewer.close('offer refused');
      throw err;
    }
  }

  /**
   * Ends a viewer (`DELETE` of its resource).
   * @returns false when no such viewer exists
   */
  delete(id: string): boolean {
    const viewer = this.#viewers.get(id);
    if (!viewer) return false;
    viewer.close('deleted by the viewer');
    return true;
  }

  /** Closes every viewer and relay and waits for the relays' ffmpeg to exit. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const streams = [...this.#streams.values()];
    for (const stream of streams) stream.close('gateway shutting down');
    for (const viewer of [...this.#viewers.values()]) viewer.close('gateway shutting down');
    await Promise.all(streams.map((s) => s.stopped()));
  }
}
