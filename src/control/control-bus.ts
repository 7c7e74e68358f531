/**
 * Control messages between gateways over Redis pub/sub: a stop request for a stream reaches
 * whichever gateway holds its RTMP connection or push session, and so does the news that a
 * stream's restream outputs changed (the holder re-reads them). Channel `<prefix>:control`,
 * messages `{"action":"stop","manifestID":...,"reason":...}` and `{"action":"outputs","manifestID":...}`.
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

/** A stream's restream outputs changed in the store (outputs/outputs-store.ts): its holder re-reads them. */
export interface OutputsChangedMessage {
  readonly action: 'outputs';
  readonly manifestID: string;
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
  /** Runs for every outputs-changed message (including this gateway's own); absent: ignored. */
  onOutputsChanged?: (message: OutputsChangedMessage) => void;
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
        const message = JSON.parse(text) as StopMessage | OutputsChangedMessage;
        if (typeof message.manifestID !== 'string') return;
        if (message.action === 'stop') options.onStop(message);
        else if (message.action === 'outputs') options.onOutputsChanged?.(message);
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

  /** Tells every gateway that the outputs of `manifestID` changed; resolves with the number of gateways listening. */
  async outputsChanged(manifestID: string): Promise<number> {
    const message: OutputsChangedMessage = { action: 'outputs', manifestID };
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
