import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StageTimes, parseServerTiming } from '../../../src/ai/stage-times.ts';

test('StageTimes: each stage lasts from the previous mark, a repeated stage sums, total is their sum', async () => {
  const stages = new StageTimes();
  stages.mark('auth');
  await new Promise((r) => setTimeout(r, 20));
  stages.mark('call');
  stages.mark('store');
  await new Promise((r) => setTimeout(r, 5));
  stages.mark('call');
  const parsed = parseServerTiming(stages.header());
  assert.deepEqual(Object.keys(parsed), ['auth', 'call', 'store', 'total']);
  assert.ok(parsed['call']! >= 24, `call ${parsed['call']}`);
  const sum = parsed['auth']! + parsed['call']! + parsed['store']!;
  assert.ok(Math.abs(parsed['total']! - sum) < 0.01, `total ${parsed['total']} against ${sum}`);
});

test('parseServerTiming reads name;dur pairs and skips entries without a dur', () => {
  assert.deepEqual(parseServerTiming('db;dur=53.2, cache;desc="Cache Read";dur=23.2, miss, total;dur=1'), { db: 53.2, cache: 23.2, total: 1 });
});
