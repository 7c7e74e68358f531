/**
 * Fetches the media a worker's answer points at, so the gateway can re-host it. ai-runner
 * answers with `data:` URLs (`data:image/png;base64,...`, `data:audio/wav;base64,...`, see
 * its `runner/app/routes/utils.py`); other workers may answer with their own http(s) URLs,
 * absolute or relative to the worker's base URL.
 *
 * Origin rule (against server-side request forgery: a worker's answer must not make the
 * gateway reach Redis or any other host it can see): result media come only from a
 * `data:` URL or from the worker's own origin, i.e. the scheme, host and port of the URL
 * the worker was registered with (RFC 6454 origin, as `new URL(u).origin` computes it).
 * Any other scheme (`file:`, `ftp:`, `gopher:`, ...), another host or port, credentials in
 * the URL, or a redirect whose target is another origin is refused before anything is
 * contacted. Redirects within the worker's origin are followed, at most
 * {@link MAX_REDIRECTS}; each target is checked before it is requested. Size and time are
 * capped by `maxBytes` and `timeoutMs`.
 *
 * Every failure is a {@link ResultMediaError} (a {@link WorkerCallError} of kind `server`:
 * the worker's answer was unusable), so the retry policy treats it like a bad answer and
 * the worker is suspended and failed over.
 */
import { WorkerCallError, readBodyCapped } from './worker-reply.ts';

/** Media bytes and their media type (lower case, without parameters, e.g. `image/png`). */
export interface ResultMedia {
  readonly data: Buffer;
  readonly contentType: string;
}

/**
 * A worker's result media could not be used: refused by the origin rule, unreachable, an
 * error status, too large, too slow, or malformed. Kind `server`; `refused` tells a URL the
 * gateway would not contact (origin rule) from one that failed while fetching.
 */
export class ResultMediaError extends WorkerCallError {
  /** True when the URL was refused by the origin rule (nothing was contacted for it). */
  readonly refused: boolean;

  constructor(message: string, options: { status?: number; cause?: unknown; refused?: boolean } = {}) {
    super('server', message, options);
    this.name = 'ResultMediaError';
    this.refused = options.refused ?? false;
  }
}

export interface FetchResultMediaOptions {
  /** Limit for the whole download of an http(s) URL (redirects included), ms. */
  readonly timeoutMs: number;
  /** Largest media accepted, bytes; enforced while streaming (and before decoding a data: URL). */
  readonly maxBytes: number;
  /**
   * The worker's registered base URL: relative URLs resolve against it and its origin is
   * the only http(s) origin media may come from. Without it only `data:` URLs are accepted.
   */
  readonly baseUrl?: string;
  /** The worker's bearer token. */
  readonly token?: string;
  readonly signal?: AbortSignal;
}

/** Same-origin redirects followed for an http(s) media URL (mediagate's choice). */
export const MAX_REDIRECTS = 3;

/** RFC 2397's default media type of a `data:` URL without one. */
const DEFAULT_DATA_MEDIA_TYPE = 'text/plain';

/** Base64 text (RFC 4648 §4 alphabet) with at most two `=` of padding at its end. */
const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The bytes behind a result URL, under the origin rule of the module docs.
 * @throws ResultMediaError (kind `server`) for a URL the origin rule refuses (`refused`
 *   set; nothing contacted), a malformed URL, a redirect elsewhere or more than
 *   {@link MAX_REDIRECTS}, an error status, a timeout, a connection failure, or media over
 *   `maxBytes`.
 */
