/**
 * Pure HLS playlist rendering (RFC 8216). No I/O: every function takes plain data and
 * returns the playlist text, each line ending with "\n" (RFC 8216 §4.1).
 * Hand-written rather than an m3u8 library because it renders every playlist request from
 * the segment index on the hot path: a few string joins over the lines this gateway
 * writes, with none of a general parser/serializer's object model or allocations.
 *
 * Contract: docs/wire-contract.md §5 (HLS playback).
 */

/** One media segment of a media playlist. */
export interface MediaSegmentLine {
  /** Segment URI as written on the URI line, relative to the playlist (e.g. `"42.ts"`). */
  uri: string;
  /**
   * Segment duration in milliseconds. May be fractional (e.g. 90 kHz ticks / 90); it is
   * rounded half-up to a whole millisecond before anything is printed, and must round to
   * at least 1 ms.
   */
  durationMs: number;
  /** Write `#EXT-X-DISCONTINUITY` before this segment (RFC 8216 §4.3.2.3). */
  discontinuity: boolean;
}

/** Everything needed to render one media playlist. */
export interface MediaPlaylistInput {
  /** Media sequence number of the first segment in `segments`. */
  mediaSequence: number;
  /** Discontinuity sequence number at the first segment (EXT-X-DISCONTINUITY-SEQUENCE; omitted when 0). */
  discontinuitySequence: number;
  segments: readonly MediaSegmentLine[];
  /** Append #EXT-X-ENDLIST. */
  ended: boolean;
  /**
   * `VOD` writes `#EXT-X-PLAYLIST-TYPE:VOD` (RFC 8216 §4.3.3.5: the playlist never changes; a
   * recording). Omitted (the default) for a live sliding window, which must not carry the tag.
   */
  playlistType?: 'VOD';
  /** Minimum target duration in seconds (e.g. the configured segment target, 2); the tag is max(this, ceil of every EXTINF as printed with 3 decimals). */
  minTargetDurationS: number;
}

/** One variant stream (rendition) of a master playlist. */
export interface VariantStream {
  /** Media playlist URI, relative to the master playlist (e.g. `"abc/720p.m3u8"`). */
  uri: string;
  /** Peak segment bit rate in bits per second: `BANDWIDTH` (RFC 8216 §4.3.4.2). */
  bandwidthBps: number;
  /** Average segment bit rate in bits per second: `AVERAGE-BANDWIDTH`; omitted when undefined. */
  averageBandwidthBps?: number;
  /**
   * Video width in pixels: first half of `RESOLUTION`. Leave both `width` and `height`
   * undefined for an audio-only variant: `RESOLUTION` is then omitted (RFC 8216 §4.3.4.2: it
   * SHOULD be present only when every media in the variant contains video).
   */
  width?: number;
  /** Video height in pixels: second half of `RESOLUTION`. */
  height?: number;
  /** RFC 6381 codec list, e.g. `"avc1.64001f,mp4a.40.2"`: `CODECS`; omitted when undefined. */
  codecs?: string;
  /** Maximum frame rate in frames per second: `FRAME-RATE`, printed with 3 decimals; omitted when undefined. */
  frameRate?: number;
  /**
   * Rendition name (e.g. `"source"`, `"720p"`). Used only to label validation errors: the
   * EXT-X-STREAM-INF tag has no NAME attribute (RFC 8216 §4.3.4.2), so it is not written.
   */
  name?: string;
}

/** Options of {@link renderMasterPlaylist}. */
export interface MasterPlaylistOptions {
  /**
   * Write `#EXT-X-INDEPENDENT-SEGMENTS` (RFC 8216 §4.3.5.1): asserts that every sample of
   * every segment of every variant decodes without data from other segments (each segment
   * starts with a keyframe). Default `false`.
   */
  independentSegments?: boolean;
}

