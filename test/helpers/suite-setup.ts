/**
 * What many integration test files set up once for all their tests: a private redis-server
 * (test/helpers/redis-server.ts `startRedis`: 127.0.0.1, a free port, no persistence; stopped with
 * SIGTERM, SIGKILL after 5 s) with Redis connections or a client on it, or with a gateway process
 * on it, or with a gateway in this process on it. One call at the top level of a test file (or
 * in a `describe` body, never inside a test) registers a node:test `before` hook that starts the
 * setup and an `after` hook that tears it down. node:test runs `after` hooks also when a test
 * fails or times out and when a `before` hook threw, so no process and no temporary directory
 * outlives the file; a start that fails halfway is torn down as far as it got.
 *
 * Each call returns a handle whose fields can be read in tests once the setup is up (reading one
 * earlier throws). node:test waits for every `before` hook before the first test, but a file's
 * top-level `before` hooks start as soon as they are registered and run at the same time (in a
 * `describe` they run one after the other): a `before` of the file that uses the setup awaits
 * the handle's `ready` first. `after` hooks run one after the other in the order they were
 * registered: an `after` registered after the call runs once the setup is torn down.
 *
 * Not in test/helpers/redis-server.ts or gateway-process.ts: benchmarks (bench/) import those,
 * and this module imports node:test, src/redis and src/app.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startApp, type RunningApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { MediagateConfig } from '../../src/config/config-schema.ts';
import { mergeSettings } from '../../src/config/settings.ts';
import { RedisConnections, createRedis, type Redis } from '../../src/redis/connections.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { startRedis, type TestRedis } from './redis-server.ts';
import { startGateway, type MediagateProcess, type RunningGateway, type TestDeployment } from './gateway-process.ts';

/** `value`, or an Error saying that the setup it belongs to is not up. */
function up<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not up: read it in a test, or await the handle's ready first (or its before hook failed)`);
  return value;
}

/**
 * Registers `setUp` as a `before` hook and `tearDown` as an `after` hook.
 * @returns a promise of the `before` hook: resolves once `setUp` has finished, rejects with its error
 */
function hooks(setUp: () => Promise<void>, tearDown: () => Promise<void>): Promise<void> {
  let settle: { resolve(): void; reject(err: unknown): void } | undefined;
  const ready = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
  ready.catch(() => undefined); // the hook reports the error; a `ready` nobody awaits is no unhandled rejection
  before(async () => {
    try {
      await setUp();
      settle!.resolve();
    } catch (err) {
      settle!.reject(err);
      throw err;
    }
  });
  after(tearDown);
  return ready;
}

/** A setup of the suite. */
export interface SuiteSetup {
  /** Resolves once the setup is up; rejects with the error of its `before` hook. */
  readonly ready: Promise<void>;
}

/** A redis-server of the suite. */
export interface SuiteRedis extends SuiteSetup {
  readonly server: TestRedis;
}

/** A redis-server of the suite and one `RedisConnections` per name prefix on it. */
export interface SuiteRedisConnections extends SuiteRedis {
  /** The connections of the first name prefix. */
  readonly connections: RedisConnections;
  /** The connections of every name prefix, in the order given (two act as two processes). */
  readonly all: readonly RedisConnections[];
}

/**
 * A private redis-server for the suite and a `RedisConnections` (src/redis/connections.ts,
 * silent logger) on it for each of `namePrefixes` (e.g. `mediagate:test`; connections are named
 * `<prefix>:<purpose>` in CLIENT LIST).
 * Starts the server and waits until every prefix's `state` connection answers PING (5 s, else
 * the hook throws) in a `before` hook; in an `after` hook closes every connection (QUIT), then
 * stops the server.
 */
export function redisConnectionsForSuite(...namePrefixes: [string, ...string[]]): SuiteRedisConnections {
  let server: TestRedis | undefined;
  let all: RedisConnections[] | undefined;
  const ready = hooks(async () => {
    server = await startRedis();
    const url = server.url;
    all = namePrefixes.map((namePrefix) => new RedisConnections({ url, logger: silentLogger(), namePrefix }));
    await Promise.all(all.map((c) => c.ready('state', 5000)));
  }, async () => {
    try {
      await Promise.all((all ?? []).map((c) => c.close()));
    } finally {
      await server?.stop();
    }
  });
  return {
    ready,
    get server() { return up(server, 'redis-server'); },
    get connections() { return up(all, 'Redis connections')[0]!; },
    get all() { return up(all, 'Redis connections'); },
  };
}

/** A redis-server of the suite and one ioredis client on it. */
export interface SuiteRedisClient extends SuiteRedis {
  readonly client: Redis;
}

/**
 * A private redis-server for the suite and one client on it (src/redis/connections.ts
 * `createRedis`, silent logger, connection name `name`, default `test`), made in a `before`
 * hook; in an `after` hook the client is disconnected and the server stopped.
 */
export function redisClientForSuite(name = 'test'): SuiteRedisClient {
  let server: TestRedis | undefined;
  let client: Redis | undefined;
  const ready = hooks(async () => {
    server = await startRedis();
    client = createRedis({ url: server.url, logger: silentLogger(), name });
  }, async () => {
    client?.disconnect();
    await server?.stop();
  });
  return {
    ready,
    get server() { return up(server, 'redis-server'); },
    get client() { return up(client, 'the Redis client'); },
  };
}

