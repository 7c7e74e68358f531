/** examples/process-and-publish.ts runs as documented (docs/frames.md "Example: process and publish") on the real clip, MP4 mode. */
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
const CLIP = join(repo, 'test/fixtures/big_buck_bunny_360p24.mp4');

test('examples/process-and-publish.ts saves the first 4 s of the clip as a gray negative MP4 with its audio', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'frames-publish-example-'));
  try {
    const out = join(tmp, 'processed.mp4');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/process-and-publish.ts', out, CLIP, '4'], { cwd: repo, timeout: 60_000 });
    assert.match(stdout, /saved .*processed\.mp4: 96 video frames, 192000 audio samples per channel/);
    const { stdout: probe } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames,width,height', '-of', 'csv=p=0', out]);
    const lines = probe.trim().split('\n').sort();
    assert.equal(lines[1], 'video,640,360,96');
    // 4 s of AAC: 4 × 48000 / 1024 = 187.5 frames, plus the encoder's priming frame(s).
    const aacFrames = Number(/^audio,(\d+)$/.exec(lines[0]!)?.[1]);
    assert.ok(aacFrames >= 187 && aacFrames <= 191, probe);
    // Gray: no saturation in any decoded frame.
    const { stdout: stats } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', out, '-vf', 'signalstats,metadata=print:file=-', '-f', 'null', '-'], { maxBuffer: 16 * 1024 * 1024 });
    const satMax = Math.max(...[...stats.matchAll(/SATMAX=([\d.]+)/g)].map((m) => Number(m[1])));
    assert.ok(satMax < 8, `max saturation ${satMax}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