/**
 * EXT-X-VERSION of both playlists. Version 3 is required by the decimal EXTINF durations of
 * media playlists (RFC 8216 §7). No attribute the master writes needs more: RFC 8216 §7
 * lists no version requirement for AVERAGE-BANDWIDTH, FRAME-RATE, CODECS or
 * EXT-X-INDEPENDENT-SEGMENTS, and clients ignore attributes they do not know (§4.2).
 */
const PROTOCOL_VERSION = 3;

/**
 * Render a live, ended or VOD media playlist.
 *
 * Output, in order:
 * - `#EXTM3U` (§4.3.1.1), `#EXT-X-VERSION:3` (§4.3.1.2, §7: decimal EXTINF needs 3).
 * - `#EXT-X-TARGETDURATION:<s>` (§4.3.3.1): an integer number of seconds, the maximum of
 *   `minTargetDurationS` and every EXTINF rounded up. The rounding applies to the printed
 *   3-decimal value, so 2000.4 ms prints `2.000` and counts as 2 s, 2000.6 ms prints `2.001`
 *   and counts as 3 s. Rounding up is stricter than §4.3.3.1's "rounded to the nearest
 *   integer" and also satisfies the version-3 reading (target = maximum duration).
 * - `#EXT-X-MEDIA-SEQUENCE:<n>` (§4.3.3.2), always written.
 * - `#EXT-X-DISCONTINUITY-SEQUENCE:<n>` (§4.3.3.3) only when `discontinuitySequence > 0`.
 * - `#EXT-X-PLAYLIST-TYPE:VOD` (§4.3.3.5) when `playlistType` is `VOD`.
 * - Per segment: `#EXT-X-DISCONTINUITY` when flagged (§4.3.2.3), `#EXTINF:<s.mmm>,`
 *   (§4.3.2.1) and the URI line.
 * - `#EXT-X-ENDLIST` (§4.3.3.4) when `ended`.
 *
 * An empty `segments` list is valid (a live stream with no segment yet); the target duration
 * is then `minTargetDurationS`.
 *
 * @throws Error naming the field when `mediaSequence` or `discontinuitySequence` is not a
 *   non-negative safe integer, `minTargetDurationS` is not a positive safe integer, a
 *   segment's `durationMs` is not finite or rounds below 1 ms, or a segment `uri` is empty,
 *   starts with `#`, or contains whitespace, a control character or `"`.
 */
