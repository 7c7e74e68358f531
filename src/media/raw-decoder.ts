/**
 * One ffmpeg that decodes a media input into raw frames for the frame API (src/frames/):
 * video as packed `rawvideo` on stdout (fd 1), audio as interleaved `s16le` on an extra pipe
 * (fd 3), both from the same process.
 *
 * Timing (passthrough): the input is read with `-copyts` and the video goes out with
 * `-fps_mode passthrough`, so ffmpeg neither shifts timestamps to start at 0 nor drops or
 * duplicates frames; the video chain ends in `settb=1/90000,showinfo=checksum=0`, and
 * showinfo prints one stderr line per frame with its `pts` on the 90 kHz clock (settb
 * rescales with rounding to nearest, like av_rescale_q). Raw frames carry no timestamps, so
 * the n-th showinfo line belongs to the n-th frame on stdout (showinfo is the last filter:
 * one line per frame leaving the graph, in order). The audio chain
 * `aresample=<rate>:async=1,aformat=s16:<layout>,ashowinfo` makes the samples continuous
 * (gaps filled, `async=1`), so only the first ashowinfo line is needed: the pts of sample k
 * is the first pts + k, on 1/rate.
 *
 * Verified with ffmpeg 5.1: showinfo prints `n:   0 pts:      0 pts_time:0 ...` (plus
 * side-data lines on some frames, also prefixed `[Parsed_showinfo_N @ 0x...]`); ashowinfo
 * after aresample prints pts on 1/rate.
 */
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import { STREAM_TYPE_ADTS_AAC, VIDEO_STREAM_TYPES, programStreamsOfHead } from './ts-measure.ts';
import { oneRunSupervisor, type ChildExit, type ChildSupervisor, type SupervisedChild } from './child-supervisor.ts';

/** Where the decoder reads: a path or URL ffmpeg opens itself, or MPEG-TS bytes written to its stdin. */
export type RawDecoderInput =
  | { readonly location: string }
  | { readonly stdinFormat: 'mpegts' };

/** Raw video output. */
export interface RawVideoSpec {
  /** Pixels; omitted = the input's (both omitted) or keep aspect ratio (one omitted, the other even). */
  readonly width?: number;
  readonly height?: number;
  /** ffmpeg pix_fmt name of the output: `yuv420p`, `rgb24` or `rgba`. */
  readonly pixelFormat: string;
  /** Output frames per second (ffmpeg's `fps` filter); omitted = the input's frames, untouched. */
  readonly frameRate?: number;
}

/** Raw audio output (s16le interleaved). */
export interface RawAudioSpec {
  /** Hz. */
  readonly sampleRate: number;
  readonly channels: number;
}

export interface RawDecoderSpec {
  readonly input: RawDecoderInput;
  /** Absent: no video output. */
  readonly video?: RawVideoSpec;
  /** Absent: no audio output. */
  readonly audio?: RawAudioSpec;
  /** Read the input at its native rate (`-re`), as a live source would deliver it. */
  readonly realtime?: boolean;
}

/** One parsed showinfo / ashowinfo stderr line. */
export interface ShowinfoLine {
  readonly kind: 'video' | 'audio';
  /** Frame number in its output, from 0. */
  readonly n: number;
  /** In the filter link's time base (1/90000 for video, 1/rate for audio); undefined for NOPTS. */
  readonly pts: number | undefined;
  /** Video: the frame's size in pixels (`s:WxH`). */
  readonly width?: number;
  readonly height?: number;
}

/** ffmpeg's `-rw_timeout` for a network input (no data for this long fails the read), µs. */
export const NETWORK_TIMEOUT_US = 10_000_000;

/**
 * Decoder options of a byte stream on stdin (a live source): one decoding thread, so no frame
 * is held back by frame threading (libavcodec delays output by thread count − 1 frames).
 * Decoding 640×360 H.264 on one thread is far faster than real time.
 */
const SINGLE_THREAD_DECODE = ['-threads', '1'];

/** ffmpeg's `-analyzeduration` for a byte stream on stdin, µs. */
export const STDIN_ANALYZE_DURATION_US = 500_000;

const SHOWINFO = /^\[Parsed_(a?)showinfo_\d+ @ [^\]]+\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS)/;
const SHOWINFO_SIZE = / s:(\d+)x(\d+) /;
const SHOWINFO_ANY = /^\[Parsed_a?showinfo_\d+ @ /;
const PLAYLIST_RELOAD_FAILED = /^\[hls @ [^\]]+\] Failed to reload playlist/;

/** The frame line of showinfo/ashowinfo, or undefined for any other stderr line. Pure. */
export function parseShowinfoLine(line: string): ShowinfoLine | undefined {
  const m = SHOWINFO.exec(line);
  if (!m) return undefined;
  const pts = m[3] === 'NOPTS' ? undefined : Number(m[3]);
  if (m[1] === 'a') return { kind: 'audio', n: Number(m[2]), pts };
  const size = SHOWINFO_SIZE.exec(line);
  return { kind: 'video', n: Number(m[2]), pts, ...(size ? { width: Number(size[1]), height: Number(size[2]) } : {}) };
}

