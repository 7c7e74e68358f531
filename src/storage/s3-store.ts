/**
 * S3 object store: object `a/b/c.ts` is the S3 object `<prefix>a/b/c.ts` in one bucket, on AWS
 * S3 or any S3-compatible service (MinIO, Ceph RGW, Cloudflare R2, ...), through the AWS SDK
 * for JavaScript v3 (`@aws-sdk/client-s3`, multipart uploads with `@aws-sdk/lib-storage`).
 * This folder is the only one that imports `@aws-sdk`.
 *
 * - Bodies are streamed both ways: uploads go through lib-storage `Upload`, which reads the
 *   source stream in parts of {@link PART_SIZE_BYTES} (one PutObject below that size,
 *   multipart above) and holds at most `queueSize` × part size in memory; downloads hand the
 *   response body on as a stream (`getStream`) or write it to a scratch file (`getFile`).
 *
 * The client and its settings (credentials, retries, timeouts, checksums) are in
 * s3-client.ts, the reading of SDK errors in s3-errors.ts.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat as fsStat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';
import {
  assertObjectKey, assertObjectPrefix, contentTypeOf, isObjectKey, listLimit, MAX_LIST_PAGE,
  type LocalObject, type ObjectEntry, type ObjectInfo, type ObjectPage, type ObjectStore, type StoreHealth,
} from './object-store.ts';
import { describeS3Error, explainBucketError, isMissing } from './s3-errors.ts';

/** Part size of multipart uploads: 8 MiB (S3's minimum part is 5 MiB; lib-storage's default is that minimum). */
export const PART_SIZE_BYTES = 8 * 1024 * 1024;
/** Parts of one upload in flight at once: at most 4 × 8 MiB of one upload in memory. */
const UPLOAD_QUEUE_SIZE = 4;
/** Keys per DeleteObjects request: the S3 maximum. */
const DELETE_BATCH = 1000;

export interface S3ObjectStoreOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key: `''` or ending in `/`, e.g. `mediagate/`. */
  prefix: string;
  /** Where `getFile` downloads objects to (created on first use); entries are named `get-<pid>-…` (storage/work-dir.ts). */
  scratchDir: string;
  /** What the endpoint is called in messages (no credentials): the endpoint URL, or `AWS S3 (<region>)`. */
  endpointName: string;
}

