/**
 * The object store: where segments and result media live, keyed by slash-separated keys
 * such as `<manifestID>/<session>/<rendition>/<seq>.ts`. Implementations: a local directory
 * (fs-store.ts) and any S3-compatible service (s3-store.ts); both pass one contract suite
 * (test/integration/storage/object-store-contract.test.ts). Consumers in other folders declare
 * the subset they use as their own port (e.g. hls/playback.ts `PlaybackStorage`).
 *
 * Keys: 1-8 `/`-separated parts of `[A-Za-z0-9_.-]` (at most 128 characters each), none
 * starting with a dot ({@link assertObjectKey}). Prefixes given to {@link ObjectStore.list}
 * and {@link ObjectStore.deletePrefix} are such a key followed by `/` (list also takes `''`,
 * the whole store).
 */
import type { Readable } from 'node:stream';
import { GatewayError } from '../errors/gateway-error.ts';

export interface ObjectInfo {
  readonly sizeBytes: number;
}

/** One object found by {@link ObjectStore.list}. */
export interface ObjectEntry {
  readonly key: string;
  readonly sizeBytes: number;
  /** When the object was last written, epoch ms (S3 `LastModified`, the file's mtime). */
  readonly lastModifiedMs: number;
}

/** One page of {@link ObjectStore.list}. */
export interface ObjectPage {
  /** In ascending key order (byte order of the UTF-8 key, as S3 lists). */
  readonly objects: readonly ObjectEntry[];
  /** Pass as `cursor` to get the next page; absent on the last page. */
  readonly cursor?: string;
}

/** Readiness of the store for `/healthz`. */
export interface StoreHealth {
  readonly ok: boolean;
  /** Why it is not ok, for an operator (never holds credentials). */
  readonly detail?: string;
}

/** A stored object made available as a local file by {@link ObjectStore.getFile}. */
export interface LocalObject {
  readonly path: string;
  /** Call once done with `path`: deletes a downloaded copy (no-op for the filesystem store). Idempotent. */
  release(): Promise<void>;
}

/** Most keys one {@link ObjectStore.list} page returns, and the largest page S3 gives (ListObjectsV2 `MaxKeys`). */
export const MAX_LIST_PAGE = 1000;

/** How {@link ObjectStore.putFile} may take its local file. */
export interface PutBytesOptions {
  /**
   * The key is one no object has and nobody reads before the put resolves (an AI result
   * under its request's fresh ID, not yet announced to anyone): the filesystem store then
   * creates the file under its own name (O_EXCL) instead of writing a temporary file and
   * renaming it (one metadata operation and one threadpool round trip fewer per object), and
   * an object already there is refused (STORAGE_FAILED) rather than replaced. A write that
   * fails removes its file; one cut short by a crash leaves a file nobody was told of, which
   * the results' expiry sweep deletes. Stores whose writes are atomic anyway (S3) ignore it.
   * Default false.
   */
  readonly newKey?: boolean;
}

export interface PutFileOptions {
  /**
   * The caller never writes to the local file again (it only deletes it): the filesystem store
   * may then hard-link it into place instead of copying its bytes (no data copied, one
   * metadata operation); it copies when the file is on another filesystem or links are not
   * supported. Default false (the object is a copy, whatever becomes of the file).
   */
  readonly sourceFinal?: boolean;
  /**
   * The file's size in bytes when the caller knows it (the RTMP segmenter counts what it
   * wrote): a store that would read the size back after storing the file (the filesystem
   * store stats the stored object) returns this instead. Default: the store measures it.
   */
  readonly sizeBytes?: number;
}

