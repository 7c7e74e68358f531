/**
 * A TrickleServer (src/trickle/trickle-server.ts) alone on node:http in a process of its own,
 * for tests whose clients must not share the server's event loop (as a live worker's trickle
 * server is a process apart from the gateway publishing to it).
 *
 * Run as `node --import tsx test/helpers/trickle-server-process.ts '<options JSON>'` with
 * `{"maxSegmentBytes"?: number, "channels"?: string[]}`; binds 127.0.0.1 on a free port,
 * creates the channels, and prints one line `{"port": <n>}` once it listens. Stops on SIGTERM.
 * {@link startTrickleServerProcess} does all that from a test.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TrickleServer } from '../../src/trickle/index.ts';

export interface TrickleServerProcessOptions {
  /** The server's `maxSegmentBytes`; default its own (64 MiB). */
  readonly maxSegmentBytes?: number;
  /** Channels created at start. */
  readonly channels?: readonly string[];
}

export interface TrickleServerProcess {
  /** `http://127.0.0.1:<port>/ai/trickle` */
  readonly base: string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

const self = fileURLToPath(import.meta.url);

/** Starts the server in a child process and waits until it listens (30 s at most). */
export async function startTrickleServerProcess(options: TrickleServerProcessOptions = {}): Promise<TrickleServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', self, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let exited = false;
  const exit = once(child, 'exit').then(() => { exited = true; });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the trickle server process did not start within 30 s')), 30_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exit.then(() => { clearTimeout(timer); reject(new Error('the trickle server process exited before it listened')); });
  });
  return {
    base: `http://127.0.0.1:${port}/ai/trickle`,
    alive: () => !exited,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(kill);
    },
  };
}

async function serve(options: TrickleServerProcessOptions): Promise<void> {
  const trickle = new TrickleServer(options.maxSegmentBytes !== undefined ? { maxSegmentBytes: options.maxSegmentBytes } : {});
  for (const name of options.channels ?? []) trickle.createChannel(name);
  const http = createServer((req, res) => {
    if (!trickle.handle(req, res)) res.writeHead(404).end('not trickle');
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  process.stdout.write(`${JSON.stringify({ port: (http.address() as AddressInfo).port })}\n`);
  process.once('SIGTERM', () => {
    trickle.close();
    http.closeAllConnections();
    http.close(() => process.exit(0));
  });
}

if (process.argv[1] === self) await serve(JSON.parse(process.argv[2] ?? '{}') as TrickleServerProcessOptions);
