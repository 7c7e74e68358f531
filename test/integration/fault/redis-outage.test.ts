/**
 * Fault suite, Redis: the gateway as a real process (embedded transcoder) on a real
 * redis-server that the test stops and starts again on the same port.
 *
 * - With AOF persistence: a 10 s outage in the middle of a real-time RTMP publish of the
 *   clip loses no completed segment; every seq is listed in source and every rendition and
 *   the stream ends with ENDLIST.
 * - An outage longer than the retry budget: the segments that missed their deadline are
 *   logged as lost and skipped with a discontinuity once Redis is back; the stream goes on
 *   and ends (nothing freezes).
 * - Without persistence: while Redis is down an HTTP push gets 503 + Retry-After (not 500);
 *   after Redis comes back empty, /healthz is degraded and names the missing `local` account,
 *   and a publish is refused with an error naming the account as missing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRestartableRedis, type RestartableRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, seqOf, waitForEndedPlaylists, type MediaPlaylist } from '../../helpers/hls.ts';

const run = promisify(execFile);
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
const PUBLISH_SECONDS = 24;
const OUTAGE_MS = 10_000;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function gatewayOn(redis: RestartableRedis, streamKey: string, manifestID: string, extraEnv: Record<string, string> = {}): Promise<{ gateway: MediagateProcess; deployment: TestDeployment }> {
  const deployment = await testDeployment(redis.url, {
    ...extraEnv,
    MEDIAGATE_LADDER: LADDER.join(','),
    MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey, manifestID }]),
    // Every segment of the publish stays in the playlist window, so the final playlists show all of them.
    MEDIAGATE_HLS_WINDOW_SEGMENTS: '60',
  });
  const gateway = spawnMediagate('gateway', deployment.env);
  cleanups.push(async () => { await gateway.stop(); deployment.cleanup(); });
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  return { gateway, deployment };
}

async function healthz(httpUrl: string): Promise<{ status: number; body: { status: string; checks: Record<string, { ok: boolean; detail?: string }> } }> {
  const res = await fetch(`${httpUrl}/healthz`);
  return { status: res.status, body: await res.json() as { status: string; checks: Record<string, { ok: boolean; detail?: string }> } };
}

function logged(gateway: MediagateProcess, msg: string): Record<string, unknown>[] {
  return gateway.lines
    .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
    .filter((o): o is Record<string, unknown> => o?.['msg'] === msg);
}

/**
 * Publishes the clip in real time on `redis`'s gateway, stops Redis for 10 s once three
 * source segments are listed, starts it again, and waits for every playlist's ENDLIST.
 */
