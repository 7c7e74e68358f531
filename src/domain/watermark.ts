/**
 * A stream's watermark (docs/operations.md, "Watermarks"; the webhook field in
 * docs/wire-contract.md §6): an image or a line of text drawn on every transcoded rendition,
 * sized relative to each rendition's frame so every rung of the ladder shows the same mark.
 *
 * Two stages:
 *  - {@link WatermarkRequest}: what configuration says (config `watermark.*`, a static stream
 *    key's `watermark`, the auth webhook's `"watermark"`), parsed and checked here without I/O;
 *  - {@link WatermarkSpec}: the request with its image resolved to an object-store key and
 *    measured (ingest/watermark-resolver.ts reads and checks the image at configuration time).
 *    Plain JSON: it travels with every transcode job and live session record, so a transcoder
 *    on another host applies it from the object store alone.
 *
 * {@link watermarkPlacement} gives the overlay's rectangle inside one rendition frame: the same
 * numbers build the ffmpeg filter (transcode/ladder-args.ts) and the tests' pixel comparison.
 * Pure: no I/O.
 */
import { GatewayError } from '../errors/gateway-error.ts';

/** Where the mark sits in the frame. */
export const WATERMARK_POSITIONS = ['top-left', 'top-right', 'bottom-left', 'bottom-right', 'center'] as const;
export type WatermarkPosition = typeof WATERMARK_POSITIONS[number];

/** Image formats a watermark may be: PNG (with or without alpha) and JPEG (opaque). */
export type WatermarkImageFormat = 'png' | 'jpeg';

/** Defaults of the optional fields (also the config defaults, config/config-schema.ts `watermark`). */
export const WATERMARK_DEFAULTS = Object.freeze({
  position: 'bottom-right' as WatermarkPosition,
  /** Margin to the frame's nearest edges as a fraction of the frame width (0.02 = 12.8 px on a 640 px frame). */
  marginFraction: 0.02,
  /** Image width as a fraction of the frame width. */
  widthFraction: 0.15,
  /** 0 (invisible) to 1 (opaque); multiplies the image's own alpha. */
  opacity: 0.8,
  /** Text height (font size) as a fraction of the frame height. */
  fontSizeFraction: 0.05,
});

/** Longest watermark text, characters. */
export const MAX_WATERMARK_TEXT_CHARS = 128;

/**
 * Characters a text watermark may hold: letters and digits of any script, space and
 * `. , _ - + # @ ! ? ( ) & /`. The text goes into an ffmpeg filter graph
 * (drawtext, https://ffmpeg.org/ffmpeg-filters.html#drawtext-1), whose quoting has three
 * levels; refusing `: ' \ % ; [ ] = ,`-style syntax characters outright is simpler and safer
 * than escaping them.
 */
const TEXT_PATTERN = /^[\p{L}\p{N} .,_\-+#@!?()&/]+$/u;

/** Where a request's image is: a file on the gateway that reads the configuration, or an object-store key. */
export type WatermarkImageRef = { readonly path: string } | { readonly key: string };

/** Common placement fields, as configured. */
interface PlacementFields {
  readonly position: WatermarkPosition;
  /**
   * Margin to the nearest edges: `{fraction}` of the frame width, or `{px}` in source pixels
   * (scaled with the rendition: `px × renditionWidth / sourceWidth`).
   */
  readonly margin: { readonly fraction: number } | { readonly px: number };
  readonly opacity: number;
  /**
   * Also mark the source: the stream gets a marked copy of the source at its own size (a
   * transcoded rendition, domain/source-lint.ts `playableSourceProfile` with `marked`), and the
   * unmarked `source` rendition is no longer offered to players (docs/operations.md,
   * "Watermarks"). Present only when true; absent: the source stays untouched.
   */
  readonly applyToSource?: true;
}

/** A watermark as configured, before its image is read. */
export type WatermarkRequest =
  | (PlacementFields & { readonly kind: 'image'; readonly image: WatermarkImageRef; readonly widthFraction: number })
  | (PlacementFields & { readonly kind: 'text'; readonly text: string; readonly fontSizeFraction: number });

/** A resolved watermark: plain JSON, carried by transcode jobs and live session records. */
export type WatermarkSpec =
  | (PlacementFields & {
    readonly kind: 'image';
    /** Object-store key of the image bytes (the transcoder fetches it). */
    readonly imageKey: string;
    readonly imageFormat: WatermarkImageFormat;
    /** The image's own size, pixels. */
    readonly imageWidthPx: number;
    readonly imageHeightPx: number;
    readonly widthFraction: number;
  })
  | (PlacementFields & { readonly kind: 'text'; readonly text: string; readonly fontSizeFraction: number });

/** The overlay rectangle in one frame, pixels; x/y from the top-left corner. */
export interface WatermarkPlacement {
  readonly x: number;
  readonly y: number;
  /** Image: the scaled image's size (even numbers); text: the font size in `height`, width 0 (drawtext measures the text). */
  readonly width: number;
  readonly height: number;
  /** Margin in this frame, pixels. */
  readonly marginPx: number;
}

type Json = Record<string, unknown>;

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 66 ? `${text.slice(0, 64)}…` : text;
}

