import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planTiles, upscaleByTiles, maxOverlap, TilingAborted, type TileModel } from '../../../src/ai-worker/tiling.ts';

/** Every output-relevant input pixel is in exactly one core, and every input rect fits the tile size. */
function checkPlan(width: number, height: number, tileSize: number, overlap: number): ReturnType<typeof planTiles> {
  const tiles = planTiles(width, height, tileSize, overlap);
  const covered = new Uint8Array(width * height);
  for (const { core, input } of tiles) {
    assert.ok(input.width <= tileSize && input.height <= tileSize, `input ${JSON.stringify(input)} fits ${tileSize}`);
    assert.ok(input.x <= core.x && input.y <= core.y && input.x + input.width >= core.x + core.width && input.y + input.height >= core.y + core.height);
    // Context is the overlap wherever the image goes on.
    assert.equal(core.x - input.x, Math.min(overlap, core.x));
    assert.equal(input.x + input.width - (core.x + core.width), Math.min(overlap, width - (core.x + core.width)));
    if (core.y > 0) assert.equal(core.y - input.y, Math.min(overlap, core.y));
    assert.equal(input.y + input.height - (core.y + core.height), Math.min(overlap, height - (core.y + core.height)));
    for (let y = core.y; y < core.y + core.height; y++) for (let x = core.x; x < core.x + core.width; x++) covered[y * width + x]! += 1;
  }
  assert.ok(covered.every((n) => n === 1), 'cores partition the image');
  return tiles;
}

test('an image that fits in one tile is a single untiled pass', () => {
  assert.deepEqual(planTiles(160, 90, 192, 12), [{ core: { x: 0, y: 0, width: 160, height: 90 }, input: { x: 0, y: 0, width: 160, height: 90 } }]);
});

test('tiles partition the image into cores and never exceed the tile size', () => {
  for (const [w, h, size, overlap] of [[640, 360, 192, 12], [1000, 7, 64, 10], [193, 193, 192, 12], [97, 300, 32, 12], [1024, 1024, 192, 0]] as const) {
    checkPlan(w, h, size, overlap);
  }
});

test('cores are of near-equal size, so there is no sliver tile at the edge', () => {
  const tiles = planTiles(400, 100, 120, 10); // core 100 → 4 columns of 100
  assert.deepEqual(tiles.map((t) => t.core.width), [100, 100, 100, 100]);
  const uneven = planTiles(401, 100, 120, 10).map((t) => t.core.width);
  assert.ok(Math.max(...uneven) - Math.min(...uneven) <= 1, `widths ${uneven.join(',')}`);
});

test('bad tile parameters are refused', () => {
  assert.throws(() => planTiles(10, 10, 8, 0), RangeError);
  assert.throws(() => planTiles(10, 10, 64, maxOverlap(64) + 1), RangeError);
  assert.throws(() => planTiles(0, 10, 64, 4), RangeError);
  assert.throws(() => planTiles(10.5, 10, 64, 4), RangeError);
});

/**
 * A stand-in convolutional "network" with a known receptive radius: `radius` passes of a
 * 3×3 mean filter with zero padding (like Conv2D "same"), then nearest-neighbour ×scale.
 */
function boxModel(radius: number, scale: number): TileModel {
  return (input, width, height) => {
    let a = Float64Array.from(input);
    for (let pass = 0; pass < radius; pass++) {
      const b = new Float64Array(a.length);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < height && xx >= 0 && xx < width) sum += a[(yy * width + xx) * 3 + c]!;
        }
        b[(y * width + x) * 3 + c] = sum / 9;
      }
      a = b;
    }
    const out = new Float32Array(width * scale * height * scale * 3);
    for (let y = 0; y < height * scale; y++) for (let x = 0; x < width * scale; x++) for (let c = 0; c < 3; c++) {
      out[(y * width * scale + x) * 3 + c] = a[(Math.floor(y / scale) * width + Math.floor(x / scale)) * 3 + c]! * 1.5; // × 1.5: exercises clamping
    }
    return out;
  };
}

function noise(width: number, height: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  return Uint8Array.from({ length: width * height * 3 }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  });
}

test('tiling with an overlap at least the receptive radius gives exactly the untiled result', () => {
  const [w, h, scale, radius] = [70, 45, 3, 4];
  const rgb = noise(w, h, 7);
  const model = boxModel(radius, scale);
  const whole = upscaleByTiles(rgb, w, h, scale, planTiles(w, h, 128, 0), model);
  assert.equal(whole.length, w * scale * h * scale * 3);
  const tiles = planTiles(w, h, 24, radius);
  assert.ok(tiles.length > 6);
  assert.deepEqual(upscaleByTiles(rgb, w, h, scale, tiles, model), whole);
});

test('tiling with less overlap than the receptive radius changes pixels (the check above can fail)', () => {
  const [w, h, scale, radius] = [70, 45, 2, 4];
  const rgb = noise(w, h, 9);
  const model = boxModel(radius, scale);
  const whole = upscaleByTiles(rgb, w, h, scale, planTiles(w, h, 128, 0), model);
  const tiled = upscaleByTiles(rgb, w, h, scale, planTiles(w, h, 24, radius - 2), model);
  assert.notDeepEqual(tiled, whole);
});

test('model values are clamped to 0..255 and rounded', () => {
  const out = upscaleByTiles(new Uint8Array(3), 1, 1, 1, planTiles(1, 1, 16, 0), () => Float32Array.from([-20, 127.6, 900]));
  assert.deepEqual([...out], [0, 128, 255]);
});

test('a stop request ends the work before the next tile', () => {
  let calls = 0;
  const model: TileModel = (input, width, height) => { calls++; return new Float32Array(width * height * 3).fill(input[0]!); };
  let stop = false;
  assert.throws(() => upscaleByTiles(new Uint8Array(64 * 64 * 3), 64, 64, 1, planTiles(64, 64, 16, 0), (i, w, h) => {
    const r = model(i, w, h);
    stop = calls === 3;
    return r;
  }, () => stop), TilingAborted);
  assert.equal(calls, 3);
});
