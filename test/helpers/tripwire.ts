/**
 * Sees whether anything opens a local file: a named pipe (FIFO) whose writer, a
 * `cat <content> > <fifo>` started here, stays blocked in open(2) until some process opens
 * the pipe for reading, then copies `contentPath` into it and exits. Independent of the
 * file system's atime settings.
 */
import { execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Tripwire {
  readonly path: string;
  /** Whether a reader has opened the pipe, after giving an opening reader `settleMs` (default 500) to drain it. */
  wasOpened(settleMs?: number): Promise<boolean>;
  /** Stops the writer if it is still blocked and removes the pipe. Idempotent. */
  close(): void;
}

/** Creates the FIFO at `path` (which must not exist) with a writer that will copy `contentPath` into it. */
export async function tripwire(path: string, contentPath: string): Promise<Tripwire> {
  await run('mkfifo', [path]);
  const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', contentPath, path], { stdio: 'ignore' });
  let exited = false;
  writer.once('exit', () => { exited = true; });
  return {
    path,
    async wasOpened(settleMs = 500) {
      await new Promise((r) => setTimeout(r, settleMs));
      return exited;
    },
    close() {
      if (!exited) writer.kill('SIGKILL');
      rmSync(path, { force: true });
    },
  };
}
