import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SlotWaiters, type SlotWaitOutcome } from '../../../src/ai/slot-waiters.ts';

/** The outcome of `p` after a few turns of the event loop, or 'pending'. */
async function settledSoon(p: Promise<SlotWaitOutcome>): Promise<SlotWaitOutcome | 'pending'> {
  let outcome: SlotWaitOutcome | 'pending' = 'pending';
  void p.then((o) => { outcome = o; });
  for (let i = 0; i < 5; i++) await nextTurn();
  return outcome;
}

test('a waiter is woken by a wake of its key, oldest first, and not by another key', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] }); // no timer ever fires unless ticked: no polling can help
  const waiters = new SlotWaiters();
  const order: string[] = [];
  const first = waiters.wait('llm m', 60_000).then((o) => { order.push('first'); return o; });
  const second = waiters.wait('llm m', 60_000).then((o) => { order.push('second'); return o; });
  const other = waiters.wait('text-to-image m', 60_000);
  waiters.wake('llm m');
  assert.equal(await settledSoon(first), 'woken');
  assert.equal(await settledSoon(second), 'woken');
  assert.deepEqual(order, ['first', 'second']);
  assert.equal(await settledSoon(other), 'pending');
  assert.equal(waiters.size, 1);
  waiters.wakeAll();
  assert.equal(await settledSoon(other), 'woken');
  assert.equal(waiters.size, 0);
});

test('a waiter times out at its deadline, not before, and leaves the queue', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const waiters = new SlotWaiters();
  const waiting = waiters.wait('k', 200);
  t.mock.timers.tick(199);
  assert.equal(await settledSoon(waiting), 'pending');
  t.mock.timers.tick(1);
  assert.equal(await settledSoon(waiting), 'timeout');
  assert.equal(waiters.size, 0);
  waiters.wake('k'); // a late wake finds nobody
  assert.equal(await waiters.wait('k', 0), 'timeout', 'no time left: no wait');
});

test('an abort ends the wait, and an aborted signal does not wait at all', async () => {
  const waiters = new SlotWaiters();
  const controller = new AbortController();
  const waiting = waiters.wait('k', 60_000, controller.signal);
  controller.abort();
  assert.equal(await waiting, 'aborted');
  assert.equal(waiters.size, 0);
  assert.equal(await waiters.wait('k', 60_000, controller.signal), 'aborted');
});

test('wakeOne wakes only the oldest waiter of its key', async () => {
  const waiters = new SlotWaiters();
  const first = waiters.wait('k', 60_000);
  const other = waiters.wait('x', 60_000);
  const second = waiters.wait('k', 60_000);
  assert.equal(waiters.wakeOne('k'), true);
  assert.equal(await settledSoon(first), 'woken');
  assert.equal(await settledSoon(second), 'pending', 'the next waiter of the key still waits');
  assert.equal(await settledSoon(other), 'pending', 'another key is not woken');
  assert.equal(waiters.wakeOne('k'), true);
  assert.equal(await settledSoon(second), 'woken');
  assert.equal(waiters.wakeOne('k'), false, 'nobody left');
  waiters.wakeAll();
  assert.equal(await settledSoon(other), 'woken');
});
