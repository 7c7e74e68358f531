import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, parseLadder } from '../../../src/domain/profile.ts';
import { bitrateCapBps, fitLadderToSource, measuredBitrateBps, MIN_CAPPED_BITRATE_BPS } from '../../../src/domain/ladder-fit.ts';

const DEFAULT_LADDER = parseLadder(['P720p30fps16x9', 'P360p30fps16x9', 'P240p30fps16x9']);
/** The test clip: 640x360, 24 fps, ~0.5 Mb/s (test/helpers/media.ts). */
const CLIP = { width: 640, height: 360, fpsNum: 24, fpsDen: 1 };
const SRC_1080P30 = { width: 1920, height: 1080, fpsNum: 30, fpsDen: 1 };

test('the clip (640x360) keeps only the renditions smaller than itself: 720p would upscale, 360p is its own size', () => {
  const fit = fitLadderToSource(DEFAULT_LADDER, CLIP, 500_000);
  assert.deepEqual(fit.profiles.map((p) => p.name), ['P240p30fps16x9']);
  assert.deepEqual(fit.leftOut, [{ name: 'P720p30fps16x9', reason: 'upscale' }, { name: 'P360p30fps16x9', reason: 'not-smaller' }]);
});

test('a kept rendition gets at most the source bitrate times its share of the source pixels per second', () => {
  const fit = fitLadderToSource(DEFAULT_LADDER, CLIP, 500_000);
  // 426x240 at 24 fps (the source rate: P240p30 never raises it) of 640x360 at 24 fps: 102240 / 230400 of 500 kb/s.
  const expected = Math.floor(500_000 * (426 * 240) / (640 * 360));
  assert.equal(expected, 221_875);
  assert.equal(fit.profiles[0]!.bitrateBps, expected);
  assert.ok(fit.profiles[0]!.bitrateBps < 500_000, 'below the source');
  assert.deepEqual(fit.capped, [{ name: 'P240p30fps16x9', configuredBps: 600_000, cappedBps: expected }]);
  // Everything but the bitrate is the preset's.
  assert.deepEqual({ ...fit.profiles[0]!, bitrateBps: 600_000 }, PRESETS['P240p30fps16x9']);
});

test('a 1080p source keeps the full default ladder, each rendition capped only where its pixel share is below the preset', () => {
  const fit = fitLadderToSource(DEFAULT_LADDER, SRC_1080P30, 6_000_000);
  assert.deepEqual(fit.profiles.map((p) => p.name), ['P720p30fps16x9', 'P360p30fps16x9', 'P240p30fps16x9']);
  assert.deepEqual(fit.leftOut, []);
  // 1280x720 is 4/9 of 1920x1080: 2.67 Mb/s < 4 Mb/s; 640x360 1/9: 0.67 Mb/s < 1.2; 426x240: 0.30 Mb/s < 0.6.
  assert.deepEqual(fit.profiles.map((p) => p.bitrateBps), [2_666_666, 666_666, Math.floor(6_000_000 * 426 * 240 / (1920 * 1080))]);
  // A richer source leaves the presets alone.
  const rich = fitLadderToSource(DEFAULT_LADDER, SRC_1080P30, 20_000_000);
  assert.deepEqual(rich.profiles, DEFAULT_LADDER);
  assert.deepEqual(rich.capped, []);
});

test('a lower rendition frame rate lowers its share; a source bitrate unknown caps nothing', () => {
  const src60 = { width: 1920, height: 1080, fpsNum: 60, fpsDen: 1 };
  assert.equal(bitrateCapBps({ width: 1280, height: 720, fpsNum: 30, fpsDen: 1 }, src60, 9_000_000), 2_000_000);
  assert.equal(bitrateCapBps({ width: 1280, height: 720, fpsNum: 30000, fpsDen: 1001 }, { ...src60, fpsNum: 60000, fpsDen: 1001 }, 9_000_000), 2_000_000);
  const unknown = fitLadderToSource(DEFAULT_LADDER, CLIP, undefined);
  assert.deepEqual(unknown.profiles, [PRESETS['P240p30fps16x9']]);
  assert.deepEqual(unknown.capped, []);
  assert.deepEqual(fitLadderToSource(DEFAULT_LADDER, CLIP, 0).profiles, [PRESETS['P240p30fps16x9']]);
});

test('the cap never falls below the lowest bitrate a profile may have', () => {
  assert.equal(bitrateCapBps({ width: 256, height: 144, fpsNum: 30, fpsDen: 1 }, SRC_1080P30, 10_000), MIN_CAPPED_BITRATE_BPS);
});

test('size is compared after fitting the aspect ratio and on the displayed (rotated) picture', () => {
  // A 4:3 box on a 16:9 640x360 source fits to 480x270: smaller, kept.
  const fourThree = fitLadderToSource(parseLadder(['P360p30fps4x3']), CLIP, 500_000);
  assert.deepEqual(fourThree.profiles.map((p) => p.name), ['P360p30fps4x3']);
  // An odd-sized source: the box that fits it whole rounds to its even size, the same picture.
  assert.deepEqual(fitLadderToSource(parseLadder(['P360p30fps16x9']), { ...CLIP, width: 641, height: 361 }, 500_000).leftOut,
    [{ name: 'P360p30fps16x9', reason: 'not-smaller' }]);
  // 640x360 shown at 90°: 360x640 portrait; 240p fits to 136x240 (a share of 32640 / 230400).
  const rotated = fitLadderToSource(DEFAULT_LADDER, { ...CLIP, rotationDeg: 90 }, 500_000);
  assert.deepEqual(rotated.profiles.map((p) => p.name), ['P360p30fps16x9', 'P240p30fps16x9']);
  assert.equal(rotated.profiles[1]!.bitrateBps, Math.floor(500_000 * (136 * 240) / (360 * 640)));
});

test('fitting a fitted ladder again changes nothing', () => {
  const once = fitLadderToSource(DEFAULT_LADDER, SRC_1080P30, 3_000_000);
  const twice = fitLadderToSource(once.profiles, SRC_1080P30, 3_000_000);
  assert.deepEqual(twice.profiles, once.profiles);
  assert.deepEqual(twice.capped, []);
  assert.deepEqual(twice.leftOut, []);
});

test('a segment bitrate is bytes × 8000 / duration ms; nothing is measured from an empty or zero-length segment', () => {
  assert.equal(measuredBitrateBps(125_000, 2000), 500_000);
  assert.equal(measuredBitrateBps(1, 3), 2666);
  assert.equal(measuredBitrateBps(0, 2000), undefined);
  assert.equal(measuredBitrateBps(1000, 0), undefined);
  assert.equal(measuredBitrateBps(Number.NaN, 2000), undefined);
});
