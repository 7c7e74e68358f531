/**
 * Fault suite, Redis: the gateway as a real process (embedded transcoder) on a real
 * redis-server that the test stops and starts again on the same port.
 *
 * - With AOF persistence: a 10 s outage in the middle of a real-time RTMP publish of the
 *   clip loses no completed segment; every seq is listed in source and every rendition and
 *   the stream ends with ENDLIST.
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
import { fetchMaster, fetchMedia, seqOf, waitForEndedPlaylists } from '../../helpers/hls.ts';

const run = promisify(execFile);
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
const PUBLISH_SECONDS = 24;
const OUTAGE_MS = 10_000;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function gatewayOn(redis: RestartableRedis, streamKey: string, manifestID: string): Promise<{ gateway: MediagateProcess; deployment: TestDeployment }> {
  const deployment = await testDeployment(redis.url, {
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

test('a 10 s Redis outage (AOF on) mid-stream loses no completed segment: every seq is listed in every rendition and the stream ends', { timeout: 240_000 }, async () => {
  const redis = await startRestartableRedis({ appendOnly: true });
  cleanups.push(() => redis.destroy());
  const { gateway, deployment } = await gatewayOn(redis, 'outage-SECRET-key-1b2c', 'outage');
  const input = await clipWith2sGop(PUBLISH_SECONDS);
  const publisher = publish(input, `rtmp://127.0.0.1:${deployment.rtmpPort}/live/outage-SECRET-key-1b2c`);
  cleanups.push(() => { publisher.child.kill('SIGKILL'); });

  // Stop Redis once the stream is flowing (three source segments listed), keep it down for 10 s.
  const deadline = Date.now() + 60_000;
  let listedBefore = 0;
  while (Date.now() < deadline) {
    const master = await fetchMaster(`${deployment.httpUrl}/stream/outage.m3u8`);
    if (master) listedBefore = (await fetchMedia(`${deployment.httpUrl}/stream/outage/source.m3u8`)).segments.length;
    if (listedBefore >= 3) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(listedBefore >= 3, `the stream started listing before the outage (listed ${listedBefore})`);
  await redis.stop();
  const stoppedAtMs = Date.now();
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  await redis.start();
  process.stdout.write(`# redis down for ${Date.now() - stoppedAtMs} ms with ${listedBefore} source segments listed before\n`);

  assert.equal(await publisher.exited, 0, `publisher failed: ${publisher.stderr()}`);
  const lists = await waitForEndedPlaylists(deployment.httpUrl, 'outage', LADDER.length + 1, 120_000);

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
});
