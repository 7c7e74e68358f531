/**
 * The consumer-side interfaces of live ingest: what it needs from the authorizer, the segment
 * index, the push claims, the transcode queue, the object store, the probe, the remuxer, billing, Redis retries,
 * the event webhooks, the segmenter and the live feed. They are implemented elsewhere and passed in by
 * `app.ts`; this folder imports no other feature folder.
 */
import type { WatermarkSpec } from '../domain/watermark.ts';
import type { RenditionPlan, SourceVideoInfo, StreamProtocol, VideoProfile } from '../domain/profile.ts';
import type { SegmentOutcome, SourceSegmentInfo, TranscodeResult } from '../domain/segment.ts';
import type { SourceWarning } from '../domain/source-lint.ts';
import type { SourceStreamInfo, TsChunk } from '../media/ts-segmenter.ts';
import type { OutputRequest } from '../domain/output-target.ts';

/** A stream the publisher is allowed to send, as resolved from its stream key. */
export interface StreamGrant {
  readonly manifestID: string;
  readonly profiles: readonly VideoProfile[];
  /** Account billed for the stream's transcoding; default the ingest's `defaultAccountID` (none: not metered). */
  readonly accountID?: string;
  /** Keep the session as a recording (stream key `record`, the auth webhook's `"record"`); absent: the ingest's `recordByDefault`. */
  readonly record?: boolean;
  /**
   * The stream's watermark (stream key `watermark`, the auth webhook's `"watermark"`), resolved
   * and checked; `false`: none even when the ingest has a default; absent: the ingest's
   * `defaultWatermark`.
   */
  readonly watermark?: WatermarkSpec | false;
  /**
   * Restream targets to start with the stream (stream key `outputs`, the auth webhook's
   * `"outputs"`), each already checked (domain/output-target.ts); absent: none from the grant.
   */
  readonly outputs?: readonly OutputRequest[];
  /**
   * The publisher's side set the ladder for this stream (the auth webhook's `presets` /
   * `profiles`, or the push's `Livepeer-Transcode-Configuration` header): it is used as
   * configured, only upscales omitted. Absent or false: a ladder the gateway chose (`ladder`,
   * a stream key's `profiles`), fitted to the measured source (domain/ladder-fit.ts).
   */
  readonly explicitLadder?: boolean;
}

/** What an authorizer is told about a new stream. */
export interface PublishAttempt {
  /** The stream name from the URL: a stream key, or the manifest ID itself in anonymous mode. Validated. */
  readonly streamKey: string;
  /** The full incoming URL (`rtmp://host:port/live/<key>` or `http://host:port/live/<name>/<seq>.ts`). */
  readonly url: string;
  readonly protocol: StreamProtocol;
}

/** Resolves a stream key to a grant or refuses it. */
export interface PublishAuthorizer {
  /** @throws GatewayError PUBLISH_DENIED / INVALID_NAME / INVALID_PROFILE */
  authorize(attempt: PublishAttempt): Promise<StreamGrant>;
}

/** What ingest needs from the segment index. */
export interface IngestIndex {
  startStream(manifestID: string, session: string, startedAtMs: number, options: { protocol: StreamProtocol; firstSeq: number }): Promise<void>;
  /** `warnings`: the source lint of the first segment (domain/source-lint.ts), stored with the plan. */
  setRenditions(manifestID: string, session: string, renditions: readonly RenditionPlan[], warnings?: readonly SourceWarning[]): Promise<void>;
  endStream(manifestID: string, session: string, endSeq: number, endedAtMs: number): Promise<void>;
  /** `accepted: false` when the seq was already resolved as failed (skipped): it will not be listed. */
  record(manifestID: string, session: string, outcome: SegmentOutcome): Promise<{ accepted: boolean; listed: number }>;
  /** Resolves as failed, in one step, every seq below `seq` of a push session that was never pushed. */
  resolvePushGap(manifestID: string, session: string, seq: number): Promise<void>;
  getStream(manifestID: string): Promise<{ session: string; renditions: readonly RenditionPlan[] } | undefined>;
  /**
   * Continues the live session of `manifestID` for a publisher that reconnected after its
   * holder went away (hls/segment-index-store.ts `resumeStream`): its session and the seq to
   * go on at, or `undefined` when there is nothing to resume (start a new session). Absent:
   * every publish starts a new session.
   */
  resumeStream?(manifestID: string): Promise<{ session: string; nextSeq: number } | undefined>;
}

