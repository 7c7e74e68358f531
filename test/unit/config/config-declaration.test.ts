/**
 * The configuration declarations (src/config/config-schema.ts, src/ai-worker/config.ts, one TypeBox
 * schema each) keep what the three hand-written copies (interface, defaults, JSON schema) gave
 * before: the environment variable names (public: deployments set them) and the defaults. Both
 * pins below were generated from the code before the declarations replaced it, and must only
 * change on purpose (since then: the S3 store's `storage.publicBaseUrl` and `storage.s3.*`, and the store outage's
 * `storage.outageBudgetMs` and `storage.maxBufferedSegments`, and the stream lease's
 * `ingest.reconnectGraceMs`, the restream outputs' `outputs.*`, and the ladder fit's `ladderFitsSource`, and live video-to-video billing's `payments.liveUnitsPerSecond` and
 * `payments.liveHoldSec`, added; `ai.live.*`, the live video-to-video timings, added; `webrtc.*`, WHIP ingest's, added; `webrtc.whep*`, WHEP playback's, added; `ai.serverTiming`, the AI stage profile, added).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { environmentVariables, defaultConfig, loadConfig } from '../../../src/config/config.ts';
import { CONFIG_SCHEMA } from '../../../src/config/config-schema.ts';
import { AI_WORKER_CONFIG_SCHEMA, aiWorkerEnvironmentVariables, defaultAiWorkerConfig, loadAiWorkerConfig } from '../../../src/ai-worker/config.ts';
import { settingsOf } from '../../../src/config/settings.ts';
import type { TSchema } from '@sinclair/typebox';
import { X264_PRESETS, buildLadderArgs } from '../../../src/transcode/ladder-args.ts';
import { fitRendition, PRESETS } from '../../../src/domain/profile.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

/** `environmentVariables()` of the gateway before the declaration, in order. */
const GATEWAY_ENV_NAMES = [
  'MEDIAGATE_HTTP_HOST',
  'MEDIAGATE_HTTP_PORT',
  'MEDIAGATE_HTTP_PUBLIC_URL',
  'MEDIAGATE_HTTP_MAX_BODY_BYTES',
  'MEDIAGATE_HTTP_ADMIN_TOKEN',
  'MEDIAGATE_HTTP_ALLOWED_HOSTS',
  'MEDIAGATE_RTMP_ENABLED',
  'MEDIAGATE_RTMP_HOST',
  'MEDIAGATE_RTMP_PORT',
  'MEDIAGATE_REDIS_URL',
  'MEDIAGATE_REDIS_KEY_PREFIX',
  'MEDIAGATE_REDIS_MEDIA_RETRY_BUDGET_MS',
  'MEDIAGATE_STORAGE_KIND',
  'MEDIAGATE_STORAGE_DIR',
  'MEDIAGATE_STORAGE_PUBLIC_BASE_URL',
  'MEDIAGATE_STORAGE_OUTAGE_BUDGET_MS',
  'MEDIAGATE_STORAGE_MAX_BUFFERED_SEGMENTS',
  'MEDIAGATE_STORAGE_S3_ENDPOINT',
  'MEDIAGATE_STORAGE_S3_BUCKET',
  'MEDIAGATE_STORAGE_S3_REGION',
  'MEDIAGATE_STORAGE_S3_FORCE_PATH_STYLE',
  'MEDIAGATE_STORAGE_S3_PREFIX',
  'MEDIAGATE_STORAGE_S3_MAX_ATTEMPTS',
  'MEDIAGATE_STORAGE_S3_RETRY_MODE',
  'MEDIAGATE_STORAGE_S3_CONNECT_TIMEOUT_MS',
  'MEDIAGATE_STORAGE_S3_REQUEST_TIMEOUT_MS',
  'MEDIAGATE_WORK_DIR',
  'MEDIAGATE_TRANSCODE_EMBEDDED',
  'MEDIAGATE_TRANSCODE_CONCURRENCY',
  'MEDIAGATE_TRANSCODE_X264_PRESET',
  'MEDIAGATE_TRANSCODE_TIMEOUT_MS',
  'MEDIAGATE_TRANSCODE_ATTEMPTS',
  'MEDIAGATE_TRANSCODE_BACKOFF_MS',
  'MEDIAGATE_TRANSCODE_LIVE_SESSIONS',
  'MEDIAGATE_TRANSCODE_LIVE_ENCODER_TUNING',
  'MEDIAGATE_TRANSCODE_METRICS_PORT',
  'MEDIAGATE_LADDER',
  'MEDIAGATE_LADDER_FITS_SOURCE',
  'MEDIAGATE_SEGMENT_TARGET_MS',
  'MEDIAGATE_HLS_WINDOW_SEGMENTS',
  'MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS',
  'MEDIAGATE_HLS_HEARTBEAT_INTERVAL_MS',
  'MEDIAGATE_HLS_HEARTBEAT_TTL_MS',
  'MEDIAGATE_HLS_SWEEP_INTERVAL_MS',
  'MEDIAGATE_PLAYLIST_CACHE_MAX_AGE_MS',
  'MEDIAGATE_CLUSTER_HEARTBEAT_INTERVAL_MS',
  'MEDIAGATE_OUTPUTS_MAX_PER_STREAM',
  'MEDIAGATE_OUTPUTS_BACKOFF_INITIAL_MS',
  'MEDIAGATE_OUTPUTS_BACKOFF_MAX_MS',
  'MEDIAGATE_OUTPUTS_DEFAULTS',
  'MEDIAGATE_RECORDING_ENABLED',
  'MEDIAGATE_RECORDING_DELETE_AFTER_S',
  'MEDIAGATE_THUMBNAILS_ENABLED',
  'MEDIAGATE_THUMBNAILS_WIDTH_PX',
  'MEDIAGATE_THUMBNAILS_JPEG_QSCALE',
  'MEDIAGATE_RETENTION_MARGIN_SEGMENTS',
  'MEDIAGATE_RETENTION_ENDED_KEEP_S',
  'MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS',
  'MEDIAGATE_WATERMARK_IMAGE',
  'MEDIAGATE_WATERMARK_IMAGE_KEY',
  'MEDIAGATE_WATERMARK_TEXT',
  'MEDIAGATE_WATERMARK_POSITION',
  'MEDIAGATE_WATERMARK_MARGIN_FRACTION',
  'MEDIAGATE_WATERMARK_WIDTH_FRACTION',
  'MEDIAGATE_WATERMARK_FONT_SIZE_FRACTION',
  'MEDIAGATE_WATERMARK_OPACITY',
  'MEDIAGATE_WATERMARK_APPLY_TO_SOURCE',
  'MEDIAGATE_STREAM_KEYS',
  'MEDIAGATE_AUTH_MODE',
  'MEDIAGATE_AUTH_WEBHOOK_URL',
  'MEDIAGATE_AUTH_WEBHOOK_TIMEOUT_MS',
  'MEDIAGATE_INGEST_RECONNECT_GRACE_MS',
  'MEDIAGATE_PUSH_IDLE_TIMEOUT_MS',
  'MEDIAGATE_PUSH_REPLY_TIMEOUT_MS',
  'MEDIAGATE_WEBRTC_WHIP_ENABLED',
  'MEDIAGATE_WEBRTC_BIND_ADDRESS',
  'MEDIAGATE_WEBRTC_ICE_SERVERS',
  'MEDIAGATE_WEBRTC_PORT_RANGE_BEGIN',
  'MEDIAGATE_WEBRTC_PORT_RANGE_END',
  'MEDIAGATE_WEBRTC_ICE_TIMEOUT_MS',
  'MEDIAGATE_WEBRTC_WHIP_MAX_SESSIONS',
  'MEDIAGATE_WEBRTC_WHEP_ENABLED',
  'MEDIAGATE_WEBRTC_WHEP_MAX_VIEWERS_PER_STREAM',
  'MEDIAGATE_WEBRTC_WHEP_MAX_VIEWERS',
  'MEDIAGATE_EVENTS_WEBHOOK_URLS',
  'MEDIAGATE_EVENTS_SECRET',
  'MEDIAGATE_EVENTS_ATTEMPTS',
  'MEDIAGATE_EVENTS_BACKOFF_MS',
  'MEDIAGATE_EVENTS_TIMEOUT_MS',
  'MEDIAGATE_AI_WORKERS',
  'MEDIAGATE_AI_API_KEYS',
  'MEDIAGATE_AI_HEALTH_INTERVAL_MS',
  'MEDIAGATE_AI_MAX_IMAGE_BYTES',
  'MEDIAGATE_AI_MAX_AUDIO_BYTES',
  'MEDIAGATE_AI_MAX_ATTEMPTS',
  'MEDIAGATE_AI_TOTAL_BUDGET_MS',
  'MEDIAGATE_AI_QUEUE_WAIT_MS',
  'MEDIAGATE_AI_SUSPEND_BASE_MS',
  'MEDIAGATE_AI_ATTEMPT_TIMEOUT_MS',
  'MEDIAGATE_AI_SERVER_TIMING',
  'MEDIAGATE_AI_RESULT_TTL_S',
  'MEDIAGATE_AI_MODEL_LOAD_WAIT_MS',
  'MEDIAGATE_AI_REGISTRATION_TTL_MS',
  'MEDIAGATE_AI_SLOT_LEASE_TTL_MS',
  'MEDIAGATE_AI_LIVE_START_TIMEOUT_MS',
  'MEDIAGATE_AI_LIVE_EVENT_TIMEOUT_MS',
  'MEDIAGATE_AI_LIVE_OUTPUT_TIMEOUT_MS',
  'MEDIAGATE_AI_LIVE_MAX_INFLIGHT_SEGMENTS',
  'MEDIAGATE_AI_LIVE_SWAP_WINDOW_MS',
  'MEDIAGATE_AI_LIVE_MAX_SWAPS',
  'MEDIAGATE_AI_LIVE_KEEPALIVE_INTERVAL_MS',
  'MEDIAGATE_AI_LIVE_CHARGE_INTERVAL_MS',
  'MEDIAGATE_AI_LIVE_STREAM_WAIT_MS',
  'MEDIAGATE_AI_LIVE_STATUS_KEEP_MS',
  'MEDIAGATE_METRICS_MANIFEST_ID_LABELS',
  'MEDIAGATE_PAYMENTS_ENABLED',
  'MEDIAGATE_PAYMENTS_LOCAL_ACCOUNT_CREDITS',
  'MEDIAGATE_PAYMENTS_TRANSCODE_PRICE_PRICE_PER_UNIT',
  'MEDIAGATE_PAYMENTS_TRANSCODE_PRICE_PIXELS_PER_UNIT',
  'MEDIAGATE_PAYMENTS_AI_PRICES',
  'MEDIAGATE_PAYMENTS_ON_INSUFFICIENT_BALANCE',
  'MEDIAGATE_PAYMENTS_LIVE_UNITS_PER_SECOND',
  'MEDIAGATE_PAYMENTS_LIVE_HOLD_SEC',
  'MEDIAGATE_ALLOW_ANONYMOUS',
  'MEDIAGATE_LOG_LEVEL',
  'MEDIAGATE_LOG_FORMAT',
  'MEDIAGATE_SHUTDOWN_TIMEOUT_MS',
];

