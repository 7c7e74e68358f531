/**
 * One ffmpeg that encodes raw frames written by the caller: raw video on its stdin, raw
 * s16le audio on an extra pipe (fd 4), H.264 (+AAC) out to an RTMP URL, to an MPEG-TS byte
 * stream on its stdout, or to an MP4 file. The encode half of the frame API
 * (docs/frames.md, "Publishing frames"); frames/ does the timing and calls this.
 *
 * - Timing: ffmpeg stamps the frames itself: video at a constant frame rate (`-framerate`,
 *   frame n at n / frameRate s), audio by sample count. The caller places its frames on that
 *   grid (frames/source.ts repeats or skips video frames by their pts and fills audio gaps
 *   with silence), so the output's timing follows the frames' pts to within one frame.
 *   (`-use_wallclock_as_timestamps` was the other way: it stamps frames with their arrival
 *   time, which is wrong for anything produced faster or slower than real time, e.g. a file
 *   written by saveMp4 or a benchmark.)
 * - Backpressure: {@link RawEncoder.writeVideo} / {@link RawEncoder.writeAudio} resolve
 *   once the pipe took the bytes (at once while the pipe's buffer has room, else at its
 *   `drain`), so a producer that awaits them runs at the encoder's speed and nothing queues
 *   up in Node. With both audio and video, ffmpeg reads its two inputs in step: feed them
 *   concurrently (one loop each), not one after the other.
 * - Low latency (defaults): x264 `-preset ultrafast -tune zerolatency -bf 0` (no B-frames, no
 *   lookahead), a keyframe every `keyframeIntervalSec` (default 2 s; `-g`, `-sc_threshold 0`
 *   so no extra ones), MPEG-TS with `-muxdelay 0 -muxpreload 0 -flush_packets 1` (no 0.7 s
 *   mux delay, packets leave as they are made).
 * - Secrets: an RTMP target's stream key is not on the command line (`ps`): it reaches ffmpeg
 *   as the `rtmp_playpath` option in an unlinked preset file on fd 3 (unlinked-file.ts), and
 *   stderr lines are redacted.
 * - Ending: {@link RawEncoder.endVideo}/{@link RawEncoder.endAudio} close the inputs; ffmpeg
 *   then flushes and exits, and {@link RawEncoder.done} settles. {@link RawEncoder.stop}
 *   ends the inputs and sends SIGTERM (SIGKILL after the kill grace); `done` then resolves.
 *   Any other exit than 0 rejects `done` with a {@link RawEncoderError} carrying ffmpeg's
 *   last stderr lines.
 */
import type { Readable, Writable } from 'node:stream';
import { closeSync } from 'node:fs';
import { splitOutputSecrets } from '../domain/output-target.ts';
import type { Logger } from '../log/logger.ts';
import { redactSecrets } from '../log/redact.ts';
import { oneRunSupervisor, type ChildSupervisor, type SupervisedChild } from './child-supervisor.ts';
import { unlinkedFileWith } from './unlinked-file.ts';

/** Raw pixel layouts accepted on the video pipe (ffmpeg `-pix_fmt` names). */
export type RawPixelFormat = 'yuv420p' | 'rgb24' | 'rgba';

/** The raw video written to the encoder. */
export interface RawVideoInput {
  readonly width: number;
  readonly height: number;
  readonly pixelFormat: RawPixelFormat;
  /** Frames per second of the constant-rate grid, > 0 (may be fractional, e.g. 29.97). */
  readonly frameRate: number;
}

/** The raw audio written to the encoder: interleaved signed 16-bit little-endian PCM. */
export interface RawAudioInput {
  /** Hz, e.g. 48000. */
  readonly sampleRate: number;
  /** 1 or 2. */
  readonly channels: number;
}

/** Where the encoded media goes. */
export type RawEncoderTarget =
  /** An RTMP publish (FLV), e.g. `rtmp://127.0.0.1:1935/live/<stream key>`. */
  | { readonly kind: 'rtmp'; readonly url: string }
  /** An MPEG-TS byte stream on {@link RawEncoder.output}. */
  | { readonly kind: 'mpegts' }
  /** An MP4 file (overwritten; `+faststart`). */
  | { readonly kind: 'mp4'; readonly path: string };

