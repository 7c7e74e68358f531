/**
 * Overlapping tiles for super-resolution (pure): a large image is cut into tiles of at most
 * `tileSize` × `tileSize` input pixels; each tile is a "core" of the output plus up to
 * `overlap` pixels of context on every side that is not the image's edge. The model runs on
 * the whole tile; only the core's upscaled pixels are kept.
 *
 * Why this is exact: a convolutional network's output pixel depends only on the input
 * pixels within its receptive field. The ESRGAN slim networks' radius is 10 input pixels
 * (measured: a one-pixel impulse changes outputs up to 10 input pixels away, for x2, x3 and
 * x4). With `overlap` ≥ that radius, every kept output pixel sees exactly the inputs it
 * would see in one untiled pass, so tiled and untiled results agree up to float rounding.
 * The default overlap, 12, leaves a margin of 2 pixels.
 *
 * Cost: each tile recomputes its context, so a grid of interior tiles runs
 * (tileSize / (tileSize − 2·overlap))² times the untiled work: 1.31× at 192/12.
 * Memory: the model's activations grow with the tile's area, not the image's (see the
 * worker's README section in bench/README.md for measured numbers).
 */

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface Tile {
  /** Input pixels fed to the model (the core plus context, clipped to the image). */
  readonly input: Rect;
  /** Input pixels whose upscaled output this tile contributes. Cores partition the image. */
  readonly core: Rect;
}

/** Largest context per side that makes sense for a tile size: the core keeps at least 8 pixels. */
export function maxOverlap(tileSize: number): number {
  return Math.floor((tileSize - 8) / 2);
}

/**
 * Splits one axis of `length` pixels into cores of at most `coreSize` and near-equal size.
 * @returns [start, end) pairs covering 0..length without gaps or overlaps.
 */
function spans(length: number, tileSize: number, coreSize: number): [number, number][] {
  if (length <= tileSize) return [[0, length]];
  const count = Math.ceil(length / coreSize);
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) out.push([Math.round((i * length) / count), Math.round(((i + 1) * length) / count)]);
  return out;
}

/**
 * Plans the tiles of a `width` × `height` image (pure).
 * An axis that fits in `tileSize` is not split; an image that fits in both is one tile,
 * the untiled path.
 * @param tileSize largest tile side fed to the model, input pixels (≥ 16)
 * @param overlap context pixels per side, 0..maxOverlap(tileSize)
 * @throws RangeError on bad sizes
 */
export function planTiles(width: number, height: number, tileSize: number, overlap: number): Tile[] {
  for (const [name, v] of [['width', width], ['height', height], ['tileSize', tileSize], ['overlap', overlap]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
  }
  if (width < 1 || height < 1) throw new RangeError(`image must be at least 1x1, got ${width}x${height}`);
  if (tileSize < 16) throw new RangeError(`tileSize must be at least 16, got ${tileSize}`);
  if (overlap > maxOverlap(tileSize)) throw new RangeError(`overlap ${overlap} is too large for tileSize ${tileSize} (at most ${maxOverlap(tileSize)})`);
  const coreSize = tileSize - 2 * overlap;
  const tiles: Tile[] = [];
  for (const [y0, y1] of spans(height, tileSize, coreSize)) {
    for (const [x0, x1] of spans(width, tileSize, coreSize)) {
      const ix0 = Math.max(0, x0 - overlap);
      const iy0 = Math.max(0, y0 - overlap);
      const ix1 = Math.min(width, x1 + overlap);
      const iy1 = Math.min(height, y1 + overlap);
      tiles.push({
        core: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 },
        input: { x: ix0, y: iy0, width: ix1 - ix0, height: iy1 - iy0 },
      });
    }
  }
  return tiles;
}

/**
 * Runs a model over one tile: `input` holds `width` × `height` × 3 values (RGB, 0..255,
 * row-major); the result holds (width·scale) × (height·scale) × 3 values in the same layout.
 */
export type TileModel = (input: Float32Array, width: number, height: number) => Float32Array;

/**
 * Upscales an RGB image tile by tile.
 * @param rgb `width` × `height` × 3 bytes, row-major
 * @param scale output side / input side
 * @param shouldStop checked before each tile; true ends the work with `TilingAborted`
 * @returns (width·scale) × (height·scale) × 3 bytes; model values are clamped to 0..255 and
 *   rounded (half to even, Uint8ClampedArray semantics)
 */
export function upscaleByTiles(
  rgb: Uint8Array, width: number, height: number, scale: number, tiles: readonly Tile[], model: TileModel,
  shouldStop: () => boolean = () => false,
): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const outWidth = width * scale;
  const out = new Uint8ClampedArray(outWidth * height * scale * 3);
  for (const tile of tiles) {
    if (shouldStop()) throw new TilingAborted();
    const { input, core } = tile;
    const patch = new Float32Array(input.width * input.height * 3);
    for (let row = 0; row < input.height; row++) {
      const from = ((input.y + row) * width + input.x) * 3;
      const src = rgb.subarray(from, from + input.width * 3);
      patch.set(src, row * input.width * 3);
    }
    const result = model(patch, input.width, input.height);
    const resultWidth = input.width * scale;
    if (result.length !== resultWidth * input.height * scale * 3) {
      throw new RangeError(`model returned ${result.length} values for a ${input.width}x${input.height} tile at scale ${scale}`);
    }
    const offsetX = (core.x - input.x) * scale;
    const offsetY = (core.y - input.y) * scale;
    const rowValues = core.width * scale * 3;
    for (let row = 0; row < core.height * scale; row++) {
      const from = ((offsetY + row) * resultWidth + offsetX) * 3;
      const to = ((core.y * scale + row) * outWidth + core.x * scale) * 3;
      out.set(result.subarray(from, from + rowValues), to);
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Thrown by {@link upscaleByTiles} when `shouldStop` said so. */
export class TilingAborted extends Error {
  constructor() {
    super('upscale aborted');
    this.name = 'TilingAborted';
  }
}
