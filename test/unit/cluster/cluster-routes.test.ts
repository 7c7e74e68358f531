/**
 * `GET /api/cluster` (cluster/cluster-routes.ts) over real HTTP on 127.0.0.1 with stand-in
 * ports: the answer is validated against openapi/control.yaml, an AI worker registry that
 * lists asynchronously works as well as one that lists synchronously, and the admin rule of
 * the control API applies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { createClusterRouter, type AiWorkerEntry, type ClusterRoutesOptions } from '../../../src/cluster/cluster-routes.ts';
import type { ClusterMembers } from '../../../src/cluster/cluster-member-store.ts';

const NOW = Date.parse('2026-12-05T12:00:00.000Z');

const MEMBERS: ClusterMembers = {
  gateways: [{ kind: 'gateway', id: 'g-1-aaaa', version: '0.1.0', startedAtMs: NOW - 90_500, heartbeatAtMs: NOW - 250, address: 'http://10.0.0.1:9935', streams: 2 }],
  transcoders: [
    { kind: 'transcoder', id: 't-2-bbbb', version: '0.1.0', startedAtMs: NOW - 10_000, heartbeatAtMs: NOW - 100, embedded: false, slots: 4, inFlight: 3, liveSessions: 2, jobs: 1, load: 0.42 },
    // A record written by another version that lacks some figures.
    { kind: 'transcoder', id: 't-3-cccc', version: '0.0.9', startedAtMs: NOW - 5_000, heartbeatAtMs: NOW - 100 } as never,
  ],
};

const WORKER: AiWorkerEntry = {
  id: 'w-1', url: 'http://10.0.0.9:8000', healthy: true, status: 'OK',
  pipelines: [{ pipeline: 'upscale', model_id: 'a/b', warm: true, capacity: 2, inFlight: 1 }, { pipeline: 'text-to-image', model_id: 'c/d', warm: false, capacity: 1 }],
};

async function serve(options: Partial<ClusterRoutesOptions>): Promise<{ url: string; close(): Promise<void> }> {
  const router = createClusterRouter({
    members: { list: async () => MEMBERS }, aiWorkers: () => [WORKER], adminToken: '', loopbackOnly: true, now: () => NOW, ...options,
  });
  const app = createHttpApp({ logger: silentLogger(), routers: [router], health: async () => ({ status: 'ok', checks: {} }) });
  const server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

test('the view answers each member with its uptime, heartbeat age and figures, and AI workers with summed capacity', async () => {
  // An async lister, as a registry kept in Redis would be.
  const s = await serve({ aiWorkers: async () => [WORKER] });
  try {
    const res = await fetch(`${s.url}/api/cluster`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      generatedAt: '2026-12-05T12:00:00.000Z',
      gateways: [{ id: 'g-1-aaaa', version: '0.1.0', startedAt: new Date(NOW - 90_500).toISOString(), uptimeS: 90, heartbeatAgeMs: 250, address: 'http://10.0.0.1:9935', streams: 2 }],
      transcoders: [
        { id: 't-2-bbbb', version: '0.1.0', startedAt: new Date(NOW - 10_000).toISOString(), uptimeS: 10, heartbeatAgeMs: 100, embedded: false, slots: 4, inFlight: 3, liveSessions: 2, jobs: 1, load: 0.42 },
        { id: 't-3-cccc', version: '0.0.9', startedAt: new Date(NOW - 5_000).toISOString(), uptimeS: 5, heartbeatAgeMs: 100, embedded: false, slots: 0, inFlight: 0, liveSessions: 0, jobs: 0, load: 0 },
      ],
      aiWorkers: [{
        id: 'w-1', url: 'http://10.0.0.9:8000', healthy: true, status: 'OK', capacity: 3, inFlight: 1,
        pipelines: [{ pipeline: 'upscale', model_id: 'a/b', warm: true, capacity: 2, inFlight: 1 }, { pipeline: 'text-to-image', model_id: 'c/d', warm: false, capacity: 1 }],
      }],
    });
  } finally {
    await s.close();
  }
});

test('the admin rule applies: a configured token is required; no token on a public bind is 403', async () => {
  const withToken = await serve({ adminToken: 'tok' });
  const publicBind = await serve({ loopbackOnly: false });
  try {
    assert.equal((await fetch(`${withToken.url}/api/cluster`)).status, 401);
    assert.equal((await fetch(`${withToken.url}/api/cluster`, { headers: { authorization: 'Bearer tok' } })).status, 200);
    const refused = await fetch(`${publicBind.url}/api/cluster`);
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { detail: { code: string } }).detail.code, 'FORBIDDEN');
  } finally {
    await withToken.close();
    await publicBind.close();
  }
});

test('an unknown query parameter is refused with 400 naming it', async () => {
  const s = await serve({});
  try {
    const res = await fetch(`${s.url}/api/cluster?verbose=1`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as { detail: { code: string; msg: string } };
    assert.equal(body.detail.code, 'INVALID_REQUEST');
    assert.match(body.detail.msg, /verbose/);
  } finally {
    await s.close();
  }
});
