/**
 * S3 object store: object `a/b/c.ts` is the S3 object `<prefix>a/b/c.ts` in one bucket, on AWS
 * S3 or any S3-compatible service (MinIO, Ceph RGW, Cloudflare R2, ...), through the AWS SDK
 * for JavaScript v3 (`@aws-sdk/client-s3`, multipart uploads with `@aws-sdk/lib-storage`).
 * This folder is the only one that imports `@aws-sdk`.
 *
 * - Credentials: the SDK's default provider chain only (environment `AWS_ACCESS_KEY_ID` /
 *   `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, shared config and credentials files and
 *   `AWS_PROFILE`, web identity, ECS and EC2 instance roles:
 *   https://docs.aws.amazon.com/sdk-for-javascript/v3/developer-guide/setting-credentials-node.html).
 *   Never in mediagate's config, never logged; no SDK logger is attached.
 * - Bodies are streamed both ways: uploads go through lib-storage `Upload`, which reads the
 *   source stream in parts of {@link PART_SIZE_BYTES} (one PutObject below that size,
 *   multipart above) and holds at most `queueSize` × part size in memory; downloads hand the
 *   response body on as a stream (`getStream`) or write it to a scratch file (`getFile`).
 * - Retries: the SDK's own retry strategy (`maxAttempts`, `retryMode` standard or adaptive:
 *   exponential backoff with jitter on 5xx, throttling, timeouts and connection errors;
 *   https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). A part is a
 *   buffer, so each is retried whole; a download failing mid-body is not resumed.
 * - Timeouts: the SDK's Node request handler options, `connectionTimeout` (TCP/TLS connect),
 *   `requestTimeout` with `throwOnRequestTimeout` (until the response headers, so a long
 *   download is not cut) and `socketTimeout` (idle socket, which also ends a stalled download).
 * - Third-party stores: `requestChecksumCalculation` and `responseChecksumValidation` are
 *   `WHEN_REQUIRED` (SDK releases since early 2025 send CRC32 checksums by default, which MinIO,
 *   Ceph and R2 versions refuse or mishandle), and DeleteObjects sends `Content-MD5` instead of
 *   the SDK's CRC32 header (aws-sdk-js-v3 supplemental-docs/MD5_FALLBACK.md).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat as fsStat } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command,
  S3Client, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';
import { loggableUrl } from '../log/loggable-url.ts';
import {
  assertObjectKey, assertObjectPrefix, contentTypeOf, isObjectKey, listLimit, MAX_LIST_PAGE,
  type LocalObject, type ObjectEntry, type ObjectInfo, type ObjectPage, type ObjectStore, type StoreHealth,
} from './object-store.ts';

/** Part size of multipart uploads: 8 MiB (S3's minimum part is 5 MiB; lib-storage's default is that minimum). */
export const PART_SIZE_BYTES = 8 * 1024 * 1024;
/** Parts of one upload in flight at once: at most 4 × 8 MiB of one upload in memory. */
const UPLOAD_QUEUE_SIZE = 4;
/** Keys per DeleteObjects request: the S3 maximum. */
const DELETE_BATCH = 1000;