async function publishThroughOutage(redis: RestartableRedis, manifestID: string, extraEnv: Record<string, string> = {}): Promise<{ gateway: MediagateProcess; deployment: TestDeployment; lists: MediaPlaylist[] }> {
  const streamKey = `${manifestID}-SECRET-key-1b2c`;
  const { gateway, deployment } = await gatewayOn(redis, streamKey, manifestID, extraEnv);
  const input = await clipWith2sGop(PUBLISH_SECONDS);
  const publisher = publish(input, `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${streamKey}`);
  cleanups.push(() => { publisher.child.kill('SIGKILL'); });

  // Stop Redis once the stream is flowing (three source segments listed), keep it down for 10 s.
  const deadline = Date.now() + 60_000;
  let listedBefore = 0;
  while (Date.now() < deadline) {
    const master = await fetchMaster(`${deployment.httpUrl}/stream/${manifestID}.m3u8`);
    if (master) listedBefore = (await fetchMedia(`${deployment.httpUrl}/stream/${manifestID}/source.m3u8`)).segments.length;
    if (listedBefore >= 3) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(listedBefore >= 3, `the stream started listing before the outage (listed ${listedBefore})`);
  await redis.stop();
  const stoppedAtMs = Date.now();
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  await redis.start();
  process.stdout.write(`# ${manifestID}: redis down for ${Date.now() - stoppedAtMs} ms with ${listedBefore} source segments listed before\n`);

  assert.equal(await publisher.exited, 0, `publisher failed: ${publisher.stderr()}`);
  const lists = await waitForEndedPlaylists(deployment.httpUrl, manifestID, LADDER.length + 1, 120_000);
  return { gateway, deployment, lists };
}

test('a 10 s Redis outage (AOF on) mid-stream loses no completed segment: every seq is listed in every rendition and the stream ends', { timeout: 240_000 }, async () => {
  const redis = await startRestartableRedis({ appendOnly: true });
  cleanups.push(() => redis.destroy());
  const { gateway, deployment, lists } = await publishThroughOutage(redis, 'outage');

  // Every segment the segmenter completed is listed, in every rendition, with nothing skipped.
  const cut = logged(gateway, 'source segment listed').map((o) => o['seq'] as number);
  const sourceSeqs = lists[0]!.segments.map((s) => seqOf(s.uri));
  const expected = Array.from({ length: sourceSeqs.length }, (_, i) => i);
  assert.ok(sourceSeqs.length >= PUBLISH_SECONDS / 2 - 1, `about ${PUBLISH_SECONDS / 2} segments, got ${sourceSeqs.length}`);
  for (const [i, m] of lists.entries()) {
    const seqs = m.segments.map((s) => seqOf(s.uri));
    assert.deepEqual(seqs, expected, `rendition ${i} lists every seq 0..${expected.length - 1}`);
    assert.ok(m.segments.every((s) => !s.discontinuity), `rendition ${i} skipped nothing (no discontinuity)`);
    assert.ok(m.endlist, `rendition ${i} ended`);
  }
  assert.deepEqual([...new Set(cut)].sort((a, b) => a - b), expected, 'every listed source segment is one the gateway logged as listed');
  const totalS = lists[0]!.segments.reduce((sum, s) => sum + s.duration, 0);
  assert.ok(totalS >= PUBLISH_SECONDS - 2.5, `the source playlist covers the publish (${totalS.toFixed(1)} s of ${PUBLISH_SECONDS} s)`);

  // The outage really hit the media path, and nothing was given up.
  assert.ok(logged(gateway, 'redis unavailable; retrying').length > 0, 'the gateway retried Redis operations during the outage');
  assert.deepEqual(logged(gateway, 'source segment lost; it is resolved as failed (a discontinuity) once Redis answers'), []);
  const health = await healthz(deployment.httpUrl);
  assert.equal(health.status, 200, `healthy again after the restart: ${JSON.stringify(health.body)}`);
});

test('an outage longer than the retry budget: segments past their deadline are logged as lost and skipped with a discontinuity, and the stream goes on and ends', { timeout: 240_000 }, async () => {
  const redis = await startRestartableRedis({ appendOnly: true });
  cleanups.push(() => redis.destroy());
  // A 2 s budget against the 10 s outage.
  const { gateway, lists } = await publishThroughOutage(redis, 'longoutage', { MEDIAGATE_REDIS_MEDIA_RETRY_BUDGET_MS: '2000' });

  const lost = logged(gateway, 'source segment lost; it is resolved as failed (a discontinuity) once Redis answers');
  assert.ok(lost.length >= 1, 'segments that missed their deadline are logged as lost');
  for (const o of lost) assert.equal(typeof o['seq'], 'number', 'the log names the lost seq');
  const lostSeqs = new Set(lost.map((o) => o['seq'] as number));
  const resolved = new Set(logged(gateway, 'lost segment resolved as failed').map((o) => o['seq'] as number));
  assert.deepEqual([...resolved].sort((a, b) => a - b), [...lostSeqs].sort((a, b) => a - b), 'every lost seq was resolved as failed once Redis answered');

  const source = lists[0]!;
  const sourceSeqs = source.segments.map((s) => seqOf(s.uri));
  process.stdout.write(`# longoutage: lost seqs ${JSON.stringify([...lostSeqs])}, source lists ${JSON.stringify(sourceSeqs)}\n`);
  const lastSeq = Math.max(...sourceSeqs, ...lostSeqs);
  assert.ok(lastSeq >= PUBLISH_SECONDS / 2 - 2, `the stream went on to the end of the publish (last seq ${lastSeq})`);
  assert.ok(sourceSeqs.some((seq) => seq > Math.max(...lostSeqs)), 'segments after the lost ones are listed');
  for (const [i, m] of lists.entries()) {
    const seqs = m.segments.map((s) => seqOf(s.uri));
    assert.ok(seqs.every((seq, k) => k === 0 || seq > seqs[k - 1]!), `rendition ${i} lists in seq order`);
    assert.ok(m.segments.some((s) => s.discontinuity), `rendition ${i} marks the skipped segments with a discontinuity`);
    assert.ok(m.endlist, `rendition ${i} ended`);
  }
  for (const seq of lostSeqs) {
    const o = lost.find((x) => x['seq'] === seq)!;
    if (o['sourceListed'] !== true) assert.ok(!sourceSeqs.includes(seq), `lost seq ${seq} is not listed in source`);
  }
});

test('Redis restarted without persistence: pushes get 503 + Retry-After while it is down, then /healthz names the missing local account and publishes are refused naming it', { timeout: 120_000 }, async () => {
  const redis = await startRestartableRedis({ appendOnly: false });
  cleanups.push(() => redis.destroy());
  const streamKey = 'nopersist-SECRET-key-9d8e';
  const { gateway, deployment } = await gatewayOn(redis, streamKey, 'nopersist');
  const before = await healthz(deployment.httpUrl);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  assert.deepEqual(before.body.checks['state'], { ok: true }, 'the state check runs on a loopback gateway with payments');

  // A 2 s MPEG-TS segment of the clip to push.
  const work = mkdtempSync(join(tmpdir(), 'mg-fault-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const segment = join(work, '0.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', await clipWith2sGop(4), '-t', '2', '-c', 'copy', '-f', 'mpegts', segment]);
  const body = readFileSync(segment);
  const push = (seq: number): Promise<Response> => fetch(`${deployment.httpUrl}/live/${streamKey}/${seq}.ts`, { method: 'POST', body });

  await redis.stop();
  const startedAtMs = Date.now();
  const down = await push(0);
  const downBody = await down.json() as { detail: { msg: string; code: string } };
  assert.equal(down.status, 503, `a push while Redis is down: ${JSON.stringify(downBody)}`);
  assert.ok(Number(down.headers.get('retry-after')) >= 1, 'with Retry-After');
  assert.equal(downBody.detail.code, 'REDIS_UNAVAILABLE');
  assert.match(downBody.detail.msg, /Redis/);
  assert.ok(Date.now() - startedAtMs < 30_000, 'answered within the push reply timeout');

  // Redis comes back without its data: the local account is gone.
  await redis.start();
  let health = await healthz(deployment.httpUrl);
  for (const until = Date.now() + 20_000; Date.now() < until && (health.body.checks['redis']?.ok !== true || health.status === 200);) {
    await new Promise((r) => setTimeout(r, 250));
    health = await healthz(deployment.httpUrl);
  }
  assert.equal(health.status, 503, `degraded: ${JSON.stringify(health.body)}`);
  assert.equal(health.body.status, 'degraded');
  assert.equal(health.body.checks['redis']?.ok, true, 'Redis itself answers');
  assert.equal(health.body.checks['state']?.ok, false);
  assert.match(health.body.checks['state']?.detail ?? '', /account local is missing/);
  assert.match(health.body.checks['state']?.detail ?? '', /appendonly yes/, 'the check says what to do');

  const refused = await push(0);
  const refusedBody = await refused.json() as { detail: { msg: string; code: string } };
  assert.equal(refused.status, 403, JSON.stringify(refusedBody));
  assert.match(refusedBody.detail.msg, /account local does not exist/);
  assert.doesNotMatch(refusedBody.detail.msg, /no credits/);

  const linesBefore = gateway.lines.length;
  const publisher = publish(await clipWith2sGop(4), `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${streamKey}`);
  const killer = setTimeout(() => publisher.child.kill('SIGKILL'), 15_000);
  const code = await publisher.exited;
  clearTimeout(killer);
  assert.notEqual(code, 0, 'the RTMP publish was refused');
  const reasons = gateway.lines.slice(linesBefore)
    .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
    .filter((o) => o?.['msg'] === 'publish refused').map((o) => String(o!['reason']));
  assert.ok(reasons.some((r) => /account local does not exist/.test(r)), `publish refusal names the missing account: ${JSON.stringify(reasons)}`);
  // The 503s above are logged with the request path; the stream key in it must not be.
  const leaked = gateway.lines.filter((l) => l.includes(streamKey));
  assert.deepEqual(leaked, [], 'the stream key never appears in the gateway log');
});
