/**
 * Live ingest: turns an authorized publish (RTMP) or a pushed segment (HTTP push) into
 * source segments, lists each in the `source` rendition at once, and puts one transcode job
 * per segment on the queue (docs/architecture.md, live stream steps 1-3).
 *
 * A thin facade over the pieces in this folder: ports (ingest-ports.ts, re-exported here,
 * implemented elsewhere and passed in by `app.ts`), the stream registry (stream-registry.ts),
 * RTMP publish (rtmp-publish.ts, its in-process segmenter rtmp-segmenter.ts), HTTP push
 * (push-session.ts) and the authorizers (authorizers.ts). It keeps the steps both protocols
 * share (live-stream.ts `IngestCore`): open, ingest a segment, credits, failures, ending.
 * This folder imports no other feature folder.
 */
import { fitRendition, type SourceVideoInfo, type StreamProtocol } from '../domain/profile.ts';
import { fitLadderToSource, measuredBitrateBps, type LadderFit } from '../domain/ladder-fit.ts';
import { SOURCE_RENDITION, segmentKey, sourceSegmentInfo, type RenditionSegment } from '../domain/segment.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { isValidStreamName } from '../domain/stream-name.ts';
import { isSourceSizeCopy, lintSource, playableSourceProfile } from '../domain/source-lint.ts';
import type { IngestJob, PushSessionRecord, StateRetry, StreamGrant, StreamTap } from './ingest-ports.ts';
import type { Logger } from '../log/logger.ts';
import {
  NO_RETRY, STORE_UNAVAILABLE_REASON, type EndedStream, type IngestCore, type LiveIngestOptions, type LiveStream, type LiveStreamInfo, type Publisher,
  type SegmentFacts,
} from './live-stream.ts';
import { PushSessions, type PushedSegment, type PushOutcome } from './push-session.ts';
import { RtmpPublish } from './rtmp-publish.ts';
import { pushLeaseOwner } from './stream-lease-store.ts';
import { StreamRegistry, newStreamSessionId, pushPublishKey, rtmpConnectionId, rtmpPublishKey, type StreamSessionId } from './stream-registry.ts';

export type * from './ingest-ports.ts';
export type { EndedStream, LiveIngestOptions, LiveStreamInfo } from './live-stream.ts';
export type { PushedSegment, PushOutcome } from './push-session.ts';
export { AccountStreamKeyAuthorizer, StaticKeyAuthorizer } from './authorizers.ts';

/**
 * Whether an RTMP stream with this ladder is transcoded by a live session: a ladder, all
 * H.264 (the live ladder measures its outputs in process, which it can for H.264 only; an HEVC
 * rendition keeps the per-segment jobs).
 */
export function usesLiveSession(profiles: readonly { readonly encoder: string }[]): boolean {
  return profiles.length > 0 && profiles.every((p) => p.encoder === 'H.264');
}

/** Audio codecs an audio-only stream is served with: the packed-audio formats of RFC 8216 §3.4, which also go in MPEG-TS. */
const AUDIO_ONLY_CODECS: ReadonlySet<string> = new Set(['aac', 'mp3', 'ac3', 'eac3']);

/**
 * Owns every live stream on this gateway, RTMP and HTTP push. A manifest ID has at most one
 * live publisher per gateway, and with `options.leases` one per cluster (the stream's
 * ownership lease, docs/architecture.md "Stream ownership").
 */
export class LiveIngest {
  readonly #options: LiveIngestOptions;
  readonly #streams = new StreamRegistry<LiveStream>();
  #closed = false;
  readonly #retry: StateRetry;
  readonly #storeRetry: StateRetry;
  #closing: Promise<EndedStream[]> | undefined;
  readonly #rtmp: RtmpPublish;
  readonly #push: PushSessions;

  constructor(options: LiveIngestOptions) {
    this.#options = options;
    this.#retry = options.retry ?? NO_RETRY;
    this.#storeRetry = options.storeRetry ?? NO_RETRY;
    const core: IngestCore = {
      options, retry: this.#retry, storeRetry: this.#storeRetry, streams: this.#streams,
      authorize: (streamKey, url, protocol) => this.#authorize(streamKey, url, protocol),
      open: (publisher, grant, firstSeq) => this.#open(publisher, grant, firstSeq),
      adopt: (publisher, record, adoptOptions) => this.#adopt(publisher, record, adoptOptions),
      forget: (stream) => this.#forget(stream),
      ingestSegment: (...args) => this.#ingestSegment(...args),
      recordFailed: (...args) => this.#recordFailed(...args),
      resolveLost: (stream, deadlineMs) => this.#resolveLost(stream, deadlineMs),
      finish: (stream, reason) => this.#finish(stream, reason),
      endForStore: (stream, detail) => this.#endForStore(stream, detail),
    };
    this.#rtmp = new RtmpPublish(core);
    this.#push = new PushSessions(core);
  }

