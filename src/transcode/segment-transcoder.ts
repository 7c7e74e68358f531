/**
 * The transcode job processor: one source segment in, one segment per fitted rendition
 * out (ARCHITECTURE.md, data flow step 4). Fetches the source from storage, probes it,
 * fits the ladder, runs ONE ffmpeg for all renditions, measures every output, and stores
 * each under its deterministic key.
 *
 * Delivery is at least once (PACKAGES.md, BullMQ): a retried job writes the same keys
 * (`segmentKey(manifestID, rendition, seq)`) and replaces the previous objects.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fitRendition, type FittedRendition } from '../domain/profile.ts';
import { segmentKey, type RenditionSegment, type TranscodeJob, type TranscodeResult } from '../domain/segment.ts';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { FfmpegRunError, type FfmpegExecutor } from './ffmpeg/ffmpeg-runner.ts';
import { buildLadderInvocation, DEFAULT_X264_PRESET, isX264Preset, type X264Preset } from './ffmpeg/ladder-args.ts';
import { probeSegment, type ProbeOptions } from './probe.ts';

/**
 * What the transcoder needs from the object store (same method shapes as
 * `storage/object-store.ts` `ObjectStore`, declared here so transcode/ does not import storage/).
 */
export interface SegmentStorage {
  /** Makes the object available as a local file; call `release` when done. Rejects (e.g. GatewayError NOT_FOUND) when absent. */
  getFile(key: string): Promise<{ path: string; release: () => Promise<void> }>;
  /** Stores the local file under `key`, atomically replacing any previous object. */
  putFile(key: string, localPath: string): Promise<{ readonly sizeBytes: number }>;
}

export interface SegmentTranscoderOptions {
  storage: SegmentStorage;
  /** Directory for per-job temporary directories (created if missing); a relative path is resolved against the process's cwd once, here. */
  workDir: string;
  logger: Logger;
  /** Runs the ffmpeg process (an `FfmpegRunner`); owned by the caller. `close()` of the transcoder stops this transcoder's processes through it. */
  runner: FfmpegExecutor;
  /** libx264/libx265 preset, one of `X264_PRESETS`; default `veryfast`. */
  x264Preset?: string;
  /** Wall-time limit of the ffmpeg run per segment, ms; default 60000. */
  timeoutMs?: number;
  /** ffprobe executable and time limit. */
  probe?: ProbeOptions;
}

/**
 * Wall time of each step of one job, ms, logged with `segment transcoded` (bench/throughput.ts
 * reads them): fetching the source from storage, probing it, the ffmpeg run, and measuring
 * plus storing the outputs (in parallel).
 */
interface TranscodePhases { fetchMs: number; probeMs: number; ffmpegMs: number; outputsMs: number }

/** Default ffmpeg time limit per segment: 30× a 2 s segment, generous for a loaded machine. */
export const DEFAULT_TRANSCODE_TIMEOUT_MS = 60_000;

