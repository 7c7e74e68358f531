/**
 * HLS playback routes (docs/wire-contract.md §5):
 * - `GET /stream/<manifestID>.m3u8`                    master playlist, by bandwidth: `source` first
 *                                                       (last when the source lint finds it unfit for players)
 * - `GET /stream/<manifestID>/<rendition>.m3u8`        live media playlist (sliding window)
 * - `GET /stream/<manifestID>/<rendition>/<seq>.ts`    one segment
 * - `GET /stream/<manifestID>/thumbnail.jpg`           the latest source segment's first keyframe
 *                                                       as a JPEG (media/thumbnail.ts; when configured)
 *
 * Everything is read from the shared segment index and object store (filesystem or S3), so any
 * gateway instance can serve any stream. Segment bytes are streamed from the store to the
 * player as they arrive, never held whole. With `segmentBaseUrl` (config
 * `storage.publicBaseUrl`), media playlists list segments at `<segmentBaseUrl>/<key>` (a CDN or
 * the bucket itself) and players fetch them there; the segment route keeps working. Keys and
 * URLs hold the public manifest ID, never a stream key. Names are validated before they touch a key.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RenditionPlan } from '../domain/profile.ts';
import { isValidStreamName, parseSeq } from '../domain/stream-name.ts';
import { SOURCE_RENDITION, segmentKey, thumbnailKey } from '../domain/segment.ts';
import { ThumbnailError } from '../media/thumbnail.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { sourceUnfitForPlayers, type SourceWarning } from '../domain/source-lint.ts';
import { orderMasterVariants, renderMasterPlaylist, renderMediaPlaylist, type VariantStream } from '../domain/playlist-writer.ts';
import type { RenditionMeasurements } from '../domain/segment.ts';

/** What playback needs from the segment index (implemented by segment-index-store.ts). */
export interface PlaybackIndex {
  getStream(manifestID: string): Promise<PlaybackStream | undefined>;
  renditionStats(manifestID: string, rendition: string): Promise<PlaybackRenditionStats>;
  renditionWindow(manifestID: string, rendition: string, window: number, stream: PlaybackStream): Promise<PlaybackWindow>;
  /**
   * The stream and the last `window` listed segments of one of its renditions, in one round
   * trip (a media playlist request); undefined when the stream is unknown.
   */
  streamWindow(manifestID: string, rendition: string, window: number): Promise<{ stream: PlaybackStream; window: PlaybackWindow } | undefined>;
}

/** The last listed segments of a rendition, and whether its playlist is complete (ENDLIST). */
export interface PlaybackWindow {
  stats: PlaybackRenditionStats;
  segments: readonly { seq: number; durationMs: number; discontinuity: boolean; discontinuityCount: number }[];
  complete: boolean;
}

export interface PlaybackStream {
  /** The current publish session: segment objects are stored under it. */
  readonly session: string;
  readonly state: 'live' | 'ended';
  readonly renditions: readonly RenditionPlan[];
  /** The source lint's findings (domain/source-lint.ts); they decide where `source` goes in the master. */
  readonly warnings: readonly SourceWarning[];
}

export interface PlaybackRenditionStats extends RenditionMeasurements {
  /** Segments listed. */
  readonly count: number;
}

/**
 * Kept playlist replies (playlist-cache.ts `PlaylistCache`): `get` a reply still valid;
 * `begin` before reading the index, then `put` the reply with that token (kept only if the
 * stream did not change meanwhile).
 */
export interface PlaybackPlaylistCache {
  get(manifestID: string, playlist: string): { readonly body: Buffer; readonly cacheControl: string } | undefined;
  begin(manifestID: string): object;
  put(token: object, playlist: string, reply: { body: Buffer; cacheControl: string }): boolean;
}

/** What playback needs from the object store. */
export interface PlaybackStorage {
  getStream(key: string): Promise<{ stream: Readable; sizeBytes: number } | undefined>;
}

