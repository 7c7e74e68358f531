/**
 * Configuration of the reference AI worker (`cmd/ai-worker.ts`): defaults → optional file
 * (YAML or JSON, same keys) → environment (`MEDIAGATE_AI_WORKER_` + the key in
 * SCREAMING_SNAKE, e.g. `tileSize` → `MEDIAGATE_AI_WORKER_TILE_SIZE`) → command-line flags →
 * validate → cross-field rules. Lists (`models`) take a comma-separated list or a JSON array.
 * Declared once with the gateway's mechanism (src/config/settings.ts): the schema below gives
 * the type, the defaults, the JSON Schema and its part of docs/config.md.
 */
import { resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { GatewayError } from '../errors/gateway-error.ts';
import { isLoopbackHost } from '../config/config.ts';
import {
  compileSettings, defaultsOf, describeErrors, LOG_FORMATS, LOG_LEVELS, parseSettingValue, readConfigFile, settingsOf,
  StringEnum, applyEnvironment,
} from '../config/settings.ts';
import { ESRGAN_MODEL_IDS } from './models.ts';
import { maxOverlap } from './tiling.ts';

export const ENV_PREFIX = 'MEDIAGATE_AI_WORKER_';

const URL_OR_EMPTY = '^(https?://[^\\s]+)?$';

/** The reference AI worker's configuration: one declaration (type, defaults, JSON Schema, docs). */
export const AI_WORKER_CONFIG_SCHEMA = Type.Object({
  host: Type.String({
    minLength: 1, default: '127.0.0.1',
    description: 'Bind address; default 127.0.0.1. A non-loopback address needs `token` (or `allowAnonymous`).',
  }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: 'Default 8000, the ai-runner port. 0 = any free port.' }),
  publicUrl: Type.String({
    pattern: URL_OR_EMPTY, default: '',
    description: 'The base URL the gateway should call this worker on; default `http://<host>:<port>`. Bound to a wildcard address '
      + '(0.0.0.0, ::), the worker registers the address its host reaches `gatewayUrl` from (src/ai-worker/reach-address.ts), '
      + 'so a gateway on another host can call it; without a gateway URL, 127.0.0.1. Set it when the gateway must use another '
      + 'name (NAT, a load balancer, a Kubernetes Service).',
  }),
  token: Type.String({
    maxLength: 4096, default: '',
    description: 'Bearer token required on `POST /upscale` (ai-runner\'s AUTH_TOKEN); empty = none. Sent to the gateway on registration.',
  }),
  gatewayUrl: Type.String({
    pattern: URL_OR_EMPTY, default: '',
    description: 'Gateway base URL to register with (`POST <gatewayUrl>/api/workers`); empty = do not register. '
      + '`make run-ai-worker` sets http://127.0.0.1:9935 (the gateway\'s default `http.host` and `http.port`, where `make run` listens) when this is not set.',
  }),
  gatewayAdminToken: Type.String({
    maxLength: 4096, default: '',
    description: 'The gateway\'s admin token (`http.adminToken`), sent as `Authorization: Bearer` when registering.',
  }),
  registerIntervalMs: Type.Integer({
    minimum: 100, maximum: 3_600_000, default: 10_000,
    description: 'Keep-alive: the registration is repeated this often, ms (so a restarted gateway learns of the worker again).',
  }),
  models: Type.Array(StringEnum(ESRGAN_MODEL_IDS), {
    minItems: 0, uniqueItems: true, default: [...ESRGAN_MODEL_IDS],
    description: 'Upscale model IDs to load and serve (subset of esrgan-slim-x2, -x3, -x4). Empty (`[]`, or `""` in the environment): '
      + 'no upscale pipeline, nothing loaded (a worker for the live pipeline only).',
  }),
  aliasDefaultModel: Type.Boolean({
    default: true,
    description: 'Also accept and register the gateway\'s default upscale model (stabilityai/stable-diffusion-x4-upscaler) as esrgan-slim-x4.',
  }),
  capacity: Type.Integer({
    minimum: 1, maximum: 64, default: 1,
    description: 'Upscales run at once, one inference thread each; more requests get 503 "insufficient capacity".',
  }),
  maxInputPixels: Type.Integer({
    minimum: 1, maximum: 64 * 1024 * 1024, default: 512 * 1024,
    description: 'Largest input image, width × height pixels. Default 512 Ki (524,288, e.g. 960×540 or '
      + '1024×512): ~28 s at x4 on one thread of the 2-core reference machine (1 MiP took 55 s, '
      + 'too close to the gateway\'s 60 s upscale attempt timeout; bench/README.md).',
  }),
  maxImageBytes: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 20 * 1024 * 1024, description: 'Largest uploaded image file, bytes.' }),
  tileSize: Type.Integer({
    minimum: 32, maximum: 2048, default: 192,
    description: 'Largest tile side fed to the network, input pixels: bounds each thread\'s memory (see tiling.ts).',
  }),
  tileOverlap: Type.Integer({
    minimum: 0, maximum: 1020, default: 12,
    description: 'Context pixels on each inner side of a tile (≥ 10, the networks\' receptive radius, for exact results).',
  }),
  liveCapacity: Type.Integer({
    minimum: 0, maximum: 64, default: 1,
    description: 'Live video-to-video streams (`POST /live-video-to-video`, model mediagate/cpu-filter) run at once; more get 503 '
      + '"insufficient capacity". 0 = the live pipeline is off (not offered to the gateway). One 640×360 24 fps stream took '
      + 'about 0.4 of a core here (decode, filter, encode; measured in docs/operations.md), so 2 cores carry about 4.',
  }),
  liveStatusIntervalMs: Type.Integer({
    minimum: 100, maximum: 600_000, default: 10_000,
    description: 'A live stream\'s status event is published on its events channel this often, ms (ai-runner: 10 s).',
  }),
  liveKeyframeIntervalSec: Type.Number({
    minimum: 0.5, maximum: 10, default: 2,
    description: 'Keyframe interval of a live stream\'s output, s; the output is one trickle segment per keyframe interval.',
  }),
  liveInputTimeoutMs: Type.Integer({
    minimum: 1000, maximum: 3_600_000, default: 60_000,
    description: 'A live stream with no input segment for this long is ended, ms (ai-runner stops an idle stream after 60 s).',
  }),
  allowAnonymous: Type.Boolean({ default: false, description: 'Permit a non-loopback bind without a token.' }),
  logLevel: StringEnum(LOG_LEVELS, { default: 'info', description: 'Log level (pino).' }),
  logFormat: StringEnum(LOG_FORMATS, { default: 'auto', description: '`json`, `pretty`, or `auto` (pretty on a terminal).' }),
  shutdownTimeoutMs: Type.Integer({ minimum: 0, default: 30_000, description: 'How long shutdown waits for running upscales, ms.' }),
}, { additionalProperties: false });

