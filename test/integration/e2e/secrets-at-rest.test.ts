/**
 * Secrets stay secret at rest and in echoes, with a real gateway process: stream keys
 * (accepted and refused publishes) appear in no file under the gateway's data dir (work dir,
 * NMS store, object store), in no process's command line while the stream is live, and in
 * no API reply or log line; a worker URL's password is refused at registration and appears
 * in no reply and no log line, also for a worker configured with one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { publish, spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';

const KEY = `livekey${randomBytes(8).toString('hex')}`;
const REFUSED_KEY = `wrongkey${randomBytes(8).toString('hex')}`;
const MANIFEST_ID = 'secretstream';
const PASSWORD = `pw${randomBytes(8).toString('hex')}`;
let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let worker: Server;
let workerPort = 0;
const replies: string[] = [];

before(async () => {
  redis = await startRedis();
  // Something listening where the configured worker points, so its registration is not a connection error only.
  worker = createServer((_req, res) => res.end('{"status":"OK"}'));
  await new Promise<void>((r) => worker.listen(0, '127.0.0.1', () => r()));
  workerPort = (worker.address() as { port: number }).port;
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_LADDER: 'P144p30fps16x9',
    MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: KEY, manifestID: MANIFEST_ID }]),
    MEDIAGATE_AI_WORKERS: JSON.stringify([{ url: `http://cfguser:${PASSWORD}@127.0.0.1:${workerPort}`, pipelines: [{ pipeline: 'text-to-image', model_id: 'm' }] }]),
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
});

after(async () => {
  await gateway?.stop();
  await redis?.stop();
  worker?.close();
  deployment?.cleanup();
});

async function get(path: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(`${deployment.httpUrl}${path}`, init);
  replies.push(`${path} ${res.status} ${JSON.stringify([...res.headers])} ${await res.clone().text()}`);
  return res;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    const s = statSync(p);
    if (s.isDirectory()) out.push(...filesUnder(p));
    else if (s.isFile()) out.push(p);
  }
  return out;
}

/** Every process's command line but the one of `exceptPid`. */
function commandLines(exceptPid: number | undefined): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')
    .map((l) => /^\s*(\d+)\s(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) !== exceptPid)
    .map((m) => m[2]!);
}

const rtmpUrl = (key: string): string => `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${key}`;

test('no process command line carries the stream key while the stream is live; nothing pulls the stream (the segmenter runs in process)', { timeout: 120_000 }, async () => {
  const publisher = publish(await clipWith2sGop(8), rtmpUrl(KEY));
  try {
    const deadline = Date.now() + 60_000;
    let listed = false;
    while (!listed && Date.now() < deadline) {
      const res = await fetch(`${deployment.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`);
      listed = res.status === 200 && /\.ts/.test(await res.text());
      if (!listed) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(listed, 'a source segment was listed, so the segmenter is running');
    // The publisher is the test's own ffmpeg: its line is left out.
    const others = commandLines(publisher.child.pid);
    assert.deepEqual(others.filter((l) => l.includes(KEY)), [], 'no command line but the publisher\'s holds the key');
    assert.deepEqual(others.filter((l) => l.includes(`rtmp://127.0.0.1:${deployment.rtmpPort}/live/`)), [], 'no process pulls the stream over RTMP');
    // API replies while live.
    for (const path of ['/api/streams', `/api/streams/${MANIFEST_ID}`, '/metrics', '/healthz', `/stream/${MANIFEST_ID}/index.m3u8`, `/stream/${MANIFEST_ID}/source.m3u8`]) await get(path);
  } finally {
    publisher.child.kill('SIGINT');
    await publisher.exited;
  }
});

test('a refused publish is refused', { timeout: 60_000 }, async () => {
  const refused = publish(await clipWith2sGop(8), rtmpUrl(REFUSED_KEY));
  const code = await refused.exited;
  assert.notEqual(code, 0, 'the refused publisher was disconnected');
});

test('a worker URL with credentials is refused at registration without echoing them, and no reply lists them', { timeout: 30_000 }, async () => {
  const res = await get('/api/workers', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: `http://apiuser:${PASSWORD}@127.0.0.1:${workerPort}`, pipelines: [{ pipeline: 'text-to-image', model_id: 'm' }] }),
  });
  const text = await res.clone().text();
  assert.equal(res.status, 400, text);
  assert.match(text, /credentials/);
  await get('/api/workers');
  for (const reply of replies) assert.ok(!reply.includes(PASSWORD), `reply without the password: ${reply.slice(0, 300)}`);
});

test('after the streams, no file under the data dir holds a stream key, and NMS\'s store dir is private', { timeout: 60_000 }, async () => {
  await get('/api/streams');
  await get(`/api/streams/${MANIFEST_ID}`);
  // Stopping flushes NMS's store: whatever it would keep is on disk now.
  await gateway.stop();
  const files = filesUnder(deployment.dataDir);
  assert.ok(files.length > 0, 'the gateway wrote files (segments) to check');
  for (const file of files) {
    const content = readFileSync(file);
    for (const secret of [KEY, REFUSED_KEY]) assert.ok(!content.includes(secret), `${file} holds no stream key`);
  }
  const store = join(deployment.dataDir, 'work', 'nms-store');
  assert.equal(statSync(store).mode & 0o777, 0o700, 'the NMS store dir is private');
});

test('no API reply and no log line holds a stream key or the worker password', () => {
  for (const reply of replies) for (const secret of [KEY, REFUSED_KEY, PASSWORD]) assert.ok(!reply.includes(secret), `reply without secrets: ${reply.slice(0, 300)}`);
  assert.ok(gateway.lines.some((l) => l.includes('RTMP publish refused')), 'the refusal was logged');
  for (const line of gateway.lines) for (const secret of [KEY, REFUSED_KEY, PASSWORD]) assert.ok(!line.includes(secret), `log line without secrets: ${line.slice(0, 300)}`);
});
