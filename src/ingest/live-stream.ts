/**
 * One live stream's state, the options of live ingest, and the core steps shared by RTMP
 * publish (rtmp-publish.ts) and HTTP push (push-session.ts), which `LiveIngest`
 * (live-ingest.ts) implements: authorize, open, ingest a segment, resolve failed or lost
 * segments, end.
 */
import type { WatermarkSpec } from '../domain/watermark.ts';
import type { Logger } from '../log/logger.ts';
import type { VideoProfile, SourceVideoInfo, StreamProtocol } from '../domain/profile.ts';
import type {
  IngestBilling, IngestEvents, IngestIndex, IngestJob, IngestRecorder, LiveFeedSink, LiveTranscodeSessions, ProbedSegment, PublishAuthorizer, PushClaims,
  PushSessionRecord, PushSessionStore, SegmentEnqueuer, SegmenterHandle, SegmentRemuxer, SessionKeeper, SourceProbe, SourceStorage, StateRetry, StreamGrant, StreamLeases, StreamTap,
} from './ingest-ports.ts';
import type { PublishKey, PushStreamName, RtmpConnectionId, StreamRegistry, StreamSessionId } from './stream-registry.ts';

/** One attempt, no retry: the default when no {@link StateRetry} is given. */
export const NO_RETRY: StateRetry = {
  deadline: () => 0,
  run: (_what, op) => op(),
  isTransient: () => false,
};


