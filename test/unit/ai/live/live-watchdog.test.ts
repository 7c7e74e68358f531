/**
 * The live session's watchdog decisions and swap budget as pure functions, with Livepeer's
 * values (go-livepeer server/ai_live_video.go): events 30 s, output 30 s while input is
 * recent (within 15 s), 3 input segments in flight, 2 swaps within 3 min.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { askSwap, checkInflight, checkWorker, newSwapBudget } from '../../../../src/ai/live/live-watchdog.ts';

const LIMITS = { eventTimeoutMs: 30_000, outputTimeoutMs: 30_000, maxInflightSegments: 3 };

test('a worker silent on its events channel for more than 30 s is left, without suspension', () => {
  assert.deepEqual(checkWorker({ startedAtMs: 0, lastEventAtMs: 1000, lastOutputAtMs: 30_000, lastInputAtMs: 30_000 }, 31_000, LIMITS), { leave: false });
  const verdict = checkWorker({ startedAtMs: 0, lastEventAtMs: 1000, lastOutputAtMs: 31_000, lastInputAtMs: 31_000 }, 31_001, LIMITS);
  assert.equal(verdict.leave, true);
  assert.equal(verdict.leave && verdict.suspend, false);
  assert.match(verdict.leave ? verdict.reason : '', /timeout waiting for events/);
  // Never any event: counted from the start.
  assert.equal(checkWorker({ startedAtMs: 0 }, 30_001, LIMITS).leave, true);
  assert.equal(checkWorker({ startedAtMs: 0 }, 29_999, LIMITS).leave, false);
});

test('no output for 30 s is the worker\'s fault only while input arrived within the last 15 s: then it is suspended and left', () => {
  const base = { startedAtMs: 0, lastEventAtMs: 39_000, lastOutputAtMs: 10_000 };
  const stalled = checkWorker({ ...base, lastInputAtMs: 39_000 }, 40_000, LIMITS);
  assert.deepEqual(stalled.leave && [stalled.suspend, /timeout waiting for segments/.test(stalled.reason)], [true, true]);
  // Input stopped 16 s ago: no input, no output; the worker is kept.
  assert.deepEqual(checkWorker({ ...base, lastInputAtMs: 24_000 }, 40_000, LIMITS), { leave: false });
  // No input ever: kept.
  assert.deepEqual(checkWorker(base, 40_000, LIMITS), { leave: false });
  // Output 29.9 s ago: kept.
  assert.deepEqual(checkWorker({ ...base, lastOutputAtMs: 10_100, lastInputAtMs: 39_000 }, 40_000, LIMITS), { leave: false });
});

test('a new input segment while 3 are in flight means the worker is slow', () => {
  assert.deepEqual(checkInflight(2, LIMITS), { leave: false });
  const slow = checkInflight(3, LIMITS);
  assert.deepEqual(slow.leave && [slow.suspend, /worker is slow/.test(slow.reason)], [false, true]);
});

test('the swap budget allows 2 swaps within 3 minutes of the previous one (or the start) and refuses the third', () => {
  const limits = { windowMs: 180_000, maxSwaps: 2 };
  let state = newSwapBudget(0);
  let asked = askSwap(state, 10_000, limits);
  assert.equal(asked.allowed, true);
  state = asked.state;
  asked = askSwap(state, 20_000, limits);
  assert.equal(asked.allowed, true);
  state = asked.state;
  asked = askSwap(state, 30_000, limits);
  assert.equal(asked.allowed, false, 'a third swap within the window: Too many swaps');
  // A swap more than 3 min after the previous one restarts the count.
  const later = askSwap(state, 20_000 + 180_001, limits);
  assert.deepEqual([later.allowed, later.state.recentSwaps], [true, 1]);
  // The first swap long after the start counts as 1 too.
  assert.deepEqual(askSwap(newSwapBudget(0), 500_000, limits).state.recentSwaps, 1);
  // maxSwaps 0: never.
  assert.equal(askSwap(newSwapBudget(0), 1, { windowMs: 180_000, maxSwaps: 0 }).allowed, false);
});
