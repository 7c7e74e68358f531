/**
 * Live ingest: turns an authorized publish (RTMP) or a pushed segment (HTTP push) into
 * source segments, lists each in the `source` rendition at once, and puts one transcode job
 * per segment on the queue (docs/architecture.md, live stream steps 1-3).
 *
 * Its consumer-side interfaces are in ingest-ports.ts (re-exported here), implemented
 * elsewhere and passed in by `app.ts`; this folder imports no other feature folder.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from '../log/logger.ts';
import { fitRendition, type SourceVideoInfo, type VideoProfile } from '../domain/profile.ts';
import {
  SOURCE_RENDITION, segmentKey, sourceSegmentInfo, type RenditionSegment,
} from '../domain/segment.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { REDIS_RETRY_AFTER_S } from '../http/error-classes.ts';
import { isValidStreamName } from '../domain/stream-name.ts';
import { lintSource, playableSourceProfile } from '../domain/source-lint.ts';
import { settleWithin } from '../domain/time-limit.ts';
import type {
  IngestBilling, IngestEvents, IngestIndex, IngestJob, MeasuredSegment, ProbedSegment, PublishAuthorizer, SegmentEnqueuer,
  SegmenterHandle, SegmentRemuxer, SourceProbe, SourceStorage, StateRetry, StreamGrant,
} from './ingest-ports.ts';
import {
  StreamRegistry, newStreamSessionId, pushPublishKey, pushStreamName, rtmpConnectionId, rtmpPublishKey,
  type PublishKey, type PushStreamName, type RtmpConnectionId, type StreamSessionId,
} from './stream-registry.ts';
import { mayReuseProbe, probeReference, reuseProbe, type ProbeReference } from './probe-reuse.ts';

export type * from './ingest-ports.ts';
export { AccountStreamKeyAuthorizer, StaticKeyAuthorizer } from './authorizers.ts';

/** Audio codecs an audio-only stream is served with: the packed-audio formats of RFC 8216 §3.4, which also go in MPEG-TS. */
const AUDIO_ONLY_CODECS: ReadonlySet<string> = new Set(['aac', 'mp3', 'ac3', 'eac3']);

/** One attempt, no retry: the default when no {@link StateRetry} is given. */
const NO_RETRY: StateRetry = {
  deadline: () => 0,
  run: (_what, op) => op(),
  isTransient: () => false,
};


export interface LiveIngestOptions {
  logger: Logger;
  authorizer: PublishAuthorizer;
  index: IngestIndex;
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
  storage: SourceStorage;
  probe: SourceProbe;
  remuxer: SegmentRemuxer;
  events: IngestEvents;
  /**
   * Starts a segmenter pulling the live input of the RTMP publish `publishId` into `session`'s
   * work dir (by the publish's internal name: the stream key must not be in a command line).
   */
  startSegmenter(publishId: RtmpConnectionId, session: StreamSessionId): SegmenterHandle;
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
}

interface LiveStream {
  readonly protocol: 'rtmp' | 'push';
  /** Its session is in the segment index (startStream done): from then on its heartbeat is renewed. */
  indexed?: boolean;
  /** The RTMP connection (RTMP only). */
  readonly connection?: RtmpConnectionId;
  /** `rtmp:<connection>` or `push:<stream name>`. */
  readonly publishKey: PublishKey;
  readonly manifestID: string;
  readonly session: StreamSessionId;
  /** The ladder; a playable copy of the source is appended when the source lint asks for one (set with the plan). */
  profiles: readonly VideoProfile[];
  /** Undefined: not metered. */
  readonly accountID: string | undefined;
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
  /** Segments given up (seq → whether `source` listed it), to resolve as failed once Redis answers. */
  lost: Map<number, { sourceListed: boolean }>;
  /** One past the highest seq seen. */
  endSeq: number;
  segments: number;
  renditionsSet: boolean;
  ended: boolean;
  /** Set by the first `#finish`: the stream's ending, stored, listed and marked ended. */
  finishing?: Promise<void>;
  longSegments: number;
  idleTimer?: NodeJS.Timeout;
  /** HTTP push: pushes of this session still being answered (the idle timeout waits for them). */
  pushesInFlight: number;
  /** RTMP: the last segment ffprobe measured, and its stream layout, for `#probeLive`. */
  lastProbe?: ProbeReference;
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
  readonly protocol: 'rtmp' | 'push';
  readonly startedAtMs: number;
  readonly segments: number;
}

