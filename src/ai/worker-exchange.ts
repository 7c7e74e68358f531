/**
 * One HTTP exchange with a worker ({@link Exchange}), sent through undici's `Dispatcher.dispatch`
 * over the worker client's keep-alive pools: a resettable timer and the caller's signal end it,
 * and a failed step is classified as a {@link WorkerCallError}. The answer's body is collected by
 * a small handler ({@link ReplyBody}) instead of a stream: a JSON answer is read to its end with
 * no stream, promise or event per chunk.
 *
 * undici rather than node:http: the gateway's CPU per worker call at 32 in flight was ~0.17 ms
 * with node:http's client (ClientRequest, IncomingMessage streams), ~0.12 ms with undici's
 * `request` (a Readable body and an AsyncResource per request) and ~0.09 ms with `dispatch` and
 * this handler (bench/README.md §4). The handler follows undici 6's `DispatchHandlers`
 * (`onConnect`, `onHeaders`, `onData`, `onComplete`, `onError`; undici `docs/api/Dispatcher.md`).
 */
import type { Readable } from 'node:stream';
import { Client, type Dispatcher } from 'undici';
import { WorkerCallError } from './worker-reply.ts';
import type { MultipartBody } from './worker-request.ts';

/** Request headers as undici takes them (lower-case names). */
export type WorkerRequestHeaders = Record<string, string>;

/**
 * Bytes of an answer's body held unread before the connection is paused (a streamed answer
 * whose consumer is slower than the worker); a JSON answer read whole is never paused.
 */
const PAUSE_AFTER_BYTES = 256 * 1024;

/** An answer's status line and headers as they arrived, with its body ({@link ReplyBody}). */
export interface WorkerResponse {
  readonly statusCode: number;
  /** The value of a response header (`name` lower case), the first if repeated. */
  header(name: string): string | undefined;
  readonly body: ReplyBody;
}

/**
 * An answer's body as undici delivers it: collected whole ({@link text}) or iterated chunk by
 * chunk as it arrives (an SSE stream). It errs when the connection closes before the body's
 * end (undici checks Content-Length and chunked framing), so a short body is never complete.
 */
export class ReplyBody implements AsyncIterable<Buffer> {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #done = false;
  #error: Error | undefined;
  /** Set while a reader waits: called at the next chunk, end or error. */
  #wake: (() => void) | undefined;
  /** The cap of a whole-body read, bytes; past it the exchange is ended. */
  #limit = Infinity;
  #overLimit: (() => void) | undefined;
  #resume: (() => void) | undefined;
  #paused = false;

  /** Whether the whole body arrived. */
  get complete(): boolean {
    return this.#done && this.#error === undefined;
  }

  /** @internal the exchange's handler: a chunk arrived; false asks undici to pause reading. */
  push(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes > this.#limit) {
      this.#overLimit?.();
      this.#wake?.();
      return false;
    }
    this.#wake?.();
    if (this.#limit === Infinity && this.#bytes > PAUSE_AFTER_BYTES) {
      this.#paused = true;
      return false;
    }
    return true;
  }

  /** @internal the exchange's handler: where to resume a paused connection. */
  onResume(resume: () => void): void {
    this.#resume = resume;
  }

  /** @internal the exchange's handler: the body ended (`error` undefined) or failed. */
  finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#wake?.();
  }

  /**
   * The whole body, at most `maxBytes`. Past `maxBytes` reading stops and `onOverflow` is
   * called at once (it ends the exchange, closing the connection).
   * @param overflow what a longer body does: `throw` `tooLarge()`, or `truncate` to `maxBytes`.
   * @throws the connection's error when the body did not arrive whole (and was not cut)
   */
  async read(maxBytes: number, overflow: 'throw' | 'truncate', tooLarge: () => Error, onOverflow: () => void): Promise<Buffer> {
    this.#limit = maxBytes;
    let over = false;
    this.#overLimit = () => {
      if (over) return;
      over = true;
      onOverflow();
    };
    if (this.#bytes > maxBytes) this.#overLimit();
    while (!this.#done && this.#bytes <= maxBytes) await this.#next();
    if (this.#bytes > maxBytes) {
      if (overflow === 'throw') throw tooLarge();
    } else if (this.#error !== undefined) {
      throw this.#error;
    }
    const whole = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bytes);
    return whole.length > maxBytes ? whole.subarray(0, maxBytes) : whole;
  }

  /** Waits for the next chunk, the end or an error; resumes a paused connection first. */
  #next(): Promise<void> {
    return new Promise((resolve) => {
      const bytesBefore = this.#bytes;
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
      if (this.#paused) {
        this.#paused = false;
        // undici may deliver data (or the end) from within resume().
        this.#resume?.();
      }
      if (this.#wake !== undefined && (this.#done || this.#bytes !== bytesBefore)) this.#wake();
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      if (this.#chunks.length > 0) {
        const chunk = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bytes);
        this.#chunks = [];
        this.#bytes = 0;
        yield chunk;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#done) return;
      await this.#next();
    }
  }
}

