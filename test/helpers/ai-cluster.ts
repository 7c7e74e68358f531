/**
 * Pieces for AI tests across gateways sharing one Redis (the cluster's worker pool,
 * src/ai/worker-pool-store.ts): register a worker through one gateway, wait until another
 * gateway sees it, post pipeline requests. Addresses are passed in, so the same pieces work
 * for gateways on 127.0.0.1 and in network namespaces.
 */
import type { FakeAiWorker } from './fake-ai-worker.ts';

export interface WorkerOffer {
  readonly pipeline: string;
  readonly model_id: string;
  readonly capacity?: number;
  readonly warm?: boolean;
}

/** The worker as `GET /api/workers` lists it. */
export interface ListedPoolWorker {
  id: string;
  url: string;
  healthy: boolean;
  status: string;
  pipelines: { pipeline: string; model_id: string; capacity: number; inFlight: number }[];
}

function adminHeaders(adminToken: string | undefined, json: boolean): Record<string, string> {
  return { ...(json ? { 'content-type': 'application/json' } : {}), ...(adminToken ? { authorization: `Bearer ${adminToken}` } : {}) };
}

/**
 * Registers `worker` (its URL, or any URL) through the gateway at `gatewayUrl`.
 * @throws Error with the gateway's answer unless 201
 */
export async function registerWorker(gatewayUrl: string, worker: Pick<FakeAiWorker, 'url'> | string, offers: readonly WorkerOffer[], adminToken?: string): Promise<ListedPoolWorker> {
  const url = typeof worker === 'string' ? worker : worker.url;
  const res = await fetch(`${gatewayUrl}/api/workers`, { method: 'POST', headers: adminHeaders(adminToken, true), body: JSON.stringify({ url, pipelines: offers }) });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`registering ${url} through ${gatewayUrl}: ${res.status} ${text}`);
  return JSON.parse(text) as ListedPoolWorker;
}

/** `GET /api/workers` of one gateway. */
export async function listWorkers(gatewayUrl: string, adminToken?: string): Promise<ListedPoolWorker[]> {
  const res = await fetch(`${gatewayUrl}/api/workers`, { headers: adminHeaders(adminToken, false) });
  return ((await res.json()) as { workers: ListedPoolWorker[] }).workers;
}

/**
 * Polls the gateway's worker list every 50 ms until `check` holds for the worker at `workerUrl`
 * (undefined when not listed).
 * @throws Error naming what was awaited after `timeoutMs`
 */
export async function waitForListedWorker(gatewayUrl: string, workerUrl: string, check: (w: ListedPoolWorker | undefined) => boolean, timeoutMs = 10_000, adminToken?: string): Promise<ListedPoolWorker | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const w = (await listWorkers(gatewayUrl, adminToken)).find((x) => x.url === workerUrl);
    if (check(w)) return w;
    if (Date.now() > deadline) throw new Error(`worker ${workerUrl} on ${gatewayUrl}: condition not met within ${timeoutMs} ms (listed: ${JSON.stringify(w)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POSTs a JSON pipeline request (e.g. text-to-image) to a gateway. */
export function postPipeline(gatewayUrl: string, pipeline: string, body: object, apiKey?: string): Promise<Response> {
  return fetch(`${gatewayUrl}/${pipeline}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) }, body: JSON.stringify(body) });
}