/** ffmpeg's channel layout name for a channel count (mono, stereo, else `<n>c`). */
function channelLayout(channels: number): string {
  return channels === 1 ? 'mono' : channels === 2 ? 'stereo' : `${channels}c`;
}

/**
 * The ffmpeg arguments (without the program name) of a raw decoder. Pure.
 * Video goes to `pipe:1`, audio to `pipe:3`; at least one of them must be requested.
 */
export function rawDecoderArgs(spec: RawDecoderSpec): string[] {
  if (!spec.video && !spec.audio) throw new RangeError('raw decoder: neither video nor audio requested');
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info'];
  if (spec.realtime) args.push('-re');
  args.push('-copyts');
  // A live byte stream: stream info from its first 0.5 s, not the default 5 s (measured: the first frame of a
  // stream of 2 s segments came out 4 s after the first segment with the default, 0.11 s with this).
  // Its decoder runs on one thread: libavcodec's frame threading (the default, one thread per core + 1) holds
  // back (threads − 1) decoded frames until more input arrives, so a live stream whose input pauses at a
  // segment boundary would keep its last frames until the next segment (SINGLE_THREAD_DECODE below).
  if ('stdinFormat' in spec.input) args.push('-analyzeduration', String(STDIN_ANALYZE_DURATION_US), ...SINGLE_THREAD_DECODE, '-f', spec.input.stdinFormat, '-i', 'pipe:0');
  // A network input that stops answering fails after this long instead of hanging (ffmpeg's HLS demuxer then
  // retries its playlist a few times and gives up, see RawDecoder.inputLost).
  else args.push(...(spec.input.location.startsWith('file:') ? [] : ['-rw_timeout', String(NETWORK_TIMEOUT_US)]), '-i', spec.input.location);
  if (spec.video) {
    const v = spec.video;
    const chain: string[] = [];
    if (v.frameRate !== undefined) chain.push(`fps=${v.frameRate}`);
    if (v.width !== undefined || v.height !== undefined) chain.push(`scale=${v.width ?? -2}:${v.height ?? -2}`);
    chain.push(`format=${v.pixelFormat}`, 'settb=1/90000', 'showinfo=checksum=0');
    args.push('-map', '0:v:0', '-vf', chain.join(','), '-fps_mode', 'passthrough', '-c:v', 'rawvideo', '-pix_fmt', v.pixelFormat, '-f', 'rawvideo', 'pipe:1');
  }
  if (spec.audio) {
    const a = spec.audio;
    const chain = `aresample=${a.sampleRate}:async=1,aformat=sample_fmts=s16:channel_layouts=${channelLayout(a.channels)},ashowinfo`;
    args.push('-map', '0:a:0', '-af', chain, '-c:a', 'pcm_s16le', '-f', 's16le', 'pipe:3');
  }
  return args;
}

/** A running raw decoder. */
export interface RawDecoder {
  readonly pid: number | undefined;
  /** rawvideo bytes, frames back to back; absent without video. */
  readonly video: Readable | undefined;
  /** s16le bytes; absent without audio. */
  readonly audio: Readable | undefined;
  /** ffmpeg's stdin, for a `stdinFormat` input. */
  readonly stdin: Writable | undefined;
  /** Resolves once ffmpeg has exited and its pipes are drained. */
  readonly exited: Promise<ChildExit>;
  /** The last stderr lines that are not showinfo lines (ffmpeg's reason when it fails). */
  reason(): string;
  /**
   * True when ffmpeg's HLS demuxer failed to reload its playlist and no frame came after:
   * it then ends a live playlist as if it had ended (exit 0), though the server is gone or
   * answers errors (verified with ffmpeg 5.1: `[hls @ …] Failed to reload playlist 0`).
   */
  inputLost(): boolean;
  /** SIGTERM, SIGKILL after the grace; resolves once exited. Idempotent. */
  stop(): Promise<ChildExit>;
}

export interface StartRawDecoderOptions {
  /** Called for every showinfo/ashowinfo frame line, in stderr order. */
  readonly onShowinfo: (line: ShowinfoLine) => void;
  readonly supervisor?: ChildSupervisor;
  readonly logger?: Logger;
  /** The ffmpeg program; default `ffmpeg` on PATH. */
  readonly ffmpegPath?: string;
  /** Delay between SIGTERM and SIGKILL on stop, ms; default 2000. */
  readonly killGraceMs?: number;
}

/** Non-showinfo stderr lines kept for the failure reason. */
const REASON_LINES = 8;

