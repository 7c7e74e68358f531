/**
 * Thumbnails of source segments: the first keyframe of one MPEG-TS segment as a JPEG, made by
 * one ffmpeg that decodes that keyframe only. `-skip_frame nokey` makes the decoder drop every
 * frame that is not a keyframe (libavcodec `AVDiscard` `AVDISCARD_NONKEY`), and `-frames:v 1`
 * ends the run at the first picture, so the rest of the segment is neither decoded nor read
 * (ffmpeg exits and the feeding stops). A source segment starts at a keyframe (ingest cuts at
 * keyframes), so that picture is the segment's first.
 *
 * {@link Thumbnails} makes each segment's thumbnail at most once per process (concurrent
 * requests share one run), keeps it in the object store beside the segment so any gateway
 * finds it there, and keeps the most recent few in memory.
 */
import type { Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import type { ChildSupervisor } from './child-supervisor.ts';

/** What shapes a thumbnail (config `thumbnails.*`). */
export interface ThumbnailOptions {
  /** Largest width in pixels; a narrower picture keeps its width. */
  readonly widthPx: number;
  /** mjpeg `-q:v`, 2 (best) to 31. */
  readonly jpegQscale: number;
}

/**
 * ffmpeg arguments: MPEG-TS on stdin → one JPEG on stdout. The width is `min(iw, widthPx)`
 * and the height keeps the aspect ratio rounded to an even number (`-2`, ffmpeg's scale
 * filter); one decoder thread (one picture gains nothing from frame threads, which only
 * add start-up work).
 */
export function thumbnailArgs(options: ThumbnailOptions): string[] {
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-skip_frame', 'nokey', '-threads', '1', '-f', 'mpegts', '-i', 'pipe:0',
    '-map', '0:v:0', '-an', '-sn', '-dn', '-frames:v', '1',
    '-vf', `scale=w='min(iw,${options.widthPx})':h=-2`,
    '-c:v', 'mjpeg', '-q:v', String(options.jpegQscale), '-f', 'image2pipe', 'pipe:1',
  ];
}

/** Why no thumbnail came out. */
export class ThumbnailError extends Error {
  /** `no-video`: the segment holds no video stream; `failed`: ffmpeg failed otherwise. */
  readonly reason: 'no-video' | 'failed';
  constructor(reason: 'no-video' | 'failed', message: string) {
    super(message);
    this.name = 'ThumbnailError';
    this.reason = reason;
  }
}

/** Longest one thumbnail run may take, ms (a 2 s segment takes about 0.1 s). */
const THUMBNAIL_TIMEOUT_MS = 10_000;
/** ffmpeg's error when `-map 0:v:0` finds no video stream (fftools/ffmpeg_opt.c). */
const NO_VIDEO = /matches no streams/;

/**
 * Decodes the first keyframe of `segment` (an MPEG-TS stream, destroyed when not read to its
 * end) into a JPEG.
 * @returns the JPEG bytes
 * @throws ThumbnailError `no-video` when the segment has no video stream, `failed` when ffmpeg
 *   fails, times out or writes nothing
 */
export async function extractThumbnail(supervisor: ChildSupervisor, segment: Readable, options: ThumbnailOptions): Promise<Buffer> {
  let lastError = '';
  let noVideo = false;
  const child = supervisor.spawn('ffmpeg', thumbnailArgs(options), {
    name: 'thumbnail', stdio: ['pipe', 'pipe', 'pipe'],
    onStderrLine: (line) => {
      lastError = line;
      noVideo ||= NO_VIDEO.test(line);
    },
  });
  const stdin = child.process.stdin as Writable;
  // ffmpeg exits after its one frame while the segment is still being written: expected.
  stdin.on('error', () => undefined);
  const feeding = pipeline(segment, stdin).catch(() => segment.destroy());
  const chunks: Buffer[] = [];
  (child.process.stdout as Readable).on('data', (chunk: Buffer) => chunks.push(chunk));
  const timer = setTimeout(() => { void child.stop(); }, THUMBNAIL_TIMEOUT_MS);
  try {
    const exit = await child.exited;
    segment.destroy();
    await feeding;
    if (exit.spawnError) throw new ThumbnailError('failed', `cannot start ffmpeg: ${exit.spawnError.message}`);
    if (exit.code !== 0) {
      if (noVideo) throw new ThumbnailError('no-video', 'the segment has no video stream');
      throw new ThumbnailError('failed', `ffmpeg exited with ${exit.code ?? exit.signal}${lastError ? `: ${lastError}` : ''}`);
    }
    const jpeg = Buffer.concat(chunks);
    if (jpeg.length === 0) throw new ThumbnailError('failed', 'ffmpeg decoded no keyframe');
    return jpeg;
  } finally {
    clearTimeout(timer);
  }
}

/** The object store as {@link Thumbnails} uses it. */
export interface ThumbnailObjects {
  getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined>;
  putBytes(key: string, data: Uint8Array): Promise<unknown>;
}

export interface ThumbnailsOptions extends ThumbnailOptions {
  readonly objects: ThumbnailObjects;
  readonly supervisor: ChildSupervisor;
  /** Thumbnails kept in memory (the most recently made or read); default 64. */
  readonly memoryEntries?: number;
}

/**
 * Thumbnails made on demand, at most once per segment and process, kept in the object store.
 * Between gateways the store is the cache: a gateway that finds the thumbnail stored reads it
 * instead of decoding; two gateways asked for a new segment at the same moment may each
 * decode it once (both store the same picture).
 */
export class Thumbnails {
  readonly #o: ThumbnailsOptions;
  readonly #memory = new Map<string, Buffer>();
  readonly #running = new Map<string, Promise<Buffer | undefined>>();
  readonly #memoryEntries: number;

  constructor(options: ThumbnailsOptions) {
    this.#o = options;
    this.#memoryEntries = options.memoryEntries ?? 64;
  }

  /**
   * The thumbnail stored at `thumbnailKey`, made from the segment at `segmentKey` when absent.
   * @returns the JPEG, or `undefined` when the segment is not in the store
   * @throws ThumbnailError when the segment has no video or ffmpeg fails (nothing is stored);
   *   GatewayError STORAGE_FAILED from the store
   */
  get(segmentKey: string, thumbnailKey: string): Promise<Buffer | undefined> {
    const cached = this.#memory.get(thumbnailKey);
    if (cached) return Promise.resolve(cached);
    let running = this.#running.get(thumbnailKey);
    if (!running) {
      running = this.#load(segmentKey, thumbnailKey).finally(() => this.#running.delete(thumbnailKey));
      this.#running.set(thumbnailKey, running);
    }
    return running;
  }

  async #load(segmentKey: string, thumbnailKey: string): Promise<Buffer | undefined> {
    const stored = await this.#o.objects.getStream(thumbnailKey);
    if (stored) return this.#remember(thumbnailKey, await buffer(stored.stream));
    const segment = await this.#o.objects.getStream(segmentKey);
    if (!segment) return undefined;
    const jpeg = await extractThumbnail(this.#o.supervisor, segment.stream, this.#o);
    await this.#o.objects.putBytes(thumbnailKey, jpeg);
    return this.#remember(thumbnailKey, jpeg);
  }

  #remember(key: string, jpeg: Buffer): Buffer {
    this.#memory.set(key, jpeg);
    if (this.#memory.size > this.#memoryEntries) this.#memory.delete(this.#memory.keys().next().value!);
    return jpeg;
  }
}
