/**
 * The frame API's lifecycle on the real clip: stop() leaves no ffmpeg, a slow consumer keeps
 * bounded memory (oldest video frames dropped and counted), saveWav writes exactly the
 * requested duration, the test tracks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { once } from 'node:events';
import { MediaStreamError, openAudioTrack, openTracks, openVideoTrack, saveWav, testAudioTrack, testVideoTrack, DEFAULT_MAX_QUEUED_VIDEO_FRAMES } from '../../../src/frames/index.ts';
import { ChildSupervisor } from '../../../src/media/child-supervisor.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { CLIP } from '../../helpers/media.ts';

const run = promisify(execFile);
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

test('stop() kills the ffmpeg of an open once every track of it is stopped, and leaves no child process', async () => {
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const { video, audio } = await openTracks({ file: CLIP }, { supervisor });
  assert.ok(video && audio);
  await video.recv();
  await audio.recv();
  const [pid] = supervisor.pids;
  assert.ok(pid !== undefined && alive(pid), 'ffmpeg runs while the tracks are live');
  const ended = once(video, 'ended');
  await video.stop();
  await ended;
  assert.equal(video.readyState, 'ended');
  await assert.rejects(video.recv(), (err: unknown) => err instanceof MediaStreamError && err.code === 'ENDED');
  // The audio track still reads from the same ffmpeg.
  const a = await audio.recv();
  assert.equal(a.samplesPerChannel, 960);
  assert.ok(alive(pid));
  await audio.stop();
  assert.equal(supervisor.size, 0);
  assert.ok(!alive(pid), `ffmpeg ${pid} is gone after stop()`);
  await video.stop(); // idempotent
  await supervisor.close();
});

test('leaving a for-await loop early stops the track and its ffmpeg', async () => {
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const track = await openVideoTrack({ file: CLIP }, { supervisor });
  const pid = supervisor.pids[0]!;
  let n = 0;
  for await (const _ of track) if (++n === 10) break;
  assert.equal(track.readyState, 'ended');
  assert.ok(!alive(pid));
  await supervisor.close();
});

test('a slow consumer keeps memory bounded: the oldest video frames are dropped and counted, none lost unaccounted', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const frameBytes = 1280 * 720 * 3 / 2;
  const queueBound = DEFAULT_MAX_QUEUED_VIDEO_FRAMES * frameBytes; // 8 × 1.38 MB = 11 MB
  const unbounded = 1440 * frameBytes; // every frame of the clip kept: 2 GB
  gc();
  const base = process.memoryUsage.rss();
  let peak = 0;
  let maxQueued = 0;
  const track = await openVideoTrack({ file: CLIP }, { video: { width: 1280, height: 720 } });
  const sampler = setInterval(() => {
    gc();
    peak = Math.max(peak, process.memoryUsage.rss() - base);
  }, 100);
  let received = 0;
  try {
    for await (const f of track) {
      assert.equal(f.data.length, frameBytes);
      received++;
      maxQueued = Math.max(maxQueued, track.queuedFrames);
      await new Promise((r) => setTimeout(r, 20)); // 50 frames/s at most, the decoder is faster
    }
  } finally {
    clearInterval(sampler);
  }
  t.diagnostic(`received ${received}, dropped ${track.droppedFrames}, peak RSS growth ${Math.round(peak / 1e6)} MB, queue bound ${Math.round(queueBound / 1e6)} MB`);
  assert.ok(track.droppedFrames > 0, 'the consumer was slower than the decoder');
  assert.equal(received + track.droppedFrames, 1440);
  assert.ok(maxQueued <= DEFAULT_MAX_QUEUED_VIDEO_FRAMES);
  // Slack: garbage frames between two collections and what the allocator keeps (peak growth measured 44-82 MB
  // here) and pipe buffers; still a tenth of what keeping the frames would take.
  const slack = 200e6;
  assert.ok(peak < queueBound + slack, `RSS grew ${Math.round(peak / 1e6)} MB; bound ${Math.round(queueBound / 1e6)} MB + ${slack / 1e6} MB slack (keeping every frame: ${Math.round(unbounded / 1e6)} MB)`);
});

test('saveWav of 5 s of the clip\'s audio is a WAV ffprobe reads as 5.00 s, and the track is stopped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frames-wav-'));
  try {
    const supervisor = new ChildSupervisor({ logger: silentLogger() });
    const track = await openAudioTrack({ file: CLIP }, { supervisor, audio: { sampleRate: 48000, channels: 2 } });
    const path = join(dir, 'out.wav');
    const saved = await saveWav(path, track, { maxSeconds: 5 });
    assert.deepEqual(saved, { samples: 240000, sampleRate: 48000, channels: 2, durationSeconds: 5 });
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name,sample_rate,channels', '-of', 'json', path]);
    const json = JSON.parse(stdout) as { format: { duration: string }; streams: { codec_name: string; sample_rate: string; channels: number }[] };
    assert.equal(Number(json.format.duration).toFixed(2), '5.00');
    assert.deepEqual(json.streams.map((s) => [s.codec_name, s.sample_rate, s.channels]), [['pcm_s16le', '48000', 2]]);
    assert.equal((await readFile(path)).length, 44 + 240000 * 4);
    assert.equal(track.readyState, 'ended');
    assert.equal(supervisor.size, 0, 'no ffmpeg left after saveWav stopped reading');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the test tracks: 640×480 green yuv420p at 30 fps with 1/90000 pts, and 20 ms of silence at 48 kHz, paced', async () => {
  const video = testVideoTrack();
  const audio = testAudioTrack();
  const startMs = performance.now();
  const vf = [];
  for (let i = 0; i < 15; i++) vf.push(await video.recv());
  const af = [];
  for (let i = 0; i < 25; i++) af.push(await audio.recv());
  const elapsedMs = performance.now() - startMs;
  await video.stop();
  await audio.stop();
  assert.deepEqual(vf.map((f) => f.pts), Array.from({ length: 15 }, (_, i) => i * 3000));
  assert.equal(vf[0]!.width, 640);
  assert.equal(vf[0]!.height, 480);
  assert.ok(vf[0]!.data.every((b) => b === 0), 'all-zero yuv420p (green)');
  assert.equal(vf[0]!.data.length, 640 * 480 * 3 / 2);
  assert.deepEqual(af.map((f) => f.pts), Array.from({ length: 25 }, (_, i) => i * 960));
  assert.ok(af.every((f) => f.samplesPerChannel === 960 && f.sampleRate === 48000 && f.channels === 2 && f.data.every((b) => b === 0)));
  // Paced: 15 frames at 30 fps take ≥ 14/30 s; 25 audio frames ≥ 24 × 20 ms (read after the video).
  assert.ok(elapsedMs >= 450, `read in ${elapsedMs} ms`);
  assert.equal(video.readyState, 'ended');
  await assert.rejects(audio.recv(), (err: unknown) => err instanceof MediaStreamError && err.code === 'ENDED');
});
