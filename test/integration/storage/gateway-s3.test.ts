/**
 * The gateway process on an S3 store (s3rver in a child process, or the endpoint
 * MEDIAGATE_TEST_S3_ENDPOINT names): playback straight from the bucket with
 * storage.publicBaseUrl, AI result media in the bucket, `/healthz` while the store goes away and comes back, and the startup
 * check's messages for a missing bucket, denied access and an unreachable endpoint.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMedia, fetchText, decodeErrors, waitForEndedPlaylists } from '../../helpers/hls.ts';
import { freePort } from '../../helpers/ports.ts';
import { startFakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { pngSize } from '../../helpers/png.ts';
import { s3StorageEnv, startS3rver, testS3Target, type S3Target, type TestS3rver } from '../../helpers/s3rver.ts';

const run = promisify(execFile);
const STREAM_KEY = 's3-SECRET-key-91c2e4';
const MANIFEST_ID = 'bucketcast';
const LADDER = ['P144p30fps16x9'];

let redis: TestRedis;
let s3: Awaited<ReturnType<typeof testS3Target>>;
let target: S3Target;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let work: string;
let segments: string[] = [];
/** Where the bucket's objects are public: the bucket URL and this run's key prefix. */
let publicBaseUrl: string;

before(async () => {
  redis = await startRedis();
  s3 = await testS3Target();
  target = s3.target;
  publicBaseUrl = `${target.bucketUrl}/${target.prefix.replace(/\/$/, '')}`;
  deployment = await testDeployment(redis.url, {
    ...s3StorageEnv(target),
    MEDIAGATE_STORAGE_PUBLIC_BASE_URL: publicBaseUrl,
    MEDIAGATE_LADDER: LADDER.join(','),
    // The push session ends (ENDLIST) soon after the last push, so ffmpeg plays the playlists to their end.
    MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: '3000',
    MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: STREAM_KEY, manifestID: MANIFEST_ID }]),
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  work = mkdtempSync(join(tmpdir(), 'mg-s3-gw-'));
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(6), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(work, '%d.ts')]);
  segments = readdirSync(work).filter((f) => /^\d+\.ts$/.test(f)).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => join(work, f));
});

after(async () => {
  await gateway?.stop();
  await redis?.stop();
  await s3?.close();
  deployment?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('with storage.publicBaseUrl, media playlists point at the bucket, whose objects are the gateway\'s segments and play', { timeout: 120_000 }, async () => {
  for (let seq = 0; seq < segments.length; seq++) {
    const res = await fetch(`${deployment.httpUrl}/live/${STREAM_KEY}/${seq}.ts`, { method: 'POST', body: readFileSync(segments[seq]!), headers: { Accept: 'multipart/mixed' } });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
  }
  await waitForEndedPlaylists(deployment.httpUrl, MANIFEST_ID, LADDER.length + 1, 30_000);
  const sessions = new Set<string>();
  for (const rendition of ['source', ...LADDER]) {
    const playlistUrl = `${deployment.httpUrl}/stream/${MANIFEST_ID}/${rendition}.m3u8`;
    const media = await fetchMedia(playlistUrl);
    assert.equal(media.segments.length, segments.length, `${rendition} lists every pushed segment`);
    for (const [i, s] of media.segments.entries()) {
      const m = new RegExp(`^${escapeRegExp(publicBaseUrl)}/${MANIFEST_ID}/([a-z0-9]+)/${rendition}/${i}\\.ts$`).exec(s.uri);
      assert.ok(m, `segment URI ${s.uri} = <publicBaseUrl>/<manifestID>/<session>/<rendition>/<seq>.ts`);
      sessions.add(m[1]!);
      const direct = await fetch(s.uri);
      assert.equal(direct.status, 200, `${s.uri} is served by the bucket`);
      assert.equal(direct.headers.get('content-type'), 'video/mp2t', 'stored with the MPEG-TS content type');
      const viaGateway = await fetch(`${deployment.httpUrl}/stream/${MANIFEST_ID}/${rendition}/${i}.ts`);
      assert.equal(viaGateway.status, 200);
      assert.deepEqual(Buffer.from(await direct.arrayBuffer()), Buffer.from(await viaGateway.arrayBuffer()), 'the same bytes both ways');
    }
    const text = (await fetchText(playlistUrl)).text;
    assert.ok(!text.includes(STREAM_KEY), 'no stream key in the playlist');
    assert.equal(await decodeErrors(playlistUrl), '', `${rendition} plays from the bucket`);
  }
  assert.equal(sessions.size, 1, 'one publish session');
  // The source segment pushed first is stored as pushed, under the manifest ID and session only.
  const head = await fetch(`${publicBaseUrl}/${MANIFEST_ID}/${[...sessions][0]!}/source/0.ts`, { method: 'HEAD' });
  assert.equal(Number(head.headers.get('content-length')), readFileSync(segments[0]!).length);
  assert.deepEqual(readdirSync(join(deployment.dataDir, 'work', 'storage')), [], 'no downloaded copy is left behind');
  assert.deepEqual(gateway.lines.filter((l) => l.includes(target.secretAccessKey)), [], 'the secret key is never logged');
});

test('AI result media are stored in the bucket beside the segments and served by the gateway from there', async () => {
  const worker = await startFakeAiWorker({ pipelines: ['text-to-image'] });
  try {
    const reg = await fetch(`${deployment.httpUrl}/api/workers`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ url: worker.url, pipelines: [{ pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: true }] }),
    });
    assert.equal(reg.status, 201, await reg.text());
    const res = await fetch(`${deployment.httpUrl}/text-to-image`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'a bucket', width: 128, height: 64, model_id: 'stabilityai/sdxl-turbo' }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const { images } = (await res.json()) as { images: { url: string }[] };
    const m = /\/stream\/(ai-[0-9a-f]{24})\/(\d\.png)$/.exec(images[0]!.url);
    assert.ok(m, images[0]!.url);
    const viaGateway = await fetch(images[0]!.url);
    assert.equal(viaGateway.status, 200);
    assert.equal(viaGateway.headers.get('content-type'), 'image/png');
    const bytes = Buffer.from(await viaGateway.arrayBuffer());
    assert.deepEqual(pngSize(bytes), { width: 128, height: 64 });
    // Stored under the store's results prefix, with the image's content type.
    const direct = await fetch(`${target.bucketUrl}/${target.prefix}.results/${m[1]}/${m[2]}`);
    assert.equal(direct.status, 200);
    assert.equal(direct.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await direct.arrayBuffer()), bytes);
  } finally {
    await worker.close();
  }
});

