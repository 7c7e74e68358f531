/**
 * One HTTP exchange with a worker ({@link Exchange}, node:http/node:https over the worker
 * client's keep-alive pools): a resettable timer and the caller's signal end it, and a
 * failed step is classified as a {@link WorkerCallError}.
 */
import { request as httpRequest, type Agent as HttpAgent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { WorkerCallError } from './worker-reply.ts';
import type { MultipartBody } from './worker-request.ts';

/** The connection pools of one worker client, by URL scheme. */
export interface WorkerAgents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

/**
 * One HTTP exchange with a worker: a resettable timer and the caller's signal both end it
 * (destroying the request and its connection) and remember why, so a failed step can be
 * classified.
 */
export class Exchange {
  #reason: 'timeout' | 'aborted' | undefined;
  #timer: NodeJS.Timeout | undefined;
  #request: ClientRequest | undefined;
  #response: IncomingMessage | undefined;
  readonly #agents: WorkerAgents;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#abort('aborted');

  constructor(agents: WorkerAgents, signal: AbortSignal | undefined) {
    this.#agents = agents;
    this.#signal = signal;
    if (signal?.aborted) this.#abort('aborted');
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Sends the request; resolves with the response once its headers arrived. A multipart
   * body is streamed (files read from disk as the connection drains).
   */
  send(target: URL, method: 'GET' | 'POST', headers: OutgoingHttpHeaders, body: Buffer | MultipartBody | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const https = target.protocol === 'https:';
      const lengthBytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body.length : body.lengthBytes;
      const req = (https ? httpsRequest : httpRequest)(target, {
        method, agent: https ? this.#agents.https : this.#agents.http,
        headers: lengthBytes === undefined ? headers : { ...headers, 'content-length': lengthBytes },
      });
      this.#request = req;
      req.once('response', (res) => { this.#response = res; resolve(res); });
      req.on('error', reject);
      req.once('close', () => reject(new Error('connection closed before an answer')));
      if (this.#reason !== undefined) {
        req.destroy();
      } else if (body === undefined || Buffer.isBuffer(body)) {
        req.end(body);
      } else {
        const source = body.open();
        source.once('error', (err) => req.destroy(err));
        req.once('close', () => source.destroy());
        source.pipe(req);
      }
    });
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
   * connection to the keep-alive pool; anything else (unread or partly read) is destroyed.
   */
  dispose(): void {
    this.disarm();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#response === undefined || !this.#response.complete) this.#destroy();
  }

  #destroy(): void {
    this.#response?.destroy();
    this.#request?.destroy();
  }

  #abort(reason: 'timeout' | 'aborted'): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#destroy();
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

/** A short reason for a connection/stream failure: the system error code when there is one. */
function connectionReason(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code !== 'ERR_STREAM_PREMATURE_CLOSE') return code;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
