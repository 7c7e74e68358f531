/**
 * Recordings over HTTP (docs/wire-contract.md §9a; Livepeer's record-store paths):
 *
 * Player-facing (not in an OpenAPI spec; mount before the validators, like hls/playback.ts):
 * - `GET /recordings/<manifestID>/index.m3u8`                 master of the newest ready recording
 * - `GET /recordings/<manifestID>/<session>/index.m3u8`       master of one recording
 * - `GET /recordings/<manifestID>/<session>/<rendition>.m3u8` its VOD media playlist
 * - `GET /recordings/<manifestID>/<session>/<rendition>/<seq>.ts` one segment
 * - `GET /recordings/<manifestID>/<session>/<rendition>.mp4`  the rendition as one MP4, remuxed
 *   from its segments as it is sent (media/mp4-export.ts: stream copy, no re-encode)
 * - `GET /recordings/<manifestID>/<session>/thumbnails.vtt`   WebVTT index of one thumbnail per
 *   source segment (vod-playlists.ts `thumbnailsVtt`)
 * - `GET /recordings/<manifestID>/<session>/thumbnails/<seq>.jpg` source segment `seq`'s first
 *   keyframe, made on the first request and stored beside the segment (media/thumbnail.ts)
 *
 * Admin (openapi/control.yaml, behind the admin token like the rest of `/api`):
 * - `GET /api/streams/<manifestID>/recordings`            recordings of a manifest ID, newest first
 * - `DELETE /api/streams/<manifestID>/recordings/<session>` deletes one (409 while in progress)
 *
 * Everything is read from the object store and Redis, so any gateway serves any recording.
 */
import { Router, type Request, type Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isValidStreamName, parseSeq } from '../domain/stream-name.ts';
import { SOURCE_RENDITION, THUMBNAILS_FOLDER, segmentKey, sessionPrefix, thumbnailKey } from '../domain/segment.ts';
import { ThumbnailError } from '../media/thumbnail.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { adminGuard } from '../http/admin-guard.ts';
import type { Logger } from '../log/logger.ts';
import type { KeptSession, RecordingStore } from './recording-store.ts';
import { MASTER_NAME, THUMBNAILS_VTT_NAME, masterForLatest, segmentUris, thumbnailsVtt } from './vod-playlists.ts';

/** What the routes need of the object store. */
export interface RecordingObjects {
  getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined>;
  deletePrefix(prefix: string): Promise<void>;
}

/** Remuxes segments into one MP4 as it is read (media/mp4-export.ts `exportMp4`). */
export type Mp4Exporter = (segments: AsyncIterable<Readable>) => { output: Readable; done: Promise<void>; stop(): Promise<void> };

export interface RecordingRoutesOptions {
  store: Pick<RecordingStore, 'get' | 'recordings' | 'latestReady' | 'forget'>;
  objects: RecordingObjects;
  exportMp4: Mp4Exporter;
  logger: Logger;
  publicUrl: string;
  /** Bearer token; '' = none configured. */
  adminToken: string;
  loopbackOnly: boolean;
  /**
   * Thumbnails of source segments (media/thumbnail.ts `Thumbnails`): `get` reads the JPEG at
   * `thumbnailKey` or makes it from the segment at `segmentKey`; `undefined` when the segment
   * is not stored; throws ThumbnailError. Absent: the thumbnail paths answer 404.
   */
  thumbnails?: { get(segmentKey: string, thumbnailKey: string): Promise<Buffer | undefined> };
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/** A session ID as ingest makes them (ingest/stream-registry.ts): base-36 time and hex. */
const SESSION = /^[0-9a-z]{1,40}$/;

function setCors(res: Response): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', 'Content-Length');
}

