/**
 * mediagate configuration: one schema; load order defaults → optional file (YAML or JSON)
 * → environment (`MEDIAGATE_` prefix) → validate. Units are in the field names.
 *
 * Environment names are derived from the field path: each camelCase segment becomes
 * SCREAMING_SNAKE, joined with `_`, e.g. `http.port` → `MEDIAGATE_HTTP_PORT`,
 * `transcode.x264Preset` → `MEDIAGATE_TRANSCODE_X264_PRESET`. Arrays and objects take JSON;
 * arrays of strings also take a comma-separated list.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Ajv, type ErrorObject } from 'ajv';
import { GatewayError } from '../errors/gateway-error.ts';

export interface StreamKeyConfig {
  /** Secret used to publish: `rtmp://host/live/<streamKey>`. Never logged or shown in URLs. */
  streamKey: string;
  /** Public ID used in playback URLs. */
  manifestID: string;
  /** Optional per-stream ladder (preset names or Livepeer JSON profiles); default: `ladder`. */
  profiles?: unknown[];
  /**
   * Optional account charged for this key's transcoding (created with `POST /api/accounts`;
   * a publish is refused while it is missing or empty). Without one, the stream is charged
   * to the `local` account on a loopback bind and is not metered on any other bind.
   */
  accountID?: string;
}

export interface AiWorkerConfig {
  /** Base URL of an ai-runner compatible worker, e.g. http://gpu-1:8000. */
  url: string;
  /** Bearer token the worker expects, if any. Never logged or returned. */
  token?: string;
  pipelines: { pipeline: string; model_id: string; warm?: boolean; capacity?: number }[];
}

