/**
 * The ffmpeg command for one source segment and a whole ladder: decode once, split the
 * decoded video, scale (and rate-convert) per rendition, encode each, and write one
 * MPEG-TS file per rendition, all in one process (docs/architecture.md, live stream step 4).
 * Pure: no I/O, no fluent-ffmpeg.
 *
 * Timestamps: output PTS equal source PTS, so consecutive segments of a rendition
 * play back seamlessly (docs/wire-contract.md §5). Three settings do it, each verified with
 * ffprobe on ffmpeg 5.1 (see test/integration/transcode):
 *   - `-copyts`: keep the input timestamps instead of starting the output at 0;
 *   - `-enc_time_base:v 1/90000`: without it the encoder's time base is 1/fps and every
 *     PTS is rounded to a multiple of 1/fps (a live segmenter's PTS are not on that grid;
 *     e.g. 3.483333 s became 3.5 s);
 *   - `-muxdelay 0 -muxpreload 0`: without them the mpegts muxer shifts every timestamp
 *     by +1.4 s.
 * With `fps=` (a frame-rate change) output PTS lie on the absolute 1/fps grid, so they
 * are within one output frame of the source and still continuous across segments.
 */
import type { FittedRendition } from '../domain/profile.ts';
import { watermarkPlacement, type WatermarkSpec } from '../domain/watermark.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import type { FfmpegInvocation, FfmpegOutput } from '../media/invocation.ts';
import { invocationToArgs } from '../media/invocation.ts';
import { demuxerInputArgs } from '../media/media-input.ts';
import { DEFAULT_X264_PRESET, isX264Preset, type LiveEncoderTuning, type X264Preset } from '../domain/x264-preset.ts';

/** The x264/x265 presets, one list shared with the configuration (src/domain/x264-preset.ts). */
export { X264_PRESETS, DEFAULT_X264_PRESET, isX264Preset, LIVE_ENCODER_TUNINGS, type LiveEncoderTuning, type X264Preset } from '../domain/x264-preset.ts';

/** Default GOP length in seconds: one keyframe per ~2 s segment (docs/wire-contract.md §3, segments of about 2 s). */
export const DEFAULT_GOP_SECONDS = 2;

/** Bitrate of AAC audio when the source audio is not AAC and must be encoded, bits per second. */
export const ENCODED_AUDIO_BITRATE_BPS = 128_000;

/** Encoder time base for video: MPEG-TS's 90 kHz clock, so source PTS survive unrounded. */
export const VIDEO_ENCODER_TIME_BASE = '1/90000';

/** One rendition to produce and the file it goes to. */
export interface LadderOutput {
  readonly rendition: FittedRendition;
  /** Absolute path of the MPEG-TS file to write (overwritten if present). */
  readonly path: string;
}

export interface LadderArgsOptions {
  /** Absolute path of the source segment: MPEG-TS (RTMP segments, pushed `.ts`, pushed `.mp4` after its rewrap); read with the `mpegts` demuxer only. */
  readonly inputPath: string;
  /** At least one; in ladder order. */
  readonly outputs: readonly LadderOutput[];
  /**
   * ffprobe `codec_name` of the source's first audio stream (`aac`, `mp3`, `ac3`, ...), or
   * `undefined` when the source has no audio. `aac` is copied into every rendition (keeps
   * the audio bit-exact and continuous across segments); anything else is encoded to AAC-LC
   * at {@link ENCODED_AUDIO_BITRATE_BPS}; no audio gives video-only outputs.
   */
  readonly sourceAudioCodec: string | undefined;
  /**
   * Clockwise rotation in degrees to display the source upright (its display matrix, which the
   * MPEG-TS source segment no longer carries; default 0). The decoded picture is turned once,
   * before the split (see {@link rotationFilter}); the renditions' sizes must already be fitted
   * to the displayed size (profile.ts `fitRendition` does).
   */
  readonly sourceRotationDeg?: 0 | 90 | 180 | 270;
  /** Encoder preset for libx264 and libx265; default {@link DEFAULT_X264_PRESET}. */
  readonly x264Preset?: X264Preset;
  /** ffmpeg `-loglevel`; default `error`. */
  readonly logLevel?: 'error' | 'warning';
  /** A watermark drawn on every rendition (see {@link LadderWatermark}); absent: none. */
  readonly watermark?: LadderWatermark;
}

