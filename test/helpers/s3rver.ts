/**
 * An S3-compatible server for tests: s3rver (https://github.com/jamhall/s3rver) in a child
 * process on a free 127.0.0.1 port with its own temporary directory and one bucket, or any
 * other S3 endpoint named by the environment (see {@link s3TargetFromEnv}).
 *
 * s3rver runs with `--openssl-legacy-provider`: it encrypts ListObjectsV2 continuation tokens
 * with DES, which Node 17+'s OpenSSL 3 only offers from the legacy provider (without it, a
 * listing past one page answers 500). Its credentials are the fixed `S3RVER` / `S3RVER`.
 * `stop()` and `start()` again keep the port and directory (an outage test); `destroy()` removes
 * the directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openObjectStores, type ObjectStores } from '../../src/storage/open-store.ts';
import { freePort } from './ports.ts';
import { stopChild, waitForPort } from './redis-server.ts';

/** Where tests put objects: an endpoint, a bucket and the credentials for it. */
export interface S3Target {
  /** e.g. `http://127.0.0.1:40123`. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
  /** Key prefix unique to this test run (`mg-test-<random>/`), so runs on a shared bucket never meet. */
  readonly prefix: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Path-style URL of the bucket (objects at `<bucketUrl>/<key>`), e.g. `http://127.0.0.1:40123/media`. */
  readonly bucketUrl: string;
}

export interface TestS3rver extends S3Target {
  readonly port: number;
  /** s3rver's data directory. */
  readonly dir: string;
  pid(): number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL); its objects stay in `dir`. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same directory. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

const require = createRequire(import.meta.url);

/** Path of s3rver's command-line entry point (a devDependency). */
function s3rverBin(): string {
  return join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
}

/**
 * Starts s3rver with bucket `bucket` (default `mediagate-test`). A failure to start fails the test.
 * @param options.host bind address (default 127.0.0.1), `port` (default a free one on 127.0.0.1),
 *   `launcher` a command prefix that runs it elsewhere, e.g. in a network namespace (`netns.ts`)
 */
export async function startS3rver(options: { bucket?: string; host?: string; port?: number; launcher?: readonly string[] } = {}): Promise<TestS3rver> {
  const bucket = options.bucket ?? 'mediagate-test';
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mg-s3rver-'));
  const command = [...(options.launcher ?? []), process.execPath, '--openssl-legacy-provider', s3rverBin(), '-d', dir, '-a', host, '-p', String(port), '--configure-bucket', bucket, '-s'];
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const c = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const failed = new Promise<never>((_, reject) => {
      c.once('error', (err) => reject(new Error(`cannot start s3rver (${err.message})`)));
      c.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr}`)));
    });
    failed.catch(() => undefined);
    await Promise.race([waitForPort(port, 15_000, host), failed]);
    child = c;
  };
  await launch();
  const endpoint = `http://${host}:${port}`;
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running) await stopChild(running);
  };
  return {
    endpoint, bucket, region: 'us-east-1', forcePathStyle: true, prefix: uniquePrefix(), ...S3RVER_CREDENTIALS,
    bucketUrl: `${endpoint}/${bucket}`, port, dir,
    pid: () => child?.pid,
    stop,
    start: async () => {
      if (child) throw new Error('s3rver is already running');
      await launch();
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function uniquePrefix(): string {
  return `mg-test-${randomBytes(4).toString('hex')}/`;
}

/**
 * Another S3 endpoint for the storage tests instead of s3rver, from the environment:
 * `MEDIAGATE_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:9000` for MinIO; `aws` = AWS S3 itself),
 * `MEDIAGATE_TEST_S3_BUCKET` (must exist), `MEDIAGATE_TEST_S3_REGION` (default us-east-1),
 * `MEDIAGATE_TEST_S3_PATH_STYLE` (default true; `false` for virtual-hosted buckets),
 * `MEDIAGATE_TEST_S3_ACCESS_KEY_ID` and `MEDIAGATE_TEST_S3_SECRET_ACCESS_KEY`. Each test run
 * writes under its own `mg-test-<random>/` prefix and deletes it afterwards.
 * @returns undefined when `MEDIAGATE_TEST_S3_ENDPOINT` is not set
 * @throws Error naming a missing variable
 */
export function s3TargetFromEnv(env: NodeJS.ProcessEnv = process.env): S3Target | undefined {
  const raw = env['MEDIAGATE_TEST_S3_ENDPOINT'];
  if (!raw) return undefined;
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`MEDIAGATE_TEST_S3_ENDPOINT is set: set ${name} too`);
    return v;
  };
  const bucket = need('MEDIAGATE_TEST_S3_BUCKET');
  const region = env['MEDIAGATE_TEST_S3_REGION'] || 'us-east-1';
  const forcePathStyle = (env['MEDIAGATE_TEST_S3_PATH_STYLE'] ?? 'true') !== 'false';
  const endpoint = raw === 'aws' ? '' : raw.replace(/\/+$/, '');
  const host = endpoint || `https://s3.${region}.amazonaws.com`;
  return {
    endpoint, bucket, region, forcePathStyle, prefix: uniquePrefix(),
    accessKeyId: need('MEDIAGATE_TEST_S3_ACCESS_KEY_ID'), secretAccessKey: need('MEDIAGATE_TEST_S3_SECRET_ACCESS_KEY'),
    bucketUrl: forcePathStyle ? `${host}/${bucket}` : host.replace('://', `://${bucket}.`),
  };
}

