/** examples/read-frames.ts runs as documented (docs/frames.md) on the real clip. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

test('examples/read-frames.ts reads every frame of the clip and saves 5 s of WAV', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'frames-example-'));
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/read-frames.ts'], { cwd: repo, env: { ...process.env, TMPDIR: tmp }, timeout: 60_000 });
    assert.match(stdout, /video #0: 640x360 yuv420p pts 0 \(0\.000 s\), 345600 bytes/);
    // The example keeps the default drop-oldest queue: every frame is either read or counted as dropped.
    const m = /video: (\d+) frames, (\d+) dropped/.exec(stdout);
    assert.ok(m, stdout);
    assert.equal(Number(m[1]) + Number(m[2]), 1440);
    assert.match(stdout, /audio: saved 5 s \(240000 samples at 48000 Hz × 2\)/);
    const { stdout: probe } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', join(tmp, 'read-frames.wav')]);
    assert.equal(Number(probe).toFixed(2), '5.00');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
