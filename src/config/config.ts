/**
 * Loading the mediagate configuration declared in config-schema.ts ({@link CONFIG_SCHEMA}):
 * its defaults ({@link defaultConfig}), its environment variables
 * ({@link environmentVariables}), and {@link loadConfig}. Load order: defaults → optional
 * file (YAML or JSON) → environment (`MEDIAGATE_` prefix) → overrides → validate →
 * cross-field rules. Units are in the field names.
 */
import { isAbsolute, resolve } from 'node:path';
import { GatewayError } from '../errors/gateway-error.ts';
import { parseOutputRequests } from '../domain/output-target.ts';
import { applyEnvironment, compileSettings, defaultsOf, describeErrors, mergeSettings, readConfigFile, settingsOf } from './settings.ts';
import { CONFIG_SCHEMA, ENV_PREFIX, type MediagateConfig } from './config-schema.ts';

/** The defaults of every field (a fresh object per call). */
export function defaultConfig(): MediagateConfig {
  return defaultsOf(CONFIG_SCHEMA);
}

/** Every setting with its environment variable name and path, in declaration order. */
export function environmentVariables(): { name: string; path: string[] }[] {
  return settingsOf(CONFIG_SCHEMA, ENV_PREFIX).map(({ name, path }) => ({ name, path }));
}

export interface LoadConfigOptions {
  /** Path of a YAML/JSON config file; relative paths resolve against `cwd`. */
  file?: string;
  /** Environment to read `MEDIAGATE_*` overrides from; default none. */
  env?: Record<string, string | undefined>;
  /** Directory that relative paths in the config resolve against; default process.cwd(). */
  cwd?: string;
  /** Extra overrides applied after the environment (used by CLI flags and tests). */
  overrides?: Record<string, unknown>;
  /**
   * The program the configuration is for; default `gateway`. A `transcoder` (cmd/transcoder.ts)
   * ingests nothing: its `http.host` binds only `/metrics` and `/healthz`, so a non-loopback one
   * (a transcoder on its own host) needs no publishing auth.
   */
  role?: 'gateway' | 'transcoder';
}

const validateConfig = compileSettings(CONFIG_SCHEMA);

/**
 * Loads and validates the configuration.
 * @throws GatewayError CONFIG_INVALID naming every bad field and where it came from.
 */
