/**
 * The encode half of the frame API with real ffmpeg (src/frames/source.ts, publish.ts,
 * save-mp4.ts, src/media/raw-encoder.ts): saveMp4 of test frames, publish as an MPEG-TS byte
 * stream, backpressure, stop(), failures. Every file and stream is checked with ffprobe.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { AudioSource, MediaStreamError, VideoSource, publish, saveMp4, type AudioFrame, type VideoFrame } from '../../../src/frames/index.ts';
import { childProcesses } from '../../helpers/gateway-process.ts';

const run = promisify(execFile);
let dir: string;

before(() => { dir = mkdtempSync(join(tmpdir(), 'mg-frames-out-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

/** An all-zero yuv420p frame is green (Y=0, U=V=0); `luma` sets the Y plane. */
function greenFrame(i: number, width = 320, height = 240, frameRate = 30, luma = 0): VideoFrame {
  const data = Buffer.alloc(width * height * 3 / 2);
  data.fill(luma, 0, width * height);
  return { kind: 'video', width, height, format: 'yuv420p', data, pts: Math.round((i * 90000) / frameRate), timeBase: { num: 1, den: 90000 } };
}

function silence(i: number, sampleRate = 48000, channels = 2): AudioFrame {
  const samplesPerChannel = sampleRate / 50;
  return { kind: 'audio', sampleRate, channels, samplesPerChannel, format: 's16', data: Buffer.alloc(samplesPerChannel * channels * 2), pts: i * samplesPerChannel, timeBase: { num: 1, den: sampleRate } };
}

async function* frames<F>(n: number, make: (i: number) => F): AsyncGenerator<F> {
  for (let i = 0; i < n; i++) yield make(i);
}

interface Probed { streams: { codec_type: string; codec_name: string; width?: number; height?: number; nb_read_frames?: string; profile?: string; has_b_frames?: number; r_frame_rate?: string; sample_rate?: string; channels?: number }[]; format: { duration?: string } }

async function probe(path: string): Promise<Probed> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries',
    'stream=codec_type,codec_name,width,height,nb_read_frames,profile,has_b_frames,r_frame_rate,sample_rate,channels:format=duration', '-of', 'json', path]);
  return JSON.parse(stdout) as Probed;
}

/** Mean Y, U and V of the decoded video of `path` (all frames), via ffmpeg's signalstats. */
async function meanYuv(path: string): Promise<{ y: number; u: number; v: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-f', 'lavfi', '-i', `movie=${path},signalstats`, '-show_entries', 'frame_tags=lavfi.signalstats.YAVG,lavfi.signalstats.UAVG,lavfi.signalstats.VAVG', '-of', 'json']);
  const rows = (JSON.parse(stdout) as { frames: { tags: Record<string, string> }[] }).frames.map((f) => f.tags);
  const mean = (k: string): number => rows.reduce((s, r) => s + Number(r[k]), 0) / rows.length;
  return { y: mean('lavfi.signalstats.YAVG'), u: mean('lavfi.signalstats.UAVG'), v: mean('lavfi.signalstats.VAVG') };
}

const codecs = (p: Probed): string[] => p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();

test('saveMp4 of 90 green 320x240 frames and 3 s of silence gives an MP4 of exactly 90 H.264 frames at 320x240 30 fps and AAC', async () => {
  const path = join(dir, 'green.mp4');
  const result = await saveMp4(path, { video: frames(90, (i) => greenFrame(i)), audio: frames(150, (i) => silence(i)) });
  assert.deepEqual(result, { videoFrames: 90, audioSamples: 150 * 960 });
  const p = await probe(path);
  assert.deepEqual(codecs(p), ['audio:aac', 'video:h264']);
  const v = p.streams.find((s) => s.codec_type === 'video')!;
  assert.equal(v.width, 320);
  assert.equal(v.height, 240);
  assert.equal(Number(v.nb_read_frames), 90);
  assert.equal(v.r_frame_rate, '30/1');
  const a = p.streams.find((s) => s.codec_type === 'audio')!;
  assert.equal(a.sample_rate, '48000');
  assert.equal(a.channels, 2);
  // Green stays green through the encoder (Y, U, V near 0; x264 keeps full-range zeros close).
  const yuv = await meanYuv(path);
  assert.ok(yuv.u < 8 && yuv.v < 8, `mean U/V ${yuv.u}/${yuv.v}`);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('partial')), []);
});

