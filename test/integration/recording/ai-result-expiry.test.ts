/**
 * AI results expire: a real gateway (in process) on 127.0.0.1 with `ai.resultTtlS` of 2 s and
 * a fast retention sweep, a real redis-server, and a fake ai-runner worker. A result is served
 * until it is older than the TTL, then deleted from the store (404); a younger one stays.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { appForSuite } from '../../helpers/suite-setup.ts';

const gateway = appForSuite({
  rtmp: { enabled: false }, transcode: { embedded: false }, redis: { keyPrefix: 'aiexpiry' },
  ai: { resultTtlS: 2, healthIntervalMs: 60_000 },
  retention: { sweepIntervalMs: 200 },
});
let base: string;
let worker: FakeAiWorker;

before(async () => {
  await gateway.ready;
  base = gateway.httpUrl;
  worker = await startFakeAiWorker();
  const res = await fetch(`${base}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: worker.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'expiry/model', warm: true, capacity: 2 }] }),
  });
  assert.equal(res.status, 201, await res.text());
});

after(async () => {
  await worker?.close();
});

async function generate(): Promise<string> {
  const res = await fetch(`${base}/text-to-image`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model_id: 'expiry/model', width: 64, height: 64 }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { images: { url: string }[] }).images[0]!.url;
}

test('an AI result is served until ai.resultTtlS has passed, then deleted; a younger one is still served', { timeout: 30_000 }, async () => {
  const older = await generate();
  const createdMs = Date.now();
  assert.equal((await fetch(older)).status, 200);
  await new Promise((r) => setTimeout(r, 1500));
  const younger = await generate();
  assert.equal((await fetch(older)).status, 200, 'still served before its TTL');

  let status = 200;
  while (status === 200 && Date.now() - createdMs < 15_000) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await fetch(older)).status;
  }
  const expiredAfterMs = Date.now() - createdMs;
  assert.equal(status, 404, 'the older result expired');
  assert.ok(expiredAfterMs >= 2000, `not before its TTL (${expiredAfterMs} ms)`);
  assert.equal((await fetch(younger)).status, 200, 'the younger result is still served');

  const requestDir = join(gateway.dataDir, 'objects', '.results', new URL(older).pathname.split('/')[2]!);
  assert.ok(!existsSync(requestDir) || readdirSync(requestDir).length === 0, 'its file is gone from the store');
});