/**
 * Cluster-wide stream ownership (stream-lease-store.ts `RedisStreamLeases`): one lease per live
 * manifest ID, held by an owner string (a gateway's member ID, or `push:<session>`).
 */
export interface StreamLeases {
  /** Takes the lease, or extends it when `owner` holds it; refused while another owner does. */
  acquire(manifestID: string, owner: string, ttlMs: number): Promise<{ readonly acquired: true } | { readonly acquired: false; readonly holder: string; readonly remainingMs: number }>;
  /** Extends every held lease (one step); returns those another owner holds now. */
  renew<T extends { readonly manifestID: string; readonly owner: string }>(held: readonly T[], ttlMs: number): Promise<T[]>;
  /** Gives the lease up if `owner` holds it. */
  release(manifestID: string, owner: string): Promise<boolean>;
}

/**
 * The push claims (push-claim-store.ts `RedisPushClaims`): a pushed segment is claimed by
 * (manifestID, session, seq) and the SHA-256 of its bytes before any work, so a retry of it
 * is answered from the first push's outcome.
 */
export interface PushClaims {
  /** `leaseMs`: how long a pending claim belongs to its push before another push of the same bytes takes it over. */
  claimPush(manifestID: string, session: string, seq: number, sha256: string, options: { leaseMs: number }): Promise<PushClaim>;
  settlePush(manifestID: string, session: string, seq: number, state: 'done' | 'failed', result: string): Promise<void>;
  pushState(manifestID: string, session: string, seq: number): Promise<{ state: PushClaimState; result?: string } | undefined>;
}

/**
 * What every gateway sharing the Redis knows of a live push session (push-session-store.ts
 * `RedisPushSessions`), so the pushes of one stream form one session whichever gateway takes them.
 */
export interface PushSessionRecord {
  readonly session: string;
  readonly manifestID: string;
  /** Undefined: not metered. */
  readonly accountID: string | undefined;
  /** The ladder the session was opened with (grant, or the push's configuration header), unfitted. */
  readonly profiles: readonly VideoProfile[];
  /** The ladder was set by the publisher's side ({@link StreamGrant.explicitLadder}); absent: false. */
  readonly explicitLadder?: boolean;
  readonly startedAtMs: number;
  /** The session's watermark (its grant's or the default, resolved when it opened); absent: none. */
  readonly watermark?: WatermarkSpec;
}

/** A push session ended by whoever won its end: the record, one past its highest pushed seq, and its listed source segments. */
export interface EndedPushSession extends PushSessionRecord {
  readonly endSeq: number;
  readonly segments: number;
}

/** One push inside a session: its token (unique per push) and how long its lease lasts. */
export interface PushLease {
  readonly token: string;
  readonly seq: number;
  /** How long the push may take before the session stops counting it as in flight, ms. */
  readonly leaseMs: number;
  /** The session's idle timeout, ms (`push.idleTimeoutMs`). */
  readonly idleMs: number;
}

/** What entering a push into its session found (PushSessionStore `enter`). */
export type PushEnter =
  | { state: 'none' | 'opening' }
  | { state: 'early'; firstSeq: number }
  | { state: 'live'; record: PushSessionRecord; deadlineMs: number };

/**
 * Push sessions shared by the gateways of a deployment (push-session-store.ts
 * `RedisPushSessions`; an in-memory stand-in in unit tests). `id` names the pushed stream
 * (a hash of its stream name, push-session.ts `pushStreamId`). Every end goes through one
 * compare-and-delete, so a session ends exactly once in the cluster.
 */
