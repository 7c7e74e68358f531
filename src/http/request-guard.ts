/**
 * The request guard of the HTTP shell: refuses requests a browser can be tricked into
 * sending to a gateway that trusts its loopback address, before any router sees them.
 *
 * 1. Host check, against DNS rebinding (a page on `attacker.example` re-resolves its own
 *    name to 127.0.0.1 and then talks to the gateway as a same-origin page; the only trace
 *    is the `Host` header, RFC 9110 §7.2). A request is accepted when its Host names this
 *    gateway: a loopback name (`localhost`, `127.x.x.x`, `[::1]`), the host of
 *    `http.publicUrl`, the bind address, or an entry of `http.allowedHosts`
 *    (`.example.com` matches that domain and its subdomains); any port. A request without
 *    a Host header (HTTP/1.0, not a browser) is accepted. Exempt, on any Host: `GET`,
 *    `HEAD` and `OPTIONS` of `/stream/...` (HLS playback and AI result media, public and
 *    served with CORS for players, also behind reverse proxies) and `/healthz`.
 *    The check is on when the gateway binds loopback (where loopback is trusted: the
 *    APIs answer without an admin token, AI requests and pushes without keys) or when
 *    `http.allowedHosts` is set; on a public bind without that list every Host is accepted
 *    (the admin token and keys protect the APIs there).
 * 2. Cross-site check, against cross-site request forgery (a page posting a `text/plain`
 *    or form body, which browsers send without a CORS preflight). For `POST`, `PUT`,
 *    `PATCH` and `DELETE` on every path and bind: refused when `Sec-Fetch-Site` (W3C Fetch
 *    Metadata Request Headers) is `cross-site` or `same-site` (another port on 127.0.0.1 is
 *    same-site), or when `Origin` (RFC 6454) is present and is neither this request's own
 *    origin (its host and port equal the Host header) nor the origin of `http.publicUrl`
 *    (`Origin: null` is refused). Clients that are not browsers (curl, OBS, ffmpeg,
 *    workers, SDKs) send neither header and are not affected. The gateway offers no CORS
 *    for these endpoints, so no legitimate browser page on another origin uses them.
 *
 * Refusals are 403 in the contract shape: HOST_NOT_ALLOWED or CROSS_SITE_REQUEST, with a
 * message naming the header and the setting that decides.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';
import { isLoopbackHost } from '../config/config.ts';

export interface RequestGuardOptions {
  /** Whether the Host check applies (loopback bind, or `http.allowedHosts` configured). */
  readonly checkHost: boolean;
  /** `http.publicUrl` as resolved at startup (its host is accepted; its origin may post). */
  readonly publicUrl: string;
  /** More accepted host names: the bind address and `http.allowedHosts`. Case-insensitive. */
  readonly hostNames: readonly string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Longest part of a refused header value shown in a message, characters. */
const MAX_SHOWN_CHARS = 100;

/**
 * Whether a request may skip the Host check: safe methods on public playback paths.
 * @param path the request path (no query)
 */
export function isPublicRead(method: string, path: string): boolean {
  return SAFE_METHODS.has(method) && (path.startsWith('/stream/') || path === '/healthz');
}

/**
 * The lower-case host name of a Host header value (`[::1]:9935` → `::1`,
 * `Example.COM.:80` → `example.com`); undefined when it is not a valid host.
 */