export function renderMediaPlaylist(input: MediaPlaylistInput): string {
  assertNonNegativeInteger(input.mediaSequence, 'mediaSequence');
  assertNonNegativeInteger(input.discontinuitySequence, 'discontinuitySequence');
  assertPositiveInteger(input.minTargetDurationS, 'minTargetDurationS');

  let targetDurationS = input.minTargetDurationS;
  const body: string[] = [];
  input.segments.forEach((segment, index) => {
    const field = `segments[${index}]`;
    assertUri(segment.uri, `${field}.uri`);
    const durationMs = roundDurationMs(segment.durationMs, `${field}.durationMs`);
    targetDurationS = Math.max(targetDurationS, ceilDiv(durationMs, 1000));
    if (segment.discontinuity) body.push('#EXT-X-DISCONTINUITY');
    body.push(`#EXTINF:${formatThousandths(durationMs)},`, segment.uri);
  });

  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${PROTOCOL_VERSION}`,
    `#EXT-X-TARGETDURATION:${targetDurationS}`,
    `#EXT-X-MEDIA-SEQUENCE:${input.mediaSequence}`,
  ];
  if (input.discontinuitySequence > 0) {
    lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${input.discontinuitySequence}`);
  }
  if (input.playlistType === 'VOD') lines.push('#EXT-X-PLAYLIST-TYPE:VOD');
  lines.push(...body);
  if (input.ended) lines.push('#EXT-X-ENDLIST');
  return joinLines(lines);
}

/**
 * Render a master playlist with one `#EXT-X-STREAM-INF` per variant, in the given order
 * (the caller orders them: {@link orderMasterVariants}), each followed by its URI line (RFC 8216 §4.3.4.2).
 *
 * Output: `#EXTM3U`, `#EXT-X-VERSION:3` (see {@link PROTOCOL_VERSION}),
 * `#EXT-X-INDEPENDENT-SEGMENTS` when `options.independentSegments`, then per variant
 * `#EXT-X-STREAM-INF:BANDWIDTH=<bps>[,AVERAGE-BANDWIDTH=<bps>][,RESOLUTION=<W>x<H>]`
 * `[,CODECS="<codecs>"][,FRAME-RATE=<fps with 3 decimals>]`. FRAME-RATE is rounded half-up
 * to 3 decimals as §4.3.4.2 asks (29.97002997 → `29.970`).
 *
 * @param variants at least one variant.
 * @param options see {@link MasterPlaylistOptions}; default `{}`.
 * @throws Error naming the field (`variants[i] (<name>).<field>`) when `variants` is empty;
 *   `bandwidthBps`, `averageBandwidthBps`, `width` or `height` is not a positive safe
 *   integer (or only one of `width` and `height` is given); `frameRate` is not finite or rounds below 0.001; `codecs` is empty or contains
 *   a control character or `"` (§4.2 quoted-string); or `uri` is invalid as for
 *   {@link renderMediaPlaylist}.
 */
export function renderMasterPlaylist(
  variants: readonly VariantStream[],
  options: MasterPlaylistOptions = {},
): string {
  if (variants.length === 0) throw new Error('variants must contain at least one variant');

  const lines = ['#EXTM3U', `#EXT-X-VERSION:${PROTOCOL_VERSION}`];
  if (options.independentSegments === true) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');

  variants.forEach((variant, index) => {
    const field = variant.name === undefined ? `variants[${index}]` : `variants[${index}] (${variant.name})`;
    assertUri(variant.uri, `${field}.uri`);
    assertPositiveInteger(variant.bandwidthBps, `${field}.bandwidthBps`);
    const audioOnly = variant.width === undefined && variant.height === undefined;
    if (!audioOnly) {
      assertPositiveInteger(variant.width as number, `${field}.width`);
      assertPositiveInteger(variant.height as number, `${field}.height`);
    }

    const attributes = [`BANDWIDTH=${variant.bandwidthBps}`];
    if (variant.averageBandwidthBps !== undefined) {
      assertPositiveInteger(variant.averageBandwidthBps, `${field}.averageBandwidthBps`);
      attributes.push(`AVERAGE-BANDWIDTH=${variant.averageBandwidthBps}`);
    }
    if (!audioOnly) attributes.push(`RESOLUTION=${variant.width}x${variant.height}`);
    if (variant.codecs !== undefined) {
      assertQuotedStringContent(variant.codecs, `${field}.codecs`);
      attributes.push(`CODECS="${variant.codecs}"`);
    }
    if (variant.frameRate !== undefined) {
      attributes.push(`FRAME-RATE=${formatFrameRate(variant.frameRate, `${field}.frameRate`)}`);
    }
    lines.push(`#EXT-X-STREAM-INF:${attributes.join(',')}`, variant.uri);
  });
  return joinLines(lines);
}

/**
 * The variants of a live stream's master playlist in the order they are listed, and which are
 * listed at all (docs/wire-contract.md §5):
 *
 * - Ordered by `bandwidthBps` (BANDWIDTH), highest first; equal bandwidths keep the order given.
 *   Players start with the first variant listed (Apple's HLS authoring specification; hls.js's
 *   default start level), so they start with the best picture and step down from there.
 * - When the source is fit for players, it is listed first and no rendition is listed at a
 *   higher bandwidth than the source's: a rendition is made from the source, so its picture is
 *   never better, and a player on a good link must not pick it over the source for more bits.
 *   Such a rendition (an explicitly configured one can be; a ladder fitted to its source,
 *   domain/ladder-fit.ts, is not) is still made and its media playlist still served; it is only
 *   left out of the master.
 * - When it is not (`sourceLast`: the source lint found it undecodable in browsers or rotated,
 *   domain/source-lint.ts `sourceUnfitForPlayers`), every rendition is listed by bandwidth and
 *   the source goes last, behind its playable copy, whatever its bandwidth: players that can
 *   decode it (and check CODECS) may still pick it. With no rendition it is listed alone.
 * - When it is withheld (`sourceHidden`: the stream's watermark has `applyToSource`, and a
 *   marked copy of the source at its own size is among the renditions), the source is not
 *   listed at all; every rendition is listed by bandwidth. With no rendition the source is
 *   listed alone (a master playlist lists at least one variant).
 *
 * @param source the `source` variant.
 * @param renditions every other variant, in ladder order.
 * @returns the variants to list, in order (the source among them unless `sourceHidden`).
 */
export function orderMasterVariants(source: VariantStream, renditions: readonly VariantStream[], options: { sourceLast?: boolean; sourceHidden?: boolean } = {}): VariantStream[] {
  const byBandwidth = (list: readonly VariantStream[]): VariantStream[] =>
    list.map((variant, index) => ({ variant, index }))
      .sort((a, b) => b.variant.bandwidthBps - a.variant.bandwidthBps || a.index - b.index)
      .map((x) => x.variant);
  if (options.sourceHidden === true && renditions.length > 0) return byBandwidth(renditions);
  if (options.sourceLast === true) return [...byBandwidth(renditions), source];
  return [source, ...byBandwidth(renditions.filter((r) => r.bandwidthBps <= source.bandwidthBps))];
}

function joinLines(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}

/** `n` thousandths as `<int>.<3 digits>`, with integer math only. `n` is a non-negative safe integer. */
function formatThousandths(n: number): string {
  return `${Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}`;
}

/** Ceiling of `a / b` for non-negative safe integers, without float division. */
function ceilDiv(a: number, b: number): number {
  return Math.floor(a / b) + (a % b === 0 ? 0 : 1);
}

function roundDurationMs(durationMs: number, field: string): number {
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs)) {
    throw new Error(`${field} must be a finite number of milliseconds`);
  }
  const rounded = Math.round(durationMs);
  if (rounded < 1 || !Number.isSafeInteger(rounded)) {
    throw new Error(`${field} must round to at least 1 ms`);
  }
  return rounded;
}

