import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_RETRY_CONFIG, makeRetryConfig, validateRetryConfig, shouldRetry, attemptTimeoutMs, suspendsWorker, suspensionMs,
  retryAfterS, type RetryConfig,
} from '../../../src/ai/retry-policy.ts';
import { PIPELINES, type FailureKind } from '../../../src/domain/pipelines.ts';

const RETRYABLE: readonly FailureKind[] = ['capacity', 'timeout', 'connection', 'server'];

test('defaults are 3 attempts in a 60 s budget with a timeout for every pipeline', () => {
  assert.equal(DEFAULT_RETRY_CONFIG.maxAttempts, 3);
  assert.equal(DEFAULT_RETRY_CONFIG.totalBudgetMs, 60_000);
  assert.equal(DEFAULT_RETRY_CONFIG.queueWaitMs, 2_000);
  assert.deepEqual(Object.keys(DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline).sort(), [...PIPELINES].sort());
  assert.equal(DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline['image-to-video'], 120_000);
  assert.equal(DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline['text-to-image'], 30_000);
  assert.doesNotThrow(() => validateRetryConfig(DEFAULT_RETRY_CONFIG));
  assert.ok(Object.isFrozen(DEFAULT_RETRY_CONFIG) && Object.isFrozen(DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline));
});

test('a client failure is never retried', () => {
  assert.equal(shouldRetry('client', 1, 0), false);
});

test('capacity, timeout, connection and server failures are retried until the last attempt', () => {
  for (const kind of RETRYABLE) {
    assert.equal(shouldRetry(kind, 1, 0), true, `${kind} after attempt 1`);
    assert.equal(shouldRetry(kind, 2, 0), true, `${kind} after attempt 2`);
    assert.equal(shouldRetry(kind, 3, 0), false, `${kind} after attempt 3 of 3`);
  }
  const single = makeRetryConfig({ maxAttempts: 1 });
  assert.equal(shouldRetry('server', 1, 0, single), false);
});

test('no retry once the budget is spent', () => {
  for (const kind of RETRYABLE) {
    assert.equal(shouldRetry(kind, 1, 59_999), true);
    assert.equal(shouldRetry(kind, 1, 60_000), false);
    assert.equal(shouldRetry(kind, 1, 90_000), false);
  }
});

test('the attempt timeout is the pipeline timeout clipped to the remaining budget', () => {
  assert.equal(attemptTimeoutMs('text-to-image', 0), 30_000);
  assert.equal(attemptTimeoutMs('text-to-image', 45_000), 15_000);
  assert.equal(attemptTimeoutMs('image-to-video', 0), 60_000, 'budget shorter than the pipeline timeout');
  assert.equal(attemptTimeoutMs('llm', 60_000), 0);
  assert.equal(attemptTimeoutMs('llm', 75_000), 0, 'never negative');
  const long = makeRetryConfig({ totalBudgetMs: 600_000, attemptTimeoutMsByPipeline: { llm: 300_000 } });
  assert.equal(attemptTimeoutMs('llm', 0, long), 300_000);
  assert.equal(attemptTimeoutMs('upscale', 0, long), 60_000, 'other pipelines keep their defaults');
});

test('timeout, connection and server failures suspend the worker; capacity and client ones do not', () => {
  assert.deepEqual(
    (['timeout', 'connection', 'server', 'capacity', 'client'] as const).map((k) => suspendsWorker(k)),
    [true, true, true, false, false],
  );
});

test('the suspension doubles with each consecutive failure and stops at the cap', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => suspensionMs(n)), [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000]);
  assert.equal(suspensionMs(1_000), 300_000, 'huge counts do not overflow past the cap');
  assert.equal(suspensionMs(0), 0);
  const custom = makeRetryConfig({ suspendBaseMs: 1_000, suspendMaxMs: 3_000 });
  assert.deepEqual([1, 2, 3].map((n) => suspensionMs(n, custom)), [1_000, 2_000, 3_000]);
});

test('Retry-After is the shortest suspension in whole seconds, at least 1', () => {
  assert.equal(retryAfterS(), 5);
  assert.equal(retryAfterS(makeRetryConfig({ suspendBaseMs: 1_500 })), 2);
  assert.equal(retryAfterS(makeRetryConfig({ suspendBaseMs: 10 })), 1);
});

test('an invalid config is rejected with an error naming the field', () => {
  const cases: Array<[Partial<RetryConfig> | Record<string, unknown>, RegExp]> = [
    [{ maxAttempts: 0 }, /retry\.maxAttempts/],
    [{ maxAttempts: 2.5 }, /retry\.maxAttempts/],
    [{ totalBudgetMs: 0 }, /retry\.totalBudgetMs/],
    [{ totalBudgetMs: Number.NaN }, /retry\.totalBudgetMs/],
    [{ suspendBaseMs: -1 }, /retry\.suspendBaseMs/],
    [{ suspendMaxMs: 1_000 }, /retry\.suspendMaxMs/],
    [{ queueWaitMs: -5 }, /retry\.queueWaitMs/],
    [{ attemptTimeoutMsByPipeline: { ...DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline, llm: 0 } }, /retry\.attemptTimeoutMsByPipeline\.llm/],
    [{ attemptTimeoutMsByPipeline: { ...DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline, 'text-to-img': 1 } }, /retry\.attemptTimeoutMsByPipeline\.text-to-img/],
  ];
  for (const [override, message] of cases) {
    const config = { ...DEFAULT_RETRY_CONFIG, ...override } as RetryConfig;
    assert.throws(() => validateRetryConfig(config), (err: unknown) => err instanceof Error && message.test(err.message), JSON.stringify(override));
  }
  const { upscale: _omitted, ...missing } = DEFAULT_RETRY_CONFIG.attemptTimeoutMsByPipeline;
  assert.throws(() => validateRetryConfig({ ...DEFAULT_RETRY_CONFIG, attemptTimeoutMsByPipeline: missing as RetryConfig['attemptTimeoutMsByPipeline'] }), /retry\.attemptTimeoutMsByPipeline\.upscale/);
  assert.throws(() => makeRetryConfig({ maxAttempts: -1 }), /retry\.maxAttempts/);
});
