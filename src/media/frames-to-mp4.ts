/**
 * Turns the frames of an image-to-video answer into an mp4 (docs/wire-contract.md §8: the
 * ai-runner answers `{frames:[[Media]]}`, the gateway serves an mp4 as Livepeer's gateway
 * does).
 *
 * ffmpeg reads the images from its stdin (`-f image2pipe`), so no frame touches the disk.
 * ffmpeg is spawned through the child supervisor (child-supervisor.ts) rather than
 * `FfmpegRunner` (ffmpeg-runner.ts): that runner's invocations name an input *path* and it
 * cannot feed stdin. The process gets the same treatment: SIGTERM on timeout or abort,
 * SIGKILL after a grace period, and the promise settles only after the process has exited,
 * so no ffmpeg outlives the call.
 *
 * Verified on ffmpeg 5.1: without `-xerror` a frame that fails to decode is skipped and
 * ffmpeg still exits 0 with fewer frames; with it, ffmpeg stops with exit code 1 and the
 * decoder's complaint (`[png @ ...] Invalid PNG signature ...`) on stderr.
 */
import { rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { oneRunSupervisor, type ChildSupervisor } from './child-supervisor.ts';

export interface FramesToMp4Options {
  /** Wall-time limit of the encode, ms; default 120000. */
  readonly timeoutMs?: number;
  /** Delay between SIGTERM and SIGKILL when stopping ffmpeg, ms; default 2000. */
  readonly killGraceMs?: number;
  /** The ffmpeg program; default `ffmpeg` (found on PATH). */
  readonly ffmpegPath?: string;
  /** x264 preset; default `veryfast`. */
  readonly preset?: string;
  /** Aborting stops ffmpeg (e.g. at shutdown) and rejects with TRANSCODE_FAILED. */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Supervisor of the ffmpeg child; default one of its own (child-supervisor.ts `oneRunSupervisor`). */
  readonly supervisor?: ChildSupervisor;
}

/** Image formats accepted as frames. */
export type FrameFormat = 'png' | 'jpeg';

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_KILL_GRACE_MS = 2_000;
/** stderr kept for error messages, characters. */
const STDERR_TAIL_CHARS = 4_000;
/** Highest frame rate accepted. */
const MAX_FPS = 240;

/** stderr lines that mean the frames themselves are broken (decoder or demuxer complaints). */
const UNDECODABLE_STDERR = /\[(png|mjpeg|image2pipe|png_pipe|jpeg_pipe) @|Invalid data found when processing input|Error while decoding|Cannot determine format|could not find codec parameters/i;

/** The format of one frame from its signature, or undefined when it is neither PNG nor JPEG. */
export function frameFormat(frame: Buffer): FrameFormat | undefined {
  if (frame.length >= 8 && frame.readUInt32BE(0) === 0x89504e47 && frame.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (frame.length >= 3 && frame[0] === 0xff && frame[1] === 0xd8 && frame[2] === 0xff) return 'jpeg';
  return undefined;
}

/**
 * The ffmpeg arguments (without the program name). Pure.
 *
 * Odd sizes are padded to even ones (`pad`), because yuv420p H.264 needs even dimensions;
 * `+faststart` puts the index first so players can start before the download ends.
 */
export function framesToMp4Args(format: FrameFormat, fps: number, outputPath: string, preset = 'veryfast'): string[] {
  return [
    '-hide_banner', '-nostdin', '-xerror', '-loglevel', 'error',
    '-f', 'image2pipe', '-framerate', String(fps), '-c:v', format === 'png' ? 'png' : 'mjpeg', '-i', 'pipe:0',
    '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
    '-c:v', 'libx264', '-preset', preset, '-pix_fmt', 'yuv420p', '-movflags', '+faststart',
    '-f', 'mp4', '-y', outputPath,
  ];
}

/**
 * Encodes images into an H.264 mp4 at `outputPath` (overwritten; removed again on failure).
 * @param frames PNG or JPEG images, all of one format, in display order
 * @param fps frames per second, > 0 and ≤ 240 (ai-runner image-to-video default: 6)
 * @throws RangeError for a bad fps.
 * @throws GatewayError UNDECODABLE_MEDIA when there are no frames, a frame is neither PNG
 *   nor JPEG, formats are mixed, or ffmpeg cannot decode a frame; TRANSCODE_FAILED when
 *   ffmpeg cannot be started, fails otherwise, times out or is aborted.
 */
export async function framesToMp4(frames: readonly Buffer[], fps: number, outputPath: string, options: FramesToMp4Options = {}): Promise<void> {
  if (!Number.isFinite(fps) || fps <= 0 || fps > MAX_FPS) throw new RangeError(`fps must be in (0, ${MAX_FPS}], got ${fps}`);
  if (frames.length === 0) throw new GatewayError('UNDECODABLE_MEDIA', 'the worker returned no video frames');
  const format = frameFormat(frames[0]!);
  if (format === undefined) throw new GatewayError('UNDECODABLE_MEDIA', 'video frame 0 is neither PNG nor JPEG');
  for (let i = 1; i < frames.length; i++) {
    const f = frameFormat(frames[i]!);
    if (f === undefined) throw new GatewayError('UNDECODABLE_MEDIA', `video frame ${i} is neither PNG nor JPEG`);
    if (f !== format) throw new GatewayError('UNDECODABLE_MEDIA', `video frame ${i} is ${f} but frame 0 is ${format}`);
  }
  if (options.signal?.aborted) throw new GatewayError('TRANSCODE_FAILED', 'frames-to-mp4 aborted before start');

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const logger = options.logger?.child({ component: 'frames-to-mp4' });
  let stderr = '';
  let supervised;
  try {
    supervised = (options.supervisor ?? oneRunSupervisor()).spawn(options.ffmpegPath ?? 'ffmpeg', framesToMp4Args(format, fps, outputPath, options.preset), {
      name: 'frames-to-mp4',
      stdio: ['pipe', 'ignore', 'pipe'],
      killGraceMs,
      ...(logger ? { logger } : {}),
      onStderrLine: (line) => {
        stderr = `${stderr}${line}\n`.slice(-STDERR_TAIL_CHARS);
      },
    });
  } catch (err) {
    throw new GatewayError('TRANSCODE_FAILED', `ffmpeg could not be started: ${(err as Error).message}`, { cause: err });
  }
  const child = supervised.process;

  let stopReason: 'timeout' | 'aborted' | undefined;
  const stop = (reason: 'timeout' | 'aborted'): void => {
    if (stopReason !== undefined || supervised.hasExited) return;
    stopReason = reason;
    logger?.warn({ reason, pid: child.pid }, 'stopping ffmpeg');
    void supervised.stop();
  };
  const timer = setTimeout(() => stop('timeout'), timeoutMs);
  const onAbort = (): void => stop('aborted');
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const exited = supervised.exited.then(({ code, signal, spawnError }) => ({ code, signal, ...(spawnError ? { spawnError } : {}) }));
  // ffmpeg may exit before reading everything (EPIPE): its exit status tells what happened.
  const fed = pipeline(Readable.from(frames), child.stdin!).catch(() => undefined);

  const result = await exited;
  await fed;
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', onAbort);

  const tail = stderr.trim();
  let failure: GatewayError | undefined;
  if (result.spawnError !== undefined && child.pid === undefined) {
    failure = new GatewayError('TRANSCODE_FAILED', `ffmpeg could not be started: ${result.spawnError.message}`, { cause: result.spawnError });
  } else if (stopReason === 'timeout') {
    failure = new GatewayError('TRANSCODE_FAILED', `frames-to-mp4 timed out after ${timeoutMs} ms`);
  } else if (stopReason === 'aborted') {
    failure = new GatewayError('TRANSCODE_FAILED', 'frames-to-mp4 aborted');
  } else if (result.code !== 0) {
    const how = result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
    const code = UNDECODABLE_STDERR.test(tail) ? 'UNDECODABLE_MEDIA' : 'TRANSCODE_FAILED';
    failure = new GatewayError(code, `ffmpeg ${how}${tail === '' ? '' : `: ${lastLines(tail, 5)}`}`);
  } else {
    const size = await stat(outputPath).then((s) => s.size, () => 0);
    if (size === 0) failure = new GatewayError('TRANSCODE_FAILED', 'ffmpeg exited 0 but wrote no mp4');
  }
  if (failure !== undefined) {
    if (tail !== '') logger?.warn({ stderr: lastLines(tail, 20) }, 'frames-to-mp4 failed');
    await rm(outputPath, { force: true });
    throw failure;
  }
}

function lastLines(text: string, n: number): string {
  return text.split('\n').slice(-n).join('\n');
}