function formatFrameRate(frameRate: number, field: string): string {
  if (typeof frameRate !== 'number' || !Number.isFinite(frameRate)) {
    throw new Error(`${field} must be a finite number of frames per second`);
  }
  const thousandths = Math.round(frameRate * 1000);
  if (thousandths < 1 || !Number.isSafeInteger(thousandths)) {
    throw new Error(`${field} must round to at least 0.001 frames per second`);
  }
  return formatThousandths(thousandths);
}

function assertNonNegativeInteger(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${field} must be a non-negative integer`);
  }
}

function assertPositiveInteger(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${field} must be a positive integer`);
  }
}

/** C0 controls (CR and LF included), DEL and C1 controls: forbidden in playlists (RFC 8216 §4.1). */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A URI line (RFC 8216 §4.1): one line, not a tag or comment, no `"` (so it can also be
 * quoted), and no whitespace (URIs percent-encode it, RFC 3986 §2.1).
 */
function assertUri(uri: string, field: string): void {
  if (typeof uri !== 'string' || uri.length === 0) throw new Error(`${field} must be a non-empty string`);
  if (CONTROL_CHARACTER.test(uri) || /\s/.test(uri) || uri.includes('"')) {
    throw new Error(`${field} must not contain whitespace, control characters or '"'`);
  }
  if (uri.startsWith('#')) throw new Error(`${field} must not start with '#'`);
}

/** Content of a quoted-string attribute value (RFC 8216 §4.2): no CR, LF or `"`. */
function assertQuotedStringContent(value: string, field: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new Error(`${field} must be a non-empty string`);
  if (CONTROL_CHARACTER.test(value) || value.includes('"')) {
    throw new Error(`${field} must not contain control characters or '"'`);
  }
}
