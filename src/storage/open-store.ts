/**
 * Builds the process's object stores from config `storage` (docs/config.md): the media store
 * (segments) and the AI results store beside it (`.results/` under the same root or key
 * prefix, a name no media key can take since keys never start with a dot).
 */
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { GatewayError } from '../errors/gateway-error.ts';
import { FsObjectStore } from './fs-store.ts';
import { createS3Client, endpointName, type S3Settings } from './s3-client.ts';
import { S3ObjectStore } from './s3-store.ts';
import type { ObjectStore, StoreHealth } from './object-store.ts';

export interface StorageSettings {
  kind: 'fs' | 's3';
  /** Root directory of the filesystem store. */
  dir: string;
  s3: S3Settings & { bucket: string; prefix: string };
}

export interface ObjectStores {
  /** Segments: `<manifestID>/<session>/<rendition>/<seq>.ts` (domain/segment.ts). */
  readonly media: ObjectStore;
  /** AI result media: `<requestID>/<n>.<ext>` (on `fs` one flat directory: `<requestID>+<n>.<ext>`). */
  readonly results: ObjectStore;
  /** `fs` or `s3`, for logs. */
  readonly kind: 'fs' | 's3';
  /** Where the objects are, for logs: a directory, or `s3://<bucket>/<prefix> at <endpoint>` (never credentials). */
  readonly location: string;
  /**
   * Fails fast when the store cannot be used: S3 HeadBucket (missing bucket, access denied,
   * unreachable endpoint, each said apart), the directory's writability for `fs`.
   * @throws GatewayError STORAGE_FAILED naming the bucket and endpoint and what to do
   */
  verify(timeoutMs: number): Promise<void>;
  /** For `/healthz`: the same check within `timeoutMs`, never throwing. */
  check(timeoutMs: number): Promise<StoreHealth>;
  /** Closes the S3 client's connections. Idempotent. */
  close(): Promise<void>;
}

/** Results live under this prefix of the media store's root. */
const RESULTS_PREFIX = '.results/';

/**
 * @param scratchDir where S3 downloads for `getFile` go (a work-dir area swept at startup:
 *   entries `get-<pid>-…`, storage/work-dir.ts)
 */
export function openObjectStores(settings: StorageSettings, scratchDir: string): ObjectStores {
  if (settings.kind === 'fs') {
    const media = new FsObjectStore(settings.dir);
    return {
      // Flat: a result request writes one file, never a directory of its own.
      media, results: new FsObjectStore(join(settings.dir, RESULTS_PREFIX), { layout: 'flat' }), kind: 'fs', location: settings.dir,
      verify: async () => {
        const health = await media.check();
        if (!health.ok) throw new GatewayError('STORAGE_FAILED', health.detail, { retryable: false });
      },
      check: () => media.check(),
      close: async () => undefined,
    };
  }
  const client: S3Client = createS3Client(settings.s3);
  const name = endpointName(settings.s3);
  const media = new S3ObjectStore({ client, bucket: settings.s3.bucket, prefix: settings.s3.prefix, scratchDir, endpointName: name });
  let closed = false;
  return {
    media, results: media.scoped(RESULTS_PREFIX), kind: 's3',
    location: `s3://${settings.s3.bucket}/${settings.s3.prefix} at ${name}`,
    verify: (timeoutMs) => media.verify(timeoutMs),
    check: (timeoutMs) => media.check(timeoutMs),
    close: async () => {
      if (closed) return;
      closed = true;
      client.destroy();
    },
  };
}
