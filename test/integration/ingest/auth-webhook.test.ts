/**
 * WebhookAuthorizer against a real HTTP server on 127.0.0.1 playing Livepeer's auth webhook
 * (docs/wire-contract.md §6). One server for the file; each test sets its handler.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebhookAuthorizer, MAX_WEBHOOK_REPLY_BYTES, type WebhookAuthorizerOptions } from '../../../src/ingest/auth-webhook.ts';
import { parseLadder, PRESETS } from '../../../src/domain/profile.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { REDACT_PATHS } from '../../../src/log/logger.ts';
import { freePort } from '../../helpers/ports.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WatermarkResolver } from '../../../src/ingest/watermark-resolver.ts';
import { DirStorage } from '../../helpers/dir-storage.ts';
import { encodePng } from '../../helpers/png.ts';

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const lines: string[] = [];
const logger = pino({ level: 'trace', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, { write: (s: string) => { lines.push(s); } });
const defaultLadder = parseLadder(['P240p30fps4x3', 'P360p30fps16x9']);
const TOKEN = 'tok3n-in-query';

let server: Server;
let baseUrl = '';
let received: Received[] = [];
let handle: (req: Received, res: ServerResponse) => void = (_req, res) => res.end();

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      handle(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  handle = (_req, res) => res.end();
});

function authorizer(overrides: Partial<WebhookAuthorizerOptions> = {}): WebhookAuthorizer {
  return new WebhookAuthorizer({ webhookUrl: `${baseUrl}/auth?token=${TOKEN}`, timeoutMs: 2000, logger, defaultLadder, ...overrides });
}

function attempt(streamKey: string, protocol: 'rtmp' | 'push' = 'rtmp'): { streamKey: string; url: string; protocol: 'rtmp' | 'push' } {
  const url = protocol === 'rtmp' ? `rtmp://127.0.0.1:1935/live/${streamKey}` : `http://127.0.0.1:9935/live/${streamKey}/0.ts`;
  return { streamKey, url, protocol };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function denied(promise: Promise<unknown>, message: RegExp): Promise<GatewayError> {
  let caught: unknown;
  await assert.rejects(promise, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof GatewayError, `expected a GatewayError, got ${String(caught)}`);
  assert.equal(caught.code, 'PUBLISH_DENIED');
  assert.equal(caught.status, 403);
  assert.match(caught.message, message);
  return caught;
}

function logsAfter(mark: number): Record<string, unknown>[] {
  return lines.slice(mark).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('the webhook receives a POST of exactly {"url": <incoming URL>} as JSON at its configured path and query', async () => {
  await authorizer().authorize(attempt('sk_post1', 'push'));
  assert.equal(received.length, 1);
  const [r] = received;
  assert.equal(r!.method, 'POST');
  assert.equal(r!.path, `/auth?token=${TOKEN}`);
  assert.equal(r!.headers['content-type'], 'application/json');
  assert.equal(r!.body, JSON.stringify({ url: 'http://127.0.0.1:9935/live/sk_post1/0.ts' }));
  assert.deepEqual(JSON.parse(r!.body), { url: 'http://127.0.0.1:9935/live/sk_post1/0.ts' });
});

test('an empty 200 reply accepts with the stream key as manifest ID and the default ladder', async () => {
  handle = (_req, res) => { res.writeHead(200); res.end(); };
  const grant = await authorizer().authorize(attempt('sk_empty'));
  assert.equal(grant.manifestID, 'sk_empty');
  assert.deepEqual(grant.profiles.map((p) => p.name), ['P240p30fps4x3', 'P360p30fps16x9']);
  assert.equal(grant.profiles, defaultLadder);
});

test('a JSON 200 reply with manifestID, presets and profiles overrides the manifest ID and the ladder', async () => {
  handle = (_req, res) => json(res, 200, {
    manifestID: 'public-show', streamKey: 'ignored', objectStore: 's3+https://k:s@h/b',
    presets: ['P144p30fps16x9'], profiles: [{ name: 'tiny', width: 160, height: 90, bitrate: 100_000, fps: 15 }],
  });
  const mark = lines.length;
  const grant = await authorizer().authorize(attempt('sk_json'));
  assert.equal(grant.manifestID, 'public-show');
  assert.deepEqual(grant.profiles.map((p) => p.name), ['P144p30fps16x9', 'tiny']);
  assert.deepEqual(grant.profiles[0], PRESETS['P144p30fps16x9']);
  assert.equal(grant.profiles[1]?.fps, 15);
  const ignored = logsAfter(mark).find((l) => Array.isArray(l['ignoredFields']));
  assert.ok(ignored, 'ignored fields are logged');
  assert.equal(ignored['level'], 40);
  assert.deepEqual(ignored['ignoredFields'], ['streamKey', 'objectStore']);
});

test('a JSON 200 reply with only a manifestID keeps the default ladder', async () => {
  handle = (_req, res) => json(res, 200, { manifestID: 'only-id', presets: [], profiles: null });
  const grant = await authorizer().authorize(attempt('sk_idonly'));
  assert.equal(grant.manifestID, 'only-id');
  assert.equal(grant.profiles, defaultLadder);
});

test('a 403 reply denies the publish without echoing the webhook body, which is logged redacted', async () => {
  handle = (_req, res) => { res.writeHead(403, { 'content-type': 'text/plain' }); res.end('unknown key sk_forbid\nsecret internal detail'); };
  const mark = lines.length;
  const err = await denied(authorizer().authorize(attempt('sk_forbid')), /^auth webhook refused the stream \(HTTP 403\)$/);
  assert.equal(err.retryable, false);
  assert.doesNotMatch(err.message, /secret internal detail/);
  const logged = logsAfter(mark).find((l) => l['status'] === 403);
  assert.ok(logged);
  assert.equal(logged['bodyExcerpt'], 'unknown key [redacted] secret internal detail');
});

test('a 5xx reply denies the publish and is marked retryable', async () => {
  handle = (_req, res) => { res.writeHead(503); res.end('down'); };
  const err = await denied(authorizer().authorize(attempt('sk_503')), /HTTP 503/);
  assert.equal(err.retryable, true);
});

test('a redirect is not followed: the publish is denied and the target never called', async () => {
  handle = (req, res) => {
    if (req.path.startsWith('/auth')) { res.writeHead(302, { location: '/elsewhere' }); res.end(); } else res.end();
  };
  await denied(authorizer().authorize(attempt('sk_redirect')), /HTTP 302/);
  assert.deepEqual(received.map((r) => r.path), [`/auth?token=${TOKEN}`]);
});

test('a JSON 200 reply without a manifestID denies the publish saying so', async () => {
  for (const body of [{ presets: ['P144p30fps16x9'] }, { manifestID: '' }, {}]) {
    handle = (_req, res) => json(res, 200, body);
    await denied(authorizer().authorize(attempt('sk_nomid')), /auth webhook reply lacks a manifestID/);
  }
});

test('a 200 reply with invalid profiles denies the publish naming the problem, logged at error', async () => {
  handle = (_req, res) => json(res, 200, { manifestID: 'm1', profiles: [{ name: 'ok', width: 320, height: 180, bitrate: 300_000 }, { width: 'wide', height: 180, bitrate: 1 }] });
  const mark = lines.length;
  await denied(authorizer().authorize(attempt('sk_badprof')), /^auth webhook: profiles\[1\]\.width: must be an integer, got "wide"$/);
  const logged = logsAfter(mark).find((l) => l['level'] === 50);
  assert.ok(logged, 'an error line is logged');
  assert.match(String(logged['reason']), /profiles\[1\]\.width/);

  handle = (_req, res) => json(res, 200, { manifestID: 'm1', presets: ['P9000p'] });
  await denied(authorizer().authorize(attempt('sk_badprof')), /presets\[0\]: unknown preset "P9000p"/);
  handle = (_req, res) => json(res, 200, { manifestID: 'bad/id' });
  await denied(authorizer().authorize(attempt('sk_badprof')), /auth webhook: manifestID: must be 1-64 characters/);
});

test('a 200 reply that is not JSON, or not a JSON object, denies the publish', async () => {
  handle = (_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('OK'); };
  await denied(authorizer().authorize(attempt('sk_text')), /^auth webhook reply is not valid JSON$/);
  handle = (_req, res) => json(res, 200, ['public-show']);
  await denied(authorizer().authorize(attempt('sk_text')), /lacks a manifestID/);
});

test('a 200 reply larger than 64 KiB denies the publish', async () => {
  handle = (_req, res) => json(res, 200, { manifestID: 'big', padding: 'x'.repeat(MAX_WEBHOOK_REPLY_BYTES) });
  await denied(authorizer().authorize(attempt('sk_big')), /exceeds 65536 bytes/);
});

test('user info in the webhook URL is sent as Basic auth, not in the URL', async () => {
  await authorizer({ webhookUrl: `${baseUrl.replace('http://', 'http://hook:p%40ss@')}/auth` }).authorize(attempt('sk_basic'));
  assert.equal(received[0]?.headers['authorization'], `Basic ${Buffer.from('hook:p@ss').toString('base64')}`);
  assert.equal(received[0]?.path, '/auth');
});

test('a webhook that never answers denies the publish after about timeoutMs', async () => {
  handle = () => { /* never answer */ };
  const timeoutMs = 300;
  const startedMs = Date.now();
  const err = await denied(authorizer({ timeoutMs }).authorize(attempt('sk_slow')), /^auth webhook did not answer within 300 ms$/);
  const elapsedMs = Date.now() - startedMs;
  assert.ok(elapsedMs >= timeoutMs - 20, `waited ${elapsedMs} ms`);
  assert.ok(elapsedMs < 5 * timeoutMs, `waited ${elapsedMs} ms, more than 5x the timeout`);
  assert.equal(err.retryable, true);
  assert.equal(received.length, 1);
});