export function loadConfig(options: LoadConfigOptions = {}): MediagateConfig {
  const cwd = options.cwd ?? process.cwd();
  const config = defaultConfig() as Record<string, unknown>;
  const origins: string[] = ['defaults'];

  const file = options.file ?? options.env?.[`${ENV_PREFIX}CONFIG`];
  if (file) {
    const path = resolve(cwd, file);
    mergeSettings(config, readConfigFile(path));
    origins.push(path);
  }

  if (options.env) {
    applyEnvironment(config, options.env, settingsOf(CONFIG_SCHEMA, ENV_PREFIX), {
      prefix: ENV_PREFIX,
      // MEDIAGATE_AI_WORKER_* belongs to the reference AI worker (cmd/ai-worker.ts), which may share the shell.
      ignore: (name) => name.startsWith('MEDIAGATE_AI_WORKER_') || name === `${ENV_PREFIX}CONFIG`,
    });
    origins.push('environment');
  }
  if (options.overrides) mergeSettings(config, options.overrides);

  if (!validateConfig(config)) {
    throw new GatewayError('CONFIG_INVALID', `invalid configuration: ${describeErrors(validateConfig.errors, origins.join(' → '))}`);
  }
  const result: MediagateConfig = config;
  result.storage.dir = isAbsolute(result.storage.dir) ? result.storage.dir : resolve(cwd, result.storage.dir);
  result.workDir = isAbsolute(result.workDir) ? result.workDir : resolve(cwd, result.workDir);
  // With port 0 the real port is known only once bound; the gateway derives publicUrl then.
  if (result.http.publicUrl === '' && result.http.port !== 0) {
    const host = result.http.host.includes(':') ? `[${result.http.host}]` : result.http.host;
    result.http.publicUrl = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${result.http.port}`;
  }
  result.http.publicUrl = result.http.publicUrl.replace(/\/+$/, '');
  result.storage.publicBaseUrl = result.storage.publicBaseUrl.replace(/\/+$/, '');
  if (result.storage.s3.prefix !== '' && !result.storage.s3.prefix.endsWith('/')) result.storage.s3.prefix += '/';
  result.storage.s3.endpoint = result.storage.s3.endpoint.replace(/\/+$/, '');
  if ((options.role ?? 'gateway') === 'gateway') checkSecurity(result);
  else checkWebhook(result);
  checkHeartbeat(result);
  checkStorage(result);
  checkOutputs(result);
  checkWebRtcPorts(result);
  return result;
}

/**
 * A heartbeat must outlive its renewal period, or live streams are ended while their gateway runs.
 * @throws GatewayError CONFIG_INVALID naming both settings.
 */
function checkHeartbeat(config: MediagateConfig): void {
  if (config.hls.heartbeatTtlMs <= config.hls.heartbeatIntervalMs) {
    throw new GatewayError('CONFIG_INVALID',
      `hls.heartbeatTtlMs (${config.hls.heartbeatTtlMs}) must exceed hls.heartbeatIntervalMs (${config.hls.heartbeatIntervalMs}), or live streams are ended while their gateway runs`);
  }
}

/**
 * The S3 store needs a bucket.
 * @throws GatewayError CONFIG_INVALID naming the variable to set.
 */
function checkStorage(config: MediagateConfig): void {
  if (config.storage.kind === 's3' && config.storage.s3.bucket === '') {
    throw new GatewayError('CONFIG_INVALID', 'storage.kind is s3 but storage.s3.bucket is empty: set MEDIAGATE_STORAGE_S3_BUCKET');
  }
}

/**
 * The WebRTC UDP port range: both ends or neither, in order.
 * @throws GatewayError CONFIG_INVALID naming the settings.
 */
function checkWebRtcPorts(config: MediagateConfig): void {
  const { portRangeBegin: begin, portRangeEnd: end } = config.webrtc;
  if ((begin === 0) !== (end === 0) || begin > end) {
    throw new GatewayError('CONFIG_INVALID',
      `webrtc.portRangeBegin (${begin}) and webrtc.portRangeEnd (${end}) must both be 0 (any port) or a range with begin <= end`);
  }
}

/**
 * Configured restream outputs are checked at startup (never a failed output mid-stream):
 * every target URL (`outputs.defaults`, each stream key's `outputs`) and the backoff bounds.
 * @throws GatewayError CONFIG_INVALID naming the setting and the problem (never the URL: it carries a secret).
 */
function checkOutputs(config: MediagateConfig): void {
  const lists: [string, unknown][] = [['outputs.defaults', config.outputs.defaults],
    ...config.streamKeys.map((k, i): [string, unknown] => [`streamKeys[${i}].outputs`, k.outputs ?? []])];
  for (const [where, list] of lists) {
    try {
      parseOutputRequests(list, where);
    } catch (err) {
      throw new GatewayError('CONFIG_INVALID', `invalid configuration: ${(err as Error).message}`);
    }
  }
  if (config.outputs.backoffMaxMs < config.outputs.backoffInitialMs) {
    throw new GatewayError('CONFIG_INVALID',
      `outputs.backoffMaxMs (${config.outputs.backoffMaxMs}) must be at least outputs.backoffInitialMs (${config.outputs.backoffInitialMs})`);
  }
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The webhook auth mode needs its URL.
 * @throws GatewayError CONFIG_INVALID naming the variable to set.
 */
function checkWebhook(config: MediagateConfig): void {
  if (config.auth.mode === 'webhook' && config.auth.webhookUrl === '') {
    throw new GatewayError('CONFIG_INVALID', 'auth.mode is webhook but auth.webhookUrl is empty: set MEDIAGATE_AUTH_WEBHOOK_URL');
  }
}

/**
 * Refuses a public bind with anonymous publishing (the rules across fields in docs/config.md).
 * @throws GatewayError CONFIG_INVALID telling the operator the two ways out.
 */
function checkSecurity(config: MediagateConfig): void {
  const publicBinds = [config.http.host, ...(config.rtmp.enabled ? [config.rtmp.host] : [])].filter((h) => !isLoopbackHost(h));
  checkWebhook(config);
  const authConfigured = config.streamKeys.length > 0 || config.auth.mode === 'webhook';
  if (publicBinds.length > 0 && !authConfigured && !config.allowAnonymous) {
    throw new GatewayError('CONFIG_INVALID',
      `refusing to bind ${publicBinds.join(', ')} with anonymous publishing: configure streamKeys ` +
      '(MEDIAGATE_STREAM_KEYS or the config file) or the auth webhook (MEDIAGATE_AUTH_MODE=webhook), or set allowAnonymous: true (MEDIAGATE_ALLOW_ANONYMOUS=true) to accept any stream name');
  }
}
