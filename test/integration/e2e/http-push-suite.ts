/**
 * HTTP push end to end: the gateway process in auth-webhook mode (a real local webhook),
 * event webhooks to a real local receiver (plus one that never answers), the real clip cut
 * into segments and pushed like Livepeer's clients do, multipart replies and HLS checked.
 * Run once per object store: http-push.test.ts (fs) and http-push-s3.test.ts (s3).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server, type IncomingMessage } from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, seqOf, probeSegment, decodeErrors, waitForEndedPlaylists } from '../../helpers/hls.ts';
import { boundaryOf, parseMultipart } from '../../helpers/multipart.ts';
import { verifySignature } from '../../../src/events/webhook-signature.ts';
import { e2eStore, type E2eStorage, type E2eStore } from '../../helpers/s3rver.ts';

const run = promisify(execFile);
const SECRET = 'whsec-test-4f1c';
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
/**
 * Registers the suite (hooks and tests) in the calling test file, on the given object store:
 * `fs` or `s3` (see rtmp-to-hls-suite.ts).
 */
export function httpPushSuite(storage: E2eStorage): void {
  let redis: TestRedis;
  let store: E2eStore;
  let deployment: TestDeployment;
  let gateway: MediagateProcess;
  let webhook: Server;
  let receiver: Server;
  let hanging: Server;
  let work: string;
  let segments: string[] = [];
  const webhookCalls: { url: string }[] = [];
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];

  function listen(server: Server): Promise<number> {
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  }

  function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve) => {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => resolve(body));
    });
  }

  before(async () => {
    redis = await startRedis();
    // The auth webhook: decides by the stream name at the end of the incoming URL's path.
    webhook = createServer(async (req, res) => {
      const { url } = JSON.parse(await readBody(req)) as { url: string };
      webhookCalls.push({ url });
      const name = /\/live\/([^/]+)\//.exec(url)?.[1];
      if (name === 'key-mapped') res.end(JSON.stringify({ manifestID: 'mapped', presets: LADDER, objectStore: '' }));
      else if (name === 'key-denied') res.writeHead(403).end('no');
      else if (name === 'key-slow') setTimeout(() => res.end(''), 5000);
      else res.end('');
    });
    receiver = createServer(async (req, res) => {
      received.push({ headers: req.headers, body: await readBody(req) });
      res.end('ok');
    });
    hanging = createServer(() => { /* never answers */ });
    const [webhookPort, receiverPort, hangingPort] = await Promise.all([listen(webhook), listen(receiver), listen(hanging)]);

    store = await e2eStore(storage, join(tmpdir(), 'mg-e2e-store'));
    deployment = await testDeployment(redis.url, {
      ...store.env,
      MEDIAGATE_LADDER: LADDER.join(','),
      MEDIAGATE_AUTH_MODE: 'webhook',
      MEDIAGATE_AUTH_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/auth`,
      MEDIAGATE_AUTH_WEBHOOK_TIMEOUT_MS: '500',
      MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: '3000',
      MEDIAGATE_HTTP_MAX_BODY_BYTES: String(2 * 1024 * 1024),
      MEDIAGATE_EVENTS_WEBHOOK_URLS: `http://127.0.0.1:${hangingPort}/hook,http://127.0.0.1:${receiverPort}/hook`,
      MEDIAGATE_EVENTS_SECRET: SECRET,
      MEDIAGATE_EVENTS_TIMEOUT_MS: '1000',
    });
    gateway = spawnMediagate('gateway', deployment.env);
    await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);

    work = mkdtempSync(join(tmpdir(), 'mg-push-'));
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(12), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(work, '%d.ts')]);
    segments = readdirSync(work).filter((f) => /^\d+\.ts$/.test(f)).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => join(work, f));
  });

  after(async () => {
    await gateway?.stop();
    await redis?.stop();
    await store?.close();
    for (const s of [webhook, receiver, hanging]) { s?.closeAllConnections(); s?.close(); }
    deployment?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function push(name: string, seq: number | string, body: Buffer, headers: Record<string, string> = {}, method = 'POST', ext = 'ts'): Promise<Response> {
    return fetch(`${deployment.httpUrl}/live/${name}/${seq}.${ext}`, { method, body: method === 'GET' ? undefined : body, headers });
  }

  function transcodedCount(): number {
    return gateway.lines.filter((l) => l.includes('"msg":"segment transcoded"')).length;
  }

  test('pushed segments come back as multipart renditions and play as HLS under the webhook-mapped manifest ID', { timeout: 180_000 }, async () => {
    assert.ok(segments.length >= 6, `cut into ${segments.length} segments`);
    for (let seq = 0; seq < segments.length; seq++) {
      const res = await push('key-mapped', seq, readFileSync(segments[seq]!), { Accept: 'multipart/mixed; charset=binary', 'Content-Duration': '2000' });
      assert.equal(res.status, 200, await res.clone().text());
      const parts = parseMultipart(Buffer.from(await res.arrayBuffer()), boundaryOf(res.headers.get('content-type')));
      assert.deepEqual(parts.map((p) => p.headers['rendition-name']), LADDER, 'one part per rendition in ladder order');
      for (const part of parts) {
        const file = `${part.headers['rendition-name']}_${seq}.ts`;
        assert.equal(part.headers['content-type'], `video/mp2t; name="${file}"`);
        assert.equal(part.headers['content-disposition'], `attachment; filename="${file}"`);
        assert.equal(Number(part.headers['content-length']), part.body.length);
        const path = join(work, `part-${file}`);
        writeFileSync(path, part.body);
        const p = await probeSegment(path);
        assert.deepEqual([p.width, p.height], part.headers['rendition-name'] === 'P240p30fps16x9' ? [426, 240] : [256, 144], `${file} size`);
        assert.equal(await decodeErrors(path), '', `${file} decodes`);
      }
    }
    assert.equal(transcodedCount(), segments.length);

    // The stream is public under the webhook's manifest ID, never under the key.
    const master = (await fetchMaster(`${deployment.httpUrl}/stream/mapped.m3u8`))!;
    assert.deepEqual(master.variants.map((v) => v.uri), ['mapped/source.m3u8', ...LADDER.map((r) => `mapped/${r}.m3u8`)]);
    assert.equal((await fetch(`${deployment.httpUrl}/stream/key-mapped.m3u8`)).status, 404);
    assert.equal(webhookCalls.filter((c) => c.url.includes('/live/key-mapped/')).length, 1, 'the webhook is asked once per push session');
  });

  test('a retried push with the same bytes is answered from the stored result without a second transcode', async () => {
    const before = transcodedCount();
    const res = await push('key-mapped', 2, readFileSync(segments[2]!), { Accept: 'multipart/mixed' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('mediagate-replayed'), '1');
    const parts = parseMultipart(Buffer.from(await res.arrayBuffer()), boundaryOf(res.headers.get('content-type')));
    assert.equal(parts.length, LADDER.length);
    assert.equal(transcodedCount(), before, 'no new transcode job ran');
  });

  test('different bytes for an already pushed seq are refused with 409', async () => {
    const res = await push('key-mapped', 2, readFileSync(segments[3]!));
    assert.equal(res.status, 409);
    assert.match(((await res.json()) as { detail: { msg: string } }).detail.msg, /already pushed with different content/);
  });

  test('bad pushes get their contract status and a message naming the problem while another stream keeps working', { timeout: 120_000 }, async () => {
    const png = (await run('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x64', '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', '-'], { encoding: 'buffer' })).stdout as Buffer;
    const good = readFileSync(segments[0]!);
    const cases: { what: string; send: () => Promise<Response>; status: number; message: RegExp }[] = [
      { what: 'bad extension', send: () => push('key-other', 0, good, {}, 'POST', 'flv'), status: 400, message: /unsupported segment extension "\.flv"/ },
      { what: 'bad seq', send: () => push('key-other', 'abc', good), status: 400, message: /invalid sequence number "abc"/ },
      { what: 'negative seq', send: () => push('key-other', '-1', good), status: 400, message: /invalid sequence number/ },
      { what: 'dot-dot name', send: () => rawPost('/live/..%2F..%2Fetc/0.ts', good), status: 400, message: /invalid stream name/ },
      { what: 'dotted name', send: () => push('a.b', 0, good), status: 400, message: /invalid stream name/ },
      { what: 'slash in name', send: () => rawPost('/live/a/b/0.ts', good), status: 400, message: /push path must be/ },
      { what: 'oversize body', send: () => push('key-other', 0, randomBytes(3 * 1024 * 1024)), status: 413, message: /exceeds the limit of 2097152 bytes/ },
      { what: 'random bytes', send: () => push('key-other', 0, randomBytes(200_000)), status: 422, message: /./ },
      { what: 'a PNG', send: () => push('key-other', 1, png), status: 422, message: /./ },
      { what: 'empty body', send: () => push('key-other', 2, Buffer.alloc(0)), status: 422, message: /empty segment/ },
      { what: 'wrong method', send: () => push('key-other', 0, good, {}, 'GET'), status: 405, message: /GET is not allowed/ },
      { what: 'bad config JSON', send: () => push('key-cfg', 0, good, { 'Livepeer-Transcode-Configuration': '{"profiles": [' }), status: 400, message: /Livepeer-Transcode-Configuration/ },
      { what: 'webhook denies', send: () => push('key-denied', 0, good), status: 403, message: /auth webhook refused/ },
      { what: 'webhook times out', send: () => push('key-slow', 0, good), status: 403, message: /did not answer within 500 ms/ },
    ];
    let goodSeq = 0;
    for (const c of cases) {
      const res = await c.send();
      const body = (await res.json()) as { detail: { msg: string; code: string } };
      assert.equal(res.status, c.status, `${c.what}: ${JSON.stringify(body)}`);
      assert.match(body.detail.msg, c.message, c.what);
      // Meanwhile another stream is served normally.
      const other = await push('key-healthy', goodSeq, readFileSync(segments[goodSeq % segments.length]!));
      assert.equal(other.status, 200, `healthy stream after ${c.what}`);
      goodSeq += 1;
    }
    assert.equal((await fetch(`${deployment.httpUrl}/healthz`)).status, 200);
    const leftovers = readdirSync(join(deployment.dataDir, 'work', 'push'));
    assert.deepEqual(leftovers, [], 'no partial request bodies are left behind');
  });

  test('an .mp4 push is answered with MP4 renditions and listed in HLS as MPEG-TS', { timeout: 60_000 }, async () => {
    const mp4 = join(work, 'seg0.mp4');
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', segments[0]!, '-c', 'copy', '-f', 'mp4', mp4]);
    const res = await push('key-mp4', 0, readFileSync(mp4), { Accept: 'multipart/mixed' }, 'PUT', 'mp4');
    assert.equal(res.status, 200, await res.clone().text());
    const parts = parseMultipart(Buffer.from(await res.arrayBuffer()), boundaryOf(res.headers.get('content-type')));
    assert.deepEqual(parts.map((p) => p.headers['rendition-name']), LADDER, 'the webhook gave defaults: the configured ladder');
    for (const part of parts) {
      assert.equal(part.headers['content-type'], `video/mp4; name="${part.headers['rendition-name']}_0.mp4"`);
      const path = join(work, `mp4-${part.headers['rendition-name']}.mp4`);
      writeFileSync(path, part.body);
      assert.equal(await decodeErrors(path), '', 'the MP4 part decodes');
    }
    assert.deepEqual(readdirSync(join(deployment.dataDir, 'work', 'push')), [], 'request body and MP4 parts are gone once the reply is complete');
    const source = await fetchMedia(`${deployment.httpUrl}/stream/key-mp4/source.m3u8`);
    assert.deepEqual(source.segments.map((s) => seqOf(s.uri)), [0]);
    const seg = await fetch(`${deployment.httpUrl}/stream/key-mp4/source/0.ts`);
    assert.equal(seg.headers.get('content-type'), 'video/mp2t');
    assert.equal((await probeSegment(`${deployment.httpUrl}/stream/key-mp4/source/0.ts`)).width, 640);
  });

  test('an idle push session ends: every playlist gets ENDLIST and decodes', { timeout: 60_000 }, async () => {
    const lists = await waitForEndedPlaylists(deployment.httpUrl, 'mapped', LADDER.length + 1, 30_000);
    const window = Math.min(6, segments.length);
    for (const m of lists) assert.deepEqual(m.segments.map((s) => seqOf(s.uri)), Array.from({ length: window }, (_, i) => segments.length - window + i));
    for (const r of ['source', ...LADDER]) assert.equal(await decodeErrors(`${deployment.httpUrl}/stream/mapped/${r}.m3u8`), '', `${r} decodes`);
  });

  test('event webhooks arrive signed, and a receiver that never answers does not stall transcoding', { timeout: 60_000 }, async () => {
    const deadline = Date.now() + 20_000;
    const types = () => received.map((r) => JSON.parse(r.body) as { type: string; data: { manifestID: string } });
    while (Date.now() < deadline && !types().some((e) => e.type === 'stream.ended' && e.data.manifestID === 'mapped')) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const mapped = types().filter((e) => e.data.manifestID === 'mapped');
    assert.ok(mapped.some((e) => e.type === 'stream.started'));
    assert.ok(mapped.filter((e) => e.type === 'segment.transcoded').length >= segments.length);
    assert.ok(mapped.some((e) => e.type === 'stream.ended'));
    assert.ok(types().some((e) => e.type === 'segment.failed'), 'the undecodable pushes were reported');
    for (const r of received) {
      assert.ok(verifySignature(SECRET, r.body, r.headers['mediagate-signature'] as string), 'signature verifies');
      assert.ok(!r.body.includes('key-mapped'), 'no stream key in events');
    }
  });

  if (storage === 's3') {
    test('on S3, the pushed stream is in the bucket, and the replies left no downloaded copy behind', async () => {
      const page = await store.stores!.media.list('mapped/');
      const sources = page.objects.map((o) => o.key).filter((k) => /^mapped\/[^/]+\/source\/\d+\.ts$/.test(k));
      assert.deepEqual(sources.map((k) => k.replace(/^mapped\/[^/]+\//, '')).sort(), segments.map((_, i) => `source/${i}.ts`).sort());
      assert.equal(existsSync(join(deployment.dataDir, 'objects')), false, 'nothing written under storage.dir');
      assert.deepEqual(readdirSync(join(deployment.dataDir, 'work', 'storage')), [], 'multipart replies release their downloads');
    });
  }

  function rawPost(path: string, body: Buffer): Promise<Response> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: deployment.httpPort, path, method: 'POST', headers: { 'Content-Length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: res.headers as Record<string, string> })));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}
