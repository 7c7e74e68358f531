/**
 * The raw-frame encoder's ffmpeg arguments (src/media/raw-encoder.ts rawEncoderArgs): pure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawEncoderArgs } from '../../../src/media/raw-encoder.ts';

const video = { width: 640, height: 360, pixelFormat: 'yuv420p' as const, frameRate: 24 };
const audio = { sampleRate: 48000, channels: 2 };

test('an RTMP target keeps the stream key off the command line: it goes to the preset file as rtmp_playpath', () => {
  const { args, secretOptions } = rawEncoderArgs({ video, audio, target: { kind: 'rtmp', url: 'rtmp://127.0.0.1:1935/live/key-SECRET-1?x=1' } });
  assert.equal(args.some((a) => a.includes('SECRET')), false);
  assert.equal(secretOptions, 'rtmp_playpath=key-SECRET-1?x=1\n');
  assert.deepEqual(args.slice(-3), ['-fpre', '/dev/fd/3', 'rtmp://127.0.0.1:1935/live/']);
});

test('video on stdin and audio on fd 4, low-latency x264 without B-frames, a keyframe every keyframeIntervalSec', () => {
  const { args } = rawEncoderArgs({ video, audio, target: { kind: 'mpegts' }, keyframeIntervalSec: 1.5 });
  const joined = args.join(' ');
  assert.match(joined, /-f rawvideo -pix_fmt yuv420p -video_size 640x360 -framerate 24 .*-i pipe:0/);
  assert.match(joined, /-f s16le -ar 48000 -ac 2 .*-i pipe:4/);
  assert.match(joined, /-map 0:v:0 -map 1:a:0/);
  assert.match(joined, /-preset ultrafast -tune zerolatency -bf 0 -g 36 -keyint_min 36 -sc_threshold 0/);
  assert.match(joined, /-f mpegts -muxdelay 0 -muxpreload 0 -flush_packets 1 pipe:1$/);
});

test('audio alone is input 0; odd sizes are padded; bad options are refused', () => {
  assert.match(rawEncoderArgs({ audio, target: { kind: 'mpegts' } }).args.join(' '), /-map 0:a:0/);
  assert.match(rawEncoderArgs({ video: { ...video, width: 641 }, target: { kind: 'mp4', path: '/tmp/x.mp4' } }).args.join(' '), /pad=ceil\(iw\/2\)\*2/);
  assert.throws(() => rawEncoderArgs({ target: { kind: 'mpegts' } }), RangeError);
  assert.throws(() => rawEncoderArgs({ video: { ...video, frameRate: 0 }, target: { kind: 'mpegts' } }), RangeError);
  assert.throws(() => rawEncoderArgs({ video, target: { kind: 'mpegts' }, keyframeIntervalSec: 0 }), RangeError);
});
