import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel, offeredModelIDs, esrganModelsDir, readLayersModel, ESRGAN_MODEL_IDS } from '../../../src/ai-worker/models.ts';

const ALL = [...ESRGAN_MODEL_IDS];

test('model IDs name the scale', () => {
  assert.equal(resolveModel('esrgan-slim-x2', ALL, true)?.scale, 2);
  assert.equal(resolveModel('esrgan-slim-x3', ALL, true)?.scale, 3);
  assert.equal(resolveModel('esrgan-slim-x4', ALL, true)?.scale, 4);
});

test("the gateway's default upscale model is served as x4 only while aliasing is on", () => {
  assert.equal(resolveModel('stabilityai/stable-diffusion-x4-upscaler', ALL, true)?.id, 'esrgan-slim-x4');
  assert.equal(resolveModel('stabilityai/stable-diffusion-x4-upscaler', ALL, false), undefined);
  assert.deepEqual(offeredModelIDs(ALL, true), [...ALL, 'stabilityai/stable-diffusion-x4-upscaler']);
  assert.deepEqual(offeredModelIDs(['esrgan-slim-x2'], true), ['esrgan-slim-x2'], 'no alias without x4');
});

test('an empty model_id means x4 when served, else the first served model', () => {
  assert.equal(resolveModel('', ALL, true)?.id, 'esrgan-slim-x4');
  assert.equal(resolveModel(undefined, ['esrgan-slim-x3', 'esrgan-slim-x2'], false)?.id, 'esrgan-slim-x3');
});

test('a model this worker does not serve is not resolved', () => {
  assert.equal(resolveModel('esrgan-slim-x8', ALL, true), undefined);
  assert.equal(resolveModel('esrgan-slim-x3', ['esrgan-slim-x2'], true), undefined);
});

test('the weights are found inside the installed @upscalerjs/esrgan-slim package and read from disk', async () => {
  const dir = esrganModelsDir();
  for (const scale of [2, 3, 4]) assert.ok(existsSync(join(dir, `x${scale}`, 'model.json')), `x${scale} present`);
  const model = await readLayersModel(join(dir, 'x2'));
  assert.equal(model.format, 'layers-model');
  assert.ok(model.weightData.byteLength > 800_000);
  assert.ok(model.weightSpecs.length > 10);
});

test('a damaged model folder is reported with the file and the problem', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-aiw-model-'));
  try {
    await assert.rejects(readLayersModel(join(dir, 'missing')), /cannot read .*model\.json/);
    const json = JSON.parse(readFileSync(join(esrganModelsDir(), 'x2', 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    mkdirSync(join(dir, 'short'));
    writeFileSync(join(dir, 'short', 'model.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'short', json.weightsManifest[0]!.paths[0]!), Buffer.alloc(1000));
    await assert.rejects(readLayersModel(join(dir, 'short')), /weight shards hold 1000 bytes, the manifest expects 888300/);
    json.weightsManifest[0]!.paths = ['../../etc/passwd'];
    mkdirSync(join(dir, 'escape'));
    writeFileSync(join(dir, 'escape', 'model.json'), JSON.stringify(json));
    await assert.rejects(readLayersModel(join(dir, 'escape')), /is not a plain file name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
