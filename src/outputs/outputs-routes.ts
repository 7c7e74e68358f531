/**
 * The restream outputs API (openapi/control.yaml, docs/wire-contract.md "Restream outputs"):
 * `GET|POST /api/streams/<manifestID>/outputs`, `DELETE /api/streams/<manifestID>/outputs/<id>`.
 * Admin auth as the control API; requests and replies are validated against the control
 * spec by the control router's validator, which this router is mounted after. Any gateway
 * answers: the desired outputs are in Redis and the gateway holding the stream is told of a
 * change (`changed`), which it applies within a second. Target URLs are redacted in every reply.
 */
import express, { Router, type Request, type Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';
import { adminGuard } from '../http/admin-guard.ts';
import { checkOutputUrl, checkRenditionName, redactOutputUrl } from '../domain/output-target.ts';
import { SOURCE_RENDITION } from '../domain/segment.ts';
import { newOutputId } from './output-manager.ts';
import type { OutputSpec, OutputStatus } from './output-types.ts';
import type { OutputsStore, OutputsStreamIndex } from './outputs-ports.ts';

export interface OutputsRoutesOptions {
  readonly index: OutputsStreamIndex;
  readonly store: OutputsStore;
  /** `outputs.maxPerStream`. */
  readonly maxPerStream: number;
  /** Tells the gateway holding `manifestID` (wherever it is) that its outputs changed. */
  readonly changed: (manifestID: string) => Promise<void>;
  /** Bearer token; '' = none configured. */
  readonly adminToken: string;
  /** Whether the gateway binds only loopback (then no token is required). */
  readonly loopbackOnly: boolean;
}

/** An output as the API shows it (openapi/control.yaml `Output`). */
export function outputJson(spec: OutputSpec, status: OutputStatus | undefined, nowMs = Date.now()): Record<string, unknown> {
  const state = status?.state ?? 'connecting';
  return {
    id: spec.id,
    url: redactOutputUrl(spec.url),
    rendition: spec.rendition,
    state,
    ...(status?.reason !== undefined ? { reason: status.reason } : {}),
    bytesSent: status?.bytesSent ?? 0,
    uptimeSeconds: state === 'live' && status?.liveSinceMs !== undefined ? Math.max(0, Math.round((nowMs - status.liveSinceMs) / 100) / 10) : 0,
    createdAt: new Date(spec.createdAtMs).toISOString(),
  };
}

export function createOutputsRouter(options: OutputsRoutesOptions): Router {
  const router = Router();
  const { index, store } = options;
  const path = '/api/streams/:manifestID/outputs';
  router.use(path, adminGuard({ adminToken: options.adminToken, loopbackOnly: options.loopbackOnly, apiName: 'control API' }));
  router.use(path, express.json({ limit: '16kb' }));

  router.get(path, async (req: Request, res: Response) => {
    const manifestID = String(req.params['manifestID']);
    const now = Date.now();
    res.json({ outputs: (await store.list(manifestID)).map((o) => outputJson(o.spec, o.status, now)) });
  });

  router.post(path, async (req: Request, res: Response) => {
    const manifestID = String(req.params['manifestID']);
    const body = (req.body ?? {}) as { url?: unknown; rendition?: unknown };
    checkOutputUrl(body.url);
    const rendition = checkRenditionName(body.rendition);
    const stream = await index.getStream(manifestID);
    if (!stream || stream.state !== 'live') {
      throw new GatewayError('STREAM_NOT_LIVE', `stream ${manifestID} is not live: outputs are added to a live stream (configure outputs.defaults or a stream key's outputs to start them with every stream)`);
    }
    const renditions = [SOURCE_RENDITION, ...stream.renditions.map((r) => r.name)];
    if (!renditions.includes(rendition)) {
      throw new GatewayError('UNKNOWN_RENDITION', `stream ${manifestID} has no rendition ${JSON.stringify(rendition)}; it has ${renditions.join(', ')}`);
    }
    const spec: OutputSpec = { id: newOutputId(), url: body.url as string, rendition, createdAtMs: Date.now(), origin: 'api' };
    if (options.maxPerStream === 0 || !(await store.add(manifestID, spec, options.maxPerStream))) {
      throw new GatewayError('TOO_MANY_OUTPUTS', `stream ${manifestID} has ${options.maxPerStream} outputs already (outputs.maxPerStream); remove one first`);
    }
    await options.changed(manifestID);
    res.status(201).json(outputJson(spec, undefined));
  });

  router.delete(`${path}/:outputId`, async (req: Request, res: Response) => {
    const manifestID = String(req.params['manifestID']);
    const id = String(req.params['outputId']);
    if (!(await store.remove(manifestID, id))) throw new GatewayError('NOT_FOUND', `stream ${manifestID} has no output ${id}`);
    await options.changed(manifestID);
    res.status(204).end();
  });

  return router;
}
