/**
 * What WHEP playback needs from the rest of the gateway, implemented elsewhere and passed in
 * by the composition root (gateway-role.ts): the live packets of a stream held here.
 */

/** Receives a live stream's FLV tags (11-byte header, body, PreviousTagSize), in order. */
export interface WhepTagReader {
  /** One whole FLV tag; shared with the RTMP server: never modify it. Called synchronously from its socket handler. */
  tag(tag: Buffer): void;
  /** Once: the publish ended. */
  end(): void;
}

/** The live packets of the streams published to this gateway over RTMP (WHIP publishes included). */
export interface WhepPackets {
  /**
   * Joins the packets of `manifestID`: the latest configuration tags (metadata, AVC, AAC),
   * then every tag from now on, then `end`.
   * @returns detaches the reader; undefined when the stream is not live here over RTMP
   */
  watch(manifestID: string, reader: WhepTagReader): (() => void) | undefined;
}
