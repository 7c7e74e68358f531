/**
 * Clients that send a request body over a server's limit and keep writing while the answer
 * may already be on its way, for the tests of refused bodies (413, src/http/refused-body.ts):
 * undici's fetch with a streamed (chunked) body or a Buffer (Content-Length), node:http writing
 * 64 KiB chunks as fast as the connection takes them, and a raw TCP client that never ends its
 * chunked body. Each reports the answer it got, or the error it got instead (EPIPE,
 * ECONNRESET, …), never throws.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type Agent } from 'node:http';
import { connect } from 'node:net';

/** Bytes of each chunk the clients write. */
export const OVERSIZE_CHUNK_BYTES = 64 * 1024;
const chunk = randomBytes(OVERSIZE_CHUNK_BYTES);

/** How one oversize request ended: the answer, or the error the client got instead. */
export interface Outcome {
  status?: number;
  body?: string;
  error?: string;
}

/** The code of a client error (its cause's first, as fetch wraps it), else its message. */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** What to send: the method, request headers, and bytes sent first (e.g. a multipart head), counted in the body's size. */
export interface OversizeRequest {
  /** Default POST. */
  method?: string;
  headers?: Record<string, string>;
  prefix?: Buffer;
}

/** fetch of `url` with a ReadableStream body of `bytes` in 64 KiB chunks (chunked: no Content-Length). */
export async function fetchChunked(url: string, bytes: number, request: OversizeRequest = {}): Promise<Outcome> {
  let sent = 0;
  let first = true;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (first && request.prefix) {
        first = false;
        controller.enqueue(new Uint8Array(request.prefix));
        sent += request.prefix.length;
        return;
      }
      if (sent >= bytes) {
        controller.close();
        return;
      }
      controller.enqueue(new Uint8Array(chunk));
      sent += chunk.length;
    },
  });
  try {
    const res = await fetch(url, { method: request.method ?? 'POST', headers: request.headers ?? {}, body, duplex: 'half' } as RequestInit);
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { error: describeError(err) };
  }
}

/** fetch of `url` with a Buffer body of `bytes` (Content-Length declared). */
export async function fetchDeclared(url: string, bytes: number, request: OversizeRequest = {}): Promise<Outcome> {
  const prefix = request.prefix ?? Buffer.alloc(0);
  try {
    const res = await fetch(url, { method: request.method ?? 'POST', headers: request.headers ?? {}, body: Buffer.concat([prefix, randomBytes(bytes - prefix.length)]) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { error: describeError(err) };
  }
}

/** How a node:http request ended, and how much it had written when the answer came and in all. */
export interface RawOutcome extends Outcome {
  writtenAtAnswer?: number;
  written: number;
  /** Whether the request went out on a connection an earlier request had used. */
  reusedSocket: boolean;
}

/**
 * Sends `bytes` to `url` with node:http in 64 KiB chunks as fast as the connection takes them
 * (chunked: no Content-Length), on `agent`. Resolves once the request is over: answered and
 * fully written, or its connection gone (the error is then reported even when the answer came
 * first). node:http's client stops writing a body once it has its answer.
 */
export function rawChunked(url: string, bytes: number, agent: Agent, request: OversizeRequest = {}): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const outcome: RawOutcome = { written: 0, reusedSocket: false };
    let answered = false;
    let finished = false;
    const settle = (): void => {
      if (answered && finished) resolve(outcome);
    };
    const req = httpRequest(url, { method: request.method ?? 'POST', agent, headers: request.headers ?? {} }, (res) => {
      outcome.status = res.statusCode ?? 0;
      outcome.writtenAtAnswer = outcome.written;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        outcome.body = Buffer.concat(parts).toString();
        answered = true;
        settle();
      });
    });
    req.on('socket', () => { outcome.reusedSocket = req.reusedSocket; });
    req.on('error', (err) => {
      outcome.error = describeError(err);
      resolve(outcome);
    });
    req.on('finish', () => {
      finished = true;
      settle();
    });
    req.on('close', () => {
      if (!(answered && finished)) outcome.error ??= 'connection closed';
      resolve(outcome);
    });
    if (request.prefix) {
      req.write(request.prefix);
      outcome.written += request.prefix.length;
    }
    const write = (): void => {
      while (outcome.written < bytes) {
        outcome.written += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', write);
          return;
        }
      }
      req.end();
    };
    write();
  });
}

/** How an endless chunked body ended: the answer's head and body, and what was written when it came and in all. */
export interface EndlessOutcome {
  head?: string;
  body?: string;
  writtenAtAnswer?: number;
  written: number;
  error?: string;
}

/**
 * A client that never ends its body, over a plain TCP socket to `url`'s host and port: a
 * chunked request whose 64 KiB chunks follow each other for as long as the connection takes
 * them, while the answer (with a Content-Length) is read. Resolves once the connection is gone.
 */
export function endlessChunked(url: string, request: OversizeRequest = {}): Promise<EndlessOutcome> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const outcome: EndlessOutcome = { written: 0 };
    const frame = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
    const chunkFrame = frame(chunk);
    let received = Buffer.alloc(0);
    const headers = Object.entries(request.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const socket = connect(Number(target.port), target.hostname, () => {
      socket.write(`${request.method ?? 'POST'} ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n${headers}Transfer-Encoding: chunked\r\n\r\n`);
      if (request.prefix) {
        socket.write(frame(request.prefix));
        outcome.written += request.prefix.length;
      }
      const write = (): void => {
        while (!socket.destroyed) {
          outcome.written += chunk.length;
          if (!socket.write(chunkFrame)) {
            socket.once('drain', write);
            return;
          }
        }
      };
      write();
    });
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      outcome.head ??= received.subarray(0, end).toString('latin1');
      outcome.writtenAtAnswer ??= outcome.written;
      const length = Number(/^content-length: *(\d+)$/im.exec(outcome.head)?.[1] ?? NaN);
      if (received.length >= end + 4 + length) outcome.body = received.subarray(end + 4, end + 4 + length).toString();
    });
    socket.on('error', (err) => { outcome.error = describeError(err); });
    socket.on('close', () => resolve(outcome));
  });
}

/**
 * The outcomes that are not a `status` answer, numbered from 1 (`try`): an empty list when
 * every try got it.
 */
export function notAnswered(outcomes: readonly Outcome[], status: number): (Outcome & { try: number })[] {
  return outcomes.map((o, i) => ({ try: i + 1, ...o })).filter((o) => o.status !== status);
}
