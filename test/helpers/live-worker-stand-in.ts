/**
 * A minimal live video-to-video worker over real HTTP and real trickle channels (src/trickle/),
 * for the gateway's tests: `POST /live-video-to-video` creates the four channels and answers
 * their URLs (relative, as ai-runner may), every input segment is published unchanged as an
 * output segment (no transform: the gateway's plumbing is what is tested), control messages
 * are recorded, and a status event is published every `eventIntervalMs` with the last params.
 * When the gateway closes the input channel, the output channel is closed after the last output.
 * `GET /health` answers OK. The reference worker (src/ai-worker/) is the real one.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { TricklePublisher, TrickleServer, TrickleSubscriber } from '../../src/trickle/index.ts';

export interface LiveWorkerStandIn {
  readonly url: string;
  /** Start bodies received. */
  readonly starts: Record<string, unknown>[];
  /** Control messages received (raw text), keepalives included. */
  readonly controls: string[];
  /** Output segments published. */
  outputSegments(): number;
  /** Stops answering output (input is still read): the gateway's output watchdog should leave it. */
  muteOutput(): void;
  close(): Promise<void>;
}

async function readAll(body: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

export async function startLiveWorkerStandIn(options: { eventIntervalMs?: number } = {}): Promise<LiveWorkerStandIn> {
  const trickle = new TrickleServer();
  const starts: Record<string, unknown>[] = [];
  const controls: string[] = [];
  const loops: { close(): void }[] = [];
  const timers: NodeJS.Timeout[] = [];
  let outputs = 0;
  let muted = false;
  let base = '';
  const server: Server = createServer((req, res) => {
    if (trickle.handle(req, res)) return;
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"OK"}');
      return;
    }
    if (req.method === 'POST' && req.url === '/live-video-to-video') {
      void readAll(req).then((body) => {
        const start = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        starts.push(start);
        const mid = randomBytes(6).toString('hex');
        trickle.createChannel(mid);
        trickle.createChannel(`${mid}-out`);
        trickle.createChannel(`${mid}-control`, { mimeType: 'application/json' });
        trickle.createChannel(`${mid}-events`, { mimeType: 'application/json' });
        const channel = (name: string): string => `${base}/ai/trickle/${name}`;
        let lastParams: unknown = start['params'];
        const input = new TrickleSubscriber(channel(mid));
        const output = new TricklePublisher(channel(`${mid}-out`));
        // From seq 0, not the live edge: the channel is new, and the gateway may publish its first
        // control message (the cached update it replays to a new worker) before this subscriber's
        // first GET, which at the live edge would then wait for the next message instead.
        const control = new TrickleSubscriber(channel(`${mid}-control`), { start: 0 });
        const events = new TricklePublisher(channel(`${mid}-events`), { contentType: 'application/json' });
        loops.push(input, control, { close: () => { output.destroy(); events.destroy(); } });
        void (async () => {
          for await (const segment of input) {
            const bytes = await readAll(segment.body);
            if (muted) continue;
            await output.write(bytes).catch(() => undefined);
            outputs += 1;
          }
          // The gateway closed the input channel: what was sent is done, the output channel closes too.
          await output.close();
        })().catch(() => undefined);
        void (async () => {
          for await (const segment of control) {
            const text = (await readAll(segment.body)).toString('utf8');
            controls.push(text);
            if (!text.includes('"keep"')) lastParams = JSON.parse(text);
          }
        })().catch(() => undefined);
        const status = (): void => {
          const event = { type: 'status', pipeline: 'live-video-to-video', state: 'ONLINE', timestamp: Date.now(), inference_status: { fps: 24, last_params: lastParams, restart_count: 0 } };
          void events.write(JSON.stringify({ queue_event_type: 'ai_stream_status', event })).catch(() => undefined);
        };
        status();
        const timer = setInterval(status, options.eventIntervalMs ?? 1000);
        timers.push(timer);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          publish_url: `/ai/trickle/${mid}`, subscribe_url: `/ai/trickle/${mid}-out`,
          control_url: `/ai/trickle/${mid}-control`, events_url: `/ai/trickle/${mid}-events`, manifest_id: mid, request_id: start['gateway_request_id'],
        }));
      }, () => res.writeHead(400).end());
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base, starts, controls,
    outputSegments: () => outputs,
    muteOutput: () => { muted = true; },
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const l of loops) l.close();
      trickle.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
