import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { localAddressTowards, reachableWorkerUrl } from '../../../src/ai-worker/reach-address.ts';

/** A non-loopback IPv4 address of this machine (CI machines have one); undefined on a machine with only loopback. */
const ownAddress = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

test('the local address towards a gateway: 127.0.0.1 for a gateway on loopback, the host\'s own address for one reached on it', async () => {
  assert.equal(await localAddressTowards('http://127.0.0.1:9935'), '127.0.0.1');
  assert.ok(ownAddress, 'this machine has a non-loopback IPv4 address');
  assert.equal(await localAddressTowards(`http://${ownAddress}:9935`), ownAddress);
  assert.equal(await localAddressTowards('not a url'), undefined);
});

test('a worker bound to 0.0.0.0 registers the address its host reaches the gateway from, not 127.0.0.1; a set publicUrl or a specific bind is kept', async () => {
  const derived = 'http://127.0.0.1:8000';
  assert.equal(await reachableWorkerUrl({ derived, host: '0.0.0.0', publicUrl: '', gatewayUrl: `http://${ownAddress!}:9935`, port: 8000 }), `http://${ownAddress!}:8000`);
  assert.equal(await reachableWorkerUrl({ derived, host: '0.0.0.0', publicUrl: '', gatewayUrl: 'http://127.0.0.1:9935', port: 8000 }), derived);
  assert.equal(await reachableWorkerUrl({ derived: 'http://gpu-1:8000', host: '0.0.0.0', publicUrl: 'http://gpu-1:8000', gatewayUrl: `http://${ownAddress!}:9935`, port: 8000 }), 'http://gpu-1:8000');
  assert.equal(await reachableWorkerUrl({ derived: 'http://10.0.0.9:8000', host: '10.0.0.9', publicUrl: '', gatewayUrl: `http://${ownAddress!}:9935`, port: 8000 }), 'http://10.0.0.9:8000');
  assert.equal(await reachableWorkerUrl({ derived, host: '0.0.0.0', publicUrl: '', gatewayUrl: '', port: 8000 }), derived);
});
