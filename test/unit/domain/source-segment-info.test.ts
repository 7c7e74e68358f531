import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSourceSegmentInfo, sourceSegmentInfo } from '../../../src/domain/segment.ts';

const video = { width: 1920, height: 1080, fpsNum: 30000, fpsDen: 1001, codec: 'h264' };

test('a well-formed source measurement survives a JSON round trip (as in the queue) unchanged', () => {
  const info = { video, audio: { codec: 'aac', profile: 'LC' } };
  assert.deepEqual(parseSourceSegmentInfo(JSON.parse(JSON.stringify(info))), info);
  assert.deepEqual(parseSourceSegmentInfo({ video }), { video });
  assert.deepEqual(parseSourceSegmentInfo({ video, audio: { codec: '', profile: '' } }), { video, audio: { codec: '', profile: '' } });
});

test('only the known fields are kept', () => {
  assert.deepEqual(parseSourceSegmentInfo({ video: { ...video, frames: 60, extra: 'x' }, audio: { codec: 'aac', profile: 'LC', channels: 2 }, more: 1 }),
    { video, audio: { codec: 'aac', profile: 'LC' } });
});

test('malformed measurements are refused, so the transcoder probes instead', () => {
  const bad: unknown[] = [
    undefined, null, 'x', 42, [], {}, { video: null }, { video: 'h264' },
    { video: { ...video, width: 0 } }, { video: { ...video, height: -1080 } }, { video: { ...video, width: 1919.5 } },
    { video: { ...video, width: '1920' } }, { video: { ...video, height: 100_000 } }, { video: { ...video, fpsNum: 0 } },
    { video: { ...video, fpsDen: Number.NaN } }, { video: { ...video, fpsNum: Infinity } }, { video: { ...video, codec: '' } },
    { video: { ...video, codec: 7 } }, { video: { ...video, codec: 'x'.repeat(65) } }, { video: { width: 1, height: 1 } },
    { video, audio: null }, { video, audio: 'aac' }, { video, audio: { codec: 'aac' } }, { video, audio: { codec: 1, profile: 'LC' } },
  ];
  for (const raw of bad) assert.equal(parseSourceSegmentInfo(raw), undefined, JSON.stringify(raw));
});

test('from a probe result: video and audio fields, none without video', () => {
  const probe = { video: { ...video, frames: 60, profile: 'High' }, audio: { codec: 'aac', profile: 'HE-AAC', channels: 2, sampleRate: 48000 }, codecs: 'x' };
  assert.deepEqual(sourceSegmentInfo(probe), { video, audio: { codec: 'aac', profile: 'HE-AAC' } });
  assert.deepEqual(sourceSegmentInfo({ video }), { video });
  assert.equal(sourceSegmentInfo({ audio: { codec: 'aac', profile: 'LC' } }), undefined);
  assert.equal(sourceSegmentInfo({ video: { ...video, width: 0 } }), undefined);
});

test('a display rotation travels with the job; 0 is dropped and other angles are refused', () => {
  const video = { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' };
  assert.deepEqual(parseSourceSegmentInfo({ video: { ...video, rotationDeg: 90 } }), { video: { ...video, rotationDeg: 90 } });
  assert.deepEqual(parseSourceSegmentInfo({ video: { ...video, rotationDeg: 0 } }), { video });
  assert.equal(parseSourceSegmentInfo({ video: { ...video, rotationDeg: 45 } }), undefined);
  assert.equal(parseSourceSegmentInfo({ video: { ...video, rotationDeg: '90' } }), undefined);
  assert.deepEqual(sourceSegmentInfo({ video: { ...video, rotationDeg: 270 } }), { video: { ...video, rotationDeg: 270 } });
});

test('the source bitrate a fitted ladder uses travels with the job; a bad one is refused', () => {
  const info = { video, audio: { codec: 'aac', profile: 'LC' }, bitrateBps: 512_000 };
  assert.deepEqual(parseSourceSegmentInfo(JSON.parse(JSON.stringify(info))), info);
  assert.deepEqual(parseSourceSegmentInfo({ video, bitrateBps: 6_000_000 }), { video, bitrateBps: 6_000_000 });
  for (const bitrateBps of [0, -1, 1.5, '512000', null, Number.NaN]) {
    assert.equal(parseSourceSegmentInfo({ video, bitrateBps }), undefined, String(bitrateBps));
  }
});
