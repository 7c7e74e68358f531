/**
 * The cluster view (`GET /api/cluster`, cluster/cluster-routes.ts) and the backlog gauges on
 * real processes: a redis-server, two gateway processes (no embedded transcoder) and a
 * transcoder process on 127.0.0.1, a real RTMP publish of the clip and a fake AI worker.
 * Heartbeats every 300 ms, so a member's record lives 900 ms.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGatewayPair, spawnMediagate, waitForHttp, publish, crashProcessTree, type GatewayPair, type MediagateProcess } from '../../helpers/gateway-process.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { CLIP } from '../../helpers/media.ts';
import { freePort } from '../../helpers/ports.ts';

const TOKEN = 'cluster-admin-token';
const HEARTBEAT_MS = 300;
let pair: GatewayPair;
let gatewayA: MediagateProcess;
let gatewayB: MediagateProcess;
let aiWorker: FakeAiWorker;
let publisher: ReturnType<typeof publish> | undefined;

interface ClusterView {
  generatedAt: string;
  gateways: { id: string; address: string; rtmpAddress?: string; version: string; startedAt: string; uptimeS: number; heartbeatAgeMs: number; streams: number }[];
  transcoders: { id: string; address?: string; embedded: boolean; slots: number; inFlight: number; liveSessions: number; jobs: number; load: number; uptimeS: number }[];
  aiWorkers: { id: string; url: string; pipelines: { pipeline: string; model_id: string; capacity: number }[]; capacity: number; inFlight: number; healthy: boolean; status: string }[];
}

async function cluster(baseUrl: string): Promise<ClusterView> {
  const res = await fetch(`${baseUrl}/api/cluster`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as ClusterView;
}

/** Polls the cluster view every 100 ms until `check` holds; the last view in the error otherwise. */
async function clusterUntil(baseUrl: string, check: (v: ClusterView) => boolean, what: string, timeoutMs = 30_000): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  let view = await cluster(baseUrl);
  while (!check(view)) {
    if (Date.now() > deadline) throw new Error(`${what}; last view: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 100));
    view = await cluster(baseUrl);
  }
  return view;
}

async function gauge(baseUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** The member ID a process logged when it joined the cluster. */
function memberIdOf(proc: MediagateProcess): string {
  const line = proc.lines.find((l) => l.includes('"msg":"joined the cluster membership"'));
  assert.ok(line, `no join line:\n${proc.lines.slice(-10).join('\n')}`);
  return (JSON.parse(line) as { memberId: string }).memberId;
}

before(async () => {
  aiWorker = await startFakeAiWorker({ pipelines: ['text-to-image'] });
  pair = await startGatewayPair({
    MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_LADDER: 'P240p30fps16x9', MEDIAGATE_HTTP_ADMIN_TOKEN: TOKEN,
    MEDIAGATE_CLUSTER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
  });
  gatewayA = spawnMediagate('gateway', {
    ...pair.first.env, MEDIAGATE_AI_WORKERS: JSON.stringify([{ url: aiWorker.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'fake/model', capacity: 3 }] }]),
  });
  gatewayB = spawnMediagate('gateway', pair.second.env);
  pair.processes.push(gatewayA, gatewayB);
  await Promise.all([waitForHttp(`${pair.first.httpUrl}/healthz`, gatewayA), waitForHttp(`${pair.second.httpUrl}/healthz`, gatewayB)]);
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await publisher?.exited.catch(() => undefined);
  await pair?.close();
  await aiWorker?.close();
});

test('GET /api/cluster is refused without the admin token, and with a wrong one', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
    const res = await fetch(`${pair.first.httpUrl}/api/cluster`, { headers });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { detail: { code: string; msg: string } };
    assert.equal(body.detail.code, 'UNAUTHORIZED');
  }
});

test('the view lists both gateways, the transcoder and the AI worker, with figures that follow an RTMP stream; killed members drop out by expiry', { timeout: 85_000 }, async () => {
  const idA = memberIdOf(gatewayA);
  const idB = memberIdOf(gatewayB);
  assert.match(idA, /^[A-Za-z0-9_.-]+-\d+-[0-9a-f]{4}$/);
  let view = await clusterUntil(pair.second.httpUrl, (v) => v.gateways.length === 2, 'both gateways listed');
  assert.deepEqual(view.gateways.map((g) => g.id).sort(), [idA, idB].sort());
  const a = view.gateways.find((g) => g.id === idA)!;
  assert.equal(a.address, pair.first.httpUrl);
  assert.equal(a.rtmpAddress, `rtmp://127.0.0.1:${pair.first.rtmpPort}`);
  assert.equal(a.streams, 0);
  assert.match(a.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(view.transcoders, [], 'no transcoder yet (none embedded)');
  // The AI worker registered with gateway A, as its registry lists it.
  view = await clusterUntil(pair.first.httpUrl, (v) => v.aiWorkers.some((w) => w.healthy), 'the AI worker healthy');
  assert.equal(view.aiWorkers.length, 1);
  assert.equal(view.aiWorkers[0]!.url, aiWorker.url);
  assert.equal(view.aiWorkers[0]!.capacity, 3);
  assert.equal(view.aiWorkers[0]!.inFlight, 0);
  assert.deepEqual(view.aiWorkers[0]!.pipelines.map((p) => [p.pipeline, p.model_id]), [['text-to-image', 'fake/model']]);

  // A publish on gateway A with no transcoder running: its live session waits, deployment-wide.
  publisher = publish(CLIP, `rtmp://127.0.0.1:${pair.first.rtmpPort}/live/clusterview`);
  view = await clusterUntil(pair.second.httpUrl, (v) => v.gateways.find((g) => g.id === idA)?.streams === 1, 'gateway A holds one stream');
  assert.equal(view.gateways.find((g) => g.id === idB)!.streams, 0);
  for (const url of [pair.first.httpUrl, pair.second.httpUrl]) {
    const deadline = Date.now() + 15_000;
    while ((await gauge(url, 'mediagate_live_sessions_waiting')) !== 1) {
      if (Date.now() > deadline) throw new Error(`live session not waiting on ${url}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // A transcoder starts: it joins, takes the session, and the gauge goes back to 0.
  const metricsPort = await freePort();
  const transcoder = spawnMediagate('transcoder', { ...pair.first.env, MEDIAGATE_TRANSCODE_METRICS_PORT: String(metricsPort), MEDIAGATE_TRANSCODE_CONCURRENCY: '2' });
  pair.processes.push(transcoder);
  view = await clusterUntil(pair.first.httpUrl, (v) => v.transcoders.length === 1 && v.transcoders[0]!.liveSessions === 1, 'the transcoder owns the live session', 45_000);
  const t = view.transcoders[0]!;
  assert.equal(t.id, memberIdOf(transcoder));
  assert.equal(t.address, `http://127.0.0.1:${metricsPort}`);
  assert.equal(t.embedded, false);
  assert.equal(t.slots, 2);
  assert.equal(t.inFlight, t.liveSessions + t.jobs);
  assert.ok(t.load >= 0);
  assert.equal(await gauge(pair.first.httpUrl, 'mediagate_live_sessions_waiting'), 0);

  // SIGKILL gateway B: it drops out of the view within its record's lifetime (3 heartbeats).
  await crashProcessTree(gatewayB);
  view = await clusterUntil(pair.first.httpUrl, (v) => !v.gateways.some((g) => g.id === idB), 'gateway B dropped out', 3 * HEARTBEAT_MS + 5000);
  assert.deepEqual(view.gateways.map((g) => g.id), [idA]);
  assert.equal(view.gateways[0]!.streams, 1);

  // SIGKILL the transcoder: it drops out, and its live session waits for a transcoder again.
  await crashProcessTree(transcoder);
  await clusterUntil(pair.first.httpUrl, (v) => v.transcoders.length === 0, 'the transcoder dropped out', 3 * HEARTBEAT_MS + 5000);
  const deadline = Date.now() + 15_000;
  while ((await gauge(pair.first.httpUrl, 'mediagate_live_sessions_waiting')) !== 1) {
    if (Date.now() > deadline) throw new Error('the dead transcoder\'s live session is not waiting');
    await new Promise((r) => setTimeout(r, 100));
  }

  // The publisher stops: gateway A holds no stream.
  publisher.child.kill('SIGKILL');
  await publisher.exited;
  await clusterUntil(pair.first.httpUrl, (v) => v.gateways[0]?.streams === 0, 'gateway A holds no stream', 45_000);
});
