import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, parseProfile } from '../../../src/domain/profile.ts';
import { isSourceSizeCopy, lintSource, playableSourceProfile, sourceUnfitForPlayers, MARKED_SOURCE_RENDITION, PLAYABLE_SOURCE_RENDITION, type LintedVideo } from '../../../src/domain/source-lint.ts';

const h264: LintedVideo = { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264', profile: 'High', pixelFormat: 'yuv420p' };
const tenBit: LintedVideo = { ...h264, profile: 'High 10', pixelFormat: 'yuv420p10le' };

test('an 8-bit 4:2:0 H.264 source has no warning', () => {
  assert.deepEqual(lintSource(h264), []);
  assert.deepEqual(lintSource({ ...h264, profile: 'Constrained Baseline', pixelFormat: 'yuvj420p' }), []);
  assert.deepEqual(lintSource({ ...h264, profile: '', pixelFormat: '' }), [], 'unknown is not a warning');
});

test('10-bit, 4:2:2 and 4:4:4 H.264 sources are not browser-playable, naming profile and pixel format', () => {
  const [w] = lintSource(tenBit);
  assert.equal(w?.code, 'SOURCE_NOT_BROWSER_PLAYABLE');
  assert.match(w!.msg, /H\.264 High 10, yuv420p10le/);
  assert.equal(lintSource({ ...h264, profile: 'High 4:2:2', pixelFormat: 'yuv422p' })[0]?.code, 'SOURCE_NOT_BROWSER_PLAYABLE');
  assert.equal(lintSource({ ...h264, profile: 'High 4:4:4 Predictive', pixelFormat: 'yuv444p' })[0]?.code, 'SOURCE_NOT_BROWSER_PLAYABLE');
  assert.deepEqual(lintSource({ ...tenBit, codec: 'hevc', profile: 'Main 10' }), [], 'only H.264 is linted for bit depth');
  assert.ok(sourceUnfitForPlayers(lintSource(tenBit)));
});

test('a rotated source and an audio-only source are reported', () => {
  const [r] = lintSource({ ...h264, rotationDeg: 90 });
  assert.equal(r?.code, 'SOURCE_ROTATED');
  assert.match(r!.msg, /640x360.*360x640/);
  assert.ok(sourceUnfitForPlayers([r!]));
  const audio = lintSource(undefined);
  assert.deepEqual(audio.map((w) => w.code), ['AUDIO_ONLY']);
  assert.equal(sourceUnfitForPlayers(audio), false);
});

test('a source unfit for players gets a rendition of its displayed size unless the ladder already has one', () => {
  const ladder = [PRESETS['P240p30fps16x9']!, PRESETS['P144p30fps16x9']!];
  const extra = playableSourceProfile(ladder, tenBit, lintSource(tenBit), 900_000);
  assert.ok(extra);
  assert.equal(extra.name, PLAYABLE_SOURCE_RENDITION);
  assert.deepEqual([extra.width, extra.height, extra.bitrateBps, extra.fps, extra.encoder], [640, 360, 900_000, 0, 'H.264']);
  // P360p30fps16x9 fits the 640x360 source at its own size: nothing to add.
  assert.equal(playableSourceProfile([PRESETS['P360p30fps16x9']!, ...ladder], tenBit, lintSource(tenBit), 900_000), undefined);
  // A fitting source needs nothing.
  assert.equal(playableSourceProfile(ladder, h264, lintSource(h264), 900_000), undefined);
  // Rotated: the displayed size, portrait; the bitrate is clamped; the name does not collide.
  const rotated = { ...h264, rotationDeg: 270 as const };
  const taken = parseProfile({ name: PLAYABLE_SOURCE_RENDITION, width: 100, height: 100, bitrate: 100_000 });
  const upright = playableSourceProfile([taken], rotated, lintSource(rotated), 90_000_000);
  assert.deepEqual([upright?.name, upright?.width, upright?.height, upright?.bitrateBps], [`${PLAYABLE_SOURCE_RENDITION}-2`, 360, 640, 20_000_000]);
  // Odd source sizes round down to even (x264 4:2:0).
  const odd = playableSourceProfile([], { ...tenBit, width: 641, height: 361 }, lintSource(tenBit), 100);
  assert.deepEqual([odd?.width, odd?.height, odd?.bitrateBps], [640, 360, 300_000]);
});

test('a marked source (watermark applyToSource) gets a copy of its displayed size at 0.8 of its bitrate (its video share), lint or not', () => {
  const ladder = [PRESETS['P240p30fps16x9']!];
  const copy = playableSourceProfile(ladder, h264, lintSource(h264), 505_000, { marked: true });
  assert.ok(copy);
  assert.deepEqual([copy.name, copy.width, copy.height, copy.bitrateBps, copy.fps, copy.encoder], [MARKED_SOURCE_RENDITION, 640, 360, 404_000, 0, 'H.264']);
  // Below the playable copy's 0.3 Mb/s floor: still not above the source.
  assert.equal(playableSourceProfile(ladder, h264, [], 120_000, { marked: true })?.bitrateBps, 96_000);
  // Unknown source bitrate: the playable copy's floor; above 20 Mb/s: capped.
  assert.equal(playableSourceProfile(ladder, h264, [], 0, { marked: true })?.bitrateBps, 300_000);
  assert.equal(playableSourceProfile(ladder, h264, [], 90_000_000, { marked: true })?.bitrateBps, 20_000_000);
  // A source also unfit for players gets one copy, the marked one; rotated: upright.
  const rotated = { ...h264, rotationDeg: 90 as const };
  const upright = playableSourceProfile(ladder, rotated, lintSource(rotated), 505_000, { marked: true });
  assert.deepEqual([upright?.name, upright?.width, upright?.height], [MARKED_SOURCE_RENDITION, 360, 640]);
  // A ladder profile of the source's size is already a (marked) copy: nothing added, and it is recognised as the copy.
  assert.equal(playableSourceProfile([PRESETS['P360p30fps16x9']!, ...ladder], h264, [], 505_000, { marked: true }), undefined);
  assert.equal(isSourceSizeCopy({ width: 640, height: 360 }, h264), true);
  assert.equal(isSourceSizeCopy({ width: 426, height: 240 }, h264), false);
  assert.equal(isSourceSizeCopy(undefined, h264), false);
  // Not marked and fit for players: nothing, as before.
  assert.equal(playableSourceProfile(ladder, h264, [], 505_000), undefined);
});
