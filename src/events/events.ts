/**
 * Gateway events: what happened to a stream or a segment, told to optional webhook
 * receivers (`events.webhookUrls`). Producers (ingest, the transcode result path) depend
 * only on `EventSink`; `app.ts` passes `EventQueue` (src/events/event-queue.ts) when URLs
 * are configured and `NO_EVENTS` otherwise.
 *
 * Events name streams by manifest ID only: a stream key is a publish credential and never
 * goes into an event.
 */

import type { StreamProtocol } from '../domain/profile.ts';

/** One rendition of a transcoded segment, as reported in `segment.transcoded`. */
export interface EventRendition {
  /** Profile name (e.g. `720p`). */
  name: string;
  width: number;
  height: number;
  /** Video frames in the segment. */
  frames: number;
  /** Size of the encoded segment file in bytes. */
  bytes: number;
}

export type GatewayEvent =
  /** A publish session began (RTMP connect or first pushed segment). */
  | { type: 'stream.started'; manifestID: string; session: string; protocol: StreamProtocol }
  /** A publish session ended; `segments` = source segments cut in the session. */
  | { type: 'stream.ended'; manifestID: string; session: string; reason: string; segments: number }
  /** Every rendition of one source segment is stored; durations in milliseconds. */
  | { type: 'segment.transcoded'; manifestID: string; session: string; seq: number; durationMs: number; elapsedMs: number; renditions: EventRendition[] }
  /** A source segment failed for good (after its retries); it is skipped in the renditions. */
  | { type: 'segment.failed'; manifestID: string; session: string; seq: number; reason: string }
  /**
   * A recorded session is finished: its VOD playlists are written. `hlsUrl` is its master
   * playlist, `mp4Urls` one MP4 per rendition; `durationMs` its source duration.
   */
  | { type: 'recording.ready'; manifestID: string; session: string; durationMs: number; hlsUrl: string; mp4Urls: Record<string, string> }
  /**
   * A restream output's connection went live (bytes flow to its target). `url` is redacted
   * (the target's stream key and any userinfo or query values replaced by `[redacted]`).
   */
  | { type: 'output.started'; manifestID: string; session: string; outputId: string; url: string; rendition: string }
  /** A restream output's attempt failed (`reason` from ffmpeg, redacted); it retries after `retryInMs`. */
  | { type: 'output.failed'; manifestID: string; session: string; outputId: string; url: string; rendition: string; reason: string; retryInMs: number }
  /** A restream output stopped for good: removed through the control API, or its stream ended. */
  | { type: 'output.ended'; manifestID: string; session: string; outputId: string; url: string; rendition: string; reason: string }
  /** A live video-to-video session's first worker is set up: its output is `outputManifestID` (`<manifestID>-out`). */
  | { type: 'live.started'; manifestID: string; requestID: string; modelID: string; outputManifestID: string }
  /** A live video-to-video session left its worker (`reason`: the watchdog's) for another; `swaps` so far. */
  | { type: 'live.swapped'; manifestID: string; requestID: string; reason: string; swaps: number }
  /** A live video-to-video session ended (`reason`: e.g. `input stream ended`, `insufficient balance`, `Too many swaps …`). */
  | { type: 'live.ended'; manifestID: string; requestID: string; reason: string };

/** `stream.started`, `stream.ended`, `segment.transcoded`, `segment.failed`, `recording.ready`, `output.started`, `output.failed`, `output.ended`, `live.started`, `live.swapped`, `live.ended`. */
export type GatewayEventType = GatewayEvent['type'];

/** Every event type, in lifecycle order. */
export const GATEWAY_EVENT_TYPES: readonly GatewayEventType[] = [
  'stream.started', 'stream.ended', 'segment.transcoded', 'segment.failed', 'recording.ready', 'output.started', 'output.failed', 'output.ended',
  'live.started', 'live.swapped', 'live.ended',
];

/** The fields of an event without its `type` (the `data` object on the wire). */
export type GatewayEventData<E extends GatewayEvent = GatewayEvent> = E extends GatewayEvent ? Omit<E, 'type'> : never;

/** Fire-and-forget: never throws, never blocks the caller (the media path). */
export interface EventSink {
  /**
   * Hands one event over for delivery and returns at once. Delivery happens later, maybe
   * more than once (at least once per receiver while retries last), maybe never (receiver
   * down past its retries, queue unavailable): events are notifications, not a ledger.
   */
  emit(event: GatewayEvent): void;
}

/** A sink that drops everything (when no webhook URLs are configured). */
export const NO_EVENTS: EventSink = Object.freeze({ emit: (_event: GatewayEvent): void => undefined });
