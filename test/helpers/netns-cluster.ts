/**
 * A mediagate deployment spread over network namespaces standing in for hosts (netns.ts):
 *
 * | host    | runs | binds |
 * |---------|------|-------|
 * | `store` | redis-server :6379, s3rver :9000 (bucket `mediagate`) | its own address |
 * | `gw-a`, `gw-b` | cmd/gateway.ts, no embedded transcoder: HTTP :9935, RTMP :1935 | its own address |
 * | `tc-a`, `tc-b` | cmd/transcoder.ts, `/metrics` :9936 | its own address |
 * | `ai`    | cmd/ai-worker.ts (reference ESRGAN worker, x2 only) :8000, registering through gateway A | its own address (or `aiWorkerHost`) |
 *
 * Every component is configured only through `MEDIAGATE_*` environment variables, as a
 * deployment on separate machines would be: the Redis URL and S3 endpoint name the `store`
 * host's address, gateways and transcoders share the S3 bucket, the AI worker is given gateway
 * A's URL and advertises its own. The gateways bind non-loopback addresses, so they run with an
 * admin token and a configured stream key (docs/deploy.md; transcoders need neither); publishing uses stream keys
 * issued to an account through the payments API, so every segment is charged.
 *
 * The test process stays in the root namespace (the bridge's `.1`) and plays every client:
 * the RTMP publisher, players, API callers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createNetwork, type NetnsNetwork, type NetnsHost } from './netns.ts';
import { startRedis, type TestRedis } from './redis-server.ts';
import { startS3rver, s3StorageEnv, type TestS3rver } from './s3rver.ts';
import { spawnMediagate, waitForHttp, waitUntil, type MediagateProcess } from './gateway-process.ts';

export const CLUSTER_HOSTS = ['store', 'gw-a', 'gw-b', 'tc-a', 'tc-b', 'ai'] as const;
export const GATEWAY_HTTP_PORT = 9935;
export const GATEWAY_RTMP_PORT = 1935;
export const TRANSCODER_METRICS_PORT = 9936;
export const AI_WORKER_PORT = 8000;

export interface ClusterGateway {
  readonly name: 'gw-a' | 'gw-b';
  readonly host: NetnsHost;
  /** `http://<address>:9935`. */
  readonly httpUrl: string;
  /** `rtmp://<address>:1935/live` (append `/<streamKey>`). */
  readonly rtmpBase: string;
  proc: MediagateProcess;
}

export interface ClusterTranscoder {
  readonly name: 'tc-a' | 'tc-b';
  readonly host: NetnsHost;
  proc: MediagateProcess;
}

export interface NetnsClusterOptions {
  /** Rendition ladder (preset names); default 240p + 144p, light enough for a loaded 2-core machine. */
  readonly ladder?: readonly string[];
  /** Extra environment for gateways and transcoders. */
  readonly env?: Record<string, string>;
  /** Bind address of the AI worker inside its namespace; default the namespace's own address. */
  readonly aiWorkerHost?: string;
  /** Start the AI worker; default true. */
  readonly aiWorker?: boolean;
  /** Tear down and exit on SIGINT/SIGTERM (netns.ts); default true. The demo handles them itself. */
  readonly signals?: boolean;
  /** Progress lines (the demo prints them). */
  readonly onProgress?: (line: string) => void;
}

