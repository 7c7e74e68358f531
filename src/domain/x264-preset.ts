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
