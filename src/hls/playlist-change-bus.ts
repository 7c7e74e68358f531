/**
 * Playlist changes over Redis pub/sub: every write of the segment index that changes what a
 * stream's playlists show (a segment listed or skipped, the stream started, ended, resumed,
 * its renditions set: segment-index-store.ts) PUBLISHes the manifest ID on channel
 * `<prefix>:hls:changed`, from whichever process made it (gateway, transcoder). Each gateway
 * subscribes here and drops that stream's kept replies (playlist-cache.ts).
 *
 * A message published while the subscription is down is lost (Redis pub/sub keeps nothing),
 * so the cache is dropped and not used from the moment the connection closes until it is
 * subscribed again (ioredis reconnects and resubscribes; this bus subscribes once more after
 * each `ready` and goes live when that reply comes).
 *
 * Runs on one connection the composition root opened for it (`blocking`: a connection in
 * subscriber mode runs nothing else) and closes.
 */
import type { Logger } from '../log/logger.ts';
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { settleWithin } from '../domain/time-limit.ts';

/** The channel playlist changes are published on: one spelling for the index and the bus. */
export function playlistChangedChannel(keys: RedisKeys): string {
  return keys.key('hls', 'changed');
}

/** What the bus drives (playlist-cache.ts `PlaylistCache`). */
export interface PlaylistChangeTarget {
  invalidate(manifestID: string): void;
  setLive(live: boolean): void;
}

export interface PlaylistChangeBusOptions {
  /** Given over to the subscription (`connections.open('playlist-changes', 'blocking')`); not closed here. */
  subscriber: Redis;
  keys: RedisKeys;
  logger: Logger;
  cache: PlaylistChangeTarget;
}

/** How long `close()` waits for UNSUBSCRIBE before leaving it to the connection's owner. */
const UNSUBSCRIBE_WAIT_MS = 1000;

export class PlaylistChangeBus {
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #cache: PlaylistChangeTarget;
  readonly #logger: Logger;
  readonly #onMessage: (channel: string, text: string) => void;
  readonly #onClose: () => void;
  readonly #onReady: () => void;
  /** Bumped by every close: a SUBSCRIBE reply from before it must not make the cache live. */
  #generation = 0;
  #closed = false;

  /** Subscribes at once; the cache goes live when the subscription is confirmed. */
  constructor(options: PlaylistChangeBusOptions) {
    this.#subscriber = options.subscriber;
    this.#channel = playlistChangedChannel(options.keys);
    this.#cache = options.cache;
    this.#logger = options.logger;
    this.#onMessage = (channel, text) => {
      if (channel === this.#channel && !this.#closed) this.#cache.invalidate(text);
    };
    this.#onClose = () => {
      this.#generation += 1;
      this.#cache.setLive(false);
    };
    this.#onReady = () => this.#subscribe();
    this.#cache.setLive(false);
    this.#subscriber.on('message', this.#onMessage);
    this.#subscriber.on('close', this.#onClose);
    this.#subscriber.on('ready', this.#onReady);
    this.#subscribe();
  }

  #subscribe(): void {
    if (this.#closed) return;
    const generation = this.#generation;
    this.#subscriber.subscribe(this.#channel).then(() => {
      if (!this.#closed && generation === this.#generation) this.#cache.setLive(true);
    }, (err: Error) => this.#logger.warn({ err: err.message }, 'cannot subscribe to playlist changes; playlists are read from Redis on every request'));
  }

  /** Stops the cache and unsubscribes (waiting at most 1 s); leaves the connection open. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.setLive(false);
    this.#subscriber.off('message', this.#onMessage);
    this.#subscriber.off('close', this.#onClose);
    this.#subscriber.off('ready', this.#onReady);
    await settleWithin(this.#subscriber.unsubscribe(this.#channel).then(() => undefined, () => undefined), UNSUBSCRIBE_WAIT_MS, () => undefined);
  }
}
