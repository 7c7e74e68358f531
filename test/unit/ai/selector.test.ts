import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  selectWorker, freeCapacity, updateLatencyScore, isAvailable, DEFAULT_EXPLORATION_RATE, type Candidate, type SelectOptions,
} from '../../../src/ai/selector.ts';

const NOW_MS = 1_700_000_000_000;

function worker(workerID: string, over: Partial<Candidate> = {}): Candidate {
  return { workerID, warm: true, capacity: 2, inFlight: 0, latencyScoreSPerUnit: 1, healthy: true, ...over };
}

/** Options with a random source that fails the test if it is consulted, unless one is given. */
function opts(over: Partial<SelectOptions> = {}): SelectOptions {
  return {
    nowMs: NOW_MS,
    excluded: new Set(),
    random: () => assert.fail('random() should not be called for this decision'),
    ...over,
  };
}

/** Deterministic uniform [0, 1) source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a warm worker is chosen over a faster cold one', () => {
  const chosen = selectWorker([worker('cold', { warm: false, latencyScoreSPerUnit: 0.1 }), worker('warm', { latencyScoreSPerUnit: 5 })], opts());
  assert.equal(chosen?.workerID, 'warm');
});

test('the cold pool is used when no warm worker has a free slot', () => {
  const chosen = selectWorker([worker('warm', { capacity: 1, inFlight: 1 }), worker('cold', { warm: false })], opts());
  assert.equal(chosen?.workerID, 'cold');
});

test('full, suspended, unhealthy and excluded workers are skipped', () => {
  const candidates = [
    worker('full', { latencyScoreSPerUnit: 0.1, capacity: 3, inFlight: 3 }),
    worker('suspended', { latencyScoreSPerUnit: 0.1, suspendedUntilMs: NOW_MS + 1 }),
    worker('unhealthy', { latencyScoreSPerUnit: 0.1, healthy: false }),
    worker('tried', { latencyScoreSPerUnit: 0.1 }),
    worker('left', { latencyScoreSPerUnit: 9 }),
  ];
  assert.equal(selectWorker(candidates, opts({ excluded: new Set(['tried']) }))?.workerID, 'left');
});

test('a suspension that ends now or earlier no longer excludes the worker', () => {
  assert.equal(isAvailable(worker('a', { suspendedUntilMs: NOW_MS }), NOW_MS), true);
  assert.equal(isAvailable(worker('a', { suspendedUntilMs: NOW_MS + 1 }), NOW_MS), false);
  assert.equal(selectWorker([worker('back', { suspendedUntilMs: NOW_MS - 10 })], opts())?.workerID, 'back');
});

test('the lowest latency score wins regardless of order', () => {
  const candidates = [worker('slow', { latencyScoreSPerUnit: 3e-7 }), worker('fast', { latencyScoreSPerUnit: 1e-7 }), worker('mid', { latencyScoreSPerUnit: 2e-7 })];
  assert.equal(selectWorker(candidates, opts())?.workerID, 'fast');
  assert.equal(selectWorker([...candidates].reverse(), opts())?.workerID, 'fast');
});

test('an unscored worker is explored when no worker in the pool is scored yet', () => {
  const chosen = selectWorker([worker('b', { latencyScoreSPerUnit: undefined, inFlight: 1 }), worker('a', { latencyScoreSPerUnit: undefined, inFlight: 1 }), worker('c', { latencyScoreSPerUnit: undefined })], opts());
  assert.equal(chosen?.workerID, 'c', 'least loaded unscored worker');
});

test('an unscored worker is explored when random() falls under the exploration rate', () => {
  const candidates = [worker('known', { latencyScoreSPerUnit: 0.5 }), worker('new', { latencyScoreSPerUnit: undefined })];
  assert.equal(selectWorker(candidates, opts({ random: () => 0.05, explorationRate: 0.1 }))?.workerID, 'new');
  assert.equal(selectWorker(candidates, opts({ random: () => 0.1, explorationRate: 0.1 }))?.workerID, 'known');
  assert.equal(selectWorker(candidates, opts({ random: () => 0.99 }))?.workerID, 'known');
});

test('with a seeded random source, exploration happens at the configured rate and not otherwise', () => {
  const candidates = [worker('known', { latencyScoreSPerUnit: 0.5 }), worker('new-1', { latencyScoreSPerUnit: undefined }), worker('new-2', { latencyScoreSPerUnit: undefined, inFlight: 1 })];
  const trials = 20_000;
  for (const explorationRate of [DEFAULT_EXPLORATION_RATE, 0.25]) {
    const random = seeded(42);
    const counts = new Map<string, number>();
    for (let i = 0; i < trials; i++) {
      const id = selectWorker(candidates, opts({ random, explorationRate }))!.workerID;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const explored = counts.get('new-1') ?? 0;
    assert.ok(Math.abs(explored / trials - explorationRate) < 0.01, `rate ${explorationRate}: explored ${explored}/${trials}`);
    assert.equal(counts.get('new-2'), undefined, 'exploration picks the least loaded unscored worker');
    assert.equal(explored + (counts.get('known') ?? 0), trials);
  }
});

test('exploration rate 0 never consults random() nor picks an unscored worker beside a scored one', () => {
  const candidates = [worker('known', { latencyScoreSPerUnit: 0.5 }), worker('new', { latencyScoreSPerUnit: undefined })];
  assert.equal(selectWorker(candidates, opts({ explorationRate: 0 }))?.workerID, 'known');
});

test('random() is not consulted when the pool has only scored workers', () => {
  assert.equal(selectWorker([worker('a'), worker('b', { latencyScoreSPerUnit: 0.5 })], opts({ explorationRate: 1 }))?.workerID, 'b');
});

test('equal scores go to the lower inFlight/capacity ratio, then to the smaller workerID', () => {
  const byLoad = [worker('a', { capacity: 2, inFlight: 1 }), worker('b', { capacity: 4, inFlight: 1 }), worker('c', { capacity: 3, inFlight: 1 })];
  assert.equal(selectWorker(byLoad, opts())?.workerID, 'b');
  const byID = [worker('w-2', { capacity: 4, inFlight: 2 }), worker('w-1', { capacity: 2, inFlight: 1 })];
  assert.equal(selectWorker(byID, opts())?.workerID, 'w-1');
  assert.equal(selectWorker([...byID].reverse(), opts())?.workerID, 'w-1');
});

test('a higher score is not chosen over a lower one just because it is idle', () => {
  const chosen = selectWorker([worker('busy-fast', { capacity: 4, inFlight: 3, latencyScoreSPerUnit: 1 }), worker('idle-slow', { latencyScoreSPerUnit: 1.01 })], opts());
  assert.equal(chosen?.workerID, 'busy-fast');
});

test('nothing available gives undefined', () => {
  assert.equal(selectWorker([], opts()), undefined);
  const candidates = [worker('full', { inFlight: 2 }), worker('down', { healthy: false }), worker('tried', { warm: false })];
  assert.equal(selectWorker(candidates, opts({ excluded: new Set(['tried']) })), undefined);
});

test('an exploration rate outside [0, 1] is rejected', () => {
  assert.throws(() => selectWorker([worker('a')], opts({ explorationRate: 1.5 })), /explorationRate/);
  assert.throws(() => selectWorker([worker('a')], opts({ explorationRate: Number.NaN })), /explorationRate/);
});

test('freeCapacity sums free slots of available workers only', () => {
  const candidates = [
    worker('a', { capacity: 4, inFlight: 1 }), // 3
    worker('b', { capacity: 2, inFlight: 0, warm: false }), // 2
    worker('full', { capacity: 2, inFlight: 2 }),
    worker('suspended', { capacity: 5, suspendedUntilMs: NOW_MS + 1000 }),
    worker('down', { capacity: 5, healthy: false }),
    worker('over', { capacity: 1, inFlight: 3 }), // over-committed: not negative
  ];
  assert.equal(freeCapacity(candidates, NOW_MS), 5);
  assert.equal(freeCapacity(candidates, NOW_MS + 1000), 10, 'suspension over');
  assert.equal(freeCapacity(candidates, NOW_MS, new Set(['a'])), 2);
  assert.equal(freeCapacity([], NOW_MS), 0);
});

test('the first latency sample becomes the score, later ones are averaged with weight alpha', () => {
  assert.equal(updateLatencyScore(undefined, 2e-7), 2e-7);
  assert.ok(Math.abs(updateLatencyScore(10, 20) - 13) < 1e-12, 'default alpha 0.3: 0.3×20 + 0.7×10');
  assert.ok(Math.abs(updateLatencyScore(10, 20, 0.5) - 15) < 1e-12);
  assert.equal(updateLatencyScore(10, 20, 1), 20);
  let score: number | undefined;
  for (let i = 0; i < 50; i++) score = updateLatencyScore(score, 4);
  assert.ok(Math.abs(score! - 4) < 1e-12, 'constant samples keep the score');
});

test('a negative or non-finite sample, or alpha outside (0, 1], is rejected', () => {
  assert.throws(() => updateLatencyScore(1, -1), /sampleSPerUnit/);
  assert.throws(() => updateLatencyScore(1, Number.POSITIVE_INFINITY), /sampleSPerUnit/);
  assert.throws(() => updateLatencyScore(1, 1, 0), /alpha/);
  assert.throws(() => updateLatencyScore(1, 1, 1.2), /alpha/);
});
