/**
 * The transcode job processor: one source segment in, one segment per fitted rendition
 * out (docs/architecture.md, live stream step 4). Fetches the source from storage, takes its
 * measurement from the job (or probes it), fits the ladder, runs ONE ffmpeg for all
 * renditions, measures every output, and stores each under its deterministic key.
 *
 * No ffprobe in the common case (each run costs ~55 ms CPU to start and ~0.1 s per call,
 * on the latency path): the gateway's ingest probe travels with the job
 * (`TranscodeJob.source`), and H.264 outputs are measured by reading the MPEG-TS our ffmpeg
 * just wrote (ts-measure.ts). ffprobe still runs for a job without a (valid) source
 * measurement, and for any output ts-measure cannot read exactly (HEVC renditions, anything
 * unexpected), so the reported values never change.
 *
 * Delivery is at least once (BullMQ re-runs a job whose transcoder stalled or died): a retried job writes the same keys
 * (`renditionKeyBeside(sourceKey, rendition)`: beside the source segment, under its session) and
 * replaces the previous objects.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { displayedSize, fitRendition, type FittedRendition } from '../domain/profile.ts';
import {
  parseSourceSegmentInfo, pickSourceSegmentInfo, renditionKeyBeside, type RenditionSegment, type SourceSegmentInfo, type TranscodeJob, type TranscodeResult,
} from '../domain/segment.ts';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';
import type { Logger } from '../log/logger.ts';
import { FfmpegRunError, type FfmpegExecutor } from '../media/ffmpeg-runner.ts';
import { buildLadderInvocation, DEFAULT_X264_PRESET, isX264Preset, type LadderWatermark, type X264Preset } from './ladder-args.ts';
import { parseWatermarkSpec } from '../domain/watermark.ts';
import { probeSegment, type ProbeOptions } from '../media/probe.ts';
import { audioCodecString } from '../media/codec-strings.ts';
import { measureTsFile, STREAM_TYPE_ADTS_AAC, STREAM_TYPE_H264, TsMeasureError, type TsVideoMeasurement } from '../media/ts-measure.ts';

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

/** Retries of object-store operations across a store outage (same shape as storage/store-retry.ts `StoreRetry`). */
export interface StorageRetry {
  /** Epoch ms until which work ready now keeps retrying. */
  deadline(): number;
  /** Runs `op`, retrying transient failures until `deadlineMs`. @throws the last error. */
  run<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T>;
}

export interface SegmentTranscoderOptions {
  storage: SegmentStorage;
  /**
   * Retries of the job's source download and rendition uploads across a store outage, until
   * the job's start + `storage.outageBudgetMs`; the job (and its BullMQ lock) is held meanwhile.
   * Past it the storage error goes to BullMQ (`transcode.attempts`). Absent: one attempt.
   */
  storageRetry?: StorageRetry;
  /** Directory for per-job temporary directories (created if missing); a relative path is resolved against the process's cwd once, here. */
  workDir: string;
  /**
   * Name prefix of each job's directory, followed by random characters; default `job-`.
   * The gateway adds the process's pid (`job-<pid>-`) so its startup sweep can tell the dirs
   * of a dead process from those of a live one.
   */
  jobDirPrefix?: string;
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
 * reads them): fetching the source from storage, probing it (0 when the job carries the
 * source measurement), the ffmpeg run, and measuring plus storing the outputs (in parallel).
 */
interface TranscodePhases { fetchMs: number; probeMs: number; ffmpegMs: number; outputsMs: number }

/** What one job records while it runs: its phases, and how many ffprobe processes it started. */
interface JobStats { phases: TranscodePhases; ffprobeRuns: number }

/**
 * RFC 6381 codecs part of the renditions' audio (ladder-args.ts `audioOptions`): AAC is copied,
 * so it is the source's; any other source audio is encoded to AAC-LC (`mp4a.40.2`); no source
 * audio, no audio. The same `audioCodecString` ffprobe's answer goes through.
 */
function renditionAudioCodecs(audio: SourceSegmentInfo['audio']): string | undefined {
  if (!audio) return undefined;
  return audio.codec === 'aac' ? audioCodecString('aac', audio.profile) : audioCodecString('aac', 'LC');
}

/** Default ffmpeg time limit per segment: 30× a 2 s segment, generous for a loaded machine. */
export const DEFAULT_TRANSCODE_TIMEOUT_MS = 60_000;