  /**
   * Authorizes and starts an RTMP publish (rtmp-publish.ts).
   * @param publishId the RTMP connection ID (node-media-server's session ID, not a stream session)
   * @throws GatewayError PUBLISH_DENIED, INVALID_NAME, STREAM_BUSY
   */
  publish(publishId: string, streamKey: string, url: string): Promise<{ manifestID: string }> {
    return this.#rtmp.publish(rtmpConnectionId(publishId), streamKey, url);
  }

  /**
   * The RTMP publisher left; the segmenter flushes its last segment and the stream ends.
   * @param publishId the RTMP connection ID given to `publish()`
   */
  unpublish(publishId: string): Promise<void> {
    return this.#rtmp.unpublish(rtmpConnectionId(publishId));
  }

  /**
   * Ingests one HTTP-pushed segment and waits for its renditions (push-session.ts,
   * docs/wire-contract.md §4). A retry of the same (manifest ID, seq) with the same bytes
   * returns the stored result without transcoding again.
   * @throws GatewayError PUBLISH_DENIED (403), INVALID_NAME / INVALID_PROFILE / INVALID_REQUEST (400),
   *   STREAM_BUSY (409: the manifest is live over RTMP, or this seq was pushed with other bytes),
   *   UNDECODABLE_MEDIA / TRANSCODE_FAILED (422), QUEUE_UNAVAILABLE / REDIS_UNAVAILABLE (503)
   */
  push(segment: PushedSegment): Promise<PushOutcome> {
    return this.#push.push(segment);
  }

  /**
   * Streams whose heartbeat this gateway renews: RTMP streams in the segment index and not
   * ending yet (a stream still being opened has no session in the index to renew). A push
   * session is no gateway's: its heartbeat follows its idle deadline in the push sessions
   * (push-session-store.ts), whichever gateway takes its pushes.
   */
  held(): { manifestID: string; session: string }[] {
    return this.#streams.manifests().filter((s) => s.protocol !== 'push' && s.indexed && !s.ended && !s.leaseLost).map((s) => ({ manifestID: s.manifestID, session: s.session }));
  }

