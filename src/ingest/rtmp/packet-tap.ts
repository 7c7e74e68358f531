/**
 * The FLV tags of one RTMP publish, taken from node-media-server (NMS) 4.4.3 inside this
 * process: no player connection, no loopback pull, no child process.
 *
 * How NMS hands them out (read in its 4.4.3 sources, pinned by
 * test/integration/ingest/rtmp-packet-tap.test.ts):
 * - a publish's `BroadcastServer` (`src/server/broadcast_server.js`) fans every packet out to
 *   its subscribers; NMS's own recorder (`src/session/record_session.js`) is such a subscriber:
 *   a `BaseSession` with `protocol = 'flv'` and `ip = ''` (internal: `postPlay`/`donePlay` emit
 *   no play events and it is not counted as a player), added with `broadcast.postPlay(sub)` and
 *   removed with `broadcast.donePlay(sub)`. This tap is one of those;
 * - an `flv` subscriber's `sendBuffer(buf)` gets the 13-byte FLV file header once, then exactly
 *   one whole FLV tag per call (11-byte tag header with the DTS, the untouched RTMP payload,
 *   4-byte PreviousTagSize); attached before the first media packet it sees every tag from the
 *   first one (a later subscriber gets the cached metadata, configs and GOP replayed instead);
 * - `sendBuffer` runs synchronously inside NMS's socket data handler: a throw there would be
 *   an uncaught exception, so the reader is guarded; the buffers are NMS's own (also held in its
 *   GOP cache) and are never modified here or by readers;
 * - `postPublish` also fires for a refused second publisher and for a publisher resuming
 *   within the reconnect grace; the RTMP server therefore attaches exactly one tap per accepted
 *   stream path (rtmp-server.ts);
 * - NMS caches the packets since the last video keyframe twice, as FLV tags and as RTMP
 *   messages (`flvGopCache`, `rtmpGopCache`, a new Set at every keyframe; no setting turns them
 *   off), so that a player joining starts at that keyframe. Nothing of ours plays, and those
 *   caches were the largest per-stream holder left (two GOPs: ~0.2 MiB at 520 kb/s with 2 s
 *   GOPs, ~1.2 MiB with the clip's 10 s GOPs). While the tap is attached and no player (a
 *   subscriber with an address) watches, it drops both caches after every packet (it wraps
 *   the broadcast's `broadcastMessage`, an instance property), and an audio/video frame is
 *   made into the FLV tag only (NMS also builds an RTMP message of it for RTMP players: a
 *   second copy of every frame and four small Buffers, garbage at once without a player).
 *   The trade-off: an RTMP player
 *   that joins gets the stream from the publisher's next keyframe (up to one GOP later; the
 *   frames before it cannot be decoded); while one watches, the caches are kept as NMS keeps
 *   them, so a second player starts at once.
 * - an AVPacket's `data` is NMS's parse buffer of the connection (`parserPacket.payload` in
 *   `src/protocol/rtmp.js`), reused for the next message and only grown, never a copy: a frame
 *   handed to a reader's `frame` without a tag is valid only during that call. While the
 *   reader takes frames and nothing else reads the publish, no FLV tag is made for an audio or
 *   video frame at all (it was a copy of every frame).
 * - Besides its one reader (the segmenter), a tap takes any number of watchers (`watch`): live
 *   readers that join at any time (a WHEP playback relay). A watcher gets the latest metadata,
 *   AVC and AAC configuration tags at once, then every tag from then on, as it arrives; never
 *   the held backlog or a GOP (it starts decoding at the publisher's next keyframe).
 */
import type NmsAvPacket from 'node-media-server/src/core/avpacket.js';
import NmsBaseSession from 'node-media-server/src/session/base_session.js';
import type NodeMediaServer from 'node-media-server';
import { GatewayError } from '../../errors/gateway-error.ts';
import type { Logger } from '../../log/logger.ts';
import { FLV_FILE_HEADER_BYTES, isFlvConfigTag, isFlvVideoKeyframe } from '../../media/flv-packets.ts';

