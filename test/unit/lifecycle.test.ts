/** Lifecycle: the composition root's closer stack. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lifecycle } from '../../src/lifecycle.ts';
import { silentLogger } from '../../src/log/logger.ts';

test('close() drains first, then closes in reverse order of adding, each with the shutdown deadline', async () => {
  const lifecycle = new Lifecycle({ logger: silentLogger(), shutdownTimeoutMs: 5_000, now: () => 1_000 });
  const calls: string[] = [];
  for (const name of ['redis', 'metrics', 'http']) lifecycle.add(name, async (deadlineMs) => { calls.push(`${name}@${deadlineMs}`); });
  lifecycle.setDrain(async (deadlineMs) => { calls.push(`drain@${deadlineMs}`); });
  await lifecycle.close();
  assert.deepEqual(calls, ['drain@6000', 'http@6000', 'metrics@6000', 'redis@6000']);
});

test('close() is idempotent: concurrent and later calls share one run', async () => {
  const lifecycle = new Lifecycle({ logger: silentLogger(), shutdownTimeoutMs: 1_000 });
  let closed = 0;
  lifecycle.add('once', async () => { closed++; });
  const first = lifecycle.close();
  assert.equal(lifecycle.close(), first);
  await first;
  await lifecycle.close();
  assert.equal(closed, 1);
});

test('a failing drain or closer does not stop the others, and close() still resolves', async () => {
  const lifecycle = new Lifecycle({ logger: silentLogger(), shutdownTimeoutMs: 1_000 });
  const calls: string[] = [];
  lifecycle.add('a', async () => { calls.push('a'); });
  lifecycle.add('b', async () => { throw new Error('b broke'); });
  lifecycle.add('c', async () => { calls.push('c'); });
  lifecycle.setDrain(async () => { throw new Error('drain broke'); });
  await lifecycle.close();
  assert.deepEqual(calls, ['c', 'a']);
});

test('only one drain may be set', () => {
  const lifecycle = new Lifecycle({ logger: silentLogger(), shutdownTimeoutMs: 1_000 });
  lifecycle.setDrain(async () => undefined);
  assert.throws(() => lifecycle.setDrain(async () => undefined), /already set/);
});