export interface LiveIngestOptions {
  logger: Logger;
  authorizer: PublishAuthorizer;
  index: IngestIndex;
  /** Claims of HTTP-pushed segments (idempotent push). */
  pushClaims: PushClaims;
  /**
   * The push sessions shared by every gateway on the Redis (push-session-store.ts): a push
   * joins its stream's session there, whichever gateway took the earlier pushes.
   */
  pushSessions: PushSessionStore;
  /**
   * How often this gateway looks for push sessions past their idle deadline that no gateway
   * ended (the gateways that took their pushes are gone), in ms; absent: no sweep (each
   * gateway still ends the sessions it took pushes of).
   */
  pushSweepIntervalMs?: number;
  queue: SegmentEnqueuer;
  /**
   * Retries of the media path's Redis operations: an RTMP source segment is stored, listed
   * and queued in seq order, each step retried until the segment's deadline (its completion +
   * the retry budget); segments behind it wait on local disk in order meanwhile. A segment
   * that misses its deadline is logged as lost and resolved as failed (a discontinuity) as
   * soon as Redis answers again. HTTP pushes make one attempt and answer 503 when Redis is
   * unreachable. Absent: one attempt for everything (in-memory stand-ins in tests).
   */
  retry?: StateRetry;
  /**
   * Retries of object-store writes across a store outage (storage/store-retry.ts): an RTMP
   * source segment is stored until its store deadline (its completion + `storage.outageBudgetMs`)
   * before it is listed; segments behind it wait on local disk in order. A transient failure
   * past the deadline ends the stream with reason {@link STORE_UNAVAILABLE_REASON}. HTTP pushes
   * make one attempt. Absent: one attempt.
   */
  storeRetry?: StateRetry;
  /**
   * Most RTMP source segments of one stream waiting on local disk (to be stored, listed and
   * queued); one more ends the stream with reason {@link STORE_UNAVAILABLE_REASON}. Default
   * unbounded (`storage.maxBufferedSegments` in the gateway).
   */
  maxBufferedSegments?: number;
  storage: SourceStorage;
  probe: SourceProbe;
  remuxer: SegmentRemuxer;
  events: IngestEvents;
  /** Told about each source segment handed to the queue (metrics); absent = not recorded. */
  recorder?: Pick<IngestRecorder, 'recordSegmentEmerged'>;
  /** Makes the segmenter of the RTMP publish `publishId`, writing into `session`'s work dir; LiveIngest attaches its listeners, then calls its `start()`. */
  startSegmenter(publishId: RtmpConnectionId, session: StreamSessionId): SegmenterHandle;
  /**
   * Where the muxed MPEG-TS of an RTMP stream with a ladder goes as it is produced (a live
   * transcoding session); absent: nowhere.
   */
  liveFeed?: LiveFeedSink;
  /** Disconnects an RTMP publisher by its connection ID. */
  kickPublisher(publishId: RtmpConnectionId): void;
  /** Base URL for playback links in logs, e.g. `http://127.0.0.1:9935`. */
  publicUrl: string;
  /** Target segment duration in ms (long-GOP warnings are relative to it). */
  segmentTargetMs: number;
  /** A push session with no segment for this long ends (Livepeer: 60 s). */
  pushIdleTimeoutMs: number;
  /** How long a push waits for its renditions, in ms. */
  pushReplyTimeoutMs: number;
  /**
   * After an RTMP publisher left, how long its segmenter may take to drain its input and exit
   * by itself before it is stopped, in ms; default 2000.
   */
  unpublishGraceMs?: number;
  /** Metering; absent = nothing is charged. */
  billing?: IngestBilling;
  /**
   * Account of streams whose grant names none (static keys without `accountID`, anonymous,
   * auth webhook); undefined: such streams are not metered.
   */
  defaultAccountID: string | undefined;
  /** When a segment cannot be paid: end the stream, or keep listing the source rendition only. */
  onInsufficientBalance: 'end' | 'source-only';
  /** Told of each session before its first segment (recording/); absent: sessions are not kept or swept. */
  sessions?: SessionKeeper;
  /**
   * Fit a ladder the gateway chose to each stream's source (domain/ladder-fit.ts; config
   * `ladderFitsSource`); default true. False: every ladder is used as configured, only upscales omitted.
   */
  fitLadderToSource?: boolean;
  /** Whether a session is recorded when its grant does not say (`recording.enabled`); default false. */
  recordByDefault?: boolean;
  /** The watermark of streams whose grant does not say (config `watermark.*`, resolved at startup); absent: none. */
  defaultWatermark?: WatermarkSpec;
  /**
   * Live transcoding sessions: an RTMP stream whose ladder is all H.264 is transcoded by one
   * session instead of a job per segment (HTTP push keeps its jobs); absent: jobs for every stream.
   */
  liveSessions?: LiveTranscodeSessions;
  /**
   * Cluster-wide ownership of live manifest IDs: a publish or push session takes its manifest
   * ID's lease before it touches any state of the stream, and is refused (STREAM_BUSY) while
   * another gateway or push session holds it; renewed by `renewLeases()` on every heartbeat,
   * released when the stream ends. Absent: ownership is checked in this process only.
   */
  leases?: StreamLeases;
  /** This gateway's member ID (src/member-id.ts): the owner of the leases it holds. Required with `leases`. */
  memberId?: string;
  /** Lifetime of a lease without renewal, ms (`hls.heartbeatTtlMs`); default 10000. */
  leaseTtlMs?: number;
  /**
   * Told when a stream is held here, of each source segment listed, and when it is not held
   * any more (restream outputs, thumbnails); default none.
   */
  taps?: readonly StreamTap[];
}

