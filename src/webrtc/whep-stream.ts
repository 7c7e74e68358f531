/**
 * The WHEP side of one watched stream: its live FLV tags (whep-ports.ts `WhepPackets`) go to
 * one ffmpeg (media/flv-rtp-relay.ts) whose RTP is fanned out to every viewer of the stream.
 *
 * - The relay starts at the first video keyframe after the first viewer joined (what comes
 *   before it cannot be decoded): a viewer sees the first picture at the publisher's next
 *   keyframe, so within one keyframe interval (2 s with mediagate's recommended encoder
 *   settings).
 * - H.264 is copied when that keyframe has no composition offset (no B-frames: a WebRTC
 *   receiver decodes in sending order); otherwise, and as soon as any later frame has one,
 *   the relay runs (again) with x264 re-encoding without B-frames. AAC becomes Opus.
 * - Across a relay restart the RTP sequence numbers and timestamps continue (offsets per kind),
 *   so a viewer's jitter buffer sees one stream; its video resumes at the next keyframe.
 * - The relay stops when the last viewer leaves; the stream's viewers are closed when the
 *   publish ends or the relay fails.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { FlvRtpRelay } from '../media/flv-rtp-relay.ts';
import { isFlvConfigTag, isFlvVideoKeyframe, parseFlvTag } from '../media/flv-packets.ts';
import type { WhepPackets } from './whep-ports.ts';
import type { WhepViewer } from './whep-viewer.ts';

/** Bytes of tags kept while the relay starts, or waiting in its input pipe (a few seconds of a high bitrate stream); beyond, the stream's viewers are closed. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
const CLOCK_RATE = { video: 90_000, audio: 48_000 } as const;

export interface WhepStreamOptions {
  readonly packets: WhepPackets;
  readonly supervisor: ChildSupervisor;
  readonly logger: Logger;
  readonly ffmpegPath?: string;
}

/** Output continuity of one kind across relay restarts. */
interface Continuity {
  /** The relay generation the offsets were computed for. */
  generation: number;
  seqOffset: number;
  tsOffset: number;
  lastSeq: number | undefined;
  lastTs: number;
  lastWallMs: number;
}

export class WhepStream extends EventEmitter<{ closed: [] }> {
  readonly manifestID: string;
  readonly #o: WhepStreamOptions;
  readonly #log: Logger;
  readonly #viewers = new Set<WhepViewer>();
  readonly #config = new Map<number, Buffer>();
  #detach: (() => void) | undefined;
  #relay: FlvRtpRelay | undefined;
  /** Tags waiting for the relay to start (from the deciding keyframe on). */
  #pending: Buffer[] | undefined;
  #pendingBytes = 0;
  #mode: 'copy' | 'encode' | undefined;
  #hasAudio = false;
  #generation = 0;
  readonly #continuity = { video: newContinuity(), audio: newContinuity() };
  #closed = false;
  #stopping: Promise<void> = Promise.resolve();

  constructor(manifestID: string, options: WhepStreamOptions) {
    super();
    this.manifestID = manifestID;
    this.#o = options;
    this.#log = options.logger.child({ manifestID });
  }

  /** Joins the stream's packets. @returns false when the stream is not live here over RTMP */
  start(): boolean {
    const detach = this.#o.packets.watch(this.manifestID, { tag: (tag) => this.#onTag(tag), end: () => this.close('stream ended') });
    if (!detach) return false;
    if (this.#closed) {
      detach();
      return true;
    }
    this.#detach = detach;
    return true;
  }

  get viewerCount(): number {
    return this.#viewers.size;
  }

  /** The relay's mode once decided: `copy` or `encode`. */
  get mode(): 'copy' | 'encode' | undefined {
    return this.#mode;
  }

