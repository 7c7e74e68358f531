/**
 * Redis connections: the one place that builds an ioredis client. The composition root
 * (src/app.ts) owns a `RedisConnections` and opens one named connection per purpose (the
 * state stores, the transcode queue, the event queue, pub/sub …); the stores receive their
 * connection and never create or close one. `CLIENT LIST` shows each by name
 * (`mediagate:<role>:<purpose>`), so an operator can tell what every connection is for.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { Redis, type Command, type RedisOptions } from 'ioredis';
import type { Logger } from '../log/logger.ts';
import { REDACTED } from '../log/redact.ts';
import { settleWithin } from '../domain/time-limit.ts';

export type { Redis };

export interface RedisConnectOptions {
  url: string;
  logger: Logger;
  /** Connection name shown by CLIENT LIST (e.g. `mediagate:gateway`). */
  name: string;
  /**
   * For BullMQ workers and blocking clients: `null` so commands wait out a Redis restart
   * instead of failing (BullMQ requires `null` on a Worker's connection: a number makes its
   * blocking commands fail after that many reconnect attempts). Default 3 for ordinary request/response use.
   */
  maxRetriesPerRequest?: number | null;
  /**
   * Commands sent in one turn of the event loop leave in one socket write ({@link CoalescingRedis}).
   * Default false.
   */
  coalesceWrites?: boolean;
}

/** Sockets corked by a {@link CoalescingRedis} until the end of this turn of the event loop. */
const corked = new WeakSet<Writable>();

function uncork(socket: Writable): void {
  corked.delete(socket);
  socket.uncork();
}

/**
 * An ioredis client whose commands sent in one turn of the event loop leave in one socket
 * write: the first command of a turn corks the connection's socket and a `setImmediate`
 * uncorks it after the turn's I/O callbacks have run, so the commands written meanwhile go
 * out as one `writev`. ioredis writes each command with its own `socket.write`, a syscall
 * that also wakes Redis: the AI routes send four per request (credit hold and worker slot at
 * once, settle, slot release) and, at 32 requests in flight, those writes were ~12 % of the
 * gateway's sampled time (bench/README.md §4). Nothing waits for a reply (unlike ioredis's
 * `enableAutoPipelining`, which holds a batch until the previous one is answered), order is
 * kept (one socket, one buffer), and a command leaves at most one turn of the loop later.
 * Commands written before the connection is ready (ioredis's handshake, its offline queue
 * while connecting) are not held.
 */
class CoalescingRedis extends Redis {
  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    const socket: Writable | undefined = this.stream;
    if (stream === undefined && socket !== undefined && this.status === 'ready' && !corked.has(socket)) {
      socket.cork();
      corked.add(socket);
      setImmediate(uncork, socket);
    }
    return super.sendCommand(command, stream);
  }
}

/**
 * Creates an ioredis client with an `error` listener attached (an unhandled `error`
 * event would crash the process) and a capped reconnect backoff (100 ms → 2 s).
 */
export function createRedis(options: RedisConnectOptions): Redis {
  // Narrowed to the reply mapping we use (the default): a subclass's constructor overloads
  // (CoalescingRedis) take only the options of that mapping, which RedisOptions alone is not.
  const redisOptions: RedisOptions & { replyMapping?: 'legacy' } = {
    connectionName: options.name,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 3 : options.maxRetriesPerRequest,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    lazyConnect: false,
  };
  const client = options.coalesceWrites === true ? new CoalescingRedis(options.url, redisOptions) : new Redis(options.url, redisOptions);
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (now - lastLogged > 5000) {
      lastLogged = now;
      options.logger.warn({ err: err.message, redis: redactRedisUrl(options.url) }, 'redis connection error');
    }
  });
  return client;
}

/** Removes a password from a redis URL so it can be logged. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, `//${REDACTED}@`);
}

/**
 * Waits until the client answers PING.
 * @throws Error naming the URL (without password) and what to do, after `timeoutMs`.
 */
export async function waitForRedis(client: Redis, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      await settleWithin(client.ping(), 1000, () => { throw new Error('ping timed out'); });
      return;
    } catch (err) {
      lastError = (err as Error).message;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`cannot reach Redis at ${redactRedisUrl(url)} (${lastError}); start redis-server or set MEDIAGATE_REDIS_URL`);
}

/** How a connection is used, which decides its `maxRetriesPerRequest` (see `RedisConnectOptions`). */
export type RedisConnectionUse =
  /** Request/response commands: a command fails after 3 reconnect attempts, so callers see an outage. */
  | 'commands'
  /** BullMQ queues and workers, blocking commands and subscribers: commands wait out a Redis restart. */
  | 'blocking';

/**
 * The named connections of one process, opened on first use and closed together.
 * `open(purpose)` returns the same client for the same purpose; `close()` (idempotent) ends
 * every client with QUIT, then drops any that has not closed within 2 s.
 */
export class RedisConnections {
  readonly #url: string;
  readonly #logger: Logger;
  readonly #namePrefix: string;
  readonly #open = new Map<string, Redis>();
  #closed = false;

  /**
   * @param options.url Redis URL (`redis.url`); a password in it is never logged.
   * @param options.namePrefix Prefix of every connection name, e.g. `mediagate:gateway`.
   */
  constructor(options: { url: string; logger: Logger; namePrefix: string }) {
    this.#url = options.url;
    this.#logger = options.logger;
    this.#namePrefix = options.namePrefix;
  }

  /** The Redis URL without its password, for logs. */
  get redactedUrl(): string { return redactRedisUrl(this.#url); }

  /**
   * The connection for `purpose` (a short lowercase name such as `state` or `queue`), opened on
   * first use; a purpose keeps the `use` it was first opened with.
   * @throws Error after `close()`.
   */
  open(purpose: string, use: RedisConnectionUse = 'commands'): Redis {
    if (this.#closed) throw new Error(`redis connections are closed; cannot open ${purpose}`);
    let client = this.#open.get(purpose);
    if (client === undefined) {
      client = createRedis({
        url: this.#url,
        logger: this.#logger.child({ connection: purpose }),
        name: `${this.#namePrefix}:${purpose}`,
        maxRetriesPerRequest: use === 'blocking' ? null : 3,
        // Request/response connections carry the request paths' commands (the AI routes' ledger
        // and worker slots, the segment index); blocking ones are left to BullMQ and subscribers.
        coalesceWrites: use === 'commands',
      });
      this.#open.set(purpose, client);
    }
    return client;
  }

  /** Waits until the `purpose` connection answers PING (see `waitForRedis`). */
  async ready(purpose: string, timeoutMs: number): Promise<void> {
    await waitForRedis(this.open(purpose), this.#url, timeoutMs);
  }

  /** Closes every connection opened here; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const clients = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(clients.map(async (client) => {
      if (client.status === 'end') return;
      const ended = once(client, 'end').then(() => true, () => false);
      await settleWithin(client.quit().then(() => undefined, () => undefined), 2000, () => undefined);
      if (!(await settleWithin(ended, 2000, () => false))) client.disconnect();
    }));
  }
}
