/**
 * RTMP publish: an authorized publish gets a segmenter (rtmp-segmenter.ts: the publish's
 * packets muxed and cut at keyframes in process); each segment it writes is stored, listed and
 * queued in seq order, its store and Redis steps retried across an outage until the segment's deadlines
 * (segments behind it wait on local disk, at most `maxBufferedSegments`). The stream ends
 * when the segmenter ends (publisher left, stop, shutdown), or when the object store stays
 * unavailable past those bounds. A stream with a ladder also has its MPEG-TS handed to the live
 * feed (`LiveIngestOptions.liveFeed`) as it is muxed, until its fitted ladder turns out empty or
 * the segmenter ends.
 */
import { unlink } from 'node:fs/promises';
import { settleWithin } from '../domain/time-limit.ts';
import { sourceSegmentInfo } from '../domain/segment.ts';
import type { IngestJob } from './ingest-ports.ts';
import { probedSegment, type RtmpSourceInfo } from './rtmp-segmenter.ts';
import { STORE_UNAVAILABLE_REASON, type IngestCore, type LiveStream } from './live-stream.ts';
import type { RtmpConnectionId } from './stream-registry.ts';

/** How long a segmenter may take to write its last segment after the publisher left before it is stopped, in ms (LiveIngestOptions.unpublishGraceMs). */
const DEFAULT_UNPUBLISH_GRACE_MS = 2000;

/** RTMP publishes, by their connection ID. */
export class RtmpPublish {
  readonly #core: IngestCore;

  constructor(core: IngestCore) {
    this.#core = core;
  }

