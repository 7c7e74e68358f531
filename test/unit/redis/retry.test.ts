import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import {
  DEFAULT_REDIS_RETRY_CONFIG, RedisRetry, getRetryDelayMs, isTransientRedisError, shouldRetry, validateRedisRetryConfig, type RedisRetryConfig,
} from '../../../src/redis/retry.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

const silent = pino({ level: 'silent' });

/** ioredis's error once a command waited through `maxRetriesPerRequest` reconnects (its `name` is the class name). */
function maxRetriesError(): Error {
  const err = new Error('Reached the max retries per request limit (which is 3). Refer to "maxRetriesPerRequest" option for details.');
  err.name = 'MaxRetriesPerRequestError';
  return err;
}

function replyError(message: string): Error {
  const err = new Error(message);
  err.name = 'ReplyError';
  return err;
}

test('defaults: 200 ms doubling to a 2 s cap, a 30 s budget', () => {
  assert.deepEqual({ ...DEFAULT_REDIS_RETRY_CONFIG }, { retryDelayMs: 200, maxRetryDelayMs: 2000, backoff: 'exponential', budgetMs: 30_000 });
  assert.doesNotThrow(() => validateRedisRetryConfig(DEFAULT_REDIS_RETRY_CONFIG));
  assert.ok(Object.isFrozen(DEFAULT_REDIS_RETRY_CONFIG));
});

test('exponential delays double from retryDelayMs and stop at maxRetryDelayMs', () => {
  const delays = Array.from({ length: 8 }, (_, n) => getRetryDelayMs(DEFAULT_REDIS_RETRY_CONFIG, n));
  assert.deepEqual(delays, [200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
  assert.equal(getRetryDelayMs(DEFAULT_REDIS_RETRY_CONFIG, 10_000), 2000, 'no overflow for a long outage');
  assert.equal(getRetryDelayMs(DEFAULT_REDIS_RETRY_CONFIG, -3), 200, 'a negative count is the first retry');
});

test('linear delays grow by retryDelayMs and stop at maxRetryDelayMs', () => {
  const linear: RedisRetryConfig = { ...DEFAULT_REDIS_RETRY_CONFIG, backoff: 'linear', retryDelayMs: 500 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => getRetryDelayMs(linear, n)), [500, 1000, 1500, 2000, 2000, 2000]);
});

test('connection loss, max-retries, LOADING and the queue timeout are transient', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1' });
  const reset = Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET', syscall: 'write', address: '127.0.0.1' });
  for (const err of [
    maxRetriesError(), new Error('Connection is closed.'), refused, reset,
    replyError('LOADING Redis is loading the dataset in memory'), replyError('BUSY Redis is busy running a script'),
    replyError('READONLY You can\'t write against a read only replica.'),
    new GatewayError('QUEUE_UNAVAILABLE', 'transcode queue did not accept the job within 5000 ms (is Redis up?)'),
    new GatewayError('REDIS_UNAVAILABLE', "the gateway's Redis is unavailable; retry in 5 s"),
  ]) {
    assert.equal(isTransientRedisError(err), true, err.message);
  }
});

test('script errors, other replies, other gateway errors and non-errors are not transient', () => {
  for (const err of [
    replyError('ERR Error running script (call to f_x): user_script:3: attempt to compare nil with number'),
    replyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
    replyError('NOSCRIPT No matching script.'),
    new GatewayError('NOT_FOUND', 'account local not found'),
    new GatewayError('TRANSCODE_FAILED', 'ffmpeg exited with 1'),
    new TypeError('Cannot read properties of undefined'),
    'a string', undefined,
  ]) {
    assert.equal(isTransientRedisError(err), false, String(err));
  }
});

test('shouldRetry gives the backoff delay while the deadline is ahead, clipped to it, and gives up after it', () => {
  const c = DEFAULT_REDIS_RETRY_CONFIG;
  assert.equal(shouldRetry(c, maxRetriesError(), 0, 1000, 31_000), 200);
  assert.equal(shouldRetry(c, maxRetriesError(), 5, 1000, 31_000), 2000);
  assert.equal(shouldRetry(c, maxRetriesError(), 5, 30_500, 31_000), 500, 'the last attempt runs at the deadline');
  assert.equal(shouldRetry(c, maxRetriesError(), 0, 31_000, 31_000), undefined);
  assert.equal(shouldRetry(c, maxRetriesError(), 0, 40_000, 31_000), undefined);
  assert.equal(shouldRetry(c, replyError('ERR wrong number of arguments'), 0, 1000, 31_000), undefined, 'never a non-transient error');
});

test('validation names the bad field', () => {
  assert.throws(() => validateRedisRetryConfig({ ...DEFAULT_REDIS_RETRY_CONFIG, budgetMs: 0 }), /budgetMs must be a number > 0 \(got 0\)/);
  assert.throws(() => validateRedisRetryConfig({ ...DEFAULT_REDIS_RETRY_CONFIG, retryDelayMs: -1 }), /retryDelayMs/);
  assert.throws(() => validateRedisRetryConfig({ ...DEFAULT_REDIS_RETRY_CONFIG, maxRetryDelayMs: 100 }), /maxRetryDelayMs must be a number >= retryDelayMs \(200\)/);
  assert.throws(() => validateRedisRetryConfig({ ...DEFAULT_REDIS_RETRY_CONFIG, backoff: 'random' as 'linear' }), /backoff/);
  assert.throws(() => new RedisRetry({ logger: silent, config: { budgetMs: Number.NaN } }), /budgetMs/);
});

test('run retries a transient failure until the operation succeeds, and returns its value', async () => {
  const retry = new RedisRetry({ logger: silent, config: { retryDelayMs: 1, maxRetryDelayMs: 5 } });
  let calls = 0;
  const value = await retry.run('test op', async () => {
    calls += 1;
    if (calls < 4) throw maxRetriesError();
    return 'listed';
  }, retry.deadline());
  assert.equal(value, 'listed');
  assert.equal(calls, 4);
});

test('run rethrows a non-transient error at once', async () => {
  const retry = new RedisRetry({ logger: silent, config: { retryDelayMs: 1, maxRetryDelayMs: 5 } });
  let calls = 0;
  await assert.rejects(retry.run('test op', async () => {
    calls += 1;
    throw new GatewayError('NOT_FOUND', 'account local not found');
  }, retry.deadline()), /account local not found/);
  assert.equal(calls, 1);
});

test('run gives up with the last error once the deadline has passed, and a past deadline means one attempt', async () => {
  let nowMs = 0;
  const retry = new RedisRetry({ logger: silent, config: { retryDelayMs: 1, maxRetryDelayMs: 1, budgetMs: 10 }, now: () => nowMs });
  let calls = 0;
  await assert.rejects(retry.run('test op', async () => {
    calls += 1;
    nowMs += 4;
    throw new Error('Connection is closed.');
  }, retry.deadline()), /Connection is closed/);
  assert.equal(calls, 3, 'attempts at 0, 4 and 8 ms; the one ending at 12 ms is past the 10 ms deadline');

  calls = 0;
  await assert.rejects(retry.run('push', async () => { calls += 1; throw maxRetriesError(); }, nowMs), /max retries/);
  assert.equal(calls, 1);
});
