/**
 * Test media derived at test time from the real clip committed in test/fixtures (see its README.md
 * for the CC-BY attribution); derived files are cached in the temp dir, never committed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

/** The real clip: 60.2 s Big Buck Bunny, H.264 640x360 24 fps + AAC, keyframes far apart. */
export const CLIP = resolve(here, '../fixtures/big_buck_bunny_360p24.mp4');

const cacheDir = join(tmpdir(), 'mediagate-test-media');

/**
 * The first `seconds` of the clip re-encoded with a 2 s GOP (what a publisher following
 * the usual advice sends), audio copied. Cached per machine in the temp dir.
 * @throws when the clip or ffmpeg is missing.
 */
export async function clipWith2sGop(seconds: number): Promise<string> {
  if (!existsSync(CLIP)) throw new Error(`test clip missing: ${CLIP} (expected in test/fixtures)`);
  mkdirSync(cacheDir, { recursive: true });
  const out = join(cacheDir, `bbb-gop2s-${seconds}s.mp4`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp.mp4`;
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', CLIP, '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '800k', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
      '-c:a', 'copy', tmp]);
    await run('mv', [tmp, out]);
  }
  return out;
}
