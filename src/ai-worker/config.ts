/**
 * Configuration of the reference AI worker (`cmd/ai-worker.ts`): defaults → optional file
 * (YAML or JSON, same keys) → environment (`MEDIAGATE_AI_WORKER_` + the key in
 * SCREAMING_SNAKE, e.g. `tileSize` → `MEDIAGATE_AI_WORKER_TILE_SIZE`) → command-line flags →
 * validate. Lists (`models`) take a comma-separated list or a JSON array.
 */
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { GatewayError } from '../errors/gateway-error.ts';
import { describeErrors, isLoopbackHost, parseSettingValue, readConfigFile } from '../config/config.ts';
import { ESRGAN_MODEL_IDS } from './models.ts';
import { maxOverlap } from './tiling.ts';

export const ENV_PREFIX = 'MEDIAGATE_AI_WORKER_';

export interface AiWorkerConfig {
  /** Bind address; default 127.0.0.1. A non-loopback address needs `token` (or `allowAnonymous`). */
  host: string;
  /** Default 8000, the ai-runner port. 0 = any free port. */
  port: number;
  /** The base URL the gateway should call this worker on; default `http://<host>:<port>` (0.0.0.0 shown as 127.0.0.1). */
  publicUrl: string;
  /** Bearer token required on `POST /upscale` (ai-runner's AUTH_TOKEN); empty = none. Sent to the gateway on registration. */
  token: string;
  /** Gateway base URL to register with (`POST <gatewayUrl>/api/workers`); empty = do not register. */
  gatewayUrl: string;
  /** The gateway's admin token (`http.adminToken`), sent as `Authorization: Bearer` when registering. */
  gatewayAdminToken: string;
  /** Keep-alive: the registration is repeated this often, ms (so a restarted gateway learns of the worker again). */
  registerIntervalMs: number;
  /** Model IDs to load and serve (subset of esrgan-slim-x2, -x3, -x4). */
  models: string[];
  /** Also accept and register the gateway's default upscale model (stabilityai/stable-diffusion-x4-upscaler) as esrgan-slim-x4. */
  aliasDefaultModel: boolean;
  /** Upscales run at once, one inference thread each; more requests get 503 "insufficient capacity". */
  capacity: number;
  /**
   * Largest input image, width × height pixels. Default 512 Ki (524,288, e.g. 960×540 or
   * 1024×512): ~28 s at x4 on one thread of the 2-core reference machine (1 MiP took 55 s,
   * too close to the gateway's 60 s upscale attempt timeout; bench/README.md).
   */
  maxInputPixels: number;
  /** Largest uploaded image file, bytes. */
  maxImageBytes: number;
  /** Largest tile side fed to the network, input pixels: bounds each thread's memory (see tiling.ts). */
  tileSize: number;
  /** Context pixels on each inner side of a tile (≥ 10, the networks' receptive radius, for exact results). */
  tileOverlap: number;
  /** Permit a non-loopback bind without a token. */
  allowAnonymous: boolean;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** `json`, `pretty`, or `auto` (pretty on a terminal). */
  logFormat: 'auto' | 'json' | 'pretty';
  /** How long shutdown waits for running upscales, ms. */
  shutdownTimeoutMs: number;
}

export function defaultAiWorkerConfig(): AiWorkerConfig {
  return {
    host: '127.0.0.1', port: 8000, publicUrl: '', token: '',
    gatewayUrl: '', gatewayAdminToken: '', registerIntervalMs: 10_000,
    models: [...ESRGAN_MODEL_IDS], aliasDefaultModel: true,
    capacity: 1, maxInputPixels: 512 * 1024, maxImageBytes: 20 * 1024 * 1024,
    tileSize: 192, tileOverlap: 12,
    allowAnonymous: false, logLevel: 'info', logFormat: 'auto', shutdownTimeoutMs: 30_000,
  };
}

const URL_OR_EMPTY = '^(https?://[^\\s]+)?$';

export const AI_WORKER_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(defaultAiWorkerConfig()),
  properties: {
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    publicUrl: { type: 'string', pattern: URL_OR_EMPTY },
    token: { type: 'string', maxLength: 4096 },
    gatewayUrl: { type: 'string', pattern: URL_OR_EMPTY },
    gatewayAdminToken: { type: 'string', maxLength: 4096 },
    registerIntervalMs: { type: 'integer', minimum: 100, maximum: 3_600_000 },
    models: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...ESRGAN_MODEL_IDS] } },
    aliasDefaultModel: { type: 'boolean' },
    capacity: { type: 'integer', minimum: 1, maximum: 64 },
    maxInputPixels: { type: 'integer', minimum: 1, maximum: 64 * 1024 * 1024 },
    maxImageBytes: { type: 'integer', minimum: 1024, maximum: 1024 * 1024 * 1024 },
    tileSize: { type: 'integer', minimum: 32, maximum: 2048 },
    tileOverlap: { type: 'integer', minimum: 0, maximum: 1020 },
    allowAnonymous: { type: 'boolean' },
    logLevel: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
    logFormat: { enum: ['auto', 'json', 'pretty'] },
    shutdownTimeoutMs: { type: 'integer', minimum: 0 },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile<AiWorkerConfig>(AI_WORKER_CONFIG_SCHEMA);