/** `aiWorkerEnvironmentVariables()` of the reference AI worker before the declaration, in order. */
const AI_WORKER_ENV_NAMES = [
  'MEDIAGATE_AI_WORKER_HOST',
  'MEDIAGATE_AI_WORKER_PORT',
  'MEDIAGATE_AI_WORKER_PUBLIC_URL',
  'MEDIAGATE_AI_WORKER_TOKEN',
  'MEDIAGATE_AI_WORKER_GATEWAY_URL',
  'MEDIAGATE_AI_WORKER_GATEWAY_ADMIN_TOKEN',
  'MEDIAGATE_AI_WORKER_REGISTER_INTERVAL_MS',
  'MEDIAGATE_AI_WORKER_MODELS',
  'MEDIAGATE_AI_WORKER_ALIAS_DEFAULT_MODEL',
  'MEDIAGATE_AI_WORKER_CAPACITY',
  'MEDIAGATE_AI_WORKER_MAX_INPUT_PIXELS',
  'MEDIAGATE_AI_WORKER_MAX_IMAGE_BYTES',
  'MEDIAGATE_AI_WORKER_TILE_SIZE',
  'MEDIAGATE_AI_WORKER_TILE_OVERLAP',
  'MEDIAGATE_AI_WORKER_LIVE_CAPACITY',
  'MEDIAGATE_AI_WORKER_LIVE_STATUS_INTERVAL_MS',
  'MEDIAGATE_AI_WORKER_LIVE_KEYFRAME_INTERVAL_SEC',
  'MEDIAGATE_AI_WORKER_LIVE_INPUT_TIMEOUT_MS',
  'MEDIAGATE_AI_WORKER_ALLOW_ANONYMOUS',
  'MEDIAGATE_AI_WORKER_LOG_LEVEL',
  'MEDIAGATE_AI_WORKER_LOG_FORMAT',
  'MEDIAGATE_AI_WORKER_SHUTDOWN_TIMEOUT_MS',
];

