/**
 * DNS rebinding and cross-site requests against a real gateway process on a loopback bind
 * with no admin token (where loopback is trusted): a foreign Host is refused on the APIs,
 * worker registration and push; a browser's cross-site POST is refused and stores nothing;
 * the same requests with a loopback Host and no Origin work; HLS playback answers on any
 * Host. Real redis-server, real ffmpeg transcode of a segment of the real clip.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { clipWith2sGop } from '../../helpers/media.ts';

const run = promisify(execFile);
const FOREIGN = 'attacker.example';
const gateway = gatewayForSuite({ MEDIAGATE_LADDER: 'P144p30fps16x9', MEDIAGATE_RTMP_ENABLED: 'false' });
let worker: FakeAiWorker;
let work: string;
let segment: Buffer;

// Runs while the gateway starts (a file's top-level before hooks run at the same time).
before(async () => {
  worker = await startFakeAiWorker();
  work = mkdtempSync(join(tmpdir(), 'mg-guard-'));
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(4), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(work, '%d.ts')]);
  segment = readFileSync(join(work, readdirSync(work).filter((f) => f.endsWith('.ts')).sort()[0]!));
});

after(async () => {
  await worker?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Reply { status: number; text: string; json: () => Record<string, any> }

/** One request with full control of Host and browser headers (fetch sets Host itself). */
function send(method: string, path: string, options: { host?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = httpRequest({
      host: '127.0.0.1', port: gateway.deployment.httpPort, method, path,
      headers: { host: options.host ?? `127.0.0.1:${gateway.deployment.httpPort}`, ...(body ? { 'content-length': String(body.length) } : {}), ...options.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) as Record<string, any> });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function assertRefused(reply: Reply, code: 'HOST_NOT_ALLOWED' | 'CROSS_SITE_REQUEST', what: string): void {
  assert.equal(reply.status, 403, `${what}: ${reply.text}`);
  const detail = reply.json()['detail'] as { msg: string; code: string };
  assert.equal(detail.code, code, what);
  assert.match(detail.msg, code === 'HOST_NOT_ALLOWED' ? /Host attacker\.example(:\d+)? is not a name of this gateway.*http\.allowedHosts/ : /cross-site POST refused/, what);
}

const json = (value: unknown): { headers: Record<string, string>; body: string } => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
const workerBody = (): { headers: Record<string, string>; body: string } => json({ url: worker.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'guard/model', capacity: 1 }] });

test('a foreign Host (DNS rebinding) is refused on the admin, worker, push and AI APIs, and nothing changes', async () => {
  const accountsBefore = (await send('GET', '/api/accounts')).json()['accounts'] as unknown[];
  for (const host of [FOREIGN, `${FOREIGN}:${gateway.deployment.httpPort}`]) {
    assertRefused(await send('POST', '/api/accounts', { host, ...json({ name: 'evil', credits: '1000' }) }), 'HOST_NOT_ALLOWED', 'create account');
    assertRefused(await send('POST', '/api/accounts/local/api-keys', { host, ...json({ label: 'evil' }) }), 'HOST_NOT_ALLOWED', 'mint API key');
    assertRefused(await send('GET', '/api/accounts', { host }), 'HOST_NOT_ALLOWED', 'list accounts');
    assertRefused(await send('GET', '/api/accounts/local/keys', { host }), 'HOST_NOT_ALLOWED', 'list keys');
    assertRefused(await send('GET', '/api/streams', { host }), 'HOST_NOT_ALLOWED', 'list streams');
    assertRefused(await send('POST', '/api/workers', { host, ...workerBody() }), 'HOST_NOT_ALLOWED', 'register worker');
    assertRefused(await send('GET', '/api/workers', { host }), 'HOST_NOT_ALLOWED', 'list workers');
    assertRefused(await send('POST', '/live/rebound/0.ts', { host, body: segment, headers: { 'content-type': 'video/mp2t' } }), 'HOST_NOT_ALLOWED', 'push');
    assertRefused(await send('POST', '/text-to-image', { host, ...json({ prompt: 'x', model_id: 'guard/model' }) }), 'HOST_NOT_ALLOWED', 'AI request');
  }
  assert.deepEqual((await send('GET', '/api/accounts')).json()['accounts'], accountsBefore, 'no account was created');
  assert.deepEqual((await send('GET', '/api/accounts/local/keys')).json()['keys'] ?? [], [], 'no key was minted');
  assert.deepEqual((await send('GET', '/api/workers')).json()['workers'], [], 'no worker was registered');
  assert.equal(worker.calls.length, 0);
  assert.equal((await send('GET', '/stream/rebound.m3u8')).status, 404, 'nothing was pushed');
});

