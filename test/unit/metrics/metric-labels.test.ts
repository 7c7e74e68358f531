import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL_ID_MAX_LENGTH, enumLabel, looksSecret, manifestIdLabel, methodLabel,
  modelIdLabel, pipelineLabel, statusClassLabel, statusCodeLabel, toNonNegativeBigInt,
} from '../../../src/metrics/metric-labels.ts';
import { aiErrorKindFor, aiErrorKindForStatus, segmentFailureReasonFor } from '../../../src/domain/failure-kinds.ts';
import { DEFAULT_MODEL_ID } from '../../../src/domain/pipelines.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

test('every default model ID and common Hugging Face IDs are kept as label values', () => {
  const ids = [
    ...Object.values(DEFAULT_MODEL_ID), 'ByteDance/SDXL-Lightning', 'SG161222/RealVisXL_V4.0', 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    'stabilityai/stable-video-diffusion-img2vid-xt-1-1', 'microsoft/Phi-3-mini-4k-instruct', 'llama3',
  ];
  for (const id of ids) assert.equal(modelIdLabel(id), id, id);
});

test('model IDs that look like credentials or random tokens become other', () => {
  const secrets = [
    'sk-proj-abcdefghijklmnop', 'hf_AbCdEfGhIjKlMnOpQrStUvWxYz', 'ghp_1234567890abcdefghij', 'xoxb-123-456-abc',
    'AKIAIOSFODNN7EXAMPLE', 'eyJhbGciOiJIUzI1NiJ9', 'org/0123456789abcdef0123', '550e8400-e29b-41d4-a716-446655440000',
    'Zm9vYmFyYmF6cXV4cXV1eHF1dXg', 'org/sk_live_abc',
  ];
  for (const id of secrets) {
    assert.equal(looksSecret(id), true, id);
    assert.equal(modelIdLabel(id), 'other', id);
  }
});

test('model IDs outside the org/name grammar or too long become other', () => {
  const odd = ['', ' ', 'a b', 'a/b/c', '../etc/passwd', '/abs', 'org/', '-lead', 'x"y', 'a\nb', 'ü/model', 'a{b}', `m${'-x'.repeat(MODEL_ID_MAX_LENGTH)}`];
  for (const id of odd) assert.equal(modelIdLabel(id), 'other', JSON.stringify(id));
  for (const v of [undefined, null, 42, {}]) assert.equal(modelIdLabel(v), 'other');
});

test('pipelines, manifest IDs, enums and methods outside their sets become other', () => {
  assert.equal(pipelineLabel('text-to-image'), 'text-to-image');
  assert.equal(pipelineLabel('live-video-to-video'), 'live-video-to-video');
  assert.equal(pipelineLabel('text-to-image2'), 'other');
  assert.equal(manifestIdLabel('stream_1-A'), 'stream_1-A');
  for (const bad of ['a/b', 'a.b', '', 'x'.repeat(65), 7]) assert.equal(manifestIdLabel(bad), 'other');
  assert.equal(enumLabel(['rtmp', 'push'] as const, 'push'), 'push');
  assert.equal(enumLabel(['rtmp', 'push'] as const, 'srt'), 'other');
  assert.equal(methodLabel('post'), 'POST');
  assert.equal(methodLabel('PROPFIND'), 'other');
});

test('status codes map to three-digit labels and classes; anything else is other', () => {
  assert.equal(statusCodeLabel(200), '200');
  assert.equal(statusCodeLabel('aborted'), 'aborted');
  assert.equal(statusCodeLabel(42), 'other');
  assert.equal(statusCodeLabel(200.5), 'other');
  assert.equal(statusClassLabel(503), '5xx');
  assert.equal(statusClassLabel(204), '2xx');
  assert.equal(statusClassLabel('aborted'), 'aborted');
  assert.equal(statusClassLabel(700), 'other');
});

test('failure reasons and AI error kinds come from error codes, never from messages', () => {
  assert.equal(segmentFailureReasonFor(new GatewayError('UNDECODABLE_MEDIA', 'secret-in-message')), 'undecodable');
  assert.equal(segmentFailureReasonFor('TRANSCODE_FAILED'), 'transcode_error');
  assert.equal(segmentFailureReasonFor('ffmpeg exited with code 1'), 'other');
  assert.equal(segmentFailureReasonFor(new Error('STORAGE_FAILED')), 'other');
  assert.equal(aiErrorKindFor(new GatewayError('NO_WORKER')), 'no_worker');
  assert.equal(aiErrorKindFor('WORKER_FAILED'), 'worker_failed');
  assert.equal(aiErrorKindFor('INSUFFICIENT_BALANCE'), 'insufficient_balance');
  assert.equal(aiErrorKindFor('nonsense'), undefined);
  assert.equal(aiErrorKindFor('STARTING'), 'unavailable');
  assert.equal(aiErrorKindFor(new GatewayError('SHUTTING_DOWN')), 'unavailable');
  assert.equal(aiErrorKindForStatus(402), 'insufficient_balance');
  assert.equal(aiErrorKindForStatus(503), 'unavailable');
  assert.equal(aiErrorKindForStatus(500), 'internal');
  assert.equal(aiErrorKindForStatus(418), 'other');
  assert.equal(aiErrorKindForStatus('aborted'), 'aborted');
});

test('amounts are accepted as non-negative integers only; numbers past 2^53 must be bigint', () => {
  assert.equal(toNonNegativeBigInt(5n), 5n);
  assert.equal(toNonNegativeBigInt(7), 7n);
  assert.equal(toNonNegativeBigInt(2n ** 80n), 2n ** 80n);
  for (const bad of [-1, -1n, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) assert.equal(toNonNegativeBigInt(bad), undefined, String(bad));
});
