/**
 * Where the AI API's multipart uploads are written: one private directory made once
 * ({@link UploadDir}; image-to-video's MP4 scratch files go there too), one uniquely named
 * file per uploaded part in it, and the files of one
 * request ({@link UploadScope}) carried from the upload middleware (ai-routes.ts, multer) to
 * the pipeline handler and removed once nobody needs them.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import type { Request } from 'express';
import type { Logger } from '../log/logger.ts';

/**
 * The one directory uploads in flight are written to (`<workDir>/uploads`), made once, on the
 * first upload, with mode 0700 (a directory that was there with wider access is narrowed to
 * 0700), so the files in it are readable by this user only. A request adds no directory: each
 * uploaded part is one file `<prefix><32 hex>` (a fresh random UUID's hex, 122 random bits).
 */
export class UploadDir {
  readonly dir: string;
  readonly #prefix: string;
  #ready: Promise<string> | undefined;

  /** @param prefix file name prefix; the gateway's carries its pid (`upload-<pid>-`) for the startup sweep (storage/work-dir.ts). */
  constructor(dir: string, prefix: string) {
    this.dir = dir;
    this.#prefix = prefix;
  }

  /** Resolves to the directory once it exists (made on the first call; again after {@link forget}). */
  ready(): Promise<string> {
    return (this.#ready ??= this.#make());
  }

  /** The directory may be gone (a write in it failed with ENOENT): the next {@link ready} makes it again. */
  forget(): void {
    this.#ready = undefined;
  }

  /** A file name no other upload has. */
  newName(): string {
    return `${this.#prefix}${randomUUID().replaceAll('-', '')}`;
  }

  async #make(): Promise<string> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (((await stat(this.dir)).mode & 0o077) !== 0) await chmod(this.dir, 0o700);
      return this.dir;
    } catch (err) {
      this.#ready = undefined;
      throw err;
    }
  }
}

/**
 * The upload files of one request, removed once the parse is over (multer removes partial
 * files itself on errors and aborts), the response has closed, and every holder (the handler
 * while it sends the file to workers) let go.
 */
export class UploadScope {
  readonly #paths: string[] = [];
  #waits = 2; // the parse ending, the response closing
  #removed = false;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** A file of this request (named before it is created): removed with the scope. */
  add(path: string): void {
    this.#paths.push(path);
  }

  /** Keeps the files until the returned release is called; undefined once they are gone. */
  hold(): (() => void) | undefined {
    if (this.#removed) return undefined;
    this.#waits++;
    return once(() => this.release());
  }

  /** One of the waits is over; the last one removes the files. */
  release(): void {
    if (--this.#waits > 0 || this.#removed) return;
    this.#removed = true;
    for (const path of this.#paths) {
      rm(path, { force: true }).catch((err: Error) => this.#log.warn({ err: err.message, path }, 'cannot remove an upload file'));
    }
  }
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}

export const UPLOAD_SCOPE = Symbol('uploadScope');
export type UploadRequest = Request & { [UPLOAD_SCOPE]?: UploadScope };
