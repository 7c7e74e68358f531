/**
 * Live ingest: turns an authorized publish into source segments, lists each in the
 * `source` rendition at once, and puts one transcode job per segment on the queue
 * (ARCHITECTURE.md, data flow steps 1-3).
 *
 * The consumer-side interfaces below are implemented elsewhere and passed in by
 * `app.ts`; this folder imports no other feature folder.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { fitRendition, parseLadder, type SourceVideoInfo, type VideoProfile } from '../domain/profile.ts';
import { SOURCE_RENDITION, segmentKey, type RenditionSegment, type SegmentOutcome } from '../domain/segment.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { isValidStreamName } from '../domain/stream-name.ts';

/** A stream the publisher is allowed to send, as resolved from its stream key. */
export interface StreamGrant {
  readonly manifestID: string;
  readonly profiles: readonly VideoProfile[];
}

/** What an authorizer is told about a new stream. */
export interface PublishAttempt {
  /** The stream name from the URL: a stream key, or the manifest ID itself in anonymous mode. Validated. */
  readonly streamKey: string;
  /** The full incoming URL (`rtmp://host:port/live/<key>` or `http://host:port/live/<name>/<seq>.ts`). */
  readonly url: string;
  readonly protocol: 'rtmp' | 'push';
}

/** Resolves a stream key to a grant or refuses it. */
export interface PublishAuthorizer {
  /** @throws GatewayError PUBLISH_DENIED / INVALID_NAME / INVALID_PROFILE */
  authorize(attempt: PublishAttempt): Promise<StreamGrant>;
}

/** What ingest needs from the segment index. */
export interface IngestIndex {
  startStream(manifestID: string, session: string, startedAtMs: number): Promise<void>;
  setRenditions(manifestID: string, session: string, renditions: readonly { name: string; width: number; height: number; bitrateBps: number }[]): Promise<void>;
  endStream(manifestID: string, session: string, segmentCount: number, endedAtMs: number): Promise<void>;
  record(manifestID: string, session: string, outcome: SegmentOutcome): Promise<number>;
}

/** What ingest needs from the transcode queue. */
export interface SegmentEnqueuer {
  enqueue(job: {
    manifestID: string; session: string; seq: number; sourceKey: string; durationMs: number; profiles: readonly VideoProfile[];
    /** Epoch ms when the source segment was complete. */
    enqueuedAtMs: number;
  }): Promise<void>;
}

/** What ingest needs from the object store. */
export interface SourceStorage {
  putFile(key: string, localPath: string): Promise<{ sizeBytes: number }>;
  deletePrefix(prefix: string): Promise<void>;
}

/** Measures a source segment (ffprobe). */
export interface SourceProbe {
  probe(path: string): Promise<{ video?: SourceVideoInfo & { frames: number }; codecs: string; frameRate: number }>;
}

/** A running segmenter for one publish (ffmpeg cutting the live input at keyframes). */
export interface SegmenterHandle {
  on(event: 'segment', listener: (s: { seq: number; path: string; durationMs: number; bytes: number }) => void): unknown;
  on(event: 'longSegment', listener: (s: { seq: number; durationMs: number }) => void): unknown;
  on(event: 'end', listener: (e: { reason: string; exitCode: number | null }) => void): unknown;
  stop(): Promise<void>;
}

export interface LiveIngestOptions {
  logger: Logger;
  authorizer: PublishAuthorizer;
  index: IngestIndex;
  queue: SegmentEnqueuer;
  storage: SourceStorage;
  probe: SourceProbe;
  /** Starts a segmenter pulling the live input of `streamKey` into `session`'s work dir. */
  startSegmenter(streamKey: string, session: string): SegmenterHandle;
  /** Base URL for playback links in logs, e.g. `http://127.0.0.1:9935`. */
  publicUrl: string;
  /** Target segment duration in ms (long-GOP warnings are relative to it). */
  segmentTargetMs: number;
}

interface LiveStream {
  readonly publishId: string;
  readonly manifestID: string;
  readonly session: string;
  readonly profiles: readonly VideoProfile[];
  readonly startedAtMs: number;
  readonly log: Logger;
  segmenter?: SegmenterHandle;
  /** Serializes per-segment work so segments are stored, listed and queued in order. */
  chain: Promise<void>;
  segments: number;
  renditionsSet: boolean;
  ended: boolean;
  longSegments: number;
}