/** Receives the FLV tags of one publish, in publish order. */
export interface FlvTagReader {
  /**
   * One whole FLV tag: 11-byte header (type 8 audio, 9 video, 18 script data; 24-bit size;
   * DTS in ms), the body, the 4-byte PreviousTagSize. Called synchronously from NMS's socket
   * handler; the buffer is shared with NMS: never modify it. A throw is logged and the reader
   * gets no more tags (its `end` still follows).
   */
  tag(tag: Buffer): void;
  /** Once, after the last tag: the publish ended (publisher left, kicked, refused, or the server closed). */
  end(): void;
  /**
   * Optional: takes an audio or video frame without an FLV tag around it. When a reader has
   * it, the tap hands it each frame that arrives while nothing else needs the tag (no player,
   * no watcher, no other subscriber) instead of making the tag (a copy of the frame per frame):
   * `tagType` 8 audio or 9 video, `dtsMs` the tag's timestamp (32-bit), `body` the tag body (the
   * RTMP message payload) as a view of node-media-server's parse buffer, valid only during the
   * call and never to be modified. Tags held before the reader came, configurations and
   * metadata still come through `tag`; the order of tags and frames is the publish's order.
   */
  frame?(tagType: 8 | 9, dtsMs: number, body: Buffer): void;
}

/** Where a reader gets a publish's tags from (RtmpServer `flvTags`). */
export interface FlvTagSource {
  /**
   * Hands `reader` every tag since the publish started (held until now, see
   * {@link MAX_HELD_BYTES}), then each new tag as it arrives, then `end`. One reader per publish.
   * @throws GatewayError INTERNAL on a second reader
   */
  read(reader: FlvTagReader): void;
}

/** Where live readers join a publish's tags mid-way (RtmpServer `watchTags`). */
export interface FlvTagWatch {
  /**
   * Hands `reader` the publish's latest configuration tags (metadata, AVC decoder
   * configuration, AAC AudioSpecificConfig, in that order, those seen so far), then every tag
   * from now on, then `end` (at once when the publish has ended). Any number of watchers.
   * @returns detaches the reader (no `end` follows); idempotent
   */
  watch(reader: FlvTagReader): () => void;
}

/**
 * Most bytes of tags held for a reader that has not come yet (the publish decision is still
 * pending, or its owner never reads): 32 MiB, ~30 s of a 8 Mb/s stream. Past it, only the
 * config and metadata tags and the tags from the last video keyframe on are kept, as NMS's
 * GOP cache does, so a late reader still starts on a keyframe.
 */
export const MAX_HELD_BYTES = 32 * 1024 * 1024;


/**
 * An internal NMS subscriber of one publish's broadcast that holds its tags until a reader
 * takes them. Attach it while NMS is still inside `postPublish` (before any media packet).
 */
export class PacketTap implements FlvTagSource, FlvTagWatch {
  readonly #broadcast: NodeMediaServer.BroadcastServer;
  readonly #subscriber: NmsBaseSession;
  readonly #log: Logger;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #reader: FlvTagReader | undefined;
  #readerFailed = false;
  #ended = false;
  /** Live readers that joined mid-way (`watch`). */
  readonly #watchers = new Set<FlvTagReader>();
  /** The latest configuration tag of each kind (script data, AVC config, AAC config), for watchers that join. */
  readonly #configTags = new Map<'meta' | 'avc' | 'aac', Buffer>();
  /** Our wrapper of the broadcast's `broadcastMessage` and the function it wraps. */
  readonly #broadcastMessage: { readonly wrapper: (packet: NmsAvPacket) => void; readonly wrapped: (packet: NmsAvPacket) => void };

