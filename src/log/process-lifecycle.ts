/**
 * Process lifecycle shared by the entry points (cmd/*.ts): the logger choice, and
 * SIGINT/SIGTERM handling that closes the running service once, forces an exit when closing
 * takes longer than `shutdownTimeoutMs` + 5 s, and exits 0 after a clean close.
 */
import { createLogger, type Logger } from './logger.ts';
import type { LevelWithSilent } from 'pino';

/** `auto` is pretty on a terminal and JSON lines otherwise. */
export function createProcessLogger(level: LevelWithSilent, format: 'auto' | 'json' | 'pretty'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  return createLogger({ level, pretty });
}

/**
 * Installs the signal handlers. `close` is read at signal time (it may not exist yet while
 * the service starts).
 */
export function handleShutdownSignals(logger: Logger, shutdownTimeoutMs: number, close: () => Promise<void> | undefined): void {
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, shutdownTimeoutMs + 5000);
    force.unref();
    void (close() ?? Promise.resolve()).then(() => {
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
