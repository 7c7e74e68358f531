/**
 * Measures a media segment with ffprobe (spawned through the child supervisor, JSON output; fluent-ffmpeg's
 * ffprobe wrapper adds nothing here) and derives the RFC 6381 `CODECS` string that the
 * HLS master playlist advertises (docs/wire-contract.md §5).
 *
 * One ffprobe run per segment: `-count_packets -show_format -show_streams -show_data -of json`.
 * `-show_data` adds each stream's extradata as a hex dump; for H.264/HEVC in MPEG-TS ffmpeg
 * fills it with the parameter sets (SPS/PPS, VPS/SPS/PPS) in Annex-B form while probing, so
 * the exact profile/constraint/level bytes come from the first SPS NAL unit without a second
 * process or a TS parser of our own. Packets are counted, never listed: with `-show_data`,
 * ffprobe hex-dumps every listed packet's payload (even when only some packet fields are
 * selected), which tripled the CPU time of a probe (2 s 1080p30 6 Mb/s segment: 0.26-0.32 → 0.09-0.11
 * CPU s, where starting ffprobe alone takes ~0.07; bench/throughput.ts) — and every segment is
 * probed five times (the gateway once, the transcoder for the source and each rendition).
 * Since then the transcoder normally runs no ffprobe: the gateway's probe travels with the job
 * and H.264 outputs are measured by ts-measure.ts; this module stays the reference and the
 * fallback for both.
 *
 * The pure codec helpers (HEVC and audio codec strings, hex dumps, private-stream sniffing)
 * are in codec-strings.ts, H.264's in h264.ts.
 */
import { stat } from 'node:fs/promises';
import { GatewayError } from '../errors/gateway-error.ts';
import { oneRunSupervisor, type ChildSupervisor, type SupervisedChild } from './child-supervisor.ts';
import { findH264Sps, h264CodecString, h264CodecStringFromNames } from './h264.ts';
import { audioCodecString, findHevcSps, hevcCodecString, parseFfprobeHexDump, sniffPrivateCodec } from './codec-strings.ts';
import { demuxerInputArgs, inspectSegmentFile, type SegmentDemuxer } from './media-input.ts';

export interface VideoProbe {
  readonly width: number;
  readonly height: number;
  /** Frame rate fraction (ffprobe `r_frame_rate`, else `avg_frame_rate`). */
  readonly fpsNum: number;
  readonly fpsDen: number;
  /** Video packets in the file (ffprobe `-count_packets`); one packet is one frame for H.264/HEVC in MPEG-TS. */
  readonly frames: number;
  /** ffprobe `codec_name`, e.g. `h264`, `hevc`. */
  readonly codec: string;
  /** ffprobe profile name, e.g. `High`, `Main`; '' when unknown. */
  readonly profile: string;
  /** ffprobe `pix_fmt`, e.g. `yuv420p`, `yuv420p10le`; '' when unknown. */
  readonly pixelFormat: string;
  /**
   * Clockwise rotation in degrees (0, 90, 180 or 270) a player applies to display the picture
   * upright, from the stream's display matrix (MP4 `tkhd` matrix; MPEG-TS cannot carry one):
   * ffprobe's side-data `rotation` is counter-clockwise, so this is its negation modulo 360,
   * the angle ffmpeg's own autorotation turns the picture by (fftools `get_rotation`). 0 without
   * a display matrix; angles that are not a multiple of 90 are rounded to the nearest one.
   */
  readonly rotationDeg: 0 | 90 | 180 | 270;
}

export interface AudioProbe {
  /** ffprobe `codec_name`, e.g. `aac`, `mp3`. */
  readonly codec: string;
  /** ffprobe profile name, e.g. `LC`, `HE-AAC`, `HE-AACv2`; '' when unknown. */
  readonly profile: string;
  readonly channels: number;
  readonly sampleRate: number;
}

