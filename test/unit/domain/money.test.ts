import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chargeFor, priceRule, transcodePixels } from '../../../src/domain/money.ts';

test('a charge is units times the rational price, rounded up, in bigint', () => {
  assert.equal(chargeFor(1_000_000, { pricePerUnit: 1, pixelsPerUnit: 1_000_000 }), 1n);
  assert.equal(chargeFor(1_000_001, { pricePerUnit: 1, pixelsPerUnit: 1_000_000 }), 2n);
  assert.equal(chargeFor(0, { pricePerUnit: 5, pixelsPerUnit: 3 }), 0n);
  assert.equal(chargeFor(7, { pricePerUnit: 3, pixelsPerUnit: 2 }), 11n); // 10.5 → 11
  assert.equal(chargeFor(2n ** 60n, { pricePerUnit: 3, pixelsPerUnit: 1 }), 3n * 2n ** 60n, 'beyond 2^53 stays exact');
  assert.equal(priceRule({ pricePerUnit: 3, pixelsPerUnit: 2 }), '3/2');
});

test('invalid prices and units are refused', () => {
  assert.throws(() => chargeFor(-1, { pricePerUnit: 1, pixelsPerUnit: 1 }), RangeError);
  assert.throws(() => chargeFor(1, { pricePerUnit: 1.5, pixelsPerUnit: 1 }), RangeError);
  assert.throws(() => chargeFor(1, { pricePerUnit: 1, pixelsPerUnit: 0 }), RangeError);
});

test('transcoding units are the sum of width × height × frames over renditions', () => {
  assert.equal(transcodePixels([{ width: 1280, height: 720, frames: 60 }, { width: 640, height: 360, frames: 60 }]), 1280n * 720n * 60n + 640n * 360n * 60n);
  assert.equal(transcodePixels([]), 0n);
});