/** Settings of the S3 client (config `storage.s3`, docs/config.md). */
export interface S3Settings {
  /** Endpoint URL of an S3-compatible service; `''` = AWS S3 for `region`. */
  endpoint: string;
  region: string;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`): MinIO, s3rver, most self-hosted stores. */
  forcePathStyle: boolean;
  /** Tries per request, first included (SDK `maxAttempts`). */
  maxAttempts: number;
  /** SDK retry mode: `standard` or `adaptive` (standard plus client-side rate limiting on throttling). */
  retryMode: 'standard' | 'adaptive';
  /** TCP/TLS connect timeout in ms. */
  connectTimeoutMs: number;
  /** Time allowed until a response's headers arrive, and the longest an open socket may sit idle, in ms. */
  requestTimeoutMs: number;
}

/** One S3 client for every store of a process (they share its connection pool). Close it with `client.destroy()`. */
export function createS3Client(settings: S3Settings): S3Client {
  const config: S3ClientConfig = {
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    maxAttempts: settings.maxAttempts,
    retryMode: settings.retryMode,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: settings.connectTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      throwOnRequestTimeout: true,
      socketTimeout: settings.requestTimeoutMs,
      httpAgent: { keepAlive: true, maxSockets: 64 },
      httpsAgent: { keepAlive: true, maxSockets: 64 },
    },
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  };
  const client = new S3Client(config);
  // After the checksum middleware (same step, lower priority), before signing.
  client.middlewareStack.add((next, context) => async (args) => {
    const request = (args as { request?: { headers?: Record<string, string>; body?: unknown } }).request;
    if (context.commandName === 'DeleteObjectsCommand' && request?.headers && (typeof request.body === 'string' || request.body instanceof Uint8Array)) {
      for (const name of Object.keys(request.headers)) {
        if (/^x-amz-(sdk-)?checksum-/i.test(name)) delete request.headers[name];
      }
      request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
    }
    return next(args);
  }, { step: 'build', priority: 'low', name: 'mediagateDeleteObjectsContentMd5' });
  return client;
}

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

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** A missing key: GetObject/CopyObject answer `NoSuchKey`, HeadObject (no body) `NotFound` / 404. */
function isMissing(err: unknown): boolean {
  const e = err as SdkError;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket');
}

/** A short reason from an SDK or network error: status, error name, message (never a credential). */
export function describeS3Error(err: unknown): string {
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name ?? 'Error';
  const message = (e?.message ?? String(err)).slice(0, 300);
  const code = e?.code && e.code !== name ? ` ${e.code}` : '';
  return `${status ? `HTTP ${status} ` : ''}${name}${code}: ${message}`;
}

/**
 * What a failed HeadBucket means, for an operator: the bucket is missing, access is denied
 * (no or wrong credentials, or a policy without s3:ListBucket), the region is wrong, or the
 * endpoint is unreachable; each with what to do.
 */
export function explainBucketError(err: unknown, bucket: string, endpointName: string, timeoutMs: number): string {
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const where = `bucket ${bucket} at ${endpointName}`;
  if (e?.name === 'CredentialsProviderError') {
    return `no AWS credentials for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run with an instance role)`;
  }
  if (status === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchBucket') {
    return `${where} does not exist: create it (e.g. \`aws s3 mb s3://${bucket}\` or \`mc mb <alias>/${bucket}\`) or set storage.s3.bucket (MEDIAGATE_STORAGE_S3_BUCKET) to an existing one`;
  }
  if (status === 403 || status === 401 || e?.name === 'Forbidden' || e?.name === 'AccessDenied' || e?.name === 'InvalidAccessKeyId' || e?.name === 'SignatureDoesNotMatch') {
    return `access denied to ${where} (HTTP ${status ?? '?'} ${e?.name ?? ''}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile or role), `
      + 'and that its policy allows s3:ListBucket on the bucket and s3:GetObject, s3:PutObject, s3:DeleteObject on its objects';
  }
  if (status === 301 || status === 307 || e?.name === 'PermanentRedirect' || e?.name === 'AuthorizationHeaderMalformed') {
    return `${where} is in another region: set storage.s3.region (MEDIAGATE_STORAGE_S3_REGION) to the bucket's region`;
  }
  if (status === undefined) {
    const reason = e?.name === 'AbortError' || e?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describeS3Error(err);
    return `cannot reach the S3 endpoint ${endpointName} for bucket ${bucket} (${reason}): check storage.s3.endpoint (MEDIAGATE_STORAGE_S3_ENDPOINT), `
      + 'that the service is running, and the network between them';
  }
  return `${where} answered HeadBucket with ${describeS3Error(err)}`;
}

/** How messages name an endpoint: its URL without credentials or query, or AWS S3 with the region. */
export function endpointName(settings: Pick<S3Settings, 'endpoint' | 'region'>): string {
  return settings.endpoint ? loggableUrl(settings.endpoint).replace(/\/$/, '') : `AWS S3 (${settings.region})`;
}
