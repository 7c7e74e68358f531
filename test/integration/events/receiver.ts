/**
 * A real webhook receiver on 127.0.0.1 (port 0) for the event tests: records every request
 * (raw body, headers, time) and answers what `respond` says for the n-th request
 * (0-based): an HTTP status, or `'hang'` to never answer.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  /** Path and query as requested. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  atMs: number;
}

export interface TestReceiver {
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** Requests the client gave up on before we answered (hanging ones that timed out). */
  readonly abandoned: () => number;
  /** Most requests open at the same time so far. */
  readonly maxConcurrent: () => number;
  close(): Promise<void>;
}

export async function startReceiver(respond: (n: number, req: ReceivedRequest) => number | 'hang' = () => 204, path = '/hook'): Promise<TestReceiver> {
  const received: ReceivedRequest[] = [];
  let open = 0;
  let maxOpen = 0;
  let abandoned = 0;
  const server = createServer((req, res) => {
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    let done = false;
    const finish = (): void => { if (!done) { done = true; open -= 1; } };
    res.on('close', () => {
      if (!res.writableFinished) abandoned += 1;
      finish();
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), atMs: Date.now() };
      const n = received.length;
      received.push(r);
      const answer = respond(n, r);
      if (answer === 'hang') return;
      res.writeHead(answer, { 'content-type': 'text/plain' });
      res.end(answer >= 200 && answer < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    abandoned: () => abandoned,
    maxConcurrent: () => maxOpen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Polls `check` every 20 ms. @throws Error naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not met within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