export interface MediagateConfig {
  http: {
    /** Bind address; default 127.0.0.1 (loopback). */
    host: string;
    /** Default 9935 (Livepeer's gateway HTTP port). */
    port: number;
    /** Base URL for playback links and AI result URLs; default `http://<host>:<port>` (0.0.0.0 shown as 127.0.0.1). */
    publicUrl: string;
    /** Largest pushed segment or request body accepted, in bytes. */
    maxBodyBytes: number;
    /** Bearer token for the control API (`/api/*`); required when `host` is not loopback. */
    adminToken: string;
    /**
     * Host names (no port; `.example.com` = the domain and its subdomains) the gateway
     * answers to besides loopback names, the bind address and the host of `publicUrl`.
     * Checked against the `Host` header (DNS rebinding guard, src/http/request-guard.ts)
     * on a loopback bind, and on any bind once set. Default [] (none).
     */
    allowedHosts: string[];
  };
  rtmp: {
    enabled: boolean;
    host: string;
    /** Default 1935. */
    port: number;
  };
  redis: {
    /** Redis URL; default redis://127.0.0.1:6379. */
    url: string;
    /** Key prefix so several deployments can share one Redis. */
    keyPrefix: string;
    /**
     * How long the media path (listing and queueing a source segment, recording a transcode
     * result, billing it, ending a stream) retries across a Redis outage before that work is
     * given up and its segment resolved as failed, in ms, counted from when the segment was
     * ready; default 30000. Segments waiting meanwhile stay on local disk, at most this long plus
     * one Redis attempt (an attempt under way is not cut short: up to ~8 s, see queue/redis-retry.ts).
     */
    mediaRetryBudgetMs: number;
  };
  storage: {
    kind: 'fs';
    /** Root directory of the filesystem object store. */
    dir: string;
  };
  /** Scratch directory for segmenter and transcoder temp files. */
  workDir: string;
  transcode: {
    /** Run a transcoder worker inside the gateway process (the `make run` default). */
    embedded: boolean;
    /**
     * Jobs one transcoder process runs at once; default 2. Measured on 2 cores with a
     * 1080p30 source and the default ladder (SegmentTranscoder alone): 1 in flight reaches
     * 1.15x real time, 2 reach 1.42x, because each per-segment ffmpeg idles cores while its
     * encoders fill and drain, and no ffmpeg runs while a job probes and stores. Through the
     * whole pipeline: bench/throughput.ts `--processes 1 --concurrency N`.
     */
    concurrency: number;
    /** libx264 preset for renditions. */
    x264Preset: string;
    /** Wall-clock limit for one segment's ffmpeg, in ms. */
    timeoutMs: number;
    /** Tries per job before it is failed for good. */
    attempts: number;
    /** First retry delay in ms (exponential backoff). */
    backoffMs: number;
    /**
     * HTTP port of a standalone transcoder (cmd/transcoder.ts) for `/metrics` and `/healthz`,
     * bound to `http.host`; default 9936; 0 = none.
     */
    metricsPort: number;
  };
  /** Default ladder: preset names or Livepeer JSON profile objects. */
  ladder: unknown[];
  /** Target source segment duration in ms; segments are cut at the first keyframe after it. */
  segmentTargetMs: number;
  hls: {
    /** Segments in a live media playlist's sliding window. */
    windowSegments: number;
    /**
     * Longest a rendition's playlist waits for one missing segment once a later one is ready,
     * in ms; the missing one is then skipped with EXT-X-DISCONTINUITY (and not charged if it
     * comes later). Also how long an ended stream waits for its last transcodes before its
     * playlists get EXT-X-ENDLIST. Default 10000: 5 segment durations, above a crashed
     * transcoder's takeover (about 2 segment durations) plus one transcode on a busy host.
     */
    maxSegmentWaitMs: number;
    /** How often a gateway renews the heartbeat of each live stream it holds, in ms. Default 2000. */
    heartbeatIntervalMs: number;
    /**
     * A live stream whose gateway has not renewed its heartbeat for this long (the gateway
     * died) is ended by any gateway's sweep, in ms; must exceed heartbeatIntervalMs. Default 10000.
     */
    heartbeatTtlMs: number;
    /** How often each gateway runs the segment-index sweep (overdue segments, expired heartbeats), in ms. Default 1000. */
    sweepIntervalMs: number;
  };
  /** Configured stream keys; empty = any well-formed name is accepted (loopback only). */
  streamKeys: StreamKeyConfig[];
  auth: {
    /**
     * `static`: stream keys from `streamKeys` (none = anonymous, loopback only).
     * `webhook`: Livepeer's auth webhook, `POST authWebhookUrl {"url": ...}` per new stream.
     */
    mode: 'static' | 'webhook';
    /** Auth webhook URL (mode `webhook`). */
    webhookUrl: string;
    /** A webhook that has not answered after this many ms rejects the publish. */
    webhookTimeoutMs: number;
  };
  push: {
    /** A push session with no segment for this long is closed and its playlists end (Livepeer: 60 s). */
    idleTimeoutMs: number;
    /** How long a push request waits for its renditions before answering 503, in ms. */
    replyTimeoutMs: number;
  };
  events: {
    /** URLs notified of stream.started, stream.ended, segment.transcoded, segment.failed. */
    webhookUrls: string[];
    /** HMAC-SHA256 key for the `Mediagate-Signature` header; empty = unsigned. */
    secret: string;
    /** Delivery tries per event and receiver before it is dropped. */
    attempts: number;
    /** First retry delay in ms, doubled each retry. */
    backoffMs: number;
    /** Per-delivery HTTP timeout in ms. */
    timeoutMs: number;
  };
  ai: {
    /** Workers registered at startup (more can be added with POST /api/workers). */
    workers: AiWorkerConfig[];
    /** Bearer API keys accepted on the AI endpoints; none = anonymous, on loopback only. */
    apiKeys: string[];
    /** How often each worker's GET /health is polled, in ms. */
    healthIntervalMs: number;
    /** Largest uploaded image, in bytes. */
    maxImageBytes: number;
    /** Largest uploaded audio file, in bytes. */
    maxAudioBytes: number;
    /** Tries per request across workers. */
    maxAttempts: number;
    /** Total time one request may spend across all attempts, in ms. */
    totalBudgetMs: number;
    /** How long a request waits for a free worker slot before 503, in ms. */
    queueWaitMs: number;
    /** First suspension of a failing worker, in ms (doubles per consecutive failure, capped at 5 min). */
    suspendBaseMs: number;
    /** Per-attempt timeout for every pipeline, in ms; 0 = the per-pipeline defaults of retry-policy.ts. */
    attemptTimeoutMs: number;
  };
  payments: {
    /** Meter and charge work against accounts. */
    enabled: boolean;
    /**
     * Credits of the `local` account created at startup when the gateway binds loopback and
     * no accounts exist, so `make run` works without setup; 0 = do not create it.
     */
    localAccountCredits: number;
    /** Transcoding price per output pixel (units: width × height × frames). */
    transcodePrice: { pricePerUnit: number; pixelsPerUnit: number };
    /** AI prices per (pipeline, model_id); model_id `*` matches any model. Units per WIRE-CONTRACT.md §10. */
    aiPrices: { pipeline: string; model_id: string; pricePerUnit: number; pixelsPerUnit: number }[];
    /** Mid-stream, when a segment cannot be paid: `end` the stream, or continue with `source-only`. */
    onInsufficientBalance: 'end' | 'source-only';
  };
  metrics: {
    /** Label per-stream metrics with the manifest ID (cardinality grows with streams); default off. */
    manifestIdLabels: boolean;
  };
  /** Permit anonymous publishing on a non-loopback bind address. */
  allowAnonymous: boolean;
  log: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    /** `json` (one object per line), `pretty` (human-readable), or `auto`: pretty on a terminal, JSON otherwise. */
    format: 'auto' | 'json' | 'pretty';
  };
  /**
   * How long a shutdown (SIGTERM/SIGINT) waits for in-flight work, in ms; default 10000: HTTP
   * requests in flight, and with the embedded transcoder the transcodes of the streams' last
   * segments. What is not done by then stays queued for other transcoders; the process is
   * forced out 5 s later.
   */
  shutdownTimeoutMs: number;
}

