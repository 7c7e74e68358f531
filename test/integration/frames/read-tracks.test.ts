/**
 * The frame API's decode side on the real clip: frame count and every video pts equal
 * ffprobe's, audio sample count matches the audio duration, the MPEG-TS byte-stream source,
 * and failures as MediaStreamError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { promisify } from 'node:util';
import { MediaStreamError, openAudioTrack, openTracks, openVideoTrack, type VideoFrame } from '../../../src/frames/index.ts';
import { CLIP, clipWith2sGop, tsSourceSegments } from '../../helpers/media.ts';

const run = promisify(execFile);

/** ffprobe's video frame pts of `path`, rescaled from the stream time base to 1/90000 (round half up, as av_rescale_q). */
async function ffprobeVideoPts90k(path: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=time_base:frame=pts,best_effort_timestamp', '-of', 'json', path], { maxBuffer: 1 << 26 });
  const json = JSON.parse(stdout) as { streams: { time_base: string }[]; frames: { pts?: number; best_effort_timestamp?: number }[] };
  const [num, den] = json.streams[0]!.time_base.split('/').map(Number) as [number, number];
  return json.frames.map((f) => {
    const pts = f.pts ?? f.best_effort_timestamp!;
    return Math.floor((pts * num * 90000 + den / 2) / den);
  });
}

async function ffprobeAudioSeconds(path: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0', path]);
  return Number(stdout.trim());
}

async function collect<F>(track: AsyncIterable<F>): Promise<F[]> {
  const frames: F[] = [];
  for await (const f of track) frames.push(f);
  return frames;
}

test('every video frame of the clip arrives with the pts ffprobe reports (1/90000), in order, none dropped', async () => {
  const expected = await ffprobeVideoPts90k(CLIP);
  assert.equal(expected.length, 1440);
  const track = await openVideoTrack({ file: CLIP }, { videoOverflow: 'wait' });
  const frames: VideoFrame[] = await collect(track);
  assert.equal(frames.length, expected.length);
  assert.deepEqual(frames.map((f) => f.pts), expected);
  assert.equal(track.droppedFrames, 0);
  assert.equal(track.readyState, 'ended');
  const f = frames[100]!;
  assert.equal(f.kind, 'video');
  assert.equal(f.width, 640);
  assert.equal(f.height, 360);
  assert.equal(f.format, 'yuv420p');
  assert.equal(f.data.length, 640 * 360 * 3 / 2);
  assert.deepEqual(f.timeBase, { num: 1, den: 90000 });
});

test('audio arrives as 20 ms s16 frames whose sample count matches the clip audio duration within one frame', async () => {
  const seconds = await ffprobeAudioSeconds(CLIP);
  const track = await openAudioTrack({ file: CLIP });
  const frames = await collect(track);
  const samples = frames.reduce((n, f) => n + f.samplesPerChannel, 0);
  assert.ok(Math.abs(samples - seconds * 48000) <= 960, `decoded ${samples} samples, expected ${seconds} s × 48000 = ${seconds * 48000} within 960`);
  for (const f of frames.slice(0, -1)) {
    assert.equal(f.samplesPerChannel, 960);
    assert.equal(f.data.length, 960 * 2 * 2);
  }
  assert.ok(frames.at(-1)!.samplesPerChannel <= 960);
  // pts: samples since the first, on 1/48000, continuous.
  let next = frames[0]!.pts;
  for (const f of frames) {
    assert.equal(f.pts, next);
    next += f.samplesPerChannel;
  }
  assert.deepEqual(frames[0]!.timeBase, { num: 1, den: 48000 });
  assert.equal(frames[0]!.channels, 2);
});