/** One keep-alive connection of a {@link WorkerConnections} pool. */
interface Connection {
  readonly client: Client;
  readonly origin: string;
  busy: boolean;
}

/**
 * Keep-alive connections to workers, one request at a time on each (no HTTP pipelining): an
 * undici `Client` per connection, grouped by worker origin. A request takes an idle connection
 * of its origin, else opens one. Not undici's own `Pool`: after each answer a connection is
 * reused only once the event loop has turned (undici checks the idle socket first), and until
 * then its `Pool` opens another connection for a request sent at once, so a caller that
 * sends requests one after another would alternate over two connections. Here such a request
 * waits that turn on the same connection.
 *
 * Idle connections close after `keepAliveTimeoutMs` (undici's keep-alive timer) and leave the
 * pool then; `close()` ends every connection (idempotent).
 */
export class WorkerConnections {
  readonly #byOrigin = new Map<string, Connection[]>();
  readonly #options: Client.Options;
  #closed = false;

  /** @param keepAliveTimeoutMs how long an idle connection stays open, ms */
  constructor(keepAliveTimeoutMs: number) {
    // undici's own header and body timeouts (300 s by default) are off: each exchange has its timer.
    this.#options = { keepAliveTimeout: keepAliveTimeoutMs, keepAliveMaxTimeout: keepAliveTimeoutMs, headersTimeout: 0, bodyTimeout: 0 };
  }

