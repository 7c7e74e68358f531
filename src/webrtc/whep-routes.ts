/**
 * WHEP routes (the egress counterpart of WHIP, RFC 9725; draft-ietf-wish-whep;
 * docs/wire-contract.md "WHEP playback"):
 *
 * - `POST /whep/<manifestID>` with the viewer's SDP offer (`Content-Type: application/sdp`):
 *   `201 Created`, the SDP answer (all of the gateway's candidates in it), `Location:
 *   /whep/sessions/<id>` (the session resource).
 * - `DELETE /whep/sessions/<id>`: ends the viewer; `200`.
 * - `PATCH /whep/sessions/<id>`: `405` (no trickle ICE: the answer carries every candidate,
 *   and the viewer's offer is expected to carry its own, as RFC 9725 §4.3.1 allows).
 *
 * Errors: 415 `UNSUPPORTED_MEDIA_TYPE` (another content type), 400 `INVALID_REQUEST` (not an
 * SDP offer, or no H.264 receive section), 404 `STREAM_NOT_LIVE`, 503 `TOO_MANY_VIEWERS` with
 * `Retry-After` (a viewer limit), 404 `NOT_FOUND` for an unknown session. Every error body is
 * `{"detail":{"msg","code"}}`.
 */
import express, { Router, type Request, type Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';
import { MAX_OFFER_BYTES } from './whip-sdp.ts';
import type { WhepSessions } from './whep-sessions.ts';

export interface WhepRoutesOptions {
  readonly sessions: Pick<WhepSessions, 'create' | 'delete'>;
}

const SDP = 'application/sdp';

/** The routes above, as an express router. */
export function createWhepRouter(options: WhepRoutesOptions): Router {
  const router = Router();
  router.post('/whep/:manifestID', (req: Request, _res: Response, next: (err?: unknown) => void) => {
    if (req.is(SDP) !== SDP) {
      next(new GatewayError('UNSUPPORTED_MEDIA_TYPE', `expected Content-Type: ${SDP} (an SDP offer), got ${req.header('content-type') ?? 'none'}`));
      return;
    }
    next();
  }, express.text({ type: SDP, limit: MAX_OFFER_BYTES }), async (req: Request, res: Response) => {
    const offer = typeof req.body === 'string' ? req.body : '';
    const created = await options.sessions.create(String(req.params['manifestID']), offer);
    res.status(201)
      .setHeader('Content-Type', SDP)
      .setHeader('Location', `/whep/sessions/${created.id}`)
      // end(), not send(): send() would add `; charset=utf-8`, which SDP does not take (RFC 8866 §5).
      .end(created.answer);
  });
  router.patch('/whep/sessions/:id', (_req: Request, res: Response) => {
    res.setHeader('Allow', 'DELETE');
    throw new GatewayError('METHOD_NOT_ALLOWED', 'WHEP sessions take no trickle ICE: the answer carries every candidate of the gateway');
  });
  router.delete('/whep/sessions/:id', (req: Request, res: Response) => {
    if (!options.sessions.delete(String(req.params['id']))) throw new GatewayError('NOT_FOUND', 'no such WHEP session');
    res.status(200).end();
  });
  return router;
}