function bad(where: string, message: string): never {
  throw new GatewayError('INVALID_WATERMARK', `${where}: ${message}`);
}

/** A fraction in (0, max] (or [0, max] when `zero`), or the default when absent. */
function fractionField(obj: Json, field: string, where: string, fallback: number, options: { zero?: boolean; max?: number } = {}): number {
  const value = obj[field];
  if (value === undefined || value === null) return fallback;
  const max = options.max ?? 1;
  const ok = typeof value === 'number' && Number.isFinite(value) && value <= max && (options.zero ? value >= 0 : value > 0);
  if (!ok) bad(`${where}.${field}`, `must be a number ${options.zero ? '≥ 0' : '> 0'} and ≤ ${max}, got ${describe(value)}`);
  return value as number;
}

/**
 * Parses a watermark object (config, stream key or webhook JSON):
 * ```
 * { image?: string (local path), imageKey?: string (object-store key), text?: string,
 *   position?: 'top-left'|'top-right'|'bottom-left'|'bottom-right'|'center' (default bottom-right),
 *   marginPx?: integer ≥ 0 (source pixels) | marginFraction?: number 0–0.5 (default 0.02),
 *   widthFraction?: number (0, 1] (image; default 0.15), fontSizeFraction?: number (0, 0.5] (text; default 0.05),
 *   opacity?: number [0, 1] (default 0.8), applyToSource?: boolean (default false: the source stays unmarked) }
 * ```
 * Exactly one of `image`, `imageKey`, `text`. Unknown fields are refused (a typo must not
 * silently give a default mark).
 *
 * @param where prefix of every error message, e.g. `auth webhook: watermark`
 * @param options.allowPath false refuses `image` (a local path): the auth webhook may name
 *   only object-store keys, never files on the gateway's disk
 * @throws GatewayError INVALID_WATERMARK naming the field and the problem.
 */
