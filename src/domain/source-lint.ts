/**
 * Source lint: what is wrong with a publisher's source for HLS players, found from the ingest
 * probe of its first segment, reported on the stream (control API `warnings`, logs) and acted
 * on: a source browsers cannot show as sent gets a playable rendition of its own size in the
 * ladder, and the master playlist lists the source after the renditions.
 */
import { MIN_CAPPED_BITRATE_BPS } from './ladder-fit.ts';
import { displayedSize, fitRendition, type SourceVideoInfo, type VideoProfile } from './profile.ts';

/**
 * - `SOURCE_NOT_BROWSER_PLAYABLE`: H.264 above 8 bits or not 4:2:0 (High 10, High 4:2:2,
 *   High 4:4:4): browsers' H.264 decoders (Media Source Extensions, Safari's native HLS)
 *   take Constrained Baseline, Main and High only (ITU-T H.264 Annex A profiles 66/77/100).
 * - `SOURCE_ROTATED`: the source has a display matrix (MP4 `tkhd`); MPEG-TS cannot carry one
 *   (ISO/IEC 13818-1 has no such descriptor), so the `source` rendition plays sideways or
 *   upside down; the renditions are rotated upright.
 * - `AUDIO_ONLY`: no video; the stream is served as the `source` rendition only.
 */
export type SourceWarningCode = 'SOURCE_NOT_BROWSER_PLAYABLE' | 'SOURCE_ROTATED' | 'AUDIO_ONLY';

export interface SourceWarning {
  readonly code: SourceWarningCode;
  /** Human-readable: what is wrong and what the gateway does about it. */
  readonly msg: string;
}

/** What the lint reads of the probed source video (media/probe.ts `VideoProbe`). */
export interface LintedVideo extends SourceVideoInfo {
  /** ffprobe `codec_name`, e.g. `h264`. */
  readonly codec: string;
  /** ffprobe profile name, e.g. `High 10`; '' when unknown. */
  readonly profile: string;
  /** ffprobe `pix_fmt`, e.g. `yuv420p10le`; '' when unknown. */
  readonly pixelFormat: string;
}

/** Name of the rendition added by {@link playableSourceProfile}. */
export const PLAYABLE_SOURCE_RENDITION = 'source-playable';

/** 8-bit 4:2:0 pixel formats (ffmpeg names; `yuvj420p` is full-range yuv420p as JPEG-style H.264 decodes it). */
const BROWSER_PIXEL_FORMATS = new Set(['yuv420p', 'yuvj420p', 'nv12']);
/** H.264 profiles browsers decode (ffprobe names). */
const BROWSER_H264_PROFILES = new Set(['Constrained Baseline', 'Baseline', 'Main', 'High', 'Constrained High', 'Extended']);

/**
 * The warnings for a source: `AUDIO_ONLY` without video, else `SOURCE_NOT_BROWSER_PLAYABLE`
 * (H.264 with a profile or pixel format browsers do not decode) and `SOURCE_ROTATED` (a
 * rotation other than 0). Unknown profile or pixel format ('') is not a warning.
 */
export function lintSource(video: LintedVideo | undefined): SourceWarning[] {
  if (!video) return [{ code: 'AUDIO_ONLY', msg: 'the source has no video: it is served as the audio-only source rendition, without a transcoded ladder' }];
  const warnings: SourceWarning[] = [];
  const badProfile = video.profile !== '' && !BROWSER_H264_PROFILES.has(video.profile);
  const badPixels = video.pixelFormat !== '' && !BROWSER_PIXEL_FORMATS.has(video.pixelFormat);
  if (video.codec === 'h264' && (badProfile || badPixels)) {
    const what = [video.profile ? `H.264 ${video.profile}` : 'H.264', video.pixelFormat].filter(Boolean).join(', ');
    warnings.push({
      code: 'SOURCE_NOT_BROWSER_PLAYABLE',
      msg: `the source is ${what}: browsers decode only 8-bit 4:2:0 H.264 (Baseline, Main, High), so the source rendition will not play there; players are offered an 8-bit 4:2:0 rendition of the source size first (encode 8-bit yuv420p to avoid the extra transcode)`,
    });
  }
  if (video.rotationDeg !== undefined && video.rotationDeg !== 0) {
    const shown = displayedSize(video);
    warnings.push({
      code: 'SOURCE_ROTATED',
      msg: `the source is rotated ${video.rotationDeg}° by its display matrix, which MPEG-TS cannot carry: the source rendition plays unrotated (${video.width}x${video.height}); the renditions are rotated upright (${shown.width}x${shown.height})`,
    });
  }
  return warnings;
}

