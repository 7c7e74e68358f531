/**
 * `GET /api/cluster` (openapi/control.yaml, operation `getCluster`): the deployment's
 * gateways and transcoders from the heartbeat records in Redis (cluster-member-store.ts) and
 * the AI workers from the AI worker registry, through the ports below. Admin-guarded like the
 * rest of the control API (http/admin-guard.ts); the response is validated against the spec.
 */
import { Router, type Request, type Response } from 'express';
import { fileURLToPath } from 'node:url';
import { specValidator } from '../http/scoped-validator.ts';
import { adminGuard } from '../http/admin-guard.ts';
import type { ClusterMembers, GatewayRecord, TranscoderRecord } from './cluster-member-store.ts';

const CONTROL_SPEC_PATH = fileURLToPath(new URL('../../openapi/control.yaml', import.meta.url));
const CLUSTER_PATH = '/api/cluster';

/** The member listing (`RedisClusterMembers`). */
export interface ClusterMemberReader {
  list(): Promise<ClusterMembers>;
}

/** An AI worker as the worker registry lists it (ai/worker-registry.ts `WorkerView` fits). */
export interface AiWorkerEntry {
  readonly id: string;
  readonly url: string;
  readonly pipelines: readonly { readonly pipeline: string; readonly model_id: string; readonly warm: boolean; readonly capacity: number; readonly inFlight?: number }[];
  readonly healthy: boolean;
  readonly status: string;
  readonly suspendedUntil?: string;
}

/** The AI worker pool the gateway routes to (e.g. `() => registry.list()`); sync or async. */
export type AiWorkerLister = () => Iterable<AiWorkerEntry> | Promise<Iterable<AiWorkerEntry>>;

export interface ClusterRoutesOptions {
  members: ClusterMemberReader;
  aiWorkers: AiWorkerLister;
  /** Bearer token; '' = none configured. */
  adminToken: string;
  /** Whether the gateway binds only loopback (then no token is required). */
  loopbackOnly: boolean;
  /** Clock, epoch ms (tests); default `Date.now`. */
  now?: () => number;
}

function since(now: number, ms: number): number {
  return Math.max(0, Math.round(now - ms));
}

function common(r: GatewayRecord | TranscoderRecord, now: number): Record<string, unknown> {
  return {
    id: r.id, version: r.version, startedAt: new Date(r.startedAtMs).toISOString(),
    uptimeS: Math.floor(since(now, r.startedAtMs) / 1000), heartbeatAgeMs: since(now, r.heartbeatAtMs),
  };
}

/** `n` when a non-negative finite number, else 0 (a record from another version may lack a field). */
function count(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}

export function createClusterRouter(options: ClusterRoutesOptions): Router {
  const router = Router();
  const now = options.now ?? Date.now;
  router.use(CLUSTER_PATH, adminGuard({ adminToken: options.adminToken, loopbackOnly: options.loopbackOnly, apiName: 'control API' }));
  const covers = (path: string): boolean => path === CLUSTER_PATH;
  router.use(specValidator(CONTROL_SPEC_PATH, covers, {
    validateRequests: { allowUnknownQueryParameters: false },
    validateResponses: true,
  }));

  router.get(CLUSTER_PATH, async (_req: Request, res: Response) => {
    const [members, workers] = await Promise.all([options.members.list(), options.aiWorkers()]);
    const at = now();
    res.json({
      generatedAt: new Date(at).toISOString(),
      gateways: members.gateways.map((g) => ({
        ...common(g, at), address: g.address, ...(g.rtmpAddress ? { rtmpAddress: g.rtmpAddress } : {}), streams: count(g.streams),
      })),
      transcoders: members.transcoders.map((t) => ({
        ...common(t, at), ...(t.address ? { address: t.address } : {}), embedded: t.embedded === true,
        slots: count(t.slots), inFlight: count(t.inFlight), liveSessions: count(t.liveSessions), jobs: count(t.jobs), load: count(t.load),
      })),
      aiWorkers: [...workers].map((w) => {
        const pipelines = w.pipelines.map((p) => ({
          pipeline: p.pipeline, model_id: p.model_id, warm: p.warm, capacity: count(p.capacity), ...(p.inFlight !== undefined ? { inFlight: count(p.inFlight) } : {}),
        }));
        return {
          id: w.id, url: w.url, pipelines,
          capacity: pipelines.reduce((sum, p) => sum + p.capacity, 0),
          inFlight: pipelines.reduce((sum, p) => sum + (p.inFlight ?? 0), 0),
          healthy: w.healthy, status: w.status, ...(w.suspendedUntil ? { suspendedUntil: w.suspendedUntil } : {}),
        };
      }),
    });
  });
  return router;
}
