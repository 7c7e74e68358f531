/**
 * Composition root: builds every component from the config, wires the small interfaces
 * each feature folder declares, and owns start/close order (close in reverse).
 *
 * Roles:
 * - `gateway`: HTTP (playback, health) + RTMP ingest + segmenter + queue producer, and an
 *   embedded transcoder worker when `transcode.embedded` is true (the `make run` default).
 * - `transcoder`: a transcoder worker only; any number share one Redis and object store.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MediagateConfig } from './config/config.ts';
import type { Logger } from './log/logger.ts';
import { parseLadder } from './domain/profile.ts';
import { openObjectStores, type ObjectStores } from './storage/open-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { ownerTag, sweepWorkDir } from './storage/work-dir.ts';
import { RedisConnections, type Redis } from './redis/connections.ts';
import { RedisRetry } from './redis/retry.ts';
import { RedisKeys } from './redis/keys.ts';
import { RedisSegmentIndex } from './hls/segment-index-store.ts';
import { IndexSweeper } from './hls/index-sweeper.ts';
import { TranscodeQueue, TranscodeWorker, transcodeLockTimingFor } from './transcode/transcode-queue.ts';
import { RedisPushClaims } from './ingest/push-claim-store.ts';
import { SegmentTranscoder } from './transcode/segment-transcoder.ts';
import { TranscodeResults } from './transcode/transcode-results.ts';
import { FfmpegRunner } from './media/ffmpeg-runner.ts';
import { AccountStreamKeyAuthorizer, LiveIngest, StaticKeyAuthorizer, type PublishAuthorizer } from './ingest/live-ingest.ts';
import { WebhookAuthorizer } from './ingest/auth-webhook.ts';
import { createPushRouter } from './ingest/push-routes.ts';
import { mediaSourceProbe, rtmpSegmenters } from './ingest/media-adapters.ts';
import { Remuxer } from './media/remux.ts';
import { ControlBus } from './control/control-bus.ts';
import { EventQueue, EventDeliveryWorker } from './events/event-queue.ts';
import { NO_EVENTS, type EventSink } from './events/events.ts';
import { createControlRouter } from './control/control-routes.ts';
import { createDocsRouter } from './http/docs-routes.ts';
import { RedisLedger } from './payments/ledger-store.ts';
import { RedisAccountKeys } from './payments/account-store.ts';
import { createPaymentsRouter } from './payments/payments-routes.ts';
import { Billing, unnamedStreamAccount } from './payments/billing.ts';
import { HoldExpirySweep, LocalAccount } from './payments/local-account.ts';
import { probeAudioDurationMs } from './media/audio-probe.ts';
import { registerLiveStreamsGauge } from './metrics/ingest-metrics.ts';
import { createProcessMetrics, type ProcessMetrics } from './metrics/process-metrics.ts';
import { DEFAULT_MODEL_ID, isPipeline } from './domain/pipelines.ts';
import { isLoopbackHost } from './config/config.ts';
import { WorkerRegistry } from './ai/worker-registry.ts';
import { WorkerClient } from './ai/worker-client.ts';
import { createAiSessions, registerConfiguredWorkers } from './ai/ai-sessions.ts';
import { fetchResultMedia } from './ai/media-fetch.ts';
import { framesToMp4 } from './media/frames-to-mp4.ts';
import { AccountApiKeyAuthorizer, createAiRouter, StaticApiKeyAuthorizer } from './ai/ai-routes.ts';
import { RtmpServer } from './ingest/rtmp/rtmp-server.ts';
import { createPlaybackRouter } from './hls/playback.ts';
import { createHttpApp, listenEarly, closeServer, boundPort } from './http/http-app.ts';
import { healthOf, pingCheck } from './http/health.ts';
import { Lifecycle } from './lifecycle.ts';
import { drainGateway } from './ingest/drain.ts';
import { RecordingStore } from './recording/recording-store.ts';
import { keepingRecordedSegments } from './recording/segment-keeping.ts';
import { RecordingSweeper } from './recording/recording-sweeper.ts';
import { createRecordingApiRouter, createRecordingPlaybackRouter } from './recording/recording-routes.ts';
import { exportMp4 } from './media/mp4-export.ts';
import { ChildSupervisor } from './media/child-supervisor.ts';

export type Role = 'gateway' | 'transcoder';

/** How long startup waits for the object store's check (S3 HeadBucket, retries included) before giving up. */
const STORAGE_STARTUP_CHECK_MS = 15_000;
/** How long `/healthz` waits for the object store's check: short, so the probe answers while S3 is unreachable. */
const STORAGE_HEALTH_CHECK_MS = 1500;

