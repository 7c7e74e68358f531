/**
 * Shared entry-point logic for cmd/*.ts: flags, config, logger, signals.
 *
 * Flags: `--config <file>` (YAML/JSON; also MEDIAGATE_CONFIG), `--help`.
 * Every setting can be overridden by a `MEDIAGATE_*` environment variable (see README).
 */
import { parseArgs } from 'node:util';
import { loadConfig, environmentVariables } from './config/config.ts';
import { createLogger } from './log/logger.ts';
import { isGatewayError } from './errors/gateway-error.ts';
import { startApp, type Role } from './app.ts';

export async function main(role: Role, argv: string[] = process.argv.slice(2)): Promise<void> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: ${role} [--config file.yaml]\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`usage: mediagate ${role} [--config file.yaml]\n\nEnvironment overrides:\n${environmentVariables().map((v) => `  ${v.name}`).join('\n')}\n`);
    return;
  }

  let config;
  try {
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), env: process.env });
  } catch (err) {
    process.stderr.write(`mediagate: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const pretty = config.log.format === 'pretty' || (config.log.format === 'auto' && process.stdout.isTTY === true);
  const logger = createLogger({ level: config.log.level, pretty });

  let app: Awaited<ReturnType<typeof startApp>> | undefined;
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000);
    force.unref();
    void (app?.close() ?? Promise.resolve()).then(() => {
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    app = await startApp(config, logger, role);
  } catch (err) {
    logger.fatal({ err: isGatewayError(err) ? err.message : err }, 'cannot start');
    logger.flush();
    process.exit(1);
  }
}
