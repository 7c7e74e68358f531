/**
 * One ffmpeg that turns a live FLV tag stream (H.264 + AAC, as an RTMP publish carries it) into
 * RTP for WebRTC playback: H.264 copied (with its SPS/PPS put in band before every IDR by
 * `h264_mp4toannexb`, so a receiver joining at a keyframe can decode), or re-encoded by x264
 * without B-frames (Constrained Baseline, `zerolatency`, a keyframe every
 * `keyframeIntervalSec`) when the source has B-frames (WebRTC receivers do not reorder); AAC
 * re-encoded to Opus 48 kHz stereo (WebRTC's mandatory audio codec, RFC 7874). The RTP goes
 * to two UDP sockets of this process on 127.0.0.1 (one per kind, `pkt_size` 1200 so that
 * SRTP's overhead stays under a 1280-byte path MTU), reported as `rtp` events.
 *
 * Tags are written as they come (`write`), with their DTS rebased to 0 at the first video
 * keyframe written (tags before it cannot be decoded and are dropped; configuration tags are
 * written with DTS 0). ffmpeg probes 0.1 s of media ({@link ANALYZE_US}) before its first
 * output; from then on each packet is relayed as it arrives (`-fflags nobuffer`).
 */
import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor, ChildExit, SupervisedChild } from './child-supervisor.ts';
import { isFlvConfigTag, isFlvVideoKeyframe } from './flv-packets.ts';

/** RTP payload types ffmpeg writes (rewritten to each receiver's negotiated ones). */
export const RELAY_VIDEO_PAYLOAD_TYPE = 96;
export const RELAY_AUDIO_PAYLOAD_TYPE = 111;

/** Largest RTP packet ffmpeg writes, bytes. */
const RTP_PACKET_BYTES = 1200;
const FLV_TAG_AUDIO = 8;
/**
 * ffmpeg's probe of the input: up to 5 MB, and 0.1 s of media once every stream the FLV header
 * announces has appeared (its FLV demuxer waits for those). Not 0: `-analyzeduration 0` means
 * ffmpeg's default, 90 s for FLV (libavformat `avformat_find_stream_info`).
 */
const PROBE_BYTES = 5_000_000;
const ANALYZE_US = 100_000;
const FLV_TAG_VIDEO = 9;

export interface FlvRtpRelayOptions {
  readonly supervisor: ChildSupervisor;
  readonly logger: Logger;
  /** `copy`: H.264 as published; `encode`: x264 without B-frames. */
  readonly video: 'copy' | 'encode';
  /** The stream has AAC audio (an Opus output is made). */
  readonly audio: boolean;
  /** `encode` only: seconds between keyframes; default 1. */
  readonly keyframeIntervalSec?: number;
  /** The ffmpeg program; default `ffmpeg` on PATH. */
  readonly ffmpegPath?: string;
}

export interface FlvRtpRelayEvents {
  /** One RTP packet as ffmpeg wrote it (payload type {@link RELAY_VIDEO_PAYLOAD_TYPE} or {@link RELAY_AUDIO_PAYLOAD_TYPE}). */
  rtp: [{ kind: 'video' | 'audio'; packet: Buffer }];
  /** ffmpeg exited (after `stop()`, at the end of input, or on a failure: its last stderr line in `reason`). */
  exit: [{ exit: ChildExit; reason: string | undefined }];
}

/** A running relay; see the module comment. */
export class FlvRtpRelay extends EventEmitter<FlvRtpRelayEvents> {
  readonly #o: FlvRtpRelayOptions;
  readonly #sockets: { video: dgram.Socket; audio: dgram.Socket };
  #child: SupervisedChild | undefined;
  #lastError: string | undefined;
  /** DTS of the first video keyframe written; undefined until then. */
  #baseDts: number | undefined;
  #stopped = false;

  private constructor(options: FlvRtpRelayOptions, sockets: { video: dgram.Socket; audio: dgram.Socket }) {
    super();
    this.#o = options;
    this.#sockets = sockets;
  }