export interface PlaybackOptions {
  index: PlaybackIndex;
  storage: PlaybackStorage;
  /** Segments in the live window (docs/wire-contract.md §5: 6 by default). */
  windowSegments: number;
  /** Segment target duration in ms; the floor of EXT-X-TARGETDURATION. */
  segmentTargetMs: number;
  /**
   * Absolute base URL (no trailing `/`) where the store's objects are public, e.g. a CDN:
   * media playlists then list segment `<key>` as `<segmentBaseUrl>/<key>`
   * (key `<manifestID>/<session>/<rendition>/<seq>.ts`, domain/segment.ts). Default: through
   * this gateway (`<rendition>/<seq>.ts`, relative to the playlist).
   */
  segmentBaseUrl?: string;
  /**
   * Thumbnails of source segments (media/thumbnail.ts `Thumbnails`): `get` reads the JPEG at
   * `thumbnailKey` or makes it from the segment at `segmentKey`; `undefined` when the segment
   * is gone; throws ThumbnailError. Absent: `thumbnail.jpg` answers 404.
   */
  thumbnails?: { get(segmentKey: string, thumbnailKey: string): Promise<Buffer | undefined> };
  /**
   * Kept replies of media and master playlists, dropped when the stream changes
   * (docs/architecture.md, "Playlist cache"). Absent: every request reads the index.
   */
  playlistCache?: PlaybackPlaylistCache;
}

/** The master playlist's name in the playlist cache (no rendition is named so: names are `[A-Za-z0-9_-]`). */
const MASTER_PLAYLIST = '.master';

/** The thumbnail's file name below `/stream/<manifestID>/`. */
export const THUMBNAIL_FILE = 'thumbnail.jpg';

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';

function setCommonHeaders(res: Response): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', 'Content-Length');
}

/**
 * Whether a request is a player's read below `/stream/` (GET or HEAD: playlists, segments,
 * thumbnails, and the AI result media the playback router passes on): the playback router's
 * hot path (a player polls each playlist every few seconds), which none of the routers
 * gateway-role.ts mounts before it serves, so they are passed over for it (http-app.ts
 * `skipping`).
 */
export function isPlaybackRead(req: { readonly method: string; readonly path: string }): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.path.startsWith('/stream/');
}

/** The playback router's route template (the HTTP metrics' route label of every playback request). */
export const PLAYBACK_ROUTE = '/stream/*path';

/** A playlist reply: the encoded body and its Cache-Control. */
export interface CachedReply {
  readonly body: Buffer;
  readonly cacheControl: string;
}

/**
 * Answers a playlist GET or HEAD in front of express: a kept reply from the cache, or (with
 * `readMedia`, {@link mediaPlaylistReader}) a media playlist read and rendered here. A
 * player's poll then costs Node's HTTP parsing, the read when the playlist changed, and one
 * write. Anything else goes to `fallback` (express) untouched: other paths, names the
 * playback router would refuse (a percent-encoded path included), a master playlist not
 * kept, a stream or rendition not found or withheld, a failed read. The request guard lets
 * every GET/HEAD below `/stream/` through (http/request-guard.ts), so none is skipped here.
 * `observe` times the response as the HTTP metrics middleware does, under `/stream/*path`.
 */