/**
 * A watermark as the ladder draws it: the resolved spec (domain/watermark.ts), the local file
 * of its image (kind `image`: fetched from the object store by the transcoder), and the
 * source's displayed width in pixels (a margin given in source pixels scales with each rendition).
 */
export interface LadderWatermark {
  readonly spec: WatermarkSpec;
  /** Local path of the image file (PNG or JPEG, as `spec.imageFormat` says); required for kind `image`. */
  readonly imagePath?: string;
  readonly sourceWidthPx: number;
}

/**
 * ffmpeg input options for a watermark image: only the local file may be opened and the
 * demuxer is forced (`png_pipe` / `jpeg_pipe`: one image read as one frame, no file-name
 * pattern expansion as `image2` would do).
 */
export function watermarkInputOptions(format: 'png' | 'jpeg'): string[] {
  return ['-protocol_whitelist', 'file', '-f', format === 'png' ? 'png_pipe' : 'jpeg_pipe'];
}

/** The extra ffmpeg input of a watermark, when it has an image. @throws GatewayError INTERNAL when an image watermark has no file. */
function watermarkInput(watermark: LadderWatermark | undefined): { options: string[]; path: string } | undefined {
  if (watermark === undefined || watermark.spec.kind !== 'image') return undefined;
  if (watermark.imagePath === undefined) throw new GatewayError('INTERNAL', 'image watermark without its image file');
  return { options: watermarkInputOptions(watermark.spec.imageFormat), path: watermark.imagePath };
}

