/**
 * Prices and charges in integer credits (docs/wire-contract.md §10). A price is the rational
 * `pricePerUnit / pixelsPerUnit` credits per unit (Livepeer's PriceInfo); a charge is
 * `ceil(units × pricePerUnit / pixelsPerUnit)`, computed in bigint so no float ever touches
 * money. Rounding up means no work is free by truncation.
 */

export interface Price {
  /** Credits per `pixelsPerUnit` units; integer ≥ 0. */
  readonly pricePerUnit: number;
  /** Units the price applies to; integer ≥ 1. */
  readonly pixelsPerUnit: number;
}

/** `pricePerUnit/pixelsPerUnit`, the rule recorded with each ledger entry. */
export function priceRule(price: Price): string {
  return `${price.pricePerUnit}/${price.pixelsPerUnit}`;
}

/**
 * Credits owed for `units` at `price`, rounded up.
 * @throws RangeError for negative or non-integer units or an invalid price.
 */
export function chargeFor(units: bigint | number, price: Price): bigint {
  const u = typeof units === 'bigint' ? units : BigInt(units);
  if (u < 0n) throw new RangeError('units must be ≥ 0');
  if (!Number.isSafeInteger(price.pricePerUnit) || price.pricePerUnit < 0) throw new RangeError('pricePerUnit must be a non-negative integer');
  if (!Number.isSafeInteger(price.pixelsPerUnit) || price.pixelsPerUnit < 1) throw new RangeError('pixelsPerUnit must be a positive integer');
  const numerator = u * BigInt(price.pricePerUnit);
  const denominator = BigInt(price.pixelsPerUnit);
  return (numerator + denominator - 1n) / denominator;
}

/** Σ width × height × frames over renditions: transcoding units (docs/wire-contract.md §10). */
export function transcodePixels(renditions: readonly { width: number; height: number; frames: number }[]): bigint {
  return renditions.reduce((sum, r) => sum + BigInt(r.width) * BigInt(r.height) * BigInt(r.frames), 0n);
}