  /**
   * Stops a held stream if it is still in `session`: another gateway ended it (its heartbeat
   * expired, e.g. after this process stalled), so this one must stop publishing into it.
   */
  async stopSession(manifestID: string, session: string, reason: string): Promise<boolean> {
    if (this.#streams.byManifest(manifestID)?.session !== session) return false;
    return this.stop(manifestID, reason);
  }

  /**
   * The RTMP connection ID of `manifestID` when it is live on this gateway over RTMP (WHIP
   * publishes arrive through the RTMP loopback too) and not ending: the key of its packets on
   * the RTMP server (`RtmpServer.watchTags`). Undefined for HTTP push, unknown or ending streams.
   */
  rtmpPublishOf(manifestID: string): string | undefined {
    const stream = this.#streams.byManifest(manifestID);
    return stream && stream.protocol === 'rtmp' && !stream.ended ? stream.connection : undefined;
  }

  /** Live streams on this gateway. */
  list(): LiveStreamInfo[] {
    return this.#streams.manifests().map((s) => ({ manifestID: s.manifestID, session: s.session, protocol: s.protocol, startedAtMs: s.startedAtMs, segments: s.segments }));
  }

  /**
   * Stops a live stream held by this gateway (RTMP: disconnects the publisher; a push session
   * this gateway took pushes of: ends it for the cluster, unless another gateway ended it
   * first). Returns false if not held here.
   */
  async stop(manifestID: string, reason: string): Promise<boolean> {
    const stream = this.#streams.byManifest(manifestID);
    if (!stream) return false;
    stream.log.info({ reason }, 'stopping stream');
    if (stream.protocol === 'push') {
      await this.#push.stop(stream, reason);
    } else if (stream.connection !== undefined) {
      this.#options.kickPublisher(stream.connection);
      await stream.segmenter?.stop();
    } else {
      await this.#finish(stream, reason);
    }
    return true;
  }

  /**
   * Checks a publish before its media arrives, as an RTMP publish of `streamKey` would be
   * checked: authorized (the same authorizers), not live on this gateway already, and its
   * account in standing. WHIP admits its publishes with this before any ICE (webrtc/), then
   * publishes under an internal grant (internal-publish.ts); the stream's cluster lease is
   * taken when the media arrives, as for RTMP.
   * @param url the URL the publisher used (e.g. `http://host:port/whip/<key>`), for the auth webhook
   * @throws GatewayError INVALID_NAME (400), PUBLISH_DENIED (403), INSUFFICIENT_BALANCE (402), STREAM_BUSY (409)
   */
  async admit(streamKey: string, url: string): Promise<StreamGrant> {
    const grant = await this.#authorize(streamKey, url, 'rtmp');
    if (this.#streams.byManifest(grant.manifestID)) {
      throw new GatewayError('STREAM_BUSY', `manifest ID ${grant.manifestID} already has a live publisher`);
    }
    await this.#checkStanding(grant.manifestID, grant.accountID ?? this.#options.defaultAccountID);
    return grant;
  }

  /** @throws GatewayError PUBLISH_DENIED (no such account), INSUFFICIENT_BALANCE (no credits) */
  async #checkStanding(manifestID: string, accountID: string | undefined): Promise<void> {
    const standing = this.#options.billing && accountID !== undefined ? await this.#options.billing.standing(accountID) : 'ok';
    if (standing === 'no-account') {
      this.#options.logger.warn({ manifestID, accountID }, 'publish refused: the account does not exist');
      throw new GatewayError('PUBLISH_DENIED',
        `account ${accountID} does not exist (was it lost with Redis's data, a restart without persistence? see /healthz); create it or use a stream key of an existing account`);
    }
    if (standing === 'no-credits') {
      this.#options.logger.warn({ manifestID, accountID }, 'publish refused: the account has no credits');
      throw new GatewayError('INSUFFICIENT_BALANCE', `account ${accountID} has no credits left; top it up to publish`);
    }
  }

  async #authorize(streamKey: string, url: string, protocol: StreamProtocol): Promise<StreamGrant> {
    if (this.#closed) throw new GatewayError('PUBLISH_DENIED', 'the gateway is shutting down; publish again in a few seconds (to another gateway, or this one once restarted)');
    if (!isValidStreamName(streamKey)) throw new GatewayError('INVALID_NAME', 'invalid stream key: expected 1-64 characters of [A-Za-z0-9_-]');
    return this.#options.authorizer.authorize({ streamKey, url, protocol });
  }