export interface LiveStreamInfo {
  readonly manifestID: string;
  readonly startedAtMs: number;
  readonly segments: number;
}

/**
 * Owns every live publish on this gateway. `publish` is called by the RTMP adapter once a
 * publisher connects; `unpublish` when it leaves. A manifest ID has at most one live
 * publisher per gateway.
 */
export class LiveIngest {
  readonly #options: LiveIngestOptions;
  readonly #byPublish = new Map<string, LiveStream>();
  readonly #byManifest = new Map<string, LiveStream>();
  #closed = false;

  constructor(options: LiveIngestOptions) {
    this.#options = options;
  }

  /**
   * Authorizes and starts a publish.
   * @param publishId the ingest connection's ID (e.g. the RTMP session ID)
   * @throws GatewayError PUBLISH_DENIED, INVALID_NAME, STREAM_BUSY
   */
  async publish(publishId: string, streamKey: string, url: string): Promise<{ manifestID: string }> {
    if (this.#closed) throw new GatewayError('PUBLISH_DENIED', 'gateway is shutting down');
    if (!isValidStreamName(streamKey)) throw new GatewayError('INVALID_NAME', 'invalid stream key: expected 1-64 characters of [A-Za-z0-9_-]');
    const grant = await this.#options.authorizer.authorize({ streamKey, url, protocol: 'rtmp' });
    if (this.#byManifest.has(grant.manifestID)) {
      throw new GatewayError('STREAM_BUSY', `manifest ID ${grant.manifestID} already has a live publisher`);
    }
    const session = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
    const log = this.#options.logger.child({ manifestID: grant.manifestID, session });
    const stream: LiveStream = {
      publishId, manifestID: grant.manifestID, session, profiles: grant.profiles, startedAtMs: Date.now(), log,
      chain: Promise.resolve(), segments: 0, renditionsSet: false, ended: false, longSegments: 0,
    };
    this.#byPublish.set(publishId, stream);
    this.#byManifest.set(grant.manifestID, stream);
    try {
      await this.#options.storage.deletePrefix(`${grant.manifestID}/`);
      await this.#options.index.startStream(grant.manifestID, session, stream.startedAtMs);
    } catch (err) {
      this.#forget(stream);
      throw err;
    }
    const segmenter = this.#options.startSegmenter(streamKey, session);
    stream.segmenter = segmenter;
    segmenter.on('segment', (s) => {
      stream.chain = stream.chain.then(() => this.#onSegment(stream, s)).catch((err: Error) => {
        log.error({ err: err.message, seq: s.seq }, 'source segment lost');
      });
    });
    segmenter.on('longSegment', (s) => {
      stream.longSegments += 1;
      if (stream.longSegments === 1) {
        log.warn({ seq: s.seq, durationMs: s.durationMs, targetMs: this.#options.segmentTargetMs },
          'publisher keyframes are far apart: segments are cut at keyframes, so they run long and latency grows; set the encoder keyframe interval to 2 s (OBS: Output > Keyframe Interval = 2)');
      }
    });
    segmenter.on('end', (e) => {
      void this.#finish(stream, e.reason);
    });
    log.info({ ladder: grant.profiles.map((p) => p.name), playbackUrl: `${this.#options.publicUrl}/stream/${grant.manifestID}.m3u8` }, 'stream started');
    return { manifestID: grant.manifestID };
  }

  /** The publisher left; the segmenter flushes its last segment and the stream ends. */
  async unpublish(publishId: string): Promise<void> {
    const stream = this.#byPublish.get(publishId);
    if (!stream) return;
    await stream.segmenter?.stop();
  }

  /** Live streams on this gateway. */
  list(): LiveStreamInfo[] {
    return [...this.#byManifest.values()].map((s) => ({ manifestID: s.manifestID, startedAtMs: s.startedAtMs, segments: s.segments }));
  }

  async #onSegment(stream: LiveStream, s: { seq: number; path: string; durationMs: number; bytes: number }): Promise<void> {
    const { manifestID, session, log } = stream;
    const key = segmentKey(manifestID, SOURCE_RENDITION, s.seq);
    const completedAtMs = Date.now();
    const probed = await this.#options.probe.probe(s.path);
    if (!probed.video) {
      log.warn({ seq: s.seq }, 'source segment has no video; skipped');
      await this.#options.index.record(manifestID, session, { status: 'failed', rendition: SOURCE_RENDITION, seq: s.seq, reason: 'no video stream' });
      stream.segments = Math.max(stream.segments, s.seq + 1);
      return;
    }
    const stored = await this.#options.storage.putFile(key, s.path);
    if (!stream.renditionsSet) {
      const plan = stream.profiles
        .map((p) => ({ p, fit: fitRendition(p, probed.video!) }))
        .filter((x) => x.fit !== undefined)
        .map((x) => ({ name: x.p.name, width: x.fit!.width, height: x.fit!.height, bitrateBps: x.p.bitrateBps }));
      const skipped = stream.profiles.filter((p) => !plan.some((r) => r.name === p.name)).map((p) => p.name);
      await this.#options.index.setRenditions(manifestID, session, plan);
      stream.renditionsSet = true;
      log.info({ source: `${probed.video.width}x${probed.video.height}`, renditions: plan.map((r) => `${r.name} ${r.width}x${r.height}`), skippedUpscales: skipped }, 'ladder fitted to source');
    }
    const segment: RenditionSegment = {
      rendition: SOURCE_RENDITION, key, width: probed.video.width, height: probed.video.height, frames: probed.video.frames,
      bytes: stored.sizeBytes, durationMs: s.durationMs, codecs: probed.codecs, frameRate: probed.frameRate,
    };
    await this.#options.index.record(manifestID, session, { status: 'ok', seq: s.seq, segment });
    stream.segments = Math.max(stream.segments, s.seq + 1);
    if (s.seq === 0) log.info({ sinceStartMs: Date.now() - stream.startedAtMs }, 'first source segment listed');
    await this.#options.queue.enqueue({ manifestID, session, seq: s.seq, sourceKey: key, durationMs: s.durationMs, profiles: stream.profiles, enqueuedAtMs: completedAtMs });
  }

  async #finish(stream: LiveStream, reason: string): Promise<void> {
    if (stream.ended) return;
    stream.ended = true;
    await stream.chain;
    try {
      await this.#options.index.endStream(stream.manifestID, stream.session, stream.segments, Date.now());
    } catch (err) {
      stream.log.error({ err: (err as Error).message }, 'cannot mark stream ended');
    }
    this.#forget(stream);
    stream.log.info({ reason, segments: stream.segments, longSegments: stream.longSegments, durationMs: Date.now() - stream.startedAtMs }, 'stream ended');
  }

