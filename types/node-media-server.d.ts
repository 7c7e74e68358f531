/**
 * Local declaration for node-media-server 4.4.x (CommonJS, ships no types; the
 * `@types/node-media-server` package describes the v2 API and is wrong for v4).
 * Only what `src/ingest/rtmp/` uses is declared. Members marked "internal" are not
 * part of NMS's documented API: they were read in its 4.4.3 sources and are used to
 * make NMS safe to embed (see src/ingest/rtmp/rtmp-server.ts); re-check them on upgrade.
 */
declare module 'node-media-server' {
  namespace NodeMediaServer {
    /** Subset of NMS's `NmsConfig` (src/core/context.js). Listeners whose port is unset are not started. */
    interface Config {
      /** Listen address for all listeners. */
      bind?: string;
      /** Plain RTMP listener. Port 0 is not supported (NMS logs the configured number). */
      rtmp?: { port?: number };
      /** HTTP-FLV / WS-FLV listener; leave unset to keep HTTP off. */
      http?: { port?: number };
      /** FLV recording; `auto: false` records nothing. */
      record?: { auto?: boolean; path?: string };
      /** NMS's JSON store (relay tasks, stream history); `path` default "./data" (relative to cwd). */
      store?: {
        path?: string;
        flushInterval?: number;
        maxOps?: number;
        pretty?: boolean;
        durability?: 'none' | 'fsync';
        maxHistory?: number;
      };
      /** Bundled admin console at /admin (HTTP listener only); default enabled. */
      webadmin?: { enable?: boolean };
      /** Signed-URL auth for play/publish; `jwt` enables NMS's REST API (never set it). */
      auth?: { play?: boolean; publish?: boolean; secret?: string; jwt?: unknown };
      /** Webhook NMS posts every event to (a non-200 reply closes the session). */
      notify?: { url?: string };
    }

    type EventName = 'prePublish' | 'postPublish' | 'donePublish' | 'prePlay' | 'postPlay' | 'donePlay';

    /** Per stream path publish/play fan-out (src/server/broadcast_server.js). */
    interface BroadcastServer {
      readonly streamPath: string;
      /** Reconnect grace after the publisher disconnects, ms; default 30000. `donePublish` fires after it. */
      publishGraceMs: number;
      /** internal: the current publisher (also a session that was closed in prePublish, until it disconnects). */
      readonly publisher?: Session | null;
      /** internal */
      getPublishStatus?(): 'publishing' | 'reconnecting' | 'idle';
      /**
       * internal: adds a subscriber; an `flv` one first gets the FLV header, the cached metadata,
       * audio and video config tags and the GOP cache, then every tag as it arrives. Returns an
       * error message instead of adding it only when play auth is on (never here).
       */
      postPlay(session: import('node-media-server/src/session/base_session.js')): string | null;
      /** internal: removes a subscriber (by id). */
      donePlay(session: import('node-media-server/src/session/base_session.js')): void;
      /** internal: every subscriber by id: players (`ip` not empty) and internal ones (`ip` ''). */
      readonly subscribers: Map<string, { readonly ip: string; readonly protocol: string; sendBuffer(buffer: Buffer): void }>;
      /**
       * internal, an instance property (reassignable): shifts a resumed publish's timestamps,
       * caches (configs, metadata, GOP) and fans out one packet of the publisher as an FLV tag and
       * as an RTMP message (RtmpSession calls `this.broadcast.broadcastMessage(packet)`).
       */
      broadcastMessage: (packet: import('node-media-server/src/core/avpacket.js')) => void;
      /** internal: per codec_type (8 audio, 9 video), the dts shift of a publish resumed within the grace (0 otherwise). */
      readonly _dtsOffset: Record<number, number | undefined>;
      /** internal: per codec_type, the last dts of the current publish. */
      readonly _lastDts: Record<number, number | undefined>;
      /**
       * internal: the packets since the last video keyframe, as FLV tags and as RTMP messages,
       * replayed to a player that joins; a new Set at every keyframe, no setting to turn them off.
       */
      flvGopCache: Set<Buffer> | null;
      rtmpGopCache: Set<Buffer> | null;
    }

    /** The object every event callback receives (src/session/base_session.js and subclasses). */
    interface Session {
      /** Random id, unique per connection. */
      readonly id: string;
      /** Remote `address:port` (e.g. `127.0.0.1:53122`, `::ffff:10.0.0.2:40000`); empty for internal sessions. */
      readonly ip: string;
      /** `rtmp`, `flv`, `rtsp`, ... */
      readonly protocol: string;
      /** `/<app>/<name>`; empty when NMS refused the names' characters (it still emits prePublish then). */
      readonly streamPath: string;
      readonly streamApp: string;
      /** The stream key for our publishers: a secret, never log it. */
      readonly streamName: string;
      /** Parsed `?query` of the publish/play name (node:querystring). */
      readonly streamQuery: Record<string, string | string[] | undefined>;
      /** Set true by NMS only after `postPublish` returned without error. */
      readonly isPublisher: boolean;
      /** RTMP: `socket.end()` (half-close: NMS keeps reading and relaying what the peer still sends). */
      close(): void;
      /** Present on RTMP sessions from construction (a placeholder until the path is known). */
      broadcast?: BroadcastServer;
      /** internal, RtmpSession only: the client socket. */
      readonly socket?: import('node:net').Socket;
      /**
       * internal, RtmpSession only: its RTMP parser. `flv` is an FLV parser the RTMP path never
       * uses (src/protocol/rtmp.js), made with a 1 MiB zeroed tag buffer that grows on demand.
       */
      readonly rtmp?: { readonly flv?: { parserTagData: Buffer; parserTagCapacity: number } };
    }
  }

