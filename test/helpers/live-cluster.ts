/**
 * The live video-to-video stand: a real redis-server, a gateway process (cmd/gateway.ts,
 * embedded transcoder) and reference AI workers as processes (cmd/ai-worker.ts) that register
 * their live pipeline with it; the counter clip published over RTMP; the Livepeer live routes
 * (start, update, status); the `<stream>-out` stream watched segment by segment, each segment
 * decoded and its frames matched to the input frames by their burned-in counter
 * (frame-counter.ts). Used by test/integration/ai-live/ and bench/live-v2v.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { startRedis, type TestRedis } from './redis-server.ts';
import { freePort } from './ports.ts';
import { startGateway, spawnMediagate, waitForHttp, type MediagateProcess, type RunningGateway } from './gateway-process.ts';
import { waitForListedWorker } from './ai-cluster.ts';
import { fetchMedia, fetchText, seqOf } from './hls.ts';
import { summarizeFrames, type FrameSummary } from './frame-counter.ts';

export const LIVE_PIPELINE = 'live-video-to-video';
export const LIVE_MODEL = 'mediagate/cpu-filter';
export const ADMIN_TOKEN = 'live-admin-token-for-tests';

export interface LiveWorker {
  readonly url: string;
  readonly proc: MediagateProcess;
}

export interface LiveCluster {
  readonly redis: TestRedis;
  readonly gateway: RunningGateway;
  readonly workers: LiveWorker[];
  /** Starts one more worker and waits until the gateway lists its live pipeline. */
  addWorker(): Promise<LiveWorker>;
  /** Stops every process (idempotent). */
  close(): Promise<void>;
}

export interface LiveClusterOptions {
  /** Workers started before the cluster is returned; default 1. */
  workers?: number;
  /** Extra gateway settings (MEDIAGATE_…). */
  gatewayEnv?: Record<string, string>;
  /** Extra worker settings (MEDIAGATE_AI_WORKER_…). */
  workerEnv?: Record<string, string>;
}

/**
 * A gateway with a one-rendition ladder (P144p30fps16x9: the two cores are shared by the
 * input's and the output's transcodes and the workers) and `workers` live workers registered.
 * @throws when a process does not come up (its last log lines in the message)
 */
export async function startLiveCluster(options: LiveClusterOptions = {}): Promise<LiveCluster> {
  const redis = await startRedis();
  const workers: LiveWorker[] = [];
  let gateway: RunningGateway | undefined;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const w of workers) await w.proc.stop();
    await gateway?.stop();
    await redis.stop();
  };
  try {
    gateway = await startGateway(redis.url, {
      MEDIAGATE_HTTP_ADMIN_TOKEN: ADMIN_TOKEN,
      MEDIAGATE_LADDER: 'P144p30fps16x9',
      MEDIAGATE_AI_HEALTH_INTERVAL_MS: '500',
      MEDIAGATE_LOG_FORMAT: 'json',
      ...options.gatewayEnv,
    });
    const g = gateway;
    const addWorker = async (): Promise<LiveWorker> => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const proc = spawnMediagate('ai-worker', {
        MEDIAGATE_AI_WORKER_PORT: String(port),
        MEDIAGATE_AI_WORKER_GATEWAY_URL: g.httpUrl,
        MEDIAGATE_AI_WORKER_GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN,
        MEDIAGATE_AI_WORKER_REGISTER_INTERVAL_MS: '500',
        MEDIAGATE_AI_WORKER_LOG_FORMAT: 'json',
        // The live pipeline only: no upscale model loaded.
        MEDIAGATE_AI_WORKER_MODELS: '',
        ...options.workerEnv,
      });
      const worker = { url, proc };
      workers.push(worker);
      await waitForHttp(`${url}/health`, proc, 60_000);
      await waitForListedWorker(g.httpUrl, url, (w) => w !== undefined && w.healthy && w.pipelines.some((p) => p.pipeline === LIVE_PIPELINE), 30_000, ADMIN_TOKEN);
      return worker;
    };
    for (let i = 0; i < (options.workers ?? 1); i++) await addWorker();
    return { redis, gateway: g, workers, addWorker, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function adminHeaders(json = true): Record<string, string> {
  return { authorization: `Bearer ${ADMIN_TOKEN}`, ...(json ? { 'content-type': 'application/json' } : {}) };
}

/** An account with `credits` and an API key of it (payments API). */
export async function accountWithApiKey(httpUrl: string, name: string, credits: bigint): Promise<{ accountID: string; apiKey: string }> {
  const res = await fetch(`${httpUrl}/api/accounts`, { method: 'POST', headers: adminHeaders(), body: JSON.stringify({ name, credits: credits.toString() }) });
  const account = await res.json() as { id: string };
  if (res.status !== 201) throw new Error(`create account: ${res.status} ${JSON.stringify(account)}`);
  const keyRes = await fetch(`${httpUrl}/api/accounts/${account.id}/api-keys`, { method: 'POST', headers: adminHeaders(), body: JSON.stringify({ label: 'live' }) });
  const key = await keyRes.json() as { key: string };
  if (keyRes.status !== 201) throw new Error(`create API key: ${keyRes.status} ${JSON.stringify(key)}`);
  return { accountID: account.id, apiKey: key.key };
}

/** One ledger entry as `GET /api/accounts/<id>/ledger` lists it. */
export interface ListedEntry { id: string; kind: string; amount: string; units: string; createdAt: string; pipeline?: string; modelID?: string; shortfall?: string; requestedAmount?: string }

/** Every entry of an account, newest first. */
export async function ledgerEntries(httpUrl: string, accountID: string): Promise<ListedEntry[]> {
  const res = await fetch(`${httpUrl}/api/accounts/${accountID}/ledger?limit=1000`, { headers: adminHeaders(false) });
  const body = await res.json() as { entries: ListedEntry[] };
  if (res.status !== 200) throw new Error(`ledger: ${res.status} ${JSON.stringify(body)}`);
  return body.entries;
}

export async function accountBalance(httpUrl: string, accountID: string): Promise<bigint> {
  const res = await fetch(`${httpUrl}/api/accounts/${accountID}`, { headers: adminHeaders(false) });
  const body = await res.json() as { balance: string };
  return BigInt(body.balance);
}

/**
 * Publishes `file` over RTMP in real time with stream copy, looped `loops` extra times
 * (`-stream_loop`).
 */
export function publishLoop(file: string, rtmpUrl: string, loops = 0): { child: ChildProcess; exited: Promise<number | null>; startedAtMs: number; stop(): void } {
  const startedAtMs = Date.now();
  const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-stream_loop', String(loops), '-i', file, '-c', 'copy', '-f', 'flv', rtmpUrl],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  const exited = new Promise<number | null>((res, rej) => {
    child.once('error', (err) => rej(new Error(`cannot run ffmpeg (${err.message})`)));
    child.once('exit', (code) => res(code));
  });
  return { child, exited, startedAtMs, stop: () => { if (child.exitCode === null) child.kill('SIGINT'); } };
}