  async #open(publisher: Publisher, grant: StreamGrant, firstSeq: number): Promise<LiveStream> {
    const { protocol } = publisher;
    const manifestID = grant.manifestID;
    if (this.#streams.byManifest(manifestID)) {
      throw new GatewayError('STREAM_BUSY', `manifest ID ${manifestID} already has a live publisher`);
    }
    // RTMP waits out a Redis outage here (the publisher's media keeps arriving meanwhile); a push makes one attempt.
    const deadlineMs = protocol === 'rtmp' ? this.#retry.deadline() : Date.now();
    // Ownership first, before any state of the stream is read or written: a manifest ID live on
    // another gateway (or in a push session) is refused here and nothing of it is touched. RTMP
    // holds it as this gateway (renewed by its heartbeat); a push session as `push:<session>`,
    // extended by each of its pushes on any gateway (push-session-store.ts).
    const pushSession = protocol === 'push' ? newStreamSessionId() : undefined;
    const leaseOwner = await this.#takeLease(manifestID, protocol, deadlineMs, pushSession);
    let stream: LiveStream | undefined;
    try {
      const accountID = grant.accountID ?? this.#options.defaultAccountID;
      await this.#checkStanding(manifestID, accountID);
      // A publisher reconnecting to a stream whose holder went away (it died, within
      // ingest.reconnectGraceMs) continues its session: same playlists, seqs going on.
      const index = this.#options.index;
      const resumed = protocol === 'rtmp' && leaseOwner !== undefined && index.resumeStream
        ? await this.#retry.run('resume stream', () => index.resumeStream!(manifestID), deadlineMs) : undefined;
      const session = (resumed?.session ?? pushSession ?? newStreamSessionId()) as StreamSessionId;
      const startSeq = resumed ? resumed.nextSeq : firstSeq;
      const log = this.#options.logger.child({ manifestID, session });
      const watermark = grant.watermark === false ? undefined : grant.watermark ?? this.#options.defaultWatermark;
      stream = {
        protocol, publishKey: publisher.protocol === 'rtmp' ? rtmpPublishKey(publisher.connection) : pushPublishKey(publisher.name),
        ...(publisher.protocol === 'rtmp' ? { connection: publisher.connection } : {}), manifestID, session, profiles: grant.profiles, fitToSource: this.#fitsToSource(grant.explicitLadder), accountID, startedAtMs: Date.now(), log, sourceOnly: false,
        ...(watermark !== undefined ? { watermark } : {}),
        chain: Promise.resolve(), buffered: 0, lost: new Map(), endSeq: startSeq, segments: 0, renditionsSet: false, ended: false, longSegments: 0, pushesInFlight: 0,
        seqOffset: resumed ? resumed.nextSeq : 0,
        ...(leaseOwner !== undefined ? { leaseOwner } : {}), ...(resumed ? { resumedAtSeq: resumed.nextSeq } : {}),
      };
      this.#streams.add(stream);
      if (resumed) {
        // Its recording session, index entry and heartbeat are there already. Its ladder is made
        // by a job per segment: the live transcoding session of the gone holder finishes on its own.
        stream.indexed = true;
        log.warn({ protocol, nextSeq: resumed.nextSeq, playbackUrl: `${this.#options.publicUrl}/stream/${manifestID}.m3u8` },
          'stream resumed: its publisher reconnected within ingest.reconnectGraceMs; the playlists go on after a discontinuity');
        this.#tap(log, (t) => t.opened?.({ manifestID, session, protocol, resumed: true, grant }));
        return stream;
      }
      // Objects are scoped by session (domain/segment.ts segmentKey): an earlier session's stay untouched.
      const record = grant.record ?? this.#options.recordByDefault ?? false;
      const keeper = this.#options.sessions;
      const opened = stream;
      if (keeper) await this.#retry.run('open session', () => keeper.opened({ manifestID, session, startedAtMs: opened.startedAtMs, record }), deadlineMs);
      if (record) log.info('stream is recorded');
      await this.#retry.run('start stream', () => index.startStream(manifestID, session, opened.startedAtMs, { protocol, firstSeq }), deadlineMs);
      stream.indexed = true;
      const live = this.#options.liveSessions;
      if (live && protocol === 'rtmp' && usesLiveSession(grant.profiles)) {
        await this.#retry.run('open live session', () => live.open({
          manifestID, session, profiles: grant.profiles, openedAtMs: opened.startedAtMs, ...(accountID !== undefined ? { accountID } : {}),
          ...(watermark !== undefined ? { watermark } : {}),
          ...(opened.fitToSource ? { fitToSource: true } : {}),
        }), deadlineMs);
        stream.liveSession = true;
      }
      this.#options.events.emit({ type: 'stream.started', manifestID, session, protocol });
      this.#tap(log, (t) => t.opened?.({ manifestID, session, protocol, resumed: false, grant }));
      log.info({ protocol, ladder: grant.profiles.map((p) => p.name), ...(watermark ? { watermark: watermark.kind } : {}), playbackUrl: `${this.#options.publicUrl}/stream/${manifestID}.m3u8` }, 'stream started');
      return stream;
    } catch (err) {
      if (stream) this.#forget(stream);
      if (leaseOwner !== undefined) await this.#releaseLease(manifestID, leaseOwner);
      throw err;
    }
  }

  /**
   * Takes the ownership lease of `manifestID` for this gateway (`options.leases`).
   * @returns the owner it holds the lease as; undefined without leases
   * @throws GatewayError STREAM_BUSY while another gateway or push session holds it (logged with the holder)
   */
  async #takeLease(manifestID: string, protocol: StreamProtocol, deadlineMs: number, pushSession: string | undefined): Promise<string | undefined> {
    const { leases, memberId } = this.#options;
    if (!leases || memberId === undefined) return undefined;
    const owner = pushSession !== undefined ? pushLeaseOwner(pushSession) : memberId;
    const claim = await this.#retry.run('take stream lease', () => leases.acquire(manifestID, owner, this.#leaseTtlMs), deadlineMs);
    if (!claim.acquired) {
      this.#options.logger.warn({ manifestID, protocol, holder: claim.holder, holderLeaseRemainingMs: claim.remainingMs },
        'publish refused: the manifest ID is live on another gateway or push session (it holds the stream lease)');
      throw new GatewayError('STREAM_BUSY',
        `manifest ID ${manifestID} is live on another gateway or push session; publish again once it stopped (a gateway that died frees it within hls.heartbeatTtlMs)`);
    }
    return owner;
  }

  async #releaseLease(manifestID: string, owner: string): Promise<void> {
    await this.#options.leases?.release(manifestID, owner)
      .catch((err: Error) => this.#options.logger.warn({ manifestID, err: err.message }, 'cannot release the stream lease; it expires by itself'));
  }

  get #leaseTtlMs(): number {
    return this.#options.leaseTtlMs ?? 10_000;
  }

  /**
   * Renews the ownership lease of every stream held here (one Redis step for all); a stream
   * whose lease another owner took (this gateway stalled or lost Redis for longer than the
   * lease, and its publisher resumed the stream elsewhere) is stopped here without touching
   * the stream's shared state. Run on every heartbeat beside the index heartbeat. Never throws.
   */
  async renewLeases(): Promise<void> {
    const leases = this.#options.leases;
    if (!leases) return;
    // A push session's lease is extended by its pushes, whichever gateway takes them: not renewed here.
    const held = this.#streams.manifests().filter((s) => s.protocol === 'rtmp' && s.leaseOwner !== undefined && !s.ended && !s.leaseLost)
      .map((s) => ({ manifestID: s.manifestID, owner: s.leaseOwner!, stream: s }));
    try {
      for (const { stream } of await leases.renew(held, this.#leaseTtlMs)) {
        stream.leaseLost = true;
        stream.log.warn('stream lease lost to another owner (the publisher continued elsewhere); stopping it here without touching its state');
        void this.stop(stream.manifestID, 'stream lease lost to another owner');
      }
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'stream lease renewal failed');
    }
  }

  /** Whether a stream's ladder is fitted to its source: one the gateway chose, unless `fitLadderToSource` is off. */
  #fitsToSource(explicitLadder: boolean | undefined): boolean {
    return explicitLadder !== true && this.#options.fitLadderToSource !== false;
  }

  #adopt(publisher: Extract<Publisher, { protocol: 'push' }>, record: PushSessionRecord, options: { register?: boolean } = {}): LiveStream {
    const held = this.#streams.byManifest(record.manifestID);
    if (options.register !== false && held && held.protocol !== 'push') {
      throw new GatewayError('STREAM_BUSY', `manifest ID ${record.manifestID} already has a live publisher`);
    }
    const { manifestID, session } = record;
    const stream: LiveStream = {
      protocol: 'push', publishKey: pushPublishKey(publisher.name), manifestID, session: session as StreamSessionId, profiles: record.profiles,
      fitToSource: this.#fitsToSource(record.explicitLadder),
      accountID: record.accountID, startedAtMs: record.startedAtMs, log: this.#options.logger.child({ manifestID, session }), sourceOnly: false, indexed: true,
      ...(record.watermark !== undefined ? { watermark: record.watermark } : {}),
      chain: Promise.resolve(), buffered: 0, lost: new Map(), endSeq: 0, segments: 0, renditionsSet: false, ended: false, longSegments: 0, pushesInFlight: 0, seqOffset: 0,
    };
    if (options.register !== false) this.#streams.add(stream);
    return stream;
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
   * Measurement: the RTMP segmenter's own (`facts.probed`: codecs and size from the stream's
   * parameter sets, frames counted as muxed), else ffprobe (HTTP push).
   * @param facts what the probe of this file cannot see (the display rotation of a pushed MP4), or the segmenter's measurement.
   * @returns the transcode job, or `undefined` when nothing is to be transcoded (audio only, or
   *   source-only for lack of credits).
   * @throws GatewayError UNDECODABLE_MEDIA when it has no video and no servable audio.
   */
  async #ingestSegment(stream: LiveStream, seq: number, path: string, duration: { cutMs?: number; declaredMs?: number },
    deadlineMs: number, progress: { sourceListed: boolean }, facts: SegmentFacts = {},
    storeDeadlineMs: number = Date.now()): Promise<IngestJob | undefined> {
    const { manifestID, session, log } = stream;
    if (stream.stopReason !== undefined) throw new GatewayError('STORAGE_FAILED', `segment ${seq} not stored: the stream is ending (${stream.stopReason})`, { retryable: false });
    // Its publisher continued on another gateway, in the same session: nothing more is written from here.
    if (stream.leaseLost) throw new GatewayError('STREAM_BUSY', `segment ${seq} not stored: the stream continued on another gateway`, { retryable: false });
    const retry = this.#retry;
    const key = segmentKey(manifestID, session, SOURCE_RENDITION, seq);
    const completedAtMs = Date.now();
    const measuredBy = facts.probed ? 'segmenter' : 'ffprobe';
    let probed = facts.probed ?? await this.#options.probe.probe(path);
    if (probed.video && facts.rotationDeg) probed = { ...probed, video: { ...probed.video, rotationDeg: facts.rotationDeg } };
    if (!probed.video && !(probed.audio && AUDIO_ONLY_CODECS.has(probed.audio.codec))) {
      throw new GatewayError('UNDECODABLE_MEDIA', probed.audio
        ? `segment ${seq} has no video stream and its audio codec ${probed.audio.codec.slice(0, 32)} cannot be served alone (AAC, MP3, AC-3 or E-AC-3 can)`
        : `segment ${seq} has no video stream`);
    }
    const durationMs = duration.cutMs !== undefined && duration.cutMs > 0 ? duration.cutMs
      : probed.durationMs > 0 ? probed.durationMs : duration.declaredMs ?? this.#options.segmentTargetMs;
    // Stored before it is listed: a playlist never names an object that is not there yet.
    const storeOptions = facts.fileFinal || facts.bytes !== undefined
      ? { ...(facts.fileFinal ? { sourceFinal: true } : {}), ...(facts.bytes !== undefined ? { sizeBytes: facts.bytes } : {}) } : undefined;
    let stored;
    try {
      stored = await this.#storeRetry.run('store source segment', () => this.#options.storage.putFile(key, path, storeOptions), storeDeadlineMs);
    } catch (err) {
      if (stream.protocol === 'rtmp' && this.#storeRetry.isTransient(err)) {
        this.#endForStore(stream, `segment ${seq} could not be stored within storage.outageBudgetMs: ${(err as Error).message}`);
      }
      throw err;
    }
    if (!stream.renditionsSet) {
      const video = probed.video;
      const warnings = lintSource(video && { ...video, profile: video.profile ?? '', pixelFormat: video.pixelFormat ?? '' });
      // The publisher's declared rate when it sent one (its live session was described with it
      // before this segment closed: the two fits agree); the first segment's measurement else.
      const measuredBps = measuredBitrateBps(stored.sizeBytes, durationMs);
      const sourceBitrateBps = stream.declaredBitrateBps ?? measuredBps;
      stream.sourceBitrateBps = sourceBitrateBps;
      let fitted: LadderFit | undefined;
      if (video && stream.fitToSource) {
        // A ladder the gateway chose fits its source: nothing the source's size, nothing above its bits per pixel.
        fitted = fitLadderToSource(stream.profiles, video, sourceBitrateBps);
        stream.profiles = fitted.profiles;
      }
      // Watermark applyToSource: a marked copy at the source's size (the ladder draws the mark on
      // it like on every rendition) replaces the unmarked source for players.
      const marksSource = stream.watermark?.applyToSource === true;
      const extra = video && playableSourceProfile(stream.profiles, video, warnings, sourceBitrateBps ?? 0, { marked: marksSource });
      if (extra) stream.profiles = [...stream.profiles, extra];
      let copyFlagged = false;
      const plan = !video ? [] : stream.profiles
        .map((p) => ({ p, fit: fitRendition(p, video) }))
        .filter((x) => x.fit !== undefined)
        .map((x) => {
          const replacesSource = marksSource && !copyFlagged && isSourceSizeCopy(x.fit, video);
          if (replacesSource) copyFlagged = true;
          return { name: x.p.name, width: x.fit!.width, height: x.fit!.height, bitrateBps: x.p.bitrateBps, fps: x.fit!.fpsNum / x.fit!.fpsDen, ...(replacesSource ? { replacesSource: true as const } : {}) };
        });
      stream.plan = plan;
      // Nothing to transcode after all (every rendition would upscale, or no video): the live feed stops here.
      if (plan.length === 0) this.#rtmp.endFeed(stream);
      const skipped = stream.profiles.filter((p) => !plan.some((r) => r.name === p.name)).map((p) => p.name);
      await retry.run('set renditions', () => this.#options.index.setRenditions(manifestID, session, plan, warnings), deadlineMs);
      stream.renditionsSet = true;
      for (const w of warnings) log.warn({ code: w.code, detail: w.msg, ...(extra ? { addedRendition: extra.name } : {}) }, 'source lint');
      log.info({
        source: video ? `${video.width}x${video.height}` : 'audio only', sourceBitrateBps, fitToSource: stream.fitToSource,
        sourceBitrateFrom: stream.declaredBitrateBps !== undefined ? 'declared' : 'measured', measuredBitrateBps: measuredBps,
        renditions: plan.map((r) => `${r.name} ${r.width}x${r.height} ${r.bitrateBps}bps`), skippedUpscales: skipped,
        ...(fitted ? { leftOut: fitted.leftOut.map((x) => `${x.name} (${x.reason})`), capped: fitted.capped.map((x) => `${x.name} ${x.configuredBps}→${x.cappedBps}bps`) } : {}),
      }, 'ladder fitted to source');
    }
    const segment: RenditionSegment = {
      rendition: SOURCE_RENDITION, key, width: probed.video?.width ?? 0, height: probed.video?.height ?? 0, frames: probed.video?.frames ?? 0,
      bytes: stored.sizeBytes, durationMs, codecs: probed.codecs, frameRate: probed.frameRate,
    };
    // The first segment of a resumed session follows a discontinuity (its recording keeps it too).
    const joined = seq === stream.resumedAtSeq ? { discontinuity: true } : {};
    const recorded = await retry.run('list source segment', () => this.#options.index.record(manifestID, session, { status: 'ok', seq, segment, ...joined }), deadlineMs);
    if (!recorded.accepted) {
      // The playlists gave up on this seq (hls.maxSegmentWaitMs, or a push gap): it is not listed, so it is not transcoded or charged.
      throw new GatewayError('STREAM_BUSY', `segment ${seq} of ${manifestID} arrived after the playlists skipped it; send later sequence numbers`);
    }
    progress.sourceListed = true;
    this.#tap(log, (t) => t.sourceListed?.({ manifestID, session, seq, key, path, bytes: stored.sizeBytes, durationMs }));
    log.debug({ seq, frames: segment.frames, durationMs, bytes: segment.bytes, measuredBy }, 'source segment listed');
    stream.segments += 1;
    if (stream.segments === 1) log.info({ sinceStartMs: Date.now() - stream.startedAtMs }, 'first source segment listed');
    if (!probed.video) return undefined;
    const measured = sourceSegmentInfo(probed);
    // The bitrate the plan was fitted to travels with every job: a live session fits its ladder with it.
    // So does the marked copy of the source (watermark applyToSource): its bitrate is the source's.
    const needsBitrate = stream.fitToSource || stream.watermark?.applyToSource === true;
    const source = measured && stream.sourceBitrateBps !== undefined && needsBitrate ? { ...measured, bitrateBps: stream.sourceBitrateBps } : measured;
    const job: IngestJob = {
      manifestID, session, seq, sourceKey: key, durationMs, profiles: stream.profiles, enqueuedAtMs: completedAtMs,
      ...(stream.accountID !== undefined ? { accountID: stream.accountID } : {}),
      ...(stream.watermark !== undefined ? { watermark: stream.watermark } : {}),
      ...(source ? { source } : {}),
      // The join of a resumed stream: its renditions (and their recording) carry the discontinuity too.
      ...(seq === stream.resumedAtSeq ? { discontinuity: true } : {}),
    };
    return (await this.#paid(stream, job, deadlineMs)) ? job : undefined;
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
    if (stream.leaseLost) return;
    for (const [seq, { sourceListed, reason = 'lost in a Redis outage' }] of [...stream.lost].sort((a, b) => a[0] - b[0])) {
      try {
        await this.#recordFailed(stream, seq, reason, { skipSource: sourceListed, deadlineMs });
        stream.lost.delete(seq);
        this.#options.events.emit({ type: 'segment.failed', manifestID: stream.manifestID, session: stream.session, seq, reason });
        stream.log.warn({ seq, sourceListed }, 'lost segment resolved as failed');
      } catch (err) {
        stream.log.warn({ seq, err: (err as Error).message }, 'cannot resolve lost segment yet');
        return;
      }
    }
  }

  #endForStore(stream: LiveStream, detail: string): void {
    if (stream.stopReason !== undefined || stream.ended) return;
    stream.stopReason = STORE_UNAVAILABLE_REASON;
    stream.log.error({ reason: STORE_UNAVAILABLE_REASON, detail, bufferedSegments: stream.buffered }, 'object store unavailable past the bound: ending the stream');
    if (stream.connection !== undefined) this.#options.kickPublisher(stream.connection);
    void stream.segmenter?.stop();
  }

  /** Ends the stream once; every caller (segmenter end, unpublish, stop, shutdown) waits for the same ending. */
  #finish(stream: LiveStream, reason: string): Promise<void> {
    stream.finishing ??= this.#end(stream, stream.stopReason ?? reason);
    return stream.finishing;
  }

  async #end(stream: LiveStream, reason: string): Promise<void> {
    stream.ended = true;
    clearTimeout(stream.idleTimer);
    this.#rtmp.endFeed(stream);
    await stream.chain;
    await stream.segmenter?.cleanup?.().catch((err: Error) => stream.log.warn({ err: err.message }, 'cannot remove the segmenter work dir'));
    const deadlineMs = this.#retry.deadline();
    await this.#resolveLost(stream, deadlineMs);
    if (stream.leaseLost) {
      // The stream goes on elsewhere (same session): its index entry, live session and lease are the new holder's.
      this.#forget(stream);
      this.#tap(stream.log, (t) => t.closed?.({ manifestID: stream.manifestID, session: stream.session, reason, continued: true }));
      stream.log.info({ reason, segments: stream.segments }, 'stream ended here; it continues on another gateway');
      return;
    }
    try {
      const endedAtMs = Date.now();
      await this.#retry.run('end stream', () => this.#options.index.endStream(stream.manifestID, stream.session, stream.endSeq, endedAtMs), deadlineMs);
    } catch (err) {
      stream.log.error({ err: (err as Error).message }, 'cannot mark stream ended');
    }
    const live = this.#options.liveSessions;
    if (live && stream.liveSession) {
      await this.#retry.run('end live session', () => live.end(stream.manifestID, stream.session, stream.endSeq), deadlineMs)
        .catch((err: Error) => stream.log.error({ err: err.message }, 'cannot mark live session ended'));
    }
    // Released before the stream is forgotten here, so a new publish of it on this gateway
    // (refused as busy until then) never has its fresh lease deleted by this one's release.
    if (stream.leaseOwner !== undefined) await this.#releaseLease(stream.manifestID, stream.leaseOwner);
    this.#forget(stream);
    this.#tap(stream.log, (t) => t.closed?.({ manifestID: stream.manifestID, session: stream.session, reason, continued: false }));
    this.#options.events.emit({ type: 'stream.ended', manifestID: stream.manifestID, session: stream.session, reason, segments: stream.segments });
    stream.log.info({ reason, segments: stream.segments, longSegments: stream.longSegments, durationMs: Date.now() - stream.startedAtMs }, 'stream ended');
  }

  /** Calls `fn` on every tap (`options.taps`); a tap that throws is logged and skipped. */
  #tap(log: Logger, fn: (tap: StreamTap) => void): void {
    for (const tap of this.#options.taps ?? []) {
      try {
        fn(tap);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'a stream tap failed; ignored');
      }
    }
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
  async flush(protocol?: StreamProtocol): Promise<EndedStream[]> {
    // Push sessions are the cluster's: this gateway drops its handles, any gateway ends them when idle.
    if (protocol !== 'rtmp') for (const s of this.#streams.publishes().filter((p) => p.protocol === 'push')) this.#push.release(s);
    const streams = this.#streams.publishes().filter((s) => s.protocol === 'rtmp' && (protocol === undefined || s.protocol === protocol));
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
    this.#push.close();
    this.#closing ??= this.flush();
    return this.#closing;
  }
}