export interface RawEncoderOptions {
  readonly video?: RawVideoInput;
  readonly audio?: RawAudioInput;
  readonly target: RawEncoderTarget;
  /** Seconds between keyframes, > 0; default 2 (one per 2 s segment). */
  readonly keyframeIntervalSec?: number;
  /** x264 preset; default `ultrafast`. */
  readonly preset?: string;
  /** `-tune zerolatency` (no lookahead, no frame threading delay); default true. */
  readonly zeroLatency?: boolean;
  /** Video bitrate, kbit/s (`-b:v`, `-maxrate`, `-bufsize` 2×); default none (x264's CRF 23). */
  readonly videoBitrateKbps?: number;
  /** AAC bitrate, kbit/s; default 128. */
  readonly audioBitrateKbps?: number;
  /** Owner of the ffmpeg child; default one of its own (child-supervisor.ts `oneRunSupervisor`). */
  readonly supervisor?: ChildSupervisor;
  readonly logger?: Logger;
  /** The ffmpeg program; default `ffmpeg` on PATH. */
  readonly ffmpegPath?: string;
  /** Delay between SIGTERM and SIGKILL when stopping, ms; default 2000. */
  readonly killGraceMs?: number;
}

/**
 * Why a write or the encoder failed: ffmpeg exited non-zero (`exit`) or by a signal we did
 * not send (`signal`), could not be started (`spawn`), or a write came after the encoder
 * ended normally or was stopped (`ended`).
 */
export class RawEncoderError extends Error {
  readonly reason: 'exit' | 'signal' | 'spawn' | 'ended';
  /** ffmpeg's last stderr lines (redacted), possibly empty. */
  readonly stderrTail: string;
  constructor(reason: RawEncoderError['reason'], message: string, stderrTail: string) {
    super(stderrTail === '' ? message : `${message}: ${stderrTail}`);
    this.name = 'RawEncoderError';
    this.reason = reason;
    this.stderrTail = stderrTail;
  }
}

/** The descriptor ffmpeg reads raw audio from (0 = video, 1 = MPEG-TS out, 2 = stderr, 3 = secret options). */
const AUDIO_FD = 4;
const SECRET_OPTIONS_FD = 3;
const DEFAULT_KEYFRAME_INTERVAL_SEC = 2;
/**
 * Raw inputs need no probing (their format is given), but ffmpeg opens its inputs one after
 * the other and by default reads up to 5 MB of each while probing (`-probesize` default
 * 5000000): ~15 frames of 640x360 video before it even opens the audio pipe. A producer that
 * feeds both from one decoder (whose audio pipe fills meanwhile) would deadlock. Probing the
 * minimum (32 bytes, no analysis) opens both at once.
 */
const NO_PROBING = ['-probesize', '32', '-analyzeduration', '0'];
const STDERR_TAIL_LINES = 5;

/**
 * ffmpeg's arguments (without the program name) and the text of its secret-options preset
 * (`name=value` lines, read with `-fpre /dev/fd/3`; empty when there is none). Pure.
 * @throws RangeError when neither video nor audio is given, or a number is out of range.
 */