export interface LiveStream {
  readonly protocol: StreamProtocol;
  /** Its session is in the segment index (startStream done): from then on its heartbeat is renewed. */
  indexed?: boolean;
  /** The RTMP connection (RTMP only). */
  readonly connection?: RtmpConnectionId;
  /** `rtmp:<connection>` or `push:<stream name>`. */
  readonly publishKey: PublishKey;
  readonly manifestID: string;
  readonly session: StreamSessionId;
  /**
   * The ladder. From the first segment on (set with the plan): fitted to the source when
   * `fitToSource` (domain/ladder-fit.ts: renditions not smaller than the source left out,
   * bitrates capped), then a playable copy of the source appended when the source lint asks for one.
   */
  profiles: readonly VideoProfile[];
  /**
   * Its ladder is fitted to the source: the gateway chose it (not StreamGrant `explicitLadder`)
   * and `LiveIngestOptions.fitLadderToSource` is not off. False: used as configured, only upscales omitted.
   */
  readonly fitToSource: boolean;
  /**
   * The source bitrate the ladder was fitted to, bits per second, set with the plan:
   * `declaredBitrateBps` when the publisher declared one, else the first source segment's
   * bytes × 8000 / its duration ms.
   */
  sourceBitrateBps?: number;
  /**
   * RTMP: the bitrate the publisher declared in its FLV `onMetaData` (videodatarate +
   * audiodatarate, × 1000), bit/s, taken from the segmenter's `info` once (the first that has
   * it, before the first segment) and never changed after: the ladder fit and the live
   * session's fit both use it, so they agree. Undefined: none declared (and always for push).
   */
  declaredBitrateBps?: number;
  /** Undefined: not metered. */
  readonly accountID: string | undefined;
  /** Drawn on every transcoded rendition (its grant's, or the ingest's default); absent: none. */
  readonly watermark?: WatermarkSpec;
  readonly startedAtMs: number;
  readonly log: Logger;
  segmenter?: SegmenterHandle;
  /** Resolves when the segmenter emitted `end`. */
  segmenterEnded?: Promise<void>;
  /** The fitted ladder (set from the first segment): sizes and rates used for the billing estimate. */
  plan?: readonly { name: string; width: number; height: number; fps: number }[];
  /** Transcoding paused for lack of credits (policy `source-only`). */
  sourceOnly: boolean;
  /** Serializes RTMP segments so they are stored, listed and queued in order. */
  chain: Promise<void>;
  /** RTMP source segments cut and not yet stored, listed and queued (or given up): they wait on local disk. */
  buffered: number;
  /** Set when the gateway ends the stream itself (the object store is unavailable past the bound): the reason it ends with. */
  stopReason?: string;
  /** Segments given up (seq → whether `source` listed it), to resolve as failed once Redis answers. */
  lost: Map<number, { sourceListed: boolean; reason?: string }>;
  /** One past the highest seq seen. */
  endSeq: number;
  segments: number;
  renditionsSet: boolean;
  ended: boolean;
  /** Set by the first `#finish`: the stream's ending, stored, listed and marked ended. */
  finishing?: Promise<void>;
  longSegments: number;
  idleTimer?: NodeJS.Timeout;
  /** HTTP push: pushes of this session still being answered on this gateway. */
  pushesInFlight: number;
  /** HTTP push: the pushed stream's ID in the push sessions (push-session.ts `pushStreamId`). */
  pushStreamId?: string;
  /** RTMP: its ladder is made by a live transcoding session (`LiveIngestOptions.liveSessions`), not by a job per segment. */
  liveSession?: boolean;
  /** The live session has the source measurement. */
  liveSourceSet?: boolean;
  /** RTMP: its chunks go to `options.liveFeed` (it has a ladder, not yet found empty); cleared when the feed is ended. */
  feeding?: boolean;
  /** The owner it holds its manifest ID's lease as (`options.leases`); undefined: no lease. */
  leaseOwner?: string;
  /** Another owner took its lease (it resumed the stream elsewhere): ending it here touches no shared state. */
  leaseLost?: boolean;
  /**
   * RTMP: added to the segmenter's seqs (which start at 0): the seq a resumed session goes on
   * at (`IngestIndex.resumeStream`); 0 for a new session.
   */
  seqOffset: number;
  /** The session was resumed at this seq (its first source segment there is listed after a discontinuity). */
  resumedAtSeq?: number;
}

/** What is known of a segment besides its file. */
export interface SegmentFacts {
  /** The display rotation of a pushed MP4 (a probe of the rewrapped MPEG-TS cannot see it). */
  rotationDeg?: SourceVideoInfo['rotationDeg'];
  /** The RTMP segmenter's in-process measurement of the segment: no probe runs. */
  probed?: ProbedSegment;
  /**
   * The file is never written again, only deleted once stored (the RTMP segmenter's files): the
   * object store may link it into place instead of copying it (SourceStorage `sourceFinal`).
   */
  fileFinal?: boolean;
  /** The file's size as its writer counted it (the RTMP segmenter): the store need not read it back. */
  bytes?: number;
}

