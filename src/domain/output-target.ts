/**
 * Restream targets (docs/wire-contract.md, "Restream outputs"): where a stream's copy is sent
 * and how a target URL is shown. Pure: the check of a target URL at configuration time (the
 * control API, a stream key's `outputs`, the auth webhook's answer) and its redaction.
 *
 * A target URL carries a secret (the target's stream key: the last path segment of an RTMP
 * URL, a userinfo, or an SRT `streamid`/`passphrase` query value), so it is shown only as
 * {@link redactOutputUrl} gives it: in logs, API replies, events. Metric labels never carry it.
 */
import { GatewayError } from '../errors/gateway-error.ts';
import { SOURCE_RENDITION } from './segment.ts';

/** One restream output asked for: the target and the rendition copied to it. */
export interface OutputRequest {
  /** `rtmp://`, `rtmps://` or `srt://` URL of the target (a secret: see {@link redactOutputUrl}). */
  readonly url: string;
  /** `source` (the untouched input) or a profile name of the stream's ladder. */
  readonly rendition: string;
}

/** The target protocols (URL schemes) an output can send to, and the ffmpeg muxer each takes. */
export const OUTPUT_SCHEMES = { 'rtmp:': 'flv', 'rtmps:': 'flv', 'srt:': 'mpegts' } as const;

export type OutputScheme = keyof typeof OUTPUT_SCHEMES;

/** What a redacted secret in a target URL is replaced with (the `[redacted]` of log/redact.ts, spelled here: domain/ imports no log/). */
const REDACTED = '[redacted]';

/** Longest target URL accepted, in characters (an RTMP URL with a long key is ~200). */
export const MAX_OUTPUT_URL_CHARS = 2048;

/**
 * Longest secret (an RTMP stream key with its query, an SRT `streamid` or `passphrase`)
 * accepted, in characters: ffmpeg 5.1 reads the option lines of a preset file (`-fpre`) into
 * a 1000-byte buffer (fftools/ffmpeg_opt.c `opt_preset`), and the line also holds the option's
 * name.
 */
export const MAX_OUTPUT_SECRET_CHARS = 900;

/** The SRT URL parameters that carry secrets, under ffmpeg's libsrt option of the same name. */
const SRT_SECRET_PARAMS = ['streamid', 'passphrase'] as const;

/**
 * A target URL split so that its secrets need not be on a command line: the URL without them,
 * and the ffmpeg protocol options that carry them.
 * - rtmp/rtmps: the last path segment and the query (the stream key, as ffmpeg's RTMP client
 *   takes it from the URL: everything after the path's last `/`) become `rtmp_playpath`;
 *   the URL keeps the path up to and including that `/` (the application).
 * - srt: the `streamid` and `passphrase` parameters become the options of those names, with
 *   the value as ffmpeg 5.1 reads a URL parameter (`av_find_info_tag`: up to the next `&`,
 *   `+` read as a space, no percent-decoding; the first occurrence wins); the other
 *   parameters stay in the URL.
 * A userinfo stays in the URL (ffmpeg has no option for it).
 * @param url a URL that passed {@link checkOutputUrl}
 */
export function splitOutputSecrets(url: string): { publicUrl: string; options: Array<[name: string, value: string]> } {
  const q = url.indexOf('?');
  const base = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  if (url.toLowerCase().startsWith('srt:')) {
    const options: Array<[string, string]> = [];
    const kept: string[] = [];
    for (const pair of query === '' ? [] : query.split('&')) {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if ((SRT_SECRET_PARAMS as readonly string[]).includes(name)) {
        if (eq >= 0 && !options.some(([n]) => n === name)) options.push([name, pair.slice(eq + 1).replaceAll('+', ' ')]);
      } else {
        kept.push(pair);
      }
    }
    return { publicUrl: kept.length > 0 ? `${base}?${kept.join('&')}` : base, options };
  }
  const cut = base.lastIndexOf('/');
  const playpath = base.slice(cut + 1) + (q < 0 ? '' : url.slice(q));
  return { publicUrl: base.slice(0, cut + 1), options: playpath === '' ? [] : [['rtmp_playpath', playpath]] };
}

/** A rendition name as profiles allow (domain/profile.ts names: letters, digits, `_`, `-`, `.`). */
const RENDITION_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Checks an output's target URL.
 * @returns the parsed URL and the ffmpeg muxer for it (`flv` for rtmp/rtmps, `mpegts` for srt)
 * @throws GatewayError INVALID_OUTPUT_URL naming the problem: not a string, too long, not an
 *   absolute URL ("malformed"), an unsupported scheme (named, e.g. `http:`), no host,
 *   control characters/spaces, or a stream key / SRT secret longer than
 *   {@link MAX_OUTPUT_SECRET_CHARS}. The message never repeats the URL (it may carry a secret).
 */
