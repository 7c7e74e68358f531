/**
 * The object store: where segments and result media live, keyed by
 * slash-separated keys such as `<manifestID>/<rendition>/<seq>.ts`.
 * Implementations: filesystem now (fs-store.ts); S3-compatible later.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  readonly sizeBytes: number;
}

export interface ObjectStore {
  /** Stores the local file at `localPath` under `key`, atomically replacing any previous object. */
  putFile(key: string, localPath: string): Promise<ObjectInfo>;
  /** Stores bytes under `key`, atomically replacing any previous object. */
  putBytes(key: string, data: Uint8Array): Promise<ObjectInfo>;
  /**
   * Makes the object available as a local file and returns its path, plus a release
   * function to call when done (a no-op for the filesystem store, which returns the object itself).
   * @throws GatewayError NOT_FOUND when the key does not exist.
   */
  getFile(key: string): Promise<{ path: string; release: () => Promise<void> }>;
  /** Streams the object; `undefined` when it does not exist. */
  getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined>;
  /** Size of the object, or `undefined` when absent. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Deletes every object whose key starts with `prefix` (which must end in `/`). */
  deletePrefix(prefix: string): Promise<void>;
}
