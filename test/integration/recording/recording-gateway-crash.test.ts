/**
 * A recording survives the death of the gateway that held its stream: gateway A (SIGKILL
 * mid-stream, no chance to end anything) and gateway B share a real redis-server and the
 * object store. B's heartbeat sweep ends the stream, then B's retention sweep finishes the
 * recording from the segments already stored: its VOD playlists list every segment from seq 0
 * and decode. Real processes: two cmd/gateway.ts, ffmpeg publishing the clip.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parse, setOptions, types } from 'hls-parser';
import { childPids, spawnMediagate, testDeployment, waitForHttp, publish, type TestDeployment, waitForListedSegments, startGatewayPair, type GatewayPair, waitUntil } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';

setOptions({ strictMode: true });
const run = promisify(execFile);
const ENV = {
  MEDIAGATE_LADDER: 'P144p30fps16x9',
  MEDIAGATE_RECORDING_ENABLED: 'true',
  MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '300',
  MEDIAGATE_HLS_HEARTBEAT_INTERVAL_MS: '1000',
  MEDIAGATE_HLS_HEARTBEAT_TTL_MS: '5000',
  MEDIAGATE_HLS_SWEEP_INTERVAL_MS: '500',
  MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS: '4000',
  MEDIAGATE_LOG_LEVEL: 'info',
};
let pair: GatewayPair;
let first: TestDeployment;
let second: TestDeployment;

before(async () => {
  // The second gateway shares the Redis and the object store, as a scaled-out deployment does.
  pair = await startGatewayPair(ENV);
  ({ first, second } = pair);
});

after(async () => { await pair?.close(); });

test('a recording whose gateway was killed mid-stream is finished by another gateway with every stored segment', { timeout: 150_000 }, async () => {
  const crashing = spawnMediagate('gateway', first.env);
  pair.processes.push(crashing);
  const survivor = spawnMediagate('gateway', second.env);
  pair.processes.push(survivor);
  await Promise.all([waitForHttp(`${first.httpUrl}/healthz`, crashing), waitForHttp(`${second.httpUrl}/healthz`, survivor)]);
  const publisher = publish(await clipWith2sGop(60), `rtmp://127.0.0.1:${first.rtmpPort}/live/crashrec`);
  try {
    await waitForListedSegments(`${first.httpUrl}/stream/crashrec/P144p30fps16x9.m3u8`, 4, crashing);
    pair.orphans.push(...childPids(crashing.child.pid!));
    crashing.child.kill('SIGKILL');
    await crashing.exited;
  } finally {
    publisher.child.kill('SIGKILL');
  }

  const deadline = Date.now() + 60_000;
  let recording: { session: string; state: string; playbackUrl?: string; renditions?: { name: string; playlistUrl: string }[] } | undefined;
  while (recording?.state !== 'ready') {
    if (Date.now() > deadline) throw new Error(`recording not ready: ${JSON.stringify(recording)}\n${survivor.lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`${second.httpUrl}/api/streams/crashrec/recordings`);
    recording = ((await res.json()) as { recordings: NonNullable<typeof recording>[] }).recordings[0];
  }
  // The state is written before the gateway logs it: its log line may reach this process a moment later.
  const loggedReady = (): boolean => survivor.lines.some((l) => l.includes('"msg":"recording ready"'));
  await waitUntil(loggedReady, 5000, () => 'no "recording ready" in the surviving gateway\'s log').catch(() => undefined);
  assert.ok(loggedReady(), 'finished by the surviving gateway');
  assert.deepEqual(recording.renditions!.map((r) => r.name), ['source', 'P144p30fps16x9']);
  for (const rendition of recording.renditions!) {
    const media = parse(await (await fetch(rendition.playlistUrl)).text()) as types.MediaPlaylist;
    assert.equal(media.playlistType, 'VOD');
    assert.equal(media.endlist, true);
    const seqs = media.segments.map((s) => Number(/\/(\d+)\.ts$/.exec(s.uri)![1]));
    assert.ok(seqs.length >= 4 && seqs[0] === 0, `${rendition.name}: ${seqs.join(',')}`);
    for (const s of media.segments) assert.equal((await fetch(new URL(s.uri, rendition.playlistUrl))).status, 200, `${s.uri} is stored`);
    const decoded = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', rendition.playlistUrl, '-map', '0', '-f', 'null', '-']);
    assert.equal(decoded.stderr.trim(), '', `${rendition.name} decodes`);
  }
});
