/**
 * RTMP ingest: our publish/play policy ({@link RtmpServer}) on a thin, host-safe adapter over
 * node-media-server 4.4 (nms-adapter.ts, which lists the NMS traps this class works around).
 * Its options and the handlers it calls are declared in rtmp-options.ts; port and address
 * checks are in rtmp-port.ts.
 */
import path from 'node:path';
import { isValidStreamName } from '../../domain/stream-name.ts';
import { GatewayError } from '../../errors/gateway-error.ts';
import type { Logger } from '../../log/logger.ts';
import { settleWithin } from '../../domain/time-limit.ts';
import { addressOf, createNms, hardClose, prepareNmsStore, releaseUnusedFlvParser, type Nms, type NmsSession } from './nms-adapter.ts';
import { RTMP_APP, type PublishDecision, type PublishRequest, type RtmpPublishHandlers, type RtmpServerOptions } from './rtmp-options.ts';
import { assertPortFree, canConnect, delay, isLoopback, localConnectHost, portError } from './rtmp-port.ts';
import { PacketTap, type FlvTagSource, type FlvTagWatch } from './packet-tap.ts';

type PublishState = 'pending' | 'live';

interface TrackedPublish {
  readonly session: NmsSession;
  readonly streamPath: string;
  state: PublishState;
  /** The publisher disconnected (or was kicked/closed) before the decision resolved. */
  ended: boolean;
  /** Its FLV tags from the first one (packet-tap.ts); ended with the publish. */
  readonly tap: PacketTap | undefined;
}

const DEFAULT_PORT = 1935;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_DECISION_TIMEOUT_MS = 10_000;
const DEFAULT_START_TIMEOUT_MS = 5_000;
const PORT_POLL_INTERVAL_MS = 25;

/**
 * RTMP ingest server. Publish URL `rtmp://<host>:<port>/live/<streamKey>`.
 *
 * Publish flow (all keyed on NMS's `session.id`):
 * 1. `prePublish`: the path's reconnect grace is set to 0 (so `donePublish` follows the
 *    disconnect at once). Refused without calling `onPublish`: an app other than `live`,
 *    a stream name failing `isValidStreamName`, and a path that already has a publisher
 *    (pending or live here, or NMS's own publisher slot taken). Refusing = `close()` and
 *    destroying the socket. A publish that passes gets its packet tap (packet-tap.ts) here,
 *    before its first media packet: `flvTags(sessionId)` hands its FLV tags to one reader.
 * 2. `onPublish` runs on the next microtask, only if NMS really made the session the
 *    publisher (`isPublisher`), so `onPublish` is never invoked for a second publisher on a
 *    busy path: the lead's code sees at most one publish per path at a time.
 * 3. Async decisions: NMS has already answered `Publish.Start`, so while `onPublish` is
 *    pending the publisher is provisionally connected and its media is held by the tap (from
 *    the first tag, up to packet-tap.ts `MAX_HELD_BYTES`) for the reader the caller starts
 *    (the segmenter, rtmp-segmenter.ts), which gets it first. A denial,
 *    rejection, throw or timeout (`publishDecisionTimeoutMs`) disconnects the publisher;
 *    no `onUnpublish` follows. If the publisher leaves before an accepting decision
 *    resolves, `onUnpublish` is called right after it.
 * 4. On disconnect, `kick()` or `close()`: the tap's reader gets its `end` (the segmenter
 *    closes its last segment), then `onUnpublish(sessionId)` for accepted sessions; the
 *    path's players, if any, are closed.
 *
 * Play (`rtmp://.../live/<key>` pulls) is allowed from loopback only unless
 * `allowRemotePlay`. NMS's log lines go to `logger` at debug with stream names redacted.
 *
 * One instance per process at a time: NMS keeps its state in module-level singletons
 * (a new instance after `close()` works; a closed instance's listeners stay inert).
 * NMS's store signal handlers are disabled; the host process owns SIGINT/SIGTERM and must
 * call `close()`.
 */
export class RtmpServer {
  readonly #host: string;
  readonly #port: number;
  readonly #log: Logger;
  readonly #storePath: string;
  /** Set by the constructor or `start()`; `start()` refuses to run without them. */
  #handlers: RtmpPublishHandlers | undefined;
  readonly #decisionTimeoutMs: number;
  readonly #startTimeoutMs: number;
  readonly #allowRemotePlay: boolean;

