/**
 * What WHIP sessions need from the rest of the gateway, implemented elsewhere and passed in
 * by the composition root (gateway-role.ts): admission of a publish by its stream key, with
 * the same authorizers, billing standing and stream rules as an RTMP publish, before any ICE.
 */

/** An admitted WHIP publish: where its media goes and how to give the admission up. */
export interface WhipPublishGrant {
  /** The stream's manifest ID (as the authorizer resolved the stream key). */
  readonly manifestID: string;
  /**
   * RTMP URL of the gateway's own ingest under a one-time stream name that carries the
   * authorizer's grant (account, ladder, recording, outputs, watermark). A secret: never
   * logged, never on a command line.
   */
  readonly rtmpUrl: string;
  /** Gives the one-time name up (the session ended or failed to start). Idempotent. */
  release(): void;
}

/** Admits WHIP publishes. */
export interface WhipAdmission {
  /**
   * Authorizes `streamKey` as an RTMP publish would be, and checks the stream can start here now.
   * @param url the WHIP resource URL the publisher used (for the auth webhook; holds the key, never logged as is)
   * @throws GatewayError INVALID_NAME (400), PUBLISH_DENIED (403), INSUFFICIENT_BALANCE (402),
   *   STREAM_BUSY (409: the manifest ID already has a live publisher here)
   */
  admit(streamKey: string, url: string): Promise<WhipPublishGrant>;
}