test('saveMp4 places frames by pts: a 0.5 s hole is filled with repeats and frames faster than the rate are skipped', async () => {
  const path = join(dir, 'holes.mp4');
  // 30 fps pts, but frames 30..44 are missing (0.5 s), then 10 extra frames at 60 fps pts between slots.
  async function* gen(): AsyncGenerator<VideoFrame> {
    for (let i = 0; i < 60; i++) if (i < 30 || i >= 45) yield greenFrame(i);
    for (let j = 0; j < 10; j++) yield { ...greenFrame(60), pts: Math.round(60 * 3000 + j * 1500 + 1) };
  }
  await saveMp4(path, { video: gen() }, { frameRate: 30 });
  const v = (await probe(path)).streams[0]!;
  // Slots 0..59 (30..44 repeats of frame 29), then slots 60..65 from the tail at 60 fps pts
  // (slot = round(60 + j/2): every other tail frame falls on a written slot and is skipped).
  assert.equal(Number(v.nb_read_frames), 66);
});

test('saveMp4 leaves no file (and no partial file) when a frame does not match the first one', async () => {
  const path = join(dir, 'bad.mp4');
  async function* gen(): AsyncGenerator<VideoFrame> {
    for (let i = 0; i < 10; i++) yield greenFrame(i);
    yield greenFrame(10, 160, 120);
  }
  await assert.rejects(saveMp4(path, { video: gen() }), (err: Error) => err instanceof TypeError && /160x120/.test(err.message));
  assert.equal(existsSync(path), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.bad.mp4')), []);
});

test('saveMp4 leaves no file when ffmpeg fails, and rejects with MEDIA_FAILED carrying ffmpeg\'s reason', async () => {
  const path = join(dir, 'no-such-dir', 'x.mp4');
  await assert.rejects(saveMp4(path, { video: frames(10, (i) => greenFrame(i)) }), (err: MediaStreamError) => {
    assert.equal(err.code, 'MEDIA_FAILED');
    assert.match(err.message, /No such file or directory/);
    return true;
  });
  assert.equal(existsSync(join(dir, 'no-such-dir')), false);
});

test('publish { mpegts: true } streams H.264 Constrained Baseline without B-frames and AAC, with a keyframe every keyframeIntervalSec', async () => {
  const video = new VideoSource({ width: 320, height: 240, frameRate: 25 });
  const audio = new AudioSource({ sampleRate: 48000, channels: 2 });
  const publication = publish({ mpegts: true }, { video, audio }, { keyframeIntervalSec: 1 });
  assert.ok(publication.output);
  const bytes = buffer(publication.output);
  const feedVideo = (async () => {
    for (let i = 0; i < 100; i++) await video.captureFrame(greenFrame(i, 320, 240, 25, (i * 2) % 256));
    video.close();
  })();
  const feedAudio = (async () => {
    for (let i = 0; i < 200; i++) await audio.captureFrame(silence(i));
    audio.close();
  })();
  await Promise.all([feedVideo, feedAudio, publication.done]);
  const path = join(dir, 'published.ts');
  writeFileSync(path, await bytes);
  const p = await probe(path);
  assert.deepEqual(codecs(p), ['audio:aac', 'video:h264']);
  const v = p.streams.find((s) => s.codec_type === 'video')!;
  assert.equal(Number(v.nb_read_frames), 100);
  assert.equal(v.profile, 'Constrained Baseline');
  assert.equal(v.has_b_frames, 0);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', path]);
  const keyTimes = stdout.trim().split('\n').filter((l) => l.includes('K')).map((l) => Number(l.split(',')[0]));
  assert.deepEqual(keyTimes.map((t) => Math.round(t - keyTimes[0]!)), [0, 1, 2, 3]);
});

test('captureFrame waits while the MPEG-TS output is not read (backpressure) and goes on when it is', async () => {
  const video = new VideoSource({ width: 640, height: 480, frameRate: 30 });
  const publication = publish({ mpegts: true }, { video });
  // Noise does not compress, so the unread output fills the pipes after a few frames.
  let accepted = 0;
  const feeding = (async () => {
    for (let i = 0; i < 400; i++) {
      const f = greenFrame(i, 640, 480);
      for (let k = 0; k < f.data.length; k += 4) f.data.writeUInt32LE((Math.random() * 0xffffffff) >>> 0, k);
      await video.captureFrame(f);
      accepted++;
    }
    video.close();
  })();
  await new Promise((r) => setTimeout(r, 3000));
  const stalledAt = accepted;
  assert.ok(stalledAt < 400, `all ${stalledAt} frames were accepted while nobody read the output`);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(accepted, stalledAt, 'frames were accepted while the output was still unread');
  const bytes = buffer(publication.output!);
  await feeding;
  await publication.done;
  assert.ok((await bytes).length > 0);
  assert.equal(accepted, 400);
});

test('stop() ends the encoder at once: done resolves, later captureFrame rejects with ENDED, no ffmpeg child is left', async () => {
  const video = new VideoSource({ width: 320, height: 240, frameRate: 30 });
  const publication = publish({ mpegts: true }, { video });
  publication.output!.resume();
  for (let i = 0; i < 10; i++) await video.captureFrame(greenFrame(i));
  const pid = publication.pid;
  assert.ok(childProcesses(process.pid).some((l) => l.startsWith(`${pid} `)));
  await publication.stop();
  await publication.done;
  await assert.rejects(video.captureFrame(greenFrame(10)), (err: MediaStreamError) => err instanceof MediaStreamError && err.code === 'ENDED');
  assert.deepEqual(childProcesses(process.pid).filter((l) => l.includes('ffmpeg')), []);
});

test('publish to an RTMP server that is not there rejects done with MEDIA_FAILED and ffmpeg\'s reason, without the stream key', async () => {
  const video = new VideoSource({ width: 320, height: 240, frameRate: 30 });
  const publication = publish({ rtmpUrl: 'rtmp://127.0.0.1:9/live/secret-key-123' }, { video });
  const feeding = video.captureFrame(greenFrame(0)).catch((err: unknown) => err);
  await assert.rejects(publication.done, (err: MediaStreamError) => {
    assert.equal(err.code, 'MEDIA_FAILED');
    assert.match(err.message, /Connection refused|Cannot open connection|Input\/output error/i);
    assert.doesNotMatch(err.message, /secret-key-123/);
    return true;
  });
  const captured = await feeding;
  if (captured !== undefined) assert.equal((captured as MediaStreamError).code, 'MEDIA_FAILED');
});

test('a source refuses frames of another size, and a second publication', async () => {
  const video = new VideoSource({ width: 320, height: 240, frameRate: 30 });
  await assert.rejects(video.captureFrame(greenFrame(0, 160, 120)), TypeError);
  await assert.rejects(video.captureFrame({ ...greenFrame(0), data: Buffer.alloc(5) }), /5 bytes/);
  const publication = publish({ mpegts: true }, { video });
  assert.throws(() => publish({ mpegts: true }, { video }), /already published/);
  await publication.stop();
  assert.throws(() => publish({ rtmpUrl: 'http://x' } as never, { video: new VideoSource({ width: 2, height: 2, frameRate: 1 }) }), TypeError);
});

test('saveMp4 of audio alone fills a 0.2 s hole in the pts with silence and never drops samples', async () => {
  const path = join(dir, 'audio-hole.m4a.mp4');
  // 2 s of 20 ms frames with frames 50..59 (0.2 s) missing, a tone so the encoder has work.
  async function* gen(): AsyncGenerator<AudioFrame> {
    for (let i = 0; i < 100; i++) {
      if (i >= 50 && i < 60) continue;
      const f = silence(i);
      for (let k = 0; k < f.data.length; k += 2) f.data.writeInt16LE(Math.round(8000 * Math.sin(k / 20)), k);
      yield f;
    }
  }
  const result = await saveMp4(path, { audio: gen() });
  assert.deepEqual(result, { videoFrames: 0, audioSamples: 100 * 960 });
  const p = await probe(path);
  assert.deepEqual(codecs(p), ['audio:aac']);
  assert.ok(Math.abs(Number(p.format.duration) - 2) < 0.05, `duration ${p.format.duration}`);
});
