/**
 * The control API (openapi/control.yaml): list streams with their renditions and health,
 * inspect one, stop one, read the active profiles. Requests and responses are validated
 * against the spec by express-openapi-validator, so the spec cannot drift from the code.
 * Protected by `http.adminToken` (Bearer), required when the gateway binds a public address.
 */
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import { specValidator } from '../http/scoped-validator.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { adminGuard } from '../http/admin-guard.ts';
import { PRESETS, type RenditionPlan, type StreamProtocol, type VideoProfile } from '../domain/profile.ts';
import { SOURCE_RENDITION } from '../domain/segment.ts';
import type { SourceWarning } from '../domain/source-lint.ts';

export const CONTROL_SPEC_PATH = fileURLToPath(new URL('../../openapi/control.yaml', import.meta.url));

/** What the control API needs from the segment index. */
export interface ControlIndex {
  listStreams(limit: number): Promise<string[]>;
  getStream(manifestID: string): Promise<{
    state: 'live' | 'ended'; protocol: StreamProtocol; startedAtMs: number; endedAtMs?: number; renditions: readonly RenditionPlan[];
    /** The source lint's findings (domain/source-lint.ts). */
    warnings: readonly SourceWarning[];
  } | undefined>;
  renditionStats(manifestID: string, rendition: string): Promise<{
    count: number; failed: number; width: number; height: number; averageBps: number; lastListedAtMs: number;
  }>;
}

export interface ControlRoutesOptions {
  index: ControlIndex;
  /** Asks whichever gateway holds the stream to stop it. */
  requestStop(manifestID: string): Promise<void>;
  defaultLadder: readonly VideoProfile[];
  publicUrl: string;
  /** Bearer token; '' = none configured. */
  adminToken: string;
  /** Whether the gateway binds only loopback (then no token is required). */
  loopbackOnly: boolean;
}

/** Livepeer JSON profile form of a profile (docs/wire-contract.md §3). */
function profileJson(p: VideoProfile): Record<string, unknown> {
  return {
    name: p.name, width: p.width, height: p.height, bitrate: p.bitrateBps, fps: p.fps, fpsDen: p.fpsDen,
    ...(p.profile ? { profile: `h264${p.profile}` } : {}),
    ...(p.gop.kind === 'intra' ? { gop: 'intra' } : p.gop.kind === 'seconds' ? { gop: String(p.gop.seconds) } : {}),
    encoder: p.encoder, ...(p.quality ? { quality: p.quality } : {}),
  };
}

export function createControlRouter(options: ControlRoutesOptions): Router {
  const router = Router();
  const { index } = options;

  const paths = ['/api/streams', '/api/profiles'];
  router.use(paths, adminGuard({ adminToken: options.adminToken, loopbackOnly: options.loopbackOnly, apiName: 'control API' }));
  router.use(paths, express.json({ limit: '64kb' }));
  const isControlPath = (path: string): boolean => path.startsWith('/api/streams') || path.startsWith('/api/profiles');
  router.use(specValidator(CONTROL_SPEC_PATH, isControlPath, {
    validateRequests: { allowUnknownQueryParameters: false },
    validateResponses: true,
  }));

  async function describe(manifestID: string, now: number): Promise<Record<string, unknown> | undefined> {
    const stream = await index.getStream(manifestID);
    if (!stream) return undefined;
    const names = [SOURCE_RENDITION, ...stream.renditions.map((r) => r.name)];
    const stats = await Promise.all(names.map((n) => index.renditionStats(manifestID, n)));
    const source = stats[0]!;
    return {
      manifestID,
      state: stream.state,
      protocol: stream.protocol,
      startedAt: new Date(stream.startedAtMs).toISOString(),
      ...(stream.endedAtMs ? { endedAt: new Date(stream.endedAtMs).toISOString() } : {}),
      segments: source.count,
      ingestBitrateBps: source.averageBps,
      ...(source.lastListedAtMs > 0 ? { lastSegmentAgeMs: Math.max(0, now - source.lastListedAtMs) } : {}),
      renditions: names.map((name, i) => ({
        name, width: stats[i]!.width, height: stats[i]!.height, segments: stats[i]!.count, failedSegments: stats[i]!.failed,
        bitrateBps: stats[i]!.averageBps, playlistUrl: `${options.publicUrl}/stream/${manifestID}/${name}.m3u8`,
      })),
      playbackUrl: `${options.publicUrl}/stream/${manifestID}.m3u8`,
      warnings: stream.warnings.map((w) => ({ code: w.code, msg: w.msg })),
    };
  }

  router.get('/api/streams', async (req: Request, res: Response) => {
    const state = (req.query['state'] as string | undefined) ?? 'live';
    const limit = Number(req.query['limit'] ?? 100);
    const now = Date.now();
    const ids = await index.listStreams(state === 'live' ? 1000 : limit);
    const streams = [];
    for (const id of ids) {
      const s = await describe(id, now);
      if (s && (state === 'all' || s['state'] === state)) streams.push(s);
      if (streams.length >= limit) break;
    }
    res.json({ streams });
  });

  router.get('/api/streams/:manifestID', async (req: Request, res: Response) => {
    const id = String(req.params['manifestID']);
    const s = await describe(id, Date.now());
    if (!s) throw new GatewayError('NOT_FOUND', `stream ${id} not found`);
    res.json(s);
  });

  router.delete('/api/streams/:manifestID', async (req: Request, res: Response) => {
    const id = String(req.params['manifestID']);
    const stream = await index.getStream(id);
    if (!stream) throw new GatewayError('NOT_FOUND', `stream ${id} not found`);
    if (stream.state !== 'live') throw new GatewayError('STREAM_BUSY', `stream ${id} already ended`);
    await options.requestStop(id);
    res.status(202).json({ manifestID: id, stopping: true });
  });

  router.get('/api/profiles', (_req: Request, res: Response) => {
    res.json({ defaultLadder: options.defaultLadder.map(profileJson), presets: Object.values(PRESETS).map(profileJson) });
  });

  return router;
}
