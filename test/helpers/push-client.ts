/**
 * HTTP push from tests, as Livepeer's clients push: the clip cut into MPEG-TS segments of
 * 2 s, each POSTed to `/live/<name>/<seq>.ts` of a gateway's base URL (which gateway is the
 * caller's choice: a load balancer stand-in), plus a receiver of the gateways' event webhooks.
 * Base URLs only, so the same helpers serve loopback ports and network-namespace addresses.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clipWith2sGop } from './media.ts';

const run = promisify(execFile);

/**
 * The first `seconds` of the clip (2 s GOP) cut into MPEG-TS segments of 2 s in `dir`, in seq order.
 * @returns each segment's bytes, index = seq
 */
export async function cutPushSegments(seconds: number, dir: string): Promise<Buffer[]> {
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(seconds), '-c', 'copy', '-f', 'segment', '-segment_time', '2',
    '-segment_format', 'mpegts', join(dir, 'push-%d.ts')]);
  return readdirSync(dir).filter((f) => /^push-\d+\.ts$/.test(f)).sort((a, b) => parseInt(a.slice(5)) - parseInt(b.slice(5))).map((f) => readFileSync(join(dir, f)));
}

/** The answer to one push: status, `Mediagate-Replayed`, and the body as text (empty on success without multipart). */
export interface PushAnswer {
  readonly status: number;
  readonly replayed: boolean;
  readonly body: string;
}

/**
 * POSTs one segment to `<baseUrl>/live/<name>/<seq>.ts`. A connection reset before any answer
 * (a kept-alive connection the gateway closed after its 5 s keep-alive timeout while the
 * pusher was busy with the other gateway) is retried once, as a pusher would: a push is
 * idempotent, so a retry of one that did arrive is answered from its first outcome.
 */
export async function pushSegment(baseUrl: string, name: string, seq: number, body: Buffer, headers: Record<string, string> = {}): Promise<PushAnswer> {
  const url = `${baseUrl}/live/${name}/${seq}.ts`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body, headers });
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw err;
    res = await fetch(url, { method: 'POST', body, headers });
  }
  return { status: res.status, replayed: res.headers.get('mediagate-replayed') === '1', body: await res.text() };
}

/** One event webhook delivery as received. */
export interface ReceivedEvent {
  readonly type: string;
  readonly data: { manifestID?: string; session?: string; seq?: number; reason?: string; segments?: number };
}

/** An event webhook receiver on 127.0.0.1 (or `host`): every delivery, parsed. */
export interface EventReceiver {
  readonly url: string;
  readonly events: ReceivedEvent[];
  close(): Promise<void>;
}

/** Starts an event webhook receiver answering 200 to every delivery. */
export async function startEventReceiver(host = '127.0.0.1'): Promise<EventReceiver> {
  const events: ReceivedEvent[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      try { events.push(JSON.parse(body) as ReceivedEvent); } catch { /* not an event */ }
      res.end('ok');
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, host, () => resolve((server.address() as { port: number }).port)));
  return {
    url: `http://${host}:${port}/hook`, events,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
