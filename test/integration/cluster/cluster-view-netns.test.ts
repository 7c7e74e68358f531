/**
 * The cluster view across "hosts" (network namespaces, test/helpers/netns-cluster.ts): each
 * gateway and transcoder binds only its own namespace's address and publishes its heartbeat
 * to the Redis on the `store` host; `GET /api/cluster` on gateway B lists every member at
 * the address it is reached on, follows an RTMP stream published to gateway A, and drops a
 * transcoder whose link is cut and a SIGKILLed gateway by expiry alone; the transcoder
 * rejoins when its link returns. Heartbeats every 500 ms (a record lives 1.5 s).
 *
 * Needs root and iproute2; under CI=true their absence fails the file, elsewhere it is skipped
 * with the reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { netnsUnavailable, leftovers } from '../../helpers/netns.ts';
import { startNetnsCluster, GATEWAY_RTMP_PORT, TRANSCODER_METRICS_PORT, type NetnsCluster, type ClusterGateway } from '../../helpers/netns-cluster.ts';
import { crashProcessTree, publish } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';

const HEARTBEAT_MS = 500;
/** A dead member's record lives 3 heartbeats; polling and a loaded machine add slack. */
const DROP_OUT_BOUND_MS = 3 * HEARTBEAT_MS + 4000;

const unavailable = netnsUnavailable();
if (unavailable && process.env['CI'] === 'true') throw new Error(`CI=true and the namespace cluster test cannot run: ${unavailable}`);
const skip = unavailable ? `needs network namespaces: ${unavailable}` : false;

let cluster: NetnsCluster;

interface ClusterView {
  gateways: { id: string; address: string; rtmpAddress?: string; streams: number }[];
  transcoders: { id: string; address?: string; embedded: boolean; slots: number; liveSessions: number }[];
}

before(async () => {
  if (skip) return;
  cluster = await startNetnsCluster({ ladder: ['P144p30fps16x9'], aiWorker: false, env: { MEDIAGATE_CLUSTER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) } });
});

after(async () => {
  if (skip || !cluster) return;
  const runId = cluster.network.runId;
  await cluster.close();
  assert.deepEqual(leftovers(runId), [], 'no namespace or link of this run is left');
});

/** Polls gateway `gw`'s view every 100 ms until `check` holds; the last view in the error otherwise. */
async function viewUntil(gw: ClusterGateway, check: (v: ClusterView) => boolean, what: string, timeoutMs: number): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = (await cluster.api(gw, 'GET', '/api/cluster')) as ClusterView;
    if (check(view)) return view;
    if (Date.now() > deadline) throw new Error(`${what}; last view: ${JSON.stringify(view)}\n${cluster.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('gateway B lists every host\'s gateway and transcoder at its own address, follows a stream on A, drops a cut-off transcoder and a killed gateway, and takes the transcoder back', { skip, timeout: 150_000 }, async () => {
  const [a, b] = cluster.gateways;
  const [tcA, tcB] = cluster.transcoders;
  const transcoderUrl = (t: typeof tcA): string => `http://${t.host.address}:${TRANSCODER_METRICS_PORT}`;
  let view = await viewUntil(b, (v) => v.gateways.length === 2 && v.transcoders.length === 2, 'two gateways and two transcoders', 30_000);
  assert.deepEqual(view.gateways.map((g) => [g.address, g.rtmpAddress]).sort(), [
    [a.httpUrl, `rtmp://${a.host.address}:${GATEWAY_RTMP_PORT}`], [b.httpUrl, `rtmp://${b.host.address}:${GATEWAY_RTMP_PORT}`],
  ].sort());
  assert.deepEqual(view.transcoders.map((t) => t.address).sort(), [transcoderUrl(tcA), transcoderUrl(tcB)].sort());
  assert.ok(view.transcoders.every((t) => !t.embedded && t.slots === 1));
  const gatewayA = view.gateways.find((g) => g.address === a.httpUrl)!;

  // A stream published to gateway A: B's view shows it on A, and on the transcoder that took it.
  const account = ((await cluster.api(a, 'POST', '/api/accounts', { name: 'view', credits: '1000000000000' })) as { id: string }).id;
  const streamKey = ((await cluster.api(a, 'POST', `/api/accounts/${account}/stream-keys`, { manifestID: 'nsview' })) as { streamKey: string }).streamKey;
  const publisher = publish(CLIP, `${a.rtmpBase}/${streamKey}`);
  try {
    view = await viewUntil(b, (v) => v.gateways.find((g) => g.id === gatewayA.id)?.streams === 1 && v.transcoders.some((t) => t.liveSessions === 1),
      'the stream on A and its live session on a transcoder', 60_000);
    assert.equal(view.gateways.find((g) => g.id !== gatewayA.id)!.streams, 0);
  } finally {
    publisher.child.kill('SIGKILL');
    await publisher.exited.catch(() => undefined);
  }

  // Transcoder A's link cut: its record expires; B lists only transcoder B. Back on the network, it rejoins under its ID.
  const idA = view.transcoders.find((t) => t.address === transcoderUrl(tcA))!.id;
  cluster.network.cutLink(tcA.host.name);
  try {
    view = await viewUntil(b, (v) => !v.transcoders.some((t) => t.id === idA), 'the cut-off transcoder dropped out', DROP_OUT_BOUND_MS);
    assert.deepEqual(view.transcoders.map((t) => t.address), [transcoderUrl(tcB)]);
  } finally {
    cluster.network.restoreLink(tcA.host.name);
  }
  await viewUntil(b, (v) => v.transcoders.some((t) => t.id === idA), 'the transcoder rejoined after its link returned', 30_000);

  // Gateway A SIGKILLed: gone from B's view by expiry.
  await crashProcessTree(a.proc);
  view = await viewUntil(b, (v) => !v.gateways.some((g) => g.id === gatewayA.id), 'the killed gateway dropped out', DROP_OUT_BOUND_MS);
  assert.deepEqual(view.gateways.map((g) => g.address), [b.httpUrl]);
});