/** The reason a stream ends with when the object store stays unavailable past `storage.outageBudgetMs` or `storage.maxBufferedSegments`. */
export const STORE_UNAVAILABLE_REASON = 'object store unavailable';

/** Who publishes a stream: an RTMP connection or a push stream name. */
export type Publisher = { readonly protocol: 'rtmp'; readonly connection: RtmpConnectionId } | { readonly protocol: 'push'; readonly name: PushStreamName };

/** The steps RTMP publish and HTTP push share (implemented by LiveIngest). */
export interface IngestCore {
  readonly options: LiveIngestOptions;
  /** `options.retry`, or one attempt for everything. */
  readonly retry: StateRetry;
  /** `options.storeRetry`, or one attempt. */
  readonly storeRetry: StateRetry;
  readonly streams: StreamRegistry<LiveStream>;
  /** @throws GatewayError PUBLISH_DENIED (shutting down, or refused), INVALID_NAME */
  authorize(streamKey: string, url: string, protocol: StreamProtocol): Promise<StreamGrant>;
  /**
   * Registers a new stream session and starts it in the segment index.
   * @throws GatewayError STREAM_BUSY, PUBLISH_DENIED, INSUFFICIENT_BALANCE
   */
  open(publisher: Publisher, grant: StreamGrant, firstSeq: number): Promise<LiveStream>;
  /**
   * This gateway's handle of a push session another gateway opened (nothing is written:
   * the session is in the index already); registered unless `register` is false (a session
   * ended by this gateway's sweep, whose stream name it does not know).
   * @throws GatewayError STREAM_BUSY when the manifest ID is live here over RTMP
   */
  adopt(publisher: Extract<Publisher, { protocol: 'push' }>, record: PushSessionRecord, options?: { register?: boolean }): LiveStream;
  /** Drops this gateway's handle of a stream without ending it (a push session lives on in Redis). */
  forget(stream: LiveStream): void;
  /** Stores, measures and lists one source segment; returns its transcode job (see LiveIngest). */
  ingestSegment(stream: LiveStream, seq: number, path: string, duration: { cutMs?: number; declaredMs?: number },
    deadlineMs: number, progress: { sourceListed: boolean }, facts?: SegmentFacts, storeDeadlineMs?: number): Promise<IngestJob | undefined>;
  /**
   * Ends an RTMP stream because the object store stayed unavailable past the bound: logs the
   * reason (error), disconnects the publisher and stops the segmenter; the stream ends with
   * reason {@link STORE_UNAVAILABLE_REASON}. Segments not stored yet are resolved as failed. Once per stream.
   */
  endForStore(stream: LiveStream, detail: string): void;
  /** Resolves `seq` as failed in `source` (unless `skipSource`) and every planned rendition. */
  recordFailed(stream: LiveStream, seq: number, reason: string, options?: { skipSource?: boolean; deadlineMs?: number }): Promise<void>;
  /** Resolves segments lost in a Redis or object-store outage as failed, in seq order. */
  resolveLost(stream: LiveStream, deadlineMs: number): Promise<void>;
  /** Ends the stream once; every caller waits for the same ending. */
  finish(stream: LiveStream, reason: string): Promise<void>;
}

/** A stream ended by `flush()` / `close()`. */
export interface EndedStream {
  readonly manifestID: string;
  readonly session: string;
  /** One past its last sequence number. */
  readonly endSeq: number;
}

export interface LiveStreamInfo {
  readonly manifestID: string;
  /** Publish session ID (the segment index's session). */
  readonly session: string;
  readonly protocol: StreamProtocol;
  readonly startedAtMs: number;
  readonly segments: number;
}