export interface SegmentProbe {
  /** The first video stream (cover art excluded); absent for audio-only files. */
  readonly video?: VideoProbe;
  /** The first audio stream; absent when there is none. */
  readonly audio?: AudioProbe;
  /** Container duration (ffprobe `format.duration`) in milliseconds, rounded; 0 when unknown. */
  readonly durationMs: number;
  /** File size in bytes. */
  readonly bytes: number;
  /** RFC 6381 codecs of the video then the audio stream, comma-separated, e.g. `avc1.64001f,mp4a.40.2`; codecs without a known form are left out. */
  readonly codecs: string;
  /** Video frame rate in frames per second (`fpsNum / fpsDen`); 0 without video. */
  readonly frameRate: number;
  /** ffprobe `format_name`, e.g. `mpegts`. */
  readonly formatName: string;
}

export interface ProbeOptions {
  /** ffprobe executable; default `ffprobe` (looked up in PATH). */
  readonly ffprobePath?: string;
  /** Wall-time limit in milliseconds; default 15000. */
  readonly timeoutMs?: number;
  /**
   * What the file must be, by ffmpeg demuxer: default `mpegts` (every segment once rewrapped);
   * `mov` for a pushed `.mp4` body (one whose bytes are WebM is read as `matroska`, so its
   * codec can be named). Forced, never guessed (media-input.ts).
   */
  readonly demuxer?: SegmentDemuxer;
  /** Supervisor of the ffprobe child; default one of its own (child-supervisor.ts `oneRunSupervisor`). */
  readonly supervisor?: ChildSupervisor;
}

/** Containers accepted as segments: MPEG-TS and the MP4 family (docs/wire-contract.md §4: `.ts` or `.mp4`). */
const SEGMENT_FORMATS = new Set(['mpegts', 'mp4', 'mov']);

const MAX_PROBE_OUTPUT_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// ffprobe

interface FfprobeStream {
  index?: number;
  codec_type?: string;
  codec_name?: string;
  profile?: string;
  level?: number;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_read_packets?: string;
  channels?: number;
  sample_rate?: string;
  extradata?: string;
  pix_fmt?: string;
  codec_tag?: string;
  disposition?: { attached_pic?: number };
  side_data_list?: { side_data_type?: string; rotation?: number }[];
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string };
}

function parseFraction(text: string | undefined): [number, number] | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(text ?? '');
  if (!m) return undefined;
  const num = Number(m[1]);
  const den = Number(m[2]);
  return num > 0 && den > 0 ? [num, den] : undefined;
}

function undecodable(why: string): GatewayError {
  return new GatewayError('UNDECODABLE_MEDIA', `segment is not decodable media: ${why}`);
}

/** Default probe: `-count_packets -show_format -show_streams -show_data` (see the module comment). */
const SEGMENT_PROBE_ARGS = ['-count_packets', '-show_format', '-show_streams', '-show_data'];

function runFfprobe(path: string, options: ProbeOptions, what: readonly string[] = SEGMENT_PROBE_ARGS): Promise<FfprobeOutput> {
  const args = ['-v', 'error', '-hide_banner', ...demuxerInputArgs(options.demuxer ?? 'mpegts'), ...what, '-of', 'json', path];
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    let child: SupervisedChild;
    try {
      child = (options.supervisor ?? oneRunSupervisor()).spawn(options.ffprobePath ?? 'ffprobe', args, {
        name: 'ffprobe',
        onStderrLine: (line) => {
          if (err.length < 4096) err += `${line}\n`;
        },
      });
    } catch (e) {
      reject(new GatewayError('TRANSCODE_FAILED', `ffprobe could not be started: ${(e as Error).message}`, { cause: e }));
      return;
    }
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let failure: GatewayError | undefined;
    const timer = setTimeout(() => {
      failure = new GatewayError('TRANSCODE_FAILED', `ffprobe timed out after ${timeoutMs} ms`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.process.stdout!.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_PROBE_OUTPUT_BYTES) {
        failure ??= undecodable(`ffprobe output exceeds ${MAX_PROBE_OUTPUT_BYTES} bytes`);
        child.kill('SIGKILL');
        return;
      }
      out.push(chunk);
    });
    void child.exited.then(({ code, spawnError }) => {
      clearTimeout(timer);
      if (spawnError) {
        reject(new GatewayError('TRANSCODE_FAILED', `ffprobe could not be started: ${spawnError.message}`, { cause: spawnError }));
        return;
      }
      if (failure) { reject(failure); return; }
      if (code !== 0) {
        // ffprobe prefixes its reason with the path ("<path>: Invalid data found ..."); keep the reason.
        const line = err.trim().split('\n').pop() ?? '';
        const reason = line.startsWith(`${path}: `) ? line.slice(path.length + 2) : line;
        reject(undecodable(`ffprobe: ${reason || `exit code ${String(code)}`}`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as FfprobeOutput);
      } catch {
        reject(undecodable('ffprobe output is not JSON'));
      }
    });
  });
}

