/**
 * The composition root's shared part: what both roles build first (the object store, Redis
 * connections, the segment index and recordings, events, metrics, the ledger and billing)
 * and the gateway's AI worker pool. See app.ts for the order.
 */
import { join } from 'node:path';
import type { MediagateConfig } from './config/config-schema.ts';
import type { Logger } from './log/logger.ts';
import { openObjectStores, type ObjectStores } from './storage/open-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { RedisConnections, type Redis } from './redis/connections.ts';
import { RedisRetry } from './redis/retry.ts';
import { StoreRetry } from './storage/store-retry.ts';
import { RedisKeys } from './redis/keys.ts';
import { RedisSegmentIndex } from './hls/segment-index-store.ts';
import { EventQueue } from './events/event-queue.ts';
import { NO_EVENTS, type EventSink } from './events/events.ts';
import { RedisLedger } from './payments/ledger-store.ts';
import { Billing } from './payments/billing.ts';
import { LiveBilling } from './payments/live-billing.ts';
import { createProcessMetrics, type ProcessMetrics } from './metrics/process-metrics.ts';
import { DEFAULT_MODEL_ID, isPipeline } from './domain/pipelines.ts';
import { WorkerRegistry } from './ai/worker-registry.ts';
import { WorkerClient } from './ai/worker-client.ts';
import { Lifecycle } from './lifecycle.ts';
import { RecordingStore } from './recording/recording-store.ts';
import { keepingRecordedSegments } from './recording/segment-keeping.ts';
import { ChildSupervisor } from './media/child-supervisor.ts';
import { newMemberId } from './member-id.ts';

/** Which process this is: `gateway` (with or without the embedded transcoder) or `transcoder`. */
export type Role = 'gateway' | 'transcoder';

/** How long startup waits for the object store's check (S3 HeadBucket, retries included) before giving up. */
export const STORAGE_STARTUP_CHECK_MS = 15_000;
/** How long `/healthz` waits for the object store's check: short, so the probe answers while S3 is unreachable. */
export const STORAGE_HEALTH_CHECK_MS = 1500;

/** What both roles share, built once by `startApp` before the role's own parts. */
export interface Core {
  /**
   * This process's member ID (member-id.ts, `<hostname>-<pid>-<random4>`): the owner of the
   * stream leases a gateway holds; reuse it wherever the process must name itself to the cluster.
   */
  readonly memberId: string;
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
  /** Media-path object-store operations across a store outage (storage/store-retry.ts). */
  readonly storeRetry: StoreRetry;
  readonly events: EventSink;
  readonly metrics: ProcessMetrics;
  readonly ledger: RedisLedger;
  readonly billing: Billing | undefined;
  /** Interval billing of live video-to-video sessions; undefined when payments are off. */
  readonly liveBilling: LiveBilling | undefined;
}

/** The gateway's AI worker pool, built before the metrics so they can ask which models it serves. */
export interface AiWorkers {
  readonly client: WorkerClient;
  readonly registry: WorkerRegistry;
}

/** Redis, the segment index, the retry executor, events, metrics and billing. */
export async function startCore(config: MediagateConfig, logger: Logger, role: Role, lifecycle: Lifecycle, ai: AiWorkers | undefined): Promise<Core> {
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
    maxSegmentWaitMs: config.hls.maxSegmentWaitMs, heartbeatTtlMs: config.hls.heartbeatTtlMs, reconnectGraceMs: config.ingest.reconnectGraceMs,
  });
  const recordings = new RecordingStore({ redis, keys });
  const recordingIndex = keepingRecordedSegments(index, recordings);
  // Media-path Redis operations wait out an outage up to this budget (redis/retry.ts).
  const retry = new RedisRetry({ logger: logger.child({ component: 'redis-retry' }), config: { budgetMs: config.redis.mediaRetryBudgetMs } });
  // ... and a store outage up to this one (storage/store-retry.ts), above the SDK's tries per request.
  const storeRetry = new StoreRetry({ logger: logger.child({ component: 'store-retry' }), config: { budgetMs: config.storage.outageBudgetMs } });

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
  // Live video-to-video sessions are billed by interval at the AI price of their pipeline and model.
  const liveBilling = billing ? new LiveBilling({
    ledger, price: (pipeline, modelID) => billing.aiPrice(pipeline, modelID), logger: logger.child({ component: 'live-billing' }),
    unitsPerSecond: config.payments.liveUnitsPerSecond, holdSec: config.payments.liveHoldSec,
    onCharged: (kind, credits) => metrics.ledger.recordLedgerEntry(kind, credits),
  }) : undefined;
  return {
    memberId: newMemberId(), children, storage, stores, connections, redis, keys, index, recordingIndex, recordings, retry, storeRetry, events, metrics, ledger,
    billing, liveBilling,
  };
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

/** The AI worker client and registry (not started: `startGateway` registers workers and starts health checks). */
export function createAiWorkers(config: MediagateConfig, logger: Logger, lifecycle: Lifecycle): AiWorkers {
  const client = new WorkerClient();
  lifecycle.add('ai-worker-client', async () => client.close());
  const registry = new WorkerRegistry({
    logger: logger.child({ component: 'ai' }), healthIntervalMs: config.ai.healthIntervalMs,
    checkHealth: (worker) => client.checkHealth(worker, Math.min(2000, config.ai.healthIntervalMs)),
  });
  lifecycle.add('ai-workers', async () => registry.close());
  return { client, registry };
}