/**
 * The default ladder, chosen by measurement on a 2-core machine: from a 1080p30 source,
 * 720p30 + 360p30 + 240p30 at x264 `veryfast` encode at about 2x real time in one ffmpeg
 * process (see the closing note of issue 2 and bench/README.md).
 */
export const DEFAULT_LADDER = ['P720p30fps16x9', 'P360p30fps16x9', 'P240p30fps16x9'];

export function defaultConfig(): MediagateConfig {
  return {
    http: { host: '127.0.0.1', port: 9935, publicUrl: '', maxBodyBytes: 64 * 1024 * 1024, adminToken: '', allowedHosts: [] },
    rtmp: { enabled: true, host: '127.0.0.1', port: 1935 },
    redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'mg', mediaRetryBudgetMs: 30_000 },
    storage: { kind: 'fs', dir: './data/objects' },
    workDir: './data/work',
    transcode: { embedded: true, concurrency: 2, x264Preset: 'veryfast', timeoutMs: 60_000, attempts: 3, backoffMs: 500, metricsPort: 9936 },
    ladder: [...DEFAULT_LADDER],
    segmentTargetMs: 2000,
    hls: { windowSegments: 6, maxSegmentWaitMs: 10_000, heartbeatIntervalMs: 2000, heartbeatTtlMs: 10_000, sweepIntervalMs: 1000 },
    streamKeys: [],
    auth: { mode: 'static', webhookUrl: '', webhookTimeoutMs: 5000 },
    push: { idleTimeoutMs: 60_000, replyTimeoutMs: 60_000 },
    events: { webhookUrls: [], secret: '', attempts: 8, backoffMs: 1000, timeoutMs: 5000 },
    ai: {
      workers: [], apiKeys: [], healthIntervalMs: 5000, maxImageBytes: 20 * 1024 * 1024, maxAudioBytes: 50 * 1024 * 1024,
      maxAttempts: 3, totalBudgetMs: 120_000, queueWaitMs: 2000, suspendBaseMs: 5000, attemptTimeoutMs: 0,
    },
    metrics: { manifestIdLabels: false },
    payments: {
      enabled: true,
      localAccountCredits: 1_000_000_000_000,
      transcodePrice: { pricePerUnit: 1, pixelsPerUnit: 1_000_000 },
      aiPrices: [{ pipeline: '*', model_id: '*', pricePerUnit: 1, pixelsPerUnit: 1_000_000 }],
      onInsufficientBalance: 'end',
    },
    allowAnonymous: false,
    log: { level: 'info', format: 'auto' },
    shutdownTimeoutMs: 10_000,
  };
}

