/**
 * Filesystem object store: object `a/b/c.ts` is the file `<root>/a/b/c.ts`.
 * Writes go to a temporary file in the same directory and are renamed into place, so a
 * reader never sees a partial object and a crash leaves no half-written segment under
 * its final name. Several gateways and transcoders on one machine (or a shared mount)
 * can use the same root.
 */
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../errors/gateway-error.ts';
import type { ObjectInfo, ObjectStore } from './object-store.ts';

const KEY_PART = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/**
 * Checks a key before it becomes a path: 1-8 `/`-separated parts of `[A-Za-z0-9_.-]`,
 * none `.`/`..` or starting with a dot.
 * @throws GatewayError INVALID_NAME
 */
export function assertObjectKey(key: string): void {
  const parts = key.split('/');
  if (parts.length < 1 || parts.length > 8 || !parts.every((p) => KEY_PART.test(p) && p !== '..')) {
    throw new GatewayError('INVALID_NAME', `invalid object key ${JSON.stringify(key.slice(0, 120))}`);
  }
}

export class FsObjectStore implements ObjectStore {
  readonly #root: string;

  /** @param root absolute directory; created on first write. */
  constructor(root: string) {
    this.#root = root;
  }

  #path(key: string): string {
    assertObjectKey(key);
    return join(this.#root, key);
  }

  async #atomicWrite(key: string, write: (tmp: string) => Promise<void>): Promise<ObjectInfo> {
    const path = this.#path(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await write(tmp);
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new GatewayError('STORAGE_FAILED', `cannot write object ${key}`, { cause: err });
    }
    return { sizeBytes: (await stat(path)).size };
  }

  putFile(key: string, localPath: string): Promise<ObjectInfo> {
    return this.#atomicWrite(key, (tmp) => copyFile(localPath, tmp));
  }

  putBytes(key: string, data: Uint8Array): Promise<ObjectInfo> {
    return this.#atomicWrite(key, (tmp) => writeFile(tmp, data));
  }

  async getFile(key: string): Promise<{ path: string; release: () => Promise<void> }> {
    const path = this.#path(key);
    try {
      await stat(path);
    } catch {
      throw new GatewayError('NOT_FOUND', `object ${key} not found`);
    }
    return { path, release: async () => undefined };
  }

  async getStream(key: string): Promise<{ stream: NodeJS.ReadableStream & import('node:stream').Readable; sizeBytes: number } | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    return { stream: createReadStream(this.#path(key)), sizeBytes: info.sizeBytes };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.#path(key));
      return s.isFile() ? { sizeBytes: s.size } : undefined;
    } catch {
      return undefined;
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    if (!prefix.endsWith('/')) throw new GatewayError('INVALID_NAME', 'deletePrefix needs a prefix ending in "/"');
    assertObjectKey(prefix.slice(0, -1));
    await rm(join(this.#root, prefix), { recursive: true, force: true });
  }
}