  /**
   * Binds the two UDP sockets and starts ffmpeg.
   * @throws Error when a socket cannot be bound or the supervisor is closed
   */
  static async start(options: FlvRtpRelayOptions): Promise<FlvRtpRelay> {
    const bind = async (): Promise<dgram.Socket> => {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, '127.0.0.1', () => { socket.off('error', reject); resolve(); });
      });
      return socket;
    };
    const video = await bind();
    const audio = await bind().catch((err: Error) => { video.close(); throw err; });
    const relay = new FlvRtpRelay(options, { video, audio });
    try {
      relay.#spawn();
    } catch (err) {
      video.close();
      audio.close();
      throw err;
    }
    return relay;
  }

  /** The process id of ffmpeg. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #spawn(): void {
    const o = this.#o;
    const { video, audio } = this.#sockets;
    for (const [kind, socket] of [['video', video], ['audio', audio]] as const) {
      socket.on('message', (packet, from) => {
        // Only ffmpeg, from this host, writes here.
        if (from.address !== '127.0.0.1') return;
        this.emit('rtp', { kind, packet });
      });
      socket.on('error', (err) => o.logger.warn({ err: err.message, kind }, 'WHEP relay socket error'));
    }
    const gop = Math.max(1, Math.round((o.keyframeIntervalSec ?? 1) * 30));
    const videoCodec = o.video === 'copy'
      ? ['-c:v', 'copy', '-bsf:v', 'h264_mp4toannexb']
      : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-bf', '0', '-pix_fmt', 'yuv420p',
        '-force_key_frames', `expr:gte(t,n_forced*${o.keyframeIntervalSec ?? 1})`, '-g', String(gop * 10), '-sc_threshold', '0'];
    const args = [
      '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning',
      '-fflags', '+nobuffer', '-flags', 'low_delay', '-probesize', String(PROBE_BYTES), '-analyzeduration', String(ANALYZE_US),
      ...(o.video === 'encode' ? ['-threads', '1'] : []),
      '-f', 'flv', '-i', 'pipe:0',
      '-map', '0:v:0', ...videoCodec,
      '-f', 'rtp', '-payload_type', String(RELAY_VIDEO_PAYLOAD_TYPE), `rtp://127.0.0.1:${video.address().port}?pkt_size=${RTP_PACKET_BYTES}`,
      ...(o.audio ? [
        '-map', '0:a:0', '-c:a', 'libopus', '-ar', '48000', '-ac', '2', '-b:a', '96k', '-application', 'lowdelay', '-frame_duration', '20',
        '-f', 'rtp', '-payload_type', String(RELAY_AUDIO_PAYLOAD_TYPE), `rtp://127.0.0.1:${audio.address().port}?pkt_size=${RTP_PACKET_BYTES}`,
      ] : []),
    ];
    const child = o.supervisor.spawn(o.ffmpegPath ?? 'ffmpeg', args, {
      name: 'whep-relay', stdio: ['pipe', 'ignore', 'pipe'], logger: o.logger, killGraceMs: 1000,
      onStderrLine: (line) => { this.#lastError = line; },
    });
    this.#child = child;
    // A closed pipe after ffmpeg exited is reported by `exit`.
    child.process.stdin?.on('error', () => undefined);
    // The FLV file header: audio and video flags, header size 9, PreviousTagSize0.
    child.process.stdin?.write(Buffer.from([0x46, 0x4c, 0x56, 0x01, o.audio ? 0x05 : 0x01, 0, 0, 0, 9, 0, 0, 0, 0]));
    void child.exited.then((exit) => {
      video.close();
      audio.close();
      this.emit('exit', { exit, reason: this.#stopped ? undefined : this.#lastError });
    });
  }

  /**
   * Writes one whole FLV tag (not modified: a copy with the rebased DTS is written). Tags
   * before the first video keyframe are dropped, except configuration tags (written with DTS 0).
   * @returns false when ffmpeg's input is behind (its pipe buffer is full); the caller may drop
   */
  write(tag: Buffer): boolean {
    const stdin = this.#child?.process.stdin;
    if (!stdin || this.#stopped || stdin.destroyed) return false;
    let dts: number;
    if (isFlvConfigTag(tag)) {
      dts = 0;
    } else {
      if (tag[0] !== FLV_TAG_VIDEO && tag[0] !== FLV_TAG_AUDIO) return true;
      const tagDts = (tag[7]! * 0x1000000) + tag.readUIntBE(4, 3);
      if (this.#baseDts === undefined) {
        if (!isFlvVideoKeyframe(tag)) return true;
        this.#baseDts = tagDts;
      }
      dts = Math.max(0, tagDts - this.#baseDts);
    }
    const copy = Buffer.from(tag);
    copy.writeUIntBE(dts & 0xffffff, 4, 3);
    copy[7] = (dts >>> 24) & 0xff;
    return stdin.write(copy);
  }

  /** Bytes written and not yet taken by ffmpeg (they grow while ffmpeg is behind the stream). */
  get queuedBytes(): number {
    return this.#child?.process.stdin?.writableLength ?? 0;
  }

  /** Stops ffmpeg (SIGTERM, SIGKILL after 1 s) and closes the sockets. Idempotent; resolves once it exited. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#child?.process.stdin?.destroy();
    await this.#child?.stop();
  }
}