/** `tileSize` → `MEDIAGATE_AI_WORKER_TILE_SIZE`. */
export function envName(key: keyof AiWorkerConfig): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Every setting with its environment variable. */
export function aiWorkerEnvironmentVariables(): { name: string; key: keyof AiWorkerConfig }[] {
  return (Object.keys(defaultAiWorkerConfig()) as (keyof AiWorkerConfig)[]).map((key) => ({ name: envName(key), key }));
}

export interface LoadAiWorkerConfigOptions {
  /** YAML/JSON file; relative to `cwd`. Also `MEDIAGATE_AI_WORKER_CONFIG`. */
  file?: string;
  /** Environment to read overrides from; default none. */
  env?: Record<string, string | undefined>;
  /** Applied last (command-line flags, tests); values as in the file. */
  overrides?: Partial<AiWorkerConfig>;
  cwd?: string;
}

/** Parses a string setting (environment variable or flag) into its typed value. */
export function parseSetting(key: keyof AiWorkerConfig, raw: string, source = envName(key)): unknown {
  return parseSettingValue(source, raw, defaultAiWorkerConfig()[key]);
}

/**
 * Loads and validates the worker's configuration.
 * @throws GatewayError CONFIG_INVALID naming every bad setting and where it came from.
 */
export function loadAiWorkerConfig(options: LoadAiWorkerConfigOptions = {}): AiWorkerConfig {
  const config: Record<string, unknown> = { ...defaultAiWorkerConfig() };
  const origins = ['defaults'];
  const file = options.file ?? options.env?.[`${ENV_PREFIX}CONFIG`];
  if (file) {
    const path = resolve(options.cwd ?? process.cwd(), file);
    Object.assign(config, readConfigFile(path));
    origins.push(path);
  }
  if (options.env) {
    const known = new Map(aiWorkerEnvironmentVariables().map((v) => [v.name, v.key]));
    for (const [name, raw] of Object.entries(options.env)) {
      if (!name.startsWith(ENV_PREFIX) || raw === undefined || name === `${ENV_PREFIX}CONFIG`) continue;
      const key = known.get(name);
      if (key === undefined) throw new GatewayError('CONFIG_INVALID', `unknown environment variable ${name}; known: ${[...known.keys()].join(', ')}`);
      config[key] = parseSetting(key, raw, name);
    }
    origins.push('environment');
  }
  if (options.overrides) {
    for (const [key, value] of Object.entries(options.overrides)) if (value !== undefined) config[key] = value;
    origins.push('flags');
  }
  if (!validate(config)) throw new GatewayError('CONFIG_INVALID', `invalid AI worker configuration: ${describeErrors(validate.errors, origins.join(' → '))}`);
  const result: AiWorkerConfig = config;
  if (result.tileOverlap > maxOverlap(result.tileSize)) {
    throw new GatewayError('CONFIG_INVALID', `tileOverlap ${result.tileOverlap} is too large for tileSize ${result.tileSize} (at most ${maxOverlap(result.tileSize)})`);
  }
  if (!isLoopbackHost(result.host) && result.token === '' && !result.allowAnonymous) {
    throw new GatewayError('CONFIG_INVALID',
      `refusing to bind ${result.host} without a bearer token: set ${envName('token')} (or --token), or ${envName('allowAnonymous')}=true to serve anyone who can reach it`);
  }
  if (result.gatewayUrl === '' && result.gatewayAdminToken !== '') {
    throw new GatewayError('CONFIG_INVALID', `${envName('gatewayAdminToken')} is set but ${envName('gatewayUrl')} is empty`);
  }
  result.publicUrl = result.publicUrl.replace(/\/+$/, '');
  result.gatewayUrl = result.gatewayUrl.replace(/\/+$/, '');
  return result;
}

/** The URL the gateway should call: `publicUrl`, or one derived from the bound address. */
export function derivePublicUrl(config: Pick<AiWorkerConfig, 'publicUrl' | 'host'>, boundPort: number): string {
  if (config.publicUrl !== '') return config.publicUrl;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
}