const NAME = '^[A-Za-z0-9_-]{1,64}$';

/** JSON Schema of the whole configuration (draft-07, checked by Ajv). */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['http', 'rtmp', 'redis', 'storage', 'workDir', 'transcode', 'ladder', 'segmentTargetMs', 'hls', 'streamKeys', 'auth', 'push', 'events', 'ai', 'payments', 'metrics', 'allowAnonymous', 'log', 'shutdownTimeoutMs'],
  properties: {
    http: {
      type: 'object', additionalProperties: false, required: ['host', 'port', 'publicUrl', 'maxBodyBytes', 'adminToken', 'allowedHosts'],
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        publicUrl: { type: 'string', pattern: '^(https?://[^\\s]+)?$' },
        maxBodyBytes: { type: 'integer', minimum: 1024 },
        adminToken: { type: 'string' },
        allowedHosts: { type: 'array', items: { type: 'string', pattern: '^(\\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[?[0-9A-Fa-f:.]+\\]?)$' } },
      },
    },
    rtmp: {
      type: 'object', additionalProperties: false, required: ['enabled', 'host', 'port'],
      properties: {
        enabled: { type: 'boolean' },
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
      },
    },
    redis: {
      type: 'object', additionalProperties: false, required: ['url', 'keyPrefix', 'mediaRetryBudgetMs'],
      properties: {
        url: { type: 'string', pattern: '^rediss?://' },
        keyPrefix: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,32}$' },
        mediaRetryBudgetMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
      },
    },
    storage: {
      type: 'object', additionalProperties: false, required: ['kind', 'dir'],
      properties: { kind: { enum: ['fs'] }, dir: { type: 'string', minLength: 1 } },
    },
    workDir: { type: 'string', minLength: 1 },
    transcode: {
      type: 'object', additionalProperties: false,
      required: ['embedded', 'concurrency', 'x264Preset', 'timeoutMs', 'attempts', 'backoffMs', 'metricsPort'],
      properties: {
        embedded: { type: 'boolean' },
        concurrency: { type: 'integer', minimum: 1, maximum: 64 },
        x264Preset: { enum: ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'] },
        timeoutMs: { type: 'integer', minimum: 1000 },
        attempts: { type: 'integer', minimum: 1, maximum: 20 },
        backoffMs: { type: 'integer', minimum: 0 },
        metricsPort: { type: 'integer', minimum: 0, maximum: 65535 },
      },
    },
    ladder: { type: 'array', maxItems: 16, items: { anyOf: [{ type: 'string' }, { type: 'object' }] } },
    segmentTargetMs: { type: 'integer', minimum: 500, maximum: 20_000 },
    hls: {
      type: 'object', additionalProperties: false, required: ['windowSegments', 'maxSegmentWaitMs', 'heartbeatIntervalMs', 'heartbeatTtlMs', 'sweepIntervalMs'],
      properties: {
        windowSegments: { type: 'integer', minimum: 2, maximum: 1000 },
        maxSegmentWaitMs: { type: 'integer', minimum: 500, maximum: 600_000 },
        heartbeatIntervalMs: { type: 'integer', minimum: 100, maximum: 60_000 },
        heartbeatTtlMs: { type: 'integer', minimum: 500, maximum: 600_000 },
        sweepIntervalMs: { type: 'integer', minimum: 100, maximum: 60_000 },
      },
    },
    streamKeys: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['streamKey', 'manifestID'],
        properties: {
          streamKey: { type: 'string', pattern: NAME },
          manifestID: { type: 'string', pattern: NAME },
          profiles: { type: 'array' },
          accountID: { type: 'string', pattern: NAME },
        },
      },
    },
    auth: {
      type: 'object', additionalProperties: false, required: ['mode', 'webhookUrl', 'webhookTimeoutMs'],
      properties: {
        mode: { enum: ['static', 'webhook'] },
        webhookUrl: { type: 'string', pattern: '^(https?://[^\\s]+)?$' },
        webhookTimeoutMs: { type: 'integer', minimum: 100, maximum: 60_000 },
      },
    },
    push: {
      type: 'object', additionalProperties: false, required: ['idleTimeoutMs', 'replyTimeoutMs'],
      properties: {
        idleTimeoutMs: { type: 'integer', minimum: 1000 },
        replyTimeoutMs: { type: 'integer', minimum: 1000 },
      },
    },
    events: {
      type: 'object', additionalProperties: false, required: ['webhookUrls', 'secret', 'attempts', 'backoffMs', 'timeoutMs'],
      properties: {
        webhookUrls: { type: 'array', items: { type: 'string', pattern: '^https?://[^\\s]+$' } },
        secret: { type: 'string' },
        attempts: { type: 'integer', minimum: 1, maximum: 30 },
        backoffMs: { type: 'integer', minimum: 0 },
        timeoutMs: { type: 'integer', minimum: 100, maximum: 60_000 },
      },
    },
    ai: {
      type: 'object', additionalProperties: false,
      required: ['workers', 'apiKeys', 'healthIntervalMs', 'maxImageBytes', 'maxAudioBytes', 'maxAttempts', 'totalBudgetMs', 'queueWaitMs', 'suspendBaseMs', 'attemptTimeoutMs'],
      properties: {
        workers: {
          type: 'array',
          items: {
            type: 'object', additionalProperties: false, required: ['url', 'pipelines'],
            properties: {
              url: { type: 'string', pattern: '^https?://[^\\s]+$' },
              token: { type: 'string' },
              pipelines: {
                type: 'array', minItems: 1,
                items: {
                  type: 'object', additionalProperties: false, required: ['pipeline', 'model_id'],
                  properties: {
                    pipeline: { type: 'string' }, model_id: { type: 'string', minLength: 1 },
                    warm: { type: 'boolean' }, capacity: { type: 'integer', minimum: 1, maximum: 256 },
                  },
                },
              },
            },
          },
        },
        apiKeys: { type: 'array', items: { type: 'string', minLength: 16 } },
        healthIntervalMs: { type: 'integer', minimum: 200 },
        maxImageBytes: { type: 'integer', minimum: 1024 },
        maxAudioBytes: { type: 'integer', minimum: 1024 },
        maxAttempts: { type: 'integer', minimum: 1, maximum: 10 },
        totalBudgetMs: { type: 'integer', minimum: 1000 },
        queueWaitMs: { type: 'integer', minimum: 0 },
        suspendBaseMs: { type: 'integer', minimum: 1 },
        attemptTimeoutMs: { type: 'integer', minimum: 0 },
      },
    },
    payments: {
      type: 'object', additionalProperties: false,
      required: ['enabled', 'localAccountCredits', 'transcodePrice', 'aiPrices', 'onInsufficientBalance'],
      properties: {
        enabled: { type: 'boolean' },
        localAccountCredits: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        transcodePrice: {
          type: 'object', additionalProperties: false, required: ['pricePerUnit', 'pixelsPerUnit'],
          properties: { pricePerUnit: { type: 'integer', minimum: 0 }, pixelsPerUnit: { type: 'integer', minimum: 1 } },
        },
        aiPrices: {
          type: 'array',
          items: {
            type: 'object', additionalProperties: false, required: ['pipeline', 'model_id', 'pricePerUnit', 'pixelsPerUnit'],
            properties: {
              pipeline: { type: 'string', minLength: 1 }, model_id: { type: 'string', minLength: 1 },
              pricePerUnit: { type: 'integer', minimum: 0 }, pixelsPerUnit: { type: 'integer', minimum: 1 },
            },
          },
        },
        onInsufficientBalance: { enum: ['end', 'source-only'] },
      },
    },
    metrics: {
      type: 'object', additionalProperties: false, required: ['manifestIdLabels'],
      properties: { manifestIdLabels: { type: 'boolean' } },
    },
    allowAnonymous: { type: 'boolean' },
    log: {
      type: 'object', additionalProperties: false, required: ['level', 'format'],
      properties: {
        level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
        format: { enum: ['auto', 'json', 'pretty'] },
      },
    },
    shutdownTimeoutMs: { type: 'integer', minimum: 0 },
  },
} as const;

