/**
 * One ffmpeg that takes a WebRTC publisher's media as plain RTP on loopback UDP and publishes
 * it over RTMP (FLV), so it enters a gateway's ingest like any RTMP publish. The WebRTC side
 * (webrtc/, node-datachannel) decrypts the SRTP and hands each RTP/RTCP packet to
 * {@link RtpIngest.sendVideo} / {@link RtpIngest.sendAudio}; this forwards it to ffmpeg's
 * RTP demuxer, described by an SDP file (RFC 4566) with the payload types the WebRTC answer
 * negotiated.
 *
 * - Video: H.264 is copied (`-c:v copy`); VP8 and VP9 cannot go in FLV and are encoded to
 *   H.264 (x264 `veryfast`, `zerolatency`, no B-frames, a keyframe every
 *   `keyframeIntervalMs`). Audio: Opus cannot go in FLV (its FLV codec IDs are AAC, MP3,
 *   Speex...): encoded to AAC-LC 128 kbit/s.
 * - Keyframes: a browser encoder sends one IDR and then only on request, so the caller asks
 *   the publisher for keyframes (RTCP PLI) every segment target; ffmpeg's RTP demuxer starts
 *   a copied H.264 stream at the first IDR that arrives after it is up.
 * - Ports: each stream gets a pair of free UDP ports on 127.0.0.1 (RTP on the even one,
 *   RTCP on the next, as ffmpeg's RTP demuxer binds them); RTCP packets (payload types
 *   200-206 in the second byte, RFC 5761 §4) go to the RTCP port, so ffmpeg can map RTP
 *   timestamps to wall clock with the sender reports and keep audio and video in sync.
 * - Secrets: the RTMP URL's stream name reaches ffmpeg as `rtmp_playpath` in an unlinked
 *   preset file (unlinked-file.ts), never on its command line; stderr lines are redacted.
 * - Loss: nothing here asks for retransmissions (no NACKs); `-reorder_queue_size` puts
 *   reordered packets back in order.
 */
import { closeSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { splitOutputSecrets } from '../domain/output-target.ts';
import type { Logger } from '../log/logger.ts';
import { redactSecrets } from '../log/redact.ts';
import type { ChildExit, ChildSupervisor, SupervisedChild } from './child-supervisor.ts';
import { unlinkedFileWith } from './unlinked-file.ts';

/** Video codecs a WebRTC publisher may send here (RFC 6184 H.264, RFC 7741 VP8, RFC 9628 VP9). */
export type RtpVideoCodec = 'H264' | 'VP8' | 'VP9';

/** One negotiated RTP stream: its payload type, clock rate and format parameters (`a=fmtp`). */
export interface RtpStreamSpec {
  readonly payloadType: number;
  readonly clockRate: number;
  /** The `a=fmtp` parameters, e.g. `packetization-mode=1;profile-level-id=42e01f`; absent: none. */
  readonly fmtp?: string;
}

export interface RtpIngestOptions {
  readonly video?: RtpStreamSpec & { readonly codec: RtpVideoCodec };
  readonly audio?: RtpStreamSpec & { readonly codec: 'opus'; readonly channels: number };
  /** Where to publish, e.g. `rtmp://127.0.0.1:1935/live/<name>` (a secret: its last path segment). */
  readonly rtmpUrl: string;
  readonly supervisor: ChildSupervisor;
  /** Directory for the SDP file (created if missing; the file is removed by `stop()`). */
  readonly workDir: string;
  /** Keyframe interval of a re-encoded (VP8/VP9) video, ms; the segment target. */
  readonly keyframeIntervalMs: number;
  readonly logger: Logger;
  /** Default `ffmpeg`. */
  readonly ffmpegPath?: string;
}

/** ffmpeg's RTP jitter buffer, in packets (its `reorder_queue_size`; ffmpeg's default is 500 for RTSP only). */
const REORDER_QUEUE_PACKETS = 64;
/**
 * How long ffmpeg reads the RTP before it starts publishing, µs: it needs the first keyframe's
 * SPS/PPS (asked for with PLIs at once after connecting) and a few frames for the frame rate.
 * Its default, 5 s, delayed every WHIP stream's start by 5 s.
 */
const ANALYZE_US = 2_000_000;
/** Wait between the first and the second SIGINT of {@link RtpIngest.stop}, ms. */
const SECOND_SIGINT_MS = 300;
/** Where the unlinked preset file with the RTMP playpath sits in ffmpeg's descriptors. */
const SECRET_OPTIONS_FD = 3;

/**
 * The ffmpeg arguments and SDP text of an RTP → RTMP bridge. Pure.
 * @param ports the RTP port of each stream (RTCP on the next one)
 * @throws RangeError when there is neither video nor audio
 */
export function rtpIngestPlan(options: Pick<RtpIngestOptions, 'video' | 'audio' | 'rtmpUrl' | 'keyframeIntervalMs'>, ports: { video?: number; audio?: number }, sdpPath: string): { sdp: string; args: string[]; secretOptions: string } {
  const { video, audio } = options;
  if (!video && !audio) throw new RangeError('an RTP ingest needs video or audio');
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=mediagate WHIP', 'c=IN IP4 127.0.0.1', 't=0 0'];
  const codecs: string[] = [];
  if (video) {
    lines.push(`m=video ${ports.video} RTP/AVP ${video.payloadType}`, `a=rtpmap:${video.payloadType} ${video.codec}/${video.clockRate}`);
    if (video.fmtp) lines.push(`a=fmtp:${video.payloadType} ${video.fmtp}`);
    if (video.codec === 'H264') {
      codecs.push('-map', '0:v:0', '-c:v', 'copy');
    } else {
      const seconds = Math.max(0.5, options.keyframeIntervalMs / 1000);
      codecs.push('-map', '0:v:0', '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-bf', '0', '-pix_fmt', 'yuv420p',
        '-force_key_frames', `expr:gte(t,n_forced*${seconds})`, '-sc_threshold', '0');
    }
  }
  if (audio) {
    lines.push(`m=audio ${ports.audio} RTP/AVP ${audio.payloadType}`, `a=rtpmap:${audio.payloadType} opus/${audio.clockRate}/${audio.channels}`);
    if (audio.fmtp) lines.push(`a=fmtp:${audio.payloadType} ${audio.fmtp}`);
    codecs.push('-map', '0:a:0', '-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-ac', String(Math.min(2, audio.channels)));
  }
  const { publicUrl, options: secrets } = splitOutputSecrets(options.rtmpUrl);
  const secretOptions = secrets.map(([name, value]) => `${name}=${value}\n`).join('');
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'warning',
    '-protocol_whitelist', 'file,udp,rtp', '-reorder_queue_size', String(REORDER_QUEUE_PACKETS), '-analyzeduration', String(ANALYZE_US),
    '-i', sdpPath,
    ...codecs,
    '-f', 'flv', '-flvflags', 'no_duration_filesize', '-rw_timeout', '10000000',
    ...(secretOptions === '' ? [] : ['-fpre', `/dev/fd/${SECRET_OPTIONS_FD}`]), publicUrl,
  ];
  return { sdp: `${lines.join('\r\n')}\r\n`, args, secretOptions };
}

/** Whether an RTP/RTCP packet is RTCP (RFC 5761 §4: second byte 192-223 on a muxed port; RTCP types are 200-206). */
export function isRtcp(packet: Buffer): boolean {
  const type = packet[1] ?? 0;
  return packet.length >= 8 && type >= 192 && type <= 223;
}

/** A running RTP → RTMP bridge (see the module doc). */
export class RtpIngest {
  readonly #child: SupervisedChild;
  readonly #socket: Socket;
  readonly #ports: { video?: number; audio?: number };
  readonly #sdpPath: string;
  #stopping: Promise<void> | undefined;
  /** Resolves when ffmpeg has exited (never rejects). */
  readonly exited: Promise<ChildExit>;

  private constructor(child: SupervisedChild, socket: Socket, ports: { video?: number; audio?: number }, sdpPath: string) {
    this.#child = child;
    this.#socket = socket;
    this.#ports = ports;
    this.#sdpPath = sdpPath;
    this.exited = child.exited;
  }

