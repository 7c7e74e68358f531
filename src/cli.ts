/**
 * Shared entry-point logic for cmd/*.ts: flags, config, logger, signals.
 *
 * Flags: `--config <file>` (YAML/JSON; also MEDIAGATE_CONFIG), `--help`.
 * Every setting can be overridden by a `MEDIAGATE_*` environment variable (see README).
 */
import { parseArgs } from 'node:util';
import { loadConfig, environmentVariables } from './config/config.ts';
import { createProcessLogger, handleShutdownSignals } from './log/process-lifecycle.ts';
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
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), env: process.env, role });
  } catch (err) {
    process.stderr.write(`mediagate: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createProcessLogger(config.log.level, config.log.format);
  let app: Awaited<ReturnType<typeof startApp>> | undefined;
  handleShutdownSignals(logger, config.shutdownTimeoutMs, () => app?.close());

  try {
    app = await startApp(config, logger, role);
  } catch (err) {
    logger.fatal({ err: isGatewayError(err) ? err.message : err }, 'cannot start');
    logger.flush();
    process.exit(1);
  }
}
