import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
