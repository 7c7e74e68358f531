/**
 * A ladder that fits its source: which renditions of a stream's ladder are worth making for
 * the measured source, and at most how many bits each may spend. Pure: no I/O.
 *
 * Two rules, applied to a ladder the gateway chose (its `ladder` setting, or a stream key's
 * `profiles`); a ladder the publisher's side set explicitly (the auth webhook's `presets` /
 * `profiles`, the `Livepeer-Transcode-Configuration` push header) is used as configured, only
 * its upscales omitted as {@link fitRendition} always does (docs/wire-contract.md §3):
 *
 * 1. **Size.** A rendition whose fitted size (aspect ratio kept, even dimensions:
 *    {@link fitRendition}) is not smaller than the source's displayed size in both width and
 *    height is left out: it would be the source's picture re-encoded, never better than the
 *    untouched `source` rendition every stream lists.
 * 2. **Bitrate.** A kept rendition's target bitrate is capped at its share of the source's
 *    pixels: `cap = sourceBitrateBps × (w × h × fps) / (W × H × FPS)` (rendition over
 *    displayed source, frame rates as fractions), i.e. a rendition never gets more bits per
 *    pixel than the source carried. Bits per pixel (bitrate ÷ (width × height × frame rate)) is
 *    the yardstick encoding guides compare ladder rungs with (Jan Ozer, "The Essential Key to
 *    Producing High Quality Streaming Video", streaminglearningcenter.com); a rendition is made
 *    from the source, so bits beyond the source's density buy it no detail. A linear share is
 *    the conservative choice: guides give small rungs somewhat more bits per pixel than large
 *    ones, so this cap errs low, never above the source.
 *
 * The source bitrate is the caller's: ingest passes the one an RTMP publisher declares in its
 * FLV `onMetaData` ((videodatarate + audiodatarate) × 1000, taken at its word: a wrong
 * declaration gives wrong caps), else the measured one: the bytes of the stream's first source
 * segment × 8 / its duration ({@link measuredBitrateBps}), always for HTTP push. The measure counts the
 * whole segment (video, audio and MPEG-TS overhead), so the video cap carries the audio's share
 * too; with the renditions' audio copied from the source, a rendition stays below the source's
 * bitrate while its pixel share is below the video's share of the source's bits (for the test
 * clip: 426x240 from 640x360 is 0.44 of the pixels, video is ~0.8 of the bits).
 * Contract: docs/wire-contract.md §3; docs/architecture.md "A ladder that fits its source".
 */
import { displayedSize, fitRendition, type SourceVideoInfo, type VideoProfile } from './profile.ts';

/** Lowest capped bitrate, bits per second: the lowest a Livepeer JSON profile accepts (profile.ts `parseProfile`). */
export const MIN_CAPPED_BITRATE_BPS = 1000;

/** Why a profile was left out of a stream's ladder. */
export type LeftOutReason =
  /** Its box is larger than the source: making it would upscale ({@link fitRendition}). */
  | 'upscale'
  /** Fitted to the source it has the source's own size: a re-encode of the same picture. */
  | 'not-smaller';

/** A ladder fitted to one source. */
export interface LadderFit {
  /** The profiles kept, in ladder order; `bitrateBps` capped where the cap is lower (every other field as configured). */
  readonly profiles: VideoProfile[];
  /** The profiles left out, in ladder order. */
  readonly leftOut: readonly { readonly name: string; readonly reason: LeftOutReason }[];
  /** Kept profiles whose bitrate was lowered: name, configured and capped bits per second. */
  readonly capped: readonly { readonly name: string; readonly configuredBps: number; readonly cappedBps: number }[];
}

/**
 * A segment's bitrate in bits per second: `bytes × 8000 / durationMs`, rounded down.
 * @returns undefined when either is not a positive finite number (nothing measured).
 */
export function measuredBitrateBps(bytes: number, durationMs: number): number | undefined {
  if (!(bytes > 0) || !(durationMs > 0) || !Number.isFinite(bytes) || !Number.isFinite(durationMs)) return undefined;
  return Math.floor((bytes * 8000) / durationMs);
}

/**
 * The bitrate cap of a rendition of `size` (its fitted size and frame rate) made from `source`:
 * `sourceBitrateBps × (w × h × fpsNum/fpsDen) / (W × H × FPS)`, W×H the displayed source size,
 * rounded down, at least {@link MIN_CAPPED_BITRATE_BPS}.
 * @param sourceBitrateBps the measured source bitrate, bits per second (> 0).
 */
export function bitrateCapBps(size: { width: number; height: number; fpsNum: number; fpsDen: number }, source: SourceVideoInfo, sourceBitrateBps: number): number {
  const shown = displayedSize(source);
  const pixelShare = (size.width * size.height * size.fpsNum * source.fpsDen) / (shown.width * shown.height * size.fpsDen * source.fpsNum);
  return Math.max(MIN_CAPPED_BITRATE_BPS, Math.floor(sourceBitrateBps * Math.min(1, pixelShare)));
}

/**
 * Fits a gateway-chosen ladder to its measured source (the two rules of this module).
 *
 * @param profiles the ladder, in order (unfitted).
 * @param source the source's video as measured (size, frame rate, rotation).
 * @param sourceBitrateBps the source's measured bitrate in bits per second; undefined or not
 *   positive: only the size rule applies (nothing measured, nothing capped).
 * @returns the kept profiles (bitrates capped), those left out and those capped. Fitting the
 *   result again with the same source gives the same result.
 */
export function fitLadderToSource(profiles: readonly VideoProfile[], source: SourceVideoInfo, sourceBitrateBps: number | undefined): LadderFit {
  const shown = displayedSize(source);
  const evenWidth = shown.width - (shown.width % 2);
  const evenHeight = shown.height - (shown.height % 2);
  const kept: VideoProfile[] = [];
  const leftOut: { name: string; reason: LeftOutReason }[] = [];
  const capped: { name: string; configuredBps: number; cappedBps: number }[] = [];
  for (const profile of profiles) {
    const fit = fitRendition(profile, source);
    if (!fit) {
      leftOut.push({ name: profile.name, reason: 'upscale' });
      continue;
    }
    if (fit.width >= evenWidth && fit.height >= evenHeight) {
      leftOut.push({ name: profile.name, reason: 'not-smaller' });
      continue;
    }
    const capBps = sourceBitrateBps !== undefined && sourceBitrateBps > 0 ? bitrateCapBps(fit, source, sourceBitrateBps) : Infinity;
    if (capBps < profile.bitrateBps) {
      capped.push({ name: profile.name, configuredBps: profile.bitrateBps, cappedBps: capBps });
      kept.push({ ...profile, bitrateBps: capBps });
    } else {
      kept.push(profile);
    }
  }
  return { profiles: kept, leftOut, capped };
}
