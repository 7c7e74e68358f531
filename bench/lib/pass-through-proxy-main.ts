/**
 * The floor of any gateway written in Node, for bench/ai-overhead.ts: a process that forwards
 * every request to one upstream and streams the answer back, and does nothing else (no
 * validation, no authorization, no ledger, no worker selection, no result storage). node:http
 * server and client, a keep-alive agent, bodies streamed in both directions.
 *
 * Usage: node --import tsx bench/lib/pass-through-proxy-main.ts <upstream base URL>
 * Prints `{"url": "..."}` on stdout once listening on 127.0.0.1; exits on SIGTERM/SIGINT.
 */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.argv[2] ?? '');
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const server = createServer((req, res) => {
  const out = request({
    host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, agent,
    headers: { ...req.headers, host: upstream.host },
  }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
const stop = (): void => { server.close(() => process.exit(0)); server.closeAllConnections(); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
