/**
 * Encoding of a gateway → worker request (the ai-runner API, see worker-client.ts): the
 * request types, the worker URL a path is sent to ({@link endpointUrl}) and the
 * `multipart/form-data` body of the file-taking pipelines ({@link encodeMultipart}).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Pipeline } from '../domain/pipelines.ts';
import { WorkerCallError } from './worker-reply.ts';

/** A worker's address: the ai-runner base URL (paths are appended) and its optional bearer token. */
export interface WorkerEndpoint {
  /** Base URL, e.g. `http://10.0.0.5:8000` or `http://host/runner/` (no credentials in it). */
  readonly url: string;
  readonly token?: string;
}

/**
 * One uploaded file of a multipart request: its bytes in memory (`data`), or a file on
 * disk (`path`, `sizeBytes`) that is streamed to the worker on each attempt without
 * being read into memory.
 */
export type AiRequestFile = {
  readonly field: string;
  readonly filename: string;
  readonly contentType: string;
} & ({ readonly data: Buffer } | { readonly path: string; readonly sizeBytes: number });

/** A validated AI request, ready to be sent to a worker. */
export interface AiRequest {
  readonly pipeline: Pipeline;
  readonly modelID: string;
  /** JSON pipelines: the body as received (validated); `model_id` is set from `modelID`. Multipart: the text fields. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** Multipart pipelines: the uploaded file(s). */
  readonly files?: readonly AiRequestFile[];
}

/**
 * `<base>/<path>`, keeping any path prefix of the base.
 * @throws WorkerCallError('connection') for an unusable base URL.
 */
export function endpointUrl(base: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch (err) {
    throw new WorkerCallError('connection', 'worker URL is not a valid URL', { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WorkerCallError('connection', 'worker URL must be http or https');
  if (url.username !== '' || url.password !== '') throw new WorkerCallError('connection', 'worker URL must not contain credentials (use the token)');
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return new URL(path, url);
}

/**
 * A multipart body as its pieces: bytes in memory and files on disk, in order. Its length
 * is known up front (sent as Content-Length); `open()` gives a fresh stream of it per attempt.
 */
export interface MultipartBody {
  readonly contentType: string;
  readonly lengthBytes: number;
  readonly parts: readonly (Buffer | { readonly path: string; readonly sizeBytes: number })[];
  /** The whole body as a stream, files read from disk in chunks as the socket drains. */
  open(): Readable;
}

/**
 * A `multipart/form-data` body (RFC 7578) for a multipart pipeline: the text fields, then
 * `model_id`, then the file(s). Names and filenames are escaped as browsers and undici's
 * FormData do (`"` → %22, CR → %0D, LF → %0A). Files on disk stay there until sent.
 */
export function encodeMultipart(request: AiRequest): MultipartBody {
  const boundary = `----mediagate${randomBytes(16).toString('hex')}`;
  const escape = (name: string): string => name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const parts: (Buffer | { readonly path: string; readonly sizeBytes: number })[] = [];
  const field = (name: string, value: string): void => {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"\r\n\r\n${value}\r\n`));
  };
  const fileFields = new Set((request.files ?? []).map((f) => f.field));
  for (const [name, value] of Object.entries(request.fields)) {
    // Files travel as files; a validator may have left placeholders for them in the fields.
    if (value === undefined || value === null || name === 'model_id' || fileFields.has(name)) continue;
    field(name, typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  field('model_id', request.modelID);
  for (const file of request.files ?? []) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${escape(file.field)}"; filename="${escape(file.filename)}"\r\nContent-Type: ${file.contentType}\r\n\r\n`));
    parts.push('data' in file ? file.data : { path: file.path, sizeBytes: file.sizeBytes }, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const lengthBytes = parts.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.sizeBytes), 0);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    lengthBytes,
    parts,
    open: () => Readable.from(multipartChunks(parts), { objectMode: false }),
  };
}

async function* multipartChunks(parts: MultipartBody['parts']): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (Buffer.isBuffer(part)) {
      yield part;
      continue;
    }
    let sent = 0;
    for await (const chunk of createReadStream(part.path)) {
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    // The declared Content-Length must hold: a file that changed size would corrupt the body.
    if (sent !== part.sizeBytes) throw new Error(`upload file is ${sent} bytes, expected ${part.sizeBytes}`);
  }
}
