/**
 * Result media of the AI API (docs/wire-contract.md §7): the media a worker's answer points
 * at are fetched inside the worker's attempt ({@link collectMedia}), re-hosted in the
 * gateway's own storage ({@link shape}) and served from `/stream/<requestID>/<file>`
 * ({@link resultMediaHandler}). Used by the AI routes (ai-routes.ts).
 */
import { readFile, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { NextFunction, Request, Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';
import type { Pipeline } from '../domain/pipelines.ts';
import type { ResultMedia } from './media-fetch.ts';

/** Where result media are stored and served from. */
export interface ResultStorage {
  /**
   * `newKey`: the key is new and not yet announced (each result's key holds the request's fresh
   * ID), so the store may write it in place without a temporary name (storage/object-store.ts
   * PutBytesOptions).
   */
  putBytes(key: string, data: Uint8Array, options?: { newKey?: boolean }): Promise<{ sizeBytes: number }>;
  getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined>;
}

/**
 * Downloads a result URL a worker answered with (AiRoutesOptions.fetchMedia).
 * @throws ResultMediaError (a WorkerCallError of kind `server`) when refused or failed
 */
export type MediaFetcher = (url: string, worker: { url: string; token?: string }, limits: { timeoutMs: number; signal: AbortSignal }) => Promise<ResultMedia>;

/** What re-hosting result media needs (the fields of AiRoutesOptions of the same names). */
export interface ResultHosting {
  results: ResultStorage;
  /** Assembles image frames into an H.264 MP4 file. */
  framesToMp4(frames: Buffer[], fps: number, outputPath: string): Promise<void>;
  /**
   * A new path for a private scratch file (`<ext>` appended to a unique name, the file not yet
   * there) in a directory that already exists: an image-to-video answer's MP4 is assembled
   * there, then stored and removed. No directory is made per request.
   */
  scratchFile(ext: string): Promise<string>;
  publicUrl: string;
}

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/gif': 'gif', 'video/mp4': 'mp4',
  'audio/wav': 'wav', 'audio/x-wav': 'wav', 'audio/wave': 'wav', 'audio/mpeg': 'mp3', 'audio/ogg': 'ogg', 'audio/flac': 'flac',
};
const RESULT_FILE = /^(\d{1,3})\.(png|jpg|webp|gif|mp4|wav|mp3|ogg|flac)$/;
const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif', mp4: 'video/mp4', wav: 'audio/wav', mp3: 'audio/mpeg', ogg: 'audio/ogg', flac: 'audio/flac',
};

/** A result's key holds its request's fresh ID and is announced only once stored: written in place. */
const NEW_KEY = { newKey: true } as const;

/** image-to-video frames are assembled at the request's fps (ai-runner default 6). */
const DEFAULT_VIDEO_FPS = 6;

type Media = { url: string; seed?: number; nsfw?: boolean };

/** The file extension result media of this type are stored under; undefined when not hostable. */
function extensionOf(contentType: string): string | undefined {
  return EXTENSIONS[contentType.split(';')[0]!.trim().toLowerCase()];
}

/**
 * GET `/stream/:requestID/:file`: streams a stored result medium (`ai-<24 hex>/<n>.<ext>`)
 * with an immutable cache header; any other name falls through to the next route (the HLS
 * router passes these through).
 * @throws GatewayError NOT_FOUND when the result is not (or no longer) stored
 */
export function resultMediaHandler(results: ResultStorage): (req: Request, res: Response, next: NextFunction) => Promise<void> {
  return async (req: Request, res: Response, next: NextFunction) => {
    const requestID = String(req.params['requestID']);
    const file = String(req.params['file']);
    const m = RESULT_FILE.exec(file);
    if (!m || !/^ai-[0-9a-f]{24}$/.test(requestID)) {
      next();
      return;
    }
    const object = await results.getStream(`${requestID}/${file}`);
    if (!object) throw new GatewayError('NOT_FOUND', `result ${requestID}/${file} not found`);
    res.status(200);
    res.setHeader('Content-Type', CONTENT_TYPES[m[2]!]!);
    res.setHeader('Content-Length', String(object.sizeBytes));
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.setHeader('Access-Control-Allow-Origin', '*');
    // pipeline destroys the store's stream (and frees its connection) when the client leaves.
    await pipeline(object.stream, res).catch(() => res.destroy());
  };
}

/**
 * Fetches the media a worker's answer points at: one list per output (`images[i].url`,
 * the frames of `frames[i]`, `audio.url`); [] for pipelines without media. Runs inside
 * the worker's attempt, so every throw counts against the worker; the whole step ends
 * after `timeoutMs`.
 * `fetchMedia` is AiRoutesOptions.fetchMedia.
 * @throws GatewayError WORKER_FAILED for an answer without the expected media or with an
 *   unsupported media type; ResultMediaError from `fetchMedia`
 */
