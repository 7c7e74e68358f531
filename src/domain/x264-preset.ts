/**
 * x264/x265 speed presets (the same names in both encoders, https://trac.ffmpeg.org/wiki/Encode/H.264#Preset):
 * the one list that the configuration (`transcode.x264Preset`) accepts and the ladder
 * arguments (src/transcode/ladder-args.ts) pass to ffmpeg. `placebo` is left out: it
 * costs several times `veryslow` for no visible gain and cannot keep up with a live stream.
 */
export const X264_PRESETS = [
  'ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow',
] as const;
export type X264Preset = (typeof X264_PRESETS)[number];

/** Default encoder preset: fast enough for several live renditions per core. */
export const DEFAULT_X264_PRESET: X264Preset = 'veryfast';

/** Whether `value` names an x264/x265 preset of {@link X264_PRESETS}. */
export function isX264Preset(value: string): value is X264Preset {
  return (X264_PRESETS as readonly string[]).includes(value);
}

/**
 * How a live stream's ladder (one long-running ffmpeg, src/transcode/live-ladder.ts) tunes its
 * decoder and x264 encoders (`transcode.liveEncoderTuning`), a trade between latency and
 * throughput measured on 2 cores with the 1080p30 bench input and the default ladder
 * (bench/README.md, "Eighth round"):
 *  - `latency` (default): fewer threads and short lookaheads, so each rendition segment is out
 *    11 frames after its source segment ends (`bench/live-ladder.ts --mode held`);
 *  - `throughput`: ffmpeg's and x264's own thread counts and lookaheads, as the per-segment jobs
 *    use: 23 frames (+0.4 s per rendition segment at 30 fps), and the live path fed as fast as
 *    it takes reached 0.90 x raw ffmpeg's throughput against 0.84 (medians of 12 and 14 runs,
 *    alternated; single runs 0.85-0.95 against 0.76-1.01), the machine 93-95 % busy against
 *    91-92 %.
 */
export const LIVE_ENCODER_TUNINGS = ['latency', 'throughput'] as const;
export type LiveEncoderTuning = (typeof LIVE_ENCODER_TUNINGS)[number];
