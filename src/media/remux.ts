/**
 * Container rewraps with stream copy (no re-encode): an HTTP-pushed MP4 segment becomes
 * MPEG-TS for HLS, and a rendition becomes MP4 for a `.mp4` push's multipart reply.
 * Timestamps are kept (`-copyts`, no mux delay) so pushed segments stay continuous.
 */
import { GatewayError } from '../errors/gateway-error.ts';
import type { FfmpegExecutor } from './ffmpeg-runner.ts';
import type { FfmpegInvocation } from './invocation.ts';
import { demuxerInputArgs, inspectSegmentFile, type SegmentDemuxer } from './media-input.ts';

const GLOBAL = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-copyts'];

/**
 * MP4 → MPEG-TS rewrap. No explicit `-bsf:v`: ffmpeg's mpegts muxer inserts the Annex-B
 * conversion itself for MP4-style H.264 or HEVC (libavformat/mpegtsenc.c `mpegts_check_bitstream`:
 * `h264_mp4toannexb` / `hevc_mp4toannexb`); a forced `h264_mp4toannexb` refused every HEVC MP4.
 * The H.264 output is byte-identical either way (checked with ffmpeg 5.1).
 * The input is read with `demuxer` only (`mov` for MP4; `matroska` for WebM sent as `.mp4`,
 * as media-input.ts `inspectSegmentFile` finds) and opens nothing else (media-input.ts).
 */
export function mpegTsRemuxInvocation(inputPath: string, outputPath: string, demuxer: SegmentDemuxer = 'mov'): FfmpegInvocation {
  return {
    inputOptions: [...GLOBAL, ...demuxerInputArgs(demuxer)], inputPath, filterComplex: '',
    outputs: [{ options: ['-map', '0:v:0', '-map', '0:a:0?', '-c', 'copy', '-muxdelay', '0', '-muxpreload', '0', '-f', 'mpegts'], path: outputPath }],
  };
}

/** Rewraps a rendition (MPEG-TS written by our transcoder) as MP4. */
export function mp4RemuxInvocation(inputPath: string, outputPath: string): FfmpegInvocation {
  return {
    inputOptions: [...GLOBAL, ...demuxerInputArgs('mpegts')], inputPath, filterComplex: '',
    outputs: [{ options: ['-map', '0', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4'], path: outputPath }],
  };
}

export class Remuxer {
  readonly #runner: FfmpegExecutor;
  readonly #timeoutMs: number;

  /** @param timeoutMs wall-clock limit per rewrap; default 20000. */
  constructor(runner: FfmpegExecutor, timeoutMs = 20_000) {
    this.#runner = runner;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * @throws GatewayError UNDECODABLE_MEDIA when the input is not a self-contained MP4 (a playlist,
   *   another container, external data references: named by media-input.ts `inspectSegmentFile`)
   *   or cannot be read as MP4 with H.264 or HEVC video.
   */
  async toMpegTs(inputPath: string, outputPath: string): Promise<void> {
    const demuxer = await inspectSegmentFile(inputPath, 'mov');
    try {
      await this.#runner.run(mpegTsRemuxInvocation(inputPath, outputPath, demuxer), { timeoutMs: this.#timeoutMs });
    } catch (err) {
      throw new GatewayError('UNDECODABLE_MEDIA', `cannot read the pushed MP4 segment: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
  }

  /** @throws GatewayError TRANSCODE_FAILED */
  async toMp4(inputPath: string, outputPath: string): Promise<void> {
    try {
      await this.#runner.run(mp4RemuxInvocation(inputPath, outputPath), { timeoutMs: this.#timeoutMs });
    } catch (err) {
      throw new GatewayError('TRANSCODE_FAILED', 'cannot rewrap a rendition as MP4', { cause: err });
    }
  }
}
