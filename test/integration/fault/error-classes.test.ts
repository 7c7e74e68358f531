/**
 * Failure classes a client can cause or meet, against a real gateway process (real HTTP on
 * 127.0.0.1, a real redis-server that the last test stops): each gets its own status and the
 * `{"detail":{"msg","code"}}` body, none is a 500 or an error-level log line, and the gateway
 * stays up. Raw sockets send what fetch will not (truncated bodies, aborts, huge headers).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { solidPng } from '../../helpers/png.ts';

let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let worker: FakeAiWorker;
const QUEUE_WAIT_MS = 300;

before(async () => {
  redis = await startRedis();
  worker = await startFakeAiWorker({ delayMs: 3000 });
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_TRANSCODE_EMBEDDED: 'false',
    MEDIAGATE_AI_QUEUE_WAIT_MS: String(QUEUE_WAIT_MS),
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  const res = await fetch(`${deployment.httpUrl}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: worker.url, pipelines: [{ pipeline: 'image-to-text', model_id: 'Salesforce/blip-image-captioning-large', warm: true, capacity: 1 }] }),
  });
  assert.equal(res.status, 201, await res.text());
});

after(async () => {
  await gateway?.stop();
  await worker?.close();
  await redis?.stop();
  deployment?.cleanup();
});

interface RawAnswer { status: number; headers: Record<string, string>; body: string }

/** Writes `request` on a fresh connection, then either reads the answer or (abort) closes. */
function raw(request: string | Buffer, options: { abortAfterMs?: number } = {}): Promise<RawAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(deployment.httpPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err) => (options.abortAfterMs === undefined ? reject(err) : resolve(undefined)));
    socket.on('close', () => {
      if (options.abortAfterMs !== undefined) return resolve(undefined);
      const text = Buffer.concat(chunks).toString('latin1');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    socket.write(request);
    if (options.abortAfterMs !== undefined) setTimeout(() => socket.destroy(), options.abortAfterMs);
  });
}

/** Parsed JSON log lines of the gateway written since `from`. */
function logsSince(from: number): { level: number; msg: string; [k: string]: unknown }[] {
  return gateway.lines.slice(from).flatMap((l) => {
    try { return [JSON.parse(l) as { level: number; msg: string }]; } catch { return []; }
  });
}

function assertNoErrorLogs(from: number): void {
  const bad = logsSince(from).filter((l) => l.level >= 50);
  assert.deepEqual(bad.map((l) => l.msg), [], `error-level log lines: ${JSON.stringify(bad).slice(0, 2000)}`);
}

function detail(body: string): { msg: string; code: string } {
  return (JSON.parse(body) as { detail: { msg: string; code: string } }).detail;
}

const BOUNDARY = 'mgtestboundary';
const partHead = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n`;

test('a multipart body cut off before its closing boundary is a 400 naming the truncation', async () => {
  const from = gateway.lines.length;
  const body = Buffer.concat([Buffer.from(partHead), solidPng(16, 16)]); // no closing boundary
  const answer = await raw(Buffer.concat([Buffer.from(
    `POST /upscale HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
  assert.equal(answer!.status, 400, answer!.body);
  assert.equal(detail(answer!.body).code, 'INVALID_REQUEST');
  assert.match(detail(answer!.body).msg, /truncated/);
  assertNoErrorLogs(from);
});

test('a client that aborts mid-upload or mid-JSON body is not an error', async () => {
  const from = gateway.lines.length;
  await raw(Buffer.concat([Buffer.from(
    `POST /upscale HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n${partHead}`), Buffer.alloc(20_000, 1)]), { abortAfterMs: 300 });
  await raw(`POST /text-to-image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"prompt": "a bun`, { abortAfterMs: 300 });
  const deadline = Date.now() + 10_000;
  while (logsSince(from).filter((l) => l.msg === 'client aborted the request').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(logsSince(from).filter((l) => l.msg === 'client aborted the request' && l.level === 20).length, 2, 'both aborts logged at debug');
  assertNoErrorLogs(from);
  assert.equal((await fetch(`${deployment.httpUrl}/healthz`)).status, 200);
});

test('a JSON body in another charset is 415', async () => {
  const from = gateway.lines.length;
  for (const path of ['/text-to-image', '/api/workers']) {
    const res = await fetch(`${deployment.httpUrl}${path}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json; charset=latin1' }, body: Buffer.from('{"prompt":"caf\xe9"}', 'latin1'),
    });
    const text = await res.text();
    assert.equal(res.status, 415, `${path}: ${text}`);
    assert.equal(detail(text).code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.match(detail(text).msg, /charset.*LATIN1|LATIN1.*charset/i);
  }
  const gz = await fetch(`${deployment.httpUrl}/text-to-image`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'x-unknown' }, body: '{"prompt":"x"}',
  });
  const gzText = await gz.text();
  assert.equal(gz.status, 415, gzText);
  assert.match(detail(gzText).msg, /encoding/);
  assertNoErrorLogs(from);
});

test('an oversized Livepeer-Transcode-Configuration header gets 431 with the JSON error body', async () => {
  const huge = JSON.stringify({ manifestID: 'm', profiles: Array.from({ length: 400 }, (_, i) => ({ name: `p${i}`, width: 320, height: 180, bitrate: 300_000 })) });
  assert.ok(huge.length > 16 * 1024);
  const answer = await raw(`POST /live/errstream/0.ts HTTP/1.1\r\nHost: 127.0.0.1\r\nLivepeer-Transcode-Configuration: ${huge}\r\nContent-Length: 0\r\n\r\n`);
  assert.equal(answer!.status, 431);
  assert.match(answer!.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(detail(answer!.body).code, 'HEADERS_TOO_LARGE');
  assert.match(detail(answer!.body).msg, /Livepeer-Transcode-Configuration/);
  assert.equal((await fetch(`${deployment.httpUrl}/healthz`)).status, 200);
});

test('a 503 whose message names a wait sends the same number in Retry-After', async () => {
  const image = (): FormData => {
    const f = new FormData();
    f.append('image', new Blob([solidPng(16, 16)], { type: 'image/png' }), 'in.png');
    return f;
  };
  // The worker has capacity 1 and answers after 3 s: the second request waits QUEUE_WAIT_MS, then 503.
  const first = fetch(`${deployment.httpUrl}/image-to-text`, { method: 'POST', body: image() });
  await new Promise((r) => setTimeout(r, 200));
  const second = await fetch(`${deployment.httpUrl}/image-to-text`, { method: 'POST', body: image() });
  const text = await second.text();
  assert.equal(second.status, 503, text);
  const waitS = /retry in (\d+) s/.exec(detail(text).msg)?.[1];
  assert.ok(waitS, `message names a wait: ${text}`);
  assert.equal(second.headers.get('retry-after'), waitS);
  assert.equal((await first).status, 200);
});

test('Redis unavailable is 503 with Retry-After matching the message, not a 500', async () => {
  await redis.stop();
  const from = gateway.lines.length;
  const res = await fetch(`${deployment.httpUrl}/stream/nosuchstream.m3u8`);
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.equal(detail(text).code, 'REDIS_UNAVAILABLE');
  const waitS = /retry in (\d+) s/.exec(detail(text).msg)?.[1];
  assert.ok(waitS, text);
  assert.equal(res.headers.get('retry-after'), waitS);
  assert.equal(logsSince(from).filter((l) => l.msg === 'unhandled request error').length, 0);
});
