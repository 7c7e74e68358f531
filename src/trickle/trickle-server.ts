/**
 * The server side of trickle (docs/wire-contract.md "Trickle"; go-livepeer `trickle/trickle_server.go`
 * is the reference implementation): an in-memory store of channels, each keeping its last
 * {@link TRICKLE_SEGMENTS_KEPT} segments, and a request handler for node:http or express.
 *
 * Routes, under `basePath` (default `/ai/trickle/`):
 * - `POST <channel>/<seq>`: publish segment `seq` (`-1` = the live edge) with a streamed body.
 *   Subscribers of that seq receive its bytes as they arrive. On the end of the body → 200
 *   with `Lp-Trickle-Seq`. A body that breaks off ends the segment where it broke. When the
 *   channel is closed meanwhile → 200 with `Lp-Trickle-Closed: terminated`. `Lp-Trickle-Reset`
 *   on the request closes every older open segment (a restarted publisher). 404 unknown
 *   channel (unless `autocreate`), 413 a segment above `maxSegmentBytes` (answered once the
 *   bytes received pass it: the segment is closed with the bytes before the chunk that passed
 *   it, the rest of the body is read and dropped, and the connection is kept if the body ends
 *   within 2 s of the answer, else closed: src/http/refused-body.ts).
 * - `GET <channel>/<seq>`: the segment's bytes, streamed; `-1` = the next segment to be
 *   published (the request waits for it), `-2` = the one being published now. Headers
 *   `Lp-Trickle-Seq` (the seq served), `Lp-Trickle-Latest` (the live edge, when it differs),
 *   `Content-Type` (the channel's). A seq at the live edge waits for its publisher (a long
 *   poll). 470 when the seq is gone (older than the last 5) or further ahead than the live
 *   edge (headers say which are there); on a closed channel → 200, empty, with
 *   `Lp-Trickle-Closed: terminated`.
 * - `GET <channel>/next` → 200, body and `Lp-Trickle-Latest` = the live edge's seq.
 * - `DELETE <channel>`: close the channel (readers and publishers of open segments are
 *   ended, later requests for it get `Lp-Trickle-Closed`) → 200; `DELETE <channel>/<seq>`
 *   ends one segment. 404 unknown channel.
 * - `POST <channel>`: 200 when the channel exists (or is created, with `autocreate`), else 404.
 *
 * Closed channels are remembered (as closed) until the idle timeout passes, so a subscriber
 * that asks after the close learns it ended rather than getting a 404. Channels with no new
 * segment for `idleTimeoutMs` are closed by a sweep every `sweepIntervalMs`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.ts';
import { silentLogger } from '../log/logger.ts';
import { lingerAfterRefusal } from '../http/refused-body.ts';
import {
  CLOSED_VALUE, HEADER_CLOSED, HEADER_LATEST, HEADER_RESET, HEADER_SEQ, MIME_MPEGTS, STATUS_SEQ_NOT_FOUND,
  TRICKLE_BASE_PATH, TRICKLE_CURRENT, TRICKLE_DEFAULT_IDLE_TIMEOUT_MS, TRICKLE_LIVE_EDGE, TRICKLE_SEGMENTS_KEPT,
} from './trickle-protocol.ts';

export interface TrickleServerOptions {
  /** Mount path, with leading and trailing slash; default `/ai/trickle/`. */
  readonly basePath?: string;
  /** Close a channel with no new segment for this long, ms; default 300000 (5 min, as go-livepeer). */
  readonly idleTimeoutMs?: number;
  /** How often idle channels are looked for, ms; default min(60000, idleTimeoutMs). */
  readonly sweepIntervalMs?: number;
  /** Create a channel on its first POST instead of answering 404; default false (the owner creates channels). */
  readonly autocreate?: boolean;
  /** Largest segment body, bytes; default 64 MiB (about 4 min of 2 Mb/s video). */
  readonly maxSegmentBytes?: number;
  readonly logger?: Logger;
}

