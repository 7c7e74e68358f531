/**
 * Failover of a live transcoding session: a gateway without an embedded transcoder and two
 * transcoder processes on one Redis; an RTMP publish of the clip in real time is leased to
 * one transcoder, which is SIGKILLed (with its ffmpeg) mid-stream. The other takes the
 * stream over within two segment durations (plus slack for a loaded machine), every seq is
 * listed in every rendition playlist, each rendition carries a discontinuity at the takeover,
 * and the ledger holds one transcode charge per listed segment.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { crashProcessTree, spawnMediagate, testDeployment, waitForHttp, publish, waitForListedSegments, type MediagateProcess, type TestDeployment, waitUntil, logLines } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { seqOf, waitForEndedPlaylists } from '../../helpers/hls.ts';

const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
const SEGMENT_MS = 2000;
/** The bound is two segment durations; one more is slack for a loaded 2-core machine. */
const TAKEOVER_BOUND_MS = 3 * SEGMENT_MS;
const MANIFEST = 'failover-live';

let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
const transcoders: MediagateProcess[] = [];

before(async () => {
  redis = await startRedis();
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_LADDER: LADDER.join(','), MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_HLS_WINDOW_SEGMENTS: '50', MEDIAGATE_TRANSCODE_METRICS_PORT: '0',
    MEDIAGATE_TRANSCODE_LIVE_SESSIONS: 'true',
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  for (let i = 0; i < 2; i++) transcoders.push(spawnMediagate('transcoder', deployment.env));
  await Promise.all(transcoders.map((t) => waitUntil(() => t.lines.some((l) => l.includes('transcoder ready')), 30_000, () => `transcoder did not start:\n${t.lines.join('\n')}`)));
});

after(async () => {
  await Promise.all([gateway?.stop(), ...transcoders.map((t) => t.stop())]);
  await redis?.stop();
  deployment?.cleanup();
});



test('SIGKILL of the transcoder that owns a live stream: the other continues within two segment durations, every seq in every rendition, a discontinuity, one charge per segment', { timeout: 85_000 }, async () => {
  const publisher = publish(await clipWith2sGop(24), `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${MANIFEST}`);
  try {
    await waitUntil(() => transcoders.some((t) => logLines(t, 'live session claimed').length > 0), 20_000, () => `no transcoder claimed the stream:\n${gateway.lines.slice(-20).join('\n')}`);
    const owner = transcoders.find((t) => logLines(t, 'live session claimed').length > 0)!;
    const other = transcoders.find((t) => t !== owner)!;
    // A few segments made by the owner first.
    await waitForListedSegments(`${deployment.httpUrl}/stream/${MANIFEST}/${LADDER[1]}.m3u8`, 3, gateway, 30_000);
    assert.equal(logLines(owner, 'segment transcoded').length >= 3, true, 'the owner made the first segments');
    const killedAt = Date.now();
    await crashProcessTree(owner);
    await waitUntil(() => logLines(other, 'live session claimed').length > 0, 20_000, () => `no takeover:\n${other.lines.slice(-20).join('\n')}`);
    const claimed = logLines(other, 'live session claimed')[0]!;
    const takeoverMs = Number(claimed['time']) - killedAt;
    process.stdout.write(`# takeover: claimed ${takeoverMs} ms after the SIGKILL, resuming at seq ${String(claimed['nextSeq'])}\n`);
    assert.equal(claimed['takeover'], true);
    assert.ok(takeoverMs <= TAKEOVER_BOUND_MS, `taken over ${takeoverMs} ms after the kill (bound ${TAKEOVER_BOUND_MS} ms)`);
    assert.equal(await publisher.exited, 0, publisher.stderr());
  } finally {
    publisher.child.kill('SIGKILL');
  }

  const lists = await waitForEndedPlaylists(deployment.httpUrl, MANIFEST, LADDER.length + 1, 40_000);
  const sourceSeqs = lists[0]!.segments.map((s) => seqOf(s.uri));
  assert.ok(sourceSeqs.length >= 10, `about 12 segments, got ${sourceSeqs.length}`);
  assert.deepEqual(sourceSeqs, sourceSeqs.map((_, i) => i), 'source: every seq, in order');
  assert.equal(lists[0]!.segments.filter((s) => s.discontinuity).length, 0, 'the source rendition has no discontinuity');
  for (const [i, list] of lists.slice(1).entries()) {
    assert.deepEqual(list.segments.map((s) => seqOf(s.uri)), sourceSeqs, `${LADDER[i]}: every seq present, no hole`);
    const marked = list.segments.filter((s) => s.discontinuity).map((s) => seqOf(s.uri));
    assert.ok(marked.length >= 1, `${LADDER[i]}: a discontinuity at the takeover`);
  }
  // One charge per segment: every seq is listed in the renditions, so every seq is charged, once.
  const res = await fetch(`${deployment.httpUrl}/api/accounts/local/ledger?limit=1000`);
  const entries = ((await res.json()) as { entries: { kind: string; manifestID?: string; seq?: number }[] }).entries
    .filter((e) => e.kind === 'transcode' && e.manifestID === MANIFEST);
  const seqs = entries.map((e) => e.seq!).sort((a, b) => a - b);
  assert.deepEqual(seqs, sourceSeqs, 'one transcode charge per seq, none twice');
});