/** The reference AI worker's configuration (the type of {@link AI_WORKER_CONFIG_SCHEMA}). */
export type AiWorkerConfig = Static<typeof AI_WORKER_CONFIG_SCHEMA>;

/** The defaults of every setting (a fresh object per call). */
export function defaultAiWorkerConfig(): AiWorkerConfig {
  return defaultsOf(AI_WORKER_CONFIG_SCHEMA);
}

const validate = compileSettings(AI_WORKER_CONFIG_SCHEMA);

/** `tileSize` → `MEDIAGATE_AI_WORKER_TILE_SIZE`. */
export function envName(key: keyof AiWorkerConfig): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Every setting with its environment variable. */
export function aiWorkerEnvironmentVariables(): { name: string; key: keyof AiWorkerConfig }[] {
  return settingsOf(AI_WORKER_CONFIG_SCHEMA, ENV_PREFIX).map((s) => ({ name: s.name, key: s.path[0] as keyof AiWorkerConfig }));
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
  return parseSettingValue(source, raw, AI_WORKER_CONFIG_SCHEMA.properties[key]);
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
    applyEnvironment(config, options.env, settingsOf(AI_WORKER_CONFIG_SCHEMA, ENV_PREFIX), {
      prefix: ENV_PREFIX, ignore: (name) => name === `${ENV_PREFIX}CONFIG`,
    });
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