  constructor(broadcast: NodeMediaServer.BroadcastServer, log: Logger) {
    this.#broadcast = broadcast;
    this.#log = log;
    const subscriber = new NmsBaseSession();
    subscriber.protocol = 'flv';
    subscriber.ip = '';
    subscriber.streamPath = broadcast.streamPath;
    subscriber.sendBuffer = (buffer) => this.#onBuffer(buffer);
    this.#subscriber = subscriber;
    broadcast.postPlay(subscriber);
    const wrapped = broadcast.broadcastMessage;
    const wrapper = (packet: NmsAvPacket): void => {
      if (!isMediaFrame(packet) || !onlyInternalFlv(broadcast)) {
        wrapped(packet);
        if (!hasPlayer(broadcast)) {
          broadcast.flvGopCache = null;
          broadcast.rtmpGopCache = null;
        }
        return;
      }
      // NMS's broadcastMessage for an audio or video frame, less what no subscriber here uses:
      // the RTMP message (a copy of the frame in RTMP chunks, plus four small header Buffers)
      // and the GOP caches. Timestamps are shifted and recorded as NMS does for a resumed publish.
      const shift = broadcast._dtsOffset[packet.codec_type] ?? 0;
      if (shift > 0) {
        packet.dts += shift;
        packet.pts += shift;
      }
      broadcast._lastDts[packet.codec_type] = packet.dts;
      broadcast.flvGopCache = null;
      broadcast.rtmpGopCache = null;
      // Our reader alone takes it, as a frame: no tag made (a copy of the frame fewer).
      if (broadcast.subscribers.size === 1 && this.#takesFrames()) {
        this.#deliverFrame(packet.codec_type as 8 | 9, packet.dts >>> 0, packet.data.subarray(0, packet.size));
        return;
      }
      const tag = flvTag(packet);
      for (const subscriber of broadcast.subscribers.values()) subscriber.sendBuffer(tag);
    };
    broadcast.broadcastMessage = wrapper;
    this.#broadcastMessage = { wrapper, wrapped };
  }