  /**
   * Authorizes and starts an RTMP publish.
   * @throws GatewayError PUBLISH_DENIED, INVALID_NAME, STREAM_BUSY
   */
  async publish(connection: RtmpConnectionId, streamKey: string, url: string): Promise<{ manifestID: string }> {
    const grant = await this.#core.authorize(streamKey, url, 'rtmp');
    const stream = await this.#core.open({ protocol: 'rtmp', connection }, grant, 0);
    const { log } = stream;
    const segmenter = this.#core.options.startSegmenter(connection, stream.session);
    stream.segmenter = segmenter;
    const feed = this.#core.options.liveFeed;
    // A stream with a ladder; with live sessions configured, only one whose ladder a live session makes (not a job per segment).
    stream.feeding = feed !== undefined && stream.profiles.length > 0 && (this.#core.options.liveSessions === undefined || stream.liveSession === true);
    // Only a fed stream listens (the feed copies each chunk once, into its entry).
    if (feed && stream.feeding) {
      segmenter.on('chunk', (chunk) => {
        if (!stream.feeding) return;
        try {
          feed.append(stream.manifestID, stream.session, chunk);
        } catch (err) {
          log.error({ err: (err as Error).message, seq: chunk.seq }, 'live feed refused a chunk; it gets no more');
          this.endFeed(stream);
        }
      });
    }
    // A live session's ladder starts as soon as the source is known (a few frames in), not when seq 0 closes.
    segmenter.on('info', (info) => this.#describeLiveSession(stream, info));
    segmenter.on('segment', (cut) => {
      // The segmenter counts from 0; a resumed session goes on at its offset.
      const s = stream.seqOffset === 0 ? cut : { ...cut, seq: cut.seq + stream.seqOffset };
      // The segment is complete now: its Redis steps retry across an outage until this deadline.
      const readyAtMs = Date.now();
      const deadlineMs = this.#core.retry.deadline(readyAtMs);
      const storeDeadlineMs = this.#core.storeRetry.deadline(readyAtMs);
      const progress: { sourceListed: boolean; reason?: string } = { sourceListed: false };
      stream.buffered += 1;
      const maxBuffered = this.#core.options.maxBufferedSegments;
      if (maxBuffered !== undefined && stream.buffered > maxBuffered) {
        this.#core.endForStore(stream, `more than storage.maxBufferedSegments (${maxBuffered}) source segments wait on local disk`);
      }
      stream.chain = stream.chain
        .then(async () => {
          stream.endSeq = Math.max(stream.endSeq, s.seq + 1);
          await this.#core.resolveLost(stream, deadlineMs);
          let job: IngestJob | undefined;
          try {
            job = await this.#core.ingestSegment(stream, s.seq, s.path, { cutMs: s.durationMs }, deadlineMs, progress, { ...(s.probed ? { probed: s.probed } : {}), fileFinal: true, bytes: s.bytes }, storeDeadlineMs);
          } finally {
            // The segmenter's file is in the object store (linked or copied), or lost: without
            // this the work dir grows by the stream's bitrate for as long as it runs. unlink, not
            // rm: rm stats the path first (one more file-system call per segment).
            await unlink(s.path).catch(() => undefined);
          }
          const live = this.#core.options.liveSessions;
          if (live && stream.liveSession) {
            // A live session makes the ladder: it learns the source once, then how each segment settled.
            if (!stream.liveSourceSet && job?.source) {
              const source = job.source;
              await this.#core.retry.run('describe live session', () => live.setSource(stream.manifestID, stream.session, source), deadlineMs);
              stream.liveSourceSet = true;
            }
            const transcode = job !== undefined && (stream.plan?.length ?? 0) > 0;
            live.settle(stream.manifestID, stream.session, { seq: s.seq, transcode, durationMs: job?.durationMs ?? s.durationMs, readyAtMs });
            if (transcode) this.#core.options.recorder?.recordSegmentEmerged(stream.manifestID);
            return;
          }
          // Nothing to transcode (empty ladder, or every rendition would upscale): no job. It would
          // only re-probe the segment in the transcoder (one more ffprobe per segment) and settle a
          // hold that was never taken.
          if (job && stream.plan?.length) {
            const queued = job;
            await this.#core.retry.run('queue transcode job', () => this.#core.options.queue.enqueue(queued), deadlineMs);
            // Counted once it is queued (the enqueue is retried across a Redis outage).
            this.#core.options.recorder?.recordSegmentEmerged(queued.manifestID);
          }
        })
        .catch((err: Error) => {
          log.error({ err: err.message, seq: s.seq, sourceListed: progress.sourceListed, waitedMs: Date.now() - readyAtMs },
            'source segment lost; it is resolved as failed (a discontinuity) once Redis answers');
          // Resolved with the reason the index and the segment.failed event give (default: a Redis outage).
          if (stream.stopReason !== undefined || this.#core.storeRetry.isTransient(err)) progress.reason = `lost: ${STORE_UNAVAILABLE_REASON}`;
          stream.lost.set(s.seq, progress);
          // Its live session skips it (ingest resolves its renditions as failed).
          if (stream.liveSession) this.#core.options.liveSessions?.settle(stream.manifestID, stream.session, { seq: s.seq, transcode: false, durationMs: s.durationMs, readyAtMs });
        })
        .finally(() => { stream.buffered -= 1; });
    });
    segmenter.on('longSegment', (s) => {
      stream.longSegments += 1;
      if (stream.longSegments === 1) {
        log.warn({ seq: s.seq, durationMs: s.durationMs, targetMs: this.#core.options.segmentTargetMs },
          'publisher keyframes are far apart: segments are cut at keyframes, so they run long and latency grows; set the encoder keyframe interval to 2 s (OBS: Output > Keyframe Interval = 2)');
      }
    });
    stream.segmenterEnded = new Promise((resolve) => {
      segmenter.on('end', (e) => {
        this.endFeed(stream);
        resolve();
        void this.#core.finish(stream, e.reason);
      });
    });
    // Only now: the tags held during authorization are cut inside start(), and their first
    // chunks (seq 0's keyframe) and info must reach the listeners above.
    segmenter.start();
    return { manifestID: grant.manifestID };
  }

  /**
   * Gives the stream's live session the source measurement from the segmenter's first `info`
   * (its frame rate may still be the early estimate: the nearest integer rate); the first
   * segment's measurement is the fallback when this fails. A ladder fitted to its source also
   * needs the source bitrate: the one the publisher declared in `onMetaData` (kept on the
   * stream once, so the ingest's fit at the first segment uses the same), else the first
   * segment's measurement, and then its session learns the source from that segment (its
   * ladder starts one segment later).
   */
  #describeLiveSession(stream: LiveStream, info: RtmpSourceInfo): void {
    if (stream.declaredBitrateBps === undefined && info.declaredBitrateBps !== undefined && !stream.renditionsSet) {
      stream.declaredBitrateBps = info.declaredBitrateBps;
    }
    const live = this.#core.options.liveSessions;
    if (!live || !stream.liveSession || stream.liveSourceSet || !info.video) return;
    const declaredBps = stream.declaredBitrateBps;
    // A fitted ladder, and the marked copy of the source (watermark applyToSource), are sized by the source's bitrate.
    const needsBitrate = stream.fitToSource || stream.watermark?.applyToSource === true;
    if (needsBitrate && declaredBps === undefined) return;
    const measured = sourceSegmentInfo(probedSegment(info, { frames: 0, durationMs: 0 }));
    if (!measured) return;
    const source = needsBitrate && declaredBps !== undefined ? { ...measured, bitrateBps: declaredBps } : measured;
    stream.liveSourceSet = true;
    this.#core.retry.run('describe live session', () => live.setSource(stream.manifestID, stream.session, source), this.#core.retry.deadline())
      .catch((err: Error) => {
        stream.liveSourceSet = false;
        stream.log.warn({ err: err.message }, 'cannot give the live session its source yet; the first segment will');
      });
  }

  /** Ends the stream's live feed, once (no-op when it has none). */
  endFeed(stream: LiveStream): void {
    if (!stream.feeding) return;
    stream.feeding = false;
    try {
      this.#core.options.liveFeed?.end(stream.manifestID, stream.session);
    } catch (err) {
      stream.log.error({ err: (err as Error).message }, 'live feed end failed');
    }
  }

  /**
   * The RTMP publisher left; the segmenter writes its last segment and the stream ends.
   */
  async unpublish(connection: RtmpConnectionId): Promise<void> {
    const stream = this.#core.streams.byRtmp(connection);
    if (!stream || stream.protocol !== 'rtmp' || !stream.segmenter) return;
    // The RTMP server ended the publish's packets before calling this, so the segmenter has
    // closed its last segment and is writing it; a stop is only the fallback when its end
    // does not come in time.
    const ended = await settleWithin(stream.segmenterEnded!.then(() => true), this.#core.options.unpublishGraceMs ?? DEFAULT_UNPUBLISH_GRACE_MS, () => false);
    if (!ended) {
      stream.log.info({ graceMs: this.#core.options.unpublishGraceMs ?? DEFAULT_UNPUBLISH_GRACE_MS }, 'segmenter still running after the publisher left; stopping it');
      await stream.segmenter.stop();
    }
    await this.#core.finish(stream, 'publisher left');
  }
}