  add(viewer: WhepViewer): void {
    this.#viewers.add(viewer);
    viewer.once('closed', () => {
      this.#viewers.delete(viewer);
      if (this.#viewers.size === 0) this.close('no viewers');
    });
  }

  #onTag(tag: Buffer): void {
    if (this.#closed) return;
    if (isFlvConfigTag(tag)) {
      this.#config.set(tag[0]!, tag);
      if (tag[0] === 8) this.#hasAudio = true;
    }
    if (this.#mode === undefined) {
      if (!isFlvVideoKeyframe(tag)) return;
      const packet = parseFlvTag(tag);
      this.#mode = packet?.type === 'video' && packet.ctsMs !== 0 ? 'encode' : 'copy';
      this.#startRelay([tag]);
      return;
    }
    if (this.#mode === 'copy' && tag[0] === 9 && !isFlvConfigTag(tag)) {
      const packet = parseFlvTag(tag);
      if (packet?.type === 'video' && packet.ctsMs !== 0) {
        this.#log.info({}, 'WHEP: the stream has B-frames; re-encoding its video without them');
        this.#mode = 'encode';
        const old = this.#relay;
        this.#relay = undefined;
        void old?.stop();
        for (const viewer of this.#viewers) viewer.resync();
        this.#startRelay([]);
        return;
      }
    }
    if (this.#pending) {
      this.#pending.push(tag);
      this.#pendingBytes += tag.length;
      if (this.#pendingBytes > MAX_PENDING_BYTES) this.close('relay did not start in time');
      return;
    }
    const relay = this.#relay;
    if (!relay) return;
    relay.write(tag);
    if (relay.queuedBytes > MAX_PENDING_BYTES) {
      this.#log.warn({ queuedBytes: relay.queuedBytes }, 'WHEP relay is behind the stream; closing its viewers');
      this.close('relay behind the stream');
    }
  }

  #startRelay(first: Buffer[]): void {
    const generation = ++this.#generation;
    this.#pending = [...this.#config.values(), ...first];
    this.#pendingBytes = 0;
    const mode = this.#mode!;
    FlvRtpRelay.start({
      supervisor: this.#o.supervisor, logger: this.#log, video: mode, audio: this.#hasAudio,
      ...(this.#o.ffmpegPath ? { ffmpegPath: this.#o.ffmpegPath } : {}),
    }).then((relay) => {
      if (this.#closed || generation !== this.#generation) {
        void relay.stop();
        return;
      }
      this.#relay = relay;
      this.#log.info({ mode, audio: this.#hasAudio, pid: relay.pid }, 'WHEP relay started');
      relay.on('rtp', ({ kind, packet }) => this.#fanOut(generation, kind, packet));
      relay.on('exit', ({ exit, reason }) => {
        if (generation !== this.#generation || this.#closed) return;
        this.#log.warn({ code: exit.code, signal: exit.signal, reason }, 'WHEP relay exited');
        this.close(`relay failed${reason ? `: ${reason}` : ''}`);
      });
      const pending = this.#pending ?? [];
      this.#pending = undefined;
      for (const tag of pending) relay.write(tag);
    }, (err: Error) => {
      this.#log.error({ err: err.message }, 'WHEP relay could not start');
      this.close('relay could not start');
    });
  }

  /** Sends one RTP packet of the relay to every viewer, its sequence number and timestamp continued across relay restarts. */
  #fanOut(generation: number, kind: 'video' | 'audio', packet: Buffer): void {
    if (packet.length < 12) return;
    const c = this.#continuity[kind];
    const seq = packet.readUInt16BE(2);
    const ts = packet.readUInt32BE(4);
    const now = Date.now();
    if (c.generation !== generation) {
      c.generation = generation;
      if (c.lastSeq === undefined) {
        c.seqOffset = 0;
        c.tsOffset = 0;
      } else {
        c.seqOffset = (c.lastSeq + 1 - seq) & 0xffff;
        c.tsOffset = (c.lastTs + Math.round(((now - c.lastWallMs) * CLOCK_RATE[kind]) / 1000) - ts) >>> 0;
      }
    }
    const outSeq = (seq + c.seqOffset) & 0xffff;
    const outTs = (ts + c.tsOffset) >>> 0;
    packet.writeUInt16BE(outSeq, 2);
    packet.writeUInt32BE(outTs, 4);
    c.lastSeq = outSeq;
    c.lastTs = outTs;
    c.lastWallMs = now;
    for (const viewer of this.#viewers) viewer.send(kind, packet);
  }

  /** Stops the relay, leaves the packets and closes every viewer. Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach?.();
    this.#generation += 1;
    const relay = this.#relay;
    this.#relay = undefined;
    this.#pending = undefined;
    if (relay) this.#stopping = relay.stop();
    for (const viewer of [...this.#viewers]) viewer.close(reason);
    this.#viewers.clear();
    this.emit('closed');
  }

  /** After `close()`: resolves once the relay's ffmpeg (if any) has exited. */
  stopped(): Promise<void> {
    return this.#stopping;
  }
}

function newContinuity(): Continuity {
  return { generation: 0, seqOffset: 0, tsOffset: 0, lastSeq: undefined, lastTs: 0, lastWallMs: 0 };
}