test('a webhook whose reply body stalls denies the publish after about timeoutMs', async () => {
  handle = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"manifestID":'); };
  const startedMs = Date.now();
  await denied(authorizer({ timeoutMs: 300 }).authorize(attempt('sk_stall')), /did not answer within 300 ms/);
  assert.ok(Date.now() - startedMs < 1500);
});

test('a webhook URL with nothing listening denies the publish as unreachable', async () => {
  const port = await freePort();
  const mark = lines.length;
  const err = await denied(authorizer({ webhookUrl: `http://127.0.0.1:${port}/auth` }).authorize(attempt('sk_nobody')), /^auth webhook unreachable$/);
  assert.equal(err.retryable, true);
  const logged = logsAfter(mark).find((l) => l['level'] === 40);
  assert.ok(logged);
  assert.match(String(logged['reason']), /ECONNREFUSED/);
});

test('a webhook URL that is not http(s) is refused at construction', () => {
  assert.throws(() => authorizer({ webhookUrl: 'ftp://127.0.0.1/auth' }), (e: GatewayError) => e.code === 'CONFIG_INVALID');
  assert.throws(() => authorizer({ webhookUrl: 'not a url' }), (e: GatewayError) => e.code === 'CONFIG_INVALID');
});

test('neither the stream key nor the webhook query token appears in any log line', async () => {
  const key = 'sk_Very_Secret_9';
  const mark = lines.length;
  const scenarios: ((req: Received, res: ServerResponse) => void)[] = [
    (_req, res) => json(res, 200, { manifestID: 'pub-1', profiles: [{ name: 'r', width: 320, height: 180, bitrate: 300_000 }], objectStore: 'x' }),
    (_req, res) => json(res, 200, { manifestID: key }),
    (_req, res) => { res.writeHead(403); res.end(`stream key ${key} is not allowed`); },
    (_req, res) => json(res, 200, { manifestID: `${key}.x` }),
    (_req, res) => json(res, 200, { profiles: [{ name: key, width: 'w' }], note: key }),
    (_req, res) => { res.writeHead(200); res.end(`not json ${key}`); },
    () => { /* never answers */ },
  ];
  for (const [i, scenario] of scenarios.entries()) {
    handle = scenario;
    await authorizer({ timeoutMs: 300 }).authorize(attempt(key, i % 2 === 0 ? 'rtmp' : 'push')).catch(() => undefined);
  }
  const port = await freePort();
  await authorizer({ webhookUrl: `http://127.0.0.1:${port}/auth?token=${TOKEN}` }).authorize(attempt(key)).catch(() => undefined);

  const captured = lines.slice(mark);
  assert.ok(captured.length >= scenarios.length, `expected log lines, got ${captured.length}`);
  for (const line of captured) {
    assert.ok(!line.includes(key), `stream key leaked: ${line}`);
    assert.ok(!line.includes(TOKEN), `webhook token leaked: ${line}`);
  }
  assert.ok(captured.some((l) => l.includes('"webhook":"http://127.0.0.1:') && l.includes('/auth"')), 'the webhook is logged as origin + path');
  assert.ok(captured.some((l) => l.includes('rtmp://127.0.0.1:1935/live/[redacted]')), 'the incoming URL is logged redacted');
});

