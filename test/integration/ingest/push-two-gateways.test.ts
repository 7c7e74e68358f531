/**
 * Stateless HTTP push (issue 15, item 2): two gateway processes on one redis-server and one
 * S3 object store (s3rver in a child process), each with its embedded transcoder, take the
 * pushes of one stream alternately, as a round-robin load balancer would send them. Real
 * segments of the clip, real ffmpeg, the event webhooks delivered to a real receiver.
 *
 * - One session and one playlist: every seq listed once, each segment transcoded once and
 *   charged once (ledger), a retry on the other gateway answered from the stored result;
 *   the idle end runs once (one `stream.ended` event, one "stream ended" in the logs).
 * - The gateway that took the pushes is SIGKILLed: the other gateway, which never saw the
 *   stream, still runs its idle end once.
 * The Redis commands per pushed segment (`INFO commandstats`) are printed as diagnostics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandStats, commandStatsDelta, startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { crashProcessTree, logLines, spawnMediagate, testDeployment, waitForHttp, waitUntil, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { e2eStore, type E2eStore } from '../../helpers/s3rver.ts';
import { fetchMedia, seqOf, waitForEndedPlaylists } from '../../helpers/hls.ts';
import { cutPushSegments, pushSegment, startEventReceiver, type EventReceiver } from '../../helpers/push-client.ts';

const LADDER = ['P144p30fps16x9'];
const IDLE_MS = 4000;

let redis: TestRedis;
let store: E2eStore;
let receiver: EventReceiver;
let work: string;
let segments: Buffer[];
const deployments: TestDeployment[] = [];
const gateways: MediagateProcess[] = [];

before(async () => {
  redis = await startRedis();
  work = mkdtempSync(join(tmpdir(), 'mg-push-two-'));
  store = await e2eStore('s3', join(work, 'scratch'));
  receiver = await startEventReceiver();
  const env = {
    ...store.env,
    MEDIAGATE_LADDER: LADDER.join(','),
    MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: String(IDLE_MS),
    MEDIAGATE_HLS_SWEEP_INTERVAL_MS: '500',
    MEDIAGATE_EVENTS_WEBHOOK_URLS: receiver.url,
    MEDIAGATE_EVENTS_TIMEOUT_MS: '1000',
  };
  for (let i = 0; i < 2; i++) {
    const d = await testDeployment(redis.url, env);
    deployments.push(d);
    gateways.push(spawnMediagate('gateway', d.env));
  }
  await Promise.all(gateways.map((g, i) => waitForHttp(`${deployments[i]!.httpUrl}/healthz`, g, 120_000)));
  segments = await cutPushSegments(12, work);
});

after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await redis?.stop();
  await store?.close();
  await receiver?.close();
  for (const d of deployments) d.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

function logged(msg: string, manifestID: string): Record<string, unknown>[] {
  return gateways.flatMap((g) => logLines(g, msg)).filter((l) => l['manifestID'] === manifestID);
}

function endedEvents(manifestID: string): number {
  return receiver.events.filter((e) => e.type === 'stream.ended' && e.data.manifestID === manifestID).length;
}

async function transcodeEntries(manifestID: string): Promise<{ seq?: number; kind: string; manifestID?: string }[]> {
  const res = await fetch(`${deployments[0]!.httpUrl}/api/accounts/local/ledger?limit=1000`);
  const { entries } = (await res.json()) as { entries: { seq?: number; kind: string; manifestID?: string }[] };
  return entries.filter((e) => e.kind === 'transcode' && e.manifestID === manifestID);
}

test('pushes alternating between two gateways form one session and one playlist: every seq listed once, transcoded and charged once, one idle end', { timeout: 150_000 }, async (t) => {
  const [a, b] = deployments.map((d) => d.httpUrl) as [string, string];
  assert.ok(segments.length >= 6, `cut into ${segments.length} segments`);
  const before = await commandStats(redis.url);
  for (let seq = 0; seq < segments.length; seq++) {
    const answer = await pushSegment(seq % 2 === 0 ? a : b, 'lb-stream', seq, segments[seq]!);
    assert.equal(answer.status, 200, `seq ${seq} on ${seq % 2 === 0 ? 'A' : 'B'}: ${answer.body}`);
    assert.equal(answer.replayed, false);
  }
  const delta = commandStatsDelta(before, await commandStats(redis.url));
  const total = Object.values(delta).reduce((s, n) => s + n, 0);
  t.diagnostic(`redis commands per pushed segment (both gateways, their transcoders and timers, ${segments.length} pushes): ${(total / segments.length).toFixed(1)} ${JSON.stringify(delta)}`);

  // A retry of a segment A took, sent to B: the stored result, no second transcode.
  const retry = await pushSegment(b, 'lb-stream', 2, segments[2]!);
  assert.equal(retry.status, 200, retry.body);
  assert.equal(retry.replayed, true, 'the retry on the other gateway is answered from the first push');

  const started = logged('stream started', 'lb-stream');
  assert.equal(started.length, 1, 'one session was opened');
  const session = started[0]!['session'];
  assert.equal(logged('joined a push session opened by another push', 'lb-stream').length, 1, 'the other gateway joined it once');
  for (const l of logged('source segment listed', 'lb-stream')) assert.equal(l['session'], session, 'every segment went into the one session');
  assert.equal(logged('source segment listed', 'lb-stream').length, segments.length, 'each source segment listed once');
  const transcoded = gateways.flatMap((g) => logLines(g, 'segment transcoded')).filter((l) => l['manifestID'] === 'lb-stream');
  assert.deepEqual(transcoded.map((l) => l['seq']).sort((x, y) => Number(x) - Number(y)), segments.map((_, i) => i), 'each segment transcoded once');
  const charged = await transcodeEntries('lb-stream');
  assert.deepEqual(charged.map((e) => e.seq).sort((x, y) => x! - y!), segments.map((_, i) => i), 'each segment charged once');

  // One playlist, the same from both gateways: every seq once, then ENDLIST after the idle timeout.
  const window = Math.min(6, segments.length);
  const expected = Array.from({ length: window }, (_, i) => segments.length - window + i);
  for (const base of [a, b]) {
    const lists = await waitForEndedPlaylists(base, 'lb-stream', LADDER.length + 1, 30_000);
    for (const m of lists) assert.deepEqual(m.segments.map((s) => seqOf(s.uri)), expected);
  }
  // The idle end ran once in the cluster: wait past a second gateway's chance (its timer, its sweep).
  await waitUntil(() => endedEvents('lb-stream') >= 1, 20_000, () => `no stream.ended event: ${JSON.stringify(receiver.events.map((e) => e.type))}`);
  await new Promise((r) => setTimeout(r, IDLE_MS + 1500));
  assert.equal(endedEvents('lb-stream'), 1, 'one stream.ended event');
  assert.equal(logged('stream ended', 'lb-stream').length, 1, 'one gateway ended the stream');
  const event = receiver.events.find((e) => e.type === 'stream.ended' && e.data.manifestID === 'lb-stream')!;
  assert.equal(event.data.segments, segments.length, 'the end counts the segments listed on both gateways');
  assert.equal(receiver.events.filter((e) => e.type === 'stream.started' && e.data.manifestID === 'lb-stream').length, 1);
});

test('the idle end still runs, once, when the gateway that took the pushes was killed: the other gateway ends the session', { timeout: 120_000 }, async () => {
  const [a, b] = deployments.map((d) => d.httpUrl) as [string, string];
  for (let seq = 0; seq < 3; seq++) {
    const answer = await pushSegment(a, 'orphan-stream', seq, segments[seq]!);
    assert.equal(answer.status, 200, answer.body);
  }
  await crashProcessTree(gateways[0]!);
  const lists = await waitForEndedPlaylists(b, 'orphan-stream', LADDER.length + 1, 30_000);
  for (const m of lists) assert.deepEqual(m.segments.map((s) => seqOf(s.uri)), [0, 1, 2]);
  await waitUntil(() => endedEvents('orphan-stream') >= 1, 20_000, () => 'no stream.ended event for the orphaned session');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(endedEvents('orphan-stream'), 1, 'one stream.ended event');
  const endedOnB = logLines(gateways[1]!, 'stream ended').filter((l) => l['manifestID'] === 'orphan-stream');
  assert.equal(endedOnB.length, 1, 'the surviving gateway ended it');
  assert.equal(endedOnB[0]!['reason'], 'push idle timeout');
  // A new push of the stream now opens a new session on the survivor.
  const again = await pushSegment(b, 'orphan-stream', 3, segments[3]!);
  assert.equal(again.status, 200, again.body);
  assert.equal(logged('stream started', 'orphan-stream').length, 2);
});
