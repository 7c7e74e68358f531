/**
 * The floor of any gateway written in Node, for bench/ai-overhead.ts: a process that forwards
 * every request to one upstream and writes the answer back, and does nothing else (no
 * validation, no authorization, no ledger, no worker selection, no result storage). A node:http
 * server; the upstream over undici's keep-alive pool with `dispatch` and a handler that writes
 * each part of the answer as it arrives (the cheapest client we measured: the gateway's worker
 * calls use the same, src/ai/worker-exchange.ts); the request body is read whole first.
 *
 * Usage: node --import tsx bench/lib/pass-through-proxy-main.ts <upstream base URL>
 * Prints `{"url": "..."}` on stdout once listening on 127.0.0.1; exits on SIGTERM/SIGINT.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';

const upstream = new URL(process.argv[2] ?? '');
const pool = new Pool(upstream.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });

/** Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP.has(name) || name === 'host') continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Writes the upstream's answer to `res` as it arrives. */
function answerHandler(res: ServerResponse): Dispatcher.DispatchHandlers {
  return {
    onConnect: () => undefined,
    onHeaders: (statusCode, raw) => {
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1');
        if (!HOP.has(name.toLowerCase())) headers.push([name, raw[i + 1]!.toString('latin1')]);
      }
      res.writeHead(statusCode, headers.flat());
      return true;
    },
    onData: (chunk) => {
      res.write(chunk);
      return true;
    },
    onComplete: () => { res.end(); },
    onError: () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  };
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    pool.dispatch({ origin: upstream.origin, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: forwardHeaders(req.headers), body }, answerHandler(res));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
const stop = (): void => { server.close(() => { void pool.close().then(() => process.exit(0)); }); server.closeAllConnections(); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