/** A gateway process of the suite on its own redis-server (see `gatewayForSuite`). */
export interface SuiteGateway extends SuiteSetup {
  readonly redis: TestRedis;
  /** Its ports, data dir (`objects/`, `work/`) and environment. */
  readonly deployment: TestDeployment;
  /** The process and its log lines. */
  readonly proc: MediagateProcess;
  /** `http://127.0.0.1:<http port>` */
  readonly httpUrl: string;
  /** `rtmp://127.0.0.1:<rtmp port>/live/<key>` */
  rtmpUrl(key: string): string;
}

/**
 * A private redis-server and one gateway on it for the suite: `cmd/gateway.ts` (embedded
 * transcoder) as a child process with free HTTP and RTMP ports, its own `mg-e2e-*` data dir
 * under the OS temp dir, `MEDIAGATE_LOG_LEVEL=debug` and `env` on top
 * (test/helpers/gateway-process.ts `startGateway`).
 * In a `before` hook: starts Redis, then the gateway, and waits until its /healthz answers 200
 * (30 s; else the hook throws with its last log lines). `env` may be an async function, called
 * there once Redis is up, for settings of something it starts (e.g. an object store; stop that
 * in an `after` hook registered after this call, so that it stops once the gateway has).
 * In an `after` hook: stops the gateway (SIGTERM, SIGKILL after 20 s), removes its data dir,
 * then stops Redis.
 */
export function gatewayForSuite(env: Record<string, string> | (() => Promise<Record<string, string>>) = {}): SuiteGateway {
  let redis: TestRedis | undefined;
  let gateway: RunningGateway | undefined;
  const ready = hooks(async () => {
    redis = await startRedis();
    gateway = await startGateway(redis.url, typeof env === 'function' ? await env() : env);
  }, async () => {
    try {
      await gateway?.stop();
    } finally {
      await redis?.stop();
    }
  });
  const running = (): RunningGateway => up(gateway, 'the gateway');
  return {
    ready,
    get redis() { return up(redis, 'redis-server'); },
    get deployment() { return running().deployment; },
    get proc() { return running().proc; },
    get httpUrl() { return running().httpUrl; },
    rtmpUrl: (key) => running().rtmpUrl(key),
  };
}

/** Config overrides as `loadConfig` takes them (src/config/config.ts): a partial config, nested objects merged key by key. */
export type ConfigOverrides = Record<string, unknown>;

/** A gateway of the suite in this process, on its own redis-server (see `appForSuite`). */
export interface SuiteApp extends SuiteSetup {
  readonly redis: TestRedis;
  /** The config it was started with. */
  readonly config: MediagateConfig;
  /** Its data dir: `objects/` (storage.dir) and `work/` (workDir). */
  readonly dataDir: string;
  readonly app: RunningApp;
  /** `http://127.0.0.1:<http port>` */
  readonly httpUrl: string;
}

/**
 * A private redis-server and one gateway on it in this process for the suite: src/app.ts
 * `startApp` with role `gateway` and a silent logger, on the config of
 * `{ http: { port: 0 }, redis: { url }, storage: { dir: <data dir>/objects }, workDir: <data dir>/work }`
 * with `overrides` merged over it (nested objects key by key, as `loadConfig` merges its
 * overrides; so `redis: { keyPrefix }` keeps the suite's URL), its own `mg-app-*` data dir
 * under the OS temp dir.
 * In a `before` hook: starts Redis, makes the data dir, then starts the gateway (a start that
 * fails closes what it had started and the hook throws). `overrides` may be an async function,
 * called there once Redis is up, for settings of something it starts (e.g. a fake AI worker;
 * stop that in an `after` hook registered after this call, so that it stops once the gateway has).
 * In an `after` hook: closes the gateway (it drains first, see `RunningApp.close`), stops Redis,
 * then removes the data dir.
 */
export function appForSuite(overrides: ConfigOverrides | (() => Promise<ConfigOverrides>) = {}): SuiteApp {
  let redis: TestRedis | undefined;
  let dataDir: string | undefined;
  let config: MediagateConfig | undefined;
  let app: RunningApp | undefined;
  const ready = hooks(async () => {
    redis = await startRedis();
    dataDir = mkdtempSync(join(tmpdir(), 'mg-app-'));
    const settings: ConfigOverrides = { http: { port: 0 }, redis: { url: redis.url }, storage: { dir: join(dataDir, 'objects') }, workDir: join(dataDir, 'work') };
    mergeSettings(settings, typeof overrides === 'function' ? await overrides() : overrides);
    config = loadConfig({ overrides: settings });
    app = await startApp(config, createLogger({ level: 'silent' }), 'gateway');
  }, async () => {
    try {
      await app?.close();
    } finally {
      try {
        await redis?.stop();
      } finally {
        if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      }
    }
  });
  const running = (): RunningApp => up(app, 'the gateway');
  return {
    ready,
    get redis() { return up(redis, 'redis-server'); },
    get config() { return up(config, 'the gateway config'); },
    get dataDir() { return up(dataDir, 'the data dir'); },
    get app() { return running(); },
    get httpUrl() { return `http://127.0.0.1:${running().httpPort}`; },
  };
}