export function playlistHitHandler(options: {
  cache: Pick<PlaybackPlaylistCache, 'get'>;
  readMedia?: (manifestID: string, rendition: string) => Promise<CachedReply | undefined>;
  fallback: (req: IncomingMessage, res: ServerResponse) => void;
  observe?: (method: string, route: string, res: ServerResponse) => void;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { cache, readMedia, fallback, observe } = options;
  const send = (method: string, res: ServerResponse, reply: CachedReply): void => {
    observe?.(method, PLAYBACK_ROUTE, res);
    res.statusCode = 200;
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length');
    res.setHeader('Content-Type', PLAYLIST_TYPE);
    res.setHeader('Content-Length', String(reply.body.length));
    res.setHeader('Cache-Control', reply.cacheControl);
    res.end(reply.body);
  };
  return (req, res) => {
    const { method, url } = req;
    if ((method !== 'GET' && method !== 'HEAD') || url === undefined || !url.startsWith('/stream/') || url.includes('%')) return fallback(req, res);
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!path.endsWith('.m3u8')) return fallback(req, res);
    const parts = path.slice('/stream/'.length, -'.m3u8'.length).split('/');
    // Names as the playback router checks them (so `.master`, the master's cache name, is no rendition).
    if (parts.length > 2 || !parts.every(isValidStreamName)) return fallback(req, res);
    const kept = parts.length === 1 ? cache.get(parts[0]!, MASTER_PLAYLIST) : cache.get(parts[0]!, parts[1]!);
    if (kept !== undefined) return send(method, res, kept);
    if (parts.length === 1 || readMedia === undefined) return fallback(req, res);
    readMedia(parts[0]!, parts[1]!).then((reply) => {
      if (res.destroyed) return;
      if (reply === undefined) fallback(req, res);
      else send(method, res, reply);
    }, () => { if (!res.destroyed) fallback(req, res); });
  };
}

type MediaRead = NonNullable<Awaited<ReturnType<PlaybackIndex['streamWindow']>>>;

/**
 * A media playlist from the index's read of it: the reply (body and Cache-Control), or why
 * there is none (the 404 message: unknown rendition, or a source withheld by applyToSource).
 */
function mediaOutcome(options: PlaybackOptions, manifestID: string, rendition: string, read: MediaRead): { body: string; cacheControl: string } | { missing: string } {
  const { stream, window: w } = read;
  if (rendition !== SOURCE_RENDITION && !stream.renditions.some((r) => r.name === rendition)) return { missing: `stream ${manifestID} has no rendition ${rendition}` };
  const withheld = rendition === SOURCE_RENDITION ? withheldSourceMessage(manifestID, stream) : undefined;
  if (withheld !== undefined) return { missing: withheld };
  const first = w.segments[0];
  const uri = (seq: number): string => (options.segmentBaseUrl
    ? `${options.segmentBaseUrl}/${segmentKey(manifestID, stream.session, rendition, seq)}`
    : `${rendition}/${seq}.ts`);
  const body = renderMediaPlaylist({
    mediaSequence: w.stats.count - w.segments.length,
    discontinuitySequence: first ? first.discontinuityCount - (first.discontinuity ? 1 : 0) : 0,
    segments: w.segments.map((x) => ({ uri: uri(x.seq), durationMs: x.durationMs, discontinuity: x.discontinuity })),
    ended: w.complete,
    minTargetDurationS: Math.ceil(options.segmentTargetMs / 1000),
  });
  return { body, cacheControl: w.complete ? 'public, max-age=60' : 'no-cache' };
}

/**
 * Reads and renders a media playlist for the handler in front of express
 * ({@link playlistHitHandler}), keeping it in the cache as the playback router does.
 * @returns the reply, or undefined when the playback router must answer (no such stream or
 *   rendition, a withheld source: it renders the 404)
 * @throws what the index read throws (the caller hands the request to express then)
 */
export function mediaPlaylistReader(options: PlaybackOptions & { playlistCache: PlaybackPlaylistCache }): (manifestID: string, rendition: string) => Promise<CachedReply | undefined> {
  const cache = options.playlistCache;
  return async (manifestID, rendition) => {
    const token = cache.begin(manifestID);
    const read = await options.index.streamWindow(manifestID, rendition, options.windowSegments);
    if (!read) return undefined;
    const outcome = mediaOutcome(options, manifestID, rendition, read);
    if ('missing' in outcome) return undefined;
    const reply = { body: Buffer.from(outcome.body, 'utf8'), cacheControl: outcome.cacheControl };
    cache.put(token, rendition, reply);
    return reply;
  };
}