export async function fetchResultMedia(url: string, options: FetchResultMediaOptions): Promise<ResultMedia> {
  if (/^data:/i.test(url.trimStart())) return parseDataUrl(url.trim(), options.maxBytes);

  const trustedOrigin = options.baseUrl === undefined ? undefined : safeOrigin(options.baseUrl);
  let target = checkedMediaUrl(url, options.baseUrl, trustedOrigin, 'result media URL');
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, options.timeoutMs);
  const onAbort = (): void => controller.abort();
  if (options.signal?.aborted) controller.abort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (let redirects = 0; ; redirects++) {
      const headers: Record<string, string> = {};
      // Every target is the worker's origin (checkedMediaUrl), so its token may go along.
      if (options.token !== undefined && options.token !== '') headers['authorization'] = `Bearer ${options.token}`;
      const response = await fetch(target, { headers, signal: controller.signal, redirect: 'manual' });
      if (response.status >= 300 && response.status <= 399 && response.headers.get('location') !== null) {
        await response.body?.cancel().catch(() => undefined);
        if (redirects >= MAX_REDIRECTS) throw mediaError(`result media redirected more than ${MAX_REDIRECTS} times`);
        target = checkedMediaUrl(response.headers.get('location')!, target.href, trustedOrigin, 'result media redirect');
        continue;
      }
      if (response.status < 200 || response.status > 299) {
        await response.body?.cancel().catch(() => undefined);
        throw mediaError(`result media fetch answered ${response.status}`, { status: response.status });
      }
      const declared = Number(response.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > options.maxBytes) {
        await response.body?.cancel().catch(() => undefined);
        throw mediaError(`result media is larger than ${options.maxBytes} bytes`, { status: response.status });
      }
      const data = await readCapped(response, options.maxBytes);
      return { data, contentType: mediaTypeOf(response.headers.get('content-type')) ?? 'application/octet-stream' };
    }
  } catch (err) {
    if (err instanceof WorkerCallError) throw err;
    if (timedOut) throw mediaError(`result media fetch timed out after ${options.timeoutMs} ms`, { cause: err });
    if (options.signal?.aborted) throw mediaError('result media fetch aborted', { cause: err });
    throw mediaError(`result media fetch failed: ${reasonOf(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Decodes a `data:` URL (RFC 2397, as the WHATWG fetch "data: URL processor" reads it):
 * `data:[<media type>][;<param>=<value>]*[;base64],<data>`. The data is percent-decoded
 * byte by byte; with `;base64` the result is then base64-decoded (ASCII whitespace
 * ignored, padding optional). The media type defaults to `text/plain`. Pure.
 * @param maxBytes optional limit on the decoded size, checked before decoding
 * @returns the bytes and the media type (lower case, without parameters)
 * @throws ResultMediaError (kind `server`) when the URL is malformed or too large
 */
export function parseDataUrl(url: string, maxBytes?: number): ResultMedia {
  if (!/^data:/i.test(url)) throw mediaError('not a data: URL');
  const comma = url.indexOf(',');
  if (comma < 0) throw mediaError('data: URL has no comma');
  const header = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  const params = header.split(';').map((p) => p.trim());
  let base64 = false;
  if (params.length > 1 && params[params.length - 1]!.toLowerCase() === 'base64') {
    base64 = true;
    params.pop();
  }
  const mediaType = params[0]!.toLowerCase();
  let contentType = DEFAULT_DATA_MEDIA_TYPE;
  if (mediaType !== '') {
    if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mediaType)) throw mediaError('data: URL has an invalid media type');
    contentType = mediaType;
  }

  if (!base64) {
    const bytes = percentDecode(payload);
    if (maxBytes !== undefined && bytes.length > maxBytes) throw mediaError(`result media is larger than ${maxBytes} bytes`);
    return { data: bytes, contentType };
  }
  // A runner's payload is plain base64 (no percent-escapes, no whitespace): it is decoded as
  // it is and checked by the decoded length (decodeStrictBase64). Anything else is
  // percent-decoded and stripped of ASCII whitespace first, then checked the same way.
  const plain = base64Size(payload);
  if (plain !== undefined && (maxBytes === undefined || plain <= maxBytes)) {
    const data = decodeStrictBase64(payload, plain);
    if (data !== undefined) return { data, contentType };
  }
  const text = percentDecode(payload).toString('latin1').replace(/[\t\n\f\r ]/g, '');
  const size = base64Size(text);
  if (size === undefined || !BASE64_TEXT.test(text)) throw mediaError('data: URL has invalid base64');
  // The decoded size is known before decoding.
  if (maxBytes !== undefined && size > maxBytes) throw mediaError(`result media is larger than ${maxBytes} bytes`);
  return { data: Buffer.from(text, 'base64'), contentType };
}

/**
 * The decoded size of base64 text of this length and padding (RFC 4648 §4: `=` padding of at
 * most two characters and only to a multiple of 4; unpadded text may not leave a single
 * character over); undefined when the length or the padding rules it out. Looks only at the
 * length and the last two characters.
 */
function base64Size(text: string): number | undefined {
  const unpadded = text.length - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0);
  if (unpadded % 4 === 1 || (unpadded !== text.length && text.length % 4 !== 0)) return undefined;
  return Math.floor((unpadded * 3) / 4);
}

/**
 * `text` decoded when it is base64 of the RFC 4648 §4 alphabet with `=` only at its end,
 * else undefined; `size` is {@link base64Size} of it. One native pass instead of a regular
 * expression over the text: Node's decoder skips characters outside the alphabet and stops
 * at the first `=`, and either one makes the result shorter than `size` (⌊3n/4⌋ drops with
 * every character taken away from a length n the padding rules allow). It also reads the
 * URL-safe `-` and `_` as `+` and `/`, so those are looked for first.
 */
function decodeStrictBase64(text: string, size: number): Buffer | undefined {
  if (text.includes('-') || text.includes('_')) return undefined;
  const data = Buffer.from(text, 'base64');
  return data.length === size ? data : undefined;
}

/**
 * Percent-decodes to bytes (WHATWG URL "percent-decode"): over the UTF-8 bytes of the
 * text, `%XX` becomes that byte; a `%` not followed by two hex digits stays as it is.
 */
function percentDecode(text: string): Buffer {
  const input = Buffer.from(text, 'utf8');
  if (!text.includes('%')) return input;
  const out = Buffer.alloc(input.length);
  let j = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === 0x25 && i + 2 < input.length && isHexDigit(input[i + 1]!) && isHexDigit(input[i + 2]!)) {
      out[j++] = parseInt(String.fromCharCode(input[i + 1]!, input[i + 2]!), 16);
      i += 2;
    } else {
      out[j++] = b;
    }
  }
  return out.subarray(0, j);
}

function isHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/**
 * An absolute http(s) URL for a media reference, checked against the origin rule: relative
 * references resolve against `baseUrl` (treated as a directory); the result must be
 * http(s), carry no credentials and have the origin `trustedOrigin`.
 * @param what names the reference in messages ("result media URL", "result media redirect")
 * @throws ResultMediaError with `refused` set, naming the problem
 */
function checkedMediaUrl(url: string, baseUrl: string | undefined, trustedOrigin: string | undefined, what: string): URL {
  let base: URL | undefined;
  if (baseUrl !== undefined) {
    try {
      base = new URL(baseUrl);
      if (!base.pathname.endsWith('/')) base.pathname += '/';
    } catch {
      throw refusal('worker base URL is not a valid URL');
    }
  }
  let resolved: URL;
  try {
    resolved = base === undefined ? new URL(url) : new URL(url, base);
  } catch {
    throw refusal(base === undefined ? `${what} is relative and no worker base URL is known` : `${what} is not a valid URL`);
  }
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') {
    throw refusal(`${what} scheme ${resolved.protocol} is not allowed: result media must be a data: URL or come from the worker's own http(s) origin`);
  }
  if (resolved.username !== '' || resolved.password !== '') throw refusal(`${what} must not contain credentials`);
  if (trustedOrigin === undefined || resolved.origin !== trustedOrigin) {
    throw refusal(`${what} points at another origin than the worker's: result media must be a data: URL or come from the worker's own origin`);
  }
  return resolved;
}

function safeOrigin(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

function readCapped(response: Response, maxBytes: number): Promise<Buffer> {
  return readBodyCapped(response.body, maxBytes, 'throw', () => mediaError(`result media is larger than ${maxBytes} bytes`, { status: response.status }));
}

function mediaTypeOf(contentType: string | null): string | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type === undefined || type === '' ? undefined : type;
}

function reasonOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  return err instanceof Error ? err.message : String(err);
}

function mediaError(message: string, options: { status?: number; cause?: unknown } = {}): ResultMediaError {
  return new ResultMediaError(message, options);
}

function refusal(message: string): ResultMediaError {
  return new ResultMediaError(message, { refused: true });
}
