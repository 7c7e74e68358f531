import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DEFAULT_STORE_RETRY_CONFIG, StoreRetry, isTransientStoreError } from '../../../src/storage/store-retry.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

const silent = pino({ level: 'silent' });

/** An error as the AWS SDK raises it: a name and, for an answer, `$metadata.httpStatusCode`. */
function sdkError(name: string, status?: number): Error {
  const err = new Error(`${name} from the store`);
  err.name = name;
  Object.assign(err, { $metadata: status === undefined ? { attempts: 5 } : { httpStatusCode: status, attempts: 1 } });
  return err;
}

function netError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9000`), { code });
}

const failed = (cause: unknown): GatewayError => new GatewayError('STORAGE_FAILED', 'cannot store object x (bucket b at http://127.0.0.1:9000)', { cause });

test('a store that cannot be reached, answers 5xx/408/429, times out or has a full disk is transient', () => {
  const transient = [
    failed(Object.assign(netError('ECONNREFUSED'), { $metadata: { attempts: 5 } })),
    failed(netError('ECONNRESET')),
    failed(netError('EAI_AGAIN')),
    failed(new AggregateError([netError('ECONNREFUSED'), netError('ECONNREFUSED')], 'connect failed')),
    failed(sdkError('InternalError', 500)),
    failed(sdkError('ServiceUnavailable', 503)),
    failed(sdkError('SlowDown', 429)),
    failed(sdkError('RequestTimeout', 408)),
    failed(sdkError('TimeoutError')),
    failed(netError('ENOSPC')),
    sdkError('ServiceUnavailable', 503),
    netError('ETIMEDOUT'),
  ];
  for (const err of transient) assert.equal(isTransientStoreError(err), true, `${(err as Error).message} / ${String((err as Error).cause)}`);
});

test('a refusal (4xx), a missing object, a bad key, a non-retryable failure or anything else is not transient', () => {
  const permanent = [
    failed(sdkError('AccessDenied', 403)),
    failed(sdkError('NoSuchBucket', 404)),
    failed(sdkError('InvalidAccessKeyId', 403)),
    failed(netError('EACCES')),
    failed(undefined),
    new GatewayError('STORAGE_FAILED', 'bucket b is missing', { retryable: false, cause: netError('ECONNREFUSED') }),
    new GatewayError('NOT_FOUND', 'no object'),
    new GatewayError('INVALID_NAME', 'invalid object key'),
    new GatewayError('REDIS_UNAVAILABLE', 'redis down', { cause: netError('ECONNREFUSED') }),
    sdkError('AccessDenied', 403),
    new Error('something else'),
    'a string',
    undefined,
  ];
  for (const err of permanent) assert.equal(isTransientStoreError(err), false, String(err));
});

test('StoreRetry retries a transient store failure until it succeeds, and rethrows a refusal at once', async () => {
  assert.equal(DEFAULT_STORE_RETRY_CONFIG.budgetMs, 30_000);
  const retry = new StoreRetry({ logger: silent, config: { retryDelayMs: 1, maxRetryDelayMs: 5 } });
  let calls = 0;
  const value = await retry.run('store source segment', async () => {
    calls += 1;
    if (calls < 4) throw failed(netError('ECONNREFUSED'));
    return { sizeBytes: 3 };
  }, retry.deadline());
  assert.deepEqual(value, { sizeBytes: 3 });
  assert.equal(calls, 4);

  calls = 0;
  await assert.rejects(retry.run('store source segment', async () => {
    calls += 1;
    throw failed(sdkError('AccessDenied', 403));
  }, retry.deadline()), /cannot store object x/);
  assert.equal(calls, 1);
});

test('StoreRetry gives up with the last error once the deadline has passed; a past deadline means one attempt', async () => {
  let nowMs = 0;
  const retry = new StoreRetry({ logger: silent, config: { retryDelayMs: 1, maxRetryDelayMs: 1, budgetMs: 10 }, now: () => nowMs });
  let calls = 0;
  await assert.rejects(retry.run('store', async () => { calls += 1; nowMs += 4; throw failed(sdkError('ServiceUnavailable', 503)); }, retry.deadline()), /cannot store/);
  assert.equal(calls, 3, 'attempts at 0, 4 and 8 ms; the one ending at 12 ms is past the 10 ms deadline');
  calls = 0;
  await assert.rejects(retry.run('push', async () => { calls += 1; throw failed(netError('ECONNREFUSED')); }, nowMs));
  assert.equal(calls, 1);
});

test('a bad store retry config is refused naming the field', () => {
  assert.throws(() => new StoreRetry({ logger: silent, config: { budgetMs: 0 } }), /store retry budgetMs must be a number > 0 \(got 0\)/);
  assert.throws(() => new StoreRetry({ logger: silent, config: { maxRetryDelayMs: 1 } }), /store retry maxRetryDelayMs/);
});
