/** A real directory as the transcoder's object store for tests: keys are relative paths under `root`. */
import { copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GatewayError } from '../../src/errors/gateway-error.ts';
import type { SegmentStorage } from '../../src/transcode/segment-transcoder.ts';

export class DirStorage implements SegmentStorage {
  constructor(readonly root: string) {}
  path(key: string): string { return join(this.root, key); }
  async getFile(key: string): Promise<{ path: string; release: () => Promise<void> }> {
    const path = this.path(key);
    try { await stat(path); } catch { throw new GatewayError('NOT_FOUND', `no object ${key}`); }
    return { path, release: async () => {} };
  }
  async putFile(key: string, localPath: string): Promise<{ sizeBytes: number }> {
    const dest = this.path(key);
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.tmp`;
    await copyFile(localPath, tmp);
    await rename(tmp, dest);
    return { sizeBytes: (await stat(dest)).size };
  }
}