export function rawEncoderArgs(options: RawEncoderOptions): { args: string[]; secretOptions: string } {
  const { video, audio, target } = options;
  if (!video && !audio) throw new RangeError('an encoder needs video, audio or both');
  if (video) {
    if (!(Number.isInteger(video.width) && video.width > 0 && Number.isInteger(video.height) && video.height > 0)) throw new RangeError(`video size must be positive integers, got ${video.width}x${video.height}`);
    if (!(Number.isFinite(video.frameRate) && video.frameRate > 0 && video.frameRate <= 240)) throw new RangeError(`frameRate must be in (0, 240], got ${video.frameRate}`);
  }
  if (audio && !(Number.isInteger(audio.sampleRate) && audio.sampleRate >= 8000 && audio.sampleRate <= 192_000 && (audio.channels === 1 || audio.channels === 2))) {
    throw new RangeError(`audio must be 8000-192000 Hz with 1 or 2 channels, got ${audio.sampleRate} Hz ${audio.channels} channels`);
  }
  const keyframeIntervalSec = options.keyframeIntervalSec ?? DEFAULT_KEYFRAME_INTERVAL_SEC;
  if (!(Number.isFinite(keyframeIntervalSec) && keyframeIntervalSec > 0)) throw new RangeError(`keyframeIntervalSec must be > 0, got ${keyframeIntervalSec}`);

  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error'];
  const maps: string[] = [];
  const codecs: string[] = [];
  if (video) {
    args.push(...NO_PROBING, '-f', 'rawvideo', '-pix_fmt', video.pixelFormat, '-video_size', `${video.width}x${video.height}`,
      '-framerate', String(video.frameRate), '-thread_queue_size', '64', '-i', 'pipe:0');
    maps.push('-map', `${maps.length / 2}:v:0`);
    const gop = Math.max(1, Math.round(video.frameRate * keyframeIntervalSec));
    codecs.push('-c:v', 'libx264', '-preset', options.preset ?? 'ultrafast', ...(options.zeroLatency === false ? [] : ['-tune', 'zerolatency']),
      '-bf', '0', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p');
    // H.264 4:2:0 needs even sizes: pad an odd edge by one pixel.
    if (video.width % 2 !== 0 || video.height % 2 !== 0) codecs.push('-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2');
    if (options.videoBitrateKbps !== undefined) {
      codecs.push('-b:v', `${options.videoBitrateKbps}k`, '-maxrate', `${options.videoBitrateKbps}k`, '-bufsize', `${2 * options.videoBitrateKbps}k`);
    }
  }
  if (audio) {
    args.push(...NO_PROBING, '-f', 's16le', '-ar', String(audio.sampleRate), '-ac', String(audio.channels), '-thread_queue_size', '1024', '-i', `pipe:${AUDIO_FD}`);
    maps.push('-map', `${maps.length / 2}:a:0`);
    codecs.push('-c:a', 'aac', '-b:a', `${options.audioBitrateKbps ?? 128}k`);
  }
  args.push(...maps, ...codecs);
  let secretOptions = '';
  if (target.kind === 'mpegts') {
    args.push('-f', 'mpegts', '-muxdelay', '0', '-muxpreload', '0', '-flush_packets', '1', 'pipe:1');
  } else if (target.kind === 'mp4') {
    args.push('-movflags', '+faststart', '-f', 'mp4', '-y', target.path);
  } else {
    const { publicUrl, options: secrets } = splitOutputSecrets(target.url);
    secretOptions = secrets.map(([name, value]) => `${name}=${value}\n`).join('');
    args.push('-f', 'flv', '-flvflags', 'no_duration_filesize', '-rw_timeout', '10000000',
      ...(secretOptions === '' ? [] : ['-fpre', `/dev/fd/${SECRET_OPTIONS_FD}`]), publicUrl);
  }
  return { args, secretOptions };
}

/** A running encoder (see the module doc). */
export class RawEncoder {
  /** The MPEG-TS bytes (target `mpegts` only). Not reading it stalls the encoder, and so the writers. */
  readonly output: Readable | undefined;
  /** Resolves when ffmpeg exited 0 or was stopped by {@link stop}; rejects with {@link RawEncoderError} otherwise. */
  readonly done: Promise<void>;
  readonly #child: SupervisedChild;
  readonly #video: Writable | undefined;
  readonly #audio: Writable | undefined;
  #stopping = false;
  #exited = false;
  /** Settled writers waiting for `drain`, rejected when ffmpeg exits. */
  readonly #waiters = new Set<(err?: Error) => void>();

  /**
   * Starts ffmpeg.
   * @throws RangeError for bad options ({@link rawEncoderArgs}); Error when the supervisor is closed.
   */
  constructor(options: RawEncoderOptions) {
    const { args, secretOptions } = rawEncoderArgs(options);
    const secrets = options.target.kind === 'rtmp' ? rtmpSecrets(options.target.url) : [];
    const logger = options.logger?.child({ component: 'raw-encoder' });
    const tail: string[] = [];
    const secretFd = secretOptions === '' ? undefined : unlinkedFileWith(secretOptions);
    try {
      this.#child = (options.supervisor ?? oneRunSupervisor()).spawn(options.ffmpegPath ?? 'ffmpeg', args, {
        name: 'raw-encoder',
        stdio: [options.video ? 'pipe' : 'ignore', options.target.kind === 'mpegts' ? 'pipe' : 'ignore', 'pipe', secretFd ?? 'ignore', options.audio ? 'pipe' : 'ignore'],
        killGraceMs: options.killGraceMs ?? 2000,
        ...(logger ? { logger } : {}),
        redact: (line) => (secrets.length === 0 ? line : redactSecrets(line, secrets)),
        onStderrLine: (line) => {
          tail.push(line);
          if (tail.length > STDERR_TAIL_LINES) tail.shift();
        },
      });
    } finally {
      if (secretFd !== undefined) closeSync(secretFd);
    }
    const proc = this.#child.process;
    this.#video = options.video ? (proc.stdio[0] as Writable) : undefined;
    this.#audio = options.audio ? (proc.stdio[AUDIO_FD] as Writable) : undefined;
    this.output = options.target.kind === 'mpegts' ? (proc.stdio[1] as Readable) : undefined;
    for (const pipe of [this.#video, this.#audio]) {
      // EPIPE once ffmpeg is gone: its exit status says what happened.
      pipe?.on('error', () => undefined);
      pipe?.on('drain', () => this.#wake());
    }
    this.done = this.#child.exited.then((exit) => {
      this.#exited = true;
      const stderrTail = tail.join('\n');
      let failure: RawEncoderError | undefined;
      if (exit.spawnError) failure = new RawEncoderError('spawn', `ffmpeg could not be started: ${exit.spawnError.message}`, '');
      else if (!this.#stopping && exit.code !== 0) {
        failure = exit.code === null
          ? new RawEncoderError('signal', `ffmpeg was killed by ${exit.signal}`, stderrTail)
          : new RawEncoderError('exit', `ffmpeg exited with code ${exit.code}`, stderrTail);
      }
      this.#wake(failure ?? new RawEncoderError('ended', 'the encoder has ended', ''));
      if (failure) throw failure;
    });
  }

  /** The ffmpeg process id (undefined if it could not be started). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /**
   * Writes one raw video frame (tightly packed, in the input's pixel format and size).
   * @returns resolves when the pipe took the bytes (see the module doc)
   * @throws RawEncoderError when the encoder has ended; Error when there is no video input
   */
  writeVideo(frame: Buffer): Promise<void> {
    if (!this.#video) return Promise.reject(new Error('this encoder has no video input'));
    return this.#write(this.#video, frame);
  }

  /** Writes interleaved s16le samples; like {@link writeVideo}. */
  writeAudio(samples: Buffer): Promise<void> {
    if (!this.#audio) return Promise.reject(new Error('this encoder has no audio input'));
    return this.#write(this.#audio, samples);
  }

  /** Ends the video input (ffmpeg finishes once every input has ended). Idempotent. */
  endVideo(): void {
    if (this.#video && !this.#video.writableEnded) this.#video.end();
  }

  /** Ends the audio input. Idempotent. */
  endAudio(): void {
    if (this.#audio && !this.#audio.writableEnded) this.#audio.end();
  }

  /**
   * Stops the encoder now: ends the inputs, SIGTERM, SIGKILL after the grace. `done` then
   * resolves. Idempotent; resolves once ffmpeg has exited.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#video?.destroy();
    this.#audio?.destroy();
    await this.#child.stop();
    await this.done.catch(() => undefined);
  }

  #write(pipe: Writable, bytes: Buffer): Promise<void> {
    if (this.#exited || this.#stopping || pipe.writableEnded || pipe.destroyed) {
      return Promise.reject(new RawEncoderError('ended', 'the encoder has ended', ''));
    }
    if (pipe.write(bytes)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = (err?: Error): void => {
        this.#waiters.delete(waiter);
        if (err) reject(err);
        else if (pipe.writableNeedDrain) this.#waiters.add(waiter);
        else resolve();
      };
      this.#waiters.add(waiter);
    });
  }

  #wake(err?: Error): void {
    for (const waiter of [...this.#waiters]) waiter(err);
  }
}

/** The parts of an RTMP URL to keep out of logs: the URL itself and its stream key (playpath). */
function rtmpSecrets(url: string): string[] {
  const playpath = splitOutputSecrets(url).options.map(([, value]) => value);
  return [url, ...playpath].filter((s) => s !== '').sort((a, b) => b.length - a.length);
}
