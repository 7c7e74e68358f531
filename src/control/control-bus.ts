/**
 * Control messages between gateways over Redis pub/sub: a stop request for a stream reaches
 * whichever gateway holds its RTMP connection or push session. Channel `<prefix>:control`,
 * messages `{"action":"stop","manifestID":...,"reason":...}`.
 *
 * Runs on two connections the composition root opened and closes: one for PUBLISH
 * (`commands`) and one that only subscribes (`blocking`: a connection in subscriber mode
 * runs nothing else, and it waits out a Redis restart, after which ioredis subscribes again).
 */
import type { Logger } from '../log/logger.ts';
import type { Redis } from '../redis/connections.ts';
import { RedisKeys } from '../redis/keys.ts';
import { settleWithin } from '../domain/time-limit.ts';

export interface StopMessage {
  readonly action: 'stop';
  readonly manifestID: string;
  readonly reason: string;
}

export interface ControlBusOptions {
  /** Connection for PUBLISH (`connections.open('control', 'commands')`). Not closed here. */
  publisher: Redis;
  /**
   * Connection given over to the subscription (`connections.open('control-sub', 'blocking')`);
   * nothing else may run on it. Not closed here.
   */
  subscriber: Redis;
  /** Deployment key prefix (`redis.keyPrefix`); the channel is `<prefix>:control`. */
  prefix: string;
  logger: Logger;
  /** Runs for every stop request (including this gateway's own). */
  onStop: (message: StopMessage) => void;
}

/** How long `close()` waits for UNSUBSCRIBE before leaving it to the connection's owner. */
const UNSUBSCRIBE_WAIT_MS = 1000;

export class ControlBus {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #onMessage: (channel: string, text: string) => void;
  #closed = false;

  /** Subscribes at once; `onStop` runs for every stop request (including this gateway's own). */
  constructor(options: ControlBusOptions) {
    this.#channel = new RedisKeys(options.prefix).key('control');
    this.#logger = options.logger;
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#onMessage = (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      try {
        const message = JSON.parse(text) as StopMessage;
        if (message.action === 'stop' && typeof message.manifestID === 'string') options.onStop(message);
      } catch {
        this.#logger.warn('ignored a malformed control message');
      }
    };
    this.#subscriber.on('message', this.#onMessage);
    void this.#subscriber.subscribe(this.#channel).catch((err: Error) => this.#logger.error({ err: err.message }, 'cannot subscribe to control channel'));
  }

  /** Asks every gateway to stop `manifestID`; resolves with the number of gateways listening. */
  async requestStop(manifestID: string, reason: string): Promise<number> {
    const message: StopMessage = { action: 'stop', manifestID, reason };
    return this.#publisher.publish(this.#channel, JSON.stringify(message));
  }

  /**
   * Stops handling messages and unsubscribes (waiting at most 1 s: during a Redis outage the
   * owner's close of the connection ends the subscription). Leaves both connections open.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber.off('message', this.#onMessage);
    const unsubscribed = this.#subscriber.unsubscribe(this.#channel).then(() => undefined, () => undefined);
    await settleWithin(unsubscribed, UNSUBSCRIBE_WAIT_MS, () => undefined);
  }
}
