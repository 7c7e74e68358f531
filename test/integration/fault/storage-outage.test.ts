/**
 * Fault suite, object store: the gateway as a real process (embedded transcoder, recording on)
 * storing in a real s3rver that the test stops and starts again on the same port and directory.
 *
 * - A 10 s outage in the middle of a real-time RTMP publish of the clip: the stream goes on
 *   (the publisher is not kicked, segments are listed after the restart), every URI of every
 *   media playlist answers 200 at the end (nothing is listed before its object is stored),
 *   the recording has every segment or an explicit discontinuity, and `/healthz` is degraded
 *   during the outage and ok after it.
 * - An outage longer than `storage.outageBudgetMs`: the stream ends with reason
 *   "object store unavailable", logged with the stream.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { startS3rver, s3StorageEnv, type TestS3rver } from '../../helpers/s3rver.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, seqOf, waitForEndedPlaylists, type MediaPlaylist } from '../../helpers/hls.ts';

const run = promisify(execFile);
const RENDITION = 'P144p30fps16x9';
const PUBLISH_SECONDS = 26;
const OUTAGE_MS = 10_000;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Health { status: number; body: { status: string; checks: Record<string, { ok: boolean; detail?: string }> } }

async function healthz(httpUrl: string): Promise<Health> {
  const res = await fetch(`${httpUrl}/healthz`);
  return { status: res.status, body: await res.json() as Health['body'] };
}

function logged(gateway: MediagateProcess, msg: string): Record<string, unknown>[] {
  return gateway.lines
    .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
    .filter((o): o is Record<string, unknown> => o?.['msg'] === msg);
}

async function setUp(manifestID: string, extraEnv: Record<string, string> = {}): Promise<{ s3: TestS3rver; gateway: MediagateProcess; deployment: TestDeployment; streamKey: string; pushKey: string }> {
  const redis: TestRedis = await startRedis();
  cleanups.push(() => redis.stop());
  const s3 = await startS3rver();
  cleanups.push(() => s3.destroy());
  const streamKey = `${manifestID}-SECRET-key-5e6f`;
  const pushKey = `${manifestID}-push-SECRET-key-7a8b`;
  const deployment = await testDeployment(redis.url, {
    ...s3StorageEnv(s3),
    ...extraEnv,
    MEDIAGATE_LADDER: RENDITION,
    MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey, manifestID }, { streamKey: pushKey, manifestID: `${manifestID}-push` }]),
    MEDIAGATE_RECORDING_ENABLED: 'true',
    MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '300',
    // Every segment of the publish stays in the live window, so the final playlists show all of them.
    MEDIAGATE_HLS_WINDOW_SEGMENTS: '60',
    MEDIAGATE_LOG_LEVEL: 'debug',
  });
  const gateway = spawnMediagate('gateway', deployment.env);
  cleanups.push(async () => { await gateway.stop(); deployment.cleanup(); });
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  return { s3, gateway, deployment, streamKey, pushKey };
}

/** Waits until the source playlist of `manifestID` lists at least `count` segments; returns how many. */
async function waitForListed(httpUrl: string, manifestID: string, count: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let listed = 0;
  while (Date.now() < deadline) {
    if (await fetchMaster(`${httpUrl}/stream/${manifestID}.m3u8`)) listed = (await fetchMedia(`${httpUrl}/stream/${manifestID}/source.m3u8`)).segments.length;
    if (listed >= count) return listed;
    await new Promise((r) => setTimeout(r, 250));
  }
  return listed;
}