export interface ObjectStore {
  /**
   * Stores the local file at `localPath` under `key`, atomically replacing any previous
   * object; the file is read as a stream.
   * @throws GatewayError STORAGE_FAILED, INVALID_NAME for a bad key
   */
  putFile(key: string, localPath: string, options?: PutFileOptions): Promise<ObjectInfo>;
  /**
   * Stores bytes under `key`, atomically replacing any previous object; with `newKey` see
   * {@link PutBytesOptions}. @throws like putFile
   */
  putBytes(key: string, data: Uint8Array, options?: PutBytesOptions): Promise<ObjectInfo>;
  /**
   * Stores what `stream` yields under `key`, atomically replacing any previous object once the
   * stream ended; nothing is stored when it fails. @throws like putFile (also for a stream error)
   */
  putStream(key: string, stream: Readable): Promise<ObjectInfo>;
  /**
   * Makes the object available as a local file: the file itself (filesystem) or a copy
   * downloaded (streamed) to the store's scratch directory, deleted by `release()`.
   * @throws GatewayError NOT_FOUND when the key does not exist, STORAGE_FAILED
   */
  getFile(key: string): Promise<LocalObject>;
  /**
   * Streams the object; `undefined` when it does not exist. Destroy the stream when not
   * reading it to its end (it may hold a connection to the store).
   * @throws GatewayError STORAGE_FAILED
   */
  getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined>;
  /** Size of the object, or `undefined` when absent. @throws GatewayError STORAGE_FAILED */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /**
   * One page of the objects whose key starts with `prefix` (`''` or a key ending in `/`),
   * in key order. Objects written while paging may or may not appear.
   * @param options.limit most objects in the page, 1-{@link MAX_LIST_PAGE}; default {@link MAX_LIST_PAGE}
   * @param options.cursor the previous page's `cursor`
   */
  list(prefix: string, options?: { cursor?: string; limit?: number }): Promise<ObjectPage>;
  /**
   * Copies an object to another key (server-side on S3: CopyObject, objects up to 5 GB),
   * atomically replacing any object there.
   * @throws GatewayError NOT_FOUND when `fromKey` does not exist, STORAGE_FAILED
   */
  copy(fromKey: string, toKey: string): Promise<ObjectInfo>;
  /** Deletes these keys (missing ones are fine), in batches of up to 1000. @throws GatewayError STORAGE_FAILED */
  deleteKeys(keys: readonly string[]): Promise<void>;
  /**
   * Deletes every object whose key starts with `prefix` (which must end in `/`), page by page.
   * @throws GatewayError INVALID_NAME for a bad prefix, STORAGE_FAILED
   */
  deletePrefix(prefix: string): Promise<void>;
  /** Whether the store is reachable and writable now, answering within about `timeoutMs`. Never throws. */
  check(timeoutMs: number): Promise<StoreHealth>;
  /** Releases connections (S3). Idempotent. */
  close(): Promise<void>;
}

const KEY_PART = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/**
 * Checks a key before it becomes a path or an S3 key: 1-8 `/`-separated parts of
 * `[A-Za-z0-9_.-]`, none `.`/`..` or starting with a dot.
 * @throws GatewayError INVALID_NAME
 */
export function assertObjectKey(key: string): void {
  const parts = key.split('/');
  if (parts.length < 1 || parts.length > 8 || !parts.every((p) => KEY_PART.test(p) && p !== '..')) {
    throw new GatewayError('INVALID_NAME', `invalid object key ${JSON.stringify(key.slice(0, 120))}`);
  }
}

/** Whether `key` passes {@link assertObjectKey}. */
export function isObjectKey(key: string): boolean {
  try {
    assertObjectKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a prefix of {@link ObjectStore.list} (`''` allowed) or {@link ObjectStore.deletePrefix}.
 * @throws GatewayError INVALID_NAME
 */
export function assertObjectPrefix(prefix: string, allowEmpty: boolean): void {
  if (prefix === '' && allowEmpty) return;
  if (!prefix.endsWith('/')) throw new GatewayError('INVALID_NAME', `object prefix ${JSON.stringify(prefix.slice(0, 120))} must end in "/"`);
  assertObjectKey(prefix.slice(0, -1));
}

/** The `limit` of a list call, checked. @throws GatewayError INVALID_REQUEST */
export function listLimit(limit: number | undefined): number {
  const n = limit ?? MAX_LIST_PAGE;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIST_PAGE) throw new GatewayError('INVALID_REQUEST', `list limit must be 1-${MAX_LIST_PAGE}, got ${n}`);
  return n;
}

/** Every object under `prefix`, page by page (see {@link ObjectStore.list}). */
export async function* listAll(store: Pick<ObjectStore, 'list'>, prefix: string): AsyncGenerator<ObjectEntry> {
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, cursor === undefined ? {} : { cursor });
    yield* page.objects;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/**
 * `Content-Type` of an object by its key's extension, so objects served straight from a
 * bucket or CDN (storage.publicBaseUrl) play: `video/mp2t` for `.ts` (RFC 8216 §3.2 names
 * MPEG-2 TS; IANA's `video/mp2t`), `application/vnd.apple.mpegurl` for playlists (RFC 8216 §4),
 * otherwise `application/octet-stream`.
 */
export function contentTypeOf(key: string): string {
  const ext = /\.([a-z0-9]+)$/i.exec(key)?.[1]?.toLowerCase() ?? '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

const CONTENT_TYPES: Record<string, string> = {
  ts: 'video/mp2t',
  m3u8: 'application/vnd.apple.mpegurl',
  mp4: 'video/mp4',
  m4s: 'video/iso.segment',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  flac: 'audio/flac',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
};