/** The S3 target for a test file: the one the environment names, or a fresh s3rver. `close()` stops what was started. */
export async function testS3Target(): Promise<{ target: S3Target; server?: TestS3rver; close(): Promise<void> }> {
  const external = s3TargetFromEnv();
  if (external) return { target: external, close: async () => undefined };
  const server = await startS3rver();
  return { target: server, server, close: () => server.destroy() };
}

/**
 * Environment for a mediagate process storing in `target` (gateway-process.ts `testDeployment`
 * extra env): storage.kind s3 and the AWS credential variables the SDK's default chain reads.
 */
export function s3StorageEnv(target: S3Target): Record<string, string> {
  return {
    MEDIAGATE_STORAGE_KIND: 's3',
    ...(target.endpoint ? { MEDIAGATE_STORAGE_S3_ENDPOINT: target.endpoint } : {}),
    MEDIAGATE_STORAGE_S3_BUCKET: target.bucket,
    MEDIAGATE_STORAGE_S3_REGION: target.region,
    MEDIAGATE_STORAGE_S3_FORCE_PATH_STYLE: String(target.forcePathStyle),
    MEDIAGATE_STORAGE_S3_PREFIX: target.prefix,
    AWS_ACCESS_KEY_ID: target.accessKeyId,
    AWS_SECRET_ACCESS_KEY: target.secretAccessKey,
  };
}

/**
 * The stores a mediagate process configured with {@link s3StorageEnv} would open, for a test to
 * look into the bucket. Sets the AWS credential variables of this test process, since the S3
 * store reads credentials only through the SDK's default chain.
 */
export function openTestStores(target: S3Target, scratchDir: string): ObjectStores {
  process.env['AWS_ACCESS_KEY_ID'] = target.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = target.secretAccessKey;
  return openObjectStores({
    kind: 's3', dir: '/nonexistent',
    s3: {
      endpoint: target.endpoint, bucket: target.bucket, region: target.region, forcePathStyle: target.forcePathStyle, prefix: target.prefix,
      maxAttempts: 3, retryMode: 'standard', connectTimeoutMs: 2000, requestTimeoutMs: 20_000,
    },
  }, scratchDir);
}

/** The object store an end-to-end suite runs on. */
export type E2eStorage = 'fs' | 's3';

export interface E2eStore {
  /** Extra environment for `testDeployment` (none for fs: the deployment's own directory). */
  readonly env: Record<string, string>;
  /** With s3: the deployment's stores, to look into the bucket. */
  readonly stores?: ObjectStores;
  /** Stops what was started (s3rver) and closes `stores`. */
  close(): Promise<void>;
}

/**
 * The object store of an end-to-end deployment: nothing to start for `fs`; for `s3`, s3rver (or
 * the endpoint MEDIAGATE_TEST_S3_ENDPOINT names, {@link s3TargetFromEnv}) and a client on it.
 * @param scratchDir where the test's own store downloads go
 */
export async function e2eStore(kind: E2eStorage, scratchDir: string): Promise<E2eStore> {
  if (kind === 'fs') return { env: {}, close: async () => undefined };
  const s3 = await testS3Target();
  const stores = openTestStores(s3.target, scratchDir);
  return {
    env: s3StorageEnv(s3.target), stores,
    close: async () => {
      await stores.close();
      await s3.close();
    },
  };
}