export function parseWatermarkRequest(raw: unknown, where: string, options: { allowPath?: boolean } = {}): WatermarkRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(where, `must be an object, got ${describe(raw)}`);
  const obj = raw as Json;
  const known = new Set(['image', 'imageKey', 'text', 'position', 'marginPx', 'marginFraction', 'widthFraction', 'fontSizeFraction', 'opacity', 'applyToSource']);
  const unknown = Object.keys(obj).filter((k) => !known.has(k));
  if (unknown.length > 0) bad(where, `unknown field "${unknown[0]!.slice(0, 64)}" (known: ${[...known].join(', ')})`);

  const sources = (['image', 'imageKey', 'text'] as const).filter((k) => obj[k] !== undefined && obj[k] !== null && obj[k] !== '');
  if (sources.length !== 1) bad(where, `set exactly one of image, imageKey, text (got ${sources.length === 0 ? 'none' : sources.join(', ')})`);
  const source = sources[0]!;
  if (source === 'image' && options.allowPath === false) bad(`${where}.image`, 'a local path is not accepted here; store the image and give its object-store key as imageKey');
  if (typeof obj[source] !== 'string') bad(`${where}.${source}`, `must be a string, got ${describe(obj[source])}`);
  const value = obj[source] as string;

  const position = obj['position'] ?? WATERMARK_DEFAULTS.position;
  if (typeof position !== 'string' || !(WATERMARK_POSITIONS as readonly string[]).includes(position)) {
    bad(`${where}.position`, `must be one of ${WATERMARK_POSITIONS.join(', ')}, got ${describe(position)}`);
  }
  const hasPx = obj['marginPx'] !== undefined && obj['marginPx'] !== null;
  const hasFraction = obj['marginFraction'] !== undefined && obj['marginFraction'] !== null;
  if (hasPx && hasFraction) bad(where, 'set marginPx or marginFraction, not both');
  let margin: PlacementFields['margin'];
  if (hasPx) {
    const px = obj['marginPx'];
    if (!Number.isInteger(px) || (px as number) < 0 || (px as number) > 4096) bad(`${where}.marginPx`, `must be an integer 0–4096, got ${describe(px)}`);
    margin = { px: px as number };
  } else {
    margin = { fraction: fractionField(obj, 'marginFraction', where, WATERMARK_DEFAULTS.marginFraction, { zero: true, max: 0.5 }) };
  }
  const opacity = fractionField(obj, 'opacity', where, WATERMARK_DEFAULTS.opacity, { zero: true });
  const applyToSource = obj['applyToSource'] ?? false;
  if (typeof applyToSource !== 'boolean') bad(`${where}.applyToSource`, `must be true or false, got ${describe(applyToSource)}`);
  const placement = { position: position as WatermarkPosition, margin, opacity, ...(applyToSource === true ? { applyToSource: true as const } : {}) };

  if (source === 'text') {
    if (value.length > MAX_WATERMARK_TEXT_CHARS) bad(`${where}.text`, `at most ${MAX_WATERMARK_TEXT_CHARS} characters, got ${value.length}`);
    if (!TEXT_PATTERN.test(value)) bad(`${where}.text`, 'may hold letters, digits, spaces and . , _ - + # @ ! ? ( ) & / only');
    if (obj['widthFraction'] !== undefined && obj['widthFraction'] !== null) bad(`${where}.widthFraction`, 'applies to an image; a text watermark is sized by fontSizeFraction');
    return { kind: 'text', text: value, fontSizeFraction: fractionField(obj, 'fontSizeFraction', where, WATERMARK_DEFAULTS.fontSizeFraction, { max: 0.5 }), ...placement };
  }
  if (obj['fontSizeFraction'] !== undefined && obj['fontSizeFraction'] !== null) bad(`${where}.fontSizeFraction`, 'applies to a text watermark; an image is sized by widthFraction');
  if (value.length > 1024) bad(`${where}.${source}`, 'longer than 1024 characters');
  const image: WatermarkImageRef = source === 'image' ? { path: value } : { key: value };
  return { kind: 'image', image, widthFraction: fractionField(obj, 'widthFraction', where, WATERMARK_DEFAULTS.widthFraction), ...placement };
}

/** A frame size, pixels. */
export interface FrameSize { readonly width: number; readonly height: number }

/**
 * Checks that a measured image fits the frames it will be drawn on (at configuration time, so a
 * bad image never reaches a transcoder): its own size must not exceed the largest frame of the
 * ladder, and scaled to `widthFraction` of each frame's width it must fit that frame's height
 * with its margins.
 * @param frames the sizes of the ladder's renditions as configured (profile width × height)
 * @throws GatewayError INVALID_WATERMARK naming the image size and the frame.
 */
export function checkWatermarkFits(spec: WatermarkSpec, frames: readonly FrameSize[], where: string): void {
  if (spec.kind !== 'image' || frames.length === 0) return;
  const largest = frames.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  if (spec.imageWidthPx > largest.width || spec.imageHeightPx > largest.height) {
    bad(where, `image is ${spec.imageWidthPx}x${spec.imageHeightPx}, larger than the largest frame of the ladder (${largest.width}x${largest.height})`);
  }
  for (const frame of frames) {
    const marginPx = 'fraction' in spec.margin ? spec.margin.fraction * frame.width : 0;
    const heightPx = spec.widthFraction * frame.width * (spec.imageHeightPx / spec.imageWidthPx);
    if (heightPx + 2 * marginPx > frame.height) {
      bad(where, `image scaled to ${spec.widthFraction} of a ${frame.width}x${frame.height} frame is ${Math.round(heightPx)} px high, taller than the frame (with its margins); use a smaller widthFraction or a wider image`);
    }
  }
}

function even(n: number): number {
  return Math.max(2, 2 * Math.round(n / 2));
}

