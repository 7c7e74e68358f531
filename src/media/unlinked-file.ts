/**
 * Secrets for an ffmpeg child without putting them on its command line (`ps` shows a
 * process's arguments to every local user): the options go into a preset file that the child
 * inherits as an extra descriptor and reads with `-fpre /dev/fd/<n>`. ffmpeg 5.1 has no other
 * way to take an output option from outside its arguments (`-/option <file>` arrived in
 * ffmpeg 7.0), and a pipe would not do: Node's extra stdio pipes are sockets, which
 * `/dev/fd/<n>` cannot open, and ffmpeg opens the preset by path.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A descriptor of a file holding `text` that no longer has a name: written in a fresh private
 * directory (0700; the file 0600, created exclusively), which is removed before this returns,
 * so the file exists by name for microseconds and its bytes go when the last descriptor
 * closes. The caller closes the descriptor (after spawning the child that inherits it).
 */
export function unlinkedFileWith(text: string): number {
  const dir = mkdtempSync(join(tmpdir(), 'mediagate-options-'));
  try {
    const fd = openSync(join(dir, 'options'), 'wx+', 0o600);
    try {
      writeSync(fd, text);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return fd;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
