/**
 * Parameters of the reference live pipeline `mediagate/cpu-filter` (docs/operations.md, "The
 * reference live worker"): a per-frame colour filter standing in for a GPU diffusion model.
 *
 * `{"filter": "negate" | "grayscale" | "tint" | "none", "tint": {"r", "g", "b"}}`, every key
 * optional: `filter` defaults to `negate`, `tint` (0-255 per channel) to `{r:255, g:160, b:64}`
 * and is used by the `tint` filter only. As in Livepeer's ai-runner, every control message is
 * the complete new parameter dict (keys left out take their defaults, not their previous
 * values), and `{"keep": "alive"}` is the gateway's keep-alive, not parameters. Unknown keys
 * are ignored (a gateway may pass through parameters meant for other pipelines).
 */
import { createHash } from 'node:crypto';

export const LIVE_FILTERS = ['negate', 'grayscale', 'tint', 'none'] as const;
export type LiveFilter = (typeof LIVE_FILTERS)[number];

export interface Rgb { readonly r: number; readonly g: number; readonly b: number }

/** The parameters as the pipeline uses them (defaults filled in). */
export interface LiveFilterParams {
  readonly filter: LiveFilter;
  readonly tint: Rgb;
}

export const DEFAULT_TINT: Rgb = { r: 255, g: 160, b: 64 };
export const DEFAULT_LIVE_PARAMS: LiveFilterParams = { filter: 'negate', tint: DEFAULT_TINT };

/** Parameters that cannot be applied; the message names the field. */
export class LiveParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LiveParamsError';
  }
}

/** True for the gateway's control-channel keep-alive `{"keep":"alive"}` (Livepeer). */
export function isKeepAlive(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    && Object.keys(value).length === 1 && (value as { keep?: unknown }).keep === 'alive';
}

function channel(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new LiveParamsError(`params.tint.${name} must be an integer from 0 to 255`);
  }
  return value;
}

/**
 * The pipeline's parameters from a request's or control message's dict (undefined or null = all defaults).
 * @throws LiveParamsError for a non-object, an unknown filter, or a bad tint.
 */
export function parseLiveParams(raw: unknown): LiveFilterParams {
  if (raw === undefined || raw === null) return DEFAULT_LIVE_PARAMS;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new LiveParamsError('params must be a JSON object');
  const dict = raw as Record<string, unknown>;
  const filter = dict['filter'] ?? DEFAULT_LIVE_PARAMS.filter;
  if (typeof filter !== 'string' || !(LIVE_FILTERS as readonly string[]).includes(filter)) {
    throw new LiveParamsError(`params.filter must be one of ${LIVE_FILTERS.join(', ')}`);
  }
  let tint = DEFAULT_TINT;
  const t = dict['tint'];
  if (t !== undefined) {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new LiveParamsError('params.tint must be an object {r, g, b}');
    const o = t as Record<string, unknown>;
    tint = { r: channel(o['r'], 'r'), g: channel(o['g'], 'g'), b: channel(o['b'], 'b') };
  }
  return { filter: filter as LiveFilter, tint };
}

/** JSON with object keys sorted (Python's `json.dumps(sort_keys=True)` spacing: `", "` and `": "`). */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}: ${sortedJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** ai-runner's `last_params_hash`: the MD5 of the params dict as sorted-key JSON, hex. */
export function paramsHash(params: unknown): string {
  return createHash('md5').update(sortedJson(params)).digest('hex');
}