test('/healthz reports the store: degraded with a reason while S3 is down, ok again once it is back', { timeout: 60_000 }, async () => {
  // Always a local s3rver: the test stops and restarts it.
  const server: TestS3rver = await startS3rver();
  const d = await testDeployment(redis.url, s3StorageEnv(server));
  const proc = spawnMediagate('gateway', d.env);
  try {
    await waitForHttp(`${d.httpUrl}/healthz`, proc);
    await checkHealthAcrossOutage(server, d.httpUrl);
  } finally {
    await proc.stop();
    d.cleanup();
    await server.destroy();
  }
});

async function checkHealthAcrossOutage(server: TestS3rver, httpUrl: string): Promise<void> {
  const ok = (await (await fetch(`${httpUrl}/healthz`)).json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> };
  assert.deepEqual(ok.checks['storage'], { ok: true });
  await server.stop();
  try {
    const res = await fetch(`${httpUrl}/healthz`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> };
    assert.equal(res.status, 503);
    assert.equal(body.status, 'degraded');
    assert.equal(body.checks['storage']!.ok, false);
    assert.match(body.checks['storage']!.detail ?? '', new RegExp(`cannot reach the S3 endpoint ${server.endpoint.replace(/[.]/g, '\\.')} for bucket ${server.bucket}`));
    assert.equal(body.checks['redis']!.ok, true, 'the other checks are unaffected');
  } finally {
    await server.start();
  }
  const back = await fetch(`${httpUrl}/healthz`);
  assert.equal(back.status, 200);
}

test('the gateway refuses to start on a missing bucket, denied access or an unreachable endpoint, saying which and what to do', { timeout: 120_000 }, async () => {
  const local = await startS3rver({ bucket: 'present' });
  const closedPort = await freePort();
  try {
    const cases: { what: string; env: Record<string, string>; message: RegExp }[] = [
      {
        what: 'missing bucket',
        env: { ...s3StorageEnv(local), MEDIAGATE_STORAGE_S3_BUCKET: 'no-such-bucket' },
        message: new RegExp(`bucket no-such-bucket at ${local.endpoint.replace(/[.]/g, '\\.')} does not exist: create it`),
      },
      {
        what: 'access denied',
        env: { ...s3StorageEnv(local), AWS_ACCESS_KEY_ID: 'WRONGKEY', AWS_SECRET_ACCESS_KEY: 'wrong-secret-value' },
        message: /access denied to bucket present at .*AWS_ACCESS_KEY_ID/,
      },
      {
        what: 'unreachable',
        env: { ...s3StorageEnv(local), MEDIAGATE_STORAGE_S3_ENDPOINT: `http://127.0.0.1:${closedPort}`, MEDIAGATE_STORAGE_S3_MAX_ATTEMPTS: '2' },
        message: new RegExp(`cannot reach the S3 endpoint http://127\\.0\\.0\\.1:${closedPort} for bucket present .*storage\\.s3\\.endpoint`),
      },
    ];
    for (const c of cases) {
      const d = await testDeployment(redis.url, c.env);
      const proc = spawnMediagate('gateway', d.env);
      try {
        const { code } = await proc.exited;
        assert.equal(code, 1, `${c.what}: exits with 1`);
        const fatal = proc.lines.find((l) => l.includes('"msg":"cannot start"')) ?? '';
        assert.match(fatal, c.message, `${c.what}: ${proc.lines.slice(-5).join('\n')}`);
        assert.ok(!proc.lines.some((l) => l.includes('wrong-secret-value')), `${c.what}: no secret in the log`);
      } finally {
        await proc.stop();
        d.cleanup();
      }
    }
  } finally {
    await local.destroy();
  }
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
