import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { randomBytes } from 'node:crypto';
import { FsObjectStore, assertObjectKey } from '../../../src/storage/fs-store.ts';

test('objects round-trip through put, stat, getFile and getStream', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-'));
  try {
    const store = new FsObjectStore(root);
    const local = join(root, 'in.bin');
    writeFileSync(local, Buffer.alloc(1000, 7));
    assert.deepEqual(await store.putFile('m1/source/0.ts', local), { sizeBytes: 1000 });
    await store.putBytes('m1/source/1.ts', Buffer.from('abc'));
    assert.deepEqual(await store.stat('m1/source/1.ts'), { sizeBytes: 3 });
    const file = await store.getFile('m1/source/0.ts');
    assert.equal(readFileSync(file.path).length, 1000);
    const s = await store.getStream('m1/source/1.ts');
    const chunks: Buffer[] = [];
    for await (const c of s!.stream) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'abc');
    assert.equal(await store.getStream('m1/source/9.ts'), undefined);
    assert.deepEqual(readdirSync(join(root, 'm1/source')).sort(), ['0.ts', '1.ts'], 'no temp files remain');
    await store.deletePrefix('m1/');
    assert.equal(await store.stat('m1/source/0.ts'), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('keys that could escape the root are refused', () => {
  for (const key of ['../x', 'a/../../b', '/abs', 'a//b', '.hidden', 'a/./b', '']) {
    assert.throws(() => assertObjectKey(key), /invalid object key/, key);
  }
  assert.doesNotThrow(() => assertObjectKey('m/P720p30fps16x9/12.ts'));
});

test('a flat store writes each object as one file under its root, with no directory per key prefix', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-flat-'));
  try {
    const store = new FsObjectStore(join(root, 'results'), { layout: 'flat' });
    assert.deepEqual(await store.putBytes('ai-0001/0.png', Buffer.from('png')), { sizeBytes: 3 });
    await store.putBytes('ai-0001/1.png', Buffer.from('png1'));
    await store.putBytes('ai-0002/0.png', Buffer.from('two'));
    assert.deepEqual(readdirSync(join(root, 'results')).sort(), ['ai-0001+0.png', 'ai-0001+1.png', 'ai-0002+0.png'], 'one file each, no directories, no temp files');
    assert.deepEqual(await store.stat('ai-0001/1.png'), { sizeBytes: 4 });
    const s = await store.getStream('ai-0002/0.png');
    const chunks: Buffer[] = [];
    for await (const c of s!.stream) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'two');
    assert.deepEqual((await store.list('')).objects.map((o) => o.key), ['ai-0001/0.png', 'ai-0001/1.png', 'ai-0002/0.png']);
    assert.deepEqual((await store.list('ai-0001/')).objects.map((o) => o.key), ['ai-0001/0.png', 'ai-0001/1.png']);
    await store.deleteKeys(['ai-0001/0.png']);
    assert.equal(await store.stat('ai-0001/0.png'), undefined);
    await store.deletePrefix('ai-0001/');
    assert.deepEqual(readdirSync(join(root, 'results')), ['ai-0002+0.png']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a listing page by page stats only the files of each page: every object once, with its size and modification time', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-list-'));
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realStat = fsp.stat;
  let stats = 0;
  try {
    for (const layout of ['flat', 'nested'] as const) {
      const store = new FsObjectStore(join(root, layout), { layout });
      for (let i = 0; i < 7; i++) await store.putBytes(`ai-000${i}/0.png`, Buffer.alloc(i + 1));
      fsp.stat = ((...args: Parameters<typeof realStat>) => { stats += 1; return realStat(...args); }) as typeof realStat;
      syncBuiltinESMExports();
      stats = 0;
      const seen: { key: string; sizeBytes: number; lastModifiedMs: number }[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list('', { limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        seen.push(...page.objects);
        cursor = page.cursor;
      } while (cursor !== undefined);
      fsp.stat = realStat;
      syncBuiltinESMExports();
      assert.deepEqual(seen.map((o) => [o.key, o.sizeBytes]), Array.from({ length: 7 }, (_, i) => [`ai-000${i}/0.png`, i + 1]), layout);
      assert.ok(seen.every((o) => Math.abs(o.lastModifiedMs - Date.now()) < 60_000), `${layout}: modification times`);
      assert.equal(stats, 7, `${layout}: one stat per object over 3 pages`);
    }
  } finally {
    fsp.stat = realStat;
    syncBuiltinESMExports();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a flat store still serves, lists and deletes the objects a nested store wrote under the same root', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-flat-'));
  try {
    await new FsObjectStore(root).putBytes('ai-0003/0.png', Buffer.from('old'));
    const flat = new FsObjectStore(root, { layout: 'flat' });
    await flat.putBytes('ai-0004/0.png', Buffer.from('new!'));
    assert.deepEqual(await flat.stat('ai-0003/0.png'), { sizeBytes: 3 });
    assert.equal(readFileSync((await flat.getFile('ai-0003/0.png')).path, 'utf8'), 'old');
    assert.deepEqual((await flat.list('')).objects.map((o) => o.key), ['ai-0003/0.png', 'ai-0004/0.png']);
    await flat.deleteKeys(['ai-0003/0.png', 'ai-0004/0.png']);
    assert.deepEqual(readdirSync(root), [], 'the nested object and its emptied directory are gone');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a write creates the directory it finds missing, also after the directory was removed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-'));
  try {
    const store = new FsObjectStore(join(root, 'objects'));
    await store.putBytes('m2/source/0.ts', Buffer.from('a'));
    await store.deletePrefix('m2/');
    assert.deepEqual(await store.putBytes('m2/source/1.ts', Buffer.from('bc')), { sizeBytes: 2 });
    assert.deepEqual(readdirSync(join(root, 'objects', 'm2', 'source')), ['1.ts']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('putFile with sourceFinal links the file into place (no copy); without it the object is a copy', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-link-'));
  try {
    const store = new FsObjectStore(root);
    const local = join(root, 'work.ts');
    writeFileSync(local, Buffer.alloc(1000, 3));
    assert.deepEqual(await store.putFile('m1/source/0.ts', local, { sourceFinal: true }), { sizeBytes: 1000 });
    const stored = join(root, 'm1/source/0.ts');
    assert.equal(statSync(stored).ino, statSync(local).ino, 'the object is the same file as the local one');
    assert.equal(statSync(local).nlink, 2);
    unlinkSync(local);
    assert.ok(readFileSync(stored).equals(Buffer.alloc(1000, 3)), 'the object outlives the local name');

    writeFileSync(local, Buffer.alloc(500, 4));
    await store.putFile('m1/source/1.ts', local);
    assert.notEqual(statSync(join(root, 'm1/source/1.ts')).ino, statSync(local).ino, 'a plain putFile copies');
    assert.deepEqual(readdirSync(join(root, 'm1/source')).sort(), ['0.ts', '1.ts'], 'no temp files remain');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('putFile with the caller\'s sizeBytes returns it without a stat of the stored object; without it the object is measured', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-size-'));
  // Counts node:fs/promises stat calls (the store imports it by name: the ESM binding is
  // re-synced from the builtin's object).
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realStat = fsp.stat;
  let stats = 0;
  fsp.stat = ((...args: Parameters<typeof realStat>) => { stats += 1; return realStat(...args); }) as typeof realStat;
  syncBuiltinESMExports();
  try {
    const store = new FsObjectStore(root);
    const local = join(root, 'work.ts');
    writeFileSync(local, Buffer.alloc(1316, 1));
    assert.deepEqual(await store.putFile('m1/source/0.ts', local, { sourceFinal: true, sizeBytes: 1316 }), { sizeBytes: 1316 });
    assert.equal(stats, 0, 'no stat when the size is given');
    assert.ok(readFileSync(join(root, 'm1/source/0.ts')).equals(Buffer.alloc(1316, 1)));
    unlinkSync(local);
    writeFileSync(local, Buffer.alloc(188, 2));
    assert.deepEqual(await store.putFile('m1/source/1.ts', local, { sourceFinal: true }), { sizeBytes: 188 });
    assert.equal(stats, 1, 'the stored object is measured when no size is given');
  } finally {
    fsp.stat = realStat;
    syncBuiltinESMExports();
    rmSync(root, { recursive: true, force: true });
  }
});

test('putFile with sourceFinal links a new object straight under its name (no temporary name, no rename); an existing one is replaced', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-direct-'));
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realLink = fsp.link;
  const linkedTo: string[] = [];
  fsp.link = ((from: Parameters<typeof realLink>[0], to: Parameters<typeof realLink>[1]) => { linkedTo.push(String(to)); return realLink(from, to); }) as typeof realLink;
  syncBuiltinESMExports();
  try {
    const store = new FsObjectStore(root);
    const local = join(root, 'work.ts');
    writeFileSync(local, Buffer.alloc(376, 1));
    await store.putFile('m1/source/0.ts', local, { sourceFinal: true });
    unlinkSync(local);
    assert.deepEqual(linkedTo.filter((p) => p.includes('m1')).map((p) => p.slice(root.length)), ['/m1/source/0.ts', '/m1/source/0.ts'],
      'the first link finds no directory, the second (after mkdir) makes the object');
    writeFileSync(local, Buffer.alloc(188, 2));
    await store.putFile('m1/source/0.ts', local, { sourceFinal: true });
    assert.ok(readFileSync(join(root, 'm1/source/0.ts')).equals(Buffer.alloc(188, 2)), 'an existing object is replaced');
    assert.equal(statSync(join(root, 'm1/source/0.ts')).ino, statSync(local).ino);
    assert.deepEqual(readdirSync(join(root, 'm1/source')), ['0.ts'], 'no temp files remain');
  } finally {
    fsp.link = realLink;
    syncBuiltinESMExports();
    rmSync(root, { recursive: true, force: true });
  }
});

test('putFile with sourceFinal copies a file on another filesystem (link fails with EXDEV)', async () => {
  // /dev/shm is a tmpfs on Linux, the temp dir is not: link(2) across them fails with EXDEV.
  const root = mkdtempSync(join(tmpdir(), 'mg-store-xdev-'));
  const other = mkdtempSync('/dev/shm/mg-store-xdev-');
  try {
    assert.notEqual(statSync(other).dev, statSync(root).dev, 'the test needs /dev/shm on another filesystem than the temp dir');
    const store = new FsObjectStore(root);
    for (const n of [0, 1]) {
      const local = join(other, `${n}.ts`);
      writeFileSync(local, Buffer.alloc(700 + n, 5));
      assert.deepEqual(await store.putFile(`m1/source/${n}.ts`, local, { sourceFinal: true }), { sizeBytes: 700 + n });
      assert.ok(readFileSync(join(root, `m1/source/${n}.ts`)).equals(Buffer.alloc(700 + n, 5)));
    }
    assert.deepEqual(readdirSync(join(root, 'm1/source')).sort(), ['0.ts', '1.ts'], 'no temp files remain');
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

test('putBytes with newKey creates a new object and refuses a key that exists, keeping that object; without it the object is replaced', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mg-store-newkey-'));
  try {
    const store = new FsObjectStore(join(root, 'results'), { layout: 'flat' });
    assert.deepEqual(await store.putBytes('ai-0001/0.png', Buffer.from('png'), { newKey: true }), { sizeBytes: 3 });
    assert.equal(readFileSync(join(root, 'results', 'ai-0001+0.png'), 'utf8'), 'png');
    await assert.rejects(store.putBytes('ai-0001/0.png', Buffer.from('other'), { newKey: true }), (e: Error & { code?: string }) => e.code === 'STORAGE_FAILED');
    assert.equal(readFileSync(join(root, 'results', 'ai-0001+0.png'), 'utf8'), 'png', 'the existing object is kept');
    await store.putBytes('ai-0001/0.png', Buffer.from('replaced'));
    assert.equal(readFileSync(join(root, 'results', 'ai-0001+0.png'), 'utf8'), 'replaced');
    // A nested store creates the directory it finds missing.
    const nested = new FsObjectStore(join(root, 'nested'));
    await nested.putBytes('ai-0002/0.png', Buffer.from('two'), { newKey: true });
    assert.equal(readFileSync(join(root, 'nested', 'ai-0002', '0.png'), 'utf8'), 'two');
    assert.deepEqual(readdirSync(join(root, 'results')), ['ai-0001+0.png'], 'no temporary file left');
    // Up to 1 MiB a new object is written on the calling thread, above it through the pool: both whole.
    for (const size of [1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024]) {
      const bytes = randomBytes(size);
      assert.deepEqual(await store.putBytes(`ai-big-${size}/0.png`, bytes, { newKey: true }), { sizeBytes: size });
      assert.ok(readFileSync(join(root, 'results', `ai-big-${size}+0.png`)).equals(bytes), `${size} bytes stored whole`);
      await assert.rejects(store.putBytes(`ai-big-${size}/0.png`, Buffer.from('x'), { newKey: true }), (e: Error & { code?: string }) => e.code === 'STORAGE_FAILED');
      assert.equal(readFileSync(join(root, 'results', `ai-big-${size}+0.png`)).length, size, 'a refused new key leaves the object as it was');
    }
    // A new object that cannot be created is refused as STORAGE_FAILED: a store whose root is a file.
    writeFileSync(join(root, 'not-a-dir'), 'x');
    const broken = new FsObjectStore(join(root, 'not-a-dir'), { layout: 'flat' });
    await assert.rejects(broken.putBytes('ai-0003/0.png', Buffer.from('three'), { newKey: true }), (e: Error & { code?: string }) => e.code === 'STORAGE_FAILED');
    assert.equal(readFileSync(join(root, 'not-a-dir'), 'utf8'), 'x');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
