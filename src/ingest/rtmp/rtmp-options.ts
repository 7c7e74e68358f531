/**
 * What the RTMP server (rtmp-server.ts) is given by its caller: its options
 * ({@link RtmpServerOptions}), a decision on each publish ({@link PublishRequest} →
 * {@link PublishDecision}) and the end of each accepted one ({@link RtmpPublishHandlers});
 * and the RTMP application publishes arrive on.
 */
import type { Logger } from '../../log/logger.ts';

/** The only RTMP application accepted: `rtmp://host:port/live/<streamKey>` (docs/wire-contract.md §2). */
export const RTMP_APP = 'live';

/** What `onPublish` is asked to decide on. */
export interface PublishRequest {
  /** NMS session id; the handle for `kick()` and `onUnpublish()`. */
  readonly sessionId: string;
  /** Always `live`. */
  readonly app: string;
  /** The stream key (already checked against `[A-Za-z0-9_-]{1,64}`). A secret: never log it. */
  readonly streamName: string;
  /** Remote address without the port (`127.0.0.1`, `::ffff:10.0.0.2`). */
  readonly ip: string;
  /** Parsed `?query` of the publish name (may carry secrets too). */
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
}

/** `onPublish`'s answer. `reason` goes to the log (not to the publisher: RTMP has no channel for it). */
export type PublishDecision = { readonly accept: true } | { readonly accept: false; readonly reason: string };

/**
 * Where publishes go: the caller's decision and end-of-publish callbacks. Given to the
 * constructor or to `start()` (so the server can be built before the ingest that uses it).
 */
export interface RtmpPublishHandlers {
  /**
   * Called once per publish that passed the name and busy checks, after NMS registered it as
   * the path's publisher. May be async (see the class docstring for what happens meanwhile).
   * Throwing or rejecting counts as a refusal.
   */
  onPublish(req: PublishRequest): Promise<PublishDecision> | PublishDecision;
  /**
   * Called exactly once for every session whose `onPublish` accepted, when that publish ends
   * (disconnect, `kick()`, or `close()`), never before the decision resolved. Errors are logged.
   */
  onUnpublish(sessionId: string): void | Promise<void>;
}

export interface RtmpServerOptions extends Partial<RtmpPublishHandlers> {
  /** Bind address; default `127.0.0.1` (docs/wire-contract.md §1). */
  host?: string;
  /** TCP port, 1-65535; default 1935. 0 is refused (NMS cannot report the chosen port). */
  port?: number;
  logger: Logger;
  /** Absolute directory for NMS's own JSON store (relay and record metadata; stream history is never written); created if missing, kept mode 0700. */
  storePath: string;
  /** An `onPublish` that has not answered after this many ms is a refusal; default 10000. */
  publishDecisionTimeoutMs?: number;
  /** How long `start()` waits for the port to accept connections, ms; default 5000. */
  startTimeoutMs?: number;
  /**
   * Allow RTMP `play` from non-loopback addresses; default false. Nothing of ours plays (the
   * segmenter reads packets in process); anyone else able to play only needs the (secret)
   * stream key to watch the source.
   */
  allowRemotePlay?: boolean;
}