export class SegmentTranscoder {
  readonly #storage: SegmentStorage;
  readonly #storageRetry: StorageRetry | undefined;
  readonly #workDir: string;
  readonly #logger: Logger;
  readonly #runner: FfmpegExecutor;
  readonly #preset: X264Preset;
  readonly #timeoutMs: number;
  readonly #probe: ProbeOptions;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;
  readonly #jobDirPrefix: string;

  /** @throws GatewayError CONFIG_INVALID when the preset is unknown or `timeoutMs` is not positive. */
  constructor(options: SegmentTranscoderOptions) {
    const preset = options.x264Preset ?? DEFAULT_X264_PRESET;
    if (!isX264Preset(preset)) throw new GatewayError('CONFIG_INVALID', `unknown x264 preset "${String(preset).slice(0, 32)}"`);
    this.#storage = options.storage;
    this.#storageRetry = options.storageRetry;
    this.#workDir = resolve(options.workDir);
    this.#jobDirPrefix = options.jobDirPrefix ?? 'job-';
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
   * The source measurement is `job.source` when present and well-formed (no ffprobe), else
   * ffprobe of the source; H.264 outputs are measured by ts-measure.ts, HEVC outputs and any
   * output it refuses by ffprobe (logged at warn for H.264): the values are the same either way.
   *
   * @returns one RenditionSegment per encoded rendition, in ladder order, with measured
   *   width/height (pixels), frames (video packets), bytes, codecs (RFC 6381), frameRate
   *   (frames per second) and `durationMs = job.durationMs`; `renditions: []` when no profile
   *   fits. `elapsedMs` is the wall time of the whole job (ms).
   * @throws GatewayError UNDECODABLE_MEDIA (not retryable) when the source has to be probed
   *   and cannot be, or has no video stream; TRANSCODE_FAILED (retryable) when ffmpeg fails,
   *   times out, or the transcoder is closed, or an output cannot be measured at all;
   *   storage errors as the storage raised them (after the storage retry, when given).
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
    const jobDir = await mkdtemp(join(this.#workDir, this.#jobDirPrefix));
    const stats: JobStats = { phases: { fetchMs: 0, probeMs: 0, ffmpegMs: 0, outputsMs: 0 }, ffprobeRuns: 0 };
    const { phases } = stats;
    const storeDeadlineMs = this.#storageRetry?.deadline() ?? 0;
    try {
      let t = performance.now();
      const source = await this.#stored('fetch source segment', () => this.#storage.getFile(job.sourceKey), storeDeadlineMs);
      phases.fetchMs = Math.round(performance.now() - t);
      let encoded: { source: SourceSegmentInfo; outputs: { fitted: FittedRendition; path: string }[] };
      try {
        encoded = await this.#encode(job, source.path, jobDir, log, stats);
      } finally {
        await source.release();
      }
      t = performance.now();
      const renditions = await Promise.all(encoded.outputs.map((e) => this.#measureAndStore(job, e.fitted, e.path, encoded.source, log, stats, storeDeadlineMs)));
      phases.outputsMs = Math.round(performance.now() - t);
      const elapsedMs = Math.round(performance.now() - startedMs);
      const realTimeRatio = Number((job.durationMs / Math.max(elapsedMs, 1)).toFixed(2));
      log.info({ renditions: renditions.length, durationMs: job.durationMs, elapsedMs, realTimeRatio, phases, ffprobeRuns: stats.ffprobeRuns }, 'segment transcoded');
      return { manifestID: job.manifestID, seq: job.seq, renditions, elapsedMs };
    } finally {
      await rm(jobDir, { recursive: true, force: true });
    }
  }

  /**
   * The source measurement: the job's (`job.source`, from the gateway's ingest probe) when it
   * is present and well-formed, else ffprobe of the source file (jobs queued by an older gateway).
   */
  async #sourceInfo(job: TranscodeJob, sourcePath: string, log: Logger, stats: JobStats): Promise<SourceSegmentInfo> {
    if (job.source !== undefined) {
      const carried = parseSourceSegmentInfo(job.source);
      if (carried) return carried;
      log.warn({ source: JSON.stringify(job.source).slice(0, 300) }, 'job carries a malformed source measurement; probing the source');
    }
    const t = performance.now();
    stats.ffprobeRuns += 1;
    const probe = await probeSegment(sourcePath, this.#probe);
    stats.phases.probeMs = Math.round(performance.now() - t);
    const info = pickSourceSegmentInfo(probe);
    if (!info) throw new GatewayError('UNDECODABLE_MEDIA', 'segment is not decodable media: no video stream');
    return info;
  }

  /** Measures the source (or takes the job's measurement), fits the ladder and runs ffmpeg; returns the fitted renditions and their output files. */
  async #encode(job: TranscodeJob, sourcePath: string, jobDir: string, log: Logger, stats: JobStats):
    Promise<{ source: SourceSegmentInfo; outputs: { fitted: FittedRendition; path: string }[] }> {
    const info = await this.#sourceInfo(job, sourcePath, log, stats);
    const source = info.video;

    const fitted: FittedRendition[] = [];
    for (const profile of job.profiles) {
      const f = fitRendition(profile, source);
      if (f) fitted.push(f);
      else log.debug({ rendition: profile.name, requested: `${profile.width}x${profile.height}`, source: `${source.width}x${source.height}` }, 'rendition omitted: would upscale');
    }
    if (fitted.length === 0) return { source: info, outputs: [] };

    // File names by index: rendition names are validated elsewhere, but paths never depend on them.
    const outputs = fitted.map((rendition, i) => ({ rendition, path: join(jobDir, `${i}.ts`) }));
    const mark = await this.#watermark(job, source, log, stats);
    const invocation = buildLadderInvocation({
      inputPath: sourcePath, outputs, sourceAudioCodec: info.audio?.codec, x264Preset: this.#preset,
      ...(source.rotationDeg ? { sourceRotationDeg: source.rotationDeg } : {}),
      ...(mark ? { watermark: mark.watermark } : {}),
    });
    const t = performance.now();
    try {
      await this.#runner.run(invocation, { timeoutMs: this.#timeoutMs, signal: this.#abort.signal });
      stats.phases.ffmpegMs = Math.round(performance.now() - t);
    } catch (err) {
      if (isGatewayError(err)) throw err;
      const reason = err instanceof FfmpegRunError ? err.reason : 'spawn';
      const tail = err instanceof FfmpegRunError ? err.stderrTail : String(err);
      log.warn({ reason, stderrTail: tail }, 'ffmpeg failed');
      const lastLine = (tail.split('\n').pop() ?? '').replaceAll(jobDir, '<out>').replaceAll(sourcePath, '<source>').slice(0, 300);
      const what = err instanceof FfmpegRunError && err.reason === 'exit' ? `ffmpeg exited with code ${err.exitCode}` : `ffmpeg ${reason}`;
      throw new GatewayError('TRANSCODE_FAILED', lastLine ? `${what}: ${lastLine}` : what, { cause: err });
    } finally {
      await mark?.release();
    }
    return { source: info, outputs: outputs.map((o) => ({ fitted: o.rendition, path: o.path })) };
  }

  /**
   * The job's watermark as the ladder draws it, its image fetched from the object store (through
   * the storage retry: the image was checked and stored when the stream was configured, so only
   * an outage makes it unavailable, as it would the source). A malformed spec (a defect of the
   * gateway that wrote the job) is logged and the segment transcoded without a mark rather than
   * failing the stream.
   */
  async #watermark(job: TranscodeJob, source: SourceSegmentInfo['video'], log: Logger, stats: JobStats):
    Promise<{ watermark: LadderWatermark; release: () => Promise<void> } | undefined> {
    if (job.watermark === undefined) return undefined;
    const spec = parseWatermarkSpec(job.watermark);
    if (!spec) {
      log.error({ watermark: JSON.stringify(job.watermark).slice(0, 300) }, 'job carries a malformed watermark; transcoding without it');
      return undefined;
    }
    const sourceWidthPx = displayedSize(source).width;
    if (spec.kind === 'text') return { watermark: { spec, sourceWidthPx }, release: async () => undefined };
    const t = performance.now();
    const image = await this.#stored('fetch watermark image', () => this.#storage.getFile(spec.imageKey), this.#storageRetry?.deadline() ?? 0);
    stats.phases.fetchMs += Math.round(performance.now() - t);
    return { watermark: { spec, imagePath: image.path, sourceWidthPx }, release: image.release };
  }

  /** `op` through the storage retry (until `deadlineMs`), or once without one. */
  #stored<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T> {
    return this.#storageRetry ? this.#storageRetry.run(what, op, deadlineMs) : op();
  }

  async #measureAndStore(job: TranscodeJob, fitted: FittedRendition, path: string, source: SourceSegmentInfo, log: Logger, stats: JobStats,
    storeDeadlineMs: number): Promise<RenditionSegment> {
    const name = fitted.profile.name;
    let measured: Measured | undefined;
    if (fitted.profile.encoder === 'H.264') {
      try {
        measured = await measureH264Output(fitted, path, source);
      } catch (err) {
        // Not what ts-measure reads exactly: ffprobe decides, as before.
        const reason = err instanceof TsMeasureError ? `${err.failure}: ${err.message}` : String(err);
        log.warn({ rendition: name, reason }, 'output not measurable without ffprobe; probing it');
      }
    }
    if (!measured) {
      stats.ffprobeRuns += 1;
      measured = await probeOutput(name, path, this.#probe);
    }
    const key = renditionKeyBeside(job.sourceKey, name);
    await this.#stored('store rendition segment', () => this.#storage.putFile(key, path), storeDeadlineMs);
    return {
      rendition: name, key, width: measured.width, height: measured.height, frames: measured.frames, bytes: measured.bytes,
      durationMs: job.durationMs, codecs: measured.codecs, frameRate: measured.frameRate,
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

/** What is measured of one output file. */
export type Measured = Pick<RenditionSegment, 'width' | 'height' | 'frames' | 'bytes' | 'codecs' | 'frameRate'>;

/**
 * An H.264 output measured without ffprobe (ts-measure.ts), with the values ffprobe would
 * report: see {@link h264OutputMeasured}.
 * @throws TsMeasureError as {@link h264OutputMeasured}; the file system's error when it cannot be read.
 */
async function measureH264Output(fitted: FittedRendition, path: string, source: SourceSegmentInfo): Promise<Measured> {
  return h264OutputMeasured(fitted, await measureTsFile(path), source);
}

/**
 * The measurements of an H.264 rendition output from its ts-measure reading, with the values
 * ffprobe would report: frames and bytes from the data, the video codecs part from its SPS,
 * width/height the rendition's (checked against the SPS), the frame rate the rendition was
 * encoded at (ffprobe's `r_frame_rate` of our outputs is that rate: checked by
 * test/integration/media/ts-measure.test.ts), the audio codecs part from the source.
 * @throws TsMeasureError when the SPS size is not the requested one, or its audio stream is
 *   not the expected (one ADTS AAC stream iff the source has audio).
 */
export function h264OutputMeasured(fitted: FittedRendition, m: TsVideoMeasurement, source: SourceSegmentInfo): Measured {
  if (m.width !== fitted.width || m.height !== fitted.height) {
    throw new TsMeasureError('unsupported', `SPS picture size ${m.width}x${m.height} is not the requested ${fitted.width}x${fitted.height}`);
  }
  const others = m.streams.filter((s) => s.streamType !== STREAM_TYPE_H264).map((s) => s.streamType);
  const expected = source.audio ? [STREAM_TYPE_ADTS_AAC] : [];
  if (others.join() !== expected.join()) {
    throw new TsMeasureError('unsupported', `non-video stream_types [${others.join(',')}], expected [${expected.join(',')}]`);
  }
  const audio = renditionAudioCodecs(source.audio);
  return {
    width: m.width,
    height: m.height,
    frames: m.frames,
    bytes: m.bytes,
    codecs: audio ? `${m.videoCodecs},${audio}` : m.videoCodecs,
    frameRate: fitted.fpsNum / fitted.fpsDen,
  };
}

/**
 * An output measured by ffprobe (HEVC renditions, and the fallback for anything ts-measure refuses).
 * @throws GatewayError TRANSCODE_FAILED when ffprobe cannot read it or it has no video.
 */
async function probeOutput(name: string, path: string, options: ProbeOptions): Promise<Measured> {
  let out;
  try {
    out = await probeSegment(path, options);
  } catch (err) {
    throw new GatewayError('TRANSCODE_FAILED', `output of rendition ${name} is unreadable`, { cause: err });
  }
  if (!out.video) throw new GatewayError('TRANSCODE_FAILED', `output of rendition ${name} has no video`);
  return {
    width: out.video.width,
    height: out.video.height,
    frames: out.video.frames,
    bytes: out.bytes,
    codecs: out.codecs,
    frameRate: out.video.fpsNum / out.video.fpsDen,
  };
}