/** `x264Preset` → `X264_PRESET`, `segmentTargetMs` → `SEGMENT_TARGET_MS`. */
function toEnvSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every leaf of the defaults with its environment variable name and path. */
export function environmentVariables(): { name: string; path: string[] }[] {
  const out: { name: string; path: string[] }[] = [];
  const walk = (node: JsonObject, path: string[]): void => {
    for (const [key, value] of Object.entries(node)) {
      const next = [...path, key];
      if (isObject(value)) walk(value, next);
      else out.push({ name: `MEDIAGATE_${next.map(toEnvSegment).join('_')}`, path: next });
    }
  };
  walk(defaultConfig() as unknown as JsonObject, []);
  return out;
}

/**
 * Parses one setting given as text (an environment variable or a flag) into the type of its
 * default: integers (underscores allowed as separators), booleans (1/0, true/false, yes/no,
 * on/off), arrays (JSON, or a comma-separated list), strings as they are.
 * @throws GatewayError CONFIG_INVALID naming the variable and the expected type.
 */
export function parseSettingValue(name: string, raw: string, template: unknown): unknown {
  return parseEnvValue(name, raw, template as Json);
}

function parseEnvValue(name: string, raw: string, template: Json): Json {
  const bad = (what: string): never => {
    throw new GatewayError('CONFIG_INVALID', `${name}=${JSON.stringify(raw.slice(0, 80))}: expected ${what}`);
  };
  if (typeof template === 'number') {
    const text = raw.trim().replace(/_/g, '');
    if (!/^-?\d+$/.test(text)) bad('an integer');
    return Number(text);
  }
  if (typeof template === 'boolean') {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return bad('true or false');
  }
  if (Array.isArray(template)) {
    const text = raw.trim();
    if (text.startsWith('[')) {
      try {
        return JSON.parse(text) as Json;
      } catch {
        return bad('a JSON array');
      }
    }
    return text === '' ? [] : text.split(',').map((s) => s.trim()).filter(Boolean);
  }
  return raw;
}