test('an MPEG-TS byte stream (keyframe segments concatenated) decodes with its own pts, scaled to the requested size and format', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frames-ts-'));
  try {
    const segments = await tsSourceSegments(CLIP, 10, dir);
    const ts = join(dir, 'all.ts');
    await writeFile(ts, Buffer.concat(segments.map((s) => s.bytes)));
    const expected = await ffprobeVideoPts90k(ts);
    const { video, audio } = await openTracks({ stream: Readable.from(segments.map((s) => s.bytes)), format: 'mpegts' }, { video: { width: 320, height: 180, format: 'rgb24' }, videoOverflow: 'wait' });
    assert.ok(video && audio);
    const [vf, af] = await Promise.all([collect(video), collect(audio)]);
    assert.deepEqual(vf.map((f) => f.pts), expected);
    assert.ok(expected[0]! > 0, 'MPEG-TS timestamps are passed through, not shifted to 0');
    assert.equal(vf[0]!.data.length, 320 * 180 * 3);
    assert.equal(vf[0]!.format, 'rgb24');
    assert.ok(af.length > 400);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a live MPEG-TS stream yields its first frames from the first 2 s segment alone, before any more bytes arrive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frames-live-ts-'));
  try {
    const segments = await tsSourceSegments(await clipWith2sGop(6), 6, dir);
    const stream = new PassThrough();
    stream.write(segments[0]!.bytes);
    const { video, audio } = await openTracks({ stream, format: 'mpegts' });
    assert.ok(video && audio);
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      video.recv(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('no frame from the first segment within 20 s (ffmpeg waits for more input to analyze)')), 20_000); }),
    ]).finally(async () => {
      clearTimeout(timer);
    }).catch(async (err: unknown) => {
      await Promise.all([video.stop(), audio.stop()]);
      throw err;
    });
    assert.equal(first.pts, segments[0]!.startPts90k);
    assert.ok((await audio.recv()).samplesPerChannel === 960);
    for (const s of segments.slice(1)) stream.write(s.bytes);
    stream.end();
    let n = 1;
    await Promise.all([(async () => { for await (const _ of video) n++; })(), (async () => { for await (const _ of audio) { /* drain */ } })()]);
    assert.ok(n > 6 * 24 - 24, `${n} frames`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a URL source with a frame rate, a sample rate and a channel count: the fps filter\'s frames on 1/90000, mono 16 kHz 20 ms frames', async () => {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'video/mp4' });
    createReadStream(CLIP).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/clip.mp4`;
    const { video, audio } = await openTracks({ url }, { video: { frameRate: 12, width: 160 }, audio: { sampleRate: 16000, channels: 1 }, videoOverflow: 'wait' });
    assert.ok(video && audio);
    const [vf, af] = await Promise.all([collect(video), collect(audio)]);
    assert.equal(vf.length, 720);
    assert.deepEqual(vf.slice(0, 3).map((f) => f.pts), [0, 7500, 15000]);
    assert.ok(vf.every((f, i) => f.pts === i * 7500 && f.width === 160 && f.height === 90));
    assert.ok(af.slice(0, -1).every((f) => f.samplesPerChannel === 320 && f.channels === 1 && f.sampleRate === 16000 && f.data.length === 640));
  } finally {
    server.close();
  }
});

test('a byte stream that breaks mid-way ends the tracks with MEDIA_FAILED and the reason, after the frames already decoded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frames-broken-'));
  try {
    const segments = await tsSourceSegments(await clipWith2sGop(6), 6, dir);
    const stream = new PassThrough();
    stream.write(segments[0]!.bytes);
    const video = await openVideoTrack({ stream, format: 'mpegts' });
    await video.recv();
    stream.destroy(new Error('trickle subscriber gave up'));
    await assert.rejects((async () => { for await (const _ of video) { /* frames decoded before the break */ } })(), (err: unknown) => {
      assert.ok(err instanceof MediaStreamError);
      assert.equal(err.code, 'MEDIA_FAILED');
      assert.match(err.message, /trickle subscriber gave up/);
      return true;
    });
    assert.equal(video.readyState, 'ended');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a live HLS source whose server goes away ends with MEDIA_FAILED (not as if the stream had ended), after the frames already read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frames-hls-gone-'));
  const segments = await tsSourceSegments(await clipWith2sGop(6), 6, dir);
  // A live playlist (no ENDLIST) of the first two segments.
  const server = createServer((req, res) => {
    if (req.url === '/live.m3u8') {
      res.end('#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n0.ts\n#EXTINF:2.0,\n1.ts\n');
      return;
    }
    const seg = segments[Number(/^\/(\d+)\.ts$/.exec(req.url ?? '')?.[1])];
    res.writeHead(seg ? 200 : 404).end(seg?.bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const video = await openVideoTrack({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/live.m3u8` }, { videoOverflow: 'wait' });
    await video.recv();
    server.close();
    server.closeAllConnections();
    let n = 1;
    await assert.rejects((async () => { for await (const _ of video) n++; })(), (err: unknown) => {
      assert.ok(err instanceof MediaStreamError);
      assert.equal(err.code, 'MEDIA_FAILED');
      assert.match(err.message, /playlist could not be reloaded/);
      assert.match(err.message, /Connection refused/);
      return true;
    });
    assert.ok(n >= 90, `the two segments' frames came first (${n})`);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a file that is not media fails with MediaStreamError MEDIA_FAILED and ffprobe\'s reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frames-bad-'));
  try {
    const bad = join(dir, 'bad.mp4');
    await writeFile(bad, Buffer.from('this is not a video file at all'.repeat(100)));
    await assert.rejects(openTracks({ file: bad }), (err: unknown) => {
      assert.ok(err instanceof MediaStreamError);
      assert.equal(err.code, 'MEDIA_FAILED');
      assert.match(err.message, /Invalid data found when processing input|moov atom not found/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a byte stream that is not MPEG-TS fails with MEDIA_FAILED; recv() after the end rejects ENDED', async () => {
  await assert.rejects(openTracks({ stream: Readable.from([Buffer.alloc(4096, 1)]), format: 'mpegts' }), (err: unknown) => err instanceof MediaStreamError && err.code === 'MEDIA_FAILED' && /not MPEG-TS/.test(err.message));
  const track = await openVideoTrack({ file: CLIP }, { video: { width: 64, height: 36 }, videoOverflow: 'wait' });
  let n = 0;
  for await (const _ of track) n++;
  assert.equal(n, 1440);
  await assert.rejects(track.recv(), (err: unknown) => err instanceof MediaStreamError && err.code === 'ENDED');
});
