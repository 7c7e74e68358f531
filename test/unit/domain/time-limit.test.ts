import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settleWithin } from '../../../src/domain/time-limit.ts';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('work that settles in time gives its value or its error, and leaves no timer behind', async () => {
  const before = timers();
  assert.equal(await settleWithin(Promise.resolve(7), 60_000, () => 'late'), 7);
  await assert.rejects(settleWithin(Promise.reject(new Error('boom')), 60_000, () => 'late'), /boom/);
  await new Promise((r) => setImmediate(r));
  assert.equal(timers(), before, 'the 60 s timers were cleared');
});

test('at the limit the result is onTimeout\'s value, or its error when it throws; a late rejection of the work is ignored', async () => {
  let rejectLate: (err: Error) => void = () => undefined;
  const work = new Promise<number>((_, reject) => { rejectLate = reject; });
  const valued = settleWithin(work, 200, () => false);
  const thrown = settleWithin(new Promise<number>(() => undefined), 200, () => { throw new Error('took too long'); });
  let settled = false;
  void valued.then(() => { settled = true; });
  const started = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(settled, false, 'not before the limit');
  assert.equal(await valued, false);
  assert.ok(Date.now() - started >= 195, 'at the limit');
  await assert.rejects(thrown, /took too long/);
  rejectLate(new Error('late failure')); // must not surface as an unhandled rejection
  await new Promise((r) => setImmediate(r));
});
