/**
 * Resolves a configured watermark (domain/watermark.ts `WatermarkRequest`) into the spec the
 * transcoders draw, at configuration time: at startup for `watermark.*` and stream keys, at
 * publish for the auth webhook's answer. A bad image is refused here, with INVALID_WATERMARK
 * naming it, so it never reaches a transcoder.
 *
 * The image's bytes must be readable by every transcoder, on any host: a local path on the
 * gateway is not. So an image given as a path is copied into the object store under a
 * content-addressed key, `watermarks/<sha256 of the bytes, 32 hex>.<png|jpg>` (the same image
 * gives the same key on every gateway and at every restart; a changed image gets a new key and
 * running streams keep theirs); an image given as an object-store key is used where it is. In
 * both cases the transcoder fetches the image by key (segment-transcoder.ts, the live ladder).
 *
 * Checks: the bytes are a PNG or JPEG (by their signature, never the name; media/media-sniff.ts),
 * at most {@link MAX_WATERMARK_IMAGE_BYTES}, and fit the ladder's frames (domain/watermark.ts
 * `checkWatermarkFits`). Only the headers are read: a PNG or JPEG whose body is corrupt is not
 * detected here.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { VideoProfile } from '../domain/profile.ts';
import { checkWatermarkFits, parseWatermarkRequest, type WatermarkRequest, type WatermarkSpec } from '../domain/watermark.ts';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';
import { sniffImage } from '../media/media-sniff.ts';

/** Largest watermark image file, bytes (a 1920×1080 RGBA PNG of a logo is far smaller). */
export const MAX_WATERMARK_IMAGE_BYTES = 8 * 1024 * 1024;

/** Object-store prefix of images copied from a local path. */
export const WATERMARK_KEY_PREFIX = 'watermarks';

/** What the resolver needs from the object store (storage/object-store.ts `ObjectStore` has these shapes). */
export interface WatermarkStorage {
  /** Makes the object available as a local file; call `release` when done. Rejects with GatewayError NOT_FOUND when absent. */
  getFile(key: string): Promise<{ path: string; release: () => Promise<void> }>;
  /** Stores the local file under `key`, replacing any previous object. */
  putFile(key: string, localPath: string): Promise<{ readonly sizeBytes: number }>;
}

/** The frame sizes a ladder's profiles ask for, to check an image against. */
export function ladderFrames(profiles: readonly VideoProfile[]): { width: number; height: number }[] {
  return profiles.map((p) => ({ width: p.width, height: p.height }));
}

export class WatermarkResolver {
  readonly #storage: WatermarkStorage;

  constructor(storage: WatermarkStorage) {
    this.#storage = storage;
  }

