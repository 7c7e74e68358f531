import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaStreamError, VIDEO_TIME_BASE, videoFrameBytes } from '../../../src/frames/index.ts';

test('videoFrameBytes gives the packed size of each pixel format', () => {
  assert.equal(videoFrameBytes(640, 360, 'yuv420p'), 640 * 360 * 3 / 2);
  assert.equal(videoFrameBytes(641, 361, 'yuv420p'), 641 * 361 + 2 * 321 * 181);
  assert.equal(videoFrameBytes(640, 360, 'rgb24'), 640 * 360 * 3);
  assert.equal(videoFrameBytes(640, 360, 'rgba'), 640 * 360 * 4);
});

test('MediaStreamError carries its code and is an Error', () => {
  const err = new MediaStreamError('MEDIA_FAILED', 'Invalid data found when processing input');
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'MEDIA_FAILED');
  assert.equal(err.name, 'MediaStreamError');
  assert.deepEqual(VIDEO_TIME_BASE, { num: 1, den: 90000 });
});
