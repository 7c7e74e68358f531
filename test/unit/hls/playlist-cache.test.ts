/**
 * PlaylistCache's bookkeeping (src/hls/playlist-cache.ts) on a fake clock: the read/invalidate
 * race guard, the wholesale drop when the change subscription goes away, the safety max age
 * and the bound on entries. The cache behind real HTTP and Redis: test/integration/hls/playlist-cache.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlaylistCache } from '../../../src/hls/playlist-cache.ts';

const reply = (text: string) => ({ body: Buffer.from(text), cacheControl: 'no-cache' });

function cacheAt(options: { maxAgeMs?: number; maxEntries?: number } = {}): { cache: PlaylistCache; clock: { nowMs: number } } {
  const clock = { nowMs: 1_000_000 };
  const cache = new PlaylistCache({ maxAgeMs: options.maxAgeMs ?? 1000, ...(options.maxEntries ? { maxEntries: options.maxEntries } : {}), now: () => clock.nowMs });
  cache.setLive(true);
  return { cache, clock };
}

test('a reply read before an invalidation of its stream is not kept (the race guard); one read after it is', () => {
  const { cache } = cacheAt();
  const early = cache.begin('cam');
  cache.invalidate('cam');
  assert.equal(cache.put(early, 'source', reply('old')), false);
  assert.equal(cache.get('cam', 'source'), undefined);

  const late = cache.begin('cam');
  assert.equal(cache.put(late, 'source', reply('new')), true);
  assert.equal(cache.get('cam', 'source')?.body.toString(), 'new');
  // Another stream's invalidation does not refuse it.
  const other = cache.begin('cam');
  cache.invalidate('dog');
  assert.equal(cache.put(other, 'low', reply('low')), true);
});

test('an invalidation drops every kept playlist of that stream and only of it', () => {
  const { cache } = cacheAt();
  for (const [m, p] of [['cam', 'source'], ['cam', 'low'], ['dog', 'source']] as const) cache.put(cache.begin(m), p, reply(`${m}/${p}`));
  cache.invalidate('cam');
  assert.equal(cache.get('cam', 'source'), undefined);
  assert.equal(cache.get('cam', 'low'), undefined);
  assert.equal(cache.get('dog', 'source')?.body.toString(), 'dog/source');
});

test('not live (no subscription yet, or it dropped): nothing served or kept, everything dropped, tokens from before refused', () => {
  const cache = new PlaylistCache({ maxAgeMs: 1000 });
  assert.equal(cache.put(cache.begin('cam'), 'source', reply('x')), false, 'not live before the first subscription');
  cache.setLive(true);
  const inFlight = cache.begin('cam');
  cache.put(cache.begin('cam'), 'source', reply('x'));
  cache.setLive(false);
  assert.equal(cache.get('cam', 'source'), undefined);
  assert.equal(cache.stats.entries, 0);
  cache.setLive(true);
  assert.equal(cache.get('cam', 'source'), undefined, 'nothing from before the drop');
  assert.equal(cache.put(inFlight, 'source', reply('read before the drop')), false);
});

test('a reply is served for less than maxAgeMs after its read began, so a lost message only delays', () => {
  const { cache, clock } = cacheAt({ maxAgeMs: 1000 });
  const token = cache.begin('cam');
  clock.nowMs += 300;
  cache.put(token, 'source', reply('x'));
  clock.nowMs += 699;
  assert.ok(cache.get('cam', 'source'));
  clock.nowMs += 1;
  assert.equal(cache.get('cam', 'source'), undefined);
});

test('maxAgeMs 0 keeps nothing', () => {
  const { cache } = cacheAt({ maxAgeMs: 0 });
  assert.equal(cache.live, false);
  assert.equal(cache.put(cache.begin('cam'), 'source', reply('x')), false);
});

test('at most maxEntries replies, the least recently used dropped first', () => {
  const { cache } = cacheAt({ maxEntries: 2 });
  cache.put(cache.begin('a'), 'source', reply('a'));
  cache.put(cache.begin('b'), 'source', reply('b'));
  assert.ok(cache.get('a', 'source'));
  cache.put(cache.begin('c'), 'source', reply('c'));
  assert.equal(cache.stats.entries, 2);
  assert.equal(cache.get('b', 'source'), undefined, 'b was the least recently used');
  assert.ok(cache.get('a', 'source'));
  assert.ok(cache.get('c', 'source'));
});
