import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, parseLadder, parseProfile, fitRendition, presetsByName } from '../../../src/domain/profile.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

const src1080 = { width: 1920, height: 1080, fpsNum: 30, fpsDen: 1 };
const src360 = { width: 640, height: 360, fpsNum: 24, fpsDen: 1 };

test('every Livepeer preset has the contract size, bitrate and fps', () => {
  assert.equal(Object.keys(PRESETS).length, 13);
  assert.deepEqual(
    [PRESETS['P720p60fps16x9']!.width, PRESETS['P720p60fps16x9']!.height, PRESETS['P720p60fps16x9']!.bitrateBps, PRESETS['P720p60fps16x9']!.fps],
    [1280, 720, 6_000_000, 60]);
  assert.deepEqual([PRESETS['P240p30fps4x3']!.width, PRESETS['P240p30fps4x3']!.height, PRESETS['P240p30fps4x3']!.bitrateBps], [320, 240, 600_000]);
  assert.deepEqual([PRESETS['P144p30fps16x9']!.width, PRESETS['P144p30fps16x9']!.bitrateBps], [256, 400_000]);
});

test('an unknown preset name is refused with the list of known presets', () => {
  assert.throws(() => presetsByName(['P1080p']), (e: GatewayError) => e.code === 'INVALID_PROFILE' && /P1080p/.test(e.message) && /P720p30fps16x9/.test(e.message));
});

test('a JSON profile with an empty name gets the custom_<w>x<h>_<bitrate> name', () => {
  const p = parseProfile({ width: 800, height: 450, bitrate: 900000 });
  assert.equal(p.name, 'custom_800x450_900000');
  assert.equal(p.fps, 0);
  assert.equal(p.fpsDen, 1);
  assert.equal(p.encoder, 'H.264');
});

test('profile, gop and encoder fields are parsed case-insensitively', () => {
  const p = parseProfile({ name: 'hd', width: 1280, height: 720, bitrate: 3_000_000, fps: 30000, fpsDen: 1001, profile: 'H264ConstrainedHigh', gop: '2.5', encoder: 'hevc', quality: 23 });
  assert.equal(p.profile, 'constrainedhigh');
  assert.deepEqual(p.gop, { kind: 'seconds', seconds: 2.5 });
  assert.equal(p.encoder, 'HEVC');
  assert.equal(p.quality, 23);
  assert.deepEqual(parseProfile({ width: 64, height: 64, bitrate: 10000, gop: 'intra' }).gop, { kind: 'intra' });
});

test('bad profile fields are refused naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [{ height: 720, bitrate: 1 }, /profiles\[0\]\.width: is required/],
    [{ width: 1280.5, height: 720, bitrate: 100000 }, /width: must be an integer/],
    [{ width: 1280, height: 720, bitrate: '4000k' }, /bitrate: must be an integer/],
    [{ width: 1280, height: 720, bitrate: 100000, name: '../x' }, /name: must match/],
    [{ width: 1280, height: 720, bitrate: 100000, name: 'source' }, /reserved/],
    [{ width: 1280, height: 720, bitrate: 100000, profile: 'h264extended' }, /profile: must be one of/],
    [{ width: 1280, height: 720, bitrate: 100000, gop: '-1' }, /gop: must be/],
    [{ width: 1280, height: 720, bitrate: 100000, encoder: 'VP9' }, /encoder: VP9 cannot be carried in MPEG-TS/],
    ['not an object', /must be an object/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parseProfile(raw), (e: GatewayError) => e.code === 'INVALID_PROFILE' && message.test(e.message), String(message));
  }
});

test('a ladder mixes preset names and JSON profiles and refuses duplicate names', () => {
  const ladder = parseLadder(['P360p30fps16x9', { name: 'tiny', width: 160, height: 90, bitrate: 100000 }]);
  assert.deepEqual(ladder.map((p) => p.name), ['P360p30fps16x9', 'tiny']);
  assert.throws(() => parseLadder(['P360p30fps16x9', 'P360p30fps16x9']), /duplicate rendition name/);
  assert.throws(() => parseLadder('P360p30fps16x9'), /must be an array/);
});

test('fitting keeps the source aspect ratio inside the requested box with even dimensions', () => {
  const fit = fitRendition(PRESETS['P720p30fps4x3']!, src1080)!; // 960x720 box, 16:9 source
  assert.deepEqual([fit.width, fit.height], [960, 540]);
  const fit240 = fitRendition(PRESETS['P240p30fps16x9']!, src1080)!; // 426x240 box
  assert.deepEqual([fit240.width, fit240.height], [426, 240]);
  assert.equal(fit240.width % 2, 0);
  const portrait = fitRendition(PRESETS['P360p30fps16x9']!, { width: 1080, height: 1920, fpsNum: 30, fpsDen: 1 })!;
  assert.deepEqual([portrait.width, portrait.height], [202, 360]);
});

test('a profile larger than the source is omitted instead of upscaled', () => {
  assert.equal(fitRendition(PRESETS['P720p30fps16x9']!, src360), undefined);
  const same = fitRendition(PRESETS['P360p30fps16x9']!, src360)!;
  assert.deepEqual([same.width, same.height], [640, 360]);
});

test('the output frame rate never exceeds the source rate', () => {
  const keep = fitRendition(PRESETS['P360p30fps16x9']!, src360)!;
  assert.deepEqual([keep.fpsNum, keep.fpsDen, keep.changesFps], [24, 1, false]);
  const down = fitRendition(PRESETS['P720p30fps16x9']!, { width: 1920, height: 1080, fpsNum: 60, fpsDen: 1 })!;
  assert.deepEqual([down.fpsNum, down.fpsDen, down.changesFps], [30, 1, true]);
  const ntsc = fitRendition(PRESETS['P720p30fps16x9']!, { width: 1920, height: 1080, fpsNum: 30000, fpsDen: 1001 })!;
  assert.deepEqual([ntsc.fpsNum, ntsc.fpsDen, ntsc.changesFps], [30000, 1001, false]);
});

test('a rotated source is fitted by its displayed size: 90° and 270° swap width and height, 180° does not', () => {
  const box = parseProfile({ name: 'tall', width: 360, height: 640, bitrate: 1_000_000 });
  const landscape = { width: 640, height: 360, fpsNum: 24, fpsDen: 1 };
  for (const rotationDeg of [90, 270] as const) {
    const f = fitRendition(box, { ...landscape, rotationDeg });
    assert.deepEqual([f?.width, f?.height], [360, 640], `${rotationDeg}°: portrait at the source size`);
    const small = fitRendition(PRESETS['P240p30fps16x9']!, { ...landscape, rotationDeg });
    assert.deepEqual([small?.width, small?.height], [136, 240], `${rotationDeg}°: a 426x240 box takes the portrait picture 240 high`);
  }
  const upsideDown = fitRendition(PRESETS['P360p30fps16x9']!, { ...landscape, rotationDeg: 180 });
  assert.deepEqual([upsideDown?.width, upsideDown?.height], [640, 360]);
  // Unrotated, the landscape picture only fits the portrait box small.
  const unrotated = fitRendition(box, landscape);
  assert.deepEqual([unrotated?.width, unrotated?.height], [360, 202]);
});