export interface RunningApp {
  /** Bound HTTP port (gateway role), useful when configured as 0. */
  readonly httpPort?: number;
  /**
   * Idempotent. Gateway role: drains first (see `drainGateway`), then closes the rest in
   * reverse start order; no orphan ffmpeg afterwards. Waiting is bounded by
   * `shutdownTimeoutMs` (jobs still queued or running then are left to other transcoders).
   */
  close(): Promise<void>;
}

/** What both roles share, built once by `startApp` before the role's own parts. */
interface Core {
  /** Every ffprobe/ffmpeg child not owned by a runner of its own: stopped when the app closes. */
  readonly children: ChildSupervisor;
  readonly storage: ObjectStore;
  /** The media and results stores, their startup check and `/healthz` check. */
  readonly stores: ObjectStores;
  /** Opens the other named Redis connections (queues, pub/sub); closed by the lifecycle. */
  readonly connections: RedisConnections;
  /** The `state` connection: request/response commands of the stores. */
  readonly redis: Redis;
  /** Redis keys under the deployment prefix (`redis.keyPrefix`). */
  readonly keys: RedisKeys;
  readonly index: RedisSegmentIndex;
  /** The same index, keeping the segments of recorded sessions as they are recorded (recording/segment-keeping.ts). */
  readonly recordingIndex: RedisSegmentIndex;
  readonly recordings: RecordingStore;
  readonly retry: RedisRetry;
  readonly events: EventSink;
  readonly metrics: ProcessMetrics;
  readonly ledger: RedisLedger;
  readonly billing: Billing | undefined;
}

/** The gateway's AI worker pool, built before the metrics so they can ask which models it serves. */
interface AiWorkers {
  readonly client: WorkerClient;
  readonly registry: WorkerRegistry;
}

/**
 * Starts the given role over one {@link Lifecycle}. On a failure during start, whatever was
 * started is closed again before the error is rethrown.
 */