function mergeInto(target: JsonObject, source: JsonObject, path: string): void {
  for (const [key, value] of Object.entries(source)) {
    const where = path ? `${path}.${key}` : key;
    const current = target[key];
    if (isObject(value) && isObject(current)) mergeInto(current, value, where);
    else target[key] = value;
  }
}

/** One line naming every schema violation (field path and problem) and where the values came from. */
export function describeErrors(errors: ErrorObject[] | null | undefined, origin: string): string {
  return (errors ?? []).map((e) => {
    const where = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    if (e.keyword === 'additionalProperties') return `${where}: unknown field "${String(e.params['additionalProperty'])}"`;
    if (e.keyword === 'enum') return `${where}: must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}`;
    return `${where}: ${e.message ?? 'invalid'}`;
  }).join('; ') + ` (from ${origin})`;
}

/**
 * Reads a YAML (or JSON) config file holding a mapping; an empty file is an empty mapping.
 * @throws GatewayError CONFIG_INVALID naming the file and the problem.
 */
export function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) throw new GatewayError('CONFIG_INVALID', `config file ${path} must contain a mapping at the top level`);
  return parsed;
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
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validateConfig = ajv.compile<MediagateConfig>(CONFIG_SCHEMA);

/**
 * Loads and validates the configuration.
 * @throws GatewayError CONFIG_INVALID naming every bad field and where it came from.
 */