/** `JSON.stringify(defaultConfig())` before the declaration. */
const GATEWAY_DEFAULTS_JSON = '{"http":{"host":"127.0.0.1","port":9935,"publicUrl":"","maxBodyBytes":67108864,"adminToken":"","allowedHosts":[]},"rtmp":{"enabled":true,"host":"127.0.0.1","port":1935},"redis":{"url":"redis://127.0.0.1:6379","keyPrefix":"mg","mediaRetryBudgetMs":30000},"storage":{"kind":"fs","dir":"./data/objects","publicBaseUrl":"","outageBudgetMs":30000,"maxBufferedSegments":30,"s3":{"endpoint":"","bucket":"","region":"us-east-1","forcePathStyle":false,"prefix":"","maxAttempts":5,"retryMode":"standard","connectTimeoutMs":3000,"requestTimeoutMs":30000}},"workDir":"./data/work","transcode":{"embedded":true,"concurrency":2,"x264Preset":"veryfast","timeoutMs":60000,"attempts":3,"backoffMs":500,"liveSessions":true,"liveEncoderTuning":"latency","metricsPort":9936},"ladder":["P720p30fps16x9","P360p30fps16x9","P240p30fps16x9"],"ladderFitsSource":true,"segmentTargetMs":2000,"hls":{"windowSegments":6,"maxSegmentWaitMs":10000,"heartbeatIntervalMs":2000,"heartbeatTtlMs":10000,"sweepIntervalMs":1000},"playlistCache":{"maxAgeMs":2000},"cluster":{"heartbeatIntervalMs":2000},"outputs":{"maxPerStream":4,"backoffInitialMs":1000,"backoffMaxMs":30000,"defaults":[]},"recording":{"enabled":false,"deleteAfterS":0},"thumbnails":{"enabled":true,"widthPx":320,"jpegQscale":5},"retention":{"marginSegments":6,"endedKeepS":600,"sweepIntervalMs":5000},"watermark":{"image":"","imageKey":"","text":"","position":"bottom-right","marginFraction":0.02,"widthFraction":0.15,"fontSizeFraction":0.05,"opacity":0.8,"applyToSource":false},"streamKeys":[],"auth":{"mode":"static","webhookUrl":"","webhookTimeoutMs":5000},"ingest":{"reconnectGraceMs":30000},"push":{"idleTimeoutMs":60000,"replyTimeoutMs":60000},"webrtc":{"whipEnabled":true,"bindAddress":"127.0.0.1","iceServers":[],"portRangeBegin":0,"portRangeEnd":0,"iceTimeoutMs":15000,"whipMaxSessions":20,"whepEnabled":true,"whepMaxViewersPerStream":50,"whepMaxViewers":200},"events":{"webhookUrls":[],"secret":"","attempts":8,"backoffMs":1000,"timeoutMs":5000},"ai":{"workers":[],"apiKeys":[],"healthIntervalMs":5000,"maxImageBytes":20971520,"maxAudioBytes":52428800,"maxAttempts":3,"totalBudgetMs":120000,"queueWaitMs":2000,"suspendBaseMs":5000,"attemptTimeoutMs":0,"serverTiming":false,"resultTtlS":86400,"modelLoadWaitMs":60000,"registrationTtlMs":60000,"slotLeaseTtlMs":30000,"live":{"startTimeoutMs":5000,"eventTimeoutMs":30000,"outputTimeoutMs":30000,"maxInflightSegments":3,"swapWindowMs":180000,"maxSwaps":2,"keepaliveIntervalMs":10000,"chargeIntervalMs":5000,"streamWaitMs":10000,"statusKeepMs":60000}},"metrics":{"manifestIdLabels":false},"payments":{"enabled":true,"localAccountCredits":1000000000000,"transcodePrice":{"pricePerUnit":1,"pixelsPerUnit":1000000},"aiPrices":[{"pipeline":"*","model_id":"*","pricePerUnit":1,"pixelsPerUnit":1000000}],"onInsufficientBalance":"end","liveUnitsPerSecond":27648000,"liveHoldSec":60},"allowAnonymous":false,"log":{"level":"info","format":"auto"},"shutdownTimeoutMs":10000}';

