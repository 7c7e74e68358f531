/**
 * Wakes transcoders when a live session opens (docs/architecture.md, "Live transcoding
 * sessions", claim at publish): the gateway's `RedisLiveSessions.open` publishes the session
 * on channel `<prefix>:transcode:live-opened` in the same MULTI that opens it; each
 * transcoder subscribes here and scans at once, instead of finding it at its next poll
 * (`NEW_SESSION_POLL_MS`, 200 ms: 100 ms on average). A message lost (the subscriber
 * reconnecting after a Redis restart, when ioredis subscribes again) only costs that poll.
 *
 * Runs on one connection the composition root opened for it (`blocking`: a connection in
 * subscriber mode runs nothing else) and closes.
 */
import type { Logger } from '../log/logger.ts';
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { settleWithin } from '../domain/time-limit.ts';

/** The channel a session's opening is published on: one spelling for the store and the bus. */
export function liveOpenedChannel(keys: RedisKeys): string {
  return keys.key('transcode', 'live-opened');
}

export interface LiveSessionBusOptions {
  /** Given over to the subscription (`connections.open('live-session-bus', 'blocking')`); not closed here. */
  subscriber: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** Runs for every session opened anywhere in the deployment (the message is `<manifestID>:<session>`). */
  onOpened: (member: string) => void;
}

/** How long `close()` waits for UNSUBSCRIBE before leaving it to the connection's owner. */
const UNSUBSCRIBE_WAIT_MS = 1000;

export class LiveSessionBus {
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #onMessage: (channel: string, text: string) => void;
  #closed = false;

  /** Subscribes at once. */
  constructor(options: LiveSessionBusOptions) {
    this.#subscriber = options.subscriber;
    this.#channel = liveOpenedChannel(options.keys);
    this.#onMessage = (channel, text) => {
      if (channel === this.#channel && !this.#closed) options.onOpened(text);
    };
    this.#subscriber.on('message', this.#onMessage);
    void this.#subscriber.subscribe(this.#channel).catch((err: Error) => options.logger.warn({ err: err.message }, 'cannot subscribe to live session openings; new sessions wait for the poll'));
  }

  /** Stops handling messages and unsubscribes (waiting at most 1 s); leaves the connection open. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber.off('message', this.#onMessage);
    await settleWithin(this.#subscriber.unsubscribe(this.#channel).then(() => undefined, () => undefined), UNSUBSCRIBE_WAIT_MS, () => undefined);
  }
}
