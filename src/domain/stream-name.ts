import { GatewayError } from '../errors/gateway-error.ts';

/**
 * Manifest IDs, stream keys and rendition names share one grammar:
 * `[A-Za-z0-9_-]{1,64}` (docs/wire-contract.md §2). Anything else — slashes, dots,
 * `..`, NUL, percent-escapes, empty — is refused before it touches storage.
 */
export const STREAM_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidStreamName(name: unknown): name is string {
  return typeof name === 'string' && STREAM_NAME_PATTERN.test(name);
}

/**
 * Returns `name` unchanged when valid.
 * @param what what the name is, for the message ("manifest ID", "stream key", "rendition")
 * @throws GatewayError INVALID_NAME (400) naming `what`; the offending value is not echoed
 *   when `what` is a secret (stream key).
 */
export function assertStreamName(name: unknown, what: string): string {
  if (isValidStreamName(name)) return name;
  const shown = what === 'stream key' ? '' : ` ${JSON.stringify(String(name).slice(0, 80))}`;
  throw new GatewayError('INVALID_NAME', `invalid ${what}${shown}: expected 1-64 characters of [A-Za-z0-9_-]`);
}

/** Segment sequence numbers: non-negative integers below 2^31, decimal without leading zeros. */
export function parseSeq(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text)) return undefined;
  const seq = Number(text);
  return seq < 2 ** 31 ? seq : undefined;
}