export function loadConfig(options: LoadConfigOptions = {}): MediagateConfig {
  const cwd = options.cwd ?? process.cwd();
  const config = defaultConfig() as unknown as JsonObject;
  const origins: string[] = ['defaults'];

  const file = options.file ?? options.env?.['MEDIAGATE_CONFIG'];
  if (file) {
    const path = resolve(cwd, file);
    mergeInto(config, readConfigFile(path) as JsonObject, '');
    origins.push(path);
  }

  if (options.env) {
    const known = new Map(environmentVariables().map((v) => [v.name, v.path]));
    const defaults = defaultConfig() as unknown as JsonObject;
    for (const [name, raw] of Object.entries(options.env)) {
      // MEDIAGATE_AI_WORKER_* belongs to the reference AI worker (cmd/ai-worker.ts), which may share the shell.
      if (!name.startsWith('MEDIAGATE_') || name.startsWith('MEDIAGATE_AI_WORKER_') || raw === undefined || name === 'MEDIAGATE_CONFIG') continue;
      const path = known.get(name);
      if (!path) {
        throw new GatewayError('CONFIG_INVALID', `unknown environment variable ${name}; known: ${[...known.keys()].join(', ')}`);
      }
      let node = config;
      let template = defaults;
      for (const key of path.slice(0, -1)) {
        node = node[key] as JsonObject;
        template = template[key] as JsonObject;
      }
      const leaf = path[path.length - 1]!;
      node[leaf] = parseEnvValue(name, raw, template[leaf] as Json);
    }
    origins.push('environment');
  }
  if (options.overrides) mergeInto(config, options.overrides as JsonObject, '');

  if (!validateConfig(config)) {
    throw new GatewayError('CONFIG_INVALID', `invalid configuration: ${describeErrors(validateConfig.errors, origins.join(' → '))}`);
  }
  const result = config as unknown as MediagateConfig;
  result.storage.dir = isAbsolute(result.storage.dir) ? result.storage.dir : resolve(cwd, result.storage.dir);
  result.workDir = isAbsolute(result.workDir) ? result.workDir : resolve(cwd, result.workDir);
  // With port 0 the real port is known only once bound; the gateway derives publicUrl then.
  if (result.http.publicUrl === '' && result.http.port !== 0) {
    const host = result.http.host.includes(':') ? `[${result.http.host}]` : result.http.host;
    result.http.publicUrl = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${result.http.port}`;
  }
  result.http.publicUrl = result.http.publicUrl.replace(/\/+$/, '');
  checkSecurity(result);
  checkHeartbeat(result);
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

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Refuses a public bind with anonymous publishing (WIRE-CONTRACT.md §1).
 * @throws GatewayError CONFIG_INVALID telling the operator the two ways out.
 */
function checkSecurity(config: MediagateConfig): void {
  const publicBinds = [config.http.host, ...(config.rtmp.enabled ? [config.rtmp.host] : [])].filter((h) => !isLoopbackHost(h));
  if (config.auth.mode === 'webhook' && config.auth.webhookUrl === '') {
    throw new GatewayError('CONFIG_INVALID', 'auth.mode is webhook but auth.webhookUrl is empty: set MEDIAGATE_AUTH_WEBHOOK_URL');
  }
  const authConfigured = config.streamKeys.length > 0 || config.auth.mode === 'webhook';
  if (publicBinds.length > 0 && !authConfigured && !config.allowAnonymous) {
    throw new GatewayError('CONFIG_INVALID',
      `refusing to bind ${publicBinds.join(', ')} with anonymous publishing: configure streamKeys ` +
      '(MEDIAGATE_STREAM_KEYS or the config file) or the auth webhook (MEDIAGATE_AUTH_MODE=webhook), or set allowAnonymous: true (MEDIAGATE_ALLOW_ANONYMOUS=true) to accept any stream name');
  }
}