/** A number for a filter option: at most 3 decimals, never exponent notation. */
function filterNumber(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/**
 * The drawtext filter of a text watermark for one rendition (https://ffmpeg.org/ffmpeg-filters.html#drawtext-1):
 * font `Sans` through fontconfig (Debian: DejaVu Sans), white at the opacity with a black
 * border, `expansion=none` (no `%{...}` in the text), placed by expressions on the measured
 * text size (`tw`, `th`) and the frame (`w`, `h`). The text is quoted for the filter-graph
 * level; domain/watermark.ts allows no character that would end the quote or an option.
 */
function drawtextFilter(spec: Extract<WatermarkSpec, { kind: 'text' }>, rendition: FittedRendition, sourceWidthPx: number): string {
  const p = watermarkPlacement(spec, rendition, sourceWidthPx);
  const m = p.marginPx;
  const [x, y] = ({
    'top-left': [`${m}`, `${m}`],
    'top-right': [`w-tw-${m}`, `${m}`],
    'bottom-left': [`${m}`, `h-th-${m}`],
    'bottom-right': [`w-tw-${m}`, `h-th-${m}`],
    center: ['(w-tw)/2', '(h-th)/2'],
  } as const)[spec.position];
  const op = filterNumber(spec.opacity);
  return `drawtext=text='${spec.text}':expansion=none:fontsize=${p.height}:fontcolor=white@${op}:borderw=${Math.max(1, Math.round(p.height / 16))}:bordercolor=black@${op}:x=${x}:y=${y}`;
}

/**
 * Keyframe interval in output frames for a fitted rendition: `default` → round(fps × 2 s),
 * `seconds` → round(fps × seconds), `intra` → 1. Never below 1.
 */
export function gopFrames(rendition: FittedRendition): number {
  const gop = rendition.profile.gop;
  if (gop.kind === 'intra') return 1;
  const seconds = gop.kind === 'seconds' ? gop.seconds : DEFAULT_GOP_SECONDS;
  return Math.max(1, Math.round((rendition.fpsNum / rendition.fpsDen) * seconds));
}

/**
 * The filter that turns a picture clockwise by `rotationDeg` (what ffmpeg's own autorotation
 * inserts for that display matrix, fftools/ffmpeg_filter.c: 90 → `transpose=clock`, 180 →
 * `hflip,vflip`, 270 → `transpose=cclock`); `undefined` for 0.
 */
export function rotationFilter(rotationDeg: 0 | 90 | 180 | 270 | undefined): string | undefined {
  switch (rotationDeg) {
    case 90: return 'transpose=clock';
    case 180: return 'hflip,vflip';
    case 270: return 'transpose=cclock';
    default: return undefined;
  }
}

function videoFilter(rendition: FittedRendition): string {
  const scale = `scale=${rendition.width}:${rendition.height}`;
  // Rate-convert before scaling: dropped frames are never scaled.
  return rendition.changesFps ? `fps=${rendition.fpsNum}/${rendition.fpsDen},${scale}` : scale;
}

function rateControlOptions(rendition: FittedRendition): string[] {
  const { bitrateBps, quality } = rendition.profile;
  const cap = ['-maxrate', String(bitrateBps), '-bufsize', String(bitrateBps * 2)];
  // CRF with a bitrate: the bitrate is the VBV cap (docs/wire-contract.md §3, `quality`).
  return quality > 0 ? ['-crf', String(quality), ...cap] : ['-b:v', String(bitrateBps), ...cap];
}

function videoEncoderOptions(rendition: FittedRendition, preset: X264Preset): string[] {
  const gop = String(gopFrames(rendition));
  const { profile } = rendition;
  if (profile.encoder === 'HEVC') {
    // libx265 ignores -sc_threshold; scenecut=0 is its equivalent. log-level keeps its banner off stderr.
    return [
      '-c:v', 'libx265', '-preset', preset, ...rateControlOptions(rendition),
      '-g', gop, '-keyint_min', gop, '-x265-params', 'log-level=error:scenecut=0',
    ];
  }
  const opts = ['-c:v', 'libx264', '-preset', preset];
  if (profile.profile === 'constrainedhigh') {
    // Livepeer (lpms ffmpeg.go) encodes "constrained high" as profile high with no B-frames.
    // x264 then writes profile_idc 100 without the constraint_set4/5 flags: players see High.
    opts.push('-profile:v', 'high', '-bf', '0');
  } else if (profile.profile !== '') {
    opts.push('-profile:v', profile.profile);
  }
  opts.push(...rateControlOptions(rendition), '-g', gop, '-keyint_min', gop, '-sc_threshold', '0');
  return opts;
}

function audioOptions(sourceAudioCodec: string | undefined): string[] {
  if (sourceAudioCodec === undefined) return [];
  if (sourceAudioCodec === 'aac') return ['-map', '0:a:0', '-c:a', 'copy'];
  return ['-map', '0:a:0', '-c:a', 'aac', '-b:a', String(ENCODED_AUDIO_BITRATE_BPS)];
}

/**
 * Builds the single ffmpeg invocation that transcodes one source segment into every
 * fitted rendition. Shape of the result (3 renditions):
 * `-hide_banner -nostdin -loglevel error -copyts -protocol_whitelist file -f mpegts -i IN -y
 * -filter_complex
 * "[0:v:0]split=3[s0][s1][s2];[s0]scale=W:H[v0];..." ` (with a rotation filter before
 * `split` for a rotated source: `[0:v:0]transpose=clock,split=3...`) then per output `-map [vN]`,
 * audio mapping, encoder options, `-pix_fmt yuv420p -enc_time_base:v 1/90000
 * -muxdelay 0 -muxpreload 0 -f mpegts OUT`. Bitrates in bits per second; `-bufsize` is
 * 2 × bitrate; GOP from {@link gopFrames}.
 *
 * @throws GatewayError INTERNAL when `outputs` is empty; CONFIG_INVALID for an unknown preset.
 */
export function buildLadderInvocation(options: LadderArgsOptions): FfmpegInvocation {
  const { inputPath, outputs, sourceAudioCodec } = options;
  const preset = checkedPreset(options.x264Preset, outputs.length);
  const ffOutputs: FfmpegOutput[] = outputs.map((o, i) => ({ path: o.path, options: renditionOutputOptions(o.rendition, i, sourceAudioCodec, preset) }));
  const image = watermarkInput(options.watermark);
  return {
    // The source holds client bytes: the demuxer is forced and nothing but the file is opened (media-input.ts).
    inputOptions: ['-hide_banner', '-nostdin', '-loglevel', options.logLevel ?? 'error', '-copyts', ...demuxerInputArgs('mpegts')],
    inputPath,
    ...(image ? { extraInputs: [image] } : {}),
    filterComplex: ladderFilterGraph(outputs.map((o) => o.rendition), options.sourceRotationDeg, options.watermark),
    outputs: ffOutputs,
  };
}

/** The preset, checked; and a non-empty ladder. @throws GatewayError CONFIG_INVALID, INTERNAL. */
function checkedPreset(x264Preset: X264Preset | undefined, renditions: number): X264Preset {
  const preset = x264Preset ?? DEFAULT_X264_PRESET;
  if (!isX264Preset(preset)) throw new GatewayError('CONFIG_INVALID', `unknown x264 preset "${String(preset).slice(0, 32)}"`);
  if (renditions === 0) throw new GatewayError('INTERNAL', 'ladder has no renditions to encode');
  return preset;
}

/**
 * `-filter_complex` graph: decode once, rotate once, split, then per rendition rate-convert and
 * scale to `[vN]`. With a watermark, after the scale: an image (input 1) is converted to RGBA,
 * its alpha multiplied by the opacity (`colorchannelmixer=aa=`), split per rendition, scaled to
 * that rendition's placement (domain/watermark.ts `watermarkPlacement`) and overlaid there; a
 * text is drawn with drawtext.
 */
function ladderFilterGraph(renditions: readonly FittedRendition[], rotationDeg: 0 | 90 | 180 | 270 | undefined, watermark?: LadderWatermark): string {
  const chains = renditions.map((r, i) => ({ filter: videoFilter(r), label: `v${i}` }));
  const rotate = rotationFilter(rotationDeg);
  const head = rotate ? `${rotate},` : '';
  if (watermark === undefined) {
    if (chains.length === 1) return `[0:v:0]${head}${chains[0]!.filter}[${chains[0]!.label}]`;
    const splitLabels = chains.map((_, i) => `[s${i}]`).join('');
    return [`[0:v:0]${head}split=${chains.length}${splitLabels}`, ...chains.map((c, i) => `[s${i}]${c.filter}[${c.label}]`)].join(';');
  }
  const n = chains.length;
  // Per rendition, the scaled picture before the mark: `[0:v:0]...scale` alone, or `[sI]scale` after a split.
  const scaled = (i: number): string => (n === 1 ? `[0:v:0]${head}${chains[0]!.filter}` : `[s${i}]${chains[i]!.filter}`);
  const graph: string[] = n === 1 ? [] : [`[0:v:0]${head}split=${n}${chains.map((_, i) => `[s${i}]`).join('')}`];
  const { spec } = watermark;
  if (spec.kind === 'text') {
    renditions.forEach((r, i) => graph.push(`${scaled(i)},${drawtextFilter(spec, r, watermark.sourceWidthPx)}[v${i}]`));
    return graph.join(';');
  }
  const alpha = spec.opacity < 1 ? `,colorchannelmixer=aa=${filterNumber(spec.opacity)}` : '';
  graph.push(`[1:v]format=rgba${alpha}${n === 1 ? '[m0]' : `,split=${n}${chains.map((_, i) => `[m${i}]`).join('')}`}`);
  renditions.forEach((r, i) => {
    const p = watermarkPlacement(spec, r, watermark.sourceWidthPx);
    graph.push(`${scaled(i)}[b${i}]`, `[m${i}]scale=${p.width}:${p.height}[w${i}]`, `[b${i}][w${i}]overlay=x=${p.x}:y=${p.y}[v${i}]`);
  });
  return graph.join(';');
}

/** Options of the output of rendition `index` (mapping `[v<index>]`), up to and including `-f mpegts`. */
function renditionOutputOptions(rendition: FittedRendition, index: number, sourceAudioCodec: string | undefined, preset: X264Preset): string[] {
  return [
    '-map', `[v${index}]`,
    ...audioOptions(sourceAudioCodec),
    ...videoEncoderOptions(rendition, preset),
    '-pix_fmt', 'yuv420p',
    '-enc_time_base:v', VIDEO_ENCODER_TIME_BASE,
    '-muxdelay', '0', '-muxpreload', '0',
    '-f', 'mpegts',
  ];
}

/** {@link buildLadderInvocation} as a plain argument vector (no `ffmpeg` program name). */
export function buildLadderArgs(options: LadderArgsOptions): string[] {
  return invocationToArgs(buildLadderInvocation(options));
}

/** File descriptor of the first rendition's output in {@link buildLiveLadderArgs}; rendition i writes to fd `3 + i`. */
export const LIVE_FIRST_OUTPUT_FD = 3;

/**
 * How much of the live input ffmpeg reads before it starts transcoding, µs (`-analyzeduration`;
 * ffmpeg's default is 5 s, which the first segment of every stream would wait for). 0.5 s is
 * enough for ffmpeg 5.1 to read the H.264 parameters and the AAC sample rate of our sources;
 * 0.1 s left the AAC sample rate unknown (ffprobe on the 1080p30 bench input).
 */
export const LIVE_ANALYZE_DURATION_US = 500_000;

/**
 * Options that bound the frames a live ladder holds (docs/architecture.md, "The live ladder"),
 * measured on the 1080p30 bench input and the default ladder as the frames fed but not yet out
 * when the input pauses: 20 with ffmpeg's and x264's defaults, 9 with these:
 *  - decoder `-threads 2` (frame threads hold threads − 1 frames; the default is cores + 1);
 *  - x264 `-threads 2` (frame threads; default 1.5 × cores per encoder, and a ladder has several);
 *  - x264 `sync-lookahead=1`: the threaded lookahead buffers 1 frame instead of B-frames + 1
 *    (0 would save one more frame but runs the lookahead in ffmpeg's main thread, which then
 *    limits the whole ladder: 0.7-0.8 × raw ffmpeg's throughput in our runs);
 *  - x264 `-rc-lookahead 3` (veryfast's default is 10; x264 keeps it ≥ the B-frames, 3):
 *    frames the rate control and macroblock tree look ahead, each held before encoding.
 * B-frames stay: they set the bit rate needed for a given quality.
 */
export const LIVE_DECODER_OPTIONS: readonly string[] = ['-threads', '2'];
/**
 * Per-output options of a live H.264 rendition under the `throughput` tuning
 * ({@link LiveEncoderTuning}): only the muxer's `-max_interleave_delta 1` of
 * {@link LIVE_X264_OPTIONS}, which costs no throughput; x264 keeps its own threads and lookaheads.
 */
export const LIVE_THROUGHPUT_OUTPUT_OPTIONS: readonly string[] = ['-max_interleave_delta', '1'];
/**
 * Per-output options of a live H.264 rendition that bound what it holds: x264's (see
 * {@link LIVE_DECODER_OPTIONS}) and the muxer's `-max_interleave_delta 1` (µs): ffmpeg's
 * muxer otherwise interleaves by decoding time, holding the copied audio, which leaves the
 * demuxer at once, until the video (one encoder pipeline later) catches up; with it each packet
 * goes out as it comes (the cutter puts audio in its segment by PTS). Measured with
 * `bench/live-ladder.ts --mode held`: 15 → 12 frames held at a boundary. (0 would mean no limit.)
 */
export const LIVE_X264_OPTIONS: readonly string[] = ['-threads', '2', '-rc-lookahead', '3', '-x264-params', 'sync-lookahead=1', ...LIVE_THROUGHPUT_OUTPUT_OPTIONS];

/** Options of {@link buildLiveLadderArgs}: those of {@link LadderArgsOptions} without files. */
export interface LiveLadderArgsOptions extends Omit<LadderArgsOptions, 'inputPath' | 'outputs'> {
  /** At least one; in ladder order. Rendition i is written to fd {@link LIVE_FIRST_OUTPUT_FD} + i. */
  readonly renditions: readonly FittedRendition[];
  /**
   * `latency` (default): {@link LIVE_DECODER_OPTIONS} and {@link LIVE_X264_OPTIONS};
   * `throughput`: ffmpeg's and x264's own threads and lookaheads ({@link LIVE_THROUGHPUT_OUTPUT_OPTIONS}).
   */
  readonly tuning?: LiveEncoderTuning;
}

/**
 * The ffmpeg arguments (no program name) of a live stream's whole ladder in one long-running
 * process (transcode/live-ladder.ts): one continuous MPEG-TS stream on stdin (`pipe:0`), the
 * same filter graph and per-rendition encoder options as {@link buildLadderInvocation} (so
 * sizes, frame counts, codec strings and bit rates are those of the per-segment jobs), and:
 *   - `-force_key_frames source`: an output keyframe wherever the decoded source frame was one,
 *     so every source segment boundary (a source keyframe) starts an output GOP;
 *   - `-flush_packets 1`: the muxer hands every packet to the pipe at once (the default AVIO
 *     buffer of 32 KiB holds ~1 s of a 240p rendition);
 *   - {@link LIVE_ANALYZE_DURATION_US}, and with the `latency` tuning (the default)
 *     {@link LIVE_DECODER_OPTIONS} and, for libx264 outputs, {@link LIVE_X264_OPTIONS}: fewer
 *     frames held, so each segment is out sooner (`throughput`: {@link LIVE_THROUGHPUT_OUTPUT_OPTIONS});
 *   - one MPEG-TS per rendition on `pipe:N`, N = {@link LIVE_FIRST_OUTPUT_FD} + index;
 *   - only the `pipe` protocol may be opened (a watermark image, input 1, only its `file`).
 *
 * @throws GatewayError INTERNAL when `renditions` is empty; CONFIG_INVALID for an unknown preset.
 */
export function buildLiveLadderArgs(options: LiveLadderArgsOptions): string[] {
  const { renditions, sourceAudioCodec } = options;
  const preset = checkedPreset(options.x264Preset, renditions.length);
  const latency = (options.tuning ?? 'latency') === 'latency';
  const args: string[] = [
    '-hide_banner', '-nostdin', '-loglevel', options.logLevel ?? 'error', '-copyts',
    '-analyzeduration', String(LIVE_ANALYZE_DURATION_US), ...(latency ? LIVE_DECODER_OPTIONS : []),
    '-protocol_whitelist', 'pipe', '-f', 'mpegts', '-i', 'pipe:0',
  ];
  const image = watermarkInput(options.watermark);
  if (image) args.push(...image.options, '-i', image.path);
  args.push('-filter_complex', ladderFilterGraph(renditions, options.sourceRotationDeg, options.watermark));
  renditions.forEach((rendition, i) => {
    args.push(...renditionOutputOptions(rendition, i, sourceAudioCodec, preset));
    if (rendition.profile.encoder === 'H.264') args.push(...(latency ? LIVE_X264_OPTIONS : LIVE_THROUGHPUT_OUTPUT_OPTIONS));
    args.push('-force_key_frames', 'source', '-flush_packets', '1', `pipe:${LIVE_FIRST_OUTPUT_FD + i}`);
  });
  return args;
}
