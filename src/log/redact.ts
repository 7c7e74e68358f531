/**
 * Redaction of secrets from log text: the one `[redacted]` marker used by the logger's
 * field censor and every hand-redacted string, and the stream-key redaction of free-form
 * text (node-media-server's messages, ffmpeg's stderr). RTMP stream paths are
 * `/<app>/<streamKey>` and the key is a secret (docs/wire-contract.md §2): it must never
 * reach a log line.
 */

/** What a redacted secret is replaced with in logs and error text. */
export const REDACTED = '[redacted]';

/**
 * Replaces the stream name in free text with `[redacted]`:
 * - RTMP URLs: `rtmp://host:port/live/<name>` -> `rtmp://host:port/live/[redacted]`, and
 *   `rtmp://host/<name>` (Livepeer-style, no app) -> `rtmp://host/[redacted]`;
 * - NMS's `app=<app>, name=<name>` dumps (invalid path messages): both redacted;
 * - bare stream paths of exactly two segments, `/<app>/<name>`, followed by a space, a
 *   quote, a comma or the end: `/live/[redacted]`. Longer paths (segment files) are kept,
 *   so a two-segment file path like `/tmp/x` is redacted too: that is the price of safety.
 * @param text one log message; not mutated
 * @returns the redacted text
 */
export function redactStreamPaths(text: string): string {
  return text
    .replace(/(rtmp[a-z]*:\/\/[^\s/'"]+\/)(?:([^\s/'"]+)\/)?[^\s'"]*/gi,
      (_m, prefix: string, app: string | undefined) => `${prefix}${app === undefined ? '' : `${app}/`}${REDACTED}`)
    .replace(/\bapp=.*$/s, `app=${REDACTED}`)
    .replace(/\bname=.*$/s, `name=${REDACTED}`)
    .replace(/(^|[^\w:/.-])(\/[^\s/'",]+\/)[^\s/'",]+(?=$|[\s'",])/g, `$1$2${REDACTED}`);
}

/**
 * Replaces every literal occurrence of each secret, then applies {@link redactStreamPaths}.
 * @param text log text
 * @param secrets exact strings to remove (empty strings are ignored)
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join(REDACTED);
  }
  return redactStreamPaths(out);
}
