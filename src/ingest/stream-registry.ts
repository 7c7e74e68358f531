/**
 * The live streams of this gateway, by publish (RTMP connection or push stream name) and by
 * manifest ID. A manifest ID has at most one live publisher per gateway; across gateways its
 * ownership lease (stream-lease-store.ts) makes that one per cluster.
 *
 * Three identifiers meet here and are easy to mix up, so each has its own branded type (a
 * string at run time): the RTMP connection ID node-media-server gives a publish, the stream
 * name of an HTTP push, and the stream session ID (the segment index's session). The
 * publish map is keyed by a {@link PublishKey} (`rtmp:<connection>` / `push:<name>`) built only
 * from the first two, so looking a stream up by a bare RTMP connection ID (the old
 * `unpublish()` defect: it never found its stream) or by a session ID is a type error.
 */
import { randomBytes } from 'node:crypto';

/** The ID node-media-server gives an RTMP connection (its `session.id`). */
export type RtmpConnectionId = string & { readonly __brand: 'RtmpConnectionId' };
/** The stream name of an HTTP push (from its URL: a stream key, or the manifest ID in anonymous mode). */
export type PushStreamName = string & { readonly __brand: 'PushStreamName' };
/** A stream session: one publish of a manifest ID, the segment index's `session`. */
export type StreamSessionId = string & { readonly __brand: 'StreamSessionId' };
/** Key of the publish map: `rtmp:<RtmpConnectionId>` or `push:<PushStreamName>`. */
export type PublishKey = string & { readonly __brand: 'PublishKey' };

/** Marks a string as an RTMP connection ID (at the RTMP server boundary). */
export function rtmpConnectionId(id: string): RtmpConnectionId {
  return id as RtmpConnectionId;
}

/** Marks a string as the stream name of an HTTP push (at the push route boundary). */
export function pushStreamName(name: string): PushStreamName {
  return name as PushStreamName;
}

/** The publish-map key of an RTMP connection. */
export function rtmpPublishKey(id: RtmpConnectionId): PublishKey {
  return `rtmp:${id}` as PublishKey;
}

/** The publish-map key of a push stream. */
export function pushPublishKey(name: PushStreamName): PublishKey {
  return `push:${name}` as PublishKey;
}

/**
 * A new stream session ID: the start time in base 36 and 4 random bytes in hex, e.g.
 * `mib3k2x1a9f03c2d` (sorts by start time; unique across gateways sharing a Redis).
 */
export function newStreamSessionId(nowMs = Date.now()): StreamSessionId {
  return `${nowMs.toString(36)}${randomBytes(4).toString('hex')}` as StreamSessionId;
}

/** What the registry needs of a stream. */
export interface RegisteredStream {
  readonly publishKey: PublishKey;
  readonly manifestID: string;
  readonly session: StreamSessionId;
}

/** The live streams by publish and by manifest ID. */
export class StreamRegistry<S extends RegisteredStream> {
  readonly #byPublish = new Map<PublishKey, S>();
  readonly #byManifest = new Map<string, S>();

  /** Registers `stream` under its publish key and manifest ID (replacing what was there). */
  add(stream: S): void {
    this.#byPublish.set(stream.publishKey, stream);
    this.#byManifest.set(stream.manifestID, stream);
  }

  /** Removes `stream` from both maps, where it is still the one registered. */
  remove(stream: S): void {
    if (this.#byPublish.get(stream.publishKey) === stream) this.#byPublish.delete(stream.publishKey);
    if (this.#byManifest.get(stream.manifestID) === stream) this.#byManifest.delete(stream.manifestID);
  }

  /** The stream of an RTMP connection. */
  byRtmp(id: RtmpConnectionId): S | undefined {
    return this.#byPublish.get(rtmpPublishKey(id));
  }

  /** The stream of a push stream name. */
  byPush(name: PushStreamName): S | undefined {
    return this.#byPublish.get(pushPublishKey(name));
  }

  /** The stream live for `manifestID` on this gateway. */
  byManifest(manifestID: string): S | undefined {
    return this.#byManifest.get(manifestID);
  }

  /** Every stream by publish. */
  publishes(): S[] {
    return [...this.#byPublish.values()];
  }

  /** Every stream by manifest ID. */
  manifests(): S[] {
    return [...this.#byManifest.values()];
  }
}
