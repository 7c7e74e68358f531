/**
 * The S3 client of the object store (s3-store.ts): one AWS SDK v3 `S3Client` per process,
 * configured from `storage.s3`, and how messages name its endpoint.
 *
 * - Credentials: the SDK's default provider chain only (environment `AWS_ACCESS_KEY_ID` /
 *   `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, shared config and credentials files and
 *   `AWS_PROFILE`, web identity, ECS and EC2 instance roles:
 *   https://docs.aws.amazon.com/sdk-for-javascript/v3/developer-guide/setting-credentials-node.html).
 *   Never in mediagate's config, never logged; no SDK logger is attached.
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
import { createHash } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { loggableUrl } from '../log/loggable-url.ts';

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

/** How messages name an endpoint: its URL without credentials or query, or AWS S3 with the region. */
export function endpointName(settings: Pick<S3Settings, 'endpoint' | 'region'>): string {
  return settings.endpoint ? loggableUrl(settings.endpoint).replace(/\/$/, '') : `AWS S3 (${settings.region})`;
}