/** Starts ffmpeg for `spec`. A start failure (ENOENT) shows in `exited` (`spawnError`). */
export function startRawDecoder(spec: RawDecoderSpec, options: StartRawDecoderOptions): RawDecoder {
  const tail: string[] = [];
  let lines = 0;
  let lastFrameLine = 0;
  let lastReloadFailureLine = 0;
  const supervisor = options.supervisor ?? oneRunSupervisor();
  const child: SupervisedChild = supervisor.spawn(options.ffmpegPath ?? 'ffmpeg', rawDecoderArgs(spec), {
    name: 'raw-decoder',
    stdio: ['stdinFormat' in spec.input ? 'pipe' : 'ignore', spec.video ? 'pipe' : 'ignore', 'pipe', spec.audio ? 'pipe' : 'ignore'],
    killGraceMs: options.killGraceMs ?? 2000,
    ...(options.logger ? { logger: options.logger } : {}),
    // The location may be a URL with credentials in it: keep it out of the logs.
    redact: 'location' in spec.input ? redactLocation(spec.input.location) : (line) => line,
    onStderrLine: (line) => {
      lines++;
      const info = parseShowinfoLine(line);
      if (info) {
        lastFrameLine = lines;
        options.onShowinfo(info);
        return;
      }
      if (SHOWINFO_ANY.test(line)) return;
      if (PLAYLIST_RELOAD_FAILED.test(line)) lastReloadFailureLine = lines;
      tail.push(line);
      if (tail.length > REASON_LINES) tail.shift();
    },
  });
  const stdio = child.process.stdio;
  return {
    pid: child.pid,
    video: spec.video ? (stdio[1] as Readable) : undefined,
    audio: spec.audio ? (stdio[3] as Readable) : undefined,
    stdin: 'stdinFormat' in spec.input ? (stdio[0] as Writable) : undefined,
    exited: child.exited,
    reason: () => tail.join('\n'),
    inputLost: () => lastReloadFailureLine > lastFrameLine,
    stop: () => child.stop(),
  };
}

function redactLocation(location: string): (line: string) => string {
  let url: URL | undefined;
  try {
    url = new URL(location);
  } catch {
    return (line) => line;
  }
  if (!url.password && !url.username && !url.search) return (line) => line;
  return (line) => line.split(location).join('<input>');
}

/** Which kinds of streams an input has. */
export interface InputStreamKinds {
  readonly video: boolean;
  readonly audio: boolean;
}

/** ffprobe's stdout is a few lines; more than this is refused. */
const MAX_PROBE_OUTPUT_BYTES = 64 * 1024;

/**
 * Whether `location` (a path or URL) has a video and an audio stream, from ffprobe.
 * @throws Error with ffprobe's reason when it cannot read the input, or on timeout.
 */
export async function probeStreamKinds(location: string, options: { timeoutMs?: number; supervisor?: ChildSupervisor; ffprobePath?: string } = {}): Promise<InputStreamKinds> {
  const supervisor = options.supervisor ?? oneRunSupervisor();
  const timeoutMs = options.timeoutMs ?? 20_000;
  const stderr: string[] = [];
  const child = supervisor.spawn(options.ffprobePath ?? 'ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', location], {
    name: 'ffprobe',
    redact: redactLocation(location),
    onStderrLine: (line) => {
      stderr.push(line);
      if (stderr.length > REASON_LINES) stderr.shift();
    },
  });
  let out = '';
  let failure: string | undefined;
  child.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.length > MAX_PROBE_OUTPUT_BYTES) {
      failure ??= 'ffprobe output too large';
      void child.stop();
    }
  });
  const timer = setTimeout(() => {
    failure ??= `ffprobe timed out after ${timeoutMs} ms`;
    void child.stop();
  }, timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  if (exit.spawnError) throw new Error(`ffprobe could not be started: ${exit.spawnError.message}`);
  if (failure) throw new Error(failure);
  if (exit.code !== 0) throw new Error(stderr.join('\n') || `ffprobe exited with code ${exit.code ?? exit.signal}`);
  const kinds = out.split(/\r?\n/).map((l) => l.trim().replace(/,$/, ''));
  return { video: kinds.includes('video'), audio: kinds.includes('audio') };
}

/** stream_types of audio codecs ffmpeg decodes from MPEG-TS (ISO/IEC 13818-1 Table 2-34; 0x81/0x87 ATSC A/52 AC-3/E-AC-3). */
const AUDIO_STREAM_TYPES: ReadonlySet<number> = new Set([0x03, 0x04, STREAM_TYPE_ADTS_AAC, 0x11, 0x81, 0x87]);

/**
 * Which kinds of streams an MPEG-TS byte stream has, from its PAT/PMT in `head` (the first
 * bytes received); undefined while `head` does not yet hold both.
 * @throws TsMeasureError `malformed` when `head` is not a transport stream.
 */
export function mpegTsStreamKinds(head: Uint8Array): InputStreamKinds | undefined {
  const streams = programStreamsOfHead(head);
  if (!streams) return undefined;
  return {
    video: streams.some((s) => VIDEO_STREAM_TYPES.has(s.streamType)),
    audio: streams.some((s) => AUDIO_STREAM_TYPES.has(s.streamType)),
  };
}
