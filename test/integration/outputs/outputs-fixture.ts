/**
 * Shared setup of the restream output tests: a real redis-server, the gateway as a real process
 * (embedded transcoder, admin token, event webhook to a local receiver), the real clip published
 * over RTMP in real time, and the outputs API (`/api/streams/{manifestID}/outputs`, openapi/control.yaml)
 * called over HTTP.
 */
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments, type RunningGateway } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { startEventReceiver, type EventReceiver } from '../../helpers/push-client.ts';
import { seqOf } from '../../helpers/hls.ts';

export const TOKEN = 'outputs-admin-token-4c1e';
/** Seconds of the clip (2 s GOP) the publisher sends in real time: longer than any test file needs. */
export const PUBLISH_SECONDS = 60;

/** An output as the API shows it (contract of openapi/control.yaml). */
export interface ListedOutput {
  id: string;
  url: string;
  rendition: string;
  state: 'connecting' | 'live' | 'retrying' | 'stopped';
  reason?: string;
  bytesSent: number;
  uptimeSeconds: number;
  createdAt: string;
}

/**
 * fetch, retried once when the connection was reset before any answer: a kept-alive connection
 * the gateway closed after its 5 s keep-alive timeout while the test was busy elsewhere (the
 * request never reached the route, so the retry is the first one it sees).
 */
export async function fetchRetryingReset(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw err;
    return fetch(url, init);
  }
}

export interface OutputsFixture {
  readonly redis: TestRedis;
  readonly gateway: RunningGateway;
  readonly events: EventReceiver;
  readonly manifestID: string;
  /** Every response body the outputs API gave, as text (for the redaction checks). */
  readonly bodies: string[];
  /** Calls the gateway's API with the admin token (or `token`); records the body in `bodies`. */
  api(path: string, init?: RequestInit, token?: string): Promise<{ status: number; text: string; json: unknown }>;
  /** `POST /api/streams/<manifestID>/outputs` with a JSON body. */
  addOutput(body: unknown, manifestID?: string): Promise<{ status: number; text: string; json: unknown }>;
  /** `GET /api/streams/<manifestID>/outputs` → the outputs (asserts 200). */
  listOutputs(): Promise<ListedOutput[]>;
  /** Polls the list every 250 ms until output `id` satisfies `check`; returns it. */
  waitForOutput(id: string, check: (o: ListedOutput) => boolean, timeoutMs: number, what: string): Promise<ListedOutput>;
  /** The highest seq the stream's playlist of `rendition` (default `source`) lists now (−1 when none). */
  lastSeq(rendition?: string): Promise<number>;
  /** Whether the publisher is still sending. */
  publishing(): boolean;
  close(): Promise<void>;
}

/**
 * Starts Redis, the gateway with `env` (plus the admin token and the event webhook) and the
 * publisher of the clip to `live/<manifestID>`, and waits until the stream lists 2 source segments.
 */
export async function startOutputsFixture(manifestID: string, env: Record<string, string> = {}): Promise<OutputsFixture> {
  const redis = await startRedis();
  const events = await startEventReceiver();
  let gateway: RunningGateway | undefined;
  let publisher: ReturnType<typeof publish> | undefined;
  let done = false;
  const close = async (): Promise<void> => {
    publisher?.child.kill('SIGKILL');
    await gateway?.stop();
    await events.close();
    await redis.stop();
  };
  try {
    gateway = await startGateway(redis.url, {
      MEDIAGATE_HTTP_ADMIN_TOKEN: TOKEN,
      MEDIAGATE_LADDER: 'P144p30fps16x9',
      MEDIAGATE_EVENTS_WEBHOOK_URLS: JSON.stringify([events.url]),
      ...env,
    });
    const clip = await clipWith2sGop(PUBLISH_SECONDS);
    publisher = publish(clip, gateway.rtmpUrl(manifestID));
    void publisher.exited.then(() => { done = true; }, () => { done = true; });
    await waitForListedSegments(`${gateway.httpUrl}/stream/${manifestID}/source.m3u8`, 2, gateway.proc, 40_000);
  } catch (err) {
    await close();
    throw err;
  }
  const gw = gateway;
  const bodies: string[] = [];
  const api = async (path: string, init: RequestInit = {}, token = TOKEN): Promise<{ status: number; text: string; json: unknown }> => {
    const headers: Record<string, string> = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(init.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(init.headers as Record<string, string> ?? {}) };
    const res = await fetchRetryingReset(`${gw.httpUrl}${path}`, { ...init, headers });
    const text = await res.text();
    bodies.push(text);
    let json: unknown;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, text, json };
  };
  const listOutputs = async (): Promise<ListedOutput[]> => {
    const r = await api(`/api/streams/${manifestID}/outputs`);
    assert.equal(r.status, 200, `GET outputs: ${r.text}`);
    return (r.json as { outputs: ListedOutput[] }).outputs;
  };
  return {
    redis, gateway: gw, events, manifestID, bodies, api, listOutputs, close,
    addOutput: (body, id = manifestID) => api(`/api/streams/${id}/outputs`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) }),
    waitForOutput: async (id, check, timeoutMs, what) => {
      const deadline = Date.now() + timeoutMs;
      let last: ListedOutput | undefined;
      for (;;) {
        last = (await listOutputs()).find((o) => o.id === id);
        if (last && check(last)) return last;
        if (Date.now() > deadline) throw new Error(`${what}: output ${id} is ${JSON.stringify(last)} after ${timeoutMs} ms; gateway log tail:\n${gw.proc.lines.slice(-15).join('\n')}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    lastSeq: async (rendition = 'source') => {
      const text = await (await fetchRetryingReset(`${gw.httpUrl}/stream/${manifestID}/${rendition}.m3u8`)).text();
      const seqs = text.split('\n').filter((l) => l.endsWith('.ts')).map(seqOf);
      return seqs.length === 0 ? -1 : Math.max(...seqs);
    },
    publishing: () => !done,
  };
}

/** Asserts a 4xx body has the error shape `{"detail": {"msg", "code"}}` and returns it. */
export function errorDetail(r: { status: number; text: string; json: unknown }): { msg: string; code: string } {
  const detail = (r.json as { detail?: { msg?: unknown; code?: unknown } } | undefined)?.detail;
  assert.ok(detail && typeof detail.msg === 'string' && typeof detail.code === 'string', `error shape {"detail":{"msg","code"}}: ${r.text}`);
  return detail as { msg: string; code: string };
}