function videoCodecString(stream: FfprobeStream): string | undefined {
  const extradata = stream.extradata ? parseFfprobeHexDump(stream.extradata) : new Uint8Array(0);
  if (stream.codec_name === 'h264') {
    const sps = findH264Sps(extradata);
    return sps ? h264CodecString(sps) : h264CodecStringFromNames(stream.profile ?? '', stream.level ?? 0);
  }
  if (stream.codec_name === 'hevc') {
    const sps = findHevcSps(extradata);
    if (sps) {
      try { return hevcCodecString(sps); } catch { /* fall through to the names */ }
    }
    // Best effort: Main (1, compat 6) / Main 10 (2, compat 4), main tier, no constraint bytes.
    const main10 = stream.profile === 'Main 10';
    return `hvc1.${main10 ? '2.4' : '1.6'}.L${stream.level ?? 0}`;
  }
  return undefined;
}

/** Video codecs a segment may carry: what HLS in MPEG-TS lists (RFC 8216 §3.2, ISO/IEC 13818-1 stream types 0x1b/0x24) and the source rendition serves as is. */
export const SUPPORTED_VIDEO_CODECS: ReadonlySet<string> = new Set(['h264', 'hevc']);

/** Packets of unidentified streams inspected by {@link identifyPrivateStreams}. */
const SNIFF_PACKETS = 16;

/**
 * Second ffprobe, on the refusal path only: the first {@link SNIFF_PACKETS} packets with their
 * payloads, to name the codec of streams ffprobe reports as data (see {@link sniffPrivateCodec}).
 * @returns the sniffed codec names by stream index (streams it cannot name are absent).
 */
async function identifyPrivateStreams(path: string, options: ProbeOptions): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  let out: { packets?: { stream_index?: number; data?: string }[] };
  try {
    out = await runFfprobe(path, options, ['-show_entries', 'packet=stream_index,data', '-show_data', '-read_intervals', `%+#${SNIFF_PACKETS}`]) as typeof out;
  } catch {
    return found;
  }
  for (const p of out.packets ?? []) {
    if (p.stream_index === undefined || found.has(p.stream_index) || !p.data) continue;
    const codec = sniffPrivateCodec(parseFfprobeHexDump(p.data));
    if (codec) found.set(p.stream_index, codec);
  }
  return found;
}

function unsupportedCodec(codec: string): GatewayError {
  return undecodable(`unsupported codec ${codec.slice(0, 32)}: video must be H.264 or HEVC (MPEG-TS or MP4 segments)`);
}

/**
 * The display rotation of a stream (see {@link VideoProbe.rotationDeg}): the negated
 * side-data rotation, rounded to a multiple of 90 and taken modulo 360.
 */
export function rotationFromSideData(sideData: readonly { rotation?: number }[] | undefined): 0 | 90 | 180 | 270 {
  const ccw = sideData?.find((d) => typeof d.rotation === 'number' && Number.isFinite(d.rotation))?.rotation ?? 0;
  const cw = ((Math.round(-ccw / 90) * 90) % 360 + 360) % 360;
  return cw as 0 | 90 | 180 | 270;
}