/** `JSON.stringify(defaultAiWorkerConfig())` before the declaration. */
const AI_WORKER_DEFAULTS_JSON = '{"host":"127.0.0.1","port":8000,"publicUrl":"","token":"","gatewayUrl":"","gatewayAdminToken":"","registerIntervalMs":10000,"models":["esrgan-slim-x2","esrgan-slim-x3","esrgan-slim-x4"],"aliasDefaultModel":true,"capacity":1,"maxInputPixels":524288,"maxImageBytes":20971520,"tileSize":192,"tileOverlap":12,"liveCapacity":1,"liveStatusIntervalMs":10000,"liveKeyframeIntervalSec":2,"liveInputTimeoutMs":60000,"allowAnonymous":false,"logLevel":"info","logFormat":"auto","shutdownTimeoutMs":30000}';

test('the gateway\'s environment variable names are exactly the ones before the declaration', () => {
  assert.deepEqual(environmentVariables().map((v) => v.name), GATEWAY_ENV_NAMES);
});

test('the AI worker\'s environment variable names are exactly the ones before the declaration, prefix MEDIAGATE_AI_WORKER_', () => {
  assert.deepEqual(aiWorkerEnvironmentVariables().map((v) => v.name), AI_WORKER_ENV_NAMES);
});

test('every pinned environment variable is read into its field', () => {
  // One variable per setting, each given a value that differs from the default and still validates.
  const config = loadConfig({ env: { MEDIAGATE_PAYMENTS_TRANSCODE_PRICE_PIXELS_PER_UNIT: '2_000_000', MEDIAGATE_METRICS_MANIFEST_ID_LABELS: 'yes', MEDIAGATE_WORK_DIR: '/tmp/w' } });
  assert.equal(config.payments.transcodePrice.pixelsPerUnit, 2_000_000);
  assert.equal(config.metrics.manifestIdLabels, true);
  assert.equal(config.workDir, '/tmp/w');
  const worker = loadAiWorkerConfig({ env: { MEDIAGATE_AI_WORKER_TILE_SIZE: '256', MEDIAGATE_AI_WORKER_MODELS: 'esrgan-slim-x2' } });
  assert.equal(worker.tileSize, 256);
  assert.deepEqual(worker.models, ['esrgan-slim-x2']);
});