/** Player-facing routes; mount before any API validator (they are not in the OpenAPI spec). */
export function createPlaybackRouter(options: PlaybackOptions): Router {
  const { index, storage } = options;
  const router = Router();

  const notFound = (what: string, retryAfterS?: number): never => {
    throw new GatewayError('NOT_FOUND', what, retryAfterS === undefined ? {} : { retryAfterS });
  };

  /** 404 for the unmarked source of a stream whose watermark has applyToSource ({@link sourceWithheld}). */
  const refuseWithheldSource = (manifestID: string, stream: PlaybackStream): void => {
    const withheld = withheldSourceMessage(manifestID, stream);
    if (withheld !== undefined) notFound(withheld);
  };

  const cache = options.playlistCache;

  /** Answers from the cache when it holds `playlist`; true when it did. */
  const fromCache = (manifestID: string, playlist: string, res: Response): boolean => {
    const kept = cache?.get(manifestID, playlist);
    if (kept === undefined) return false;
    sendBytes(res, PLAYLIST_TYPE, kept.body, kept.cacheControl);
    return true;
  };

  /** Sends a rendered playlist and keeps it when no change of the stream came in since `token`. */
  const sendAndKeep = (res: Response, manifestID: string, playlist: string, token: object | undefined, body: string, cacheControl: string): void => {
    const bytes = Buffer.from(body, 'utf8');
    if (cache && token !== undefined) cache.put(token, playlist, { body: bytes, cacheControl });
    sendBytes(res, PLAYLIST_TYPE, bytes, cacheControl);
  };

  async function master(manifestID: string, res: Response): Promise<void> {
    if (fromCache(manifestID, MASTER_PLAYLIST, res)) return;
    const token = cache?.begin(manifestID);
    const stream = await index.getStream(manifestID);
    if (!stream) notFound(`stream ${manifestID} not found`);
    const source = await index.renditionStats(manifestID, SOURCE_RENDITION);
    const waitS = Math.ceil(options.segmentTargetMs / 1000);
    if (source.count === 0) notFound(`stream ${manifestID} has no segments yet; retry in ${waitS} s`, waitS);
    const sourceVariant = variant(`${manifestID}/${SOURCE_RENDITION}.m3u8`, source, undefined);
    const renditions: VariantStream[] = [];
    for (const plan of stream!.renditions) {
      const stats = await index.renditionStats(manifestID, plan.name);
      renditions.push(variant(`${manifestID}/${plan.name}.m3u8`, stats, plan));
    }
    // By bandwidth, highest first; a source fit for players first, never a rendition above it; a
    // source browsers cannot decode (10-bit H.264) or would show sideways (a rotation MPEG-TS
    // cannot carry) last, behind its playable copy (playlist-writer.ts orderMasterVariants).
    // A watermark with applyToSource: the marked copy of the source stands in for it; the
    // unmarked source is not listed at all.
    const variants = orderMasterVariants(sourceVariant, renditions, { sourceLast: sourceUnfitForPlayers(stream!.warnings), sourceHidden: sourceWithheld(stream!) });
    sendAndKeep(res, manifestID, MASTER_PLAYLIST, token, renderMasterPlaylist(variants), 'no-cache');
  }

  async function media(manifestID: string, rendition: string, res: Response): Promise<void> {
    if (fromCache(manifestID, rendition, res)) return;
    const token = cache?.begin(manifestID);
    const read = await index.streamWindow(manifestID, rendition, options.windowSegments);
    if (!read) notFound(`stream ${manifestID} not found`);
    const outcome = mediaOutcome(options, manifestID, rendition, read!);
    if ('missing' in outcome) notFound(outcome.missing);
    const reply = outcome as { body: string; cacheControl: string };
    sendAndKeep(res, manifestID, rendition, token, reply.body, reply.cacheControl);
  }

  async function segment(manifestID: string, rendition: string, seq: number, res: Response): Promise<void> {
    // Objects are stored per publish session (domain/segment.ts): a live URI names the current one.
    const stream = await index.getStream(manifestID);
    if (!stream) notFound(`stream ${manifestID} not found`);
    if (rendition === SOURCE_RENDITION) refuseWithheldSource(manifestID, stream!);
    const object = await storage.getStream(segmentKey(manifestID, stream!.session, rendition, seq));
    if (!object) notFound(`segment ${manifestID}/${rendition}/${seq}.ts not found`);
    setCommonHeaders(res);
    res.status(200);
    res.setHeader('Content-Type', 'video/mp2t');
    res.setHeader('Content-Length', String(object!.sizeBytes));
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    await streamObject(object!.stream, res);
  }

  /**
   * The latest listed source segment's first keyframe. Cached by players and CDNs for one
   * segment duration (`max-age`, whole seconds, at least 1) while live, when the next segment
   * replaces it; 60 s once ended. The ETag names the session and seq, so a revalidation
   * within the same segment is a 304 without reading the store.
   */
  async function thumbnail(manifestID: string, req: Request, res: Response): Promise<void> {
    if (!options.thumbnails) notFound(`thumbnails are disabled on this gateway (thumbnails.enabled)`);
    // The stream and the newest listed source segment, in one round trip.
    const found = await index.streamWindow(manifestID, SOURCE_RENDITION, 1);
    if (!found) notFound(`stream ${manifestID} not found`);
    const { stream, window: w } = found!;
    const waitS = Math.ceil(options.segmentTargetMs / 1000);
    const last = w.segments[w.segments.length - 1];
    if (w.stats.count === 0 || !last) notFound(`stream ${manifestID} has no segments yet; retry in ${waitS} s`, waitS);
    const noVideo = (): never => notFound(`stream ${manifestID} has no video: no thumbnail`);
    // An audio-only source measures 0x0 (the segment index's measurements).
    if (w.stats.width === 0 || w.stats.height === 0) noVideo();
    const etag = `"${stream.session}-${last!.seq}"`;
    const maxAgeS = stream.state === 'live' ? Math.max(1, Math.floor(last!.durationMs / 1000)) : 60;
    res.setHeader('Cache-Control', `public, max-age=${maxAgeS}`);
    res.setHeader('ETag', etag);
    // express's req.fresh: If-None-Match (lists, weak tags) against the ETag set above (RFC 9110 §13.1.2).
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    let jpeg: Buffer | undefined;
    try {
      jpeg = await options.thumbnails!.get(segmentKey(manifestID, stream.session, SOURCE_RENDITION, last!.seq), thumbnailKey(manifestID, stream.session, last!.seq));
    } catch (err) {
      res.removeHeader('Cache-Control');
      res.removeHeader('ETag');
      if (err instanceof ThumbnailError && err.reason === 'no-video') noVideo();
      if (err instanceof ThumbnailError) throw new GatewayError('TRANSCODE_FAILED', `cannot decode the keyframe of ${manifestID}/source/${last!.seq}.ts`, { cause: err });
      throw err;
    }
    if (!jpeg) {
      res.removeHeader('Cache-Control');
      res.removeHeader('ETag');
      notFound(`segment ${manifestID}/source/${last!.seq}.ts is gone; retry in 1 s`, 1);
    }
    res.status(200);
    res.setHeader('Content-Type', 'image/jpeg');
    res.setHeader('Content-Length', String(jpeg!.length));
    res.end(jpeg);
  }

  router.options('/stream/*path', (_req: Request, res: Response) => {
    setCommonHeaders(res);
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Range');
    res.status(204).end();
  });

  router.get(PLAYBACK_ROUTE, async (req: Request, res: Response, next: NextFunction) => {
    const parts = (req.params as { path: string[] }).path;
    if (parts.length === 2 && parts[1] === THUMBNAIL_FILE) {
      setCommonHeaders(res);
      if (!isValidStreamName(parts[0])) throw new GatewayError('INVALID_NAME', `invalid thumbnail path: expected /stream/<manifestID>/${THUMBNAIL_FILE}`);
      return thumbnail(parts[0]!, req, res);
    }
    // `/stream/<id>/<file>` that is not a playlist belongs to hosted AI results (`<n>.<ext>`).
    if (parts.length === 2 && !parts[1]!.endsWith('.m3u8')) {
      next();
      return;
    }
    setCommonHeaders(res);
    const bad = (): never => {
      throw new GatewayError('INVALID_NAME', 'invalid playback path: expected /stream/<manifestID>.m3u8, /stream/<manifestID>/<rendition>.m3u8 or /stream/<manifestID>/<rendition>/<seq>.ts');
    };
    if (parts.length === 1) {
      const m = /^(.+)\.m3u8$/.exec(parts[0]!);
      if (!m || !isValidStreamName(m[1])) bad();
      return master(m![1]!, res);
    }
    if (parts.length === 2) {
      const m = /^(.+)\.m3u8$/.exec(parts[1]!);
      if (!m || !isValidStreamName(parts[0]) || !isValidStreamName(m[1])) bad();
      return media(parts[0]!, m![1]!, res);
    }
    if (parts.length === 3) {
      const m = /^(.+)\.ts$/.exec(parts[2]!);
      const seq = m ? parseSeq(m[1]!) : undefined;
      if (seq === undefined || !isValidStreamName(parts[0]) || !isValidStreamName(parts[1])) bad();
      return segment(parts[0]!, parts[1]!, seq!, res);
    }
    bad();
  });

  return router;
}

