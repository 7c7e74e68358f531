/** The startup sweep's ownership rules on a real temporary directory. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive, ownerTag, sweepLeftovers } from '../../../src/storage/work-dir.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const root = mkdtempSync(join(tmpdir(), 'mg-work-dir-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('an entry tagged with this process\'s own pid is a leftover (a container restarts with the same pid); other live pids keep theirs', async () => {
  const dir = join(root, 'push');
  mkdirSync(dir);
  const names = [`push-${ownerTag()}aa.ts`, 'push-4242-bb.ts', 'push-4343-cc.ts', 'other.txt'];
  for (const n of names) writeFileSync(join(dir, n), 'x');
  const removed = await sweepLeftovers({ dir, prefix: 'push-', legacy: /^push-[0-9a-f]{16}\./, logger: silentLogger(), isAlive: (pid) => pid === 4242 });
  assert.deepEqual(removed.sort(), [`push-${ownerTag()}aa.ts`, 'push-4343-cc.ts'].sort());
  assert.deepEqual(readdirSync(dir).sort(), ['other.txt', 'push-4242-bb.ts']);
});

test('entries without a pid go only when they predate the process start', async () => {
  const dir = join(root, 'segmenter');
  mkdirSync(join(dir, 'oldsession'), { recursive: true });
  mkdirSync(join(dir, 'newsession'), { recursive: true });
  utimesSync(join(dir, 'oldsession'), new Date(1000), new Date(1000));
  const removed = await sweepLeftovers({ dir, prefix: '', legacy: /^[0-9a-z]+$/, logger: silentLogger(), processStartMs: Date.now() - 60_000 });
  assert.deepEqual(removed, ['oldsession']);
  assert.deepEqual(readdirSync(dir), ['newsession']);
});

test('a missing directory sweeps nothing; liveness of real pids', async () => {
  assert.deepEqual(await sweepLeftovers({ dir: join(root, 'absent'), prefix: 'job-', legacy: /^job-/, logger: silentLogger() }), []);
  assert.equal(isProcessAlive(process.pid), true);
  assert.equal(isProcessAlive(2 ** 22 + 1), false, 'above pid_max: no such process');
});
