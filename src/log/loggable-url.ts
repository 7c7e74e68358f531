/**
 * URLs as they may be logged or shown: credentials and tokens often ride in a URL's
 * `user:password@` or query (webhook receivers' tokens, a worker's basic auth).
 */

/**
 * Origin and path only: the userinfo (`user:password@`), the query and the fragment are left
 * out; `[unparseable url]` for text that is not a URL (WHATWG URL parsing, as `new URL` does).
 */
export function loggableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '[unparseable url]';
  }
}
