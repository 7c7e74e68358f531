/**
 * Reading frames from a live stream and from its recording on a real gateway (cmd/gateway.ts as
 * a child process, a real redis-server, the clip published in real time over RTMP).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openVideoTrack, type VideoFrame } from '../../../src/frames/index.ts';
import { ChildSupervisor } from '../../../src/media/child-supervisor.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments, type RunningGateway } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';

const run = promisify(execFile);
const STREAM_KEY = 'frames-live-SECRET-4c1d';
const MANIFEST_ID = 'frames-live';
const PUBLISH_SECONDS = 12;

let redis: TestRedis;
let gateway: RunningGateway;
const supervisor = new ChildSupervisor({ logger: silentLogger() });

before(async () => {
  redis = await startRedis();
  gateway = await startGateway(redis.url, {
    MEDIAGATE_LADDER: '[]',
    MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: STREAM_KEY, manifestID: MANIFEST_ID, record: true }]),
    MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '500',
  });
});

after(async () => {
  await supervisor.close();
  await gateway?.stop();
  await redis?.stop();
});

/** ffprobe's video pts of an HLS playlist URL, on 1/90000 (the MPEG-TS clock already). */
async function ffprobePts(url: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'csv=p=0', url], { maxBuffer: 1 << 24 });
  return stdout.split('\n').map((l) => l.trim().replace(/,$/, '')).filter((l) => l !== '').map(Number);
}

test('frames are read from a live stream by manifest ID while it is published, then from its recording with ffprobe\'s pts', { timeout: 120_000 }, async (t) => {
  const input = await clipWith2sGop(PUBLISH_SECONDS);
  const publisher = publish(input, gateway.rtmpUrl(STREAM_KEY));
  await waitForListedSegments(`${gateway.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`, 1, gateway.proc);

  // Live: the source rendition's HLS, read until the stream ends (ENDLIST) or 40 s pass.
  const live = await openVideoTrack({ live: { gateway: gateway.httpUrl, manifestID: MANIFEST_ID } }, { supervisor, videoOverflow: 'wait' });
  const frames: VideoFrame[] = [];
  const giveUp = setTimeout(() => void live.stop(), 40_000);
  for await (const f of live) frames.push(f);
  clearTimeout(giveUp);
  assert.equal(await publisher.exited, 0, publisher.stderr());
  assert.ok(frames.length >= 5 * 24, `read ${frames.length} live frames`);
  assert.ok(frames.every((f) => f.width === 640 && f.height === 360 && f.data.length === 640 * 360 * 1.5));
  // 24 fps through RTMP's millisecond clock: 41 or 42 ms apart (3690/3780 on 90 kHz).
  for (let i = 1; i < frames.length; i++) {
    const step = frames[i]!.pts - frames[i - 1]!.pts;
    assert.ok(step >= 3600 && step <= 3900, `frame ${i} is ${step} ticks after the previous one`);
  }

  // The recording: every frame of it, with the pts ffprobe reads from the same playlist.
  const deadline = Date.now() + 30_000;
  while ((await fetch(`${gateway.httpUrl}/recordings/${MANIFEST_ID}/index.m3u8`)).status !== 200) {
    assert.ok(Date.now() < deadline, 'the recording was not ready within 30 s');
    await new Promise((r) => setTimeout(r, 300));
  }
  const master = await (await fetch(`${gateway.httpUrl}/recordings/${MANIFEST_ID}/index.m3u8`)).text();
  const session = /^([^#\s/]+)\/source\.m3u8$/m.exec(master)?.[1];
  assert.ok(session, master);
  const expected = await ffprobePts(`${gateway.httpUrl}/recordings/${MANIFEST_ID}/${session}/source.m3u8`);
  const recorded: number[] = [];
  for await (const f of await openVideoTrack({ recording: { gateway: gateway.httpUrl, manifestID: MANIFEST_ID } }, { supervisor, videoOverflow: 'wait', video: { width: 160, height: 90 } })) recorded.push(f.pts);
  assert.ok(expected.length >= PUBLISH_SECONDS * 24 - 24, `recording has ${expected.length} frames`);
  assert.deepEqual(recorded, expected);
  t.diagnostic(`live frames read: ${frames.length}; recording frames: ${recorded.length}`);
  assert.equal(supervisor.size, 0, 'no ffmpeg left');
});