export interface NetnsCluster {
  readonly network: NetnsNetwork;
  readonly redis: TestRedis;
  readonly s3: TestS3rver;
  readonly adminToken: string;
  readonly ladder: readonly string[];
  readonly gateways: readonly [ClusterGateway, ClusterGateway];
  readonly transcoders: readonly [ClusterTranscoder, ClusterTranscoder];
  readonly aiWorker?: { readonly host: NetnsHost; readonly token: string; proc: MediagateProcess };
  /** Environment every gateway and transcoder got (gateways also a configured stream key). */
  readonly sharedEnv: Record<string, string>;
  /** Starts a transcoder again in its namespace (after a kill), waiting until it is ready. */
  restartTranscoder(t: ClusterTranscoder): Promise<void>;
  /** `fetch` on gateway `gw` with the admin token. */
  api(gw: ClusterGateway, method: string, path: string, body?: unknown): Promise<unknown>;
  /** Every process's last `lines` log lines, labelled, for a failure message. */
  tail(lines?: number): string;
  /** Stops every process (SIGTERM, then SIGKILL), then removes the namespaces, the bridge and the data. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];

/**
 * Sets up the namespaces and starts every component, waiting until each answers.
 * @throws Error with the components' last log lines when one does not come up (everything started is torn down)
 */
export async function startNetnsCluster(options: NetnsClusterOptions = {}): Promise<NetnsCluster> {
  const progress = options.onProgress ?? ((): void => undefined);
  const ladder = options.ladder ?? DEFAULT_LADDER;
  const network = createNetwork(CLUSTER_HOSTS, { signals: options.signals ?? true });
  const dataDir = mkdtempSync(join(tmpdir(), `mg-netns-${network.runId}-`));
  const adminToken = randomBytes(16).toString('hex');
  const processes: { label: string; proc: () => MediagateProcess | undefined }[] = [];
  let redis: TestRedis | undefined;
  let s3: TestS3rver | undefined;
  let closed: Promise<void> | undefined;

  const close = (): Promise<void> => {
    closed ??= (async () => {
      await Promise.all(processes.map((p) => p.proc()?.stop()));
      await redis?.stop();
      await s3?.destroy();
      network.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    })();
    return closed;
  };
  const tail = (lines = 15): string => processes.map((p) => `--- ${p.label}\n${(p.proc()?.lines ?? []).slice(-lines).join('\n')}`).join('\n');

  try {
    const h = network.hosts;
    const store = h['store']!;
    progress(`namespaces ${Object.values(h).map((x) => `${x.ns}=${x.address}`).join(' ')} on bridge ${network.bridge} (${network.subnet}, this process ${network.clientAddress})`);
    redis = await startRedis({ host: store.address, port: 6379, launcher: store.exec });
    s3 = await startS3rver({ bucket: 'mediagate', host: store.address, port: 9000, launcher: store.exec });
    progress(`store: ${redis.url}, S3 ${s3.endpoint} bucket ${s3.bucket}`);

    const sharedEnv: Record<string, string> = {
      MEDIAGATE_REDIS_URL: redis.url,
      ...s3StorageEnv(s3),
      MEDIAGATE_HTTP_ADMIN_TOKEN: adminToken,
      MEDIAGATE_LADDER: ladder.join(','),
      MEDIAGATE_TRANSCODE_EMBEDDED: 'false',
      MEDIAGATE_TRANSCODE_CONCURRENCY: '1',
      MEDIAGATE_LOG_FORMAT: 'json',
      MEDIAGATE_AI_HEALTH_INTERVAL_MS: '500',
      ...options.env,
    };
    // A gateway on a non-loopback bind needs configured publishing auth (a transcoder does not); clients
    // publish with account-issued keys, tried first.
    const gatewayEnv = { MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: randomBytes(12).toString('hex'), manifestID: 'ops-static' }]) };
    const hostEnv = (host: NetnsHost, roleEnv: Record<string, string> = {}): Record<string, string> => ({
      ...sharedEnv,
      ...roleEnv,
      MEDIAGATE_HTTP_HOST: host.address,
      MEDIAGATE_HTTP_PORT: String(GATEWAY_HTTP_PORT),
      MEDIAGATE_RTMP_HOST: host.address,
      MEDIAGATE_RTMP_PORT: String(GATEWAY_RTMP_PORT),
      MEDIAGATE_TRANSCODE_METRICS_PORT: String(TRANSCODER_METRICS_PORT),
      MEDIAGATE_WORK_DIR: join(dataDir, host.name, 'work'),
      MEDIAGATE_STORAGE_DIR: join(dataDir, host.name, 'unused-objects'),
    });

    const gateways = (['gw-a', 'gw-b'] as const).map((name): ClusterGateway => {
      const host = h[name]!;
      const gw: ClusterGateway = {
        name, host, httpUrl: `http://${host.address}:${GATEWAY_HTTP_PORT}`, rtmpBase: `rtmp://${host.address}:${GATEWAY_RTMP_PORT}/live`,
        proc: spawnMediagate('gateway', hostEnv(host, gatewayEnv), [], host.exec),
      };
      processes.push({ label: name, proc: () => gw.proc });
      return gw;
    }) as [ClusterGateway, ClusterGateway];
    await Promise.all(gateways.map((g) => waitForHttp(`${g.httpUrl}/healthz`, g.proc, 90_000)));
    progress(`gateways: ${gateways.map((g) => `${g.name} ${g.httpUrl}`).join(', ')}`);

    const startTranscoder = async (t: ClusterTranscoder): Promise<void> => {
      t.proc = spawnMediagate('transcoder', hostEnv(t.host), [], t.host.exec);
      const proc = t.proc;
      await waitUntil(() => proc.lines.some((l) => l.includes('transcoder ready')) || proc.child.exitCode !== null, 90_000, () => `${t.name} did not start:\n${proc.lines.slice(-20).join('\n')}`);
      if (proc.child.exitCode !== null) throw new Error(`${t.name} exited:\n${proc.lines.slice(-20).join('\n')}`);
    };
    const transcoders = (['tc-a', 'tc-b'] as const).map((name) => ({ name, host: h[name]!, proc: undefined as unknown as MediagateProcess })) as [ClusterTranscoder, ClusterTranscoder];
    for (const t of transcoders) processes.push({ label: t.name, proc: () => t.proc });
    await Promise.all(transcoders.map(startTranscoder));
    progress(`transcoders: ${transcoders.map((t) => `${t.name} http://${t.host.address}:${TRANSCODER_METRICS_PORT}/metrics`).join(', ')}`);

    const api = async (gw: ClusterGateway, method: string, path: string, body?: unknown): Promise<unknown> => {
      const res = await fetch(`${gw.httpUrl}${path}`, {
        method, headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path} on ${gw.name}: ${res.status} ${text}`);
      return text ? JSON.parse(text) as unknown : undefined;
    };

    let aiWorker: NetnsCluster['aiWorker'];
    if (options.aiWorker ?? true) {
      const host = h['ai']!;
      const token = randomBytes(16).toString('hex');
      const worker = {
        host, token,
        proc: spawnMediagate('ai-worker', {
          MEDIAGATE_AI_WORKER_HOST: options.aiWorkerHost ?? host.address,
          MEDIAGATE_AI_WORKER_PORT: String(AI_WORKER_PORT),
          MEDIAGATE_AI_WORKER_TOKEN: token,
          MEDIAGATE_AI_WORKER_GATEWAY_URL: gateways[0].httpUrl,
          MEDIAGATE_AI_WORKER_GATEWAY_ADMIN_TOKEN: adminToken,
          MEDIAGATE_AI_WORKER_MODELS: 'esrgan-slim-x2',
          MEDIAGATE_AI_WORKER_REGISTER_INTERVAL_MS: '2000',
          MEDIAGATE_AI_WORKER_LOG_FORMAT: 'json',
          // Debug: each refused request is logged ("request rejected", with its status), which the capacity test counts.
          MEDIAGATE_AI_WORKER_LOG_LEVEL: 'debug',
        }, [], host.exec),
      };
      aiWorker = worker;
      processes.push({ label: 'ai', proc: () => worker.proc });
      await waitUntil(() => worker.proc.lines.some((l) => l.includes('AI worker listening')) || worker.proc.child.exitCode !== null, 90_000, () => `AI worker did not start:\n${worker.proc.lines.slice(-20).join('\n')}`);
      if (worker.proc.child.exitCode !== null) throw new Error(`AI worker exited:\n${worker.proc.lines.slice(-20).join('\n')}`);
      progress(`AI worker: ${host.address}:${AI_WORKER_PORT} (bound ${options.aiWorkerHost ?? host.address}), registering through ${gateways[0].name}`);
    }

    return {
      network, redis, s3, adminToken, ladder, gateways, transcoders, sharedEnv, ...(aiWorker ? { aiWorker } : {}),
      restartTranscoder: startTranscoder, api, tail, close,
    };
  } catch (err) {
    const detail = tail(20);
    await close();
    throw new Error(`${(err as Error).message}\n${detail}`);
  }
}