/** Messages name the endpoint and bucket, never credentials. */
export class S3ObjectStore implements ObjectStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #scratchDir: string;
  readonly #endpointName: string;
  /** `bucket <name> at <endpoint>`, for messages. */
  readonly #where: string;

  constructor(options: S3ObjectStoreOptions) {
    if (options.prefix !== '' && !options.prefix.endsWith('/')) throw new GatewayError('CONFIG_INVALID', 'an S3 key prefix must be empty or end in "/"');
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#prefix = options.prefix;
    this.#scratchDir = options.scratchDir;
    this.#endpointName = options.endpointName;
    this.#where = `bucket ${options.bucket} at ${options.endpointName}`;
  }

  /** The same bucket and client under a further key prefix (`sub` ends in `/`), e.g. the AI results' `.results/`. */
  scoped(sub: string): S3ObjectStore {
    return new S3ObjectStore({
      client: this.#client, bucket: this.#bucket, prefix: `${this.#prefix}${sub}`, scratchDir: this.#scratchDir,
      endpointName: this.#endpointName,
    });
  }

  #key(key: string): string {
    assertObjectKey(key);
    return `${this.#prefix}${key}`;
  }

  #failed(what: string, err: unknown): GatewayError {
    if (isGatewayError(err)) return err;
    return new GatewayError('STORAGE_FAILED', `cannot ${what} (${this.#where}): ${describeS3Error(err)}`, { cause: err });
  }

  async #upload(key: string, body: Readable | Uint8Array): Promise<void> {
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key: this.#key(key), Body: body, ContentType: contentTypeOf(key) },
      partSize: PART_SIZE_BYTES,
      queueSize: UPLOAD_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async putFile(key: string, localPath: string): Promise<ObjectInfo> {
    this.#key(key);
    try {
      const { size } = await fsStat(localPath);
      await this.#upload(key, createReadStream(localPath));
      return { sizeBytes: size };
    } catch (err) {
      throw this.#failed(`write object ${key}`, err);
    }
  }

  async putBytes(key: string, data: Uint8Array): Promise<ObjectInfo> {
    this.#key(key);
    try {
      await this.#upload(key, data);
      return { sizeBytes: data.byteLength };
    } catch (err) {
      throw this.#failed(`write object ${key}`, err);
    }
  }

  async putStream(key: string, stream: Readable): Promise<ObjectInfo> {
    this.#key(key);
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const source = pipeline(stream, counter);
    try {
      // Upload consumes the counter; a source error destroys the counter, which fails the upload.
      await Promise.all([this.#upload(key, counter), source]);
      return { sizeBytes: bytes };
    } catch (err) {
      source.catch(() => undefined);
      // An upload that failed first leaves the source unread: release it.
      counter.destroy();
      throw this.#failed(`write object ${key}`, err);
    }
  }

  async getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined> {
    if (!isObjectKey(key)) return undefined;
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }));
      return { stream: out.Body as Readable, sizeBytes: out.ContentLength ?? 0 };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.#failed(`read object ${key}`, err);
    }
  }

  async getFile(key: string): Promise<LocalObject> {
    const object = await this.getStream(key);
    if (!object) throw new GatewayError('NOT_FOUND', `object ${key} not found`);
    await mkdir(this.#scratchDir, { recursive: true });
    const path = join(this.#scratchDir, `get-${process.pid}-${randomBytes(6).toString('hex')}-${basename(key)}`);
    const release = async (): Promise<void> => { await rm(path, { force: true }); };
    try {
      await pipeline(object.stream, createWriteStream(path));
    } catch (err) {
      await release();
      throw this.#failed(`read object ${key}`, err);
    }
    return { path, release };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    if (!isObjectKey(key)) return undefined;
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }));
      return { sizeBytes: out.ContentLength ?? 0 };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.#failed(`stat object ${key}`, err);
    }
  }

  async list(prefix: string, options: { cursor?: string; limit?: number } = {}): Promise<ObjectPage> {
    assertObjectPrefix(prefix, true);
    const limit = listLimit(options.limit);
    try {
      const out = await this.#client.send(new ListObjectsV2Command({
        Bucket: this.#bucket, Prefix: `${this.#prefix}${prefix}`, MaxKeys: limit,
        ...(options.cursor === undefined ? {} : { ContinuationToken: options.cursor }),
      }));
      const objects: ObjectEntry[] = [];
      for (const o of out.Contents ?? []) {
        const key = (o.Key ?? '').slice(this.#prefix.length);
        // Keys mediagate did not write (or another store's subtree, e.g. `.results/`) are not its objects.
        if (!isObjectKey(key)) continue;
        objects.push({ key, sizeBytes: o.Size ?? 0, lastModifiedMs: o.LastModified?.getTime() ?? 0 });
      }
      return out.IsTruncated && out.NextContinuationToken ? { objects, cursor: out.NextContinuationToken } : { objects };
    } catch (err) {
      throw this.#failed(`list objects under ${prefix || '(root)'}`, err);
    }
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    const source = this.#key(fromKey);
    const target = this.#key(toKey);
    try {
      // CopySource is `<bucket>/<key>`, URL-encoded (keys here are [A-Za-z0-9_.-/] only).
      await this.#client.send(new CopyObjectCommand({
        Bucket: this.#bucket, Key: target, CopySource: `${this.#bucket}/${encodeURI(source)}`,
        ContentType: contentTypeOf(toKey), MetadataDirective: 'REPLACE',
      }));
    } catch (err) {
      if (isMissing(err)) throw new GatewayError('NOT_FOUND', `object ${fromKey} not found`);
      throw this.#failed(`copy object ${fromKey} to ${toKey}`, err);
    }
    const info = await this.stat(toKey);
    if (!info) throw new GatewayError('STORAGE_FAILED', `copy of ${fromKey} to ${toKey} is not there (${this.#where})`);
    return info;
  }

  async deleteKeys(keys: readonly string[]): Promise<void> {
    const full = keys.map((k) => this.#key(k));
    for (let i = 0; i < full.length; i += DELETE_BATCH) {
      const batch = full.slice(i, i + DELETE_BATCH);
      let errors: { Key?: string; Code?: string; Message?: string }[];
      try {
        const out = await this.#client.send(new DeleteObjectsCommand({
          Bucket: this.#bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }));
        errors = out.Errors ?? [];
      } catch (err) {
        throw this.#failed(`delete ${batch.length} objects`, err);
      }
      if (errors.length > 0) {
        const first = errors[0]!;
        throw new GatewayError('STORAGE_FAILED',
          `cannot delete ${errors.length} of ${batch.length} objects (${this.#where}), e.g. ${(first.Key ?? '').slice(this.#prefix.length)}: ${first.Code ?? ''} ${first.Message ?? ''}`.trim());
      }
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    assertObjectPrefix(prefix, false);
    // List from the start again after each deleted page: no continuation token over keys that are gone.
    for (;;) {
      const page = await this.list(prefix, { limit: MAX_LIST_PAGE });
      if (page.objects.length === 0) return;
      await this.deleteKeys(page.objects.map((o) => o.key));
      if (page.cursor === undefined) return;
    }
  }

  /**
   * Startup check: HeadBucket (needs `s3:ListBucket`, which list and deletePrefix need too).
   * @throws GatewayError STORAGE_FAILED saying whether the bucket is missing, access is denied
   *   or the endpoint is unreachable, and what to do
   */
  async verify(timeoutMs: number): Promise<void> {
    const problem = await this.#headBucket(timeoutMs);
    if (problem) throw new GatewayError('STORAGE_FAILED', problem, { retryable: false });
  }

  async check(timeoutMs: number): Promise<StoreHealth> {
    const problem = await this.#headBucket(timeoutMs);
    return problem ? { ok: false, detail: problem } : { ok: true };
  }

  /** `undefined` when HeadBucket succeeds within `timeoutMs` (retries included), else what is wrong. */
  async #headBucket(timeoutMs: number): Promise<string | undefined> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
      return undefined;
    } catch (err) {
      return explainBucketError(err, this.#bucket, this.#endpointName, timeoutMs);
    }
  }

  async close(): Promise<void> {
    // The client is shared and closed by its owner (storage/open-store.ts).
  }
}