/** One HTTP-pushed segment, already written to a local file by the caller. */
export interface PushedSegment {
  /** Stream name from the URL (stream key, or the manifest ID in anonymous mode). */
  readonly streamName: string;
  readonly seq: number;
  readonly container: 'ts' | 'mp4';
  /** Local file holding the body; the caller deletes it afterwards. */
  readonly bodyPath: string;
  /** Hex SHA-256 of the body: the identity for idempotent retries. */
  readonly sha256: string;
  readonly url: string;
  /** Parsed `Livepeer-Transcode-Configuration` header, if any. */
  readonly configuration?: { manifestID?: string; profiles?: readonly VideoProfile[] };
  /** `Content-Duration` header in ms, used only when the segment's duration cannot be measured. */
  readonly declaredDurationMs?: number;
  /** Scratch path the remuxed MPEG-TS may be written to (for `.mp4` pushes). */
  readonly scratchTsPath: string;
}

export interface PushOutcome {
  readonly manifestID: string;
  readonly seq: number;
  /** Transcoded renditions in ladder order (upscales omitted). */
  readonly renditions: readonly RenditionSegment[];
  /** True when this was a retry answered from the stored result without transcoding. */
  readonly replayed: boolean;
}

/**
 * Owns every live stream on this gateway, RTMP and HTTP push. A manifest ID has at most one
 * live publisher per gateway.
 */
export class LiveIngest {
  readonly #options: LiveIngestOptions;
  readonly #streams = new StreamRegistry<LiveStream>();
  /** Push sessions being created, so concurrent first pushes share one. */
  readonly #pushOpening = new Map<string, Promise<LiveStream>>();
  #closed = false;
  readonly #retry: StateRetry;
  #closing: Promise<EndedStream[]> | undefined;

  constructor(options: LiveIngestOptions) {
    this.#options = options;
    this.#retry = options.retry ?? NO_RETRY;
  }

