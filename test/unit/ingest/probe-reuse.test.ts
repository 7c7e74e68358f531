/**
 * The probe-reuse rule (src/ingest/probe-reuse.ts): when the in-process measurement of an RTMP
 * segment may stand in for ffprobe, over each of its branches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayReuseProbe, probeReference, reuseProbe, type ProbeReference } from '../../../src/ingest/probe-reuse.ts';
import type { MeasuredSegment, ProbedSegment } from '../../../src/ingest/ingest-ports.ts';

const probed: ProbedSegment = {
  video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, frames: 48, codec: 'h264', profile: 'High', pixelFormat: 'yuv420p' },
  audio: { codec: 'aac', profile: 'LC' },
  codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24, durationMs: 2040,
};
const measured: MeasuredSegment = { frames: 48, videoCodecs: 'avc1.64001e', width: 640, height: 360, streamTypes: [0x1b, 0x0f] };
const reference: ProbeReference = { probed, measured };

test('a measurement that matches the reference reuses its stream facts with the measured frame count', () => {
  const reused = reuseProbe(reference, { ...measured, frames: 50 }, 2083);
  assert.deepEqual(reused, { ...probed, video: { ...probed.video!, frames: 50 } });
  assert.equal(probed.video!.frames, 48, 'the reference is not changed');
});

test('no reference, a reference without video, or no positive cut duration: ffprobe runs', () => {
  assert.equal(mayReuseProbe(undefined, 2000), false);
  assert.equal(reuseProbe(undefined, measured, 2000), undefined);
  const audioOnly: ProbeReference = { probed: { codecs: 'mp4a.40.2', frameRate: 0, durationMs: 2000, audio: { codec: 'aac', profile: 'LC' } }, measured };
  assert.equal(mayReuseProbe(audioOnly, 2000), false);
  assert.equal(reuseProbe(audioOnly, measured, 2000), undefined);
  for (const cutMs of [undefined, 0, -5]) {
    assert.equal(mayReuseProbe(reference, cutMs), false, `cutMs ${cutMs}`);
    assert.equal(reuseProbe(reference, measured, cutMs), undefined, `cutMs ${cutMs}`);
  }
  assert.equal(mayReuseProbe(reference, 2000), true);
});

test('no measurement (the file could not be read in-process): ffprobe runs', () => {
  assert.equal(reuseProbe(reference, undefined, 2000), undefined);
});

test('another SPS (codec string or picture size) or other elementary streams: ffprobe runs', () => {
  assert.equal(reuseProbe(reference, { ...measured, videoCodecs: 'avc1.64001f' }, 2000), undefined, 'level changed');
  assert.equal(reuseProbe(reference, { ...measured, width: 1280 }, 2000), undefined, 'width changed');
  assert.equal(reuseProbe(reference, { ...measured, height: 720 }, 2000), undefined, 'height changed');
  assert.equal(reuseProbe(reference, { ...measured, streamTypes: [0x1b] }, 2000), undefined, 'audio dropped');
  assert.equal(reuseProbe(reference, { ...measured, streamTypes: [0x0f, 0x1b] }, 2000), undefined, 'streams reordered');
});

test('the frame count must fit the probed rate over the cut: 2 frames or 10 %, whichever is larger', () => {
  // 2 s at 24 fps = 48 frames expected; the slack is max(2, 4.8) = 4.8 frames.
  assert.ok(reuseProbe(reference, { ...measured, frames: 52 }, 2000), '4 frames over: same rate');
  assert.ok(reuseProbe(reference, { ...measured, frames: 44 }, 2000), '4 frames under: same rate');
  assert.equal(reuseProbe(reference, { ...measured, frames: 53 }, 2000), undefined, '5 frames over: another rate');
  assert.equal(reuseProbe(reference, { ...measured, frames: 60 }, 2000), undefined, '30 fps now');
  // 0.5 s at 24 fps = 12 frames expected; the slack is max(2, 1.2) = 2 frames.
  assert.ok(reuseProbe(reference, { ...measured, frames: 14 }, 500), '2 frames over a short cut');
  assert.equal(reuseProbe(reference, { ...measured, frames: 15 }, 500), undefined, '3 frames over a short cut');
  // A fractional rate (30000/1001) over 2002 ms = 60 frames.
  const ntsc: ProbeReference = { probed: { ...probed, video: { ...probed.video!, fpsNum: 30000, fpsDen: 1001 } }, measured };
  assert.ok(reuseProbe(ntsc, { ...measured, frames: 60 }, 2002));
  assert.equal(reuseProbe(ntsc, { ...measured, frames: 48 }, 2002), undefined);
});

test('a fresh probe becomes the reference only when the measurement of the same file agrees with it', () => {
  assert.deepEqual(probeReference(probed, measured), { probed, measured });
  assert.equal(probeReference(probed, undefined), undefined, 'no measurement');
  assert.equal(probeReference({ ...probed, video: undefined }, measured), undefined, 'no video');
  assert.equal(probeReference(probed, { ...measured, frames: 47 }), undefined, 'frame counts differ');
  assert.equal(probeReference(probed, { ...measured, width: 320 }), undefined, 'widths differ');
  assert.equal(probeReference(probed, { ...measured, height: 180 }), undefined, 'heights differ');
});
