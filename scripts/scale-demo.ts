/**
 * `make scale-demo`: a mediagate deployment over network namespaces standing in for hosts
 * (test/helpers/netns-cluster.ts: Redis + S3 on one, two gateways, two transcoders, one AI
 * worker), the same harness test/integration/cluster/ runs. Prints the URLs to publish to and
 * play from, then waits for Ctrl-C (or SIGTERM) and tears everything down: processes,
 * namespaces, bridge, data. Needs root.
 *
 * Flags: `--no-ai` (no AI worker).
 */
import { parseArgs } from 'node:util';
import { netnsUnavailable } from '../test/helpers/netns.ts';
import { startNetnsCluster } from '../test/helpers/netns-cluster.ts';

const { values } = parseArgs({ options: { 'no-ai': { type: 'boolean' } } });
const missing = netnsUnavailable();
if (missing) {
  process.stderr.write(`scale-demo: ${missing}\n`);
  process.exit(1);
}
const say = (line: string): void => { process.stdout.write(`${line}\n`); };
// Until the cluster is up, Ctrl-C exits at once: the network's exit hook kills what runs in the namespaces and removes them.
const early = (): void => process.exit(130);
process.once('SIGINT', early);
process.once('SIGTERM', early);
say('starting: namespaces, redis-server + s3rver, 2 gateways, 2 transcoders' + (values['no-ai'] ? '' : ', 1 AI worker'));
const cluster = await startNetnsCluster({ aiWorker: !values['no-ai'], signals: false, onProgress: (l) => say(`  ${l}`) });
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  say('\nstopping: processes, namespaces, bridge');
  await cluster.close();
  say('stopped; nothing left (ip netns list, ip link)');
  process.exit(0);
};
process.off('SIGINT', early);
process.off('SIGTERM', early);
process.on('SIGINT', () => { void stop(); });
process.on('SIGTERM', () => { void stop(); });

const [a, b] = cluster.gateways;
const account = await cluster.api(a, 'POST', '/api/accounts', { name: 'demo', credits: '1000000000000' }) as { id: string };
const key = await cluster.api(a, 'POST', `/api/accounts/${account.id}/stream-keys`, { manifestID: 'demo' }) as { streamKey: string };
const clusterView = await fetch(`${a.httpUrl}/api/cluster`, { headers: { authorization: `Bearer ${cluster.adminToken}` } }).then((r) => r.status, () => 0);
say(`
mediagate over network namespaces (run ${cluster.network.runId}); this shell is ${cluster.network.clientAddress} on bridge ${cluster.network.bridge}

  publish (gateway A): ffmpeg -re -i test/fixtures/big_buck_bunny_360p24.mp4 -c copy -f flv ${a.rtmpBase}/${key.streamKey}
  play on gateway A:   ${a.httpUrl}/stream/demo.m3u8
  play on gateway B:   ${b.httpUrl}/stream/demo.m3u8
  admin token:         ${cluster.adminToken}   (account ${account.id}; stream key above, charged to it)
  cluster view:        ${clusterView === 200 ? `${a.httpUrl}/api/cluster` : `(GET /api/cluster answers ${clusterView}: not on this build)`}
  metrics:             ${a.httpUrl}/metrics, ${cluster.transcoders.map((t) => `http://${t.host.address}:9936/metrics`).join(', ')}
  redis:               ${cluster.redis.url}    S3: ${cluster.s3.endpoint}/${cluster.s3.bucket}
  a shell on a host:   ip netns exec ${cluster.gateways[0].host.ns} bash

Ctrl-C stops everything.`);
await new Promise(() => undefined);