  /** @internal an idle connection to `origin` (marked busy until {@link release}), new if none is idle. */
  take(origin: string): Connection {
    if (this.#closed) throw new Error('worker connections are closed');
    let list = this.#byOrigin.get(origin);
    if (list === undefined) {
      list = [];
      this.#byOrigin.set(origin, list);
    }
    for (const connection of list) {
      if (!connection.busy) {
        connection.busy = true;
        return connection;
      }
    }
    const connection: Connection = { client: new Client(origin, this.#options), origin, busy: true };
    // Closed by the worker or the keep-alive timer while idle: dropped (a busy one is dropped on release).
    connection.client.on('disconnect', () => {
      if (!connection.busy) this.#drop(connection);
    });
    list.push(connection);
    return connection;
  }

  /** @internal the request on `connection` is over (answered, failed or aborted). */
  release(connection: Connection): void {
    connection.busy = false;
    if (connection.client.destroyed) this.#drop(connection);
  }

  #drop(connection: Connection): void {
    const list = this.#byOrigin.get(connection.origin);
    const at = list?.indexOf(connection) ?? -1;
    if (at < 0) return;
    list!.splice(at, 1);
    if (list!.length === 0) this.#byOrigin.delete(connection.origin);
    connection.client.close().catch(() => undefined);
  }

  /** Ends every connection, in-flight requests too. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const list of this.#byOrigin.values()) for (const { client } of list) client.destroy().catch(() => undefined);
    this.#byOrigin.clear();
  }
}

/**
 * One HTTP exchange with a worker: a resettable timer and the caller's signal both end it
 * (aborting the request and its connection) and remember why, so a failed step can be
 * classified.
 */
export class Exchange {
  #reason: 'timeout' | 'aborted' | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** undici's abort of the request, once it has a connection. */
  #abortRequest: ((err: Error) => void) | undefined;
  #body: ReplyBody | undefined;
  #source: Readable | undefined;
  readonly #connections: WorkerConnections;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#abort('aborted');

  constructor(connections: WorkerConnections, signal: AbortSignal | undefined) {
    this.#connections = connections;
    this.#signal = signal;
    if (signal?.aborted) this.#abort('aborted');
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Sends the request; resolves with the response once its headers arrived. A multipart
   * body is streamed (files read from disk as the connection drains).
   */
  send(target: URL, method: 'GET' | 'POST', headers: WorkerRequestHeaders, body: Buffer | MultipartBody | undefined): Promise<WorkerResponse> {
    return new Promise((resolve, reject) => {
      if (this.#reason !== undefined) {
        reject(new Error('exchange ended before it was sent'));
        return;
      }
      let requestBody: Buffer | Readable | undefined;
      let sendHeaders = headers;
      if (body === undefined || Buffer.isBuffer(body)) {
        requestBody = body;
      } else {
        const source = body.open();
        this.#source = source;
        source.once('error', (err) => this.#abortRequest?.(err));
        requestBody = source;
        sendHeaders = { ...headers, 'content-length': String(body.lengthBytes) };
      }
      const reply = new ReplyBody();
      this.#body = reply;
      let connection: Connection;
      try {
        connection = this.#connections.take(target.origin);
      } catch (err) {
        this.#source?.destroy();
        reject(err);
        return;
      }
      let answered = false;
      let over = false;
      const release = (): void => {
        if (over) return;
        over = true;
        this.#connections.release(connection);
      };
      const handler: Dispatcher.DispatchHandlers = {
        onConnect: (abort) => {
          this.#abortRequest = abort as (err: Error) => void;
          if (this.#reason !== undefined) abort(new Error(`exchange ${this.#reason}`));
        },
        onHeaders: (statusCode, rawHeaders, resume) => {
          // 1xx answers (informational) are not the answer.
          if (statusCode < 200) return true;
          answered = true;
          reply.onResume(resume);
          resolve({ statusCode, header: (name) => headerOf(rawHeaders, name), body: reply });
          return true;
        },
        onData: (chunk) => reply.push(chunk),
        onComplete: () => {
          release();
          reply.finish(undefined);
        },
        onError: (err) => {
          release();
          if (answered) reply.finish(err);
          else reject(err);
        },
      };
      connection.client.dispatch({
        path: `${target.pathname}${target.search}`, method, headers: sendHeaders,
        ...(requestBody === undefined ? {} : { body: requestBody }),
      }, handler);
    });
  }

  /**
   * Reads the answer's body as UTF-8 text.
   * @param strict true: a body over `maxBytes` is a `server` failure; false: keep the first
   *   `maxBytes` (the rest is not read; the connection is closed)
   */
  readText(response: WorkerResponse, maxBytes: number, strict: boolean): Promise<string> {
    return response.body.read(maxBytes, strict ? 'throw' : 'truncate',
      () => new WorkerCallError('server', `worker answer is larger than ${maxBytes} bytes`, { status: response.statusCode }),
      () => this.end()).then((bytes) => bytes.toString('utf8'));
  }

  arm(timeoutMs: number): void {
    this.disarm();
    this.#timer = setTimeout(() => this.#abort('timeout'), timeoutMs);
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Ends the exchange and releases the listener. A response read to its end leaves its
   * connection to the keep-alive pool; anything else (unread or partly read) is aborted,
   * which closes its connection.
   */
  dispose(): void {
    this.disarm();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#body === undefined || !this.#body.complete) this.#destroy(new Error('worker exchange ended before its answer was read'));
  }

  /** Ends the exchange now (a body over its limit); its connection is closed. */
  end(): void {
    this.#destroy(new Error('worker answer refused'));
  }

  #destroy(err: Error): void {
    this.#source?.destroy();
    this.#abortRequest?.(err);
  }

  #abort(reason: 'timeout' | 'aborted'): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#destroy(new Error(`worker exchange ${reason}`));
  }

  /** Runs one step; a rejection becomes a classified WorkerCallError. */
  async run<T>(timeoutMs: number, path: string, step: () => Promise<T>): Promise<T> {
    if (this.#reason !== undefined) throw this.failure(undefined, timeoutMs, path);
    try {
      return await step();
    } catch (err) {
      throw this.failure(err, timeoutMs, path);
    }
  }

  failure(err: unknown, timeoutMs: number, path: string): WorkerCallError {
    if (this.#reason === 'timeout') return new WorkerCallError('timeout', `worker did not answer ${path} within ${timeoutMs} ms`);
    if (this.#reason === 'aborted') return new WorkerCallError('timeout', `worker call to ${path} was aborted`);
    if (err instanceof WorkerCallError) return err;
    return new WorkerCallError('connection', `worker connection failed on ${path}: ${connectionReason(err)}`, { cause: err });
  }
}

/** The first value of header `name` (lower case) in undici's raw headers (name, value, name, value…). */
function headerOf(rawHeaders: Buffer[] | string[] | null, name: string): string | undefined {
  if (rawHeaders === null) return undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!;
    if (key.length === name.length && key.toString('latin1').toLowerCase() === name) return rawHeaders[i + 1]!.toString('latin1');
  }
  return undefined;
}

/** A short reason for a connection/stream failure: the system error code when there is one. */
function connectionReason(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code !== 'ERR_STREAM_PREMATURE_CLOSE') return code;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
