/**
 * HTTP push ingest (docs/wire-contract.md §4, Livepeer's `/live/<name>/<seq>.ts` push):
 * `POST|PUT /live/<name>/<seq>.ts|.mp4` with the raw segment as the body. The reply comes
 * when every rendition of the segment is done: with `Accept: multipart/mixed` one part per
 * rendition in ladder order, otherwise an empty 200.
 *
 * Statuses: 400 bad name / seq / extension / header; 403 publish refused; 405 other
 * methods; 409 the seq was pushed with other bytes, or the stream is live over RTMP;
 * 413 body above `maxBodyBytes`; 422 not decodable or failed for good; 503 no transcoder
 * capacity (with Retry-After). Every error body is `{"detail":{"msg","code"}}`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';
import { isValidStreamName, parseSeq } from '../domain/stream-name.ts';
import type { RenditionSegment } from '../domain/segment.ts';
import type { VideoProfile } from '../domain/profile.ts';
import type { LiveIngest } from './live-ingest.ts';
import type { IngestRecorder } from './ingest-ports.ts';
import { onResponseDone } from '../http/response-outcome.ts';
import { lingerAfterRefusal } from '../http/refused-body.ts';
import { parseTranscodeConfigurationHeader } from './transcode-config.ts';
import type { Logger } from '../log/logger.ts';

export interface PushRoutesOptions {
  ingest: Pick<LiveIngest, 'push'>;
  storage: { getFile(key: string): Promise<{ path: string; release: () => Promise<void> }> };
  remuxer: { toMp4(inputPath: string, outputPath: string): Promise<void> };
  /** Scratch directory for request bodies; files are removed after each request. */
  workDir: string;
  /**
   * Name prefix of a request's scratch files (`<prefix><16 hex>.<ext>`); default `push-`.
   * The gateway adds the process's pid (`push-<pid>-`) so its startup sweep can tell the
   * files of a dead process from those of a live one.
   */
  scratchPrefix?: string;
  /** Largest accepted segment in bytes (413 above). */
  maxBodyBytes: number;
  /** Told the status of every push request once its answer is over (metrics); absent = not recorded. */
  recorder?: Pick<IngestRecorder, 'recordPushRequest'>;
  logger: Logger;
}

const CONTAINERS = { ts: { type: 'video/mp2t' }, mp4: { type: 'video/mp4' } } as const;

/** Whether an Accept header asks for multipart/mixed (media type compared case-insensitively, parameters allowed). */
export function acceptsMultipart(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => part.split(';')[0]!.trim().toLowerCase() === 'multipart/mixed');
}

/**
 * Parses `/live/<name>/<seq>.<ext>` path parts.
 * @throws GatewayError INVALID_NAME naming what is wrong.
 */
export function parsePushPath(parts: readonly string[]): { name: string; seq: number; container: 'ts' | 'mp4' } {
  if (parts.length !== 2) throw new GatewayError('INVALID_NAME', 'push path must be /live/<name>/<seq>.ts or /live/<name>/<seq>.mp4');
  const [name, file] = parts as [string, string];
  if (!isValidStreamName(name)) throw new GatewayError('INVALID_NAME', 'invalid stream name in push path: expected 1-64 characters of [A-Za-z0-9_-]');
  const m = /^([^.]*)\.([A-Za-z0-9]+)$/.exec(file);
  if (!m) throw new GatewayError('INVALID_NAME', `invalid segment file name "${file.slice(0, 40)}": expected <seq>.ts or <seq>.mp4`);
  const ext = m[2]!.toLowerCase();
  if (ext !== 'ts' && ext !== 'mp4') throw new GatewayError('INVALID_NAME', `unsupported segment extension ".${ext.slice(0, 10)}": use .ts or .mp4`);
  const seq = parseSeq(m[1]!);
  if (seq === undefined) throw new GatewayError('INVALID_NAME', `invalid sequence number "${m[1]!.slice(0, 20)}": expected a non-negative integer`);
  return { name, seq, container: ext };
}

function parseDurationHeader(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,7}$/.test(value.trim())) throw new GatewayError('INVALID_REQUEST', 'Content-Duration must be a whole number of milliseconds');
  return Number(value);
}

