/**
 * The composition root's gateway role: HTTP, RTMP ingest, HTTP push, the transcode queue
 * producer, sweepers, the control bus, recordings and the AI gateway, over the shared core.
 */
import { join } from 'node:path';
import type { MediagateConfig } from './config/config-schema.ts';
import type { Logger } from './log/logger.ts';
import { parseLadder } from './domain/profile.ts';
import { ownerTag } from './storage/work-dir.ts';
import { IndexSweeper } from './hls/index-sweeper.ts';
import { TranscodeQueue } from './transcode/transcode-queue.ts';
import { LiveFeedWriter } from './transcode/live-feed-store.ts';
import { RedisLiveSessions } from './transcode/live-session-store.ts';
import type { LiveTranscodeSessions } from './ingest/ingest-ports.ts';
import { RedisPushClaims } from './ingest/push-claim-store.ts';
import { RedisPushSessions } from './ingest/push-session-store.ts';
import { RedisStreamLeases } from './ingest/stream-lease-store.ts';
import { FfmpegRunner } from './media/ffmpeg-runner.ts';
import { AccountStreamKeyAuthorizer, LiveIngest, StaticKeyAuthorizer, type PublishAuthorizer } from './ingest/live-ingest.ts';
import { WebhookAuthorizer } from './ingest/auth-webhook.ts';
import { resolveStreamKeyWatermarks } from './ingest/authorizers.ts';
import { ladderFrames, watermarkRequestOfSettings, WatermarkResolver } from './ingest/watermark-resolver.ts';
import { createPushRouter } from './ingest/push-routes.ts';
import { mediaSourceProbe, rtmpSegmenters } from './ingest/media-adapters.ts';
import { Remuxer } from './media/remux.ts';
import { ControlBus } from './control/control-bus.ts';
import { EventDeliveryWorker } from './events/event-queue.ts';
import { createControlRouter } from './control/control-routes.ts';
import { createConsoleRouter } from './http/console-routes.ts';
import { createDocsRouter } from './http/docs-routes.ts';
import { RedisAccountKeys } from './payments/account-store.ts';
import { createPaymentsRouter } from './payments/payments-routes.ts';
import { unnamedStreamAccount } from './payments/billing.ts';
import { HoldExpirySweep, LocalAccount } from './payments/local-account.ts';
import { probeAudioDurationMs } from './media/audio-probe.ts';
import { registerLiveStreamsGauge } from './metrics/ingest-metrics.ts';
import { registerBacklogGauges } from './metrics/backlog-metrics.ts';
import { isLoopbackHost } from './config/config.ts';
import { createAiSessions, registerConfiguredWorkers } from './ai/ai-sessions.ts';
import { fetchResultMedia } from './ai/media-fetch.ts';
import { RedisWorkerPool } from './ai/worker-pool-store.ts';
import { RedisResultIndex } from './ai/result-index-store.ts';
import { framesToMp4 } from './media/frames-to-mp4.ts';
import { createAiRouter, isPipelinePost } from './ai/ai-routes.ts';
import { AccountApiKeyAuthorizer, StaticApiKeyAuthorizer } from './ai/api-key-authorizers.ts';
import { RtmpServer } from './ingest/rtmp/rtmp-server.ts';
import { createPlaybackRouter, isPlaybackRead, mediaPlaylistReader, playlistHitHandler } from './hls/playback.ts';
import { PlaylistCache } from './hls/playlist-cache.ts';
import { PlaylistChangeBus } from './hls/playlist-change-bus.ts';
import { createHttpApp, listenEarly, closeServer, boundPort, skipping } from './http/http-app.ts';
import { healthOf, pingCheck } from './http/health.ts';
import { Lifecycle } from './lifecycle.ts';
import { drainGateway } from './ingest/drain.ts';
import { RecordingSweeper } from './recording/recording-sweeper.ts';
import { createRecordingApiRouter, createRecordingPlaybackRouter } from './recording/recording-routes.ts';
import { exportMp4 } from './media/mp4-export.ts';
import { ChildSupervisor } from './media/child-supervisor.ts';
import { Thumbnails } from './media/thumbnail.ts';
import { createClusterRouter, type ClusterMemberReader } from './cluster/cluster-routes.ts';
import type { GatewayFigures } from './cluster/cluster-heartbeat.ts';
import { RedisOutputs } from './outputs/outputs-store.ts';
import { OutputManager } from './outputs/output-manager.ts';
import { createOutputsRouter } from './outputs/outputs-routes.ts';
import { registerOutputGauges } from './metrics/output-metrics.ts';
import { registerWhepGauges } from './metrics/whep-metrics.ts';
import { registerWhipGauge } from './metrics/whip-metrics.ts';
import { InternalPublishes } from './ingest/internal-publish.ts';
import type { PushOutcome } from './ingest/live-ingest.ts';
import { LiveSessions, createLiveWorkerManager } from './ai/live/live-sessions.ts';
import { createLiveRouter } from './ai/live/live-routes.ts';
import { newRequestID } from './ai/ai-routes.ts';
import { makeRetryConfig } from './ai/retry-policy.ts';
import { isWorkerCallError } from './ai/worker-reply.ts';
import { TricklePublisher, TrickleSubscriber } from './trickle/index.ts';
import { WhipSessions } from './webrtc/whip-sessions.ts';
import type { WhipAdmission } from './webrtc/whip-ports.ts';
import { createWhipRouter } from './webrtc/whip-routes.ts';
import { closeWebRtc } from './webrtc/webrtc-runtime.ts';
import { WhepSessions } from './webrtc/whep-sessions.ts';
import { createWhepRouter } from './webrtc/whep-routes.ts';
import type { AiWorkers, Core } from './core.ts';
import { STORAGE_HEALTH_CHECK_MS } from './core.ts';

