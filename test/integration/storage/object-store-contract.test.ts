/**
 * One contract for every object store (src/storage/object-store.ts), run against the
 * filesystem store and the S3 store on a real S3-compatible server: s3rver in a child process,
 * or the endpoint `MEDIAGATE_TEST_S3_ENDPOINT` names (test/helpers/s3rver.ts, docs/operations.md).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openObjectStores } from '../../../src/storage/open-store.ts';
import { FsObjectStore } from '../../../src/storage/fs-store.ts';
import { defaultConfig } from '../../../src/config/config.ts';
import { listAll, type ObjectStore } from '../../../src/storage/object-store.ts';
import { openTestStores, testS3Target } from '../../helpers/s3rver.ts';

const LARGE_BYTES = 20 * 1024 * 1024 + 12345;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

interface Fixture {
  store: ObjectStore;
  /** The AI results store opened beside `store` (storage/open-store.ts). */
  results: ObjectStore;
  /** Scratch directory of S3 downloads (nothing for fs). */
  scratchDir: string;
  /** A local directory for input files. */
  local: string;
  close(): Promise<void>;
}

const kinds: { name: string; open(): Promise<Fixture> }[] = [
  {
    name: 'fs',
    open: async () => {
      const root = mkdtempSync(join(tmpdir(), 'mg-contract-fs-'));
      const stores = openObjectStores({ kind: 'fs', dir: join(root, 'objects'), s3: defaultConfig().storage.s3 }, join(root, 'scratch'));
      return { store: stores.media, results: stores.results, scratchDir: join(root, 'scratch'), local: root, close: async () => rmSync(root, { recursive: true, force: true }) };
    },
  },
  {
    // The layout the fs results store uses (storage/open-store.ts): one file per object, no directories.
    name: 'fs, flat layout',
    open: async () => {
      const root = mkdtempSync(join(tmpdir(), 'mg-contract-fs-flat-'));
      const stores = openObjectStores({ kind: 'fs', dir: join(root, 'objects'), s3: defaultConfig().storage.s3 }, join(root, 'scratch'));
      return {
        store: new FsObjectStore(join(root, 'flat'), { layout: 'flat' }), results: stores.results, scratchDir: join(root, 'scratch'), local: root,
        close: async () => rmSync(root, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 's3',
    open: async () => {
      const s3 = await testS3Target();
      const root = mkdtempSync(join(tmpdir(), 'mg-contract-s3-'));
      const stores = openTestStores(s3.target, join(root, 'scratch'));
      await stores.verify(10_000);
      return {
        store: stores.media, results: stores.results, scratchDir: join(root, 'scratch'), local: root,
        close: async () => {
          // Everything this run wrote is under its own key prefix (matters on a shared external bucket).
          const left: string[] = [];
          for await (const o of listAll(stores.media, '')) left.push(o.key);
          await stores.media.deleteKeys(left);
          await stores.results.deletePrefix('ai-0000/');
          await stores.close();
          await s3.close();
          rmSync(root, { recursive: true, force: true });
        },
      };
    },
  },
];

for (const kind of kinds) {
  describe(`object store contract: ${kind.name}`, () => {
    let f: Fixture;
    before(async () => { f = await kind.open(); });
    after(async () => { await f?.close(); });

    test('putFile, putBytes and putStream round-trip through stat, getFile and getStream', async () => {
      const local = join(f.local, 'in.bin');
      const data = randomBytes(500 * 1024);
      writeFileSync(local, data);
      assert.deepEqual(await f.store.putFile('rt/source/0.ts', local), { sizeBytes: data.length });
      assert.deepEqual(await f.store.putBytes('rt/source/1.ts', Buffer.from('abc')), { sizeBytes: 3 });
      assert.deepEqual(await f.store.putStream('rt/source/2.ts', Readable.from([Buffer.from('de'), Buffer.from('fgh')])), { sizeBytes: 5 });
      assert.deepEqual(await f.store.stat('rt/source/0.ts'), { sizeBytes: data.length });
      assert.deepEqual(await f.store.stat('rt/source/1.ts'), { sizeBytes: 3 });
      const file = await f.store.getFile('rt/source/0.ts');
      assert.equal(sha256(readFileSync(file.path)), sha256(data));
      assert.match(file.path, /\.ts$/, 'the local copy keeps the extension (ffprobe/ffmpeg read it)');
      await file.release();
      await file.release();
      const got = await f.store.getStream('rt/source/2.ts');
      assert.equal(got!.sizeBytes, 5);
      assert.equal((await readAll(got!.stream)).toString(), 'defgh');
      assert.deepEqual(existsSync(f.scratchDir) ? readdirSync(f.scratchDir) : [], [], 'released downloads are deleted');
    });

    test('missing keys: stat and getStream give undefined, getFile and copy NOT_FOUND, deletes are no-ops', async () => {
      assert.equal(await f.store.stat('missing/source/0.ts'), undefined);
      assert.equal(await f.store.getStream('missing/source/0.ts'), undefined);
      await assert.rejects(f.store.getFile('missing/source/0.ts'), (err: Error & { code?: string }) => err.code === 'NOT_FOUND' && /missing\/source\/0\.ts/.test(err.message));
      await assert.rejects(f.store.copy('missing/source/0.ts', 'missing/x/0.ts'), (err: Error & { code?: string }) => err.code === 'NOT_FOUND');
      await f.store.deleteKeys(['missing/source/0.ts', 'missing/source/1.ts']);
      await f.store.deletePrefix('missing/');
      assert.deepEqual((await f.store.list('missing/')).objects, []);
    });

    test('invalid keys are refused before they reach the store', async () => {
      for (const key of ['../x', 'a//b', '.results/x', '/abs', '']) {
        await assert.rejects(f.store.putBytes(key, Buffer.from('x')), (err: Error & { code?: string }) => err.code === 'INVALID_NAME', key);
        assert.equal(await f.store.stat(key), undefined, key);
      }
      await assert.rejects(f.store.deletePrefix('nosuffix'), (err: Error & { code?: string }) => err.code === 'INVALID_NAME');
      await assert.rejects(f.store.deletePrefix(''), (err: Error & { code?: string }) => err.code === 'INVALID_NAME');
    });

    test('a second put replaces the object whole', async () => {
      await f.store.putBytes('ow/source/0.ts', Buffer.alloc(1000, 1));
      await f.store.putBytes('ow/source/0.ts', Buffer.from('short'));
      assert.deepEqual(await f.store.stat('ow/source/0.ts'), { sizeBytes: 5 });
      const got = await f.store.getStream('ow/source/0.ts');
      assert.equal((await readAll(got!.stream)).toString(), 'short');
      assert.deepEqual((await f.store.list('ow/')).objects.map((o) => o.key), ['ow/source/0.ts']);
    });

    test('a large object is streamed in and out intact (multipart on S3)', { timeout: 120_000 }, async () => {
      const local = join(f.local, 'large.bin');
      const data = randomBytes(LARGE_BYTES);
      writeFileSync(local, data);
      assert.deepEqual(await f.store.putFile('big/source/0.ts', local), { sizeBytes: LARGE_BYTES });
      const got = await f.store.getStream('big/source/0.ts');
      assert.equal(got!.sizeBytes, LARGE_BYTES);
      assert.equal(sha256(await readAll(got!.stream)), sha256(data));
      const file = await f.store.getFile('big/source/0.ts');
      assert.equal(sha256(readFileSync(file.path)), sha256(data));
      await file.release();
      // A stream of unknown length, in 1 MiB chunks.
      const chunks = Array.from({ length: 20 }, (_, i) => data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
      assert.deepEqual(await f.store.putStream('big/source/1.ts', Readable.from(chunks)), { sizeBytes: 20 * 1024 * 1024 });
      const streamed = await f.store.getStream('big/source/1.ts');
      assert.equal(sha256(await readAll(streamed!.stream)), sha256(data.subarray(0, 20 * 1024 * 1024)));
    });

    test('a put from a stream that fails stores nothing', async () => {
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(1024, 2));
          this.destroy(new Error('source broke'));
        },
      });
      await assert.rejects(f.store.putStream('fail/source/0.ts', failing), (err: Error & { code?: string }) => err.code === 'STORAGE_FAILED');
      assert.equal(await f.store.stat('fail/source/0.ts'), undefined);
    });

    test('copy makes an independent object under another key', async () => {
      await f.store.putBytes('cp/source/0.ts', Buffer.from('original'));
      assert.deepEqual(await f.store.copy('cp/source/0.ts', 'cp/rec/0.ts'), { sizeBytes: 8 });
      await f.store.putBytes('cp/source/0.ts', Buffer.from('new'));
      const got = await f.store.getStream('cp/rec/0.ts');
      assert.equal((await readAll(got!.stream)).toString(), 'original');
    });

    test('list pages past 1000 keys in key order, and deletePrefix and deleteKeys delete past one page', { timeout: 120_000 }, async () => {
      const keys = Array.from({ length: 1105 }, (_, i) => `pg/source/${i}.ts`);
      await mapLimit(keys, 16, (k) => f.store.putBytes(k, Buffer.from(k)));
      await f.store.putBytes('pg2/source/0.ts', Buffer.from('other'));
      await f.store.putBytes('pgx/source/0.ts', Buffer.from('other'));
      const sorted = [...keys].sort();

      const first = await f.store.list('pg/');
      assert.equal(first.objects.length, 1000);
      assert.ok(first.cursor, 'a cursor to the next page');
      const second = await f.store.list('pg/', { cursor: first.cursor! });
      assert.equal(second.cursor, undefined, 'the last page has no cursor');
      assert.deepEqual([...first.objects, ...second.objects].map((o) => o.key), sorted, 'every key once, in order, none from pg2/');
      const o = first.objects.find((x) => x.key === 'pg/source/0.ts')!;
      assert.equal(o.sizeBytes, 'pg/source/0.ts'.length);
      assert.ok(Math.abs(o.lastModifiedMs - Date.now()) < 10 * 60_000, `lastModifiedMs ${o.lastModifiedMs} is about now`);

      const small: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await f.store.list('pg/', { limit: 300, ...(cursor ? { cursor } : {}) });
        small.push(...page.objects.map((x) => x.key));
        cursor = page.cursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 4);
      assert.deepEqual(small, sorted);

      const all: string[] = [];
      for await (const x of listAll(f.store, '')) all.push(x.key);
      assert.ok(all.includes('pg2/source/0.ts') && all.includes('pg/source/1104.ts'), 'listing the whole store reaches every prefix');

      await f.store.deletePrefix('pg/');
      assert.deepEqual((await f.store.list('pg/')).objects, []);
      assert.deepEqual(await f.store.stat('pg2/source/0.ts'), { sizeBytes: 5 }, 'a sibling prefix that shares the letters is kept');
      assert.deepEqual(await f.store.stat('pgx/source/0.ts'), { sizeBytes: 5 });

      const many = Array.from({ length: 1003 }, (_, i) => `dk/source/${i}.ts`);
      await mapLimit(many, 16, (k) => f.store.putBytes(k, Buffer.from('x')));
      await f.store.deleteKeys(many.slice(0, 1002));
      assert.deepEqual((await f.store.list('dk/')).objects.map((x) => x.key), ['dk/source/1002.ts']);
    });

    test('AI results live beside the media objects, under keys the media store never lists or reaches', async () => {
      await f.results.putBytes('ai-0000/0.png', Buffer.from('png'));
      await f.store.putBytes('ai-0000/source/0.ts', Buffer.from('media'));
      assert.deepEqual(await f.results.stat('ai-0000/0.png'), { sizeBytes: 3 });
      assert.equal(await f.store.stat('ai-0000/0.png'), undefined);
      const all: string[] = [];
      for await (const o of listAll(f.store, '')) all.push(o.key);
      assert.ok(!all.some((k) => k.includes('0.png')), 'results are not media objects');
      assert.deepEqual((await f.results.list('ai-0000/')).objects.map((o) => o.key), ['ai-0000/0.png']);
      await f.store.deletePrefix('ai-0000/');
      assert.deepEqual(await f.results.stat('ai-0000/0.png'), { sizeBytes: 3 }, 'deleting media never touches results');
    });

    test('the health check reports a reachable, writable store', async () => {
      assert.deepEqual(await f.store.check(2000), { ok: true });
    });
  });
}
