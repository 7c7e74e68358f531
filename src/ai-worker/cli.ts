/**
 * `cmd/ai-worker.ts` (`make run-ai-worker`): flags, configuration, logger, signals.
 *
 * Flags override `MEDIAGATE_AI_WORKER_*` variables, which override the config file
 * (`--config`), which overrides the defaults (see config.ts). Prefer the environment for
 * tokens: flags show up in `ps`.
 */
import { parseArgs } from 'node:util';
import { createProcessLogger, handleShutdownSignals } from '../log/process-lifecycle.ts';
import { isGatewayError } from '../errors/gateway-error.ts';
import { aiWorkerEnvironmentVariables, loadAiWorkerConfig, parseSetting, type AiWorkerConfig } from './config.ts';
import { startAiWorker, type RunningAiWorker } from './ai-worker.ts';

/** Flag → setting. */
const FLAGS: Record<string, keyof AiWorkerConfig> = {
  host: 'host', port: 'port', 'public-url': 'publicUrl', token: 'token',
  'gateway-url': 'gatewayUrl', 'gateway-admin-token': 'gatewayAdminToken', 'register-interval-ms': 'registerIntervalMs',
  models: 'models', 'alias-default-model': 'aliasDefaultModel', capacity: 'capacity',
  'max-input-pixels': 'maxInputPixels', 'max-image-bytes': 'maxImageBytes', 'tile-size': 'tileSize', 'tile-overlap': 'tileOverlap',
  'live-capacity': 'liveCapacity', 'live-status-interval-ms': 'liveStatusIntervalMs', 'live-keyframe-interval-sec': 'liveKeyframeIntervalSec',
  'live-input-timeout-ms': 'liveInputTimeoutMs', 'allow-anonymous': 'allowAnonymous', 'log-level': 'logLevel', 'log-format': 'logFormat',
};

const USAGE = `usage: ai-worker [--config file.yaml] [--host 127.0.0.1] [--port 8000] [--gateway-url http://127.0.0.1:9935]
                 [--public-url URL] [--capacity 1] [--models esrgan-slim-x2,esrgan-slim-x3,esrgan-slim-x4]
                 [--live-capacity 1] [--max-input-pixels 524288] [--tile-size 192] [--tile-overlap 12] [--alias-default-model true|false]
                 [--log-level info] [--log-format auto|json|pretty]
Tokens: MEDIAGATE_AI_WORKER_TOKEN (required on a non-loopback bind) and MEDIAGATE_AI_WORKER_GATEWAY_ADMIN_TOKEN
(--token / --gateway-admin-token work too, but flags are visible to other users in ps).`;

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.keys(FLAGS).map((flag) => [flag, { type: 'string' as const }])),
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values['help']) {
    process.stdout.write(`${USAGE}\n\nEnvironment overrides:\n${aiWorkerEnvironmentVariables().map((v) => `  ${v.name}`).join('\n')}\n`);
    return;
  }

  let config: AiWorkerConfig;
  try {
    const overrides: Partial<Record<keyof AiWorkerConfig, unknown>> = {};
    for (const [flag, key] of Object.entries(FLAGS)) {
      const raw = values[flag];
      if (typeof raw === 'string') overrides[key] = parseSetting(key, raw, `--${flag}`);
    }
    const file = typeof values['config'] === 'string' ? values['config'] : undefined;
    config = loadAiWorkerConfig({ ...(file ? { file } : {}), env: process.env, overrides: overrides as Partial<AiWorkerConfig> });
  } catch (err) {
    process.stderr.write(`ai-worker: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createProcessLogger(config.logLevel, config.logFormat);
  let worker: RunningAiWorker | undefined;
  handleShutdownSignals(logger, config.shutdownTimeoutMs, () => worker?.close());

  try {
    worker = await startAiWorker(config, logger);
  } catch (err) {
    logger.fatal({ err: isGatewayError(err) ? err.message : err instanceof Error ? err.message : err }, 'cannot start');
    logger.flush();
    process.exit(1);
  }
  const state = await worker.pool.ready;
  if (state === 'ERROR') logger.error({ err: worker.pool.loadError }, 'models failed to load; /health reports ERROR');
}