  /**
   * Authorizes and starts an RTMP publish.
   * @param publishId the RTMP connection ID (node-media-server's session ID, not a stream session)
   * @throws GatewayError PUBLISH_DENIED, INVALID_NAME, STREAM_BUSY
   */
  async publish(publishId: string, streamKey: string, url: string): Promise<{ manifestID: string }> {
    const connection = rtmpConnectionId(publishId);
    const grant = await this.#authorize(streamKey, url, 'rtmp');
    const stream = await this.#open({ protocol: 'rtmp', connection }, grant, 0);
    const { log } = stream;
    const segmenter = this.#options.startSegmenter(connection, stream.session);
    stream.segmenter = segmenter;
    segmenter.on('segment', (s) => {
      // The segment is complete now: its Redis steps retry across an outage until this deadline.
      const readyAtMs = Date.now();
      const deadlineMs = this.#retry.deadline(readyAtMs);
      const progress = { sourceListed: false };
      stream.chain = stream.chain
        .then(async () => {
          stream.endSeq = Math.max(stream.endSeq, s.seq + 1);
          await this.#resolveLost(stream, deadlineMs);
          let job: IngestJob | undefined;
          try {
            job = await this.#ingestSegment(stream, s.seq, s.path, { cutMs: s.durationMs }, deadlineMs, progress);
          } finally {
            // The segmenter's file has been copied into the object store (or is lost): without
            // this the work dir grows by the stream's bitrate for as long as it runs.
            await rm(s.path, { force: true }).catch(() => undefined);
          }
          // Nothing to transcode (empty ladder, or every rendition would upscale): no job. It would
          // only re-probe the segment in the transcoder (one more ffprobe per segment) and settle a
          // hold that was never taken.
          if (job && stream.plan?.length) {
            const queued = job;
            await this.#retry.run('queue transcode job', () => this.#options.queue.enqueue(queued), deadlineMs);
          }
        })
        .catch((err: Error) => {
          log.error({ err: err.message, seq: s.seq, sourceListed: progress.sourceListed, waitedMs: Date.now() - readyAtMs },
            'source segment lost; it is resolved as failed (a discontinuity) once Redis answers');
          stream.lost.set(s.seq, progress);
        });
    });
    segmenter.on('longSegment', (s) => {
      stream.longSegments += 1;
      if (stream.longSegments === 1) {
        log.warn({ seq: s.seq, durationMs: s.durationMs, targetMs: this.#options.segmentTargetMs },
          'publisher keyframes are far apart: segments are cut at keyframes, so they run long and latency grows; set the encoder keyframe interval to 2 s (OBS: Output > Keyframe Interval = 2)');
      }
    });
    stream.segmenterEnded = new Promise((resolve) => {
      segmenter.on('end', (e) => {
        resolve();
        void this.#finish(stream, e.reason);
      });
    });
    return { manifestID: grant.manifestID };
  }

  /**
   * The RTMP publisher left; the segmenter flushes its last segment and the stream ends.
   * @param publishId the RTMP connection ID given to `publish()`
   */
  async unpublish(publishId: string): Promise<void> {
    const stream = this.#streams.byRtmp(rtmpConnectionId(publishId));
    if (!stream || stream.protocol !== 'rtmp' || !stream.segmenter) return;
    // The RTMP server has closed the segmenter's pull: ffmpeg reads what is left, writes the
    // last segment and exits by itself, which loses nothing. A stop (SIGINT) would drop what
    // ffmpeg has not read yet, so it is only the fallback when that does not happen in time.
    const ended = await settleWithin(stream.segmenterEnded!.then(() => true), this.#options.unpublishGraceMs ?? 2000, () => false);
    if (!ended) {
      stream.log.info({ graceMs: this.#options.unpublishGraceMs ?? 2000 }, 'segmenter still running after the publisher left; stopping it');
      await stream.segmenter.stop();
    }
    await this.#finish(stream, 'publisher left');
  }

  /**
   * Ingests one HTTP-pushed segment and waits for its renditions (docs/wire-contract.md §4).
   * A retry of the same (manifest ID, seq) with the same bytes returns the stored result
   * without transcoding again.
   * @throws GatewayError PUBLISH_DENIED (403), INVALID_NAME / INVALID_PROFILE / INVALID_REQUEST (400),
   *   STREAM_BUSY (409: the manifest is live over RTMP, or this seq was pushed with other bytes),
   *   UNDECODABLE_MEDIA / TRANSCODE_FAILED (422), QUEUE_UNAVAILABLE (503)
   */
  async push(segment: PushedSegment): Promise<PushOutcome> {
    try {
      return await this.#push(segment);
    } catch (err) {
      // Redis unreachable or restarting (one attempt per push): 503, the client pushes again later;
      // nothing it was told succeeded is lost.
      if (!(err instanceof GatewayError) && this.#retry.isTransient(err)) {
        throw new GatewayError('REDIS_UNAVAILABLE', `the gateway's Redis is unavailable; push this segment again in ${REDIS_RETRY_AFTER_S} s`,
          { cause: err, retryAfterS: REDIS_RETRY_AFTER_S });
      }
      throw err;
    }
  }

  async #push(segment: PushedSegment): Promise<PushOutcome> {
    const stream = await this.#pushSession(segment);
    // The idle timeout counts from the end of the last push: a push waiting for its
    // renditions keeps its session open however long the transcode takes.
    stream.pushesInFlight += 1;
    this.#touch(stream);
    try {
      return await this.#pushInto(stream, segment);
    } finally {
      stream.pushesInFlight -= 1;
      this.#touch(stream);
    }
  }

  async #pushInto(stream: LiveStream, segment: PushedSegment): Promise<PushOutcome> {
    const { manifestID, session, log } = stream;
    const seq = segment.seq;
    // A claim whose push never settled it (its gateway died or lost Redis) is taken over after the reply timeout.
    const claim = await this.#options.index.claimPush(manifestID, session, seq, segment.sha256, { leaseMs: this.#options.pushReplyTimeoutMs + 5000 });
    if (claim.claim === 'conflict') {
      throw new GatewayError('STREAM_BUSY', `segment ${seq} of ${manifestID} was already pushed with different content`);
    }
    // A push that failed for a transient reason (503) is done again, not answered with its failure.
    const transientFailure = (code: string | undefined): boolean => code === 'QUEUE_UNAVAILABLE' || code === 'REDIS_UNAVAILABLE';
    if (claim.claim === 'same' && !(claim.state === 'failed' && transientFailure(failureCode(claim.result)))) {
      return this.#replay(stream, seq, claim.state, claim.result);
    }

    stream.endSeq = Math.max(stream.endSeq, seq + 1);
    let queued = false;
    try {
      let tsPath = segment.bodyPath;
      let rotationDeg: SourceVideoInfo['rotationDeg'];
      if (segment.container === 'mp4') {
        // The MP4's display matrix is lost in MPEG-TS: read it here (this probe also names an
        // unsupported codec before the rewrap can fail on it), and carry it to the transcoder.
        rotationDeg = (await this.#options.probe.probe(segment.bodyPath, 'mp4')).video?.rotationDeg;
        await this.#options.remuxer.toMpegTs(segment.bodyPath, segment.scratchTsPath);
        tsPath = segment.scratchTsPath;
      }
      // One attempt (deadline now): a push answers 503 rather than outwait a Redis outage.
      const job = await this.#ingestSegment(stream, seq, tsPath, { declaredMs: segment.declaredDurationMs }, Date.now(), { sourceListed: false },
        rotationDeg ? { rotationDeg } : {});
      if (!job) {
        // Nothing to transcode: source-only for lack of credits, or an audio-only source (served as `source` alone).
        await this.#options.index.settlePush(manifestID, session, seq, 'done', '[]');
        return { manifestID, seq, renditions: [], replayed: false };
      }
      queued = true;
      const result = await this.#options.queue.enqueueAndWait(job, this.#options.pushReplyTimeoutMs);
      await this.#options.index.settlePush(manifestID, session, seq, 'done', JSON.stringify(result.renditions));
      void this.#skipGaps(stream, seq);
      return { manifestID, seq, renditions: result.renditions, replayed: false };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const unreachable = !(err instanceof GatewayError) && this.#retry.isTransient(err);
      const transient = unreachable || (err instanceof GatewayError && (transientFailure(err.code) || err.code === 'INSUFFICIENT_BALANCE'));
      const code = unreachable ? 'REDIS_UNAVAILABLE' : err instanceof GatewayError ? err.code : 'INTERNAL';
      await this.#options.index.settlePush(manifestID, session, seq, 'failed', JSON.stringify({ code, reason }))
        .catch(() => undefined);
      // A job that failed for good was resolved in the index and reported by its transcoder
      // (the worker's onFailedForGood); only failures before the queue are ours to report.
      if (!transient && !queued) {
        await this.#recordFailed(stream, seq, reason);
        this.#options.events.emit({ type: 'segment.failed', manifestID, session, seq, reason });
      }
      log.warn({ seq, reason }, 'pushed segment failed');
      throw err;
    }
  }

  /**
   * Streams whose heartbeat this gateway renews: in the segment index and not ending yet
   * (a stream still being opened has no session in the index to renew).
   */
  held(): { manifestID: string; session: string }[] {
    return this.#streams.manifests().filter((s) => s.indexed && !s.ended).map((s) => ({ manifestID: s.manifestID, session: s.session }));
  }

  /**
   * Stops a held stream if it is still in `session`: another gateway ended it (its heartbeat
   * expired, e.g. after this process stalled), so this one must stop publishing into it.
   */
  async stopSession(manifestID: string, session: string, reason: string): Promise<boolean> {
    if (this.#streams.byManifest(manifestID)?.session !== session) return false;
    return this.stop(manifestID, reason);
  }

  /** Live streams on this gateway. */
  list(): LiveStreamInfo[] {
    return this.#streams.manifests().map((s) => ({ manifestID: s.manifestID, session: s.session, protocol: s.protocol, startedAtMs: s.startedAtMs, segments: s.segments }));
  }

  /** Stops a live stream held by this gateway (RTMP: disconnects the publisher). Returns false if not held here. */
  async stop(manifestID: string, reason: string): Promise<boolean> {
    const stream = this.#streams.byManifest(manifestID);
    if (!stream) return false;
    stream.log.info({ reason }, 'stopping stream');
    if (stream.connection !== undefined) {
      this.#options.kickPublisher(stream.connection);
      await stream.segmenter?.stop();
    } else {
      await this.#finish(stream, reason);
    }
    return true;
  }

  async #authorize(streamKey: string, url: string, protocol: 'rtmp' | 'push'): Promise<StreamGrant> {
    if (this.#closed) throw new GatewayError('PUBLISH_DENIED', 'the gateway is shutting down; publish again in a few seconds (to another gateway, or this one once restarted)');
    if (!isValidStreamName(streamKey)) throw new GatewayError('INVALID_NAME', 'invalid stream key: expected 1-64 characters of [A-Za-z0-9_-]');
    return this.#options.authorizer.authorize({ streamKey, url, protocol });
  }

  async #open(publisher: { protocol: 'rtmp'; connection: RtmpConnectionId } | { protocol: 'push'; name: PushStreamName },
    grant: StreamGrant, firstSeq: number): Promise<LiveStream> {
    const { protocol } = publisher;
    if (this.#streams.byManifest(grant.manifestID)) {
      throw new GatewayError('STREAM_BUSY', `manifest ID ${grant.manifestID} already has a live publisher`);
    }
    const accountID = grant.accountID ?? this.#options.defaultAccountID;
    const standing = this.#options.billing && accountID !== undefined ? await this.#options.billing.standing(accountID) : 'ok';
    if (standing === 'no-account') {
      this.#options.logger.warn({ manifestID: grant.manifestID, accountID }, 'publish refused: the account does not exist');
      throw new GatewayError('PUBLISH_DENIED',
        `account ${accountID} does not exist (was it lost with Redis's data, a restart without persistence? see /healthz); create it or use a stream key of an existing account`);
    }
    if (standing === 'no-credits') {
      this.#options.logger.warn({ manifestID: grant.manifestID, accountID }, 'publish refused: the account has no credits');
      throw new GatewayError('INSUFFICIENT_BALANCE', `account ${accountID} has no credits left; top it up to publish`);
    }
    const session = newStreamSessionId();
    const log = this.#options.logger.child({ manifestID: grant.manifestID, session });
    const stream: LiveStream = {
      protocol, publishKey: publisher.protocol === 'rtmp' ? rtmpPublishKey(publisher.connection) : pushPublishKey(publisher.name),
      ...(publisher.protocol === 'rtmp' ? { connection: publisher.connection } : {}), manifestID: grant.manifestID, session, profiles: grant.profiles, accountID, startedAtMs: Date.now(), log, sourceOnly: false,
      chain: Promise.resolve(), lost: new Map(), endSeq: firstSeq, segments: 0, renditionsSet: false, ended: false, longSegments: 0, pushesInFlight: 0,
    };
    this.#streams.add(stream);
    try {
      await this.#options.storage.deletePrefix(`${grant.manifestID}/`);
      // RTMP waits out a Redis outage here (the publisher's media keeps arriving meanwhile); a push makes one attempt.
      const deadlineMs = protocol === 'rtmp' ? this.#retry.deadline() : Date.now();
      await this.#retry.run('start stream', () => this.#options.index.startStream(grant.manifestID, session, stream.startedAtMs, { protocol, firstSeq }), deadlineMs);
      stream.indexed = true;
    } catch (err) {
      this.#forget(stream);
      throw err;
    }
    this.#options.events.emit({ type: 'stream.started', manifestID: grant.manifestID, session, protocol });
    log.info({ protocol, ladder: grant.profiles.map((p) => p.name), playbackUrl: `${this.#options.publicUrl}/stream/${grant.manifestID}.m3u8` }, 'stream started');
    return stream;
  }

  async #pushSession(segment: PushedSegment): Promise<LiveStream> {
    const name = pushStreamName(segment.streamName);
    const existing = this.#streams.byPush(name);
    if (existing && !existing.ended) return existing;
    const opening = this.#pushOpening.get(segment.streamName);
    if (opening) return opening;
    const promise = (async () => {
      const grant = await this.#authorize(segment.streamName, segment.url, 'push');
      const configured = segment.configuration;
      if (configured?.manifestID !== undefined && configured.manifestID !== grant.manifestID) {
        throw new GatewayError('INVALID_REQUEST', `Livepeer-Transcode-Configuration: manifestID "${configured.manifestID}" does not match the stream's manifest ID`);
      }
      const profiles = configured?.profiles ?? grant.profiles;
      return this.#open({ protocol: 'push', name }, { ...grant, profiles }, segment.seq);
    })();
    this.#pushOpening.set(segment.streamName, promise);
    try {
      return await promise;
    } finally {
      this.#pushOpening.delete(segment.streamName);
    }
  }

  #touch(stream: LiveStream): void {
    if (stream.protocol !== 'push' || stream.ended) return;
    clearTimeout(stream.idleTimer);
    stream.idleTimer = setTimeout(() => {
      if (stream.pushesInFlight > 0) this.#touch(stream);
      else void this.#finish(stream, 'push idle timeout');
    }, this.#options.pushIdleTimeoutMs);
    stream.idleTimer.unref();
  }

  async #replay(stream: LiveStream, seq: number, state: 'pending' | 'done' | 'failed', result: string | undefined): Promise<PushOutcome> {
    const deadline = Date.now() + this.#options.pushReplyTimeoutMs;
    while (state === 'pending') {
      if (Date.now() > deadline) throw new GatewayError('QUEUE_UNAVAILABLE', `segment ${seq} is still being transcoded; retry later`);
      await new Promise((r) => setTimeout(r, 100));
      const current = await this.#options.index.pushState(stream.manifestID, stream.session, seq);
      if (!current) throw new GatewayError('QUEUE_UNAVAILABLE', `segment ${seq} state expired; push it again`);
      ({ state, result } = current);
    }
    if (state === 'failed') {
      const failure = JSON.parse(result ?? '{}') as { code?: string; reason?: string };
      throw new GatewayError(failure.code === 'UNDECODABLE_MEDIA' ? 'UNDECODABLE_MEDIA' : 'TRANSCODE_FAILED', failure.reason ?? 'segment failed', { retryable: false });
    }
    stream.log.debug({ seq }, 'push retry answered from the stored result');
    return { manifestID: stream.manifestID, seq, renditions: JSON.parse(result ?? '[]') as RenditionSegment[], replayed: true };
  }

