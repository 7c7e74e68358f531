/**
 * The live video-to-video routes (openapi/ai.yaml, docs/wire-contract.md "Live
 * video-to-video"):
 *
 * - `POST /live/video-to-video/{stream}/start`: Livepeer's form (multipart or URL-encoded:
 *   `source_id`, `source_type`, `query`, `rtmp_url`), answered with an empty 200 once the
 *   first worker is set up or has failed (the failure is then in the status); or mediagate's
 *   JSON body `{"model_id", "params"}`, answered 200 with the session or with the error.
 * - `POST /live/video-to-video/{stream}/update`: the raw JSON params; 404 without a session.
 * - `GET /live/video-to-video/{stream}/status`: the worker's last status event plus
 *   `gateway_status`; 404 without a session (running, or ended within a minute).
 *
 * Every route takes the AI API's bearer API key (ai-routes.ts's authorizer): a MediaMTX
 * `runOnReady` hook sends it as `Authorization: Bearer <key>` in its curl command. The
 * start's API-key account pays for the session; without one, the input stream's account.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { GatewayError } from '../../errors/gateway-error.ts';
import { setRouteTemplate } from '../../http/response-outcome.ts';
import type { AiCaller, AiRequestAuthorizer } from '../api-key-authorizers.ts';
import { MAX_PARAMS_BYTES, parseStartForm, parseStartJson, parseUpdateBody } from './live-start-request.ts';
import type { LiveSessions } from './live-sessions.ts';

export interface LiveRoutesOptions {
  readonly sessions: LiveSessions;
  readonly authorizer: AiRequestAuthorizer;
  /** The gateway's public base URL, for the `-out` stream's playlist URL in the JSON answer. */
  readonly publicUrl: string;
}

const BASE = '/live/video-to-video/:stream';
const TEMPLATE = '/live/video-to-video/{stream}';

function bearer(req: Request): string | undefined {
  return /^Bearer (.+)$/i.exec(req.header('authorization') ?? '')?.[1];
}

/** Whether a request is one of these routes (the push router, which takes `/live/*`, passes them over). */
export function isLiveVideoPath(path: string): boolean {
  return /^\/live\/video-to-video\/[^/]+\/(start|update|status)$/.test(path);
}

export function createLiveRouter(options: LiveRoutesOptions): Router {
  const router = Router();
  const caller = (req: Request): AiCaller => (req as Request & { liveCaller?: AiCaller }).liveCaller!;

  for (const action of ['start', 'update', 'status'] as const) {
    router.all(`${BASE}/${action}`, (req: Request, res: Response, next: NextFunction) => {
      setRouteTemplate(res, `${TEMPLATE}/${action}`);
      const method = action === 'status' ? 'GET' : 'POST';
      if (req.method !== method) {
        res.setHeader('Allow', method);
        throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${action}; use ${method}`);
      }
      // The API key first, so an unauthenticated caller learns nothing else.
      options.authorizer.authorize(bearer(req)).then((c) => {
        (req as Request & { liveCaller?: AiCaller }).liveCaller = c;
        next();
      }, next);
    });
  }

  const form = multer({ limits: { files: 0, fields: 16, parts: 16, fieldSize: 64 * 1024 } }).none();
  router.post(`${BASE}/start`, (req: Request, res: Response, next: NextFunction) => {
    if (req.is('multipart/form-data')) form(req, res, (err?: unknown) => next(err && (err as { name?: string }).name === 'MulterError'
      ? new GatewayError('INVALID_REQUEST', `form: ${(err as Error).message}`) : err));
    else next();
  }, express.urlencoded({ extended: false, limit: '128kb' }), express.json({ limit: '128kb' }), async (req: Request, res: Response) => {
    const stream = String(req.params['stream']);
    const type = req.is(['multipart/form-data', 'application/x-www-form-urlencoded', 'application/json']);
    if (type === false) throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'start takes application/json, multipart/form-data or application/x-www-form-urlencoded');
    const isForm = type === 'multipart/form-data' || type === 'application/x-www-form-urlencoded';
    const request = isForm ? parseStartForm((req.body ?? {}) as Record<string, unknown>) : parseStartJson(req.body);
    if (request.form) {
      try {
        await options.sessions.start(stream, request, caller(req));
      } catch (err) {
        // Livepeer answers its form with an empty 200 once the first worker is set up or failed;
        // a refused request (bad input, auth, balance, stream) is still an error.
        if (!(err instanceof GatewayError && (err.code === 'NO_WORKER' || err.code === 'WORKER_FAILED' || err.code === 'WORKER_BAD_RESULT'))) throw err;
      }
      res.status(200).end();
      return;
    }
    const session = await options.sessions.start(stream, request, caller(req));
    const status = session!.status()['gateway_status'] as Record<string, unknown>;
    res.status(200).json({
      request_id: status['request_id'], stream, model_id: status['model_id'], output_stream: status['output_stream'],
      hls_url: `${options.publicUrl}/stream/${String(status['output_stream'])}.m3u8`,
      state: status['state'],
    });
  });

  router.post(`${BASE}/update`, express.raw({ type: () => true, limit: MAX_PARAMS_BYTES }), async (req: Request, res: Response) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    await options.sessions.update(String(req.params['stream']), parseUpdateBody(body));
    res.status(200).end();
  });

  router.get(`${BASE}/status`, (req: Request, res: Response) => {
    res.status(200).json(options.sessions.status(String(req.params['stream'])));
  });

  return router;
}