export interface PushSessionStore {
  /**
   * Enters one push into the live session of `id`: adds its lease, grows the end seq, moves the idle deadline.
   * @returns `none` (no live session: reserve and open one), `opening` (another push is opening it),
   *   `early` (the push's seq is below the seq that opened the live session: nothing is entered), or `live`
   */
  enter(id: string, push: PushLease): Promise<PushEnter>;
  /** Reserves the opening of the session of `id` for `leaseMs`: `reserved` when the caller opens it. */
  reserve(id: string, owner: string, leaseMs: number): Promise<'reserved' | 'opening' | 'live'>;
  /** Gives up a reservation (the open failed), if it is still `owner`'s. */
  release(id: string, owner: string): Promise<void>;
  /**
   * Makes the session reserved by `owner` live and enters its first push.
   * @returns the idle deadline (epoch ms), or undefined when the reservation was lost (it expired)
   */
  activate(id: string, owner: string, record: PushSessionRecord, push: PushLease): Promise<number | undefined>;
  /**
   * A push of `session` is over (`listed`: its source segment was listed).
   * @returns the idle deadline (epoch ms), or undefined when the session is no longer live
   */
  exit(id: string, session: string, push: { token: string; idleMs: number; listed: boolean }): Promise<number | undefined>;
  /**
   * Ends the session of `id` (only `session`, when given) if it is live; with `idleOnly`, only
   * once its idle deadline passed and no push is in flight.
   * @returns `ended` with what the winner needs to end the stream; `busy` with its deadline; `gone` / `opening`
   */
  end(id: string, options: { session?: string; idleOnly: boolean; nowMs?: number }): Promise<
    { state: 'ended'; ended: EndedPushSession } | { state: 'busy'; deadlineMs: number } | { state: 'gone' | 'opening' }>;
  /** Sessions whose idle deadline passed by `nowMs` (at most `limit`), for the sweep. */
  idle(nowMs: number, limit: number): Promise<string[]>;
}

/** What a push claim holds: its push is under way, or it was answered (`result`) or failed. */
export type PushClaimState = 'pending' | 'done' | 'failed';

/**
 * A claim's outcome: `new` when the caller owns the work; `same` with the stored state (and
 * result, once settled) when the same bytes were pushed before; `conflict` when other bytes were.
 */
export type PushClaim =
  | { claim: 'new' }
  | { claim: 'same'; state: PushClaimState; result?: string }
  | { claim: 'conflict' };

export interface IngestJob {
  manifestID: string; session: string; seq: number; sourceKey: string; durationMs: number; profiles: readonly VideoProfile[];
  /** Account the transcode is charged to; absent: the stream is not metered. */
  accountID?: string;
  /** Epoch ms when the source segment was complete. */
  enqueuedAtMs: number;
  /** The ingest probe's measurement of the source, so the transcoder need not probe it again (TranscodeJob.source). */
  source?: SourceSegmentInfo;
  /** Its renditions follow a discontinuity (the join of a resumed stream; TranscodeJob.discontinuity). */
  discontinuity?: boolean;
  /** The stream's watermark (TranscodeJob.watermark); absent: none. */
  watermark?: WatermarkSpec;
}

/** What ingest needs from the transcode queue. */
export interface SegmentEnqueuer {
  enqueue(job: IngestJob): Promise<void>;
  /** @throws GatewayError QUEUE_UNAVAILABLE (503), UNDECODABLE_MEDIA / TRANSCODE_FAILED (422) */
  enqueueAndWait(job: IngestJob, timeoutMs: number): Promise<TranscodeResult>;
}

/** What ingest needs from the object store. */
export interface SourceStorage {
  /**
   * `sourceFinal`: the file is never written again, the store may link it instead of copying;
   * `sizeBytes`: its size as the caller counted it, returned without reading it back
   * (storage/object-store.ts PutFileOptions).
   */
  putFile(key: string, localPath: string, options?: { readonly sourceFinal?: boolean; readonly sizeBytes?: number }): Promise<{ sizeBytes: number }>;
}

/**
 * Told of every publish session before its first segment is stored (recording/: it keeps
 * recorded sessions, and deletes what left the live window of the others). Implemented in
 * recording/recording-store.ts, wired by app.ts.
 */
export interface SessionKeeper {
  opened(session: { manifestID: string; session: string; startedAtMs: number; record: boolean }): Promise<void>;
}

/**
 * Measures a pushed source segment (ffprobe). RTMP segments are not probed: their segmenter
 * reports what they hold (rtmp-segmenter.ts).
 */
export interface SourceProbe {
  /**
   * @param container what the file must be: `ts` (default; every segment once rewrapped) or
   *   `mp4` (a pushed `.mp4` body); it is read as that, never guessed
   * @throws GatewayError UNDECODABLE_MEDIA
   */
  probe(path: string, container?: 'ts' | 'mp4'): Promise<ProbedSegment>;
}