test('the gateway\'s defaults equal the ones before the declaration, field order included', () => {
  assert.equal(JSON.stringify(defaultConfig()), GATEWAY_DEFAULTS_JSON);
});

test('the AI worker\'s defaults equal the ones before the declaration, field order included', () => {
  assert.equal(JSON.stringify(defaultAiWorkerConfig()), AI_WORKER_DEFAULTS_JSON);
});

test('defaults are a fresh copy on every call', () => {
  const a = defaultConfig();
  a.ladder.push('P144p30fps16x9');
  a.payments.aiPrices[0]!.pricePerUnit = 99;
  a.http.port = 1;
  assert.equal(JSON.stringify(defaultConfig()), GATEWAY_DEFAULTS_JSON);
  const w = defaultAiWorkerConfig();
  w.models.pop();
  assert.equal(JSON.stringify(defaultAiWorkerConfig()), AI_WORKER_DEFAULTS_JSON);
});

test('every setting and array-item field of both declarations has a description', () => {
  const missing: string[] = [];
  const items = (schema: TSchema, path: string): void => {
    const item = schema['items'] as TSchema | undefined;
    const properties = item?.['properties'] as Record<string, TSchema> | undefined;
    if (!properties) return;
    for (const [key, child] of Object.entries(properties)) {
      if (typeof child['description'] !== 'string' || child['description'] === '') missing.push(`${path}[].${key}`);
      items(child, `${path}[].${key}`);
    }
  };
  for (const [schema, prefix] of [[CONFIG_SCHEMA, 'MEDIAGATE_'], [AI_WORKER_CONFIG_SCHEMA, 'MEDIAGATE_AI_WORKER_']] as const) {
    for (const setting of settingsOf(schema, prefix)) {
      const path = setting.path.join('.');
      if (typeof setting.schema['description'] !== 'string' || setting.schema['description'] === '') missing.push(path);
      items(setting.schema, path);
    }
  }
  assert.deepEqual(missing, []);
});

