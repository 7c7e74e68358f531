import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateUnits, actualUnits, IMAGE_TO_VIDEO_FRAMES } from '../../../src/domain/billing-units.ts';

test('AI billing units follow the contract table for every pipeline', () => {
  assert.equal(estimateUnits('text-to-image', { prompt: 'x', width: 1024, height: 768, num_images_per_prompt: 2 }, {}), 1024n * 768n * 2n);
  assert.equal(estimateUnits('text-to-image', { prompt: 'x' }, {}), 512n * 512n, 'absent size priced as 512x512 like Livepeer');
  assert.equal(estimateUnits('image-to-image', { num_images_per_prompt: '3' }, { inputPixels: 640 * 360 }), 640n * 360n * 3n);
  assert.equal(estimateUnits('upscale', {}, { inputPixels: 100 * 50 }), 5000n);
  assert.equal(estimateUnits('segment-anything-2', {}, { inputPixels: 10 }), 10n);
  assert.equal(estimateUnits('image-to-text', {}, { inputPixels: 77 }), 77n);
  assert.equal(estimateUnits('image-to-video', { width: 512, height: 256 }, {}), 512n * 256n * BigInt(IMAGE_TO_VIDEO_FRAMES));
  assert.equal(estimateUnits('image-to-video', {}, {}), 1024n * 576n * 25n);
  assert.equal(estimateUnits('audio-to-text', {}, { audioMs: 1500.2 }), 1501n);
  assert.equal(estimateUnits('llm', { max_tokens: 100 }, {}), 100n);
  assert.equal(estimateUnits('llm', {}, {}), 256n);
  assert.equal(estimateUnits('text-to-speech', { text: 'héllo 👋' }, {}), 7n, 'characters are code points');
});

test('llm is charged its reported usage; other pipelines their estimate', () => {
  assert.equal(actualUnits('llm', 256n, { usage: { total_tokens: 42 } }), 42n);
  assert.equal(actualUnits('llm', 256n, { choices: [] }), 256n);
  assert.equal(actualUnits('text-to-image', 99n, { usage: { total_tokens: 1 } }), 99n);
});
