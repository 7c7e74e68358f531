/**
 * Filesystem object store: object `a/b/c.ts` is the file `<root>/a/b/c.ts`.
 * Writes go to a temporary file in the same directory and are renamed into place, so a
 * reader never sees a partial object and a crash leaves no half-written segment under
 * its final name. Several gateways and transcoders on one machine (or a shared mount)
 * can use the same root.
 *
 * Listing walks the directory below the prefix and sorts it on every page (cost grows with
 * the objects under the prefix, not with the page); temporary files and names starting with a
 * dot (another store's subtree, e.g. `.results`) are not objects.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, copyFile, mkdir, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../errors/gateway-error.ts';
import {
  assertObjectKey, assertObjectPrefix, isObjectKey, listLimit,
  type LocalObject, type ObjectEntry, type ObjectInfo, type ObjectPage, type ObjectStore, type StoreHealth,
} from './object-store.ts';

export { assertObjectKey } from './object-store.ts';

/** Temporary name of a write in progress: `<final name>.<12 hex>.tmp`. */
const TEMP_NAME = /\.[0-9a-f]{12}\.tmp$/;

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

  putStream(key: string, stream: Readable): Promise<ObjectInfo> {
    return this.#atomicWrite(key, (tmp) => pipeline(stream, createWriteStream(tmp)));
  }

  async getFile(key: string): Promise<LocalObject> {
    const path = this.#path(key);
    if (!(await this.stat(key))) throw new GatewayError('NOT_FOUND', `object ${key} not found`);
    return { path, release: async () => undefined };
  }

  async getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined> {
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

  async list(prefix: string, options: { cursor?: string; limit?: number } = {}): Promise<ObjectPage> {
    assertObjectPrefix(prefix, true);
    const limit = listLimit(options.limit);
    const all = (await this.#walk(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const after = options.cursor;
    const start = after === undefined ? 0 : all.findIndex((o) => o.key > after);
    const objects = start < 0 ? [] : all.slice(start, start + limit);
    const more = start >= 0 && start + limit < all.length;
    return more ? { objects, cursor: objects[objects.length - 1]!.key } : { objects };
  }

  /** Every object below `prefix` (unsorted). */
  async #walk(prefix: string): Promise<ObjectEntry[]> {
    const out: ObjectEntry[] = [];
    const visit = async (relDir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.#root, relDir), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw new GatewayError('STORAGE_FAILED', `cannot list objects under ${prefix || '(root)'}`, { cause: err });
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.') || TEMP_NAME.test(entry.name)) continue;
        const key = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
        if (entry.isDirectory()) {
          await visit(key);
        } else if (entry.isFile() && isObjectKey(key)) {
          try {
            const s = await stat(join(this.#root, key));
            out.push({ key, sizeBytes: s.size, lastModifiedMs: Math.floor(s.mtimeMs) });
          } catch { /* deleted meanwhile */ }
        }
      }
    };
    await visit(prefix.replace(/\/$/, ''));
    return out;
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    const from = this.#path(fromKey);
    if (!(await this.stat(fromKey))) throw new GatewayError('NOT_FOUND', `object ${fromKey} not found`);
    return this.#atomicWrite(toKey, (tmp) => copyFile(from, tmp));
  }

  async deleteKeys(keys: readonly string[]): Promise<void> {
    const paths = keys.map((k) => this.#path(k));
    for (const path of paths) {
      try {
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new GatewayError('STORAGE_FAILED', 'cannot delete objects', { cause: err });
      }
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    assertObjectPrefix(prefix, false);
    await rm(join(this.#root, prefix), { recursive: true, force: true });
  }

  async check(): Promise<StoreHealth> {
    try {
      await mkdir(this.#root, { recursive: true });
      await access(this.#root, constants.W_OK);
      return { ok: true };
    } catch (err) {
      return { ok: false, detail: `storage directory ${this.#root} is not writable: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    // Nothing held open.
  }
}
