/**
 * Trickle: Livepeer's segmented HTTP streaming protocol (go-livepeer `trickle/`), the wire
 * of live video-to-video between a gateway and a live worker. Our description of it is in
 * docs/wire-contract.md ("Trickle").
 *
 * A channel is a sequence of numbered segments. Publishing a segment is one
 * `POST <base>/<channel>/<seq>` with a streamed body; subscribing is
 * `GET <base>/<channel>/<seq>`, answered with the segment's bytes as they arrive (a
 * subscriber may read a segment while it is still being published). `DELETE <base>/<channel>`
 * closes the channel.
 */

/** The mount path of trickle channels on a gateway or worker HTTP server (go-livepeer's `/ai/trickle/`). */
export const TRICKLE_BASE_PATH = '/ai/trickle/';

/** Segments a server keeps per channel (go-livepeer `maxSegmentsPerStream`). */
export const TRICKLE_SEGMENTS_KEPT = 5;

/** Idle channels (no new segment) are closed after this long, ms (go-livepeer's default 5 min). */
export const TRICKLE_DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;

/** The sequence number of the segment at the live edge: the next one to be published. */
export const TRICKLE_LIVE_EDGE = -1;
/** The sequence number of the segment being published now (or the live edge when none is). */
export const TRICKLE_CURRENT = -2;

/** Status of a GET/POST for a channel that exists but not at that sequence number (go-livepeer). */
export const STATUS_SEQ_NOT_FOUND = 470;

/** Response headers (requests: `Lp-Trickle-Reset` on a POST closes every older open segment). */
export const HEADER_SEQ = 'lp-trickle-seq';
export const HEADER_LATEST = 'lp-trickle-latest';
export const HEADER_CLOSED = 'lp-trickle-closed';
export const HEADER_RESET = 'lp-trickle-reset';
/** The value of `Lp-Trickle-Closed` once a channel is closed. */
export const CLOSED_VALUE = 'terminated';

/** Media channels carry MPEG-TS; control and events channels carry JSON. */
export const MIME_MPEGTS = 'video/MP2T';
export const MIME_JSON = 'application/json';

/** Subscribe errors are retried this many times (go-livepeer's live video gateway). */
export const TRICKLE_SUBSCRIBE_RETRIES = 5;
/** ... this far apart, ms. */
export const TRICKLE_SUBSCRIBE_RETRY_DELAY_MS = 300;

export type TrickleErrorCode =
  /** 404: no such channel (never created, or closed long ago). */
  | 'CHANNEL_NOT_FOUND'
  /** The channel was closed (`Lp-Trickle-Closed`) while or before this request ran. */
  | 'CLOSED'
  /** Another HTTP status; `status` says which. */
  | 'HTTP'
  /** The connection failed or broke off. */
  | 'NETWORK'
  /** The client was closed or aborted. */
  | 'ABORTED';

/** A failed trickle request. */
export class TrickleError extends Error {
  readonly code: TrickleErrorCode;
  readonly status: number | undefined;
  constructor(code: TrickleErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TrickleError';
    this.code = code;
    this.status = options.status;
  }
}

/** `https://w/ai/trickle/abc` + 3 → `https://w/ai/trickle/abc/3` (no double slash). */
export function segmentUrl(channelUrl: string, seq: number | 'next'): string {
  return `${channelUrl.replace(/\/+$/, '')}/${seq}`;
}

/** A non-negative integer header value, else undefined. */
export function intHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || !/^-?\d+$/.test(v.trim())) return undefined;
  return Number(v);
}