test('the x264 presets the config accepts are exactly the ones the ladder arguments accept (one list)', () => {
  const declared = (CONFIG_SCHEMA.properties.transcode.properties.x264Preset as unknown as { enum: string[] }).enum;
  assert.deepEqual(declared, [...X264_PRESETS]);
  const rendition = fitRendition(PRESETS['P240p30fps16x9']!, { width: 640, height: 360, fpsNum: 30, fpsDen: 1 });
  assert.ok(rendition);
  const ladder = (preset: string): string[] => buildLadderArgs({
    inputPath: '/tmp/in.ts', outputs: [{ rendition, path: '/tmp/out.ts' }], sourceAudioCodec: 'aac', x264Preset: preset as never,
  });
  for (const preset of X264_PRESETS) {
    const configured = loadConfig({ env: { MEDIAGATE_TRANSCODE_X264_PRESET: preset } }).transcode.x264Preset;
    const args = ladder(configured);
    assert.equal(args[args.indexOf('-preset') + 1], preset);
  }
  // placebo was accepted by the ladder arguments but refused by the config; both refuse it now.
  assert.throws(() => loadConfig({ env: { MEDIAGATE_TRANSCODE_X264_PRESET: 'placebo' } }), /transcode\.x264Preset: must be one of ultrafast/);
  assert.throws(() => ladder('placebo'), (e: GatewayError) => e.code === 'CONFIG_INVALID' && /unknown x264 preset "placebo"/.test(e.message));
});
