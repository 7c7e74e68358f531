import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaStreamError, VideoTrack, AudioTrack, type AudioFrame, type VideoFrame } from '../../../src/frames/index.ts';
import type { FrameFeed } from '../../../src/frames/track.ts';

const vframe = (pts: number): VideoFrame => ({ kind: 'video', width: 2, height: 2, format: 'yuv420p', data: Buffer.alloc(6), pts, timeBase: { num: 1, den: 90000 } });
const aframe = (pts: number): AudioFrame => ({ kind: 'audio', sampleRate: 48000, channels: 1, samplesPerChannel: 960, format: 's16', data: Buffer.alloc(1920), pts, timeBase: { num: 1, den: 48000 } });

function producer() {
  const calls: string[] = [];
  return { calls, stop: async () => { calls.push('stop'); }, pause: () => calls.push('pause'), resume: () => calls.push('resume') };
}

test('a video track keeps at most maxQueued frames, drops the oldest and counts them', async () => {
  let feed!: FrameFeed<VideoFrame>;
  const p = producer();
  const track = new VideoTrack({ producer: p, maxQueued: 3, overflow: 'drop-oldest', attach: (f) => (feed = f) });
  for (let i = 0; i < 10; i++) feed.push(vframe(i));
  assert.equal(track.queuedFrames, 3);
  assert.equal(track.droppedFrames, 7);
  assert.deepEqual([(await track.recv()).pts, (await track.recv()).pts, (await track.recv()).pts], [7, 8, 9]);
  assert.deepEqual(p.calls, [], 'the producer is never paused');
});

test('an audio track never drops: it pauses the producer at maxQueued and resumes at half', async () => {
  let feed!: FrameFeed<AudioFrame>;
  const p = producer();
  const track = new AudioTrack({ producer: p, maxQueued: 4, overflow: 'wait', attach: (f) => (feed = f) });
  for (let i = 0; i < 6; i++) feed.push(aframe(i * 960));
  assert.deepEqual(p.calls, ['pause']);
  assert.equal(track.queuedFrames, 6, 'frames a paused producer still flushes are kept');
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await track.recv()).pts);
  assert.deepEqual(p.calls, ['pause', 'resume']);
  feed.end();
  for await (const f of track) got.push(f.pts);
  assert.deepEqual(got, [0, 960, 1920, 2880, 3840, 4800]);
});

test('queued frames are delivered after the end of media, then recv() rejects ENDED and `ended` fires once', async () => {
  let feed!: FrameFeed<VideoFrame>;
  const track = new VideoTrack({ producer: producer(), maxQueued: 8, overflow: 'drop-oldest', attach: (f) => (feed = f) });
  let ended = 0;
  track.on('ended', () => ended++);
  feed.push(vframe(1));
  feed.end();
  assert.equal(track.readyState, 'live');
  assert.equal((await track.recv()).pts, 1);
  assert.equal(track.readyState, 'ended');
  await assert.rejects(track.recv(), (e: unknown) => e instanceof MediaStreamError && e.code === 'ENDED');
  await track.stop();
  assert.equal(ended, 1);
});

test('a failure rejects a waiting recv() with MEDIA_FAILED and its reason; async iteration throws it', async () => {
  let feed!: FrameFeed<VideoFrame>;
  const p = producer();
  const track = new VideoTrack({ producer: p, maxQueued: 8, overflow: 'drop-oldest', attach: (f) => (feed = f) });
  const pending = track.recv();
  feed.end(new MediaStreamError('MEDIA_FAILED', 'ffmpeg exited with code 1: Connection refused'));
  await assert.rejects(pending, (e: unknown) => e instanceof MediaStreamError && e.code === 'MEDIA_FAILED' && /Connection refused/.test(e.message));
  await assert.rejects((async () => { for await (const _ of track) { /* none */ } })(), (e: unknown) => e instanceof MediaStreamError && e.code === 'MEDIA_FAILED');
  assert.deepEqual(p.calls, ['stop']);
});

test('stop() rejects waiting recv() calls with ENDED, discards the queue, stops the producer once', async () => {
  let feed!: FrameFeed<VideoFrame>;
  const p = producer();
  const track = new VideoTrack({ producer: p, maxQueued: 8, overflow: 'drop-oldest', attach: (f) => (feed = f) });
  const pending = track.recv();
  const stopping = track.stop();
  await assert.rejects(pending, (e: unknown) => e instanceof MediaStreamError && e.code === 'ENDED');
  feed.push(vframe(5));
  assert.equal(feed.wanted, false);
  assert.equal(track.queuedFrames, 0);
  await stopping;
  await track.stop();
  assert.deepEqual(p.calls, ['stop']);
});
