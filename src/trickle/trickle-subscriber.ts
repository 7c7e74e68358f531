/**
 * The subscribing client of trickle (docs/wire-contract.md "Trickle"): reads a channel's
 * segments in order with `GET <channel>/<seq>`, each body streamed as the publisher sends it.
 * While a segment is handed out, the request for the next one is already open (it waits at
 * the server until that segment starts), so a segment reaches the reader with no polling delay.
 *
 * - Start at `start` (default -1: the next segment to be published; 0 = from the first kept).
 * - 470 (the seq is gone: the reader fell more than 5 segments behind): jumps to the server's
 *   live edge (`Lp-Trickle-Latest`) and counts the segments skipped in `skippedSegments`.
 * - Network errors, 404 and 5xx are retried `retries` times `retryDelayMs` apart (default 5 ×
 *   300 ms, go-livepeer's live gateway values), then the iteration throws TrickleError.
 * - `Lp-Trickle-Closed` ends the iteration cleanly.
 * - Empty segments (a publisher that sent nothing) are skipped.
 */
import { Agent as HttpAgent, get as httpGet, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import type { Logger } from '../log/logger.ts';
import { silentLogger } from '../log/logger.ts';
import {
  HEADER_CLOSED, HEADER_LATEST, HEADER_SEQ, intHeader, segmentUrl, STATUS_SEQ_NOT_FOUND, TRICKLE_LIVE_EDGE,
  TRICKLE_SUBSCRIBE_RETRIES, TRICKLE_SUBSCRIBE_RETRY_DELAY_MS, TrickleError,
} from './trickle-protocol.ts';

export interface TrickleSubscriberOptions {
  /** First seq to read; default -1 (the live edge). */
  readonly start?: number;
  /** Retries of a failed subscribe before giving up; default 5. */
  readonly retries?: number;
  /** Wait between retries, ms; default 300. */
  readonly retryDelayMs?: number;
  /** Ends the subscription (the iteration ends; no error). */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

/** One segment: its seq and its body, streamed while the publisher still sends it. */
export interface TrickleSegment {
  readonly seq: number;
  readonly contentType: string | undefined;
  /** The segment's bytes; read it (or `resume()` it) to let the connection go. */
  readonly body: IncomingMessage;
}

/** Subscribes to one trickle channel; an async iterable of its segments. */
export class TrickleSubscriber implements AsyncIterable<TrickleSegment> {
  readonly url: string;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #agent: HttpAgent;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #seq: number;
  #pending: Promise<IncomingMessage> | undefined;
  #ended = false;
  #skipped = 0;

  /** @param channelUrl e.g. `http://127.0.0.1:8000/ai/trickle/abc-out` */
  constructor(channelUrl: string, options: TrickleSubscriberOptions = {}) {
    this.url = channelUrl.replace(/\/+$/, '');
    this.#seq = options.start ?? TRICKLE_LIVE_EDGE;
    this.#retries = options.retries ?? TRICKLE_SUBSCRIBE_RETRIES;
    this.#retryDelayMs = options.retryDelayMs ?? TRICKLE_SUBSCRIBE_RETRY_DELAY_MS;
    this.#agent = this.url.startsWith('https:') ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.#log = (options.logger ?? silentLogger()).child({ component: 'trickle-subscriber' });
    if (options.signal !== undefined) {
      if (options.signal.aborted) this.close();
      else options.signal.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /** Segments jumped over because the reader fell behind the server's window. */
  get skippedSegments(): number { return this.#skipped; }

  /** The seq the next segment is requested at (-1 until the first is known). */
  get nextSeq(): number { return this.#seq; }

  /** True once the channel closed or {@link close} was called. */
  get ended(): boolean { return this.#ended; }

  #get(seq: number): Promise<IncomingMessage> {
    const get = this.url.startsWith('https:') ? httpsGet : httpGet;
    const p = new Promise<IncomingMessage>((resolve, reject) => {
      const req = get(segmentUrl(this.url, seq), { agent: this.#agent, signal: this.#abort.signal }, resolve);
      req.once('error', reject);
    });
    p.catch(() => undefined);
    return p;
  }

  /**
   * The next segment, or undefined when the channel closed (or the subscriber was closed).
   * @throws TrickleError CHANNEL_NOT_FOUND / HTTP / NETWORK once the retries are spent.
   */
  async next(): Promise<TrickleSegment | undefined> {
    let failures = 0;
    const fail = async (err: TrickleError): Promise<void> => {
      failures += 1;
      if (failures > this.#retries) {
        this.close();
        throw err;
      }
      this.#log.debug({ url: this.url, seq: this.#seq, attempt: failures, err: err.message }, 'trickle subscribe retry');
      await new Promise((r) => setTimeout(r, this.#retryDelayMs));
    };
    while (!this.#ended) {
      const pending = this.#pending ?? this.#get(this.#seq);
      this.#pending = undefined;
      let res: IncomingMessage;
      try {
        res = await pending;
      } catch (err) {
        if (this.#ended) return undefined;
        await fail(new TrickleError('NETWORK', `trickle subscribe failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        continue;
      }
      const status = res.statusCode ?? 0;
      if (res.headers[HEADER_CLOSED] !== undefined) {
        res.resume();
        this.close();
        return undefined;
      }
      if (status === STATUS_SEQ_NOT_FOUND) {
        res.resume();
        const latest = intHeader(res.headers[HEADER_LATEST]);
        if (latest === undefined || latest === this.#seq) {
          await fail(new TrickleError('HTTP', `trickle seq ${this.#seq} not found`, { status }));
          continue;
        }
        if (this.#seq >= 0 && latest > this.#seq) this.#skipped += latest - this.#seq;
        this.#log.info({ url: this.url, seq: this.#seq, latest }, 'trickle subscriber jumped to the live edge');
        this.#seq = latest;
        continue;
      }
      if (status !== 200) {
        res.resume();
        await fail(status === 404
          ? new TrickleError('CHANNEL_NOT_FOUND', 'trickle channel not found', { status })
          : new TrickleError('HTTP', `trickle subscribe answered ${status}`, { status }));
        continue;
      }
      failures = 0;
      const seq = intHeader(res.headers[HEADER_SEQ]) ?? this.#seq;
      this.#seq = seq + 1;
      // Open the request for the following segment now: it waits at the server.
      this.#pending = this.#get(this.#seq);
      if (res.headers['content-length'] === '0') {
        res.resume();
        continue;
      }
      const type = res.headers['content-type'];
      return { seq, contentType: type, body: res };
    }
    return undefined;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TrickleSegment> {
    try {
      for (;;) {
        const segment = await this.next();
        if (segment === undefined) return;
        yield segment;
      }
    } finally {
      this.close();
    }
  }

  /** Stops: the pending request is aborted, the iteration ends. Idempotent. */
  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#abort.abort();
    this.#pending = undefined;
    this.#agent.destroy();
  }
}