export interface TrickleChannelOptions {
  /** `Content-Type` of the channel's segments; default `video/MP2T`. */
  readonly mimeType?: string;
}

/** One segment: its bytes so far, readable from the start by any number of subscribers. */
class Segment {
  readonly seq: number;
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #closed = false;
  #waiters = new Set<() => void>();

  constructor(seq: number) {
    this.seq = seq;
  }

  get bytes(): number { return this.#bytes; }
  get closed(): boolean { return this.#closed; }
  /** Not written to nor closed yet (precreated by a waiting subscriber or publisher). */
  get fresh(): boolean { return !this.#closed && this.#chunks.length === 0; }

  write(chunk: Buffer): void {
    if (this.#closed) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#wake();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake();
  }

  /** The segment's chunks from the first, waiting for more until it is closed or `signal` aborts. */
  async *read(signal: AbortSignal): AsyncGenerator<Buffer> {
    let next = 0;
    for (;;) {
      while (next < this.#chunks.length) {
        if (signal.aborted) return;
        yield this.#chunks[next++]!;
      }
      if (this.#closed || signal.aborted) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

/** A channel: a ring of the last segments, the live edge and the publishes in flight. */
class Channel {
  readonly name: string;
  readonly mimeType: string;
  readonly #ring: (Segment | undefined)[] = new Array(TRICKLE_SEGMENTS_KEPT).fill(undefined);
  /** The seq of the next segment to be published (set when a segment's first byte arrives). */
  nextWrite = 0;
  lastWriteMs = Date.now();
  closed = false;
  /** Called when the channel closes, to answer publishers still sending. */
  readonly onClose = new Set<() => void>();

  constructor(name: string, mimeType: string) {
    this.name = name;
    this.mimeType = mimeType;
  }

  #resolve(seq: number): number {
    if (seq === TRICKLE_LIVE_EDGE) return this.nextWrite;
    if (seq === TRICKLE_CURRENT) return Math.max(0, this.nextWrite - 1);
    return seq;
  }

  /** The segment to write `seq` into (a waiting subscriber's precreated one, or a new one). */
  forWrite(requested: number): Segment {
    const seq = this.#resolve(requested);
    const slot = seq % TRICKLE_SEGMENTS_KEPT;
    const existing = this.#ring[slot];
    if (existing?.seq === seq && existing.fresh) return existing;
    // An older segment in the slot, or the same seq published again: replace it.
    existing?.close();
    const segment = new Segment(seq);
    this.#ring[slot] = segment;
    return segment;
  }

  /**
   * The segment `requested` for a reader: an existing one, or a precreated one when the
   * reader is at the live edge (it waits for the publisher); undefined when not there.
   */
  forRead(requested: number): { seq: number; segment: Segment | undefined } {
    const seq = this.#resolve(requested);
    if (seq < 0) return { seq, segment: undefined };
    const slot = seq % TRICKLE_SEGMENTS_KEPT;
    let segment = this.#ring[slot];
    if (segment?.seq === seq) return { seq, segment };
    // go-livepeer also precreates seq 1 while nothing was published (a reader one ahead at the start).
    if (!this.closed && (seq === this.nextWrite || (this.nextWrite === 0 && seq === 1))) {
      segment?.close();
      segment = new Segment(seq);
      this.#ring[slot] = segment;
      return { seq, segment };
    }
    return { seq, segment: undefined };
  }

  segment(seq: number): Segment | undefined {
    const s = this.#ring[seq % TRICKLE_SEGMENTS_KEPT];
    return s?.seq === seq ? s : undefined;
  }

  /** Closes every open segment older than `seq`. */
  resetBefore(seq: number): void {
    for (const s of this.#ring) if (s !== undefined && s.seq < seq) s.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.#ring) s?.close();
    for (const fn of [...this.onClose]) fn();
    this.onClose.clear();
  }
}

type Next = (err?: unknown) => void;

function parseSeq(raw: string): number | undefined {
  if (!/^-?\d{1,15}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= TRICKLE_CURRENT ? n : undefined;
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Trickle channels served over HTTP (see the module docs). */
export class TrickleServer {
  readonly basePath: string;
  readonly #idleTimeoutMs: number;
  readonly #autocreate: boolean;
  readonly #maxSegmentBytes: number;
  readonly #log: Logger;
  readonly #channels = new Map<string, Channel>();
  /** Closed channel names → when they closed (ms), kept for `idleTimeoutMs`. */
  readonly #closedAt = new Map<string, number>();
  readonly #sweep: NodeJS.Timeout;
  #stopped = false;

  constructor(options: TrickleServerOptions = {}) {
    const base = options.basePath ?? TRICKLE_BASE_PATH;
    this.basePath = `/${base.replace(/^\/+|\/+$/g, '')}/`.replace(/^\/\/$/, '/');
    this.#idleTimeoutMs = options.idleTimeoutMs ?? TRICKLE_DEFAULT_IDLE_TIMEOUT_MS;
    this.#autocreate = options.autocreate ?? false;
    this.#maxSegmentBytes = options.maxSegmentBytes ?? 64 * 1024 * 1024;
    this.#log = (options.logger ?? silentLogger()).child({ component: 'trickle-server' });
    const sweepMs = options.sweepIntervalMs ?? Math.min(60_000, this.#idleTimeoutMs);
    this.#sweep = setInterval(() => this.sweepIdle(), sweepMs);
    this.#sweep.unref();
  }

  /** Creates a channel (idempotent: an open channel of that name is kept as it is). */
  createChannel(name: string, options: TrickleChannelOptions = {}): void {
    if (this.#stopped) throw new Error('the trickle server is closed');
    if (name === '' || name.includes('/')) throw new Error(`invalid trickle channel name: ${JSON.stringify(name)}`);
    if (this.#channels.has(name)) return;
    this.#closedAt.delete(name);
    this.#channels.set(name, new Channel(name, options.mimeType ?? MIME_MPEGTS));
    this.#log.debug({ channel: name }, 'trickle channel created');
  }

  hasChannel(name: string): boolean {
    return this.#channels.has(name);
  }

  /** Names of the open channels. */
  channelNames(): string[] {
    return [...this.#channels.keys()];
  }

  /** Closes a channel: its readers and publishers are ended. False when it was not open. */
  closeChannel(name: string): boolean {
    const channel = this.#channels.get(name);
    if (channel === undefined) return false;
    this.#channels.delete(name);
    this.#closedAt.set(name, Date.now());
    channel.close();
    this.#log.debug({ channel: name }, 'trickle channel closed');
    return true;
  }

  /** Closes channels idle for longer than the idle timeout, and forgets old closed ones. */
  sweepIdle(now = Date.now()): void {
    for (const channel of [...this.#channels.values()]) {
      if (now - channel.lastWriteMs > this.#idleTimeoutMs) {
        this.closeChannel(channel.name);
        this.#log.info({ channel: channel.name }, 'idle trickle channel closed');
      }
    }
    for (const [name, at] of this.#closedAt) if (now - at > this.#idleTimeoutMs) this.#closedAt.delete(name);
  }

  /** Closes every channel and stops the sweep. Idempotent. */
  close(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#sweep);
    for (const name of [...this.#channels.keys()]) this.closeChannel(name);
  }

  /**
   * Handles a request when its path is under `basePath` (node:http `request` listener or a
   * part of one). Returns false, without touching the response, otherwise. The request body
   * must not have been read by anything else (mount before body parsers).
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    // express rewrites req.url under a mount path; originalUrl keeps the full one.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const path = url.split('?')[0]!;
    if (!path.startsWith(this.basePath)) return false;
    let parts: string[];
    try {
      parts = path.slice(this.basePath.length).split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    } catch {
      sendText(res, 400, 'Invalid path');
      return true;
    }
    try {
      this.#route(req, res, parts);
    } catch (err) {
      this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'trickle request failed');
      sendText(res, 500, 'Server error');
    }
    return true;
  }

  /** An express/connect middleware: handles trickle paths, passes anything else on. */
  readonly middleware = (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    if (!this.handle(req, res)) next();
  };

  #route(req: IncomingMessage, res: ServerResponse, parts: string[]): void {
    const [name, seqPart, ...rest] = parts;
    if (name === undefined || rest.length > 0) {
      sendText(res, 404, 'Not found');
      return;
    }
    const method = req.method ?? 'GET';
    if (seqPart === undefined) {
      if (method === 'DELETE') this.#delete(res, name);
      else if (method === 'POST') this.#create(req, res, name);
      else sendText(res, 405, 'Method not allowed', { allow: 'POST, DELETE' });
      return;
    }
    if (seqPart === 'next' && (method === 'GET' || method === 'HEAD')) {
      this.#next(res, name);
      return;
    }
    const seq = parseSeq(seqPart);
    if (seq === undefined) {
      sendText(res, 400, 'Invalid seq');
      return;
    }
    if (method === 'GET') void this.#get(req, res, name, seq);
    else if (method === 'POST') this.#post(req, res, name, seq);
    else if (method === 'DELETE') this.#deleteSeq(res, name, seq);
    else sendText(res, 405, 'Method not allowed', { allow: 'GET, POST, DELETE' });
  }

  #closedReply(res: ServerResponse, seq: number, extra: Record<string, string> = {}): void {
    sendText(res, 200, '', { [HEADER_SEQ]: String(seq), [HEADER_CLOSED]: CLOSED_VALUE, ...extra });
  }

  #create(req: IncomingMessage, res: ServerResponse, name: string): void {
    if (!this.#channels.has(name) && this.#autocreate) {
      const expect = req.headers['expect-content'];
      this.createChannel(name, typeof expect === 'string' && expect !== '' ? { mimeType: expect } : {});
    }
    req.resume();
    if (this.#channels.has(name)) sendText(res, 200, '');
    else sendText(res, 404, 'Stream not found', { connection: 'close' });
  }

  #delete(res: ServerResponse, name: string): void {
    if (this.closeChannel(name) || this.#closedAt.has(name)) sendText(res, 200, '');
    else sendText(res, 404, 'Stream not found');
  }

  #deleteSeq(res: ServerResponse, name: string, seq: number): void {
    const channel = this.#channels.get(name);
    if (channel === undefined) {
      sendText(res, 404, 'Stream not found');
      return;
    }
    const segment = channel.segment(seq);
    if (segment === undefined) {
      sendText(res, 400, 'Nonexistent segment');
      return;
    }
    segment.close();
    sendText(res, 200, '');
  }

  #next(res: ServerResponse, name: string): void {
    const channel = this.#channels.get(name);
    if (channel === undefined) {
      if (this.#closedAt.has(name)) sendText(res, 200, '', { [HEADER_CLOSED]: CLOSED_VALUE });
      else sendText(res, 404, 'Stream not found');
      return;
    }
    sendText(res, 200, String(channel.nextWrite), { [HEADER_LATEST]: String(channel.nextWrite) });
  }

  #post(req: IncomingMessage, res: ServerResponse, name: string, requested: number): void {
    let channel = this.#channels.get(name);
    if (channel === undefined && this.#autocreate && !this.#stopped) {
      const type = req.headers['content-type'];
      this.createChannel(name, type ? { mimeType: type } : {});
      channel = this.#channels.get(name);
    }
    if (channel === undefined) {
      req.resume();
      if (this.#closedAt.has(name)) this.#closedReply(res, requested, { connection: 'close' });
      else sendText(res, 404, 'Stream not found', { connection: 'close' });
      return;
    }
    const ch = channel;
    const segment = ch.forWrite(requested);
    const seq = segment.seq;
    if (req.headers[HEADER_RESET] !== undefined) ch.resetBefore(seq);
    const log = this.#log.child({ channel: name, seq });
    let finished = false;
    const cleanup = (): void => {
      finished = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onAbort);
      req.off('error', onAbort);
      ch.onClose.delete(onChannelClose);
    };
    const onData = (chunk: Buffer): void => {
      if (segment.bytes === 0) {
        ch.nextWrite = seq + 1;
        ch.lastWriteMs = Date.now();
      }
      if (segment.bytes + chunk.length > this.#maxSegmentBytes) {
        // The segment ends with what came before the limit; the rest of the body is read and dropped.
        cleanup();
        segment.close();
        log.warn({ maxSegmentBytes: this.#maxSegmentBytes }, 'trickle segment too large');
        lingerAfterRefusal(req, res);
        sendText(res, 413, `Segment larger than ${this.#maxSegmentBytes} bytes`, { [HEADER_SEQ]: String(seq) });
        return;
      }
      segment.write(chunk);
    };
    const onEnd = (): void => {
      if (finished) return;
      cleanup();
      if (segment.bytes === 0) {
        // Nothing sent (e.g. a preconnected publisher let go): move the edge on anyway, as go-livepeer does.
        ch.nextWrite = Math.max(ch.nextWrite, seq + 1);
        ch.lastWriteMs = Date.now();
      }
      segment.close();
      const headers: Record<string, string> = { [HEADER_SEQ]: String(seq) };
      if (ch.closed) headers[HEADER_CLOSED] = CLOSED_VALUE;
      sendText(res, 200, '', headers);
      log.debug({ bytes: segment.bytes }, 'trickle segment published');
    };
    const onAbort = (): void => {
      if (finished) return;
      cleanup();
      segment.close();
      log.debug({ bytes: segment.bytes }, 'trickle publish broke off');
    };
    const onChannelClose = (): void => {
      if (finished) return;
      cleanup();
      req.resume();
      this.#closedReply(res, seq, { connection: 'close' });
    };
    ch.onClose.add(onChannelClose);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onAbort);
    req.once('error', onAbort);
  }

  async #get(req: IncomingMessage, res: ServerResponse, name: string, requested: number): Promise<void> {
    const channel = this.#channels.get(name);
    if (channel === undefined) {
      if (this.#closedAt.has(name)) this.#closedReply(res, requested);
      else sendText(res, 404, 'Stream not found');
      return;
    }
    const { seq, segment } = channel.forRead(requested);
    if (segment === undefined) {
      const headers = { [HEADER_LATEST]: String(channel.nextWrite), [HEADER_SEQ]: String(seq) };
      if (channel.closed) this.#closedReply(res, seq, headers);
      else sendText(res, STATUS_SEQ_NOT_FOUND, 'Entry not found', headers);
      return;
    }
    const aborted = new AbortController();
    const onClose = (): void => aborted.abort();
    res.once('close', onClose);
    try {
      for await (const chunk of segment.read(aborted.signal)) {
        if (!res.headersSent) {
          const headers: Record<string, string> = { [HEADER_SEQ]: String(seq), 'content-type': channel.mimeType };
          if (channel.nextWrite !== seq) headers[HEADER_LATEST] = String(channel.nextWrite);
          res.writeHead(200, headers);
        }
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
            res.once('drain', done);
            res.once('close', done);
          });
        }
        if (aborted.signal.aborted) return;
      }
      if (aborted.signal.aborted) return;
      if (!res.headersSent) {
        // Ended with no bytes: a skipped segment or a closed channel.
        const headers: Record<string, string> = { [HEADER_LATEST]: String(channel.nextWrite) };
        if (channel.closed) this.#closedReply(res, seq, headers);
        else sendText(res, 200, '', { [HEADER_SEQ]: String(seq), ...headers });
        return;
      }
      res.end();
    } finally {
      res.off('close', onClose);
      if (req.readable) req.resume();
    }
  }
}
