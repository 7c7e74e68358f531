/**
 * A gateway killed with SIGKILL mid-RTMP-stream (no chance to end its stream): another
 * gateway on the same Redis notices the stream's heartbeat expired and ends it, so its
 * playlists get EXT-X-ENDLIST instead of staying "live" forever (issue 11, item 4).
 * Real processes: two cmd/gateway.ts, ffmpeg publishing the clip, a real redis-server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { childPids, spawnMediagate, testDeployment, waitForHttp, publish, type TestDeployment, waitForListedSegments, startGatewayPair, type GatewayPair } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMedia, seqOf, waitForEndedPlaylists } from '../../helpers/hls.ts';

const LADDER = ['P144p30fps16x9'];
const HEARTBEAT_TTL_MS = 5000;
const SWEEP_INTERVAL_MS = 500;
const TIMING = {
  MEDIAGATE_HLS_HEARTBEAT_INTERVAL_MS: '1000',
  MEDIAGATE_HLS_HEARTBEAT_TTL_MS: String(HEARTBEAT_TTL_MS),
  MEDIAGATE_HLS_SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
  MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS: '4000',
};
let pair: GatewayPair;
let first: TestDeployment;
let second: TestDeployment;

before(async () => {
  // The second gateway shares the Redis and the object store, as a scaled-out deployment does.
  pair = await startGatewayPair({ MEDIAGATE_LADDER: LADDER.join(','), ...TIMING });
  ({ first, second } = pair);
});

after(async () => { await pair?.close(); });

test('a stream whose gateway was killed is ended by another gateway once its heartbeat expires', { timeout: 150_000 }, async (t) => {
  const crashing = spawnMediagate('gateway', first.env);
  pair.processes.push(crashing);
  await waitForHttp(`${first.httpUrl}/healthz`, crashing);
  const publisher = publish(await clipWith2sGop(60), `rtmp://127.0.0.1:${first.rtmpPort}/live/crashy`);
  try {
    // Live and listing: a few source segments.
    await waitForListedSegments(`${first.httpUrl}/stream/crashy/source.m3u8`, 3, crashing);
    pair.orphans.push(...childPids(crashing.child.pid!));
    crashing.child.kill('SIGKILL');
    await crashing.exited;
  } finally {
    publisher.child.kill('SIGKILL');
  }
  const killedAtMs = Date.now();

  const survivor = spawnMediagate('gateway', second.env);
  pair.processes.push(survivor);
  await waitForHttp(`${second.httpUrl}/healthz`, survivor);
  const live = await fetchMedia(`${second.httpUrl}/stream/crashy/source.m3u8`);
  assert.ok(live.segments.length >= 3, 'the other gateway serves the stream from the shared index');

  // Bound: heartbeat TTL + sweep interval after the kill, plus generous slack for the second
  // gateway's start-up on a loaded machine.
  const lists = await waitForEndedPlaylists(second.httpUrl, 'crashy', 1 + LADDER.length, HEARTBEAT_TTL_MS + SWEEP_INTERVAL_MS + 45_000);
  const endedAfterMs = Date.now() - killedAtMs;
  assert.ok(survivor.lines.some((l) => l.includes('"msg":"stream heartbeat expired (its gateway is gone): stream ended"')), 'ended by the heartbeat sweep');
  const source = lists[0]!.segments.map((s) => seqOf(s.uri));
  assert.ok(source.length >= 3, `source keeps what was listed (${source.join(',')})`);
  const stream = await (await fetch(`${second.httpUrl}/api/streams/crashy`)).json() as { state?: string };
  assert.equal(stream.state, 'ended');
  // Recorded for the report; not a performance assertion.
  t.diagnostic(`ENDLIST seen ${endedAfterMs} ms after the kill`);
});