  /**
   * Picks the ports, writes the SDP and starts ffmpeg.
   * @throws RangeError with neither video nor audio; Error when the supervisor is closed or no ports are free
   */
  static async start(options: RtpIngestOptions): Promise<RtpIngest> {
    const ports = {
      ...(options.video ? { video: await freeUdpPortPair() } : {}),
      ...(options.audio ? { audio: await freeUdpPortPair() } : {}),
    };
    await mkdir(options.workDir, { recursive: true });
    const sdpPath = join(options.workDir, `rtp-${randomBytes(8).toString('hex')}.sdp`);
    const plan = rtpIngestPlan(options, ports, sdpPath);
    await writeFile(sdpPath, plan.sdp, { mode: 0o600 });
    const secrets = [options.rtmpUrl, ...splitOutputSecrets(options.rtmpUrl).options.map(([, v]) => v)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
    const secretFd = plan.secretOptions === '' ? undefined : unlinkedFileWith(plan.secretOptions);
    let child: SupervisedChild;
    try {
      child = options.supervisor.spawn(options.ffmpegPath ?? 'ffmpeg', plan.args, {
        name: 'rtp-ingest',
        stdio: ['ignore', 'ignore', 'pipe', secretFd ?? 'ignore'],
        // SIGINT: ffmpeg ends the FLV and closes the RTMP publish cleanly (the ingest cuts the last segment).
        gracefulSignal: 'SIGINT',
        logger: options.logger,
        redact: (line) => redactSecrets(line, secrets),
      });
    } catch (err) {
      await rm(sdpPath, { force: true });
      throw err;
    } finally {
      if (secretFd !== undefined) closeSync(secretFd);
    }
    const socket = createSocket('udp4');
    socket.on('error', (err) => options.logger.debug({ err: err.message }, 'RTP forward socket error'));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const ingest = new RtpIngest(child, socket, ports, sdpPath);
    void child.exited.then(() => ingest.stop());
    return ingest;
  }

  /** PID of ffmpeg, undefined once it exited or if it never started. */
  get pid(): number | undefined {
    return this.#child.hasExited ? undefined : this.#child.pid;
  }

  /** Forwards one decrypted video RTP or RTCP packet. Drops it once stopped. */
  sendVideo(packet: Buffer): void {
    this.#send(this.#ports.video, packet);
  }

  /** Forwards one decrypted audio RTP or RTCP packet. Drops it once stopped. */
  sendAudio(packet: Buffer): void {
    this.#send(this.#ports.audio, packet);
  }

  #send(port: number | undefined, packet: Buffer): void {
    if (port === undefined || this.#stopping) return;
    this.#socket.send(packet, isRtcp(packet) ? port + 1 : port, '127.0.0.1');
  }

  /**
   * Stops ffmpeg, closes the socket, removes the SDP. Idempotent. ffmpeg ends its output
   * cleanly on SIGINT, but only notices the first one between packets (its read of the UDP
   * input is interrupted from the second signal on, ffmpeg 5.1 `decode_interrupt_cb`), and
   * no packet comes once the publisher is gone: a second SIGINT follows after
   * {@link SECOND_SIGINT_MS}, then SIGKILL after the supervisor's grace.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const child = this.#child;
      child.kill('SIGINT');
      await Promise.race([child.exited, delay(SECOND_SIGINT_MS)]);
      child.kill('SIGINT');
      await child.stop();
      this.#socket.close();
      await rm(this.#sdpPath, { force: true });
    })();
    return this.#stopping;
  }
}

/**
 * An even UDP port on 127.0.0.1 whose next port was also free a moment ago (bound, read,
 * released; ffmpeg binds both again). Tries a few times.
 */
export async function freeUdpPortPair(attempts = 20): Promise<number> {
  for (let i = 0; i < attempts; i += 1) {
    const first = await bindUdp(0);
    const port = first.address().port;
    const even = port % 2 === 0 ? port : port + 1;
    const pair: Socket[] = [first];
    try {
      if (even !== port) pair.push(await bindUdp(even));
      pair.push(await bindUdp(even + 1));
      return even;
    } catch {
      // Taken: try another.
    } finally {
      for (const s of pair) s.close();
    }
  }
  throw new Error('no free UDP port pair on 127.0.0.1');
}

function bindUdp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', (err) => { socket.close(); reject(err); });
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}
