/**
 * Composition root: builds every component from the config, wires the small interfaces
 * each feature folder declares, and owns start/close order (close in reverse).
 *
 * Roles:
 * - `gateway`: HTTP (playback, health) + RTMP ingest + segmenter + queue producer, and an
 *   embedded transcoder worker when `transcode.embedded` is true (the `make run` default).
 * - `transcoder`: a transcoder worker only; any number share one Redis and object store.
 *
 * Files: core.ts builds what both roles share, gateway-role.ts the gateway's parts,
 * transcoder-role.ts the transcode worker; lifecycle.ts is the closer stack they register on.
 * Each process then publishes its heartbeat to the cluster membership (`joinCluster`).
 */
import { mkdir } from 'node:fs/promises';
import type { MediagateConfig } from './config/config-schema.ts';
import type { Logger } from './log/logger.ts';
import { sweepWorkDir } from './storage/work-dir.ts';
import { Lifecycle } from './lifecycle.ts';
import { createAiWorkers, startCore, type Role } from './core.ts';
import { startGateway } from './gateway-role.ts';
import { startTranscodeWorker, startTranscoderRole } from './transcoder-role.ts';
import { RedisClusterMembers } from './cluster/cluster-member-store.ts';
import { ClusterHeartbeat, type GatewayFigures, type TranscoderFigures } from './cluster/cluster-heartbeat.ts';
import type { Core } from './core.ts';

export type { Role } from './core.ts';

export interface RunningApp {
  /** Bound HTTP port (gateway role), useful when configured as 0. */
  readonly httpPort?: number;
  /**
   * Idempotent. Gateway role: drains first (ingest/drain.ts), then closes the rest in
   * reverse start order; no orphan ffmpeg afterwards. Waiting is bounded by
   * `shutdownTimeoutMs` (jobs still queued or running then are left to other transcoders).
   */
  close(): Promise<void>;
}

/**
 * Starts the given role over one {@link Lifecycle}. On a failure during start, whatever was
 * started is closed again before the error is rethrown.
 */
export async function startApp(config: MediagateConfig, logger: Logger, role: Role): Promise<RunningApp> {
  const lifecycle = new Lifecycle({ logger, shutdownTimeoutMs: config.shutdownTimeoutMs });
  try {
    await mkdir(config.workDir, { recursive: true });
    // Before this process creates any scratch entry of its own (see storage/work-dir.ts).
    await sweepWorkDir(config.workDir, { transcoder: role === 'transcoder' || config.transcode.embedded, gateway: role === 'gateway' }, logger);
    const ai = role === 'gateway' ? createAiWorkers(config, logger, lifecycle) : undefined;
    const core = await startCore(config, logger, role, lifecycle, ai);
    const members = new RedisClusterMembers({ redis: core.redis, keys: core.keys });
    const transcoding = role === 'transcoder' || config.transcode.embedded ? await startTranscodeWorker(config, logger, core, lifecycle) : undefined;
    const close = (): Promise<void> => lifecycle.close();
    if (ai === undefined) {
      const address = await startTranscoderRole(config, logger, core, lifecycle);
      await joinCluster(config, logger, core, lifecycle, members, { ...(transcoding ? { transcoder: { ...transcoding, embedded: false, ...(address ? { address } : {}) } } : {}) });
      return { close };
    }
    const gateway = await startGateway(config, logger, core, ai, lifecycle, members);
    await joinCluster(config, logger, core, lifecycle, members, {
      gateway: gateway.figures, ...(transcoding ? { transcoder: { ...transcoding, embedded: true, address: gateway.figures.address } } : {}),
    });
    return { httpPort: gateway.httpPort, close };
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}

/**
 * Starts this process's heartbeat in the cluster membership (cluster/cluster-heartbeat.ts)
 * with the roles it runs, under core's member ID. Registered last, so closed first: a
 * process shutting down leaves `GET /api/cluster` at once.
 */
async function joinCluster(
  config: MediagateConfig, logger: Logger, core: Core, lifecycle: Lifecycle, members: RedisClusterMembers,
  roles: { gateway?: GatewayFigures; transcoder?: TranscoderFigures },
): Promise<void> {
  const heartbeat = new ClusterHeartbeat({
    store: members, id: core.memberId, intervalMs: config.cluster.heartbeatIntervalMs, logger: logger.child({ component: 'cluster' }), ...roles,
  });
  lifecycle.add('cluster-heartbeat', () => heartbeat.close());
  await heartbeat.start();
  logger.info({ memberId: core.memberId, roles: Object.keys(roles), heartbeatIntervalMs: config.cluster.heartbeatIntervalMs }, 'joined the cluster membership');
}