  /** Tags held for a reader that has not come yet, and their bytes. */
  get held(): { tags: number; bytes: number } {
    return { tags: this.#held.length, bytes: this.#heldBytes };
  }

  read(reader: FlvTagReader): void {
    if (this.#reader) throw new GatewayError('INTERNAL', 'the publish already has a tag reader');
    this.#reader = reader;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const tag of held) this.#deliver(tag);
    if (this.#ended) this.#finish();
  }

  watch(reader: FlvTagReader): () => void {
    if (this.#ended) {
      reader.end();
      return () => undefined;
    }
    for (const kind of ['meta', 'avc', 'aac'] as const) {
      const tag = this.#configTags.get(kind);
      if (tag && !this.#deliverWatcher(reader, tag)) return () => undefined;
    }
    this.#watchers.add(reader);
    return () => { this.#watchers.delete(reader); };
  }

  /** Detaches from the broadcast and ends the reader (now, or once one reads). Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#broadcast.donePlay(this.#subscriber);
    // Unless a later tap of the same path wrapped ours (it then calls through it).
    if (this.#broadcast.broadcastMessage === this.#broadcastMessage.wrapper) this.#broadcast.broadcastMessage = this.#broadcastMessage.wrapped;
    if (this.#reader) this.#finish();
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    for (const watcher of watchers) {
      try {
        watcher.end();
      } catch (err) {
        this.#log.error({ err: { message: (err as Error).message } }, 'RTMP tag watcher end failed');
      }
    }
  }

  /** Hands a tag to a watcher; a throw detaches it (false). */
  #deliverWatcher(watcher: FlvTagReader, tag: Buffer): boolean {
    try {
      watcher.tag(tag);
      return true;
    } catch (err) {
      this.#watchers.delete(watcher);
      this.#log.error({ err: { message: (err as Error).message } }, 'RTMP tag watcher failed; it gets no more tags');
      return false;
    }
  }

  #onBuffer(buffer: Buffer): void {
    if (this.#ended) return;
    // The FLV file header (`FLV`, version, flags, header size, PreviousTagSize0) is not a tag.
    if (buffer.length === FLV_FILE_HEADER_BYTES && buffer[0] === 0x46 && buffer[1] === 0x4c && buffer[2] === 0x56) return;
    if (isFlvConfigTag(buffer)) this.#configTags.set(buffer[0] === 18 ? 'meta' : buffer[0] === 9 ? 'avc' : 'aac', buffer);
    for (const watcher of this.#watchers) this.#deliverWatcher(watcher, buffer);
    if (this.#reader) {
      this.#deliver(buffer);
      return;
    }
    this.#held.push(buffer);
    this.#heldBytes += buffer.length;
    if (this.#heldBytes > MAX_HELD_BYTES) this.#trimHeld();
  }

  /** Whether the only subscriber is this tap and its reader takes frames without a tag (see {@link FlvTagReader.frame}). */
  #takesFrames(): boolean {
    return !this.#ended && this.#reader?.frame !== undefined && !this.#readerFailed && this.#watchers.size === 0 && this.#broadcast.subscribers.has(this.#subscriber.id);
  }

  #deliverFrame(tagType: 8 | 9, dtsMs: number, body: Buffer): void {
    try {
      this.#reader!.frame!(tagType, dtsMs, body);
    } catch (err) {
      this.#readerFailed = true;
      this.#log.error({ err: { message: (err as Error).message } }, 'RTMP tag reader failed; it gets no more tags');
    }
  }

  #deliver(tag: Buffer): void {
    if (this.#readerFailed) return;
    try {
      this.#reader!.tag(tag);
    } catch (err) {
      this.#readerFailed = true;
      this.#log.error({ err: { message: (err as Error).message } }, 'RTMP tag reader failed; it gets no more tags');
    }
  }

  #finish(): void {
    try {
      this.#reader!.end();
    } catch (err) {
      this.#log.error({ err: { message: (err as Error).message } }, 'RTMP tag reader end failed');
    }
  }

  /** Keeps config/metadata tags and everything from the last video keyframe (see {@link MAX_HELD_BYTES}). */
  #trimHeld(): void {
    const from = this.#held.findLastIndex(isFlvVideoKeyframe);
    const kept = [...this.#held.slice(0, Math.max(from, 0)).filter(isFlvConfigTag), ...(from >= 0 ? this.#held.slice(from) : [])];
    this.#held = kept;
    this.#heldBytes = kept.reduce((n, t) => n + t.length, 0);
  }
}

/**
 * The FLV tag of an audio/video packet, byte for byte what NMS's `Flv.createMessage`
 * (`src/protocol/flv.js`) makes: 11-byte header (type, 24-bit size, DTS low 24 bits then its
 * upper 8, StreamID 0), the payload, PreviousTagSize. Without its zero fill: every byte is
 * written, so `allocUnsafe` (a slice of Node's buffer pool for the small audio and inter
 * frames) serves; ~1 µs less per tag (measured with the clip's tag sizes, bench/README.md
 * "CPU per publisher"). A fresh buffer per tag, as before: readers may keep it.
 */
function flvTag(packet: NmsAvPacket): Buffer {
  const size = packet.size;
  const tag = Buffer.allocUnsafe(11 + size + 4);
  tag[0] = packet.codec_type;
  tag.writeUIntBE(size, 1, 3);
  tag[4] = (packet.dts >> 16) & 0xff;
  tag[5] = (packet.dts >> 8) & 0xff;
  tag[6] = packet.dts & 0xff;
  tag[7] = (packet.dts >> 24) & 0xff;
  tag[8] = 0; tag[9] = 0; tag[10] = 0;
  packet.data.copy(tag, 11, 0, size);
  tag.writeUInt32BE(11 + size, 11 + size);
  return tag;
}

/** An audio frame, video keyframe or inter frame (AVPacket flags 1, 3, 4): not a config or metadata. */
function isMediaFrame(packet: NmsAvPacket): boolean {
  return (packet.flags === 1 || packet.flags === 3 || packet.flags === 4) && (packet.codec_type === 8 || packet.codec_type === 9);
}

/** Whether every subscriber is internal (no address) and takes FLV tags: no player, no RTMP consumer. */
function onlyInternalFlv(broadcast: NodeMediaServer.BroadcastServer): boolean {
  for (const subscriber of broadcast.subscribers.values()) if (subscriber.ip !== '' || subscriber.protocol !== 'flv') return false;
  return true;
}

/** Whether a player (an RTMP or HTTP-FLV client: a subscriber with an address) is attached. */
function hasPlayer(broadcast: NodeMediaServer.BroadcastServer): boolean {
  for (const subscriber of broadcast.subscribers.values()) if (subscriber.ip !== '') return true;
  return false;
}
