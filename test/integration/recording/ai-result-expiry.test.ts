/**
 * AI results expire: a real gateway (in process) on 127.0.0.1 with `ai.resultTtlS` of 2 s and
 * a fast retention sweep, a real redis-server, and a fake ai-runner worker. A result is served
 * until it is older than the TTL, then deleted from the store (404); a younger one stays. Each
 * result is noted in the results' expiry index when stored, and forgotten by it once deleted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { appForSuite } from '../../helpers/suite-setup.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { createLogger } from '../../../src/log/logger.ts';

const gateway = appForSuite({
  rtmp: { enabled: false }, transcode: { embedded: false }, redis: { keyPrefix: 'aiexpiry' },
  ai: { resultTtlS: 2, healthIntervalMs: 60_000 },
  retention: { sweepIntervalMs: 200 },
});
let base: string;
let worker: FakeAiWorker;
let client: Redis;

before(async () => {
  await gateway.ready;
  base = gateway.httpUrl;
  client = createRedis({ url: gateway.redis.url, logger: createLogger({ level: 'silent' }), name: 'test' });
  worker = await startFakeAiWorker();
  const res = await fetch(`${base}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: worker.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'expiry/model', warm: true, capacity: 2 }] }),
  });
  assert.equal(res.status, 201, await res.text());
});

after(async () => {
  await worker?.close();
  client?.disconnect();
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
  const [, , olderID, olderFile] = new URL(older).pathname.split('/');
  const olderKey = `${olderID}/${olderFile}`;
  const notedAtMs = Number(await client.zscore('aiexpiry:ai:results', olderKey));
  assert.ok(notedAtMs > createdMs - 5000 && notedAtMs <= createdMs, `the result is noted in the expiry index when stored (${notedAtMs})`);
  await new Promise((r) => setTimeout(r, 1500));
  const younger = await generate();
  assert.equal((await fetch(older)).status, 200, 'still served before its TTL');

  let status = 200;
  while (status === 200 && Date.now() - createdMs < 15_000) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await fetch(older)).status;
  }
  // From its store time (the index's score, the gateway's clock: this machine's), not from the
  // response's arrival, which comes after it.
  const expiredAfterMs = Date.now() - notedAtMs;
  assert.equal(status, 404, 'the older result expired');
  assert.ok(expiredAfterMs >= 2000, `not before its TTL (${expiredAfterMs} ms after it was stored)`);
  assert.equal((await fetch(younger)).status, 200, 'the younger result is still served');
  const [, , youngerID, youngerFile] = new URL(younger).pathname.split('/');
  assert.ok(readdirSync(join(gateway.dataDir, 'objects', '.results')).includes(`${youngerID}+${youngerFile}`), 'the younger file is kept');

  assert.equal(existsSync(join(gateway.dataDir, 'objects', '.results', `${olderID}+${olderFile}`)), false, 'its file is gone from the store');
  // Forgotten by the run that deleted it, or (when the listing got to its file first: the file's
  // mtime precedes its note by the write) by the next one.
  let noted: string | null = olderKey;
  for (const waitUntil = Date.now() + 5000; noted !== null && Date.now() < waitUntil;) {
    noted = await client.zscore('aiexpiry:ai:results', olderKey);
    if (noted !== null) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(noted, null, 'it is forgotten by the index');
});
