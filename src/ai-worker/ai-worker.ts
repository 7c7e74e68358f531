/**
 * The reference AI worker, assembled: inference threads (ESRGAN on TensorFlow.js wasm), the
 * ai-runner compatible HTTP server, the live video-to-video pipeline with its trickle
 * channels on the same server (live-http.ts), and the gateway registration keep-alive.
 *
 * Start order: HTTP server (so `/health` says LOADING at once), then model loading in the
 * threads, then registration (right away with `warm: false`, again with `warm: true` as soon
 * as the models are loaded, then every `registerIntervalMs`). Close order is the reverse:
 * leave the gateway, stop the live streams, stop accepting connections, let running upscales finish (up to
 * `shutdownTimeoutMs`), stop the threads.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.ts';
import { derivePublicUrl, type AiWorkerConfig } from './config.ts';
import { GatewayRegistration, type RegistrationOffer } from './gateway-registration.ts';
import { InferencePool } from './inference-pool.ts';
import { ESRGAN_MODELS, offeredModelIDs } from './models.ts';
import { createWorkerHandler, healthStatus, tokenMatches, type SlotSource, type WorkerHealthStatus } from './worker-http.ts';
import { LIVE_DEFAULT_MODEL_ID, LIVE_PIPELINE } from '../domain/pipelines.ts';
import { TrickleServer } from '../trickle/index.ts';
import { LiveStreams } from './live-http.ts';
import { reachableWorkerUrl } from './reach-address.ts';

export interface StartAiWorkerOptions {
  /** Folder with the layers models (`x2/model.json`, ...); default the installed package's. */
  readonly modelsDir?: string;
  /** Test seam: model loading starts once this resolves. */
  readonly loadGate?: Promise<void>;
}

export interface RunningAiWorker {
  /** Base URL of the bound server, e.g. http://127.0.0.1:8000. */
  readonly url: string;
  readonly port: number;
  /** The URL registered with the gateway. */
  readonly publicUrl: string;
  readonly pool: InferencePool;
  readonly registration: GatewayRegistration | undefined;
  /** The live video-to-video streams (`POST /live-video-to-video`). */
  readonly live: LiveStreams;
  /** The worker's trickle channels (`/ai/trickle/`). */
  readonly trickle: TrickleServer;
  health(): WorkerHealthStatus;
  /** Stops everything (see module docs). Idempotent. */
  close(): Promise<void>;
}

export async function startAiWorker(config: AiWorkerConfig, logger: Logger, options: StartAiWorkerOptions = {}): Promise<RunningAiWorker> {
  const log = logger.child({ component: 'ai-worker' });
  const scales = ESRGAN_MODELS.filter((m) => config.models.includes(m.id)).map((m) => m.scale);
  const pool = new InferencePool({
    capacity: config.capacity, scales, logger: log,
    ...(options.modelsDir !== undefined ? { modelsDir: options.modelsDir } : {}),
    ...(options.loadGate !== undefined ? { loadGate: options.loadGate } : {}),
  });
  const trickle = new TrickleServer({ logger: log });
  let live: LiveStreams | undefined;
  // Live streams count as work in /health (OK while one runs), beside the upscale slots.
  const slots: SlotSource = {
    get state() { return pool.state; },
    get loadError() { return pool.loadError; },
    get inFlight() { return pool.inFlight + (live?.active ?? 0); },
    tryAcquire: () => pool.tryAcquire(),
  };
  const batch = createWorkerHandler(slots, config, logger);
  const server: Server = createServer((req, res) => {
    if (trickle.handle(req, res)) return;
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    if (path === '/live-video-to-video' && live !== undefined) {
      void live.handleStart(req, res, (header) => tokenMatches(header, config.token));
      return;
    }
    batch(req, res);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  // Bound to a wildcard address, the worker names the address the gateway's host reaches it on, not 127.0.0.1.
  const publicUrl = await reachableWorkerUrl({ derived: derivePublicUrl(config, port), host: config.host, publicUrl: config.publicUrl, gatewayUrl: config.gatewayUrl, port });
  pool.start();
  live = new LiveStreams({
    trickle, localUrl: url, publicUrl, capacity: config.liveCapacity, token: config.token,
    statusIntervalMs: config.liveStatusIntervalMs, keyframeIntervalSec: config.liveKeyframeIntervalSec,
    inputTimeoutMs: config.liveInputTimeoutMs, logger,
  });
  const liveStreams = live;

  const modelIDs = offeredModelIDs(config.models, config.aliasDefaultModel);
  let registration: GatewayRegistration | undefined;
  if (config.gatewayUrl !== '') {
    registration = new GatewayRegistration({
      gatewayUrl: config.gatewayUrl, adminToken: config.gatewayAdminToken, workerUrl: publicUrl, workerToken: config.token,
      intervalMs: config.registerIntervalMs, logger: log,
      offers: (): RegistrationOffer[] => [
        ...modelIDs.map((model_id): RegistrationOffer => ({ pipeline: 'upscale', model_id, warm: pool.state === 'READY', capacity: config.capacity })),
        ...(config.liveCapacity > 0 ? [{ pipeline: LIVE_PIPELINE as RegistrationOffer['pipeline'], model_id: LIVE_DEFAULT_MODEL_ID, warm: true, capacity: config.liveCapacity }] : []),
      ],
    });
    registration.start();
  }
  void pool.ready.then((state) => {
    if (state === 'READY') void registration?.registerNow();
  });
  log.info({
    url, publicUrl, modelIDs, capacity: config.capacity, liveCapacity: config.liveCapacity, maxInputPixels: config.maxInputPixels,
    tileSize: config.tileSize, tileOverlap: config.tileOverlap, gateway: config.gatewayUrl || undefined, auth: config.token !== '',
  }, 'AI worker listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await registration?.close();
      await liveStreams.close();
      trickle.close();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + config.shutdownTimeoutMs;
      while (pool.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await pool.close();
      server.closeAllConnections();
      await stopped;
      log.info('AI worker stopped');
    })();
    return closing;
  };

  return { url, port, publicUrl, pool, registration, live: liveStreams, trickle, health: () => healthStatus(slots), close };
}