/** The player-facing `/recordings/...` routes. */
export function createRecordingPlaybackRouter(options: RecordingRoutesOptions): Router {
  const { store, objects } = options;
  const router = Router();
  const log = options.logger;

  const bad = (): never => {
    throw new GatewayError('INVALID_NAME', 'invalid recording path: expected /recordings/<manifestID>/index.m3u8, '
      + '/recordings/<manifestID>/<session>/index.m3u8, …/<session>/<rendition>.m3u8, …/<session>/<rendition>.mp4 or …/<session>/<rendition>/<seq>.ts');
  };

  async function ready(manifestID: string, session: string): Promise<KeptSession> {
    const kept = await store.get(manifestID, session);
    if (!kept || !kept.record) throw new GatewayError('NOT_FOUND', `recording ${manifestID}/${session} not found`);
    if (kept.state !== 'ready') throw new GatewayError('RECORDING_IN_PROGRESS', `recording ${manifestID}/${session} is still in progress; it is ready once its stream ended`, { retryAfterS: 5 });
    return kept;
  }

  async function readText(key: string): Promise<string> {
    const object = await objects.getStream(key);
    if (!object) throw new GatewayError('NOT_FOUND', `${key} not found`);
    const chunks: Buffer[] = [];
    for await (const chunk of object.stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function sendText(res: Response, body: string, cacheControl: string): void {
    const bytes = Buffer.from(body, 'utf8');
    setCors(res);
    res.status(200).setHeader('Content-Type', PLAYLIST_TYPE);
    res.setHeader('Content-Length', String(bytes.length));
    res.setHeader('Cache-Control', cacheControl);
    res.end(bytes);
  }

  async function sendObject(res: Response, key: string, type: string): Promise<void> {
    const object = await objects.getStream(key);
    if (!object) throw new GatewayError('NOT_FOUND', `${key} not found`);
    setCors(res);
    res.status(200).setHeader('Content-Type', type);
    res.setHeader('Content-Length', String(object.sizeBytes));
    res.setHeader('Cache-Control', type === PLAYLIST_TYPE ? 'public, max-age=60' : 'public, max-age=31536000, immutable');
    // pipeline: a player that leaves destroys the object stream too (an S3 body holds a connection).
    await pipeline(object.stream, res).catch(() => undefined);
  }

  async function mp4(manifestID: string, session: string, rendition: string, req: Request, res: Response): Promise<void> {
    await ready(manifestID, session);
    const prefix = sessionPrefix(manifestID, session);
    const uris = segmentUris(await readText(`${prefix}${rendition}.m3u8`));
    async function* segments(): AsyncGenerator<Readable> {
      for (const uri of uris) {
        const object = await objects.getStream(`${prefix}${uri}`);
        if (!object) throw new Error(`segment ${uri} is missing`);
        yield object.stream;
      }
    }
    const running = options.exportMp4(segments());
    setCors(res);
    res.status(200).setHeader('Content-Type', 'video/mp4');
    res.setHeader('Content-Disposition', `attachment; filename="${manifestID}-${session}-${rendition}.mp4"`);
    res.setHeader('Cache-Control', 'public, max-age=3600');
    req.on('close', () => { if (!res.writableFinished) void running.stop(); });
    running.output.pipe(res);
    try {
      await running.done;
    } catch (err) {
      // Headers are gone: the client sees a cut-off body (no chunked terminator), never a complete-looking file.
      log.warn({ manifestID, session, rendition, err: (err as Error).message }, 'mp4 export failed');
      res.destroy();
    }
  }

  /** A ready recording with video, or a 404 naming why there are no thumbnails. */
  async function withThumbnails(manifestID: string, session: string): Promise<void> {
    if (!options.thumbnails) throw new GatewayError('NOT_FOUND', 'thumbnails are disabled on this gateway (thumbnails.enabled)');
    const kept = await ready(manifestID, session);
    const source = kept.renditions.find((r) => r.name === SOURCE_RENDITION);
    // An audio-only source measures 0x0.
    if (!source || source.width === 0 || source.height === 0) throw new GatewayError('NOT_FOUND', `recording ${manifestID}/${session} has no video: no thumbnails`);
  }

  async function thumbnail(manifestID: string, session: string, seq: number, res: Response): Promise<void> {
    await withThumbnails(manifestID, session);
    let jpeg: Buffer | undefined;
    try {
      jpeg = await options.thumbnails!.get(segmentKey(manifestID, session, SOURCE_RENDITION, seq), thumbnailKey(manifestID, session, seq));
    } catch (err) {
      if (err instanceof ThumbnailError && err.reason === 'no-video') throw new GatewayError('NOT_FOUND', `segment ${seq} of recording ${manifestID}/${session} has no video`);
      if (err instanceof ThumbnailError) throw new GatewayError('TRANSCODE_FAILED', `cannot decode the keyframe of ${manifestID}/${session}/source/${seq}.ts`, { cause: err });
      throw err;
    }
    if (!jpeg) throw new GatewayError('NOT_FOUND', `recording ${manifestID}/${session} has no source segment ${seq}`);
    setCors(res);
    res.status(200).setHeader('Content-Type', 'image/jpeg');
    res.setHeader('Content-Length', String(jpeg.length));
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.end(jpeg);
  }

  router.options('/recordings/*path', (_req: Request, res: Response) => {
    setCors(res);
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Range');
    res.status(204).end();
  });

  router.get('/recordings/*path', async (req: Request, res: Response) => {
    const parts = (req.params as { path: string[] }).path;
    const [manifestID, session] = parts;
    if (!isValidStreamName(manifestID)) bad();
    if (parts.length === 2) {
      if (parts[1] !== MASTER_NAME) bad();
      const latest = await store.latestReady(manifestID!);
      if (!latest) throw new GatewayError('NOT_FOUND', `stream ${manifestID} has no finished recording`);
      const master = await readText(`${sessionPrefix(manifestID!, latest.session)}${MASTER_NAME}`);
      sendText(res, masterForLatest(master, latest.session), 'no-cache');
      return;
    }
    if (!SESSION.test(session ?? '')) bad();
    const prefix = sessionPrefix(manifestID!, session!);
    if (parts.length === 3) {
      const file = parts[2]!;
      if (file === MASTER_NAME) {
        await ready(manifestID!, session!);
        await sendObject(res, `${prefix}${MASTER_NAME}`, PLAYLIST_TYPE);
        return;
      }
      if (file === THUMBNAILS_VTT_NAME) {
        await withThumbnails(manifestID!, session!);
        const vtt = Buffer.from(thumbnailsVtt(await readText(`${prefix}${SOURCE_RENDITION}.m3u8`)), 'utf8');
        setCors(res);
        res.status(200).setHeader('Content-Type', 'text/vtt; charset=utf-8');
        res.setHeader('Content-Length', String(vtt.length));
        res.setHeader('Cache-Control', 'public, max-age=60');
        res.end(vtt);
        return;
      }
      const m = /^(.+)\.(m3u8|mp4)$/.exec(file);
      if (!m || !isValidStreamName(m[1])) bad();
      if (m![2] === 'mp4') {
        await mp4(manifestID!, session!, m![1]!, req, res);
        return;
      }
      await ready(manifestID!, session!);
      await sendObject(res, `${prefix}${file}`, PLAYLIST_TYPE);
      return;
    }
    if (parts.length === 4 && parts[2] === THUMBNAILS_FOLDER && parts[3]!.endsWith('.jpg')) {
      const seq = parseSeq(parts[3]!.slice(0, -'.jpg'.length));
      if (seq === undefined) bad();
      await thumbnail(manifestID!, session!, seq!, res);
      return;
    }
    if (parts.length === 4) {
      const m = /^(.+)\.ts$/.exec(parts[3]!);
      const seq = m ? parseSeq(m[1]!) : undefined;
      if (seq === undefined || !isValidStreamName(parts[2])) bad();
      await ready(manifestID!, session!);
      await sendObject(res, segmentKey(manifestID!, session!, parts[2]!, seq!), 'video/mp2t');
      return;
    }
    bad();
  });

  return router;
}

/** The admin `/api/streams/<manifestID>/recordings` routes (validated against openapi/control.yaml by the control router mounted before). */
export function createRecordingApiRouter(options: RecordingRoutesOptions): Router {
  const { store, objects } = options;
  const router = Router();
  router.use('/api/streams/:manifestID/recordings', adminGuard({ adminToken: options.adminToken, loopbackOnly: options.loopbackOnly, apiName: 'control API' }));

  const describe = (r: KeptSession): Record<string, unknown> => {
    const base = `${options.publicUrl}/recordings/${r.manifestID}/${r.session}`;
    return {
      session: r.session,
      state: r.state === 'ready' ? 'ready' : 'recording',
      startedAt: new Date(r.startedAtMs).toISOString(),
      ...(r.state === 'ready' && r.endedAtMs !== undefined ? { endedAt: new Date(r.endedAtMs).toISOString() } : {}),
      ...(r.state === 'ready' ? {
        durationMs: r.durationMs ?? 0,
        playbackUrl: `${base}/index.m3u8`,
        renditions: r.renditions.map((x) => ({
          name: x.name, width: x.width, height: x.height, segments: x.segments, durationMs: x.durationMs, bitrateBps: x.averageBps,
          playlistUrl: `${base}/${x.name}.m3u8`, mp4Url: `${base}/${x.name}.mp4`,
        })),
        ...(r.deleteAtMs !== undefined ? { deleteAt: new Date(r.deleteAtMs).toISOString() } : {}),
      } : {}),
    };
  };

  router.get('/api/streams/:manifestID/recordings', async (req: Request, res: Response) => {
    const manifestID = String(req.params['manifestID']);
    res.json({ manifestID, recordings: (await store.recordings(manifestID)).map(describe) });
  });

  router.delete('/api/streams/:manifestID/recordings/:session', async (req: Request, res: Response) => {
    const manifestID = String(req.params['manifestID']);
    const session = String(req.params['session']);
    const kept = await store.get(manifestID, session);
    if (!kept || !kept.record) throw new GatewayError('NOT_FOUND', `recording ${manifestID}/${session} not found`);
    if (kept.state !== 'ready') throw new GatewayError('RECORDING_IN_PROGRESS', `recording ${manifestID}/${session} is still in progress; delete it once its stream ended`);
    await objects.deletePrefix(sessionPrefix(manifestID, session));
    await store.forget(manifestID, session);
    options.logger.info({ manifestID, session }, 'recording deleted through the control API');
    res.status(204).end();
  });

  return router;
}
