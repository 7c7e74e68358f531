/**
 * Billing units of AI requests (docs/wire-contract.md §10, after Livepeer's per-pipeline pricing):
 *
 * | pipeline | units |
 * |---|---|
 * | text-to-image | height × width × num_images_per_prompt (absent size: 512×512, as Livepeer's gateway prices it) |
 * | image-to-image, upscale, segment-anything-2, image-to-text | input height × width (× num_images_per_prompt for image-to-image) |
 * | image-to-video | height × width × frames (Livepeer assumes 25 frames; default size 1024×576) |
 * | audio-to-text | audio duration in ms, probed by the gateway (never the client's word) |
 * | llm | tokens: max_tokens (default 256) reserved up front, actual usage charged when the worker reports it |
 * | text-to-speech | characters of `text` (Unicode code points) |
 *
 * Measured inputs (image size, audio duration) come from the gateway's own inspection of the upload.
 */
import type { Pipeline } from './pipelines.ts';

export interface MeasuredInput {
  /** Pixels of the uploaded image (sniffed from its header). */
  readonly inputPixels?: number;
  /** Duration of the uploaded audio in ms (ffprobe). */
  readonly audioMs?: number;
}

/** Livepeer's frame count assumption for image-to-video pricing. */
export const IMAGE_TO_VIDEO_FRAMES = 25;
const DEFAULT_SIZE = 512;
const DEFAULT_LLM_MAX_TOKENS = 256;

function positiveInt(value: unknown, fallback: number): bigint {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? BigInt(Math.floor(n)) : BigInt(fallback);
}

/** Units reserved before the worker is called. */
export function estimateUnits(pipeline: Pipeline, body: Readonly<Record<string, unknown>>, measured: MeasuredInput): bigint {
  const pixels = BigInt(Math.max(0, Math.floor(measured.inputPixels ?? 0)));
  switch (pipeline) {
    case 'text-to-image':
      return positiveInt(body['height'], DEFAULT_SIZE) * positiveInt(body['width'], DEFAULT_SIZE) * positiveInt(body['num_images_per_prompt'], 1);
    case 'image-to-image':
      return pixels * positiveInt(body['num_images_per_prompt'], 1);
    case 'upscale': case 'segment-anything-2': case 'image-to-text':
      return pixels;
    case 'image-to-video':
      return positiveInt(body['height'], 576) * positiveInt(body['width'], 1024) * BigInt(IMAGE_TO_VIDEO_FRAMES);
    case 'audio-to-text':
      return BigInt(Math.max(0, Math.ceil(measured.audioMs ?? 0)));
    case 'llm':
      return positiveInt(body['max_tokens'], DEFAULT_LLM_MAX_TOKENS);
    case 'text-to-speech':
      return BigInt([...String(body['text'] ?? '')].length);
  }
}

/**
 * Units actually charged after the worker answered: the estimate, except for llm, where the
 * worker's reported `usage.total_tokens` replaces the reserved max_tokens when present.
 */
export function actualUnits(pipeline: Pipeline, estimate: bigint, reply: unknown): bigint {
  if (pipeline !== 'llm') return estimate;
  const usage = (reply as { usage?: { total_tokens?: unknown } } | undefined)?.usage;
  const total = usage?.total_tokens;
  return typeof total === 'number' && Number.isSafeInteger(total) && total >= 0 ? BigInt(total) : estimate;
}