  #nms: Nms | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  /** Publishers we track (pending or live), by session id. */
  readonly #publishers = new Map<string, TrackedPublish>();
  /** Stream path -> session id of its pending/live publisher. */
  readonly #pathOwners = new Map<string, string>();
  /** Allowed play sessions, by session id. */
  readonly #players = new Map<string, NmsSession>();
  /** Listen error reported by NMS's RTMP listener after start. */
  #listenError: Error | undefined;

  /**
   * @throws GatewayError CONFIG_INVALID when `storePath` is not absolute or `port` is not 1-65535
   */
  constructor(options: RtmpServerOptions) {
    const port = options.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new GatewayError('CONFIG_INVALID', `RTMP port must be an integer 1-65535 (0 is not supported), got ${port}`);
    }
    if (!path.isAbsolute(options.storePath)) {
      throw new GatewayError('CONFIG_INVALID', 'RTMP storePath must be an absolute directory');
    }
    this.#host = options.host ?? DEFAULT_HOST;
    this.#port = port;
    this.#log = options.logger.child({ component: 'rtmp' });
    this.#storePath = options.storePath;
    if (options.onPublish && options.onUnpublish) this.#handlers = { onPublish: options.onPublish, onUnpublish: options.onUnpublish };
    this.#decisionTimeoutMs = options.publishDecisionTimeoutMs ?? DEFAULT_DECISION_TIMEOUT_MS;
    this.#startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.#allowRemotePlay = options.allowRemotePlay ?? false;
  }

  get host(): string {
    return this.#host;
  }

  get port(): number {
    return this.#port;
  }

  /** Session ids of publishers currently accepted (live), in no particular order. */
  get liveSessionIds(): string[] {
    return [...this.#publishers.entries()].filter(([, p]) => p.state === 'live').map(([id]) => id);
  }

  /**
   * Binds the RTMP port. Resolves once the port accepts TCP connections.
   * Calling it again returns the same promise (later `handlers` are ignored).
   * @param handlers where publishes go; replaces the constructor's, required when it had none
   * @throws GatewayError CONFIG_INVALID when the port is in use or cannot be bound (the
   *   process is not exited), or the listener is not accepting within `startTimeoutMs`;
   *   GatewayError INTERNAL when called after `close()` or without handlers.
   */
  start(handlers?: RtmpPublishHandlers): Promise<void> {
    if (this.#closed) return Promise.reject(new GatewayError('INTERNAL', 'RTMP server is closed'));
    if (!this.#starting && handlers) this.#handlers = handlers;
    if (!this.#handlers) return Promise.reject(new GatewayError('INTERNAL', 'RTMP server started without publish handlers'));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    // 1. Refuse cleanly if the port is taken: NMS itself would process.exit(1).
    await assertPortFree(this.#host, this.#port);
    await prepareNmsStore(this.#storePath);
    if (this.#closed) throw new GatewayError('INTERNAL', 'RTMP server closed while starting');

    // 2. NMS built host-safe (nms-adapter.ts): no signal handlers, no stream history, and a
    //    listen error lost to a port grabbed between our check and NMS's listen is reported
    //    instead of NMS's process.exit(1).
    const nms = createNms({
      host: this.#host, port: this.#port, storePath: this.#storePath, log: this.#log,
      onListenError: (err) => {
        this.#listenError = portError(this.#host, this.#port, err);
        this.#log.error({ err: { code: err.code, message: err.message } }, 'RTMP listener failed');
      },
    });
    this.#nms = nms;

    nms.on('prePublish', (s) => this.#guard('prePublish', () => this.#handlePrePublish(s)));
    nms.on('donePublish', (s) => this.#guard('donePublish', () => this.#handleDonePublish(s)));
    nms.on('prePlay', (s) => this.#guard('prePlay', () => this.#handlePrePlay(s)));
    nms.on('donePlay', (s) => this.#guard('donePlay', () => this.#players.delete(s.id)));

    try {
      await nms.run();
      await this.#waitUntilAccepting();
    } catch (err) {
      await nms.stop().catch(() => undefined);
      this.#nms = undefined;
      throw err;
    }
    this.#log.info({ host: this.#host, port: this.#port }, 'RTMP ingest listening');
  }

  async #waitUntilAccepting(): Promise<void> {
    const deadline = Date.now() + this.#startTimeoutMs;
    const connectHost = localConnectHost(this.#host);
    for (;;) {
      if (this.#listenError) throw this.#listenError;
      // (re-check after connecting: in the race case another process answers on the port)
      if (await canConnect(connectHost, this.#port) && !this.#listenError) return;
      if (Date.now() > deadline) {
        throw new GatewayError('CONFIG_INVALID', `RTMP listener on ${this.#host}:${this.#port} not accepting after ${this.#startTimeoutMs} ms`);
      }
      await delay(PORT_POLL_INTERVAL_MS);
    }
  }

  /**
   * Disconnects a publisher (pending or live). An accepted one then gets its `onUnpublish`.
   * @returns whether a tracked publisher had that id
   */
  kick(sessionId: string): boolean {
    const tracked = this.#publishers.get(sessionId);
    if (!tracked) return false;
    this.#log.info({ sessionId }, 'RTMP publisher kicked');
    hardClose(tracked.session);
    return true;
  }

  /**
   * Stops listening and disconnects everyone; then calls `onUnpublish` for each accepted
   * publish still live and awaits those calls. Idempotent; safe before `start()`.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    await this.#starting?.catch(() => undefined);
    const live: string[] = [];
    for (const [id, tracked] of this.#publishers) {
      tracked.ended = true;
      tracked.tap?.end();
      if (tracked.state === 'live') live.push(id);
    }
    // Forget them first: NMS's own donePublish events (after stop) then find nothing.
    for (const tracked of [...this.#publishers.values()]) {
      if (tracked.state === 'live') this.#forget(tracked);
    }
    this.#pathOwners.clear();
    this.#players.clear();
    const nms = this.#nms;
    this.#nms = undefined;
    if (nms) await nms.stop();
    await Promise.all(live.map((id) => this.#notifyUnpublish(id)));
    if (nms) this.#log.info('RTMP ingest closed');
  }

  #handlePrePublish(session: NmsSession): void {
    // Closed: inert. NMS has no `off`, so our listeners outlive us on its module-level
    // emitter and must not touch the sessions of a later RtmpServer in this process
    // (NMS's own stop() destroys the sockets of ours).
    if (this.#closed) return;
    // Always first: also refused sessions hold NMS's publisher slot until donePublish.
    if (session.broadcast) session.broadcast.publishGraceMs = 0;
    releaseUnusedFlvParser(session);
    const sessionId = session.id;
    if (session.streamApp !== RTMP_APP || !isValidStreamName(session.streamName)) {
      this.#log.info({ sessionId, reason: 'invalid stream path' }, 'RTMP publish refused');
      hardClose(session);
      return;
    }
    const streamPath = `/${RTMP_APP}/${session.streamName}`;
    const owner = this.#pathOwners.get(streamPath);
    const nmsPublisher = session.broadcast?.publisher;
    const nmsBusy = nmsPublisher != null && nmsPublisher.id !== sessionId && session.broadcast?.getPublishStatus?.() !== 'reconnecting';
    if ((owner !== undefined && owner !== sessionId) || nmsBusy) {
      this.#log.info({ sessionId, activeSessionId: owner, reason: 'stream busy' }, 'RTMP publish refused');
      hardClose(session);
      return;
    }
    // The tap is attached here, inside NMS's postPublish and before any media packet, so its
    // reader gets every tag from the first, however long the decision takes.
    const tap = session.broadcast ? new PacketTap(session.broadcast, this.#log.child({ sessionId })) : undefined;
    const tracked: TrackedPublish = { session, streamPath, state: 'pending', ended: false, tap };
    this.#publishers.set(sessionId, tracked);
    this.#pathOwners.set(streamPath, sessionId);
    // NMS sets isPublisher synchronously after postPublish returns without error.
    queueMicrotask(() => {
      if (!session.isPublisher) {
        this.#forget(tracked);
        this.#log.warn({ sessionId, reason: 'refused by NMS' }, 'RTMP publish refused');
        hardClose(session);
        return;
      }
      void this.#decide(tracked);
    });
  }

  async #decide(tracked: TrackedPublish): Promise<void> {
    const { session } = tracked;
    const sessionId = session.id;
    const req: PublishRequest = {
      sessionId,
      app: RTMP_APP,
      streamName: session.streamName,
      ip: addressOf(session.ip),
      query: { ...session.streamQuery },
    };
    let decision: PublishDecision;
    try {
      decision = await settleWithin(Promise.resolve().then(() => this.#handlers!.onPublish(req)), this.#decisionTimeoutMs,
        (): PublishDecision => ({ accept: false, reason: 'publish decision timed out' }));
      if (decision?.accept !== true && decision?.accept !== false) {
        decision = { accept: false, reason: 'invalid publish decision' };
      }
    } catch (err) {
      this.#log.warn({ sessionId, err: errorFields(err) }, 'RTMP publish decision failed');
      decision = { accept: false, reason: 'publish decision failed' };
    }

    if (!decision.accept) {
      this.#forget(tracked);
      this.#log.info({ sessionId, reason: decision.reason }, 'RTMP publish refused');
      hardClose(session);
      return;
    }
    if (tracked.ended) {
      // Left (or server closed) while we were deciding: the accepted publish is already over.
      this.#forget(tracked);
      this.#log.info({ sessionId }, 'RTMP publisher left before the decision');
      await this.#notifyUnpublish(sessionId);
      return;
    }
    tracked.state = 'live';
    this.#log.info({ sessionId, ip: req.ip }, 'RTMP publish accepted');
  }

  #handleDonePublish(session: NmsSession): void {
    // after close() only pending decisions remain tracked; #decide() finishes them
    const tracked = this.#publishers.get(session.id);
    if (!tracked) return; // refused, or already reported by close()
    tracked.ended = true;
    tracked.tap?.end();
    this.#closePlayers(tracked.streamPath);
    if (tracked.state === 'pending') {
      // #decide() finishes the story; free the path now so the publisher can come back.
      if (this.#pathOwners.get(tracked.streamPath) === session.id) this.#pathOwners.delete(tracked.streamPath);
      return;
    }
    this.#forget(tracked);
    this.#log.info({ sessionId: session.id }, 'RTMP publish ended');
    void this.#notifyUnpublish(session.id);
  }

  /**
   * The FLV tags of a pending or live publish, from its first tag on (packet-tap.ts): for the
   * caller's `onPublish` to read in process (one reader per publish). Its reader's `end` comes
   * before `onUnpublish`. Undefined once the publish has ended or for an unknown id.
   */
  flvTags(sessionId: string): FlvTagSource | undefined {
    return this.#publishers.get(sessionId)?.tap;
  }

  /**
   * Where live readers join a pending or live publish mid-way (packet-tap.ts `watch`: the
   * latest configuration tags, then every new tag; any number of watchers, e.g. WHEP
   * playback). Undefined once the publish has ended or for an unknown id.
   */
  watchTags(sessionId: string): FlvTagWatch | undefined {
    return this.#publishers.get(sessionId)?.tap;
  }

  #handlePrePlay(session: NmsSession): void {
    if (this.#closed) return;
    releaseUnusedFlvParser(session);
    // A player on this host reaches a specific non-loopback bind from that address itself.
    const address = addressOf(session.ip);
    const local = isLoopback(address) || address === this.#host || address === `::ffff:${this.#host}`;
    const remoteOk = this.#allowRemotePlay || local;
    if (!remoteOk || session.streamApp !== RTMP_APP || !isValidStreamName(session.streamName)) {
      this.#log.info({ sessionId: session.id, reason: remoteOk ? 'invalid stream path' : 'remote play not allowed' }, 'RTMP play refused');
      hardClose(session);
      return;
    }
    this.#players.set(session.id, session);
  }

  /** Players stay attached after the publisher leaves (NMS waits for a new one): end them. */
  #closePlayers(streamPath: string): void {
    for (const [id, player] of this.#players) {
      if (player.streamPath === streamPath) {
        this.#players.delete(id);
        player.close();
      }
    }
  }

  #forget(tracked: TrackedPublish): void {
    tracked.tap?.end();
    const id = tracked.session.id;
    this.#publishers.delete(id);
    if (this.#pathOwners.get(tracked.streamPath) === id) this.#pathOwners.delete(tracked.streamPath);
  }

  async #notifyUnpublish(sessionId: string): Promise<void> {
    try {
      await this.#handlers!.onUnpublish(sessionId);
    } catch (err) {
      this.#log.error({ sessionId, err: errorFields(err) }, 'onUnpublish failed');
    }
  }

  /** NMS calls listeners inside its socket handlers: an exception there would kill its parser. */
  #guard(event: string, fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ event, err: errorFields(err) }, 'RTMP event handler failed');
    }
  }
}

function errorFields(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === undefined ? { message: err.message } : { message: err.message, code };
  }
  return { message: String(err) };
}
