/**
 * The publishing client of trickle (docs/wire-contract.md "Trickle"): each segment is one
 * `POST <channel>/<seq>` whose body is streamed as it is written, so subscribers read it
 * while it is being produced. Sequence numbers count up from `startSeq` (default 0).
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import { silentLogger } from '../log/logger.ts';
import { HEADER_CLOSED, HEADER_RESET, MIME_MPEGTS, segmentUrl, TrickleError } from './trickle-protocol.ts';

export interface TricklePublisherOptions {
  /** `Content-Type` of the segments; default `video/MP2T` (`application/json` for control and events). */
  readonly contentType?: string;
  /** First sequence number; default 0. */
  readonly startSeq?: number;
  /** Send `Lp-Trickle-Reset` with the first segment (a publisher taking over a channel); default false. */
  readonly reset?: boolean;
  readonly logger?: Logger;
}

interface Reply { status: number; closed: boolean; body: string }

/**
 * One segment being published: write its bytes, then `end()`. Obtained from
 * {@link TricklePublisher.next}.
 */
export class TrickleSegmentWriter {
  readonly seq: number;
  readonly #req: ClientRequest;
  readonly #reply: Promise<Reply>;
  readonly #onClosed: () => void;
  #ended = false;

  /** @internal */
  constructor(seq: number, req: ClientRequest, onClosed: () => void) {
    this.seq = seq;
    this.#req = req;
    this.#onClosed = onClosed;
    this.#reply = new Promise<Reply>((resolve, reject) => {
      req.once('response', (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => { if (parts.length < 16) parts.push(c); });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, closed: res.headers[HEADER_CLOSED] !== undefined, body: Buffer.concat(parts).toString('utf8').slice(0, 300) }));
        res.once('error', (err) => reject(new TrickleError('NETWORK', `trickle publish of seq ${seq} broke off: ${err.message}`, { cause: err })));
      });
      req.once('error', (err) => reject(new TrickleError('NETWORK', `trickle publish of seq ${seq} failed: ${err.message}`, { cause: err })));
    });
    // The reply is awaited by end(); a failure before that must not be an unhandled rejection.
    this.#reply.catch(() => undefined);
  }

  /** Sends bytes of the segment; resolves when the connection took them (backpressure). */
  async write(chunk: Uint8Array | string): Promise<void> {
    if (this.#ended) throw new Error('write after end of the trickle segment');
    if (this.#req.destroyed) return;
    if (!this.#req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => { this.#req.off('drain', done); this.#req.off('close', done); resolve(); };
        this.#req.once('drain', done);
        this.#req.once('close', done);
      });
    }
  }

  /**
   * Ends the segment and waits for the server's answer.
   * @throws TrickleError CLOSED when the channel was closed, CHANNEL_NOT_FOUND on 404, HTTP on
   *   another status, NETWORK when the connection failed.
   */
  async end(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      if (!this.#req.destroyed) this.#req.end();
    }
    const reply = await this.#reply;
    if (reply.closed) {
      this.#onClosed();
      throw new TrickleError('CLOSED', `trickle channel closed (seq ${this.seq})`, { status: reply.status });
    }
    if (reply.status === 404) throw new TrickleError('CHANNEL_NOT_FOUND', 'trickle channel not found', { status: 404 });
    if (reply.status !== 200) throw new TrickleError('HTTP', `trickle publish of seq ${this.seq} answered ${reply.status}: ${reply.body}`, { status: reply.status });
  }

  /** Abandons the segment (the server ends it where it broke off). */
  abort(): void {
    this.#ended = true;
    this.#req.destroy();
  }
}

/** Publishes segments to one trickle channel. */
export class TricklePublisher {
  readonly url: string;
  readonly #contentType: string;
  readonly #agent: HttpAgent;
  readonly #log: Logger;
  #seq: number;
  #reset: boolean;
  #closed = false;
  #deleted: Promise<void> | undefined;

  /** @param channelUrl e.g. `http://127.0.0.1:8000/ai/trickle/abc` */
  constructor(channelUrl: string, options: TricklePublisherOptions = {}) {
    this.url = channelUrl.replace(/\/+$/, '');
    this.#contentType = options.contentType ?? MIME_MPEGTS;
    this.#seq = options.startSeq ?? 0;
    this.#reset = options.reset ?? false;
    this.#agent = this.url.startsWith('https:') ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.#log = (options.logger ?? silentLogger()).child({ component: 'trickle-publisher' });
  }

  /** The seq the next segment gets. */
  get nextSeq(): number { return this.#seq; }

  /** True once the server said the channel is closed, or {@link close} was called. */
  get closed(): boolean { return this.#closed; }

  /**
   * Opens the next segment (`POST <channel>/<seq>`; headers are sent at once).
   * @throws TrickleError CLOSED after the channel closed.
   */
  next(): TrickleSegmentWriter {
    if (this.#closed) throw new TrickleError('CLOSED', 'trickle channel closed');
    const seq = this.#seq++;
    const headers: Record<string, string> = { 'content-type': this.#contentType };
    if (this.#reset) {
      headers[HEADER_RESET] = '1';
      this.#reset = false;
    }
    const send = this.url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(segmentUrl(this.url, seq), { method: 'POST', agent: this.#agent, headers });
    req.flushHeaders();
    return new TrickleSegmentWriter(seq, req, () => { this.#closed = true; });
  }

  /**
   * Publishes one whole segment and waits for the server's answer. Returns its seq.
   * @throws TrickleError as {@link TrickleSegmentWriter.end}.
   */
  async write(data: Uint8Array | string | Readable | AsyncIterable<Uint8Array>): Promise<number> {
    const segment = this.next();
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) await segment.write(data);
      else for await (const chunk of data as AsyncIterable<Uint8Array>) await segment.write(chunk);
    } catch (err) {
      segment.abort();
      throw err;
    }
    await segment.end();
    this.#log.debug({ seq: segment.seq }, 'trickle segment sent');
    return segment.seq;
  }

  /** Drops the connections without closing the channel (another publisher may take over). Idempotent. */
  destroy(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  /** Closes the channel (`DELETE <channel>`; a 404 counts as closed) and the connections. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#deleted ??= new Promise<void>((resolve) => {
      const send = this.url.startsWith('https:') ? httpsRequest : httpRequest;
      const req = send(this.url, { method: 'DELETE', agent: false });
      req.once('response', (res) => {
        res.resume();
        res.once('end', resolve);
        res.once('error', () => resolve());
        if (res.statusCode !== 200 && res.statusCode !== 404) this.#log.warn({ status: res.statusCode }, 'trickle channel delete refused');
      });
      req.once('error', (err) => {
        this.#log.debug({ err: err.message }, 'trickle channel delete failed');
        resolve();
      });
      req.end();
    }).finally(() => this.#agent.destroy());
    return this.#deleted;
  }
}
