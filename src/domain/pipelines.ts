/**
 * The batch AI pipelines mediagate routes (docs/wire-contract.md §7, Livepeer gateway and
 * ai-runner v0.14), their default model IDs, and how their requests are encoded.
 */

export const PIPELINES = [
  'text-to-image', 'image-to-image', 'image-to-video', 'upscale', 'audio-to-text', 'llm',
  'segment-anything-2', 'image-to-text', 'text-to-speech',
] as const;

export type Pipeline = (typeof PIPELINES)[number];

export function isPipeline(value: unknown): value is Pipeline {
  return typeof value === 'string' && (PIPELINES as readonly string[]).includes(value);
}

/** Model used when a request names none (docs/wire-contract.md §7). */
export const DEFAULT_MODEL_ID: Readonly<Record<Pipeline, string>> = {
  'text-to-image': 'stabilityai/sdxl-turbo',
  'image-to-image': 'stabilityai/sdxl-turbo',
  'image-to-video': 'stabilityai/stable-video-diffusion-img2vid-xt',
  upscale: 'stabilityai/stable-diffusion-x4-upscaler',
  'audio-to-text': 'openai/whisper-large-v3',
  llm: 'meta-llama/llama-3.1-8B-Instruct',
  'segment-anything-2': 'facebook/sam2-hiera-large',
  'image-to-text': 'Salesforce/blip-image-captioning-large',
  'text-to-speech': 'parler-tts/parler-tts-large-v1',
};

/** Pipelines whose requests are multipart/form-data, with their file field. The rest are JSON. */
export const MULTIPART_FILE_FIELD: Readonly<Partial<Record<Pipeline, 'image' | 'audio'>>> = {
  'image-to-image': 'image',
  'image-to-video': 'image',
  upscale: 'image',
  'audio-to-text': 'audio',
  'segment-anything-2': 'image',
  'image-to-text': 'image',
};

/**
 * Livepeer's live video-to-video pipeline (docs/wire-contract.md, "Live video-to-video"):
 * not a batch request path but a capability workers offer, selected by the live sessions
 * of `POST /live/video-to-video/<stream>/start`.
 */
export const LIVE_PIPELINE = 'live-video-to-video';
export type LivePipeline = typeof LIVE_PIPELINE;

/** Model of the reference worker's live pipeline (a CPU per-frame filter), used when a start names none. */
export const LIVE_DEFAULT_MODEL_ID = 'mediagate/cpu-filter';

/** Every pipeline a worker may offer: the batch ones and the live one. */
export const WORKER_PIPELINES = [...PIPELINES, LIVE_PIPELINE] as const;
export type WorkerPipeline = Pipeline | LivePipeline;

export function isWorkerPipeline(value: unknown): value is WorkerPipeline {
  return value === LIVE_PIPELINE || isPipeline(value);
}

/** Default model per worker pipeline (batch: {@link DEFAULT_MODEL_ID}; live: {@link LIVE_DEFAULT_MODEL_ID}). */
export function defaultModelID(pipeline: WorkerPipeline): string {
  return pipeline === LIVE_PIPELINE ? LIVE_DEFAULT_MODEL_ID : DEFAULT_MODEL_ID[pipeline];
}

/** A worker's offer for one (pipeline, model_id). */
export interface WorkerCapability {
  readonly pipeline: WorkerPipeline;
  readonly modelID: string;
  /** Model loaded and ready (preferred over cold workers). */
  readonly warm: boolean;
  /** Requests this worker runs at once for this model. */
  readonly capacity: number;
}

/** Why a worker call failed, as the retry policy sees it (livekit agents-js style taxonomy). */
export type FailureKind =
  /** The worker rejected the request itself (4xx other than 408/429): not retried, passed to the client as 400. */
  | 'client'
  /** The worker said it has no free capacity: retried elsewhere, worker not suspended. */
  | 'capacity'
  /** No answer within the attempt's timeout: retried elsewhere, worker suspended. */
  | 'timeout'
  /** Connection refused/reset/DNS: retried elsewhere, worker suspended. */
  | 'connection'
  /** 5xx or a malformed answer: retried elsewhere, worker suspended. */
  | 'server';