  class NodeMediaServer {
    /** Writes the config into NMS's module-level Context: one server per process. */
    constructor(config: NodeMediaServer.Config, configPath?: string);
    /** Registers on NMS's module-level event emitter; there is no `off`. */
    on(eventName: NodeMediaServer.EventName, listener: (session: NodeMediaServer.Session) => void): void;
    /** Starts the listeners and opens the store; resolves BEFORE the listeners are bound. */
    run(): Promise<void>;
    /** Closes listeners, destroys sockets, closes the store. Idempotent. */
    stop(): Promise<void>;
    /** internal: NMS's store; `options.signals` (default true) installs SIGINT/SIGTERM handlers in `run()`. */
    readonly store: { readonly options: { signals: boolean; dir: string }; readonly opened: boolean };
    /**
     * internal: persists every finished publish (stream path = key) to the store's
     * `stream_history` collection once `run()` is called (by NMS's own `run()`, after the store opened).
     */
    readonly historyServer: { run(): void; stop(): void };
    /** internal: the RTMP listener; `handleListenError` builds the listen `error` handler (it calls process.exit(1)). */
    readonly rtmpServer: {
      tcpServer?: import('node:net').Server;
      handleListenError: (name: string, port: number) => (err: NodeJS.ErrnoException) => void;
    };
  }

  export = NodeMediaServer;
}

/** NMS's module-level state (src/core/context.js). internal: re-check on upgrade. */
declare module 'node-media-server/src/core/context.js' {
  import type NodeMediaServer from 'node-media-server';
  const context: {
    /**
     * Stream path (`/<app>/<name>`) -> its broadcast. A session looks its path up here when it
     * connects (src/session/rtmp_session.js `onConnect`): a player joins the broadcast it finds.
     */
    readonly broadcasts: Map<string, NodeMediaServer.BroadcastServer>;
  };
  export = context;
}

/** NMS's logger: a module singleton that prints with console.log. Replace `log` before constructing the server. */
declare module 'node-media-server/src/core/logger.js' {
  namespace NmsLogger {
    type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  }
  const logger: {
    level: NmsLogger.Level;
    /** Every other method funnels into this one. */
    log(message: string, logLevel?: NmsLogger.Level): void;
    trace(message: string): void;
    debug(message: string): void;
    info(message: string): void;
    warn(message: string): void;
    error(message: string): void;
  };
  export = logger;
}

/**
 * NMS's session base class (src/session/base_session.js). internal: re-check on upgrade. An
 * instance with `protocol = 'flv'` and `ip = ''` is what NMS's own recorder
 * (src/session/record_session.js) attaches to a broadcast: an internal subscriber that gets
 * every FLV tag through `sendBuffer`, with no play events and not counted as a player.
 */
/** NMS's packet (src/core/avpacket.js). internal: re-check on upgrade. */
declare module 'node-media-server/src/core/avpacket.js' {
  class AVPacket {
    /** 8 audio, 9 video, 18 script data. */
    codec_type: number;
    /** 0 audio config, 1 audio frame, 2 video config, 3 video keyframe, 4 video inter frame, 5 metadata. */
    flags: number;
    pts: number;
    dts: number;
    size: number;
    data: Buffer;
  }
  export = AVPacket;
}

/** NMS's FLV muxer/parser (src/protocol/flv.js). internal: re-check on upgrade. */
declare module 'node-media-server/src/protocol/flv.js' {
  class Flv {
    /** One whole FLV tag (11-byte header, the packet's data, PreviousTagSize) in a new Buffer. */
    static createMessage(packet: import('node-media-server/src/core/avpacket.js')): Buffer;
  }
  export = Flv;
}

declare module 'node-media-server/src/session/base_session.js' {
  class BaseSession {
    /** Random id (base-36 time + 8 random characters), the key in the broadcast's subscriber map. */
    id: string;
    /** `''` marks an internal session: `postPlay`/`donePlay` emit no events and do not count it. */
    ip: string;
    /** How the broadcast hands it media: `flv` = the FLV file header, then one whole FLV tag per call. */
    protocol: string;
    streamApp: string;
    streamName: string;
    streamPath: string;
    /** Called synchronously from the publisher's socket handler; the buffer is shared (NMS's GOP cache): never mutate it. */
    sendBuffer: (buffer: Buffer) => void;
    close: () => void;
  }
  export = BaseSession;
}

/** NMS's AMF0 codec (src/protocol/amf.js). internal: re-check on upgrade. */
declare module 'node-media-server/src/protocol/amf.js' {
  /**
   * Decodes an RTMP data message / FLV script tag body: `cmd` is its first AMF0 string; for
   * `onMetaData` the next value is `dataObj`, for `@setDataFrame` `method` then `dataObj`
   * (an AMF0 object or ECMA array, as a plain object). Logs an error through NMS's logger for
   * other names; may throw on truncated input.
   */
  export function decodeAmf0Data(dbuf: Buffer): { cmd?: unknown; method?: unknown; dataObj?: unknown };
}
