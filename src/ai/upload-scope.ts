/**
 * The private per-request directory the AI API's multipart uploads are written to
 * ({@link UploadScope}), and the request property that carries it from the upload
 * middleware (ai-routes.ts, multer) to the pipeline handler.
 */
import { rm } from 'node:fs/promises';
import type { Request } from 'express';
import type { Logger } from '../log/logger.ts';

/**
 * The upload files of one request live in one private directory, removed once the parse
 * is over (multer removes partial files itself on errors and aborts), the response has
 * closed, and every holder (the handler while it sends the file to workers) let go.
 */
export class UploadScope {
  readonly dir: string;
  #waits = 2; // the parse ending, the response closing
  #removed = false;
  readonly #log: Logger;

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.#log = log;
  }

  /** Keeps the files until the returned release is called; undefined once they are gone. */
  hold(): (() => void) | undefined {
    if (this.#removed) return undefined;
    this.#waits++;
    return once(() => this.release());
  }

  /** One of the waits is over; the last one removes the directory. */
  release(): void {
    if (--this.#waits > 0 || this.#removed) return;
    this.#removed = true;
    rm(this.dir, { recursive: true, force: true }).catch((err: Error) => this.#log.warn({ err: err.message, dir: this.dir }, 'cannot remove an upload directory'));
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
