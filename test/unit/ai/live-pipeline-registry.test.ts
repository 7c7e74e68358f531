/**
 * The live video-to-video pipeline as a worker capability: the registry accepts workers
 * offering `live-video-to-video` and routes by it, the batch pipelines' names are unchanged,
 * and the AI spec's worker schemas list exactly the worker pipelines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { WorkerRegistry } from '../../../src/ai/worker-registry.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import {
  LIVE_DEFAULT_MODEL_ID, LIVE_PIPELINE, PIPELINES, WORKER_PIPELINES, defaultModelID, isPipeline, isWorkerPipeline,
} from '../../../src/domain/pipelines.ts';

const AI_SPEC = fileURLToPath(new URL('../../../openapi/ai.yaml', import.meta.url));

function registry(): WorkerRegistry {
  return new WorkerRegistry({ logger: silentLogger(), healthIntervalMs: 60_000, checkHealth: async () => 'OK' });
}

test('live-video-to-video is a worker pipeline but not a batch pipeline', () => {
  assert.equal(LIVE_PIPELINE, 'live-video-to-video');
  assert.equal(isWorkerPipeline('live-video-to-video'), true);
  assert.equal(isPipeline('live-video-to-video'), false, 'no batch request path is made for it');
  assert.equal(isWorkerPipeline('live-video-to-video2'), false);
  assert.equal(defaultModelID(LIVE_PIPELINE), 'mediagate/cpu-filter');
  assert.equal(defaultModelID('text-to-image'), 'stabilityai/sdxl-turbo');
  assert.deepEqual([...WORKER_PIPELINES], [...PIPELINES, 'live-video-to-video']);
});

test('a worker offering live-video-to-video registers, and is a candidate with its capacity', async () => {
  const r = registry();
  const view = await r.register({ url: 'http://127.0.0.1:1/', pipelines: [{ pipeline: 'live-video-to-video', model_id: LIVE_DEFAULT_MODEL_ID, warm: true, capacity: 1 }] }, 'api');
  assert.deepEqual(view.pipelines, [{ pipeline: 'live-video-to-video', model_id: 'mediagate/cpu-filter', warm: true, capacity: 1, inFlight: 0 }]);
  assert.equal(r.serves(LIVE_PIPELINE, LIVE_DEFAULT_MODEL_ID), true);
  assert.equal(r.modelFor(LIVE_PIPELINE), 'mediagate/cpu-filter');
  const lease = await r.acquire(view.id, LIVE_PIPELINE, LIVE_DEFAULT_MODEL_ID);
  assert.ok(lease !== undefined);
  assert.equal(await r.acquire(view.id, LIVE_PIPELINE, LIVE_DEFAULT_MODEL_ID), undefined, 'capacity 1: a second live session does not fit');
  r.release(view.id, LIVE_PIPELINE, LIVE_DEFAULT_MODEL_ID, lease);
  assert.deepEqual(r.candidates(LIVE_PIPELINE, LIVE_DEFAULT_MODEL_ID).map((c) => [c.capacity, c.inFlight, c.healthy]), [[1, 0, true]]);
  r.close();
});

test('an unknown pipeline is still refused with a 400 naming it', async () => {
  const r = registry();
  await assert.rejects(
    r.register({ url: 'http://127.0.0.1:1/', pipelines: [{ pipeline: 'video-to-video', model_id: 'm' }] }, 'api'),
    (e: GatewayError) => e.code === 'INVALID_REQUEST' && /pipelines\[0\]\.pipeline: unknown pipeline "video-to-video"/.test(e.message),
  );
  r.close();
});

test('the AI spec lets workers offer exactly the worker pipelines', async () => {
  const doc = parse(await readFile(AI_SPEC, 'utf8')) as Record<string, any>;
  const schemas = doc['components']['schemas'];
  assert.deepEqual(schemas['WorkerPipelineName']['enum'], [...WORKER_PIPELINES]);
  assert.equal(schemas['WorkerPipelineOffer']['properties']['pipeline']['$ref'], '#/components/schemas/WorkerPipelineName');
  assert.equal(schemas['WorkerPipeline']['properties']['pipeline']['$ref'], '#/components/schemas/WorkerPipelineName');
});
