import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workUnits, DEFAULT_PIXELS } from '../../../src/ai/work-units.ts';
import { PIPELINES } from '../../../src/domain/pipelines.ts';

test('text-to-image defaults to 512×512, one image, 50 steps', () => {
  assert.equal(workUnits('text-to-image', { body: { prompt: 'a cat' } }), 512 * 512 * 1 * 50);
});

test('text-to-image counts explicit size, images and steps', () => {
  assert.equal(workUnits('text-to-image', { body: { prompt: 'a cat', width: 1024, height: 768, num_images_per_prompt: 2, num_inference_steps: 4 } }), 1024 * 768 * 2 * 4);
});

test('image-to-image is input pixels × images × steps, 100 steps by default', () => {
  assert.equal(workUnits('image-to-image', { body: {} }), DEFAULT_PIXELS * 100);
  assert.equal(workUnits('image-to-image', { body: { num_inference_steps: '30', num_images_per_prompt: '2' }, inputPixels: 640 * 480 }), 640 * 480 * 2 * 30);
});

test('upscale is 16× the input pixels × steps, 75 steps by default', () => {
  assert.equal(workUnits('upscale', { body: { prompt: 'sharp' } }), DEFAULT_PIXELS * 16 * 75);
  assert.equal(workUnits('upscale', { body: { num_inference_steps: 20 }, inputPixels: 128 * 128 }), 512 * 512 * 20);
});

test('image-to-video is width × height × 25 frames × steps, 1024×576 and 25 steps by default', () => {
  assert.equal(workUnits('image-to-video', { body: {} }), 1024 * 576 * 25 * 25);
  assert.equal(workUnits('image-to-video', { body: { width: '512', height: '512', num_inference_steps: '10' } }), 512 * 512 * 25 * 10);
});

test('audio-to-text is the audio duration in seconds', () => {
  assert.equal(workUnits('audio-to-text', { body: {}, audioSeconds: 12.5 }), 12.5);
  assert.equal(workUnits('audio-to-text', { body: {} }), 1, 'unknown duration counts as 1 s');
  assert.equal(workUnits('audio-to-text', { body: {}, audioSeconds: 0.2 }), 1, 'never below 1');
});

test('llm counts actual tokens when known, else max_tokens, else 256', () => {
  assert.equal(workUnits('llm', { body: { messages: [] } }), 256);
  assert.equal(workUnits('llm', { body: { max_tokens: 1000 } }), 1000);
  assert.equal(workUnits('llm', { body: { max_tokens: 1000 }, tokens: 87 }), 87);
});

test('segment-anything-2 and image-to-text are input pixels, 512×512 when unknown', () => {
  for (const pipeline of ['segment-anything-2', 'image-to-text'] as const) {
    assert.equal(workUnits(pipeline, { body: {} }), 512 * 512);
    assert.equal(workUnits(pipeline, { body: {}, inputPixels: 1920 * 1080 }), 1920 * 1080);
  }
});

test('text-to-speech counts characters as code points', () => {
  assert.equal(workUnits('text-to-speech', { body: { text: 'Hello, world' } }), 12);
  assert.equal(workUnits('text-to-speech', { body: { text: 'héllo 👋' } }), 7);
  assert.equal(workUnits('text-to-speech', { body: { text: '' } }), 1);
});

test('unusable values fall back to the defaults', () => {
  const body = { width: -5, height: 'abc', num_images_per_prompt: 0, num_inference_steps: Number.NaN };
  assert.equal(workUnits('text-to-image', { body }), 512 * 512 * 50);
  assert.equal(workUnits('text-to-image', { body: { width: '', height: null } }), 512 * 512 * 50);
  assert.equal(workUnits('upscale', { body: {}, inputPixels: 0 }), DEFAULT_PIXELS * 16 * 75);
  assert.equal(workUnits('llm', { body: { max_tokens: 'lots' }, tokens: -1 }), 256);
});

test('every pipeline yields a finite number of at least 1 for an empty request', () => {
  for (const pipeline of PIPELINES) {
    const units = workUnits(pipeline, { body: {} });
    assert.ok(Number.isFinite(units) && units >= 1, `${pipeline}: ${units}`);
  }
});