export class SegmentTranscoder {
  readonly #storage: SegmentStorage;
  readonly #workDir: string;
  readonly #logger: Logger;
  readonly #runner: FfmpegExecutor;
  readonly #preset: X264Preset;
  readonly #timeoutMs: number;
  readonly #probe: ProbeOptions;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  /** @throws GatewayError CONFIG_INVALID when the preset is unknown or `timeoutMs` is not positive. */
  constructor(options: SegmentTranscoderOptions) {
    const preset = options.x264Preset ?? DEFAULT_X264_PRESET;
    if (!isX264Preset(preset)) throw new GatewayError('CONFIG_INVALID', `unknown x264 preset "${String(preset).slice(0, 32)}"`);
    this.#storage = options.storage;
    this.#workDir = resolve(options.workDir);
    this.#logger = options.logger.child({ component: 'segment-transcoder' });
    this.#runner = options.runner;
    this.#preset = preset;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TRANSCODE_TIMEOUT_MS;
    if (!(this.#timeoutMs > 0)) throw new GatewayError('CONFIG_INVALID', `transcode timeoutMs must be positive, got ${this.#timeoutMs}`);
    this.#probe = options.probe ?? {};
  }

  /**
   * Transcodes one source segment into every profile of the job's ladder that fits the
   * source (upscales are omitted and logged at debug).
   *
   * @returns one RenditionSegment per encoded rendition, in ladder order, with measured
   *   width/height/frames/bytes/codecs/frameRate and `durationMs = job.durationMs`;
   *   `renditions: []` when no profile fits. `elapsedMs` is the wall time of the whole job.
   * @throws GatewayError UNDECODABLE_MEDIA (not retryable) when the source cannot be probed
   *   or has no video stream; TRANSCODE_FAILED (retryable) when ffmpeg fails, times out, or
   *   the transcoder is closed; storage errors as the storage raised them.
   *   The job's temporary directory is removed in every case.
   */
  transcode(job: TranscodeJob): Promise<TranscodeResult> {
    if (this.#abort.signal.aborted) return Promise.reject(new GatewayError('TRANSCODE_FAILED', 'transcoder is closed'));
    const work = this.#transcode(job);
    this.#inFlight.add(work);
    const forget = (): void => { this.#inFlight.delete(work); };
    work.then(forget, forget);
    return work;
  }

  async #transcode(job: TranscodeJob): Promise<TranscodeResult> {
    const startedMs = performance.now();
    const log = this.#logger.child({ manifestID: job.manifestID, seq: job.seq });
    await mkdir(this.#workDir, { recursive: true });
    const jobDir = await mkdtemp(join(this.#workDir, 'job-'));
    const phases: TranscodePhases = { fetchMs: 0, probeMs: 0, ffmpegMs: 0, outputsMs: 0 };
    try {
      let t = performance.now();
      const source = await this.#storage.getFile(job.sourceKey);
      phases.fetchMs = Math.round(performance.now() - t);
      let encoded: { fitted: FittedRendition; path: string }[];
      try {
        encoded = await this.#encode(job, source.path, jobDir, log, phases);
      } finally {
        await source.release();
      }
      t = performance.now();
      const renditions = await Promise.all(encoded.map((e) => this.#measureAndStore(job, e.fitted, e.path)));
      phases.outputsMs = Math.round(performance.now() - t);
      const elapsedMs = Math.round(performance.now() - startedMs);
      const realTimeRatio = Number((job.durationMs / Math.max(elapsedMs, 1)).toFixed(2));
      log.info({ renditions: renditions.length, durationMs: job.durationMs, elapsedMs, realTimeRatio, phases }, 'segment transcoded');
      return { manifestID: job.manifestID, seq: job.seq, renditions, elapsedMs };
    } finally {
      await rm(jobDir, { recursive: true, force: true });
    }
  }

  /** Probes the source, fits the ladder and runs ffmpeg; returns the fitted renditions and their output files. */
  async #encode(job: TranscodeJob, sourcePath: string, jobDir: string, log: Logger, phases: TranscodePhases): Promise<{ fitted: FittedRendition; path: string }[]> {
    let t = performance.now();
    const probe = await probeSegment(sourcePath, this.#probe);
    phases.probeMs = Math.round(performance.now() - t);
    if (!probe.video) throw new GatewayError('UNDECODABLE_MEDIA', 'segment is not decodable media: no video stream');
    const source = probe.video;

    const fitted: FittedRendition[] = [];
    for (const profile of job.profiles) {
      const f = fitRendition(profile, source);
      if (f) fitted.push(f);
      else log.debug({ rendition: profile.name, requested: `${profile.width}x${profile.height}`, source: `${source.width}x${source.height}` }, 'rendition omitted: would upscale');
    }
    if (fitted.length === 0) return [];

    // File names by index: rendition names are validated elsewhere, but paths never depend on them.
    const outputs = fitted.map((rendition, i) => ({ rendition, path: join(jobDir, `${i}.ts`) }));
    const invocation = buildLadderInvocation({
      inputPath: sourcePath, outputs, sourceAudioCodec: probe.audio?.codec, x264Preset: this.#preset,
    });
    t = performance.now();
    try {
      await this.#runner.run(invocation, { timeoutMs: this.#timeoutMs, signal: this.#abort.signal });
      phases.ffmpegMs = Math.round(performance.now() - t);
    } catch (err) {
      if (isGatewayError(err)) throw err;
      const reason = err instanceof FfmpegRunError ? err.reason : 'spawn';
      const tail = err instanceof FfmpegRunError ? err.stderrTail : String(err);
      log.warn({ reason, stderrTail: tail }, 'ffmpeg failed');
      const lastLine = (tail.split('\n').pop() ?? '').replaceAll(jobDir, '<out>').replaceAll(sourcePath, '<source>').slice(0, 300);
      const what = err instanceof FfmpegRunError && err.reason === 'exit' ? `ffmpeg exited with code ${err.exitCode}` : `ffmpeg ${reason}`;
      throw new GatewayError('TRANSCODE_FAILED', lastLine ? `${what}: ${lastLine}` : what, { cause: err });
    }
    return outputs.map((o) => ({ fitted: o.rendition, path: o.path }));
  }

  async #measureAndStore(job: TranscodeJob, fitted: FittedRendition, path: string): Promise<RenditionSegment> {
    const name = fitted.profile.name;
    let out;
    try {
      out = await probeSegment(path, this.#probe);
    } catch (err) {
      throw new GatewayError('TRANSCODE_FAILED', `output of rendition ${name} is unreadable`, { cause: err });
    }
    if (!out.video) throw new GatewayError('TRANSCODE_FAILED', `output of rendition ${name} has no video`);
    const key = segmentKey(job.manifestID, name, job.seq);
    await this.#storage.putFile(key, path);
    return {
      rendition: name,
      key,
      width: out.video.width,
      height: out.video.height,
      frames: out.video.frames,
      bytes: out.bytes,
      durationMs: job.durationMs,
      codecs: out.codecs,
      frameRate: out.video.fpsNum / out.video.fpsDen,
    };
  }

  /** Stops running ffmpeg processes of this transcoder (their jobs fail with TRANSCODE_FAILED) and waits for the jobs to settle. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#abort.abort();
    this.#closing = Promise.allSettled([...this.#inFlight]).then(() => undefined);
    return this.#closing;
  }
}