export function checkOutputUrl(url: unknown): { url: URL; scheme: OutputScheme; muxer: 'flv' | 'mpegts' } {
  if (typeof url !== 'string' || url === '') throw new GatewayError('INVALID_OUTPUT_URL', 'output url is missing: expected an rtmp://, rtmps:// or srt:// URL');
  if (url.length > MAX_OUTPUT_URL_CHARS) throw new GatewayError('INVALID_OUTPUT_URL', `output url is longer than ${MAX_OUTPUT_URL_CHARS} characters`);
  // ffmpeg takes the URL as one argument: whitespace or control characters are never part of a real target.
  if (/[\s\u0000-\u001f\u007f]/.test(url)) throw new GatewayError('INVALID_OUTPUT_URL', 'output url is malformed: it contains whitespace or control characters');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GatewayError('INVALID_OUTPUT_URL', 'output url is malformed: not an absolute URL (expected rtmp://host[:port]/app/key, rtmps://… or srt://host:port?…)');
  }
  const scheme = parsed.protocol.toLowerCase();
  if (!(scheme in OUTPUT_SCHEMES)) {
    throw new GatewayError('INVALID_OUTPUT_URL', `output url scheme ${JSON.stringify(scheme.slice(0, 20))} is not supported: use rtmp://, rtmps:// or srt://`);
  }
  if (parsed.hostname === '') throw new GatewayError('INVALID_OUTPUT_URL', `output url is malformed: ${scheme}// URL without a host`);
  if (scheme === 'srt:' && parsed.port === '') throw new GatewayError('INVALID_OUTPUT_URL', 'output url is malformed: an srt:// URL needs a port');
  if (scheme !== 'srt:' && parsed.pathname.replace(/\/+$/, '') === '') {
    throw new GatewayError('INVALID_OUTPUT_URL', `output url is malformed: an ${scheme}// URL needs an application path (rtmp://host/app/key)`);
  }
  const typed = scheme as OutputScheme;
  for (const [name, value] of splitOutputSecrets(url).options) {
    if (value.length > MAX_OUTPUT_SECRET_CHARS) {
      throw new GatewayError('INVALID_OUTPUT_URL', `output url's ${name === 'rtmp_playpath' ? 'stream key' : name} is longer than ${MAX_OUTPUT_SECRET_CHARS} characters`);
    }
  }
  return { url: parsed, scheme: typed, muxer: OUTPUT_SCHEMES[typed] };
}

/**
 * A target URL as it may be shown: scheme, host and port kept; the userinfo, the last path
 * segment (an RTMP stream key) and every query value (an SRT `streamid`, `passphrase`, an
 * RTMP key passed as a query) replaced by `[redacted]`; the fragment dropped. Text that is
 * not a URL gives `[redacted]` whole.
 * e.g. `rtmp://a.rtmp.youtube.com/live2/abcd-1234` → `rtmp://a.rtmp.youtube.com/live2/[redacted]`,
 * `srt://host:9000?streamid=k&passphrase=p` → `srt://host:9000?streamid=[redacted]&passphrase=[redacted]`.
 */
export function redactOutputUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return REDACTED;
  }
  const user = parsed.username !== '' || parsed.password !== '' ? `${REDACTED}@` : '';
  const segments = parsed.pathname.split('/');
  const last = segments.length - 1;
  // `/live/key` and `/live/key/` both lose `key`; a path of only `/` keeps nothing to hide.
  const keyAt = segments[last] === '' && last > 1 ? last - 1 : last;
  if (keyAt > 0 && segments[keyAt] !== '') segments[keyAt] = REDACTED;
  const query = [...parsed.searchParams.keys()].map((name) => `${encodeURIComponent(name)}=${REDACTED}`).join('&');
  return `${parsed.protocol}//${user}${parsed.host}${segments.join('/')}${query ? `?${query}` : ''}`;
}

/**
 * Checks a rendition name of an output request (the stream's ladder is checked later, when
 * the stream is known).
 * @throws GatewayError UNKNOWN_RENDITION when it is not a well-formed profile name
 */
export function checkRenditionName(rendition: unknown): string {
  if (rendition === undefined || rendition === null) return SOURCE_RENDITION;
  if (typeof rendition !== 'string' || !RENDITION_NAME.test(rendition)) {
    throw new GatewayError('UNKNOWN_RENDITION', 'output rendition must be "source" or a profile name of the stream\'s ladder (1-64 of [A-Za-z0-9_.-])');
  }
  return rendition;
}

/**
 * Parses a list of outputs from configuration (a stream key's `outputs`) or the auth
 * webhook's answer: `[{"url": "rtmp://…", "rendition": "source"}]` (`rendition` optional,
 * default `source`). Every URL is checked with {@link checkOutputUrl}.
 * @param where names the source in error messages, e.g. `auth webhook`
 * @throws GatewayError INVALID_OUTPUT_URL / UNKNOWN_RENDITION, or INVALID_REQUEST when it is not
 *   an array of objects; messages name the entry's index, never its URL
 */
export function parseOutputRequests(raw: unknown, where: string): OutputRequest[] {
  if (!Array.isArray(raw)) throw new GatewayError('INVALID_REQUEST', `${where}: outputs must be an array of {"url", "rendition"} objects`);
  return raw.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new GatewayError('INVALID_REQUEST', `${where}: outputs[${i}] must be an object {"url", "rendition"}`);
    }
    const o = entry as Record<string, unknown>;
    try {
      checkOutputUrl(o['url']);
      return { url: o['url'] as string, rendition: checkRenditionName(o['rendition']) };
    } catch (err) {
      if (err instanceof GatewayError) throw new GatewayError(err.code, `${where}: outputs[${i}]: ${err.message}`);
      throw err;
    }
  });
}