async function status(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

test('a 10 s S3 outage mid-stream: the stream goes on, nothing is listed before it is stored, the recording has every segment or a discontinuity, /healthz degraded then ok', { timeout: 200_000 }, async (t) => {
  const manifestID = 's3outage';
  const { s3, gateway, deployment, streamKey } = await setUp(manifestID);
  const publisher = publish(await clipWith2sGop(PUBLISH_SECONDS), `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${streamKey}`);
  cleanups.push(() => { publisher.child.kill('SIGKILL'); });

  const listedBefore = await waitForListed(deployment.httpUrl, manifestID, 3, 60_000);
  assert.ok(listedBefore >= 3, `the stream started listing before the outage (listed ${listedBefore})`);
  await s3.stop();
  const stoppedAtMs = Date.now();
  // /healthz reports the store while it is down.
  let degraded: Health | undefined;
  while (Date.now() - stoppedAtMs < OUTAGE_MS) {
    const h = await healthz(deployment.httpUrl);
    if (h.status === 503 && h.body.checks['storage']?.ok === false) degraded ??= h;
    await new Promise((r) => setTimeout(r, 500));
  }
  const listedDuring = (await fetchMedia(`${deployment.httpUrl}/stream/${manifestID}/source.m3u8`)).segments.length;
  await s3.start();
  t.diagnostic(`s3rver down for ${Date.now() - stoppedAtMs} ms; source listed ${listedBefore} before, ${listedDuring} at the restart`);
  assert.ok(degraded, '/healthz was degraded with a failing storage check during the outage');
  assert.equal(degraded!.body.status, 'degraded');
  assert.match(degraded!.body.checks['storage']!.detail ?? '', /./, 'the storage check says why');

  // The publisher was not kicked: it ran the whole clip.
  assert.equal(await publisher.exited, 0, `publisher failed: ${publisher.stderr()}`);
  const lists: MediaPlaylist[] = await waitForEndedPlaylists(deployment.httpUrl, manifestID, 2, 90_000);
  const after = await healthz(deployment.httpUrl);
  assert.equal(after.status, 200, `healthy again after the restart: ${JSON.stringify(after.body)}`);

  // The outage hit the media path, which waited it out instead of ending the stream.
  assert.ok(logged(gateway, 'object store unavailable; retrying').length > 0, 'store operations were retried during the outage');
  assert.deepEqual(logged(gateway, 'object store unavailable past the bound: ending the stream'), []);
  // Within storage.outageBudgetMs (30 s) nothing is given up: no source segment lost, no transcode failed for good.
  assert.deepEqual(logged(gateway, 'source segment lost; it is resolved as failed (a discontinuity) once Redis answers'), []);
  assert.deepEqual(logged(gateway, 'segment failed for good'), []);
  const ended = logged(gateway, 'stream ended');
  assert.equal(ended.length, 1);
  assert.notEqual(ended[0]!['reason'], 'object store unavailable', 'the stream ended when its input did');

  // New segments were listed after the restart, and every listed URI is there.
  const sourceSeqs = lists[0]!.segments.map((s) => seqOf(s.uri));
  assert.ok(sourceSeqs.length > listedDuring + 3, `segments listed after the restart (${listedDuring} at the restart, ${sourceSeqs.length} at the end)`);
  assert.ok(Math.max(...sourceSeqs) >= PUBLISH_SECONDS / 2 - 2, `the stream went on to the end of the publish (last seq ${Math.max(...sourceSeqs)})`);
  const master = (await fetchMaster(`${deployment.httpUrl}/stream/${manifestID}.m3u8`))!;
  for (const [i, m] of lists.entries()) {
    const base = `${deployment.httpUrl}/stream/${master.variants[i]!.uri}`;
    for (const s of m.segments) assert.equal(await status(new URL(s.uri, base).href), 200, `${s.uri} of rendition ${i} is stored`);
    assert.deepEqual(m.segments.map((s) => seqOf(s.uri)), sourceSeqs.map((_, k) => k), `rendition ${i} lists every seq from 0`);
  }

  // The recording: every seq, or an explicit discontinuity where one is missing.
  const deadline = Date.now() + 60_000;
  let recording: { session: string; state: string; renditions?: { name: string; playlistUrl: string }[] } | undefined;
  while (Date.now() < deadline) {
    const res = await fetch(`${deployment.httpUrl}/api/streams/${manifestID}/recordings`);
    recording = ((await res.json()) as { recordings: NonNullable<typeof recording>[] }).recordings[0];
    if (recording?.state === 'ready') break;
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(recording?.state, 'ready', JSON.stringify(recording));
  assert.deepEqual(recording!.renditions!.map((r) => r.name), ['source', RENDITION]);
  for (const rendition of recording!.renditions!) {
    const media = await fetchMedia(rendition.playlistUrl);
    assert.equal(media.endlist, true);
    const seqs = media.segments.map((s) => seqOf(s.uri));
    assert.ok(seqs.length >= PUBLISH_SECONDS / 2 - 3, `${rendition.name}: ${seqs.length} segments recorded`);
    for (const [k, s] of media.segments.entries()) {
      if (k > 0 && seqs[k]! !== seqs[k - 1]! + 1) assert.ok(s.discontinuity, `${rendition.name}: the gap before seq ${seqs[k]} is marked EXT-X-DISCONTINUITY`);
      assert.equal(await status(new URL(s.uri, rendition.playlistUrl).href), 200, `${rendition.name}: recorded ${s.uri} is stored`);
    }
    const gaps = media.segments.filter((s) => s.discontinuity).length;
    t.diagnostic(`recording ${rendition.name}: ${seqs.length} segments, seqs ${seqs[0]}..${seqs.at(-1)}, ${gaps} discontinuities`);
  }
  assert.deepEqual(gateway.lines.filter((l) => l.includes(streamKey)), [], 'the stream key never appears in the gateway log');
});

test('an S3 outage longer than storage.outageBudgetMs ends the stream with the reason "object store unavailable"; a push meanwhile gets 503 STORAGE_UNAVAILABLE', { timeout: 120_000 }, async () => {
  const manifestID = 's3down';
  const { s3, gateway, deployment, streamKey, pushKey } = await setUp(manifestID, { MEDIAGATE_STORAGE_OUTAGE_BUDGET_MS: '3000' });
  const segment = join(deployment.dataDir, 'push-0.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', await clipWith2sGop(4), '-t', '2', '-c', 'copy', '-f', 'mpegts', segment]);
  const publisher = publish(await clipWith2sGop(PUBLISH_SECONDS), `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${streamKey}`);
  cleanups.push(() => { publisher.child.kill('SIGKILL'); });
  assert.ok(await waitForListed(deployment.httpUrl, manifestID, 2, 60_000) >= 2, 'the stream started listing');
  await s3.stop();
  const stoppedAtMs = Date.now();

  // An HTTP push makes one attempt: 503 naming the store, with Retry-After.
  const pushed = await fetch(`${deployment.httpUrl}/live/${pushKey}/0.ts`, { method: 'POST', body: readFileSync(segment) });
  const pushedBody = await pushed.json() as { detail: { msg: string; code: string } };
  assert.equal(pushed.status, 503, JSON.stringify(pushedBody));
  assert.equal(pushedBody.detail.code, 'STORAGE_UNAVAILABLE');
  assert.match(pushedBody.detail.msg, /object store/);
  assert.ok(Number(pushed.headers.get('retry-after')) >= 1, 'with Retry-After');

  // The publisher is disconnected well before the clip ends.
  const code = await publisher.exited;
  const disconnectedAfterMs = Date.now() - stoppedAtMs;
  await s3.start();
  assert.ok(disconnectedAfterMs < (PUBLISH_SECONDS - 4) * 1000, `the publisher was disconnected ${disconnectedAfterMs} ms into the outage (exit ${code})`);
  const bound = logged(gateway, 'object store unavailable past the bound: ending the stream');
  assert.equal(bound.length, 1, 'the bound is logged once');
  assert.equal(bound[0]!['reason'], 'object store unavailable');
  assert.equal(bound[0]!['manifestID'], manifestID, 'the log names the stream');
  assert.match(String(bound[0]!['detail']), /storage\.outageBudgetMs/);
  const deadline = Date.now() + 30_000;
  while (logged(gateway, 'stream ended').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const ended = logged(gateway, 'stream ended');
  assert.equal(ended.length, 1, 'the stream ended');
  assert.equal(ended[0]!['reason'], 'object store unavailable');
  // The live playlists end, with nothing listed that is not stored.
  const lists = await waitForEndedPlaylists(deployment.httpUrl, manifestID, 2, 60_000);
  const master = (await fetchMaster(`${deployment.httpUrl}/stream/${manifestID}.m3u8`))!;
  for (const [i, m] of lists.entries()) {
    const base = `${deployment.httpUrl}/stream/${master.variants[i]!.uri}`;
    for (const s of m.segments) assert.equal(await status(new URL(s.uri, base).href), 200, `${s.uri} of rendition ${i} is stored`);
  }
  assert.deepEqual(gateway.lines.filter((l) => l.includes(streamKey) || l.includes(pushKey)), [], 'no stream key in the gateway log');
});