  #forget(stream: LiveStream): void {
    this.#byPublish.delete(stream.publishId);
    if (this.#byManifest.get(stream.manifestID) === stream) this.#byManifest.delete(stream.manifestID);
  }

  /** Stops every segmenter (each flushes its last segment) and waits for the streams to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const streams = [...this.#byPublish.values()];
    await Promise.all(streams.map(async (s) => {
      await s.segmenter?.stop();
      await this.#finish(s, 'gateway shutdown');
    }));
  }
}

/**
 * Static stream-key authorization from config (WIRE-CONTRACT.md §2). With keys
 * configured, each secret key maps to its public manifest ID; with none, any well-formed
 * name is accepted and is itself the manifest ID (Livepeer's behaviour; config refuses
 * this on a non-loopback bind unless allowAnonymous is set).
 */
export class StaticKeyAuthorizer implements PublishAuthorizer {
  readonly #keys: Map<string, StreamGrant>;
  readonly #defaultLadder: readonly VideoProfile[];

  /** @throws GatewayError INVALID_PROFILE when a configured ladder is invalid (at startup). */
  constructor(keys: readonly { streamKey: string; manifestID: string; profiles?: unknown[] }[], defaultLadder: readonly VideoProfile[]) {
    this.#defaultLadder = defaultLadder;
    this.#keys = new Map(keys.map((k) => [k.streamKey, {
      manifestID: k.manifestID,
      profiles: k.profiles ? parseLadder(k.profiles) : defaultLadder,
    }]));
  }

  async authorize({ streamKey }: PublishAttempt): Promise<StreamGrant> {
    if (this.#keys.size === 0) return { manifestID: streamKey, profiles: this.#defaultLadder };
    const grant = this.#keys.get(streamKey);
    if (!grant) throw new GatewayError('PUBLISH_DENIED', 'unknown stream key');
    return grant;
  }
}
