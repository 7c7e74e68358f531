/**
 * The one root logger (pino). Components take `logger.child({ component })`;
 * per-segment work adds `{ manifestID, seq }`. Messages are static; data goes in fields.
 * Secrets (stream keys, API keys, tokens, prompts) are redacted by path.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { REDACTED } from './redact.ts';

export type { Logger };

/** Field paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'streamKey', '*.streamKey', 'apiKey', '*.apiKey', 'token', '*.token', 'adminToken', '*.adminToken',
  'authorization', '*.authorization', 'headers.authorization', 'prompt', '*.prompt', 'secret', '*.secret',
];

export interface LoggerOptions {
  /** pino level; default `info`. */
  level?: LevelWithSilent;
  /** Human-readable output via pino-pretty (development only; JSON lines otherwise). */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({
    level: options.level ?? 'info',
    base: { service: 'mediagate' },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    ...(options.pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } } : {}),
  });
}

/** A logger that drops everything, for unit tests of components that require one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