export async function collectMedia(fetchMedia: MediaFetcher, pipeline: Pipeline, body: unknown, worker: { url: string; token?: string }, timeoutMs: number): Promise<ResultMedia[][]> {
  const reply = (body ?? {}) as Record<string, unknown>;
  // The step's deadline as a signal, made when first read: only an http(s) media URL reads it
  // (a data: URL is decoded at once), and AbortSignal.timeout costs ~10 µs of CPU plus a
  // pending timer per request. The first http(s) fetch starts with this step (the frames of a
  // later video of image-to-video after the earlier ones: then the deadline starts there).
  let signal: AbortSignal | undefined;
  const limits = { timeoutMs, get signal(): AbortSignal { return (signal ??= AbortSignal.timeout(Math.max(1, timeoutMs))); } };
  const fetchOne = (entry: unknown): Promise<ResultMedia> => {
    const url = (entry as { url?: unknown } | null | undefined)?.url;
    if (typeof url !== 'string' || url === '') return Promise.reject(new GatewayError('WORKER_FAILED', 'worker answer has a media entry without a url'));
    return fetchMedia(url, worker, limits);
  };
  const hostable = async (entry: unknown): Promise<ResultMedia> => {
    const media = await fetchOne(entry);
    if (!extensionOf(media.contentType)) throw new GatewayError('WORKER_FAILED', `worker answered with unsupported media type ${media.contentType.slice(0, 60)}`);
    return media;
  };
  switch (pipeline) {
    case 'text-to-image': case 'image-to-image': case 'upscale': {
      const images = reply['images'];
      if (!Array.isArray(images)) throw new GatewayError('WORKER_FAILED', 'worker answer lacks images');
      return Promise.all(images.map(async (m) => [await hostable(m)]));
    }
    case 'image-to-video': {
      const videos = reply['frames'];
      if (!Array.isArray(videos) || !videos.every((frames) => Array.isArray(frames))) throw new GatewayError('WORKER_FAILED', 'worker answer lacks frames');
      const out: ResultMedia[][] = [];
      for (const frames of videos as unknown[][]) out.push(await Promise.all(frames.map(fetchOne)));
      return out;
    }
    case 'text-to-speech': {
      const audio = reply['audio'];
      if (typeof (audio as { url?: unknown } | undefined)?.url !== 'string') throw new GatewayError('WORKER_FAILED', 'worker answer lacks audio.url');
      return [[await hostable(audio)]];
    }
    default:
      return [];
  }
}

/** A worker answer in the gateway's response shape, with the result keys stored for it. */
export interface Shaped {
  /** The response body. */
  readonly body: unknown;
  /** The keys of the result media stored (`<requestID>/<n>.<ext>`); [] for pipelines without media. */
  readonly keys: readonly string[];
}

/**
 * Turns a worker answer into the gateway's response shape, storing its media (fetched by
 * {@link collectMedia}, same order) in the gateway's result storage under
 * `<requestID>/<n>.<ext>`, served at `<publicUrl>/stream/<requestID>/<n>.<ext>`.
 */
export async function shape(options: ResultHosting, pipeline: Pipeline, requestID: string, body: unknown, media: ResultMedia[][], request: Record<string, unknown>): Promise<Shaped> {
  const keys: string[] = [];
  return { body: await shapeBody(options, pipeline, requestID, body, media, request, keys), keys };
}

async function shapeBody(options: ResultHosting, pipeline: Pipeline, requestID: string, body: unknown, media: ResultMedia[][], request: Record<string, unknown>, keys: string[]): Promise<unknown> {
  const reply = (body ?? {}) as Record<string, unknown>;
  const host = async (item: ResultMedia, index: number): Promise<string> => {
    const ext = extensionOf(item.contentType)!;
    const key = `${requestID}/${index}.${ext}`;
    await options.results.putBytes(key, item.data, NEW_KEY);
    keys.push(key);
    return `${options.publicUrl}/stream/${requestID}/${index}.${ext}`;
  };
  switch (pipeline) {
    case 'text-to-image': case 'image-to-image': case 'upscale': {
      const images = reply['images'] as Media[];
      return { images: await Promise.all(images.map(async (m, i) => ({ url: await host(media[i]![0]!, i), seed: m.seed ?? 0, nsfw: m.nsfw ?? false }))) };
    }
    case 'image-to-video': {
      const videos = reply['frames'] as Media[][];
      const fps = Number(request['fps'] ?? DEFAULT_VIDEO_FPS) || DEFAULT_VIDEO_FPS;
      const images = [];
      for (const [i, frames] of videos.entries()) {
        const path = await options.scratchFile('.mp4');
        try {
          await options.framesToMp4(media[i]!.map((f) => f.data), fps, path);
          await options.results.putBytes(`${requestID}/${i}.mp4`, await readFile(path), NEW_KEY);
          keys.push(`${requestID}/${i}.mp4`);
        } finally {
          await rm(path, { force: true });
        }
        images.push({ url: `${options.publicUrl}/stream/${requestID}/${i}.mp4`, seed: frames[0]?.seed ?? 0, nsfw: frames.some((f) => f?.nsfw === true) });
      }
      return { images };
    }
    case 'text-to-speech':
      return { audio: { url: await host(media[0]![0]!, 0) } };
    default:
      return reply;
  }
}