export async function startApp(config: MediagateConfig, logger: Logger, role: Role): Promise<RunningApp> {
  const lifecycle = new Lifecycle({ logger, shutdownTimeoutMs: config.shutdownTimeoutMs });
  try {
    await mkdir(config.workDir, { recursive: true });
    // Before this process creates any scratch entry of its own (see storage/work-dir.ts).
    await sweepWorkDir(config.workDir, { transcoder: role === 'transcoder' || config.transcode.embedded, gateway: role === 'gateway' }, logger);
    const ai = role === 'gateway' ? createAiWorkers(config, logger, lifecycle) : undefined;
    const core = await startCore(config, logger, role, lifecycle, ai);
    if (role === 'transcoder' || config.transcode.embedded) {
      await startTranscodeWorker(config, logger, core, lifecycle);
    }
    const close = (): Promise<void> => lifecycle.close();
    if (ai === undefined) {
      await startTranscoderRole(config, logger, core, lifecycle);
      return { close };
    }
    return { httpPort: await startGateway(config, logger, core, ai, lifecycle), close };
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}

/** Redis, the segment index, the retry executor, events, metrics and billing. */
async function startCore(config: MediagateConfig, logger: Logger, role: Role, lifecycle: Lifecycle, ai: AiWorkers | undefined): Promise<Core> {
  const prefix = config.redis.keyPrefix;
  // Registered before every component that spawns children, so closed after them.
  const children = new ChildSupervisor({ logger: logger.child({ component: 'media' }) });
  lifecycle.add('media-children', () => children.close());
  const stores = openObjectStores(config.storage, join(config.workDir, 'storage'));
  lifecycle.add('storage', () => stores.close());
  await stores.verify(STORAGE_STARTUP_CHECK_MS);
  logger.info({ storage: stores.kind, location: stores.location }, 'object store ready');
  const storage = stores.media;

  // One named connection per purpose (CLIENT LIST shows `mediagate:<role>:<purpose>`), closed last.
  const connections = new RedisConnections({ url: config.redis.url, logger: logger.child({ component: 'redis' }), namePrefix: `mediagate:${role}` });
  lifecycle.add('redis', () => connections.close());
  await connections.ready('state', 10_000);
  const redis: Redis = connections.open('state');
  logger.info({ redis: connections.redactedUrl }, 'redis connected');
  const keys = new RedisKeys(prefix);

  const index = new RedisSegmentIndex({
    redis, keys, retainSegments: Math.max(config.hls.windowSegments * 2, 32),
    maxSegmentWaitMs: config.hls.maxSegmentWaitMs, heartbeatTtlMs: config.hls.heartbeatTtlMs,
  });
  const recordings = new RecordingStore({ redis, keys });
  const recordingIndex = keepingRecordedSegments(index, recordings);
  // Media-path Redis operations wait out an outage up to this budget (redis/retry.ts).
  const retry = new RedisRetry({ logger: logger.child({ component: 'redis-retry' }), config: { budgetMs: config.redis.mediaRetryBudgetMs } });

  let events: EventSink = NO_EVENTS;
  if (config.events.webhookUrls.length > 0) {
    const eventQueue = new EventQueue({
      connection: connections.open('events', 'commands'), prefix, logger: logger.child({ component: 'events' }), urls: config.events.webhookUrls,
      attempts: config.events.attempts, backoffMs: config.events.backoffMs,
    });
    lifecycle.add('event-queue', () => eventQueue.close());
    events = eventQueue;
  }

  const metrics = createMetrics(config, ai);
  lifecycle.add('metrics', async () => metrics.registry.close());

  const ledger = new RedisLedger({ redis, prefix });
  const billing = config.payments.enabled ? new Billing({
    ledger, transcodePrice: config.payments.transcodePrice, aiPrices: config.payments.aiPrices, logger: logger.child({ component: 'billing' }),
    onCharged: (kind, credits) => metrics.ledger.recordLedgerEntry(kind, credits),
    segmentHoldTtlMs: config.transcode.timeoutMs * (config.transcode.attempts + 1) + 60_000,
    aiHoldTtlMs: config.ai.totalBudgetMs + 60_000,
  }) : undefined;
  return { children, storage, stores, connections, redis, keys, index, recordingIndex, recordings, retry, events, metrics, ledger, billing };
}

/**
 * Metrics of both roles. Model IDs become labels only when a worker serves them (bounded
 * cardinality); configured stream keys and API keys never do.
 */
function createMetrics(config: MediagateConfig, ai: AiWorkers | undefined): ProcessMetrics {
  const workers = ai?.registry;
  return createProcessMetrics({
    manifestIdLabels: config.metrics.manifestIdLabels,
    isSecret: (value) => config.streamKeys.some((k) => k.streamKey === value) || config.ai.apiKeys.includes(value),
    ai: {
      knownModel: (pipeline, modelID) => workers !== undefined && isPipeline(pipeline)
        && (workers.serves(pipeline, modelID) || DEFAULT_MODEL_ID[pipeline] === modelID),
      ...(workers ? { workerPool: () => workers.list() } : {}),
    },
  });
}

/** The transcoder role: the worker is already running; adds the optional metrics/health HTTP port. */
async function startTranscoderRole(config: MediagateConfig, logger: Logger, core: Core, lifecycle: Lifecycle): Promise<void> {
  const { redis, metrics, stores } = core;
  // A transcoder holds no live stream: the family is listed without series, as it always was.
  registerLiveStreamsGauge(metrics.registry);
  let metricsUrl: string | undefined;
  if (config.transcode.metricsPort > 0) {
    const http = await listenEarly(config.http.host, config.transcode.metricsPort, 'MEDIAGATE_TRANSCODE_METRICS_PORT (0 disables it)');
    lifecycle.add('http', async (deadlineMs) => { await http.drain(deadlineMs); await closeServer(http.server); });
    http.setHandler(createHttpApp({
      logger: logger.child({ component: 'http' }),
      routers: [metrics.http.router()],
      health: healthOf({
        redis: async () => (redis.status === 'ready' ? { ok: true } : { ok: false, detail: redis.status }),
        storage: () => stores.check(STORAGE_HEALTH_CHECK_MS),
      }),
    }));
    metricsUrl = `http://${config.http.host}:${boundPort(http.server)}/metrics`;
  }
  logger.info({ concurrency: config.transcode.concurrency, preset: config.transcode.x264Preset, metrics: metricsUrl ?? 'disabled' }, 'transcoder ready; waiting for jobs');
}

/** The AI worker client and registry (not started: `startGateway` registers workers and starts health checks). */
function createAiWorkers(config: MediagateConfig, logger: Logger, lifecycle: Lifecycle): AiWorkers {
  const client = new WorkerClient();
  lifecycle.add('ai-worker-client', async () => client.close());
  const registry = new WorkerRegistry({
    logger: logger.child({ component: 'ai' }), healthIntervalMs: config.ai.healthIntervalMs,
    checkHealth: (worker) => client.checkHealth(worker, Math.min(2000, config.ai.healthIntervalMs)),
  });
  lifecycle.add('ai-workers', async () => registry.close());
  return { client, registry };
}

/**
 * The gateway role: HTTP (playback, push, control, payments, AI, health), RTMP ingest and the
 * segmenters, the queue producer, the index sweeper and the control bus; sets the drain.
 * @returns the bound HTTP port
 */
async function startGateway(config: MediagateConfig, logger: Logger, core: Core, ai: AiWorkers, lifecycle: Lifecycle): Promise<number> {
  const { storage, stores, connections, redis, keys, index, recordingIndex, recordings, retry, events, metrics, ledger, billing } = core;
  const prefix = config.redis.keyPrefix;
  const defaultLadder = parseLadder(config.ladder);
  // Bind HTTP first (503 until ready) so publicUrl can name the real port when configured as 0.
  const http = await listenEarly(config.http.host, config.http.port);
  lifecycle.add('http', () => closeServer(http.server));
  const httpPort = boundPort(http.server);
  const publicUrl = config.http.publicUrl || `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${httpPort}`;

  const queue = new TranscodeQueue({
    connection: connections.open('queue', 'blocking'),
    openEventsConnection: () => connections.open('queue-events', 'blocking'),
    prefix: keys.prefix, logger: logger.child({ component: 'queue' }),
    attempts: config.transcode.attempts, backoffMs: config.transcode.backoffMs,
  });
  lifecycle.add('queue', () => queue.close());

  if (config.events.webhookUrls.length > 0) {
    const delivery = new EventDeliveryWorker({
      connection: core.connections.open('events-worker', 'blocking'), prefix, logger: logger.child({ component: 'events' }), secret: config.events.secret, timeoutMs: config.events.timeoutMs,
    });
    lifecycle.add('event-delivery', () => delivery.close());
  }

  const ingestLog = logger.child({ component: 'ingest' });
  const ingestRunner = new FfmpegRunner({ logger: ingestLog });
  lifecycle.add('ingest-ffmpeg', () => ingestRunner.close());
  const remuxer = new Remuxer(ingestRunner);
  const configuredAuthorizer: PublishAuthorizer = config.auth.mode === 'webhook'
    ? new WebhookAuthorizer({ webhookUrl: config.auth.webhookUrl, timeoutMs: config.auth.webhookTimeoutMs, logger: logger.child({ component: 'auth' }), defaultLadder })
    : new StaticKeyAuthorizer(config.streamKeys, defaultLadder);
  const accountKeys = new RedisAccountKeys({ redis, prefix });
  // Stream keys issued to accounts (payments API) first, then the configured mode.
  const authorizer = new AccountStreamKeyAuthorizer(accountKeys, configuredAuthorizer, defaultLadder);
  const loopbackOnly = isLoopbackHost(config.http.host);
  // The loopback `local` account is state that must exist while the gateway runs (checked by /healthz).
  const localAccount = config.payments.enabled && loopbackOnly && config.payments.localAccountCredits > 0
    ? new LocalAccount(ledger, BigInt(config.payments.localAccountCredits)) : undefined;
  if (await localAccount?.ensure()) logger.info({ credits: config.payments.localAccountCredits }, 'created the local account for loopback use');
  if (billing) {
    const holdSweep = new HoldExpirySweep(ledger, (err) => logger.warn({ err: err.message }, 'hold expiry sweep failed'));
    lifecycle.add('ledger-sweep', async () => holdSweep.close());
  }
  // Built before ingest (which kicks its publishers and pulls from it); publishes reach ingest once it starts.
  const rtmp = config.rtmp.enabled ? new RtmpServer({
    host: config.rtmp.host, port: config.rtmp.port, logger, storePath: join(config.workDir, 'nms-store'),
  }) : undefined;
  const ingest = new LiveIngest({
    logger: ingestLog,
    authorizer,
    index: recordingIndex,
    pushClaims: new RedisPushClaims({ redis, keys }),
    sessions: recordings,
    recordByDefault: config.recording.enabled,
    retry,
    queue,
    recorder: metrics.ingest,
    storage,
    probe: mediaSourceProbe(core.children),
    remuxer,
    events,
    kickPublisher: (publishId) => { rtmp?.kick(publishId); },
    publicUrl,
    segmentTargetMs: config.segmentTargetMs,
    pushIdleTimeoutMs: config.push.idleTimeoutMs,
    pushReplyTimeoutMs: config.push.replyTimeoutMs,
    ...(billing ? { billing } : {}),
    // Streams naming no account: `local` on loopback, not metered on a public bind.
    defaultAccountID: unnamedStreamAccount(loopbackOnly),
    onInsufficientBalance: config.payments.onInsufficientBalance,
    startSegmenter: rtmpSegmenters({
      // From the address RTMP is bound to (rtmp.host; a wildcard bind on loopback).
      pullUrl: (publishId) => rtmp?.pullUrl(publishId),
      workDir: join(config.workDir, 'segmenter'), dirPrefix: ownerTag(), segmentTargetMs: config.segmentTargetMs, logger: ingestLog, supervisor: core.children,
    }),
  });

  // Ingest closes before RTMP so segmenters flush while the publisher socket is still up.
  if (rtmp) {
    await rtmp.start({
      onPublish: async (req) => {
        try {
          await ingest.publish(req.sessionId, req.streamName, `rtmp://${config.rtmp.host}:${config.rtmp.port}/live/${req.streamName}`);
          return { accept: true };
        } catch (err) {
          ingestLog.warn({ ip: req.ip, reason: (err as Error).message }, 'publish refused');
          return { accept: false, reason: (err as Error).message };
        }
      },
      onUnpublish: (sessionId) => { void ingest.unpublish(sessionId); },
    });
    lifecycle.add('rtmp', () => rtmp.close());
  }
  lifecycle.add('ingest', async () => { await ingest.close(); });
  lifecycle.setDrain((deadlineMs) => drainGateway({
    http, ingest, index, waitForTranscodes: config.transcode.embedded, deadlineMs, logger,
  }));

  // Heartbeats for the streams held here, and the sweep that skips overdue segments and ends
  // streams whose gateway died. Closed before ingest, so a closing gateway's streams end through ingest.
  const sweeper = new IndexSweeper({
    index, logger: logger.child({ component: 'index-sweep' }),
    held: () => ingest.held(),
    onLost: (s) => { void ingest.stopSession(s.manifestID, s.session, 'stream ended elsewhere (heartbeat expired)'); },
    heartbeatIntervalMs: config.hls.heartbeatIntervalMs, sweepIntervalMs: config.hls.sweepIntervalMs, heartbeatTtlMs: config.hls.heartbeatTtlMs,
  });
  sweeper.start();
  lifecycle.add('index-sweep', () => sweeper.close());

  // AI results live in their own store (re-hosted at /stream/<requestID>/<file>), swept by ai.resultTtlS.
  const aiResults = stores.results;
  // Finishes recordings (whichever gateway sees their session over), deletes what retention no longer needs.
  const recordingSweeper = new RecordingSweeper({
    store: recordings, index, objects: storage, results: aiResults, events, logger: logger.child({ component: 'retention' }), publicUrl,
    sweepIntervalMs: config.retention.sweepIntervalMs, windowSegments: config.hls.windowSegments, marginSegments: config.retention.marginSegments,
    endedKeepMs: config.retention.endedKeepS * 1000, recordingKeepMs: config.recording.deleteAfterS * 1000, resultTtlMs: config.ai.resultTtlS * 1000,
    segmentTargetMs: config.segmentTargetMs,
  });
  recordingSweeper.start();
  lifecycle.add('retention-sweep', () => recordingSweeper.close());
  // MP4 exports of recordings: ffmpeg children stopped at shutdown.
  const exports = new ChildSupervisor({ logger: logger.child({ component: 'mp4-export' }) });
  lifecycle.add('mp4-export', () => exports.close());
  const recordingRoutes = {
    store: recordings, objects: storage, exportMp4: (segments: Parameters<typeof exportMp4>[1]) => exportMp4(exports, segments),
    logger: logger.child({ component: 'recordings' }), publicUrl, adminToken: config.http.adminToken, loopbackOnly,
  };

  const controlBus = new ControlBus({
    publisher: core.connections.open('control', 'commands'), subscriber: core.connections.open('control-sub', 'blocking'), prefix, logger: logger.child({ component: 'control' }),
    onStop: (m) => { void ingest.stop(m.manifestID, m.reason); },
  });
  lifecycle.add('control-bus', () => controlBus.close());

  const aiLog = logger.child({ component: 'ai' });
  const { client: workerClient, registry } = ai;
  await registerConfiguredWorkers(registry, config.ai.workers, aiLog);
  registry.start();
  const sessions = createAiSessions({
    registry, client: workerClient, settings: config.ai, logger: aiLog,
    onAttemptFailure: ({ pipeline, modelID, kind }) => metrics.ai.recordAiWorkerFailure(pipeline, modelID, kind),
  });
  registerLiveStreamsGauge(metrics.registry, () => ingest.list());

  const app = createHttpApp({
    logger: logger.child({ component: 'http' }),
    guard: {
      checkHost: loopbackOnly || config.http.allowedHosts.length > 0,
      publicUrl, hostNames: [config.http.host, ...config.http.allowedHosts],
    },
    routers: [
      metrics.http.router(),
      createDocsRouter(),
      createPlaybackRouter({
        index, storage, windowSegments: config.hls.windowSegments, segmentTargetMs: config.segmentTargetMs,
        ...(config.storage.publicBaseUrl ? { segmentBaseUrl: config.storage.publicBaseUrl } : {}),
      }),
      createRecordingPlaybackRouter(recordingRoutes),
      createPushRouter({ ingest, storage, remuxer, workDir: join(config.workDir, 'push'), scratchPrefix: `push-${ownerTag()}`, maxBodyBytes: config.http.maxBodyBytes, recorder: metrics.ingest, logger: ingestLog }),
      createControlRouter({
        index, defaultLadder, publicUrl, adminToken: config.http.adminToken,
        loopbackOnly,
        requestStop: async (manifestID) => { await controlBus.requestStop(manifestID, 'stopped through the control API'); },
      }),
      // After the control router, whose OpenAPI validator (openapi/control.yaml) checks these paths too.
      createRecordingApiRouter(recordingRoutes),
      createPaymentsRouter({
        ledger, keys: accountKeys, adminToken: config.http.adminToken, loopbackOnly,
        manifestIDTaken: (m) => (config.streamKeys.some((k) => k.manifestID === m) ? 'taken by a configured stream key (streamKeys)' : undefined),
      }),
      createAiRouter({
        sessions, registry, logger: aiLog, publicUrl, adminToken: config.http.adminToken, loopbackOnly,
        authorizer: new AccountApiKeyAuthorizer(accountKeys, new StaticApiKeyAuthorizer(config.ai.apiKeys, loopbackOnly, unnamedStreamAccount(loopbackOnly))),
        ...(billing ? { billing } : {}),
        probeAudioMs: (path) => probeAudioDurationMs(path, undefined, core.children),
        uploadDir: join(config.workDir, 'uploads'), uploadPrefix: `upload-${ownerTag()}`,
        results: aiResults,
        fetchMedia: (url, worker, limits) => fetchResultMedia(url, {
          timeoutMs: limits.timeoutMs, signal: limits.signal, maxBytes: 256 * 1024 * 1024, baseUrl: worker.url, ...(worker.token ? { token: worker.token } : {}),
        }),
        framesToMp4: (frames, fps, outputPath) => framesToMp4(frames, fps, outputPath, { supervisor: core.children }),
        maxImageBytes: config.ai.maxImageBytes, maxAudioBytes: config.ai.maxAudioBytes,
        recorder: metrics.ai,
      }),
    ],
    health: healthOf({
      redis: pingCheck(() => redis.ping(), 1000),
      rtmp: async () => ({ ok: !config.rtmp.enabled || rtmp !== undefined }),
      storage: () => stores.check(STORAGE_HEALTH_CHECK_MS),
      state: localAccount && (() => localAccount.check()),
    }),
  });
  http.setHandler(app);

  logger.info({
    rtmp: config.rtmp.enabled ? `rtmp://${config.rtmp.host}:${config.rtmp.port}/live/<streamKey>` : 'disabled',
    obsServer: config.rtmp.enabled ? `rtmp://${config.rtmp.host}:${config.rtmp.port}/live` : undefined,
    obsKeyRule: config.streamKeys.length ? 'one of the configured stream keys' : 'any name of 1-64 [A-Za-z0-9_-]; it is also the manifest ID',
    playback: `${publicUrl}/stream/<manifestID>.m3u8`,
    push: `${publicUrl}/live/<streamKey>/<seq>.ts`,
    controlApi: `${publicUrl}/api/streams`,
    ai: `${publicUrl}/text-to-image (workers: ${config.ai.workers.length} configured, POST /api/workers to add)`,
    health: `${publicUrl}/healthz`,
    docs: `${publicUrl}/docs`,
    ladder: defaultLadder.map((p) => p.name),
    embeddedTranscoder: config.transcode.embedded,
  }, 'mediagate gateway ready');
  return httpPort;
}

/** The transcode worker (transcoder role, and the gateway's embedded transcoder): ffmpeg ladder and result handling. */
async function startTranscodeWorker(config: MediagateConfig, logger: Logger, core: Core, lifecycle: Lifecycle): Promise<void> {
  const { storage, connections, keys, recordingIndex, retry, events, metrics, billing } = core;
  const log = logger.child({ component: 'transcoder' });
  const runner = new FfmpegRunner({ logger: log });
  const transcoder = new SegmentTranscoder({
    storage, workDir: join(config.workDir, 'transcode'), jobDirPrefix: `job-${ownerTag()}`, logger: log, x264Preset: config.transcode.x264Preset,
    timeoutMs: config.transcode.timeoutMs, runner, probe: { supervisor: core.children },
  });
  lifecycle.add('ffmpeg', () => transcoder.close());

  const results = new TranscodeResults({ index: recordingIndex, metrics: metrics.transcode, events, retry, logger: log, ...(billing ? { billing } : {}) });
  const worker = new TranscodeWorker({
    connection: connections.open('transcoder', 'blocking'),
    prefix: keys.prefix,
    logger: log,
    concurrency: config.transcode.concurrency,
    lockTiming: transcodeLockTimingFor(config.segmentTargetMs),
    hooks: {
      process: (job) => transcoder.transcode(job),
      onCompleted: (job, result) => results.completed(job, result),
      onFailedForGood: (job, reason, code, cause) => results.failedForGood(job, reason, code, cause),
      onTranscoderLost: (job) => results.transcoderLost(job),
    },
  });
  lifecycle.add('transcode-worker', (deadlineMs) => worker.close({ waitMs: deadlineMs - Date.now() }));
  await worker.waitUntilReady();
}