export interface ProbedSegment {
  /** `profile` (ffprobe name, e.g. `High 10`) and `pixelFormat` (`yuv420p10le`) feed the source lint; '' when unknown. */
  video?: SourceVideoInfo & { frames: number; codec: string; profile?: string; pixelFormat?: string };
  /** The first audio stream (ffprobe codec_name and profile); absent when the segment has none. */
  audio?: { codec: string; profile: string };
  codecs: string; frameRate: number; durationMs: number;
}

/** Rewraps a pushed MP4 segment as MPEG-TS (stream copy), for HLS. */
export interface SegmentRemuxer {
  /** @throws GatewayError UNDECODABLE_MEDIA */
  toMpegTs(inputPath: string, outputPath: string): Promise<void>;
}

/** What ingest needs from billing (payments/billing.ts). */
export interface IngestBilling {
  /** `ok`, or why the account may not start a stream. */
  standing(accountID: string): Promise<'ok' | 'no-account' | 'no-credits'>;
  /** Holds one segment's transcode estimate; false when the balance cannot cover it. */
  reserveSegment(r: { accountID: string; manifestID: string; session: string; seq: number; durationMs: number;
    renditions: readonly { width: number; height: number; fps: number }[] }): Promise<boolean>;
}

/**
 * Retries of state-store (Redis) operations across an outage (redis/retry.ts). Every
 * operation run through it is idempotent (index records, holds and jobs are keyed by the
 * segment's identity).
 */
export interface StateRetry {
  /** Epoch ms until which work ready at `fromMs` (default now) keeps retrying. */
  deadline(fromMs?: number): number;
  /**
   * Runs `op`, retrying transient failures until `deadlineMs`.
   * @throws the last error when it is not transient or the deadline has passed.
   */
  run<T>(what: string, op: () => Promise<T>, deadlineMs: number): Promise<T>;
  /** Whether an error means the store is unreachable, so the same operation can succeed later. */
  isTransient(err: unknown): boolean;
}

/** Stream lifecycle events (a subset of the event webhooks' events). */
export interface IngestEvents {
  emit(event:
    | { type: 'stream.started'; manifestID: string; session: string; protocol: StreamProtocol }
    | { type: 'stream.ended'; manifestID: string; session: string; reason: string; segments: number }
    | { type: 'segment.failed'; manifestID: string; session: string; seq: number; reason: string }): void;
}

/**
 * What ingest records about its own work (metrics/ingest-metrics.ts `IngestMetrics` fits;
 * app.ts passes it in). Must not throw.
 */
export interface IngestRecorder {
  /** A source segment was stored, listed and handed to the transcode queue: once per segment. */
  recordSegmentEmerged(manifestID: string): void;
  /** One HTTP push request's answer is over: its status, or `aborted` when the client left first. */
  recordPushRequest(statusCode: number | 'aborted'): void;
}

/** A running segmenter for one RTMP publish (rtmp-segmenter.ts: cuts the publish's packets at keyframes, in process). */
export interface SegmenterHandle {
  /**
   * Starts reading the publish. Call it once every listener is attached: the tags held while
   * the publish was being authorized are cut at once, inside this call, so `info` and the first
   * `chunk`s (the start of seq 0, its keyframe) fire before it returns.
   */
  start(): void;
  /**
   * A closed segment file, in seq order. `probed`: what the segment holds as the segmenter
   * measured it (codecs and picture size from the stream's parameter sets, its own frame
   * count): no probe runs for it; absent: probe the file.
   */
  on(event: 'segment', listener: (s: { seq: number; path: string; durationMs: number; bytes: number; probed?: ProbedSegment }) => void): unknown;
  on(event: 'longSegment', listener: (s: { seq: number; durationMs: number }) => void): unknown;
  /**
   * The muxed bytes of a segment as they are produced, before it closes (for the live feed).
   * `c.bytes` may be a view the segmenter reuses once the listener returns: copy what you keep.
   */
  on(event: 'chunk', listener: (c: TsChunk) => void): unknown;
  /**
   * What the stream carries, from its parameter sets, once its first frames are in (again when
   * the frame rate is measured). `declaredBitrateBps`: the bitrate the publisher declared in its
   * FLV `onMetaData` ((videodatarate + audiodatarate) × 1000, bit/s), when it declared a video rate.
   */
  on(event: 'info', listener: (info: SourceStreamInfo & { declaredBitrateBps?: number }) => void): unknown;
  on(event: 'end', listener: (e: { reason: string }) => void): unknown;
  stop(): Promise<void>;
  /** Removes the segmenter's work dir; called once the stream has ended and its segments are stored. */
  cleanup?(): Promise<void>;
}

