/**
 * Streams the gateway publishes to itself, through its own HTTP-push ingest, in process: the
 * `<stream>-out` output of a live video-to-video session (ai/live/). Each such stream gets an
 * in-memory publish grant under a random one-time stream name (192 bits, base64url): the
 * authorizer below answers it before the configured one, so no configured stream key or
 * webhook is needed, and the name never leaves the process (no URL, no child process
 * argument, no log). Each segment is written to a scratch file and pushed like an HTTP push
 * (push-session.ts: stored, listed, ladder transcoded, recorded and billed like any stream),
 * in order, a few at once; the stream ends with {@link InternalStream.end}.
 *
 * WHIP publishes (webrtc/) use the RTMP side: {@link InternalPublishes.rtmpGrant} gives a
 * one-time RTMP stream name carrying the grant the configured authorizer gave the WHIP
 * publisher, and the WHIP bridge's ffmpeg publishes to the gateway's own RTMP port under it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';
import type { VideoProfile } from '../domain/profile.ts';
import type { PublishAttempt, PublishAuthorizer, StreamGrant } from './ingest-ports.ts';
import type { PushedSegment, PushOutcome } from './push-session.ts';

/** What an internal stream is published as. */
export interface InternalGrant {
  readonly manifestID: string;
  /** Billed account; undefined: the ingest's default (see StreamGrant.accountID). */
  readonly accountID: string | undefined;
  readonly profiles: readonly VideoProfile[];
  readonly record?: boolean;
  readonly explicitLadder?: boolean;
}

export interface InternalPublishesOptions {
  /** The ingest's push (LiveIngest.push). */
  readonly push: (segment: PushedSegment) => Promise<PushOutcome>;
  /** Ends a stream held here (LiveIngest.stop). */
  readonly stop: (manifestID: string, reason: string) => Promise<boolean>;
  /** Scratch directory of pushed bodies (the push routes' own, swept at startup). */
  readonly workDir: string;
  readonly scratchPrefix: string;
  readonly logger: Logger;
  /** Segments pushed at once per stream. Default 2. */
  readonly concurrency?: number;
  /** Segments waiting beyond those being pushed before the oldest waiting is dropped. Default 8. */
  readonly maxQueued?: number;
}

/** One internal stream: queue segments in order, then end it. */
export interface InternalStream {
  write(segment: Buffer): void;
  end(reason: string): Promise<void>;
}

/**
 * The registry of internal grants, an authorizer in front of the configured one, and the
 * publisher of internal streams.
 */
export class InternalPublishes {
  readonly #grants = new Map<string, StreamGrant>();
  /** One-time RTMP names of WHIP publishes ({@link InternalPublishes.rtmpGrant}). */
  readonly #rtmpGrants = new Map<string, StreamGrant>();
  readonly #o: InternalPublishesOptions;

  constructor(options: InternalPublishesOptions) {
    this.#o = options;
  }

  /** An authorizer answering internal names from memory and every other name through `fallback`. */
  authorizer(fallback: PublishAuthorizer): PublishAuthorizer {
    return {
      authorize: async (attempt: PublishAttempt): Promise<StreamGrant> => {
        const grant = attempt.protocol === 'push' ? this.#grants.get(attempt.streamKey) : this.#rtmpGrants.get(attempt.streamKey);
        return grant ?? fallback.authorize(attempt);
      },
    };
  }

  /**
   * A one-time RTMP stream name (192 bits, base64url) that publishes with `grant`, as the
   * authorizer answered it for the real publisher: the WHIP bridge's ffmpeg publishes to the
   * gateway's own RTMP port under it (webrtc/), so the stream keeps its account, ladder,
   * recording, outputs and watermark without a configured key. Answered only for RTMP,
   * until `release()` (idempotent). The name is a secret: keep it off logs and command lines.
   */
  rtmpGrant(grant: StreamGrant): { name: string; release(): void } {
    const name = randomBytes(24).toString('base64url');
    this.#rtmpGrants.set(name, grant);
    return { name, release: () => { this.#rtmpGrants.delete(name); } };
  }

  /** Opens an internal stream (its grant lives until {@link InternalStream.end}). */
  open(grant: InternalGrant): InternalStream {
    const name = randomBytes(24).toString('base64url');
    this.#grants.set(name, {
      manifestID: grant.manifestID, profiles: grant.profiles,
      ...(grant.accountID !== undefined ? { accountID: grant.accountID } : {}),
      ...(grant.record !== undefined ? { record: grant.record } : {}),
      ...(grant.explicitLadder !== undefined ? { explicitLadder: grant.explicitLadder } : {}),
      // An AI output carries no watermark or restream targets of its input.
      watermark: false,
    });
    const o = this.#o;
    const log = o.logger.child({ manifestID: grant.manifestID });
    const concurrency = o.concurrency ?? 2;
    const maxQueued = o.maxQueued ?? 8;
    const queue: { seq: number; bytes: Buffer }[] = [];
    const running = new Set<Promise<void>>();
    let seq = 0;
    let ended: Promise<void> | undefined;
    let dropped = 0;

    const pushOne = async (item: { seq: number; bytes: Buffer }): Promise<void> => {
      const base = join(o.workDir, `${o.scratchPrefix}${randomBytes(8).toString('hex')}`);
      try {
        await mkdir(o.workDir, { recursive: true });
        await writeFile(`${base}.ts`, item.bytes);
        await o.push({
          streamName: name, seq: item.seq, container: 'ts', bodyPath: `${base}.ts`, scratchTsPath: `${base}.remux.ts`,
          sha256: createHash('sha256').update(item.bytes).digest('hex'), url: `internal:live/${grant.manifestID}/${item.seq}.ts`,
        });
      } catch (err) {
        log.warn({ seq: item.seq, err: (err as Error).message }, 'internal push of a segment failed');
      } finally {
        await unlink(`${base}.ts`).catch(() => undefined);
        await unlink(`${base}.remux.ts`).catch(() => undefined);
      }
    };
    const pump = (): void => {
      while (running.size < concurrency && queue.length > 0) {
        const p = pushOne(queue.shift()!).finally(() => {
          running.delete(p);
          pump();
        });
        running.add(p);
      }
    };
    return {
      write: (bytes: Buffer): void => {
        if (ended) return;
        queue.push({ seq: seq++, bytes });
        if (queue.length > maxQueued) {
          queue.shift();
          dropped += 1;
          log.warn({ dropped }, 'internal stream behind: oldest waiting segment dropped');
        }
        pump();
      },
      end: (reason: string): Promise<void> => {
        ended ??= (async () => {
          // The queued segments are pushed first, then the stream ends.
          while (running.size > 0 || queue.length > 0) {
            pump();
            await Promise.all([...running]);
          }
          await o.stop(grant.manifestID, reason).catch((err: Error) => log.warn({ err: err.message }, 'cannot end an internal stream'));
          this.#grants.delete(name);
        })();
        return ended;
      },
    };
  }
}
