import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyError, isClientAbort, isRedisUnavailable, REDIS_RETRY_AFTER_S } from '../../../src/http/error-classes.ts';
import { loggablePath } from '../../../src/http/http-app.ts';

test('ioredis connection failures are Redis-unavailable; a Redis reply error is not', () => {
  const maxRetries = Object.assign(new Error('Reached the max retries per request limit (which is 3).'), { name: 'MaxRetriesPerRequestError' });
  for (const err of [maxRetries, new Error('Connection is closed.'), new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1' })]) {
    assert.equal(isRedisUnavailable(err), true, err.message);
    const mapped = classifyError(err);
    assert.equal(mapped?.code, 'REDIS_UNAVAILABLE');
    assert.equal(mapped?.status, 503);
    assert.equal(mapped?.retryAfterS, REDIS_RETRY_AFTER_S);
    assert.match(mapped!.message, new RegExp(`retry in ${REDIS_RETRY_AFTER_S} s`));
  }
  assert.equal(isRedisUnavailable(Object.assign(new Error('WRONGTYPE Operation against a key'), { name: 'ReplyError' })), false);
  assert.equal(classifyError(new Error('something else')), undefined);
});

test('client aborts are recognised; a truncated multipart body and a charset are 4xx', () => {
  assert.equal(isClientAbort(new Error('Request aborted')), true);
  assert.equal(isClientAbort(Object.assign(new Error('request aborted'), { type: 'request.aborted' })), true);
  assert.equal(isClientAbort(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), true);
  assert.equal(isClientAbort(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' })), false);
  assert.equal(classifyError(new Error('Unexpected end of form'))?.status, 400);
  assert.equal(classifyError(Object.assign(new Error('unsupported charset "LATIN1"'), { type: 'charset.unsupported' }))?.status, 415);
  assert.equal(classifyError(Object.assign(new Error('unsupported content encoding "x"'), { type: 'encoding.unsupported' }))?.status, 415);
  const tooBig = classifyError(Object.assign(new Error('File too large'), { name: 'MulterError', code: 'LIMIT_FILE_SIZE', field: 'image' }));
  assert.equal(tooBig?.status, 413);
  assert.match(tooBig!.message, /^image: /);
});

test('a logged ingest path has its stream key replaced; other paths are kept', () => {
  assert.equal(loggablePath('/live/my-SECRET-key/12.ts'), '/live/[redacted]/12.ts');
  assert.equal(loggablePath('/live/key'), '/live/[redacted]');
  assert.equal(loggablePath('/stream/abc/source/1.ts'), '/stream/abc/source/1.ts');
  assert.equal(loggablePath('/text-to-image'), '/text-to-image');
});