/**
 * The mark's rectangle in a frame of `frame` size, for a source `sourceWidthPx` wide (as
 * displayed): image width = even(widthFraction × frame width), height by the image's aspect
 * (even), shrunk to fit the frame's height if needed (never larger than the frame, so a
 * transcode never fails on it); margin = fraction × frame width, or px × frame width /
 * source width; position from the corner (or centred), clamped inside the frame. For text,
 * `height` is the font size (fontSizeFraction × frame height, at least 8 px) and the x/y are
 * those of the top-left corner drawtext is given for the left/top positions (right/bottom
 * alignments are expressions on the measured text, see ladder-args.ts).
 */
export function watermarkPlacement(spec: WatermarkSpec, frame: FrameSize, sourceWidthPx: number): WatermarkPlacement {
  const marginPx = Math.round('fraction' in spec.margin ? spec.margin.fraction * frame.width : spec.margin.px * frame.width / Math.max(sourceWidthPx, 1));
  if (spec.kind === 'text') {
    const size = Math.max(8, Math.round(spec.fontSizeFraction * frame.height));
    return { x: marginPx, y: marginPx, width: 0, height: size, marginPx };
  }
  let width = Math.min(even(spec.widthFraction * frame.width), frame.width - (frame.width % 2));
  let height = even(width * spec.imageHeightPx / spec.imageWidthPx);
  const maxHeight = frame.height - (frame.height % 2);
  if (height > maxHeight) {
    height = maxHeight;
    width = Math.min(even(height * spec.imageWidthPx / spec.imageHeightPx), frame.width - (frame.width % 2));
  }
  const clampX = (x: number): number => Math.max(0, Math.min(x, frame.width - width));
  const clampY = (y: number): number => Math.max(0, Math.min(y, frame.height - height));
  const left = clampX(marginPx);
  const right = clampX(frame.width - width - marginPx);
  const top = clampY(marginPx);
  const bottom = clampY(frame.height - height - marginPx);
  switch (spec.position) {
    case 'top-left': return { x: left, y: top, width, height, marginPx };
    case 'top-right': return { x: right, y: top, width, height, marginPx };
    case 'bottom-left': return { x: left, y: bottom, width, height, marginPx };
    case 'bottom-right': return { x: right, y: bottom, width, height, marginPx };
    default: return { x: clampX(Math.round((frame.width - width) / 2)), y: clampY(Math.round((frame.height - height) / 2)), width, height, marginPx };
  }
}

/**
 * Checks a spec carried in job data or a session record (written by a gateway, read by a
 * transcoder): the shape {@link WatermarkSpec} describes. Returns it typed, or undefined
 * when malformed (the transcoder then logs and transcodes without a mark rather than fail
 * the stream).
 */
export function parseWatermarkSpec(raw: unknown): WatermarkSpec | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const o = raw as Json;
  const num = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;
  if (typeof o['position'] !== 'string' || !(WATERMARK_POSITIONS as readonly string[]).includes(o['position'])) return undefined;
  if (!num(o['opacity'], 0, 1)) return undefined;
  const margin = o['margin'] as Json | undefined;
  if (typeof margin !== 'object' || margin === null || !(num(margin['fraction'], 0, 0.5) || (Number.isInteger(margin['px']) && num(margin['px'], 0, 4096)))) return undefined;
  if (o['applyToSource'] !== undefined && o['applyToSource'] !== true) return undefined;
  if (o['kind'] === 'text') {
    return typeof o['text'] === 'string' && TEXT_PATTERN.test(o['text']) && o['text'].length <= MAX_WATERMARK_TEXT_CHARS && num(o['fontSizeFraction'], 0.001, 0.5)
      ? raw as WatermarkSpec : undefined;
  }
  if (o['kind'] !== 'image') return undefined;
  const ok = typeof o['imageKey'] === 'string' && o['imageKey'] !== '' && (o['imageFormat'] === 'png' || o['imageFormat'] === 'jpeg')
    && Number.isInteger(o['imageWidthPx']) && num(o['imageWidthPx'], 1, 65535) && Number.isInteger(o['imageHeightPx']) && num(o['imageHeightPx'], 1, 65535)
    && num(o['widthFraction'], 0.001, 1);
  return ok ? raw as WatermarkSpec : undefined;
}