/**
 * Where the MPEG-TS of a live RTMP stream whose ladder is not empty goes as it is muxed: a live
 * transcoding session (transcode/, wired by app.ts). Called synchronously in media order from
 * the RTMP socket handler: must not throw or block (queue and return). Not called for HTTP
 * push, for a stream without a ladder, once its fitted ladder turned out empty, or (when
 * `liveSessions` are configured) for a stream whose ladder is made by jobs instead of a session.
 */
export interface LiveFeedSink {
  /**
   * The next chunk of the stream's session (chunks of seq N all come before those of N+1;
   * `first` opens a seq). `chunk.bytes` is valid only during the call (the segmenter's reused
   * output): the sink copies what it keeps before it returns.
   */
  append(manifestID: string, session: string, chunk: TsChunk): void;
  /** No more chunks for this session (the publish ended, was stopped, or needs no ladder after all). */
  end(manifestID: string, session: string): void;
}

/** What stream-key authorization needs from the accounts store (payments/account-store.ts). */
export interface StreamKeyResolver {
  resolveStreamKey(key: string): Promise<{ accountID: string; manifestID: string; profiles?: unknown[] } | undefined>;
}

/**
 * Live transcoding sessions (transcode/live-session-store.ts and live-feed-store.ts, wired by
 * the composition root): an RTMP stream whose ladder a transcoder makes continuously from the
 * live feed instead of one transcode job per segment. Ingest opens the session at publish,
 * gives it the source measurement once known, settles each source segment (listed, and whether
 * its credits are held) and ends it with the stream.
 */
export interface LiveTranscodeSessions {
  /**
   * Opens the session for transcoders to claim. `fitToSource`: the transcoder fits `profiles`
   * to the source (domain/ladder-fit.ts) with the bitrate `setSource` gives; absent: only upscales omitted.
   */
  open(session: { manifestID: string; session: string; profiles: readonly VideoProfile[]; fitToSource?: boolean; accountID?: string; openedAtMs: number; watermark?: WatermarkSpec }): Promise<void>;
  /** The source measurement the ladder is fitted to (the first segment's; with its `bitrateBps` when the ladder is fitted to the source). */
  setSource(manifestID: string, session: string, source: SourceSegmentInfo): Promise<void>;
  /**
   * Source segment `seq` is listed: `transcode` when its credits are held (the session lists and
   * charges its renditions), false when it is not transcoded (source only, nothing to make, or
   * lost; ingest resolved its renditions). Fire-and-forget, in seq order.
   */
  settle(manifestID: string, session: string, settled: { seq: number; transcode: boolean; durationMs: number; readyAtMs: number }): void;
  /** The stream ended: `endSeq` is one past its last seq. */
  end(manifestID: string, session: string, endSeq: number): Promise<void>;
}

/**
 * Told about the streams this gateway holds and the source segments it lists, in order, for
 * the features that work downstream of the source segment on the stream's holder (restream
 * outputs, thumbnails). Every method is optional, must return at once and must not throw
 * (a throw is logged and ignored: the media path never waits for a tap).
 */
export interface StreamTap {
  /**
   * The stream is held by this gateway from now on: a new session (`resumed` false, `grant`
   * as the authorizer answered) or a session continued here after its holder died (`resumed`
   * true).
   */
  opened?(s: { manifestID: string; session: string; protocol: StreamProtocol; resumed: boolean; grant: StreamGrant }): void;
  /**
   * Source segment `seq` is stored and listed in the index (called in seq order per stream).
   * `key`: its object-store key (readable from now on); `path`: the local file it was stored
   * from, which may be deleted as soon as this call returns (read the object by `key` later);
   * `bytes`: its size; `durationMs`: its playlist duration.
   */
  sourceListed?(s: { manifestID: string; session: string; seq: number; key: string; path: string; bytes: number; durationMs: number }): void;
  /**
   * The stream is no longer held here: it ended (`continued` false), or its publisher went on
   * at another gateway in the same session (`continued` true: that gateway's taps see `opened`).
   */
  closed?(s: { manifestID: string; session: string; reason: string; continued: boolean }): void;
}
