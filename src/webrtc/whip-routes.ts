/**
 * WHIP routes (RFC 9725, docs/wire-contract.md "WHIP ingest"):
 *
 * - `POST /whip/<streamKey>`, or `POST /whip` with `Authorization: Bearer <streamKey>` (as
 *   OBS sends it): the body is the SDP offer, `Content-Type: application/sdp`. `201 Created`
 *   with the SDP answer, `Location: /whip/sessions/<id>` (the session resource) and `ETag`.
 * - `PATCH /whip/sessions/<id>` with `application/trickle-ice-sdpfrag` (RFC 8840): more ICE
 *   candidates of the publisher; `204` with the session's new `ETag` (ICE restarts are not
 *   supported: `If-Match` is not checked).
 * - `DELETE /whip/sessions/<id>`: ends the publish; `200`.
 *
 * Errors, in the order they are checked, all before any ICE: 415 `UNSUPPORTED_MEDIA_TYPE`
 * (another content type), 401 `UNAUTHORIZED` (no stream key), 400 `INVALID_REQUEST` (not an
 * SDP offer, or no codec taken here), 503 `TOO_MANY_PUBLISHERS` (`webrtc.whipMaxSessions`
 * sessions open), then the admission's 400/402/403/409; 404 `NOT_FOUND`
 * for an unknown session. Every error body is `{"detail":{"msg","code"}}`.
 */
import express, { Router, type Request, type Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';
import { MAX_OFFER_BYTES } from './whip-sdp.ts';
import type { WhipSessions } from './whip-sessions.ts';

export interface WhipRoutesOptions {
  readonly sessions: Pick<WhipSessions, 'create' | 'addCandidates' | 'etag' | 'end'>;
  /** The gateway's public base URL (the WHIP URL given to the auth webhook). */
  readonly publicUrl: string;
}

const SDP = 'application/sdp';
const SDP_FRAG = 'application/trickle-ice-sdpfrag';

/** The routes above, as an express router. */
export function createWhipRouter(options: WhipRoutesOptions): Router {
  const router = Router();
  const needs = (type: string) => (req: Request, _res: Response, next: (err?: unknown) => void): void => {
    if (req.is(type) !== type) {
      next(new GatewayError('UNSUPPORTED_MEDIA_TYPE', `expected Content-Type: ${type} (RFC 9725), got ${req.header('content-type') ?? 'none'}`));
      return;
    }
    next();
  };
  const text = (type: string) => express.text({ type, limit: MAX_OFFER_BYTES });

  const create = async (req: Request, res: Response): Promise<void> => {
    const fromPath = typeof req.params['streamKey'] === 'string' ? req.params['streamKey'] : undefined;
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.header('authorization') ?? '')?.[1];
    const streamKey = fromPath ?? bearer;
    if (!streamKey) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new GatewayError('UNAUTHORIZED', 'no stream key: POST /whip/<streamKey>, or send Authorization: Bearer <streamKey>');
    }
    const offer = typeof req.body === 'string' ? req.body : '';
    const created = await options.sessions.create(streamKey, offer, `${options.publicUrl}/whip/${streamKey}`);
    res.status(201)
      .setHeader('Content-Type', SDP)
      .setHeader('Location', `/whip/sessions/${created.id}`)
      .setHeader('ETag', created.etag)
      // end(), not send(): send() would add `; charset=utf-8`, which SDP does not take (RFC 8866 §5).
      .end(created.answer);
  };
  router.post('/whip', needs(SDP), text(SDP), create);
  router.post('/whip/:streamKey', needs(SDP), text(SDP), create);

  router.patch('/whip/sessions/:id', needs(SDP_FRAG), text(SDP_FRAG), (req: Request, res: Response) => {
    const id = String(req.params['id']);
    options.sessions.addCandidates(id, typeof req.body === 'string' ? req.body : '');
    res.status(204).setHeader('ETag', options.sessions.etag(id)).end();
  });

  router.delete('/whip/sessions/:id', async (req: Request, res: Response) => {
    await options.sessions.end(String(req.params['id']));
    res.status(200).end();
  });
  return router;
}
