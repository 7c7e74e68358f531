/**
 * Cluster-wide stream ownership with real parts: two gateway processes (cmd/gateway.ts, each
 * with its embedded transcoder) on 127.0.0.1 with their own ports, one redis-server, one
 * filesystem object store, and ffmpeg publishing the clip in real time over RTMP.
 * 1. A second publisher of the same stream key on gateway B is refused while A holds the
 *    stream's lease; A's stream is untouched (its playlist keeps growing in the same session,
 *    its objects stay).
 * 2. Gateway A is SIGKILLed mid-stream; a new publisher (an encoder reconnecting) reaches B:
 *    once A's lease expired, B continues the same manifest ID and session, the playlists go on
 *    with EXT-X-DISCONTINUITY at the join. The takeover time (kill → first segment after the
 *    join listed) is reported; expected about the lease TTL plus one segment plus the
 *    encoder's retry delay.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnMediagate, waitForHttp, publish, crashProcessTree, startGatewayPair, logLines, type GatewayPair, type MediagateProcess } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { pollPlaylist, publishExpectingRefusal, publishUntilAccepted, readPlaylist, sessionDirs, type Publisher } from '../../helpers/stream-takeover.ts';

const MANIFEST_ID = 'shared-cam';
const RENDITION = 'P144p30fps16x9';
const LEASE_TTL_MS = 4000;
const SEGMENT_MS = 2000;
const TIMING = {
  MEDIAGATE_LADDER: RENDITION,
  MEDIAGATE_HLS_HEARTBEAT_INTERVAL_MS: '1000',
  MEDIAGATE_HLS_HEARTBEAT_TTL_MS: String(LEASE_TTL_MS),
  MEDIAGATE_HLS_SWEEP_INTERVAL_MS: '500',
  MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS: '4000',
  MEDIAGATE_LOG_LEVEL: 'info',
};

let pair: GatewayPair;
let gatewayA: MediagateProcess;
let gatewayB: MediagateProcess;
let publisherA: Publisher | undefined;
let publisherB: Publisher | undefined;
let clip: string;
let sessionOfA: string;
const rtmpA = (): string => `rtmp://127.0.0.1:${pair.first.rtmpPort}/live/${MANIFEST_ID}`;
const rtmpB = (): string => `rtmp://127.0.0.1:${pair.second.rtmpPort}/live/${MANIFEST_ID}`;
const storageDir = (): string => pair.first.env['MEDIAGATE_STORAGE_DIR']!;

before(async () => {
  pair = await startGatewayPair(TIMING);
  gatewayA = spawnMediagate('gateway', pair.first.env);
  gatewayB = spawnMediagate('gateway', pair.second.env);
  pair.processes.push(gatewayA, gatewayB);
  clip = await clipWith2sGop(60);
  await Promise.all([waitForHttp(`${pair.first.httpUrl}/healthz`, gatewayA, 120_000), waitForHttp(`${pair.second.httpUrl}/healthz`, gatewayB, 120_000)]);
});

after(async () => {
  for (const p of [publisherA, publisherB]) p?.child.kill('SIGKILL');
  await pair?.close();
});

test('a second publisher of a live stream key on another gateway is refused while the first holds the lease, and the live stream is untouched', { timeout: 180_000 }, async () => {
  publisherA = publish(clip, rtmpA());
  const sourceA = `${pair.first.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`;
  const before = await pollPlaylist(sourceA, (p) => p.seqs.length >= 2, 60_000, gatewayA);
  const sessions = sessionDirs(storageDir(), MANIFEST_ID);
  assert.equal(sessions.length, 1, `one session in the store: ${sessions.join(',')}`);
  sessionOfA = sessions[0]!;

  const code = await publishExpectingRefusal(clip, rtmpB());
  assert.notEqual(code, undefined, 'the second publisher was disconnected, not left publishing');
  assert.notEqual(code, 0, 'the second publisher exited with an error (refused)');
  const refused = logLines(gatewayB, 'publish refused: the manifest ID is live on another gateway or push session (it holds the stream lease)');
  assert.equal(refused.length, 1, 'gateway B logged the refusal once');
  assert.equal(refused[0]!['manifestID'], MANIFEST_ID);
  assert.match(String(refused[0]!['holder']), /^.+-\d+-[0-9a-f]{4}$/, 'naming the holder by its member ID');
  assert.ok(!gatewayB.lines.some((l) => l.includes('"msg":"stream started"')), 'B started no stream');

  // A's stream goes on in the same session, its objects in place.
  const after = await pollPlaylist(sourceA, (p) => Math.max(...p.seqs) >= Math.max(...before.seqs) + 2, 30_000, gatewayA);
  assert.ok(after.seqs.length > 0 && after.discontinuityBefore.length === 0, 'no discontinuity: nothing interrupted it');
  assert.deepEqual(sessionDirs(storageDir(), MANIFEST_ID), [sessionOfA], 'still one session: B wrote nothing');
  for (const seq of before.seqs) {
    assert.ok(existsSync(join(storageDir(), MANIFEST_ID, sessionOfA, 'source', `${seq}.ts`)), `source/${seq}.ts still stored`);
  }
  const viaB = await readPlaylist(`${pair.second.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`);
  assert.ok(viaB.seqs.length > 0, 'B serves A\'s stream from the shared index');
});

test('SIGKILL of the owning gateway: the publisher reconnecting to the other gateway continues the same manifest ID and session, with a discontinuity at the join', { timeout: 180_000 }, async (t) => {
  assert.ok(publisherA, 'the first test published to A');
  const sourceB = `${pair.second.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`;
  const renditionB = `${pair.second.httpUrl}/stream/${MANIFEST_ID}/${RENDITION}.m3u8`;
  await crashProcessTree(gatewayA);
  const killedAtMs = Date.now();
  publisherA!.child.kill('SIGKILL');
  const beforeJoin = await readPlaylist(sourceB);
  const lastBefore = Math.max(...beforeJoin.seqs);

  // The encoder reconnects (to B, as a load balancer would send it): refused while A's lease runs, then let in.
  const linesBefore = gatewayB.lines.length;
  const resumedLine = (): boolean => gatewayB.lines.slice(linesBefore).some((l) => l.includes('"msg":"stream resumed'));
  const reconnect = await publishUntilAccepted(clip, rtmpB(), resumedLine, { timeoutMs: 60_000, retryDelayMs: 1000 });
  publisherB = reconnect.publisher;
  const acceptedAfterMs = Date.now() - killedAtMs;
  const resumed = logLines(gatewayB, 'stream resumed: its publisher reconnected within ingest.reconnectGraceMs; the playlists go on after a discontinuity').at(-1)!;
  assert.equal(resumed['manifestID'], MANIFEST_ID);
  assert.equal(resumed['session'], sessionOfA, 'the same session continues');
  const joinSeq = Number(resumed['nextSeq']);
  assert.ok(joinSeq > lastBefore, `the join (${joinSeq}) comes after the last seq listed before the kill (${lastBefore})`);
  assert.ok(reconnect.tries >= 2, `refused while A's lease ran (${reconnect.tries} tries)`);

  const joined = await pollPlaylist(sourceB, (p) => p.seqs.includes(joinSeq), 30_000, gatewayB);
  const takeoverMs = Date.now() - killedAtMs;
  assert.ok(joined.discontinuityBefore.includes(joinSeq), `EXT-X-DISCONTINUITY before the join ${joinSeq}: ${JSON.stringify(joined)}`);
  const seqs = joined.seqs;
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'seqs ascend across the join');
  assert.ok(joined.mediaSequence >= beforeJoin.mediaSequence, 'the media sequence never goes back: the same playlist, not a new one');
  // Nothing before the join was lost from the store, and the session's objects go on in the same place.
  assert.deepEqual(sessionDirs(storageDir(), MANIFEST_ID), [sessionOfA], 'one session: the same playlists and objects');
  for (const seq of beforeJoin.seqs) assert.ok(existsSync(join(storageDir(), MANIFEST_ID, sessionOfA, 'source', `${seq}.ts`)), `source/${seq}.ts kept`);
  assert.ok(existsSync(join(storageDir(), MANIFEST_ID, sessionOfA, 'source', `${joinSeq}.ts`)), 'the join is stored in the same session');

  // The rendition lists the join after a discontinuity too (transcoded by B's transcoder).
  const rendition = await pollPlaylist(renditionB, (p) => p.seqs.includes(joinSeq), 40_000, gatewayB);
  assert.ok(rendition.discontinuityBefore.includes(joinSeq), `${RENDITION}: discontinuity before the join: ${JSON.stringify(rendition)}`);
  const stream = await (await fetch(`${pair.second.httpUrl}/api/streams/${MANIFEST_ID}`)).json() as { state?: string };
  assert.equal(stream.state, 'live');

  // Recorded for the report (no timed assertion): expected ≈ lease TTL + one segment + the encoder's retry delay.
  t.diagnostic(`takeover: publisher accepted on B ${acceptedAfterMs} ms after the kill (${reconnect.tries} tries, 1 s apart), `
    + `first segment after the join listed ${takeoverMs} ms after the kill (lease TTL ${LEASE_TTL_MS} ms, segment ${SEGMENT_MS} ms)`);
});