test('a cross-site browser POST (Origin or Sec-Fetch-Site) is refused and stores nothing', async () => {
  const host = `127.0.0.1:${gateway.deployment.httpPort}`;
  const browser: Record<string, string>[] = [
    { origin: `http://${FOREIGN}`, 'content-type': 'text/plain' },
    { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
    { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:3000', 'content-type': 'text/plain' },
    { origin: 'null', 'content-type': 'text/plain' },
  ];
  for (const headers of browser) {
    const what = JSON.stringify(headers);
    assertRefused(await send('POST', '/live/csrf/0.ts', { host, headers, body: segment }), 'CROSS_SITE_REQUEST', `push ${what}`);
    assertRefused(await send('POST', '/api/accounts/local/api-keys', { host, headers, body: JSON.stringify({ label: 'csrf' }) }), 'CROSS_SITE_REQUEST', `mint key ${what}`);
    assertRefused(await send('POST', '/api/workers', { host, headers, body: workerBody().body }), 'CROSS_SITE_REQUEST', `register worker ${what}`);
  }
  assert.equal((await send('GET', '/stream/csrf.m3u8')).status, 404, 'no playlist for the refused pushes');
  assert.deepEqual((await send('GET', '/api/streams')).json()['streams'], [], 'no stream was started');
  assert.equal(gateway.proc.lines.filter((l) => l.includes('"msg":"segment transcoded"')).length, 0, 'nothing was transcoded');
  assert.deepEqual((await send('GET', '/api/accounts/local/keys')).json()['keys'] ?? [], [], 'no key was minted');
  assert.deepEqual((await send('GET', '/api/workers')).json()['workers'], [], 'no worker was registered');
});

test('the same requests with a loopback Host and no Origin work, and HLS playback answers on any Host', { timeout: 120_000 }, async () => {
  const key = await send('POST', '/api/accounts/local/api-keys', json({ label: 'ok' }));
  assert.equal(key.status, 201, key.text);
  const account = await send('POST', '/api/accounts', { host: `localhost:${gateway.deployment.httpPort}`, ...json({ name: 'fine', credits: '5' }) });
  assert.equal(account.status, 201, account.text);
  const registered = await send('POST', '/api/workers', { host: `[::1]:${gateway.deployment.httpPort}`, ...workerBody() });
  assert.equal(registered.status, 201, registered.text);
  // A page of the gateway itself (e.g. /docs) posting same-origin is no cross-site request.
  const sameOrigin = { origin: gateway.httpUrl, 'sec-fetch-site': 'same-origin' };
  const ai = await send('POST', '/text-to-image', { headers: { ...sameOrigin, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', model_id: 'guard/model', width: 64, height: 64 }) });
  assert.equal(ai.status, 200, ai.text);
  assert.equal(worker.calls.length, 1);

  const pushed = await send('POST', '/live/fine/0.ts', { body: segment, headers: { 'content-type': 'video/mp2t' } });
  assert.equal(pushed.status, 200, pushed.text);

  // Playback is public and served to players behind any name (CDN, reverse proxy).
  for (const host of [FOREIGN, `cdn.example:8443`]) {
    const master = await send('GET', '/stream/fine.m3u8', { host });
    assert.equal(master.status, 200, master.text);
    assert.match(master.text, /#EXTM3U/);
    const media = await send('GET', '/stream/fine/P144p30fps16x9.m3u8', { host });
    assert.equal(media.status, 200, media.text);
    const uri = media.text.split('\n').find((l) => l !== '' && !l.startsWith('#'))!;
    const seg = await send('GET', `/stream/fine/${uri}`, { host });
    assert.equal(seg.status, 200, `segment ${uri}`);
    assert.equal((await send('OPTIONS', '/stream/fine.m3u8', { host, headers: { origin: 'https://player.example', 'access-control-request-method': 'GET' } })).status < 300, true, 'CORS preflight');
    assert.equal((await send('GET', '/healthz', { host })).status, 200);
  }
});
