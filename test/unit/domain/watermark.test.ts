import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkWatermarkFits, parseWatermarkRequest, parseWatermarkSpec, watermarkPlacement, WATERMARK_DEFAULTS, type WatermarkSpec,
} from '../../../src/domain/watermark.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

const image = (over: Partial<Extract<WatermarkSpec, { kind: 'image' }>> = {}): WatermarkSpec => ({
  kind: 'image', imageKey: 'watermarks/x.png', imageFormat: 'png', imageWidthPx: 200, imageHeightPx: 100,
  widthFraction: 0.25, position: 'bottom-right', margin: { fraction: 0.02 }, opacity: 0.8, ...over,
});

function refused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof GatewayError && err.code === 'INVALID_WATERMARK' && err.status === 400 && pattern.test(err.message));
}

test('an image request takes the defaults for every field it leaves out', () => {
  const r = parseWatermarkRequest({ imageKey: 'marks/logo.png' }, 'w');
  assert.deepEqual(r, {
    kind: 'image', image: { key: 'marks/logo.png' }, widthFraction: WATERMARK_DEFAULTS.widthFraction,
    position: 'bottom-right', margin: { fraction: 0.02 }, opacity: 0.8,
  });
  const t = parseWatermarkRequest({ text: 'Live, from A&B (1)', position: 'top-left', marginPx: 10, opacity: 1 }, 'w');
  assert.deepEqual(t, { kind: 'text', text: 'Live, from A&B (1)', fontSizeFraction: 0.05, position: 'top-left', margin: { px: 10 }, opacity: 1 });
});

test('bad watermark fields are refused with INVALID_WATERMARK naming the field', () => {
  refused(() => parseWatermarkRequest({}, 'auth webhook: watermark'), /^auth webhook: watermark: set exactly one of image, imageKey, text \(got none\)/);
  refused(() => parseWatermarkRequest({ image: '/a.png', text: 'x' }, 'w'), /exactly one .*got image, text/);
  refused(() => parseWatermarkRequest({ imageKey: 'k', position: 'middle' }, 'w'), /^w\.position: must be one of top-left/);
  refused(() => parseWatermarkRequest({ imageKey: 'k', widthFraction: 1.5 }, 'w'), /^w\.widthFraction: must be a number > 0 and ≤ 1/);
  refused(() => parseWatermarkRequest({ imageKey: 'k', opacity: -0.1 }, 'w'), /^w\.opacity/);
  refused(() => parseWatermarkRequest({ imageKey: 'k', marginPx: 4, marginFraction: 0.1 }, 'w'), /marginPx or marginFraction, not both/);
  refused(() => parseWatermarkRequest({ imageKey: 'k', colour: 'red' }, 'w'), /unknown field "colour"/);
  refused(() => parseWatermarkRequest({ text: "a':b" }, 'w'), /^w\.text: may hold letters/);
  refused(() => parseWatermarkRequest({ text: 'x', widthFraction: 0.2 }, 'w'), /^w\.widthFraction: applies to an image/);
  refused(() => parseWatermarkRequest({ image: '/etc/logo.png' }, 'auth webhook: watermark', { allowPath: false }), /watermark\.image: a local path is not accepted here/);
  refused(() => parseWatermarkRequest('logo.png', 'w'), /^w: must be an object/);
});

test('an image larger than the largest frame of the ladder, or too tall at its relative width, does not fit', () => {
  const frames = [{ width: 640, height: 360 }, { width: 426, height: 240 }];
  checkWatermarkFits(image(), frames, 'w');
  refused(() => checkWatermarkFits(image({ imageWidthPx: 1280, imageHeightPx: 720 }), frames, 'config watermark'),
    /^config watermark: image is 1280x720, larger than the largest frame of the ladder \(640x360\)/);
  refused(() => checkWatermarkFits(image({ imageWidthPx: 100, imageHeightPx: 300, widthFraction: 0.5 }), frames, 'w'), /taller than the frame/);
});

test('the placement scales with the rendition: width is the fraction of the frame, the margin from the nearest edges', () => {
  assert.deepEqual(watermarkPlacement(image(), { width: 640, height: 360 }, 640), { x: 640 - 160 - 13, y: 360 - 80 - 13, width: 160, height: 80, marginPx: 13 });
  assert.deepEqual(watermarkPlacement(image({ position: 'top-left', margin: { px: 16 } }), { width: 320, height: 180 }, 640), { x: 8, y: 8, width: 80, height: 40, marginPx: 8 });
  const center = watermarkPlacement(image({ position: 'center' }), { width: 426, height: 240 }, 640);
  assert.deepEqual(center, { x: 160, y: 93, width: 106, height: 54, marginPx: 9 });
});

test('a mark that would not fit the frame is shrunk to the frame, never larger than it', () => {
  const p = watermarkPlacement(image({ imageWidthPx: 100, imageHeightPx: 400, widthFraction: 1 }), { width: 320, height: 180 }, 320);
  assert.ok(p.height <= 180 && p.width <= 320 && p.x >= 0 && p.y >= 0 && p.x + p.width <= 320 && p.y + p.height <= 180, JSON.stringify(p));
});

test('a spec read back from job data is accepted when well-formed and refused otherwise', () => {
  const spec = image();
  assert.deepEqual(parseWatermarkSpec(JSON.parse(JSON.stringify(spec))), spec);
  assert.equal(parseWatermarkSpec({ ...spec, imageFormat: 'gif' }), undefined);
  assert.equal(parseWatermarkSpec({ ...spec, opacity: 2 }), undefined);
  assert.equal(parseWatermarkSpec({ kind: 'text', text: 'a;b', fontSizeFraction: 0.05, position: 'center', margin: { fraction: 0 }, opacity: 1 }), undefined);
  assert.equal(parseWatermarkSpec('x'), undefined);
});

test('applyToSource: true is carried by the request and the spec, false or absent leaves no field, anything else is refused', () => {
  assert.equal(parseWatermarkRequest({ imageKey: 'k', applyToSource: true }, 'w').applyToSource, true);
  assert.equal(parseWatermarkRequest({ text: 'x', applyToSource: true }, 'w').applyToSource, true);
  assert.equal('applyToSource' in parseWatermarkRequest({ imageKey: 'k', applyToSource: false }, 'w'), false);
  assert.equal('applyToSource' in parseWatermarkRequest({ imageKey: 'k' }, 'w'), false);
  refused(() => parseWatermarkRequest({ imageKey: 'k', applyToSource: 'yes' }, 'streamKeys[0].watermark'), /^streamKeys\[0\]\.watermark\.applyToSource: must be true or false, got "yes"/);
  const marked = image({ applyToSource: true });
  assert.deepEqual(parseWatermarkSpec(JSON.parse(JSON.stringify(marked))), marked);
  assert.equal(parseWatermarkSpec({ ...marked, applyToSource: 'yes' }), undefined);
});
