/**
 * RTMP ingest's adapter over node-media-server 4.4 (NMS); with packet-tap.ts (a publish's
 * packets in process) the only files that import NMS. It builds the NMS instance with its
 * defaults made host-safe, prepares its store directory, bridges its logging and closes its
 * sessions for good. The publish/play policy on top is the RtmpServer (rtmp-server.ts).
 *
 * NMS is embedded but kept on a short leash; every trap below was read in its 4.4.3
 * sources (`src/session/rtmp_session.js`, `src/server/rtmp_server.js`, `src/core/`) and
 * checked on loopback:
 * - it answers `NetStream.Publish.Start` BEFORE emitting `prePublish`, and `prePublish`
 *   is synchronous: a refusal is a disconnect after the fact;
 * - `session.close()` is only `socket.end()`: NMS keeps parsing what the peer still sends
 *   and relays it to the path's players. A second publisher refused by NMS itself
 *   ("already has a publisher") therefore injects its packets into the live stream until
 *   the peer notices (observed: ~80 ms of foreign media with rewinding timestamps in the
 *   segmenter). We destroy the socket of every session we refuse;
 * - `postPublish` fires for sessions closed in `prePublish`, and NMS still makes them the
 *   path's publisher until they disconnect; `donePublish` comes `publishGraceMs` (30 s)
 *   after the disconnect unless lowered (we set 0);
 * - after the publisher leaves, players stay attached waiting for a new publisher: a pulling
 *   client would hang until its I/O timeout. We close the path's players on unpublish;
 * - `run()` resolves before the port is bound; a listen error calls `process.exit(1)`;
 *   port 0 is unsupported; its store installs SIGINT/SIGTERM handlers that re-raise the
 *   signal (disabled here); its logger prints stream paths (= stream keys) with console.log;
 * - its history server writes every finished publish, refused ones included, with its stream
 *   path (= the stream key) to `<store>/stream_history.json`, world-readable under the usual
 *   umask; there is no setting to turn it off (`src/server/history_server.js`). We never run
 *   it, remove history files an older version left, and keep the store directory private
 *   (0700).
 */
import path from 'node:path';
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import NodeMediaServer from 'node-media-server';
import nmsLogger from 'node-media-server/src/core/logger.js';
import type { Logger } from '../../log/logger.ts';
import { redactStreamPaths } from '../../log/redact.ts';

/** An NMS RTMP session (publisher or player). */
export type NmsSession = NodeMediaServer.Session;
/** An NMS instance as built by {@link createNms}. */
export type Nms = NodeMediaServer;

/** History files of NMS's store (`stream_history.json`, or `stream_history_pNNN.json` when partitioned: `src/store/persister.js`). */
const NMS_HISTORY_FILE = /^stream_history(_p\d{3})?\.json$/;

/**
 * Creates NMS's store directory (mode 0700, also when it exists) and removes the stream
 * history files an older version left in it (they name stream keys).
 */
export async function prepareNmsStore(storePath: string): Promise<void> {
  await mkdir(storePath, { recursive: true, mode: 0o700 });
  await chmod(storePath, 0o700);
  for (const file of await readdir(storePath)) {
    if (NMS_HISTORY_FILE.test(file)) await rm(path.join(storePath, file), { force: true });
  }
}

/**
 * Builds (does not run) an NMS instance listening for RTMP only on `host:port`: no HTTP-FLV,
 * REST API, web admin or recording; its logging bridged to `log`; its store's signal
 * handlers and its history server off; a listen error reported to `onListenError` instead
 * of NMS's `process.exit(1)`.
 */
export function createNms(options: { host: string; port: number; storePath: string; log: Logger; onListenError(err: NodeJS.ErrnoException): void }): Nms {
  // NMS's logger must be replaced before construction (the constructor logs).
  installNmsLogBridge(options.log);

  const nms = new NodeMediaServer({
    bind: options.host,
    rtmp: { port: options.port },
    // no http: HTTP-FLV/WS-FLV off; no auth.jwt: REST API off
    webadmin: { enable: false },
    record: { auto: false },
    store: { path: options.storePath },
  });
  // The host process owns SIGINT/SIGTERM: NMS's store would flush and re-raise them.
  nms.store.options.signals = false;
  // No stream history: it would store every stream key, refused ones included.
  nms.historyServer.run = () => undefined;
  // Race safety net: if the port is grabbed between our check and NMS's listen,
  // report instead of NMS's process.exit(1).
  nms.rtmpServer.handleListenError = () => options.onListenError;
  return nms;
}

/** Routes NMS's console logging into pino at debug (trace stays trace), stream keys redacted. */
function installNmsLogBridge(log: Logger): void {
  const nmsLog = log.child({ lib: 'node-media-server' });
  nmsLogger.log = (message: string, level: string = 'info') => {
    if (!nmsLog.isLevelEnabled(level === 'trace' ? 'trace' : 'debug')) return;
    const msg = redactStreamPaths(String(message));
    if (level === 'trace') nmsLog.trace({ nmsLevel: level }, msg);
    else nmsLog.debug({ nmsLevel: level }, msg);
  };
}

/** `close()` alone is a half-close; destroy so nothing more is read or relayed. */
export function hardClose(session: NmsSession): void {
  try {
    session.close();
  } finally {
    session.socket?.destroy();
  }
}

/**
 * Frees the 1 MiB buffer of the FLV parser that every NMS RTMP connection makes and never
 * uses (`new Flv()` in `src/protocol/rtmp.js`: `parserTagData = Buffer.alloc(1 MiB)`; only
 * an HTTP-FLV publish parses FLV). Measured 0.5-0.8 MiB of resident memory per publisher
 * (glibc serves the zeroed 1 MiB from its heap once its mmap threshold has grown). Should the
 * parser ever run, it grows its buffer to the tag size on demand (`parserTagAlloc`).
 */
export function releaseUnusedFlvParser(session: NmsSession): void {
  const flv = session.rtmp?.flv;
  if (!flv) return;
  flv.parserTagData = Buffer.alloc(0);
  flv.parserTagCapacity = 0;
}

/** NMS's `ip` is `address:port`. */
export function addressOf(ip: string): string {
  return ip.replace(/:\d+$/, '');
}