export function createPushRouter(options: PushRoutesOptions): Router {
  const router = Router();

  router.all('/live/*path', async (req: Request, res: Response) => {
    const recorder = options.recorder;
    if (recorder) onResponseDone(res, ({ statusCode }) => recorder.recordPushRequest(statusCode));
    if (req.method !== 'POST' && req.method !== 'PUT') {
      res.setHeader('Allow', 'POST, PUT');
      throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on push URLs; use POST or PUT`);
    }
    const { name, seq, container } = parsePushPath((req.params as { path: string[] }).path);
    const declaredDurationMs = parseDurationHeader(req.header('content-duration'));
    const configHeader = req.header('livepeer-transcode-configuration');
    let configuration: { manifestID?: string; profiles?: readonly VideoProfile[] } | undefined;
    if (configHeader !== undefined) {
      const parsed = parseTranscodeConfigurationHeader(configHeader);
      configuration = { ...(parsed.manifestID ? { manifestID: parsed.manifestID } : {}), ...(parsed.profiles ? { profiles: parsed.profiles } : {}) };
      if (parsed.ignoredFields.length) options.logger.debug({ ignored: parsed.ignoredFields }, 'transcode configuration fields not supported');
    }
    const declaredLength = Number(req.header('content-length') ?? NaN);
    if (declaredLength > options.maxBodyBytes) {
      lingerAfterRefusal(req, res);
      throw new GatewayError('PAYLOAD_TOO_LARGE', `segment of ${declaredLength} bytes exceeds the limit of ${options.maxBodyBytes} bytes (http.maxBodyBytes)`);
    }

    await mkdir(options.workDir, { recursive: true });
    const base = join(options.workDir, `${options.scratchPrefix ?? 'push-'}${randomBytes(8).toString('hex')}`);
    const bodyPath = `${base}.${container}`;
    const scratch: string[] = [bodyPath, `${base}.remux.ts`];
    try {
      const { sha256, bytes } = await receiveBody(req, bodyPath, options.maxBodyBytes);
      if (bytes === 0) throw new GatewayError('UNDECODABLE_MEDIA', 'empty segment body');
      const host = req.header('host') ?? 'localhost';
      const outcome = await options.ingest.push({
        streamName: name, seq, container, bodyPath, sha256, url: `${req.protocol}://${host}${req.originalUrl}`,
        ...(configuration ? { configuration } : {}),
        ...(declaredDurationMs !== undefined ? { declaredDurationMs } : {}),
        scratchTsPath: `${base}.remux.ts`,
      });
      // The body is no longer needed: remove it before answering, so nothing outlives the response.
      await Promise.all(scratch.splice(0).map((p) => rm(p, { force: true })));
      res.setHeader('Mediagate-Replayed', outcome.replayed ? '1' : '0');
      if (!acceptsMultipart(req.header('accept'))) {
        res.status(200).end();
        return;
      }
      await sendMultipart(res, outcome.renditions, seq, container, options, scratch, base);
    } catch (err) {
      // A body that ran over the limit while it streamed: the rest is dropped like a body refused for its declared size.
      if (err instanceof GatewayError && err.code === 'PAYLOAD_TOO_LARGE') lingerAfterRefusal(req, res);
      throw err;
    } finally {
      await Promise.all(scratch.map((p) => rm(p, { force: true })));
    }
  });
  return router;
}

/**
 * Streams the request body to `path`, hashing it.
 * @throws GatewayError PAYLOAD_TOO_LARGE once more than `limitBytes` arrived: the file is removed
 *   and the request is left open and unread from there (for {@link lingerAfterRefusal});
 *   INVALID_REQUEST when the body was interrupted or could not be written (request destroyed).
 */
async function receiveBody(req: Request, path: string, limitBytes: number): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  // The body is read through an iterator that does not destroy the request when the loop is left
  // (pipeline(req, …) would destroy it, and its socket, on the 413). readable.iterator is in
  // Node since 16.3, still documented as experimental.
  async function* metered(): AsyncGenerator<Buffer> {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > limitBytes) throw new GatewayError('PAYLOAD_TOO_LARGE', `segment exceeds the limit of ${limitBytes} bytes (http.maxBodyBytes)`);
      hash.update(chunk);
      yield chunk;
    }
  }
  try {
    await pipeline(metered, createWriteStream(path));
  } catch (err) {
    await rm(path, { force: true });
    if (err instanceof GatewayError) throw err;
    req.destroy();
    throw new GatewayError('INVALID_REQUEST', 'request body was interrupted', { cause: err });
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function sendMultipart(res: Response, renditions: readonly RenditionSegment[], seq: number, container: 'ts' | 'mp4',
  options: PushRoutesOptions, scratch: string[], base: string): Promise<void> {
  const boundary = `mediagate-${randomBytes(12).toString('hex')}`;
  // Resolve every part first, so a failure still becomes a clean error response.
  const parts: { rendition: string; path: string; bytes: number; scratch: boolean; release: () => Promise<void> }[] = [];
  try {
    for (const r of renditions) {
      const object = await options.storage.getFile(r.key);
      let path = object.path;
      if (container === 'mp4') {
        path = `${base}.${r.rendition}.mp4`;
        scratch.push(path);
        await options.remuxer.toMp4(object.path, path);
      }
      parts.push({ rendition: r.rendition, path, bytes: (await stat(path)).size, scratch: container === 'mp4', release: object.release });
    }
    res.status(200);
    res.setHeader('Content-Type', `multipart/mixed; boundary=${boundary}`);
    for (const part of parts) {
      const file = `${part.rendition}_${seq}.${container}`;
      res.write(`--${boundary}\r\nContent-Type: ${CONTAINERS[container].type}; name="${file}"\r\nContent-Length: ${part.bytes}\r\n` +
        `Content-Disposition: attachment; filename="${file}"\r\nRendition-Name: ${part.rendition}\r\n\r\n`);
      await pipeline(createReadStream(part.path), res, { end: false });
      if (part.scratch) await rm(part.path, { force: true });
      res.write('\r\n');
    }
    res.end(`--${boundary}--\r\n`);
  } finally {
    await Promise.all(parts.map((p) => p.release()));
  }
}
