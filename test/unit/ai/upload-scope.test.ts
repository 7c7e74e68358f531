import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UploadDir, UploadScope } from '../../../src/ai/upload-scope.ts';
import { silentLogger } from '../../../src/log/logger.ts';

function scratch(t: { after(fn: () => void): void }): string {
  const root = mkdtempSync(join(tmpdir(), 'mg-upload-scope-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

test('UploadDir: made once with mode 0700, a wider one narrowed; names are prefixed and unique; made again after forget', async (t) => {
  const root = scratch(t);
  const fresh = new UploadDir(join(root, 'a', 'uploads'), 'upload-7-');
  const first = fresh.ready();
  assert.equal(fresh.ready(), first, 'one promise: the directory is made once, not per upload');
  assert.equal(await first, join(root, 'a', 'uploads'));
  assert.equal(statSync(fresh.dir).mode & 0o777, 0o700);

  const wide = join(root, 'wide');
  mkdirSync(wide, { mode: 0o755 });
  await new UploadDir(wide, 'upload-').ready();
  assert.equal(statSync(wide).mode & 0o777, 0o700, 'a directory that was there with wider access is narrowed');

  const names = new Set(Array.from({ length: 1000 }, () => fresh.newName()));
  assert.equal(names.size, 1000);
  for (const name of names) assert.match(name, /^upload-7-[0-9a-f]{32}$/);

  rmSync(fresh.dir, { recursive: true });
  fresh.forget();
  await fresh.ready();
  assert.ok(existsSync(fresh.dir), 'made again after forget');
});

test('UploadScope: its files are removed once the parse, the response and every holder are over, not before', async (t) => {
  const root = scratch(t);
  const files = ['a', 'b'].map((n) => join(root, n));
  for (const f of files) writeFileSync(f, 'x');
  const scope = new UploadScope(silentLogger());
  for (const f of files) scope.add(f);
  scope.add(join(root, 'never-created'));
  const release = scope.hold()!;
  scope.release(); // the parse ended
  scope.release(); // the response closed
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(files.map(existsSync), [true, true], 'a holder keeps them');
  release();
  release(); // idempotent
  const deadline = Date.now() + 2000;
  while (files.some(existsSync) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(files.map(existsSync), [false, false]);
  assert.equal(scope.hold(), undefined, 'nothing to hold once removed');
});
