/**
 * What the S3 client puts on the wire for third-party stores, seen by a plain HTTP server
 * standing in for one: no CRC32 checksum headers (checksums only when required), and
 * DeleteObjects with Content-MD5 (which MinIO and Ceph versions require) instead of the SDK's CRC32;
 * and how the store rides out a 5xx answer or a store that does not answer (the SDK's retries
 * and request timeout).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../../src/storage/s3-client.ts';
import { explainBucketError } from '../../../src/storage/s3-errors.ts';
import { S3ObjectStore } from '../../../src/storage/s3-store.ts';

interface Seen { method: string; url: string; headers: IncomingHttpHeaders; body: string }
const seen: Seen[] = [];
let server: Server;
let endpoint: string;

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.setHeader('Content-Type', 'application/xml');
      res.end(req.url!.includes('delete') ? '<?xml version="1.0" encoding="UTF-8"?><DeleteResult></DeleteResult>' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  process.env['AWS_ACCESS_KEY_ID'] = 'AKIDTESTONLY';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'secret-test-only';
});

after(() => new Promise<void>((r) => server.close(() => r())));

const settings = () => ({ endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, retryMode: 'standard' as const, connectTimeoutMs: 1000, requestTimeoutMs: 5000 });

test('DeleteObjects carries Content-MD5 of its body and no SDK checksum headers', async () => {
  const client = createS3Client(settings());
  try {
    await client.send(new DeleteObjectsCommand({ Bucket: 'b', Delete: { Objects: [{ Key: 'a/0.ts' }, { Key: 'a/1.ts' }], Quiet: true } }));
  } finally {
    client.destroy();
  }
  const req = seen.find((s) => s.url.includes('delete'))!;
  assert.equal(req.method, 'POST');
  assert.equal(req.headers['content-md5'], createHash('md5').update(req.body).digest('base64'));
  assert.deepEqual(Object.keys(req.headers).filter((h) => h.startsWith('x-amz-checksum-') || h.startsWith('x-amz-sdk-checksum-')), []);
});

test('PutObject sends no checksum headers (checksums only when an operation requires one)', async () => {
  const client = createS3Client(settings());
  try {
    await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'a/0.ts', Body: Buffer.from('segment') }));
  } finally {
    client.destroy();
  }
  const req = seen.find((s) => s.method === 'PUT')!;
  assert.equal(req.body, 'segment');
  assert.deepEqual(Object.keys(req.headers).filter((h) => h.includes('checksum')), []);
  assert.ok(!JSON.stringify(req.headers).includes('secret-test-only'), 'the secret key is never sent');
});

test('a failed bucket check says which problem it is and what to do', () => {
  const status = (httpStatusCode: number, name: string) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });
  assert.match(explainBucketError(status(404, 'NotFound'), 'media', 'http://s3.local', 1000), /bucket media at http:\/\/s3\.local does not exist: create it/);
  assert.match(explainBucketError(status(403, 'Forbidden'), 'media', 'http://s3.local', 1000), /access denied to bucket media .*AWS_ACCESS_KEY_ID.*s3:ListBucket/);
  assert.match(explainBucketError(status(301, 'PermanentRedirect'), 'media', 'AWS S3 (us-east-1)', 1000), /another region: set storage\.s3\.region/);
  assert.match(explainBucketError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'media', 'http://s3.local', 1000),
    /cannot reach the S3 endpoint http:\/\/s3\.local for bucket media .*ECONNREFUSED/);
  assert.match(explainBucketError(Object.assign(new Error('aborted'), { name: 'AbortError' }), 'media', 'http://s3.local', 1500), /no answer within 1500 ms/);
  assert.match(explainBucketError(Object.assign(new Error('no creds'), { name: 'CredentialsProviderError' }), 'media', 'http://s3.local', 1000), /no AWS credentials/);
});

/** A one-off stand-in S3 server answering each request with `answer(n)` (n = 1 for the first). */
async function withServer(answer: (n: number, res: import('node:http').ServerResponse) => void, fn: (url: string, count: () => number) => Promise<void>): Promise<void> {
  let n = 0;
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(++n, res));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(srv.address() as { port: number }).port}`, () => n);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test('a 503 answer is retried by the SDK with backoff, and the write succeeds', async () => {
  await withServer((n, res) => {
    if (n === 1) {
      res.writeHead(503, { 'Content-Type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>');
    } else {
      res.writeHead(200, { ETag: '"x"' }).end();
    }
  }, async (url, count) => {
    const client = createS3Client({ ...settings(), endpoint: url, maxAttempts: 3 });
    try {
      const store = new S3ObjectStore({ client, bucket: 'b', prefix: '', scratchDir: '/nonexistent', endpointName: url });
      assert.deepEqual(await store.putBytes('m/s/source/0.ts', Buffer.from('segment')), { sizeBytes: 7 });
      assert.equal(count(), 2, 'one failed attempt, one retry');
    } finally {
      client.destroy();
    }
  });
});

// Without the request timeout this would wait forever: the test's own timeout fails it.
test('a store that does not answer times out per attempt, is retried, then fails naming the bucket and endpoint', { timeout: 30_000 }, async () => {
  await withServer(() => { /* never answers */ }, async (url, count) => {
    const client = createS3Client({ ...settings(), endpoint: url, maxAttempts: 2, requestTimeoutMs: 500 });
    try {
      const store = new S3ObjectStore({ client, bucket: 'b', prefix: '', scratchDir: '/nonexistent', endpointName: url });
      await assert.rejects(store.putBytes('m/s/source/0.ts', Buffer.from('segment')), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'STORAGE_FAILED');
        assert.match(err.message, new RegExp(`cannot write object m/s/source/0\\.ts \\(bucket b at ${url.replace(/[.]/g, '\\.')}\\): .*TimeoutError`));
        return true;
      });
      assert.equal(count(), 2, 'both attempts reached the server');
    } finally {
      client.destroy();
    }
  });
});
