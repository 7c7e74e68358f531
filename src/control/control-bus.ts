/**
 * Control messages between gateways over Redis pub/sub: a stop request for a stream reaches
 * whichever gateway holds its RTMP connection or push session. Channel `<prefix>:control`,
 * messages `{"action":"stop","manifestID":...,"reason":...}`.
 */
import type { Logger } from '../log/logger.ts';
import { createRedis, type Redis } from '../redis/connections.ts';

export interface StopMessage {
  readonly action: 'stop';
  readonly manifestID: string;
  readonly reason: string;
}

export class ControlBus {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #logger: Logger;
  #closed = false;

  /** Subscribes at once; `onStop` runs for every stop request (including this gateway's own). */
  constructor(options: { redisUrl: string; prefix: string; logger: Logger; onStop: (message: StopMessage) => void }) {
    this.#channel = `${options.prefix}:control`;
    this.#logger = options.logger;
    this.#publisher = createRedis({ url: options.redisUrl, logger: options.logger, name: 'mediagate:control' });
    this.#subscriber = createRedis({ url: options.redisUrl, logger: options.logger, name: 'mediagate:control-sub', maxRetriesPerRequest: null });
    this.#subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      try {
        const message = JSON.parse(text) as StopMessage;
        if (message.action === 'stop' && typeof message.manifestID === 'string') options.onStop(message);
      } catch {
        this.#logger.warn('ignored a malformed control message');
      }
    });
    void this.#subscriber.subscribe(this.#channel).catch((err: Error) => this.#logger.error({ err: err.message }, 'cannot subscribe to control channel'));
  }

  /** Asks every gateway to stop `manifestID`; resolves with the number of gateways listening. */
  async requestStop(manifestID: string, reason: string): Promise<number> {
    const message: StopMessage = { action: 'stop', manifestID, reason };
    return this.#publisher.publish(this.#channel, JSON.stringify(message));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber.disconnect();
    this.#publisher.disconnect();
  }
}
