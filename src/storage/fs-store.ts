/**
 * Filesystem object store: object `a/b/c.ts` is the file `<root>/a/b/c.ts` (layout `nested`),
 * or, in layout `flat`, the file `<root>/a+b+c.ts` (no directory per key prefix: the AI
 * results store, where every request would otherwise make a directory of its own).
 * Writes go to a temporary file in the same directory and are renamed into place, so a
 * reader never sees a partial object and a crash leaves no half-written segment under
 * its final name; a directory is created only when a write finds it missing. Several
 * gateways and transcoders on one machine (or a shared mount) can use the same root.
 *
 * Listing walks the directory below the prefix (its entries only) and sorts it on every page
 * (cost grows with the objects under the prefix, not with the page), then stats the page's
 * files alone; temporary files and names starting with a dot (another store's subtree, e.g.
 * `.results`) are not objects.
 */
import { closeSync, createReadStream, createWriteStream, open as openCallback, rename as renameCallback, writeFile as writeFileCallback, writeSync } from 'node:fs';
import { access, constants, copyFile, link, mkdir, readdir, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../errors/gateway-error.ts';
import {
  assertObjectKey, assertObjectPrefix, isObjectKey, listLimit,
  type LocalObject, type ObjectEntry, type ObjectInfo, type ObjectPage, type ObjectStore, type PutBytesOptions, type PutFileOptions, type StoreHealth,
} from './object-store.ts';

export { assertObjectKey } from './object-store.ts';

/**
 * `writeFile` and `rename` of node:fs's callback API: writing and renaming a small object
 * (an AI result, ~8 KB) took 80-90 µs of CPU against 140 µs with node:fs/promises, whose
 * `writeFile` opens a FileHandle (an object of its own, closed through another promise) for
 * every file (measured on ext4, 32 writes in flight; bench/README.md, issue 14 AI section).
 */
const writeFile = promisify(writeFileCallback);
const rename = promisify(renameCallback);
const openFile = promisify(openCallback);

/**
 * A new object (PutBytesOptions.newKey) up to this size is created through the thread pool
 * (open(2) with O_EXCL: a directory operation, slow when the disk is busy) and then written
 * and closed on the calling thread, one write(2) and close(2) into the page cache: one trip
 * through libuv's pool instead of three (open, write, close), each a thread wake-up and a
 * callback on a machine whose cores idle between requests. 1 MiB copies in well under a
 * millisecond; larger objects are written through the pool. The rtmp-segmenter writes its
 * segment files the same way (ingest/rtmp-segmenter.ts).
 */
const WRITE_IN_PLACE_MAX_BYTES = 1024 * 1024;

/** Temporary name of a write in progress: `<final name>.<12 hex>.tmp`. */
const TEMP_NAME = /\.[0-9a-f]{12}\.tmp$/;

/**
 * In layout `flat`, what stands for `/` in a file name: a character no key part may contain
 * (object-store.ts), so names map back to keys one to one.
 */
const FLAT_SEPARATOR = '+';

export interface FsObjectStoreOptions {
  /**
   * `nested` (default): key `a/b/c` is the file `<root>/a/b/c`. `flat`: every object is a file
   * directly under the root, the `/` of its key written as `+` (`ai-1/0.png` → `<root>/ai-1+0.png`),
   * so a write never creates a directory. A flat store still reads, lists and deletes objects
   * a nested store wrote under the same root (results stored before the layout changed).
   */
  layout?: 'nested' | 'flat';
}

/**
 * Errors of link(2) that mean "this filesystem pair cannot link" rather than a failed write:
 * another filesystem (EXDEV), links not allowed or not supported (EPERM, ENOTSUP, ENOSYS), the
 * source's link count at its maximum (EMLINK). A store that sees one copies from then on.
 */
const CANNOT_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

export class FsObjectStore implements ObjectStore {
  readonly #root: string;
  readonly #flat: boolean;
  /** Cleared by the first link(2) that cannot work here (CANNOT_LINK): `sourceFinal` files are copied from then on. */
  #linking = true;

  /** @param root absolute directory; created on first write. */
  constructor(root: string, options: FsObjectStoreOptions = {}) {
    this.#root = root;
    this.#flat = options.layout === 'flat';
  }

  /** Where `key` is written (and read first). */
  #path(key: string): string {
    assertObjectKey(key);
    return this.#flat ? join(this.#root, key.replaceAll('/', FLAT_SEPARATOR)) : join(this.#root, key);
  }

  /** Where a nested store keeps `key`: read and deleted too by a flat store, when the flat file is missing. */
  #nestedPath(key: string): string | undefined {
    return this.#flat && key.includes('/') ? join(this.#root, key) : undefined;
  }

  /** The file holding `key` and its size; undefined when there is none (an invalid key included). */
  async #find(key: string): Promise<{ path: string; sizeBytes: number } | undefined> {
    if (!isObjectKey(key)) return undefined;
    for (const path of [this.#path(key), this.#nestedPath(key)]) {
      if (path === undefined) continue;
      try {
        const s = await stat(path);
        if (s.isFile()) return { path, sizeBytes: s.size };
      } catch { /* not there */ }
    }
    return undefined;
  }

  /**
   * Writes through a temporary file renamed into place. The directory is created only when
   * the write finds it missing (`mkdirFirst` for writers that cannot be run twice, a stream).
   * @throws GatewayError STORAGE_FAILED (the temporary file removed)
   */
  async #atomicWrite(key: string, write: (tmp: string) => Promise<void>, mkdirFirst = false): Promise<void> {
    const path = this.#path(key);
    const tmp = `${path}.${randomUUID().slice(-12)}.tmp`;
    try {
      if (mkdirFirst) await mkdir(dirname(path), { recursive: true });
      try {
        await write(tmp);
      } catch (err) {
        if (mkdirFirst || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await mkdir(dirname(path), { recursive: true });
        await write(tmp);
      }
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new GatewayError('STORAGE_FAILED', `cannot write object ${key}`, { cause: err });
    }
  }

  async #sizeOf(key: string): Promise<ObjectInfo> {
    return { sizeBytes: (await stat(this.#path(key))).size };
  }

  /**
   * With `sourceFinal` the file is hard-linked into place instead of copied (the segment files
   * of RTMP ingest are written once, stored, then deleted, and a copy read and wrote every byte
   * again: ~5 % of the gateway's main thread with 128 publishers, bench/README.md section 3):
   * straight under the object's name, or, when an object is there already, under a temporary
   * name then renamed over it. Falls back to a copy across filesystems.
   */
  async putFile(key: string, localPath: string, options: PutFileOptions = {}): Promise<ObjectInfo> {
    if (!(options.sourceFinal && await this.#linkInPlace(key, localPath))) {
      await this.#atomicWrite(key, (tmp) => (options.sourceFinal ? this.#linkOrCopy(localPath, tmp) : copyFile(localPath, tmp)));
    }
    // The caller's count spares a stat(2) per stored segment.
    return options.sizeBytes !== undefined ? { sizeBytes: options.sizeBytes } : this.#sizeOf(key);
  }

  /**
   * Links a final file straight under the object's name: link(2) makes the name appear with
   * the whole (closed, never rewritten) file at once, so no temporary name and no rename are
   * needed (one metadata operation per stored segment instead of two). The directory is
   * created when missing.
   * @returns false when the object exists already (link does not replace: the caller goes
   *   through a temporary name and a rename) or this store cannot link (it copies from then on)
   * @throws GatewayError STORAGE_FAILED on any other error
   */
  async #linkInPlace(key: string, localPath: string): Promise<boolean> {
    if (!this.#linking) return false;
    const path = this.#path(key);
    try {
      try {
        await link(localPath, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await mkdir(dirname(path), { recursive: true });
        await link(localPath, path);
      }
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') return false;
      if (CANNOT_LINK.has(code)) {
        this.#linking = false;
        return false;
      }
      throw new GatewayError('STORAGE_FAILED', `cannot write object ${key}`, { cause: err });
    }
  }

  async #linkOrCopy(from: string, to: string): Promise<void> {
    if (this.#linking) {
      try {
        await link(from, to);
        return;
      } catch (err) {
        if (!CANNOT_LINK.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        this.#linking = false;
      }
    }
    await copyFile(from, to);
  }

  async putBytes(key: string, data: Uint8Array, options: PutBytesOptions = {}): Promise<ObjectInfo> {
    if (options.newKey) await this.#createNew(key, data);
    else await this.#atomicWrite(key, (tmp) => writeFile(tmp, data));
    return { sizeBytes: data.byteLength };
  }

  /** Writes a new object under its own name (PutBytesOptions.newKey), creating the directory when missing. */
  async #createNew(key: string, data: Uint8Array): Promise<void> {
    const path = this.#path(key);
    // In place: the file is opened (a descriptor to write); otherwise written whole (no descriptor).
    const create = (): Promise<number | undefined> => (data.byteLength <= WRITE_IN_PLACE_MAX_BYTES
      ? openFile(path, 'wx')
      : writeFile(path, data, { flag: 'wx' }).then(() => undefined));
    try {
      let fd: number | undefined;
      try {
        fd = await create();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await mkdir(dirname(path), { recursive: true });
        fd = await create();
      }
      if (fd !== undefined) {
        try {
          for (let at = 0; at < data.byteLength;) at += writeSync(fd, data, at, data.byteLength - at);
        } finally {
          closeSync(fd);
        }
      }
    } catch (err) {
      // An object that was there already is not ours to remove.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await unlink(path).catch(() => undefined);
      throw new GatewayError('STORAGE_FAILED', `cannot write object ${key}`, { cause: err });
    }
  }

  async putStream(key: string, stream: Readable): Promise<ObjectInfo> {
    await this.#atomicWrite(key, (tmp) => pipeline(stream, createWriteStream(tmp)), true);
    return this.#sizeOf(key);
  }

  async getFile(key: string): Promise<LocalObject> {
    const found = await this.#find(key);
    if (!found) throw new GatewayError('NOT_FOUND', `object ${key} not found`);
    return { path: found.path, release: async () => undefined };
  }

  async getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined> {
    const found = await this.#find(key);
    if (!found) return undefined;
    return { stream: createReadStream(found.path), sizeBytes: found.sizeBytes };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const found = await this.#find(key);
    return found ? { sizeBytes: found.sizeBytes } : undefined;
  }

  async list(prefix: string, options: { cursor?: string; limit?: number } = {}): Promise<ObjectPage> {
    assertObjectPrefix(prefix, true);
    const limit = listLimit(options.limit);
    const all = (await this.#matching(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const after = options.cursor;
    const start = after === undefined ? 0 : all.findIndex((o) => o.key > after);
    const page = start < 0 ? [] : all.slice(start, start + limit);
    const more = start >= 0 && start + limit < all.length;
    // Only the page's files are stat-ed: a listing page by page reads each file once, not once per page.
    const objects: ObjectEntry[] = [];
    for (const o of page) {
      try {
        const s = await stat(join(this.#root, o.file));
        objects.push({ key: o.key, sizeBytes: s.size, lastModifiedMs: Math.floor(s.mtimeMs) });
      } catch { /* deleted meanwhile */ }
    }
    // The cursor is the page's last key even when its file went meanwhile (the page may be short).
    return more ? { objects, cursor: page[page.length - 1]!.key } : { objects };
  }

  /** Every object whose key starts with `prefix` (unsorted); a flat store walks its whole root. */
  async #matching(prefix: string): Promise<FoundFile[]> {
    if (!this.#flat) return this.#walk(prefix);
    return (await this.#walk('')).filter((o) => o.key.startsWith(prefix));
  }

  /** Every object below `prefix` (unsorted), from the directory entries alone (no stat). */
  async #walk(prefix: string): Promise<FoundFile[]> {
    const out: FoundFile[] = [];
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
        } else if (entry.isFile()) {
          // A flat store's files at the root stand for keys with `/` in them.
          const objectKey = this.#flat && relDir === '' ? key.replaceAll(FLAT_SEPARATOR, '/') : key;
          if (isObjectKey(objectKey)) out.push({ key: objectKey, file: key });
        }
      }
    };
    await visit(prefix.replace(/\/$/, ''));
    return out;
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    const from = await this.#find(fromKey);
    if (!from) throw new GatewayError('NOT_FOUND', `object ${fromKey} not found`);
    await this.#atomicWrite(toKey, (tmp) => copyFile(from.path, tmp));
    return this.#sizeOf(toKey);
  }

  async deleteKeys(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const path = this.#path(key);
      try {
        if (await removed(path)) continue;
        const nested = this.#nestedPath(key);
        // An object a nested store wrote: its directory goes too once empty.
        if (nested !== undefined && await removed(nested)) await rmdir(dirname(nested)).catch(() => undefined);
      } catch (err) {
        throw new GatewayError('STORAGE_FAILED', 'cannot delete objects', { cause: err });
      }
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    assertObjectPrefix(prefix, false);
    if (this.#flat) await this.deleteKeys((await this.#matching(prefix)).map((o) => o.key));
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

/** An object's file found by a walk: its key and its path relative to the root. */
interface FoundFile {
  readonly key: string;
  readonly file: string;
}

/** Unlinks `path`: true when it was removed, false when it did not exist. */
async function removed(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
