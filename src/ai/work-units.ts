/**
 * Work units: the normalizer for worker latency scores (docs/wire-contract.md §8).
 *
 * A latency score is "seconds per work unit", so that a 1024×1024, 50-step image and a
 * 512×512, 4-step image can be compared on one worker. Livepeer normalizes the same way
 * (text-to-image and upscale: seconds / output pixels / steps; audio-to-text: seconds /
 * audio seconds; llm: seconds / tokens); mediagate extends it to every pipeline.
 *
 * These are NOT payment units (those are docs/wire-contract.md §10, integers, no steps).
 *
 * Defaults for absent or unusable request fields are ai-runner v0.14's (docs/wire-contract.md §7),
 * except width/height of text-to-image, which Livepeer's gateway sizes as 512×512 when absent.
 * Multipart requests carry numbers as strings; numeric strings are accepted. A value that is
 * not a positive finite number falls back to the default (request validation is not this
 * module's job).
 */

import type { Pipeline } from '../domain/pipelines.ts';

/** 512×512: Livepeer's size for an absent width/height, and mediagate's for an unknown input image. */
export const DEFAULT_PIXELS = 512 * 512;

/** ai-runner v0.14 `num_inference_steps` defaults (docs/wire-contract.md §7). */
export const DEFAULT_INFERENCE_STEPS = {
  'text-to-image': 50,
  'image-to-image': 100,
  'image-to-video': 25,
  upscale: 75,
} as const;

/** ai-runner v0.14 image-to-video output size (docs/wire-contract.md §7). */
export const DEFAULT_VIDEO_WIDTH_PX = 1024;
export const DEFAULT_VIDEO_HEIGHT_PX = 576;

/**
 * Frames per image-to-video result: stable-video-diffusion-img2vid-xt generates 25 frames,
 * and Livepeer prices image-to-video assuming 25 (docs/wire-contract.md §10).
 */
export const DEFAULT_VIDEO_FRAMES = 25;

/** stable-diffusion-x4-upscaler multiplies each side by 4, so pixels by 16. */
export const UPSCALE_PIXEL_FACTOR = 16;

/** ai-runner v0.14 llm `max_tokens` default (docs/wire-contract.md §7). */
export const DEFAULT_LLM_MAX_TOKENS = 256;

export interface WorkUnitParams {
  /** The request's fields: the JSON body, or the multipart form's text fields (strings). */
  readonly body: Readonly<Record<string, unknown>>;
  /**
   * Input image width × height, for image-to-image, upscale, segment-anything-2 and
   * image-to-text (the request body does not carry it). Default {@link DEFAULT_PIXELS}.
   */
  readonly inputPixels?: number;
  /** Audio duration in seconds, for audio-to-text (probed, not the client's word). Default 1. */
  readonly audioSeconds?: number;
  /**
   * Tokens actually generated, for llm, when the worker reported usage.
   * Default: the request's `max_tokens`, else {@link DEFAULT_LLM_MAX_TOKENS}.
   */
  readonly tokens?: number;
}

/**
 * The work a request represents, in the unit its pipeline's latency score is normalized by:
 *
 * | pipeline | units |
 * |---|---|
 * | text-to-image | width × height (512×512) × `num_images_per_prompt` (1) × `num_inference_steps` (50) |
 * | image-to-image | inputPixels × `num_images_per_prompt` (1) × `num_inference_steps` (100) |
 * | upscale | inputPixels × 16 × `num_inference_steps` (75) |
 * | image-to-video | width (1024) × height (576) × 25 frames × `num_inference_steps` (25) |
 * | audio-to-text | audio seconds (1) |
 * | llm | tokens, else `max_tokens` (256) |
 * | segment-anything-2, image-to-text | inputPixels (512×512) |
 * | text-to-speech | characters (Unicode code points) of `text` |
 *
 * Returns a finite number ≥ 1 (audio seconds may be fractional; everything else is an
 * integer product when its inputs are integers).
 */
export function workUnits(pipeline: Pipeline, params: WorkUnitParams): number {
  return Math.max(1, rawWorkUnits(pipeline, params));
}

function rawWorkUnits(pipeline: Pipeline, params: WorkUnitParams): number {
  const { body } = params;
  const inputPixels = positive(params.inputPixels) ?? DEFAULT_PIXELS;
  switch (pipeline) {
    case 'text-to-image': {
      const widthPx = positive(body['width']) ?? 512;
      const heightPx = positive(body['height']) ?? 512;
      return widthPx * heightPx * images(body) * steps(body, DEFAULT_INFERENCE_STEPS['text-to-image']);
    }
    case 'image-to-image':
      return inputPixels * images(body) * steps(body, DEFAULT_INFERENCE_STEPS['image-to-image']);
    case 'upscale':
      return inputPixels * UPSCALE_PIXEL_FACTOR * steps(body, DEFAULT_INFERENCE_STEPS.upscale);
    case 'image-to-video': {
      const widthPx = positive(body['width']) ?? DEFAULT_VIDEO_WIDTH_PX;
      const heightPx = positive(body['height']) ?? DEFAULT_VIDEO_HEIGHT_PX;
      return widthPx * heightPx * DEFAULT_VIDEO_FRAMES * steps(body, DEFAULT_INFERENCE_STEPS['image-to-video']);
    }
    case 'audio-to-text':
      return positive(params.audioSeconds) ?? 1;
    case 'llm':
      return positive(params.tokens) ?? positive(body['max_tokens']) ?? DEFAULT_LLM_MAX_TOKENS;
    case 'segment-anything-2':
    case 'image-to-text':
      return inputPixels;
    case 'text-to-speech': {
      const text = body['text'];
      return typeof text === 'string' ? [...text].length : 1;
    }
  }
}

function images(body: Readonly<Record<string, unknown>>): number {
  return positive(body['num_images_per_prompt']) ?? 1;
}

function steps(body: Readonly<Record<string, unknown>>, fallback: number): number {
  return positive(body['num_inference_steps']) ?? fallback;
}

/** A positive finite number, from a number or a numeric string (multipart fields); else undefined. */
function positive(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}