test('a reply\'s watermark is read from the object store and checked: a good PNG gives the grant its spec; a GIF, a missing key, an oversize image or a local path is 400 INVALID_WATERMARK naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-webhook-wm-'));
  try {
    const storage = new DirStorage(dir);
    await mkdir(join(dir, 'marks'), { recursive: true });
    await writeFile(join(dir, 'marks', 'logo.png'), encodePng(64, 32, () => [255, 255, 255]));
    await writeFile(join(dir, 'marks', 'logo.gif'), Buffer.from('GIF89a\x10\x00\x10\x00\x00\x00\x00;', 'latin1'));
    await writeFile(join(dir, 'marks', 'huge.png'), encodePng(1000, 500, () => [0, 0, 0]));
    const auth = authorizer({ watermarks: new WatermarkResolver(storage) });
    let watermark: unknown = { imageKey: 'marks/logo.png', position: 'top-left', opacity: 0.5 };
    handle = (_req, res) => json(res, 200, { manifestID: 'wm-stream', watermark });
    const grant = await auth.authorize(attempt('secretKey1'));
    assert.deepEqual(grant.watermark, {
      kind: 'image', imageKey: 'marks/logo.png', imageFormat: 'png', imageWidthPx: 64, imageHeightPx: 32,
      widthFraction: 0.15, position: 'top-left', margin: { fraction: 0.02 }, opacity: 0.5,
    });
    const refused = async (value: unknown, message: RegExp): Promise<void> => {
      watermark = value;
      await assert.rejects(auth.authorize(attempt('secretKey1')), (e: unknown) => {
        assert.ok(e instanceof GatewayError, String(e));
        assert.equal(e.code, 'INVALID_WATERMARK');
        assert.equal(e.status, 400);
        assert.match(e.message, message);
        assert.ok(!e.message.includes('secretKey1'));
        return true;
      });
    };
    await refused({ imageKey: 'marks/logo.gif' }, /^auth webhook: watermark\.imageKey: a GIF image; a watermark must be a PNG or JPEG$/);
    await refused({ imageKey: 'marks/none.png' }, /^auth webhook: watermark\.imageKey: "marks\/none\.png" is not an object in the object store$/);
    await refused({ imageKey: 'marks/huge.png' }, /^auth webhook: watermark: image is 1000x500, larger than the largest frame of the ladder \(640x360\)$/);
    await refused({ image: '/etc/passwd' }, /^auth webhook: watermark\.image: a local path is not accepted here/);
    await refused({ imageKey: 'marks/logo.png', opacity: 3 }, /^auth webhook: watermark\.opacity: must be a number/);
    watermark = false;
    assert.equal((await auth.authorize(attempt('secretKey1'))).watermark, false, '"watermark": false turns the default off');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reply\'s outputs give the grant its restream targets (rendition default source, not an ignored field); a malformed one denies the publish naming it, never its URL', async () => {
  handle = (_req, res) => json(res, 200, { manifestID: 'show', outputs: [{ url: 'rtmps://x.livekit.cloud/x/lk-key-1' }, { url: 'srt://10.0.0.2:9000?streamid=s1', rendition: 'P240p30fps4x3' }] });
  const mark = lines.length;
  const grant = await authorizer().authorize(attempt('sk_outputs'));
  assert.deepEqual(grant.outputs, [{ url: 'rtmps://x.livekit.cloud/x/lk-key-1', rendition: 'source' }, { url: 'srt://10.0.0.2:9000?streamid=s1', rendition: 'P240p30fps4x3' }]);
  assert.ok(!logsAfter(mark).some((l) => Array.isArray(l['ignoredFields'])), 'outputs is not reported as ignored');
  assert.ok(!lines.slice(mark).join('\n').includes('lk-key-1'), 'no target key in the log');

  handle = (_req, res) => json(res, 200, { manifestID: 'show', outputs: [{ url: 'rtmp://h/live/k' }, { url: 'http://h/live/lk-key-2' }] });
  const err = await denied(authorizer().authorize(attempt('sk_outputs')), /^auth webhook: outputs\[1\]: output url scheme "http:" is not supported/);
  assert.ok(!err.message.includes('lk-key-2'));
  handle = (_req, res) => json(res, 200, { manifestID: 'show', outputs: 'rtmp://h/live/k' });
  await denied(authorizer().authorize(attempt('sk_outputs')), /outputs must be an array/);
});

test('a ladder the webhook sets is the publisher\'s own (used as configured); defaults are the gateway\'s (fitted to the source)', async () => {
  handle = (_req, res) => json(res, 200, { manifestID: 'set-ladder', presets: ['P360p30fps16x9'] });
  assert.equal((await authorizer().authorize(attempt('sk_set'))).explicitLadder, true);
  handle = (_req, res) => json(res, 200, { manifestID: 'default-ladder', presets: [] });
  assert.equal((await authorizer().authorize(attempt('sk_default'))).explicitLadder, undefined);
  handle = (_req, res) => { res.writeHead(200); res.end(); };
  assert.equal((await authorizer().authorize(attempt('sk_empty2'))).explicitLadder, undefined);
});
