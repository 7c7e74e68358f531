/** ai-routes.ts newRequestID: the `ai-<24 hex>` request IDs results are stored and served under. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestID } from '../../../src/ai/ai-routes.ts';

test('request IDs are ai-<24 lower-case hex>, distinct, and every hex digit varies', () => {
  const ids = Array.from({ length: 2000 }, () => newRequestID());
  for (const id of ids) assert.match(id, /^ai-[0-9a-f]{24}$/);
  assert.equal(new Set(ids).size, ids.length);
  // No fixed digit (a UUID's version nibble left in would be one): each position takes many values.
  for (let i = 3; i < 27; i++) assert.ok(new Set(ids.map((id) => id[i])).size >= 12, `position ${i} varies`);
});