/** A started gateway: its bound HTTP port and its figures for the cluster heartbeat. */
export interface StartedGateway {
  readonly httpPort: number;
  readonly figures: GatewayFigures;
}

/**
 * The gateway role: HTTP (playback, push, control, payments, AI, health, cluster view), RTMP
 * ingest and the segmenters, the queue producer, the index sweeper and the control bus; sets the drain.
 * @param members the cluster membership `GET /api/cluster` reads
 */
export async function startGateway(config: MediagateConfig, logger: Logger, core: Core, ai: AiWorkers, lifecycle: Lifecycle, members: ClusterMemberReader): Promise<StartedGateway> {
  const { storage, stores, connections, redis, keys, index, recordingIndex, recordings, retry, storeRetry, events, metrics, ledger, billing } = core;
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
  // Watermarks are read and checked now (startup) or at publish (webhook), never by a transcoder mid-stream.
  const watermarks = new WatermarkResolver(storage);
  const defaultWatermarkRequest = watermarkRequestOfSettings(config.watermark);
  const defaultWatermark = defaultWatermarkRequest && await watermarks.resolve(defaultWatermarkRequest, ladderFrames(defaultLadder), 'watermark');
  const configuredAuthorizer: PublishAuthorizer = config.auth.mode === 'webhook'
    ? new WebhookAuthorizer({ webhookUrl: config.auth.webhookUrl, timeoutMs: config.auth.webhookTimeoutMs, logger: logger.child({ component: 'auth' }), defaultLadder, watermarks })
    : new StaticKeyAuthorizer(await resolveStreamKeyWatermarks(config.streamKeys, defaultLadder, watermarks), defaultLadder);
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
  // Live transcoding sessions: the feed of each RTMP stream's MPEG-TS and its session record.
  // Closed after ingest (registered before it), so the last chunks and settlements are written.
  // Its own `blocking` connection: during a Redis outage its writes wait, in order, in ioredis's
  // queue and go out on reconnect instead of failing (a chunk lost would cost its whole segment).
  const liveFeed = config.transcode.liveSessions
    ? new LiveFeedWriter({
      redis: connections.open('live-feed-writer', 'blocking'), keys, logger: ingestLog,
      onUnreadTrimmed: (t) => metrics.ingest.recordLiveFeedUnreadTrimmed(t.toSeq - t.fromSeq),
    }) : undefined;
  if (liveFeed) lifecycle.add('live-feed', () => liveFeed.close());
  const liveSessionStore = liveFeed && new RedisLiveSessions({ redis, keys });
  const liveSessions = liveFeed && liveSessionStore && liveSessionsOf(liveSessionStore, liveFeed, config.segmentTargetMs);
  // Restream outputs of the streams held here (outputs/): one ffmpeg each, fed the listed segments.
  // Closed after ingest (registered before it): streams ending at shutdown stop their outputs first.
  const outputsLog = logger.child({ component: 'outputs' });
  /** A stored object's bytes (a listed source segment), or undefined when it is gone. */
  const readObject = async (key: string): Promise<Buffer | undefined> => {
    const object = await storage.getStream(key);
    return object ? Buffer.concat(await object.stream.toArray() as Buffer[]) : undefined;
  };
  const outputChildren = new ChildSupervisor({ logger: outputsLog, killGraceMs: 500 });
  lifecycle.add('output-ffmpeg', () => outputChildren.close());
  const outputsStore = new RedisOutputs({ redis, keys });
  const outputs = new OutputManager({
    store: outputsStore, supervisor: outputChildren, events, logger: outputsLog,
    readSegment: readObject,
    // The stream and its rendition window in one round trip (polled every 500 ms per rendition with outputs).
    listedSeqs: async (manifestID, rendition, count) => (await index.streamWindow(manifestID, rendition, count))?.window.segments.map((s) => s.seq) ?? [],
    maxPerStream: config.outputs.maxPerStream, backoffInitialMs: config.outputs.backoffInitialMs, backoffMaxMs: config.outputs.backoffMaxMs,
    defaults: config.outputs.defaults.map((o) => ({ url: o.url, rendition: o.rendition ?? 'source' })),
  });
  lifecycle.add('outputs', () => outputs.close());
  // Streams this gateway publishes to itself (a live session's `<stream>-out`), through its own push ingest.
  const internalPublishes: InternalPublishes = new InternalPublishes({
    push: (segment): Promise<PushOutcome> => ingest.push(segment), stop: (manifestID, reason) => ingest.stop(manifestID, reason),
    workDir: join(config.workDir, 'push'), scratchPrefix: `push-${ownerTag()}`, logger: ingestLog,
  });
  // Live video-to-video sessions (ai/live/): a stream tap of ingest; workers are started through their own session manager.
  const aiLog = logger.child({ component: 'ai' });
  const liveSettings = config.ai.live;
  const liveRetry = makeRetryConfig({
    maxAttempts: config.ai.maxAttempts, totalBudgetMs: config.ai.totalBudgetMs, queueWaitMs: 0,
    suspendBaseMs: config.ai.suspendBaseMs, suspendMaxMs: Math.max(300_000, config.ai.suspendBaseMs),
  });
  const live = new LiveSessions({
    manager: createLiveWorkerManager({
      registry: ai.registry, retry: liveRetry, logger: aiLog.child({ pipeline: 'live-video-to-video' }),
      postJson: (endpoint, path, json, options) => ai.client.postJson(endpoint, path, json, options),
      classify: (err) => isWorkerCallError(err)
        ? { kind: err.kind, message: err.message, ...(err.workerMessage ? { workerMessage: err.workerMessage } : {}) }
        : { kind: 'server', message: (err as Error).message },
      onAttemptFailure: ({ pipeline, modelID, kind }) => metrics.ai.recordAiWorkerFailure(pipeline, modelID, kind),
    }),
    registry: ai.registry, retry: liveRetry,
    readSegment: readObject,
    trickle: {
      publisher: (url, contentType) => new TricklePublisher(url, { contentType }),
      subscriber: (url) => new TrickleSubscriber(url),
    },
    outputs: { open: (grant) => internalPublishes.open(grant) },
    ...(core.liveBilling ? { billing: core.liveBilling } : {}),
    events,
    recorder: metrics.live,
    timings: liveSettings,
    startTimeoutMs: liveSettings.startTimeoutMs, streamWaitMs: liveSettings.streamWaitMs, statusKeepMs: liveSettings.statusKeepMs,
    logger: aiLog.child({ component: 'live-v2v' }),
    newRequestID,
  });
  const ingest = new LiveIngest({
    logger: ingestLog,
    authorizer: internalPublishes.authorizer(authorizer),
    index: recordingIndex,
    pushClaims: new RedisPushClaims({ redis, keys }),
    // Push sessions are the cluster's: any gateway takes any push; every gateway sweeps for idle ones.
    pushSessions: new RedisPushSessions({ redis, keys, heartbeatMarginMs: config.hls.heartbeatTtlMs }),
    pushSweepIntervalMs: config.hls.sweepIntervalMs,
    // Cluster-wide ownership of live manifest IDs, held as this gateway's member ID with the heartbeat's TTL.
    leases: new RedisStreamLeases({ redis, keys }), memberId: core.memberId, leaseTtlMs: config.hls.heartbeatTtlMs,
    sessions: recordings,
    recordByDefault: config.recording.enabled,
    ...(defaultWatermark ? { defaultWatermark } : {}),
    fitLadderToSource: config.ladderFitsSource,
    retry,
    storeRetry,
    maxBufferedSegments: config.storage.maxBufferedSegments,
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
    ...(liveSessions && liveFeed ? { liveSessions, liveFeed } : {}),
    // Streams naming no account: `local` on loopback, not metered on a public bind.
    defaultAccountID: unnamedStreamAccount(loopbackOnly),
    onInsufficientBalance: config.payments.onInsufficientBalance,
    taps: [outputs, live],
    startSegmenter: rtmpSegmenters({
      // The publish's packets, in process (no pull over the network, no child process).
      tags: (publishId) => rtmp?.flvTags(publishId),
      workDir: join(config.workDir, 'segmenter'), dirPrefix: ownerTag(), segmentTargetMs: config.segmentTargetMs, logger: ingestLog,
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
  // WHIP publishes (webrtc/): admitted like an RTMP publish before any ICE, then bridged by one
  // ffmpeg each into the RTMP port above under a one-time name carrying the grant. Closed before
  // ingest (registered after it), so each bridge ends its RTMP publish while ingest takes it.
  const whip = config.webrtc.whipEnabled && rtmp ? startWhip(config, logger, lifecycle, {
    admit: async (streamKey, url) => {
      const grant = await ingest.admit(streamKey, url);
      const { name, release } = internalPublishes.rtmpGrant(grant);
      return { manifestID: grant.manifestID, rtmpUrl: `${rtmpLoopbackOf(config)}/live/${name}`, release };
    },
  }) : undefined;
  // WHEP playback of the streams published here over RTMP (and WHIP, which enters through RTMP):
  // their live packets in process, one relay ffmpeg per watched stream. Closed before ingest and RTMP.
  const whep = config.webrtc.whepEnabled && rtmp ? whepSessionsOf(config, rtmp, ingest, logger.child({ component: 'whep' }), lifecycle) : undefined;
  // Closed before ingest: each session leaves its worker and ends its `-out` stream while ingest still takes its last pushes.
  lifecycle.add('live-v2v', () => live.close());
  lifecycle.setDrain((deadlineMs) => drainGateway({
    http, ingest, index, waitForTranscodes: config.transcode.embedded, deadlineMs, logger,
  }));

  // Heartbeats for the streams held here, and the sweep that skips overdue segments and ends
  // streams whose gateway died. Closed before ingest, so a closing gateway's streams end through ingest.
  const sweeper = new IndexSweeper({
    index, logger: logger.child({ component: 'index-sweep' }),
    held: () => ingest.held(),
    onLost: (s) => { void ingest.stopSession(s.manifestID, s.session, 'stream ended elsewhere (heartbeat expired)'); },
    renewOwnership: () => ingest.renewLeases(),
    heartbeatIntervalMs: config.hls.heartbeatIntervalMs, sweepIntervalMs: config.hls.sweepIntervalMs, heartbeatTtlMs: config.hls.heartbeatTtlMs,
  });
  sweeper.start();
  lifecycle.add('index-sweep', () => sweeper.close());

  // AI results live in their own store (re-hosted at /stream/<requestID>/<file>), swept by ai.resultTtlS.
  const aiResults = stores.results;
  // ... noted by when they were stored, so the sweep reads what expires instead of listing them
  // all; not noted when they are kept (ai.resultTtlS 0), as nothing would read the notes.
  const aiResultIndex = config.ai.resultTtlS > 0 ? new RedisResultIndex({ redis, keys }) : undefined;
  // Finishes recordings (whichever gateway sees their session over), deletes what retention no longer needs.
  const recordingSweeper = new RecordingSweeper({
    store: recordings, index, objects: storage, results: aiResults, ...(aiResultIndex ? { resultIndex: aiResultIndex } : {}),
    events, logger: logger.child({ component: 'retention' }), publicUrl,
    sweepIntervalMs: config.retention.sweepIntervalMs, windowSegments: config.hls.windowSegments, marginSegments: config.retention.marginSegments,
    endedKeepMs: config.retention.endedKeepS * 1000, recordingKeepMs: config.recording.deleteAfterS * 1000, resultTtlMs: config.ai.resultTtlS * 1000,
    segmentTargetMs: config.segmentTargetMs,
  });
  recordingSweeper.start();
  lifecycle.add('retention-sweep', () => recordingSweeper.close());
  // MP4 exports of recordings: ffmpeg children stopped at shutdown.
  const exports = new ChildSupervisor({ logger: logger.child({ component: 'mp4-export' }) });
  lifecycle.add('mp4-export', () => exports.close());
  // Thumbnails made on request from stored source segments, on whichever gateway is asked (media/thumbnail.ts).
  const thumbnails = config.thumbnails.enabled ? new Thumbnails({
    objects: storage, supervisor: core.children, widthPx: config.thumbnails.widthPx, jpegQscale: config.thumbnails.jpegQscale,
  }) : undefined;

  const recordingRoutes = {
    store: recordings, objects: storage, exportMp4: (segments: Parameters<typeof exportMp4>[1]) => exportMp4(exports, segments),
    logger: logger.child({ component: 'recordings' }), publicUrl, adminToken: config.http.adminToken, loopbackOnly,
    ...(thumbnails ? { thumbnails } : {}),
  };

  const controlBus = new ControlBus({
    publisher: core.connections.open('control', 'commands'), subscriber: core.connections.open('control-sub', 'blocking'), prefix, logger: logger.child({ component: 'control' }),
    onStop: (m) => { void ingest.stop(m.manifestID, m.reason); },
    onOutputsChanged: (m) => { void outputs.reconcile(m.manifestID); },
  });
  lifecycle.add('control-bus', () => controlBus.close());

  // Kept playlist replies, dropped by the index's change messages (docs/architecture.md, Playlist cache).
  const playlistCache = new PlaylistCache({ maxAgeMs: config.playlistCache.maxAgeMs });
  if (config.playlistCache.maxAgeMs > 0) {
    const playlistChanges = new PlaylistChangeBus({
      subscriber: core.connections.open('playlist-changes', 'blocking'), keys, logger: logger.child({ component: 'playlist-changes' }), cache: playlistCache,
    });
    lifecycle.add('playlist-changes', () => playlistChanges.close());
  }

  const { client: workerClient, registry } = ai;
  // One worker pool for every gateway sharing this Redis (ai/worker-pool-store.ts).
  registry.attachPool(new RedisWorkerPool({ redis, keys }), {
    registrationTtlMs: config.ai.registrationTtlMs, slotLeaseTtlMs: config.ai.slotLeaseTtlMs,
    syncIntervalMs: Math.min(1000, config.ai.healthIntervalMs),
  });
  await registry.sync().catch(() => undefined);
  await registerConfiguredWorkers(registry, config.ai.workers, aiLog);
  registry.start();
  const sessions = createAiSessions({
    registry, client: workerClient, settings: config.ai, logger: aiLog,
    onAttemptFailure: ({ pipeline, modelID, kind }) => metrics.ai.recordAiWorkerFailure(pipeline, modelID, kind),
  });
  registerLiveStreamsGauge(metrics.registry, () => ingest.list());
  registerOutputGauges(metrics.registry, () => outputs.metrics());
  if (whep) registerWhepGauges(metrics.registry, () => whep.counts());
  if (whip) registerWhipGauge(metrics.registry, () => whip.size);
  metrics.live.registerSessionsGauge(metrics.registry, () => live.count());
  // The deployment's backlog, read at each scrape (what an autoscaler scales transcoders on).
  registerBacklogGauges(metrics.registry, async () => {
    const [jobs, waitingSessions] = await Promise.all([queue.backlog(), liveSessionStore?.unowned(LIVE_SESSIONS_LISTED)]);
    return { ...jobs, ...(waitingSessions ? { liveSessionsWaiting: waitingSessions.length } : {}) };
  });

  const playback = {
    index, storage, windowSegments: config.hls.windowSegments, segmentTargetMs: config.segmentTargetMs, playlistCache,
    ...(config.storage.publicBaseUrl ? { segmentBaseUrl: config.storage.publicBaseUrl } : {}),
    ...(thumbnails ? { thumbnails } : {}),
  };
  const app = createHttpApp({
    logger: logger.child({ component: 'http' }),
    guard: {
      checkHost: loopbackOnly || config.http.allowedHosts.length > 0,
      publicUrl, hostNames: [config.http.host, ...config.http.allowedHosts],
    },
    routers: [
      metrics.http.router(),
      // A player's GET below /stream/ walks none of these routers' layers: none of them serves
      // it (nor an AI pipeline POST, below).
      ...[
      // Before the push router, which takes every /live/* path.
      createLiveRouter({
        sessions: live, publicUrl,
        authorizer: new AccountApiKeyAuthorizer(accountKeys, new StaticApiKeyAuthorizer(config.ai.apiKeys, loopbackOnly, unnamedStreamAccount(loopbackOnly))),
      }),
      createDocsRouter(),
      // The browser console (src/console/, served as ES modules with the npm packages it imports).
      createConsoleRouter({ mediaOrigins: [publicUrl, ...(config.storage.publicBaseUrl ? [config.storage.publicBaseUrl] : [])] }),
      ...(whep ? [createWhepRouter({ sessions: whep })] : []),
      ].map((router) => skipping((req) => isPipelinePost(req) || isPlaybackRead(req), router)),
      // An AI pipeline POST walks none of these routers' layers: none of them serves it.
      ...[
      createPlaybackRouter(playback),
      createRecordingPlaybackRouter(recordingRoutes),
      ...(whip ? [createWhipRouter({ sessions: whip, publicUrl })] : []),
      createPushRouter({ ingest, storage, remuxer, workDir: join(config.workDir, 'push'), scratchPrefix: `push-${ownerTag()}`, maxBodyBytes: config.http.maxBodyBytes, recorder: metrics.ingest, logger: ingestLog }),
      createControlRouter({
        index, defaultLadder, publicUrl, adminToken: config.http.adminToken,
        loopbackOnly,
        requestStop: async (manifestID) => { await controlBus.requestStop(manifestID, 'stopped through the control API'); },
      }),
      // After the control router, whose OpenAPI validator (openapi/control.yaml) checks these paths too.
      createRecordingApiRouter(recordingRoutes),
      createOutputsRouter({
        index, store: outputsStore, maxPerStream: config.outputs.maxPerStream, adminToken: config.http.adminToken, loopbackOnly,
        // The holder applies it: this gateway at once when it holds the stream, another through the bus.
        changed: async (manifestID) => { void outputs.reconcile(manifestID); await controlBus.outputsChanged(manifestID); },
      }),
      createClusterRouter({ members, aiWorkers: () => registry.list(), adminToken: config.http.adminToken, loopbackOnly }),
      createPaymentsRouter({
        ledger, keys: accountKeys, adminToken: config.http.adminToken, loopbackOnly,
        manifestIDTaken: (m) => (config.streamKeys.some((k) => k.manifestID === m) ? 'taken by a configured stream key (streamKeys)' : undefined),
      }),
      ].map((router) => skipping(isPipelinePost, router)),
      createAiRouter({
        sessions, registry, logger: aiLog, publicUrl, adminToken: config.http.adminToken, loopbackOnly,
        authorizer: new AccountApiKeyAuthorizer(accountKeys, new StaticApiKeyAuthorizer(config.ai.apiKeys, loopbackOnly, unnamedStreamAccount(loopbackOnly))),
        ...(billing ? { billing } : {}),
        probeAudioMs: (path) => probeAudioDurationMs(path, undefined, core.children),
        uploadDir: join(config.workDir, 'uploads'), uploadPrefix: `upload-${ownerTag()}`,
        results: aiResults, ...(aiResultIndex ? { resultIndex: aiResultIndex } : {}),
        fetchMedia: (url, worker, limits) => fetchResultMedia(url, {
          // `signal` passed on unread: the step's deadline is made only for a fetch that needs it (result-media.ts).
          timeoutMs: limits.timeoutMs, get signal() { return limits.signal; }, maxBytes: 256 * 1024 * 1024, baseUrl: worker.url, ...(worker.token ? { token: worker.token } : {}),
        }),
        framesToMp4: (frames, fps, outputPath) => framesToMp4(frames, fps, outputPath, { supervisor: core.children }),
        maxImageBytes: config.ai.maxImageBytes, maxAudioBytes: config.ai.maxAudioBytes,
        serverTiming: config.ai.serverTiming,
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
  // A playlist poll the cache answers is served before express (Playlist cache, docs/architecture.md).
  http.setHandler(playlistHitHandler({
    cache: playlistCache, fallback: app, observe: (method, route, res) => metrics.http.observe(method, route, res),
    ...(config.playlistCache.maxAgeMs > 0 ? { readMedia: mediaPlaylistReader(playback) } : {}),
  }));

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
    console: `${publicUrl}/console`,
    ladder: defaultLadder.map((p) => p.name),
    embeddedTranscoder: config.transcode.embedded,
    memberId: core.memberId,
  }, 'mediagate gateway ready');
  return {
    httpPort,
    figures: { address: publicUrl, ...(config.rtmp.enabled ? { rtmpAddress: rtmpAddressOf(config, publicUrl) } : {}), streams: () => ingest.list().length },
  };
}

/**
 * WHIP sessions over their own ffmpeg supervisor, closed in order on `lifecycle`: the sessions
 * first (each ends its RTMP publish), then their ffmpeg children, then node-datachannel's state.
 */
function startWhip(config: MediagateConfig, logger: Logger, lifecycle: Lifecycle, admission: WhipAdmission): WhipSessions {
  const log = logger.child({ component: 'whip' });
  lifecycle.add('webrtc', async () => { closeWebRtc(); });
  const children = new ChildSupervisor({ logger: log, killGraceMs: 2000 });
  lifecycle.add('whip-ffmpeg', () => children.close());
  const sessions = new WhipSessions({
    admission, supervisor: children, workDir: join(config.workDir, 'whip'),
    iceServers: config.webrtc.iceServers, bindAddress: config.webrtc.bindAddress,
    portRangeBegin: config.webrtc.portRangeBegin, portRangeEnd: config.webrtc.portRangeEnd,
    iceTimeoutMs: config.webrtc.iceTimeoutMs, keyframeIntervalMs: config.segmentTargetMs, logger: log,
    maxSessions: config.webrtc.whipMaxSessions,
  });
  lifecycle.add('whip', () => sessions.close());
  return sessions;
}

/** `rtmp://<host>:<port>` this gateway reaches its own RTMP listener at (an unspecified bind: loopback). */
function rtmpLoopbackOf(config: MediagateConfig): string {
  const bind = config.rtmp.host;
  const host = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind.includes(':') ? `[${bind}]` : bind;
  return `rtmp://${host}:${config.rtmp.port}`;
}

/** `rtmp://<host>:<port>` of the RTMP listener; an unspecified bind (0.0.0.0, ::) shows the public URL's host. */
function rtmpAddressOf(config: MediagateConfig, publicUrl: string): string {
  const bind = config.rtmp.host;
  const host = bind === '0.0.0.0' || bind === '::' ? new URL(publicUrl).hostname : bind.includes(':') ? `[${bind}]` : bind;
  return `rtmp://${host}:${config.rtmp.port}`;
}

/** WHEP sessions over the RTMP server's packet taps (their relays' ffmpeg under a supervisor of their own). */
function whepSessionsOf(config: MediagateConfig, rtmp: RtmpServer, ingest: LiveIngest, logger: Logger, lifecycle: Lifecycle): WhepSessions {
  // node-datachannel's state is freed last (startWhip registers it when WHIP runs).
  if (!config.webrtc.whipEnabled) lifecycle.add('webrtc', async () => { closeWebRtc(); });
  const supervisor = new ChildSupervisor({ logger, killGraceMs: 1000 });
  lifecycle.add('whep-ffmpeg', () => supervisor.close());
  const { webrtc } = config;
  const whep = new WhepSessions({
    packets: {
      watch: (manifestID, reader) => {
        const publishId = ingest.rtmpPublishOf(manifestID);
        return publishId === undefined ? undefined : rtmp.watchTags(publishId)?.watch(reader);
      },
    },
    supervisor,
    peer: {
      iceServers: webrtc.iceServers, bindAddress: webrtc.bindAddress, portRangeBegin: webrtc.portRangeBegin, portRangeEnd: webrtc.portRangeEnd,
      connectTimeoutMs: webrtc.iceTimeoutMs,
    },
    maxViewersPerStream: webrtc.whepMaxViewersPerStream, maxViewers: webrtc.whepMaxViewers,
    logger,
  });
  lifecycle.add('whep', () => whep.close());
  return whep;
}

/** Live sessions a backlog read lists at most (the open set's first 256, as a transcoder's scan reads it). */
const LIVE_SESSIONS_LISTED = 256;

/** Ingest's port to live transcoding sessions: the session records and the feed's settlements. */
function liveSessionsOf(store: RedisLiveSessions, feed: LiveFeedWriter, segmentTargetMs: number): LiveTranscodeSessions {
  return {
    open: (s) => store.open({ ...s, segmentTargetMs }),
    setSource: (manifestID, session, source) => store.setSource(manifestID, session, source),
    settle: (manifestID, session, settled) => feed.settle(manifestID, session, settled),
    end: async (manifestID, session, endSeq) => {
      await store.end(manifestID, session, endSeq);
      feed.forget(manifestID, session);
    },
  };
}
