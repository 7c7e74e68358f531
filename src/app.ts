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
 */
import { mkdir } from 'node:fs/promises';
import type { MediagateConfig } from './config/config-schema.ts';
import type { Logger } from './log/logger.ts';
import { sweepWorkDir } from './storage/work-dir.ts';
import { Lifecycle } from './lifecycle.ts';
import { createAiWorkers, startCore, type Role } from './core.ts';
import { startGateway } from './gateway-role.ts';
import { startTranscodeWorker, startTranscoderRole } from './transcoder-role.ts';

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
    if (role === 'transcoder' || config.transcode.embedded) {
      await startTranscodeWorker(config, logger, core, lifecycle);
    }
    const close = (): Promise<void> => lifecycle.close();
    if (ai === undefined) {
      await startTranscoderRole(config, logger, core, lifecycle);
      return { close };
    }
    return { httpPort: await startGateway(config, logger, core, ai, lifecycle), close };
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