export function hostNameOf(hostHeader: string): string | undefined {
  // Userinfo, a path, a query or whitespace make it something other than a host.
  if (!/^[^\s/?#@\\]+$/.test(hostHeader)) return undefined;
  try {
    return new URL(`http://${hostHeader}`).hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/** Normalizes a configured host name: lower case, no brackets, no trailing dot. */
function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/**
 * A predicate telling whether a host name (as {@link hostNameOf} returns it) is one of the
 * gateway's names: loopback names, the host of `publicUrl`, and `hostNames` (an entry
 * starting with `.` matches that domain and its subdomains).
 */
export function hostMatcher(publicUrl: string, hostNames: readonly string[]): (hostName: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const publicHost = publicUrl === '' ? undefined : hostNameOf(safeUrlHost(publicUrl) ?? '');
  for (const raw of [...hostNames, ...(publicHost ? [publicHost] : [])]) {
    const name = normalizeName(raw);
    if (name === '' || name === '0.0.0.0' || name === '::') continue; // wildcard bind addresses name no host
    if (name.startsWith('.')) suffixes.push(name);
    else exact.add(name);
  }
  return (hostName) => hostName === 'localhost' || isLoopbackHost(hostName) || exact.has(hostName)
    || suffixes.some((s) => hostName.endsWith(s) || hostName === s.slice(1));
}

function safeUrlHost(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/** The origin of `url` (`https://host:port`), or undefined when it is not a URL or its origin is opaque. */
export function safeOrigin(url: string): string | undefined {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** A header value safe to echo in a message: printable ASCII, cut. */
function shown(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > MAX_SHOWN_CHARS ? `${clean.slice(0, MAX_SHOWN_CHARS)}…` : clean;
}

/**
 * Why a state-changing request is cross-site, or undefined when it is not (or not from a
 * browser). Pure.
 * @param headers the request's `host`, `origin` and `sec-fetch-site` headers
 * @param publicOrigin the origin of `http.publicUrl`, if any
 */
export function crossSiteReason(headers: { host?: string; origin?: string; secFetchSite?: string }, publicOrigin: string | undefined): string | undefined {
  const site = headers.secFetchSite?.trim().toLowerCase();
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site: ${site}`;
  const origin = headers.origin?.trim();
  if (origin === undefined || origin === '') return undefined;
  if (origin === 'null') return 'Origin: null (an opaque origin)';
  let originUrl: URL;
  try {
    originUrl = new URL(origin);
  } catch {
    return `Origin ${shown(origin)} is not a valid origin`;
  }
  if (publicOrigin !== undefined && originUrl.origin === publicOrigin) return undefined;
  if (headers.host !== undefined && originUrl.host === safeUrlHost(`http://${headers.host}`)) return undefined;
  return `Origin ${shown(origin)} is not this gateway's origin`;
}

/**
 * The guard middleware ({@link RequestGuardOptions}, rules in the module docs); refusals go
 * to the error handler as GatewayError HOST_NOT_ALLOWED or CROSS_SITE_REQUEST (403).
 */
export function requestGuard(options: RequestGuardOptions): RequestHandler {
  const isOurHost = hostMatcher(options.publicUrl, options.hostNames);
  const publicOrigin = options.publicUrl === '' ? undefined : safeOrigin(options.publicUrl);
  return (req: Request, _res: Response, next: NextFunction) => {
    const host = req.headers.host;
    if (options.checkHost && host !== undefined && !isPublicRead(req.method, req.path)) {
      const name = hostNameOf(host);
      if (name === undefined || !isOurHost(name)) {
        next(new GatewayError('HOST_NOT_ALLOWED', `Host ${shown(host)} is not a name of this gateway: use a loopback name, the host of http.publicUrl, or add it to http.allowedHosts (MEDIAGATE_HTTP_ALLOWED_HOSTS)`));
        return;
      }
    }
    if (!SAFE_METHODS.has(req.method)) {
      const reason = crossSiteReason({
        ...(host !== undefined ? { host } : {}),
        ...(req.headers.origin !== undefined ? { origin: req.headers.origin } : {}),
        ...(typeof req.headers['sec-fetch-site'] === 'string' ? { secFetchSite: req.headers['sec-fetch-site'] } : {}),
      }, publicOrigin);
      if (reason !== undefined) {
        next(new GatewayError('CROSS_SITE_REQUEST', `cross-site ${req.method} refused (${reason}): state-changing requests are accepted from this gateway's own origin or the origin of http.publicUrl, or from clients that send no Origin`));
        return;
      }
    }
    next();
  };
}