const livePath = (httpUrl: string, stream: string, action: string): string => `${httpUrl}/live/video-to-video/${encodeURIComponent(stream)}/${action}`;

/** `POST /live/video-to-video/<stream>/start` with mediagate's JSON body (a stream already publishing). */
export async function startLive(httpUrl: string, stream: string, params: object, apiKey?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(livePath(httpUrl, stream, 'start'), {
    method: 'POST', headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({ model_id: LIVE_MODEL, params }),
  });
  return { status: res.status, text: await res.text() };
}

/** `POST /live/video-to-video/<stream>/update` with raw JSON params. */
export async function updateLive(httpUrl: string, stream: string, params: object): Promise<{ status: number; text: string }> {
  const res = await fetch(livePath(httpUrl, stream, 'update'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: res.status, text: await res.text() };
}

/** `GET /live/video-to-video/<stream>/status`: the status code and the JSON body. */
export async function liveStatus(httpUrl: string, stream: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetchText(livePath(httpUrl, stream, 'status'));
  let body: Record<string, unknown> = {};
  try { body = JSON.parse(res.text) as Record<string, unknown>; } catch { body = { text: res.text }; }
  return { status: res.status, body };
}

/** Polls `check` every 250 ms until it returns a value (not undefined). @throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, context: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${context()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One segment of the `-out` stream's source rendition as the watcher saw it. */
export interface SeenOutSegment {
  readonly seq: number;
  readonly uri: string;
  /** When a poll first found it listed, epoch ms. */
  readonly seenAtMs: number;
  /** Its frames, decoded (undefined until decoded, or when decoding failed). */
  frames?: FrameSummary[];
  decodeError?: string;
}

/**
 * Watches `/stream/<stream>/source.m3u8` every `intervalMs` and decodes each segment as it
 * appears (one at a time, in order), until `stop()`.
 */
export class OutputWatch {
  readonly segments: SeenOutSegment[] = [];
  readonly #httpUrl: string;
  readonly #stream: string;
  #stopped = false;
  readonly #loop: Promise<void>;
  readonly #decode: boolean;

  constructor(httpUrl: string, stream: string, options: { intervalMs?: number; decode?: boolean } = {}) {
    this.#httpUrl = httpUrl;
    this.#stream = stream;
    this.#decode = options.decode ?? true;
    this.#loop = this.#run(options.intervalMs ?? 100);
  }

  async #run(intervalMs: number): Promise<void> {
    const seen = new Set<number>();
    const queue: SeenOutSegment[] = [];
    let decoding: Promise<void> = Promise.resolve();
    while (!this.#stopped) {
      try {
        const media = await fetchMedia(`${this.#httpUrl}/stream/${this.#stream}/source.m3u8`);
        const now = Date.now();
        for (const s of media.segments) {
          const seq = seqOf(s.uri);
          if (seen.has(seq)) continue;
          seen.add(seq);
          const uri = new URL(s.uri, `${this.#httpUrl}/stream/${this.#stream}/source.m3u8`).href;
          const seg: SeenOutSegment = { seq, uri, seenAtMs: now };
          this.segments.push(seg);
          queue.push(seg);
        }
      } catch { /* not listed yet */ }
      if (this.#decode) {
        decoding = decoding.then(async () => {
          while (queue.length > 0) {
            const seg = queue.shift()!;
            try { seg.frames = await summarizeFrames(seg.uri); } catch (err) { seg.decodeError = (err as Error).message; }
          }
        });
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await decoding;
  }

  /** Segments decoded so far, in order. */
  decoded(): SeenOutSegment[] {
    return this.segments.filter((s) => s.frames !== undefined);
  }

  /** Stops polling and waits for the decodes in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}