  /**
   * Stores, measures and lists one source segment; returns its transcode job.
   * Duration (the EXTINF of every rendition): for RTMP the segmenter's cut points (`cutMs`), so
   * the playlist timeline follows the media timeline; ffprobe's container duration runs ~2-3 %
   * long for copied AAC+H.264 (2.036-2.068 s per 2.000 s GOP: the audio interleaved ahead of the
   * cutting keyframe is counted in both neighbours). For a push, the probe, then the
   * `Content-Duration` header (`declaredMs`), then the target.
   * The first segment fixes the plan: the ladder fitted to the source, plus a playable copy of
   * the source when the source lint asks for one (domain/source-lint.ts), and the lint's
   * warnings, stored with the plan and logged. An audio-only source (AAC, MP3, AC-3 or E-AC-3)
   * is listed as `source` only: no ladder, no transcode job, nothing charged.
   * @param facts what the probe of this file cannot see: the display rotation of a pushed MP4.
   * @returns the transcode job, or `undefined` when nothing is to be transcoded (audio only, or
   *   source-only for lack of credits).
   * @throws GatewayError UNDECODABLE_MEDIA when it has no video and no servable audio.
   */
  async #ingestSegment(stream: LiveStream, seq: number, path: string, duration: { cutMs?: number; declaredMs?: number },
    deadlineMs: number, progress: { sourceListed: boolean }, facts: { rotationDeg?: SourceVideoInfo['rotationDeg'] } = {}): Promise<IngestJob | undefined> {
    const { manifestID, session, log } = stream;
    const retry = this.#retry;
    const key = segmentKey(manifestID, SOURCE_RENDITION, seq);
    const completedAtMs = Date.now();
    const measuredProbe = stream.protocol === 'rtmp'
      ? await this.#probeLive(stream, path, duration.cutMs)
      : { probed: await this.#options.probe.probe(path), measuredBy: 'ffprobe' as const };
    const { measuredBy } = measuredProbe;
    let probed = measuredProbe.probed;
    if (probed.video && facts.rotationDeg) probed = { ...probed, video: { ...probed.video, rotationDeg: facts.rotationDeg } };
    if (!probed.video && !(probed.audio && AUDIO_ONLY_CODECS.has(probed.audio.codec))) {
      throw new GatewayError('UNDECODABLE_MEDIA', probed.audio
        ? `segment ${seq} has no video stream and its audio codec ${probed.audio.codec.slice(0, 32)} cannot be served alone (AAC, MP3, AC-3 or E-AC-3 can)`
        : `segment ${seq} has no video stream`);
    }
    const durationMs = duration.cutMs !== undefined && duration.cutMs > 0 ? duration.cutMs
      : probed.durationMs > 0 ? probed.durationMs : duration.declaredMs ?? this.#options.segmentTargetMs;
    const stored = await this.#options.storage.putFile(key, path);
    if (!stream.renditionsSet) {
      const video = probed.video;
      const warnings = lintSource(video && { ...video, profile: video.profile ?? '', pixelFormat: video.pixelFormat ?? '' });
      const extra = video && playableSourceProfile(stream.profiles, video, warnings, (stored.sizeBytes * 8000) / Math.max(durationMs, 1));
      if (extra) stream.profiles = [...stream.profiles, extra];
      const plan = !video ? [] : stream.profiles
        .map((p) => ({ p, fit: fitRendition(p, video) }))
        .filter((x) => x.fit !== undefined)
        .map((x) => ({ name: x.p.name, width: x.fit!.width, height: x.fit!.height, bitrateBps: x.p.bitrateBps, fps: x.fit!.fpsNum / x.fit!.fpsDen }));
      stream.plan = plan;
      const skipped = stream.profiles.filter((p) => !plan.some((r) => r.name === p.name)).map((p) => p.name);
      await retry.run('set renditions', () => this.#options.index.setRenditions(manifestID, session, plan, warnings), deadlineMs);
      stream.renditionsSet = true;
      for (const w of warnings) log.warn({ code: w.code, detail: w.msg, ...(extra ? { addedRendition: extra.name } : {}) }, 'source lint');
      log.info({ source: video ? `${video.width}x${video.height}` : 'audio only', renditions: plan.map((r) => `${r.name} ${r.width}x${r.height}`), skippedUpscales: skipped }, 'ladder fitted to source');
    }
    const segment: RenditionSegment = {
      rendition: SOURCE_RENDITION, key, width: probed.video?.width ?? 0, height: probed.video?.height ?? 0, frames: probed.video?.frames ?? 0,
      bytes: stored.sizeBytes, durationMs, codecs: probed.codecs, frameRate: probed.frameRate,
    };
    const recorded = await retry.run('list source segment', () => this.#options.index.record(manifestID, session, { status: 'ok', seq, segment }), deadlineMs);
    if (!recorded.accepted) {
      // The playlists gave up on this seq (hls.maxSegmentWaitMs, or a push gap): it is not listed, so it is not transcoded or charged.
      throw new GatewayError('STREAM_BUSY', `segment ${seq} of ${manifestID} arrived after the playlists skipped it; send later sequence numbers`);
    }
    progress.sourceListed = true;
    log.debug({ seq, frames: segment.frames, durationMs, bytes: segment.bytes, measuredBy }, 'source segment listed');
    stream.segments += 1;
    if (stream.segments === 1) log.info({ sinceStartMs: Date.now() - stream.startedAtMs }, 'first source segment listed');
    if (!probed.video) return undefined;
    const source = sourceSegmentInfo(probed);
    const job: IngestJob = {
      manifestID, session, seq, sourceKey: key, durationMs, profiles: stream.profiles, enqueuedAtMs: completedAtMs,
      ...(stream.accountID !== undefined ? { accountID: stream.accountID } : {}),
      ...(source ? { source } : {}),
    };
    return (await this.#paid(stream, job, deadlineMs)) ? job : undefined;
  }

  /**
   * Measures an RTMP segment: ffprobe, or the in-process measurement when the probe-reuse rule
   * (probe-reuse.ts) lets it stand in for ffprobe.
   */
  async #probeLive(stream: LiveStream, path: string, cutMs: number | undefined): Promise<{ probed: ProbedSegment; measuredBy: 'ffprobe' | 'ts' }> {
    const measure = this.#options.probe.measure;
    // One in-process measurement per file, whichever branch needs it (undefined when it cannot read it).
    let measuring: Promise<MeasuredSegment | undefined> | undefined;
    const measureOnce = (): Promise<MeasuredSegment | undefined> => (measuring ??= measure ? measure(path).catch(() => undefined) : Promise.resolve(undefined));
    if (measure && mayReuseProbe(stream.lastProbe, cutMs)) {
      const reused = reuseProbe(stream.lastProbe, await measureOnce(), cutMs);
      if (reused) return { probed: reused, measuredBy: 'ts' };
    }
    const probed = await this.#options.probe.probe(path);
    const reference = probeReference(probed, await measureOnce());
    if (reference) stream.lastProbe = reference;
    else delete stream.lastProbe;
    return { probed, measuredBy: 'ffprobe' };
  }

  /**
   * Holds the segment's transcode estimate. When the balance cannot cover it, applies the
   * stream policy: `end` stops the stream (the publisher is disconnected; a push gets 402);
   * `source-only` skips transcoding this segment (its renditions get a discontinuity) and
   * tries again with the next one, so a top-up resumes the ladder.
   */
  async #paid(stream: LiveStream, job: IngestJob, deadlineMs: number): Promise<boolean> {
    const billing = this.#options.billing;
    const plan = stream.plan;
    const accountID = stream.accountID;
    if (!billing || accountID === undefined || !plan || plan.length === 0) return true;
    const ok = await this.#retry.run('hold segment credits', () => billing.reserveSegment({
      accountID, manifestID: stream.manifestID, session: stream.session, seq: job.seq, durationMs: job.durationMs, renditions: plan,
    }), deadlineMs);
    if (ok) {
      if (stream.sourceOnly) stream.log.info({ seq: job.seq }, 'credits available again: transcoding resumed');
      stream.sourceOnly = false;
      return true;
    }
    const reason = 'insufficient balance';
    await this.#recordFailed(stream, job.seq, reason, { skipSource: true, deadlineMs });
    this.#options.events.emit({ type: 'segment.failed', manifestID: stream.manifestID, session: stream.session, seq: job.seq, reason });
    if (this.#options.onInsufficientBalance === 'source-only') {
      if (!stream.sourceOnly) stream.log.warn({ accountID: stream.accountID, seq: job.seq }, 'out of credits: continuing with the source rendition only');
      stream.sourceOnly = true;
      return false;
    }
    stream.log.warn({ accountID: stream.accountID, seq: job.seq }, 'out of credits: ending the stream');
    void this.stop(stream.manifestID, reason);
    throw new GatewayError('INSUFFICIENT_BALANCE', `account ${stream.accountID} ran out of credits; the stream was ended`);
  }

  /** Resolves `seq` as failed in `source` and every planned rendition, so later segments still list. */
  async #recordFailed(stream: LiveStream, seq: number, reason: string, options: { skipSource?: boolean; deadlineMs?: number } = {}): Promise<void> {
    const deadlineMs = options.deadlineMs ?? Date.now();
    const { index } = this.#options;
    const retry = this.#retry;
    const current = await retry.run('read stream', () => index.getStream(stream.manifestID), deadlineMs);
    const renditions = current?.session === stream.session ? current.renditions.map((r) => r.name) : [];
    const names = options.skipSource ? renditions : [SOURCE_RENDITION, ...renditions];
    for (const rendition of names) {
      await retry.run('resolve failed segment', () => index.record(stream.manifestID, stream.session, { status: 'failed', rendition, seq, reason }), deadlineMs);
    }
  }

  /**
   * Resolves segments given up during a Redis outage as failed (in `source` too unless it
   * listed them), in seq order, so later segments list after a discontinuity. Those that
   * still cannot be recorded stay for the next call.
   */
  async #resolveLost(stream: LiveStream, deadlineMs: number): Promise<void> {
    for (const [seq, { sourceListed }] of [...stream.lost].sort((a, b) => a[0] - b[0])) {
      try {
        await this.#recordFailed(stream, seq, 'lost in a Redis outage', { skipSource: sourceListed, deadlineMs });
        stream.lost.delete(seq);
        this.#options.events.emit({ type: 'segment.failed', manifestID: stream.manifestID, session: stream.session, seq, reason: 'lost in a Redis outage' });
        stream.log.warn({ seq, sourceListed }, 'lost segment resolved as failed');
      } catch (err) {
        stream.log.warn({ seq, err: (err as Error).message }, 'cannot resolve lost segment yet');
        return;
      }
    }
  }

  /**
   * After seq N is done, every lower seq of this push session that was never pushed (down to
   * the highest pushed one, however far) is resolved as failed in one step, so the playlists
   * do not wait for it (a discontinuity marks the gap). A seq pushed after that is refused
   * with 409 (it would not be listed), and is neither transcoded nor charged.
   */
  async #skipGaps(stream: LiveStream, seq: number): Promise<void> {
    try {
      await this.#options.index.resolvePushGap(stream.manifestID, stream.session, seq);
    } catch (err) {
      stream.log.warn({ err: (err as Error).message }, 'cannot resolve push gaps');
    }
  }

  /** Ends the stream once; every caller (segmenter end, unpublish, stop, shutdown) waits for the same ending. */
  #finish(stream: LiveStream, reason: string): Promise<void> {
    stream.finishing ??= this.#end(stream, reason);
    return stream.finishing;
  }

  async #end(stream: LiveStream, reason: string): Promise<void> {
    stream.ended = true;
    clearTimeout(stream.idleTimer);
    await stream.chain;
    await stream.segmenter?.cleanup?.().catch((err: Error) => stream.log.warn({ err: err.message }, 'cannot remove the segmenter work dir'));
    const deadlineMs = this.#retry.deadline();
    await this.#resolveLost(stream, deadlineMs);
    try {
      const endedAtMs = Date.now();
      await this.#retry.run('end stream', () => this.#options.index.endStream(stream.manifestID, stream.session, stream.endSeq, endedAtMs), deadlineMs);
    } catch (err) {
      stream.log.error({ err: (err as Error).message }, 'cannot mark stream ended');
    }
    this.#forget(stream);
    this.#options.events.emit({ type: 'stream.ended', manifestID: stream.manifestID, session: stream.session, reason, segments: stream.segments });
    stream.log.info({ reason, segments: stream.segments, longSegments: stream.longSegments, durationMs: Date.now() - stream.startedAtMs }, 'stream ended');
  }

  #forget(stream: LiveStream): void {
    this.#streams.remove(stream);
  }

  /**
   * Refuses every new publish (RTMP) and push session from now on with PUBLISH_DENIED
   * ("shutting down"); streams already live carry on until `flush()` or `close()`.
   */
  stopAccepting(): void {
    this.#closed = true;
  }

  /**
   * Ends the live streams of `protocol` (both when omitted) as at shutdown: each RTMP
   * segmenter is stopped (ffmpeg gets SIGINT and writes its partial last segment), that
   * segment is stored, listed and queued like any other, then the stream is ended in the
   * index (its playlists get ENDLIST once every queued segment is transcoded).
   * @returns the streams it ended, with one past their last seq
   */
  async flush(protocol?: 'rtmp' | 'push'): Promise<EndedStream[]> {
    const streams = this.#streams.publishes().filter((s) => protocol === undefined || s.protocol === protocol);
    await Promise.all(streams.map(async (s) => {
      await s.segmenter?.stop();
      await this.#finish(s, 'gateway shutdown');
    }));
    return streams.map((s) => ({ manifestID: s.manifestID, session: s.session, endSeq: s.endSeq }));
  }

  /**
   * `stopAccepting()` then `flush()` of every live stream. Idempotent: a second call returns
   * the first call's promise.
   * @returns the streams it ended
   */
  close(): Promise<EndedStream[]> {
    this.stopAccepting();
    this.#closing ??= this.flush();
    return this.#closing;
  }
}

/** The error code stored with a failed push (`{"code","reason"}` JSON), if any. */
function failureCode(result: string | undefined): string | undefined {
  try {
    return (JSON.parse(result ?? '{}') as { code?: string }).code;
  } catch {
    return undefined;
  }
}
