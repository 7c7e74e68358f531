/**
 * The ports live video-to-video sessions (src/ai/live/) need from the rest of the gateway;
 * src/app.ts passes the implementations (docs/wire-contract.md, "Live video-to-video").
 */
import type { VideoProfile } from '../../domain/profile.ts';

/**
 * Interval payments of one live session, Livepeer's scheme: a hold at start covering 60 s,
 * then a debit for every 5 s of wall time at the configured live price (default units as
 * Livepeer: 1280×720×30 per second). Implemented in src/payments/.
 *
 * Which account pays: the start request's API-key account, else the input stream's
 * account, else the session is not metered (`accountID` undefined).
 */
export interface LiveIntervalBilling {
  /** The 60 s hold at start. @throws GatewayError INSUFFICIENT_BALANCE (402) when it cannot be held. */
  open(s: { requestID: string; accountID: string | undefined; pipeline: string; modelID: string }): Promise<void>;
  /** Debit `seconds` of wall time for interval `interval` (idempotent per requestID+interval). */
  charge(s: { requestID: string; interval: number; seconds: number }): Promise<{ ok: true } | { ok: false; reason: 'insufficient balance' }>;
  /** Release what is left of the hold. Idempotent. */
  close(requestID: string): Promise<void>;
}

/** A trickle publisher on one channel (src/trickle/ TricklePublisher, wired by the composition root). */
export interface LiveTricklePublisher {
  /** Publishes `bytes` as the channel's next segment; resolves when the segment is sent. @throws on a failed POST */
  write(bytes: Buffer): Promise<unknown>;
  /** Closes the channel (DELETE). Idempotent; never throws. */
  close(): Promise<void>;
}

/** One segment read from a trickle channel. */
export interface LiveTrickleSegment {
  readonly seq: number;
  /** The segment's bytes as they arrive. */
  readonly body: AsyncIterable<Buffer | Uint8Array>;
}

/** A trickle subscription: its segments in order; ends when the channel is closed. */
export interface LiveTrickleSubscriber extends AsyncIterable<LiveTrickleSegment> {
  /** Stops reading (the iteration ends). Idempotent. */
  close(): void;
}

/** Opens trickle channels of a worker (src/trickle/ client, wired by the composition root). */
export interface LiveTrickle {
  /** `contentType`: `video/MP2T` for media, `application/json` for control. */
  publisher(url: string, contentType: string): LiveTricklePublisher;
  /** Subscribes from the channel's live edge (seq -1), retrying errors as the trickle client does. */
  subscriber(url: string): LiveTrickleSubscriber;
}

/** The `<stream>-out` stream of a session, published through the gateway's own ingest. */
export interface LiveOutputStream {
  /** Queues one output segment (a complete MPEG-TS segment) as the stream's next; never throws. */
  write(segment: Buffer): void;
  /** Ends the stream after the queued segments (ladder, HLS ENDLIST, recording finished). Idempotent. */
  end(reason: string): Promise<void>;
}

/** What the `-out` stream is published as. */
export interface LiveOutputGrant {
  /** `<stream>-out`. */
  readonly manifestID: string;
  /** The account its transcoding is billed to (the session's); undefined = not metered. */
  readonly accountID: string | undefined;
  /** The input stream's manifest ID. */
  readonly inputManifestID: string;
  /** The input stream's ladder (its grant's), reused for the output. */
  readonly profiles: readonly VideoProfile[];
  /** The input stream's recording choice; absent: the gateway's default. */
  readonly record?: boolean;
  /** The input's ladder was set by its publisher's side (used as configured). */
  readonly explicitLadder?: boolean;
}

/** Publishes `-out` streams through the gateway's own ingest (in process, no credential leaves it). */
export interface LiveOutputs {
  open(grant: LiveOutputGrant): LiveOutputStream;
}

/** A lifecycle event of a live session, for the event webhooks. Must not throw. */
export type LiveSessionEvent =
  | { type: 'live.started'; manifestID: string; requestID: string; modelID: string; outputManifestID: string }
  | { type: 'live.swapped'; manifestID: string; requestID: string; reason: string; swaps: number }
  | { type: 'live.ended'; manifestID: string; requestID: string; reason: string };

export interface LiveEvents {
  emit(event: LiveSessionEvent): void;
}

/** What live sessions record (metrics/live-metrics.ts `LiveMetrics` fits it). Must not throw. */
export interface LiveRecorder {
  /** Video frames of input segments sent to workers. */
  recordInputFrames(frames: number): void;
  /** Video frames of output segments received from workers. */
  recordOutputFrames(frames: number): void;
  /** Input segment sent → the output segment completing its frames received, ms. */
  recordLatencyMs(ms: number): void;
  /** A session left a worker for another; `reason` is one of the watchdog kinds. */
  recordSwap(reason: LiveSwapKind): void;
  /** A session ended; `reason` classified. */
  recordSessionEnd(reason: LiveEndKind): void;
}

/** Why a session left a worker, as a metric label. */
export type LiveSwapKind = 'events' | 'output' | 'slow' | 'worker';
/** Why a session ended, as a metric label. */
export type LiveEndKind = 'stopped' | 'input-ended' | 'too-many-swaps' | 'insufficient-balance' | 'no-worker' | 'shutdown';