/**
 * Probes one segment file.
 *
 * @param path absolute path of an MPEG-TS or MP4 segment
 * @returns measured video (first non-cover-art stream) and audio (first stream), container
 *   duration (ms), size (bytes) and the RFC 6381 codecs string
 * @throws GatewayError UNDECODABLE_MEDIA (not retryable) when the file is not the container
 *   `options.demuxer` names, or is a playlist or other indirect format (media-input.ts
 *   `inspectSegmentFile`: the message names what it is); when ffprobe cannot read the file
 *   (random bytes, empty file); when the video codec is not H.264 or HEVC, with the message
 *   `unsupported codec <name>` (ffprobe's `codec_name`, or `vp8`/`vp9`/`av1` sniffed from a
 *   private-data stream of an MPEG-TS file, see {@link sniffPrivateCodec}); when the container
 *   is not MPEG-TS/MP4 (e.g. a PNG, or WebM with a supported codec); when it holds no audio or
 *   video stream; or when the video stream has no dimensions or frame rate. The message names
 *   what was wrong.
 * @throws GatewayError TRANSCODE_FAILED (retryable) when ffprobe cannot be started or times out.
 */
export async function probeSegment(path: string, options: ProbeOptions = {}): Promise<SegmentProbe> {
  // The demuxer the bytes are read with (WebM where MP4 was expected is read as Matroska to name its codec).
  options = { ...options, demuxer: await inspectSegmentFile(path, options.demuxer ?? 'mpegts') };
  const data = await runFfprobe(path, options);
  const formatName = data.format?.format_name ?? '';
  const streams = data.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  const a = streams.find((s) => s.codec_type === 'audio');
  const unsupported = v?.codec_name !== undefined && !SUPPORTED_VIDEO_CODECS.has(v.codec_name) ? v.codec_name : undefined;
  if (!formatName.split(',').some((f) => SEGMENT_FORMATS.has(f))) {
    // Both named: a WebM push reads "unsupported codec vp8 in container matroska,webm".
    throw undecodable(`${unsupported ? `unsupported codec ${unsupported.slice(0, 32)} in ` : ''}container "${formatName.slice(0, 64)}": segments must be MPEG-TS or MP4 with H.264 or HEVC video`);
  }
  if (unsupported) throw unsupportedCodec(unsupported);
  if (!v) {
    const unknown = streams.filter((s) => s.codec_type === 'data' || (s.codec_type === 'video' && !s.codec_name));
    if (unknown.length > 0) {
      const sniffed = await identifyPrivateStreams(path, options);
      const named = unknown.map((s) => sniffed.get(s.index ?? -1)).find((c) => c !== undefined);
      if (named) throw unsupportedCodec(named);
      if (!a) throw undecodable(`no audio or video stream: ${unknown.length} stream(s) of unidentified codec (MPEG-TS private data); video must be H.264 or HEVC`);
    }
  }
  if (!v && !a) throw undecodable('no audio or video stream');

  let video: VideoProbe | undefined;
  if (v) {
    if (!v.codec_name) throw undecodable('video stream has no known decoder');
    if (!v.width || !v.height) throw undecodable(`${v.codec_name} video stream has no dimensions (no decodable frame)`);
    const fps = parseFraction(v.r_frame_rate) ?? parseFraction(v.avg_frame_rate);
    if (!fps) throw undecodable(`${v.codec_name} video stream has no frame rate`);
    video = {
      width: v.width,
      height: v.height,
      fpsNum: fps[0],
      fpsDen: fps[1],
      frames: Number(v.nb_read_packets ?? 0) || 0,
      codec: v.codec_name,
      profile: v.profile ?? '',
      pixelFormat: v.pix_fmt ?? '',
      rotationDeg: rotationFromSideData(v.side_data_list),
    };
  }

  let audio: AudioProbe | undefined;
  if (a) {
    audio = {
      codec: a.codec_name ?? '',
      profile: a.profile ?? '',
      channels: a.channels ?? 0,
      sampleRate: Number(a.sample_rate ?? 0),
    };
  }

  const codecs = [v ? videoCodecString(v) : undefined, audio ? audioCodecString(audio.codec, audio.profile) : undefined]
    .filter((c): c is string => c !== undefined)
    .join(',');
  const durationS = Number(data.format?.duration ?? 0);
  const { size } = await stat(path);
  return {
    ...(video ? { video } : {}),
    ...(audio ? { audio } : {}),
    durationMs: Number.isFinite(durationS) ? Math.round(durationS * 1000) : 0,
    bytes: size,
    codecs,
    frameRate: video ? video.fpsNum / video.fpsDen : 0,
    formatName,
  };
}