  /**
   * @param frames the ladder's frame sizes ({@link ladderFrames}); the image must fit them
   * @param where names the setting in messages, e.g. `watermark`, `streamKeys[2].watermark`, `auth webhook: watermark`
   * @returns the spec, its image in the object store
   * @throws GatewayError INVALID_WATERMARK when the file or key cannot be read, is too large, is
   *   not a PNG/JPEG, or does not fit the frames; storage errors other than NOT_FOUND as raised.
   */
  async resolve(request: WatermarkRequest, frames: readonly { width: number; height: number }[], where: string): Promise<WatermarkSpec> {
    const marksSource = request.applyToSource === true ? { applyToSource: true as const } : {};
    if (request.kind === 'text') return { kind: 'text', text: request.text, fontSizeFraction: request.fontSizeFraction, position: request.position, margin: request.margin, opacity: request.opacity, ...marksSource };
    const { image } = request;
    let bytes: Buffer;
    let imageKey: string;
    if ('path' in image) {
      bytes = await readLimited(image.path, `${where}.image`);
      imageKey = '';
    } else {
      imageKey = image.key;
      let local: { path: string; release: () => Promise<void> };
      try {
        local = await this.#storage.getFile(image.key);
      } catch (err) {
        if (isGatewayError(err) && (err.code === 'NOT_FOUND' || err.code === 'INVALID_NAME')) {
          throw new GatewayError('INVALID_WATERMARK', `${where}.imageKey: ${JSON.stringify(image.key.slice(0, 120))} is not an object in the object store`);
        }
        throw err;
      }
      try {
        bytes = await readLimited(local.path, `${where}.imageKey`);
      } finally {
        await local.release();
      }
    }
    const info = sniffImage(bytes);
    const field = 'path' in image ? `${where}.image` : `${where}.imageKey`;
    if (!info) throw new GatewayError('INVALID_WATERMARK', `${field}: not a PNG or JPEG image (by its first bytes)`);
    if (info.format !== 'png' && info.format !== 'jpeg') throw new GatewayError('INVALID_WATERMARK', `${field}: a ${info.format.toUpperCase()} image; a watermark must be a PNG or JPEG`);
    if (info.width < 1 || info.height < 1) throw new GatewayError('INVALID_WATERMARK', `${field}: image header gives a size of ${info.width}x${info.height}`);
    const spec: WatermarkSpec = {
      kind: 'image', imageKey, imageFormat: info.format, imageWidthPx: info.width, imageHeightPx: info.height,
      widthFraction: request.widthFraction, position: request.position, margin: request.margin, opacity: request.opacity, ...marksSource,
    };
    checkWatermarkFits(spec, frames, where);
    if ('path' in image) {
      const key = `${WATERMARK_KEY_PREFIX}/${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.${info.format === 'png' ? 'png' : 'jpg'}`;
      await this.#storage.putFile(key, image.path);
      return { ...spec, imageKey: key };
    }
    return spec;
  }
}

/** The whole file, refusing a missing or oversized one. @throws GatewayError INVALID_WATERMARK naming `field`. */
async function readLimited(path: string, field: string): Promise<Buffer> {
  let sizeBytes: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new GatewayError('INVALID_WATERMARK', `${field}: ${path} is not a file`);
    sizeBytes = info.size;
  } catch (err) {
    if (isGatewayError(err)) throw err;
    throw new GatewayError('INVALID_WATERMARK', `${field}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (sizeBytes > MAX_WATERMARK_IMAGE_BYTES) throw new GatewayError('INVALID_WATERMARK', `${field}: ${sizeBytes} bytes, more than ${MAX_WATERMARK_IMAGE_BYTES}`);
  return readFile(path);
}

/** The config's `watermark.*` settings (config/config-schema.ts). */
export interface WatermarkSettings {
  readonly image: string;
  readonly imageKey: string;
  readonly text: string;
  readonly position: string;
  readonly marginFraction: number;
  readonly widthFraction: number;
  readonly fontSizeFraction: number;
  readonly opacity: number;
  /** Also mark the source (domain/watermark.ts `applyToSource`); absent in older callers = false. */
  readonly applyToSource?: boolean;
}

/**
 * The default watermark the settings describe; undefined when `image`, `imageKey` and `text`
 * are all empty (no watermark).
 * @throws GatewayError INVALID_WATERMARK (more than one of them set, a bad text).
 */
export function watermarkRequestOfSettings(settings: WatermarkSettings): WatermarkRequest | undefined {
  const { image, imageKey, text, position, marginFraction, widthFraction, fontSizeFraction, opacity, applyToSource } = settings;
  if (image === '' && imageKey === '' && text === '') return undefined;
  const sized = text !== '' && image === '' && imageKey === '' ? { fontSizeFraction } : { widthFraction };
  return parseWatermarkRequest({
    ...(image !== '' ? { image } : {}), ...(imageKey !== '' ? { imageKey } : {}), ...(text !== '' ? { text } : {}),
    position, marginFraction, opacity, ...sized, ...(applyToSource === true ? { applyToSource } : {}),
  }, 'watermark');
}