/** Whether the warnings mean the `source` rendition cannot be offered to players as it is (it goes last in the master playlist). */
export function sourceUnfitForPlayers(warnings: readonly SourceWarning[]): boolean {
  return warnings.some((w) => w.code === 'SOURCE_NOT_BROWSER_PLAYABLE' || w.code === 'SOURCE_ROTATED');
}

/** Bounds of the added rendition's bitrate, bits per second. */
const PLAYABLE_MIN_BPS = 300_000;
const PLAYABLE_MAX_BPS = 20_000_000;
/** Lowest bitrate of a marked copy when the source's is known, bits per second (ladder-fit.ts `MIN_CAPPED_BITRATE_BPS`). */
const MARKED_MIN_BPS = MIN_CAPPED_BITRATE_BPS;
/**
 * Share of the source's bitrate a marked copy's video gets. The source's rate counts its audio
 * and the MPEG-TS overhead too, and the copy carries the same audio (copied), so a video target
 * of the whole rate made the copy larger than the source (measured on the test clip: 320 916
 * against 300 612 bytes for one segment); the clip's video is ~0.8 of its bits.
 */
const MARKED_VIDEO_SHARE = 0.8;

/** Name of the marked copy of the source added by {@link playableSourceProfile} with `marked` (watermark `applyToSource`). */
export const MARKED_SOURCE_RENDITION = 'source-marked';

/**
 * The rendition to add to a ladder so that a source unfit for players
 * ({@link sourceUnfitForPlayers}) has a playable copy at its own displayed size, or (`marked`:
 * the stream's watermark has `applyToSource`, domain/watermark.ts) so that the source has a
 * watermarked copy at its own size (the ladder code draws the mark on every transcoded
 * rendition, this one included): an H.264 profile (8-bit yuv420p, as every rendition;
 * transcode/ladder-args.ts) of the displayed source size at the source frame rate.
 * Bitrate: the source's measured bitrate clamped to 0.3-20 Mb/s; with `marked`, 0.8 of the
 * source's bitrate (its video share, so the copy with its copied audio stays below the source;
 * when known: clamped to 1 kb/s-20 Mb/s instead).
 *
 * @param ladder the ladder (fitted); when one of its profiles already fits to the displayed
 *   source size ({@link fitRendition} semantics: a box at least that large in both sides and of
 *   the same aspect), nothing is added: that rendition is the copy ({@link isSourceSizeCopy}).
 * @param sourceBitrateBps the source's bitrate (declared, or first segment bytes × 8000 / duration ms); 0 when unknown.
 * @returns the profile to append, named {@link PLAYABLE_SOURCE_RENDITION} (or
 *   {@link MARKED_SOURCE_RENDITION} with `marked`; suffixed `-2`, `-3` ... if the ladder already
 *   uses the name), or `undefined` when none is needed.
 */
export function playableSourceProfile(ladder: readonly VideoProfile[], source: SourceVideoInfo, warnings: readonly SourceWarning[],
  sourceBitrateBps: number, options: { marked?: boolean } = {}): VideoProfile | undefined {
  const marked = options.marked === true;
  if (!marked && !sourceUnfitForPlayers(warnings)) return undefined;
  const shown = displayedSize(source);
  const even = { width: shown.width - (shown.width % 2), height: shown.height - (shown.height % 2) };
  if (ladder.some((p) => isSourceSizeCopy(fitRendition(p, source), source))) return undefined;
  const base = marked ? MARKED_SOURCE_RENDITION : PLAYABLE_SOURCE_RENDITION;
  let name = base;
  for (let i = 2; ladder.some((p) => p.name === name); i++) name = `${base}-${i}`;
  const known = Number.isFinite(sourceBitrateBps) && sourceBitrateBps > 0;
  const bitrateBps = Math.round(marked && known
    ? Math.min(PLAYABLE_MAX_BPS, Math.max(MARKED_MIN_BPS, Math.floor(sourceBitrateBps * MARKED_VIDEO_SHARE)))
    : Math.min(PLAYABLE_MAX_BPS, Math.max(PLAYABLE_MIN_BPS, known ? sourceBitrateBps : 0)));
  return {
    name, width: even.width, height: even.height, bitrateBps, fps: 0, fpsDen: 1,
    profile: '', gop: { kind: 'default' }, encoder: 'H.264', quality: 0,
  };
}

/**
 * Whether a fitted rendition is a copy of the source at its own displayed size (even sides):
 * the rendition {@link playableSourceProfile} adds, or a ladder profile of that size.
 */
export function isSourceSizeCopy(fit: { readonly width: number; readonly height: number } | undefined, source: SourceVideoInfo): boolean {
  if (fit === undefined) return false;
  const shown = displayedSize(source);
  return fit.width === shown.width - (shown.width % 2) && fit.height === shown.height - (shown.height % 2);
}