function variant(uri: string, stats: PlaybackRenditionStats, plan: PlaybackStream['renditions'][number] | undefined): VariantStream {
  const measured = stats.count > 0;
  const width = measured ? stats.width : plan?.width ?? 0;
  const height = measured ? stats.height : plan?.height ?? 0;
  return {
    uri,
    bandwidthBps: measured ? Math.max(stats.peakBps, 1) : Math.round((plan?.bitrateBps ?? 0) * 1.1) + 128_000,
    ...(measured ? { averageBandwidthBps: Math.max(stats.averageBps, 1) } : {}),
    // An audio-only source measures 0x0: no RESOLUTION.
    ...(width > 0 && height > 0 ? { width, height } : {}),
    ...(stats.codecs ? { codecs: stats.codecs } : {}),
    ...(measured && stats.frameRate > 0 ? { frameRate: stats.frameRate } : {}),
  };
}

function sendBytes(res: Response, type: string, bytes: Buffer, cacheControl: string): void {
  res.status(200);
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', String(bytes.length));
  res.setHeader('Cache-Control', cacheControl);
  res.end(bytes);
}

/**
 * Streams a stored object to the response. A failure after the headers went out (the store
 * broke off, the player left) ends the response and releases the store's stream and connection
 * (`pipeline` destroys both sides); nothing else can be sent then.
 */
async function streamObject(stream: Readable, res: Response): Promise<void> {
  try {
    await pipeline(stream, res);
  } catch {
    res.destroy();
  }
}

/** The 404 message for the unmarked source of a stream whose watermark has applyToSource ({@link sourceWithheld}); undefined when it is served. */
function withheldSourceMessage(manifestID: string, stream: Pick<PlaybackStream, 'renditions'>): string | undefined {
  const copy = stream.renditions.find((r) => r.replacesSource === true);
  return copy && `the source of stream ${manifestID} is not served to players: its watermark has applyToSource; play its marked copy, rendition ${copy.name}`;
}

/**
 * Whether the stream's unmarked `source` is withheld from players: its watermark has
 * `applyToSource` and its plan names the marked copy (domain/profile.ts `RenditionPlan.replacesSource`).
 * Internal readers (outputs, thumbnails, recordings) read the source from the store, not from here.
 */
export function sourceWithheld(stream: Pick<PlaybackStream, 'renditions'>): boolean {
  return stream.renditions.some((r) => r.replacesSource === true);
}
