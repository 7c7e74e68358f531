/**
 * In-memory stand-ins for LiveIngest's ports, for unit tests of ingest rules: every port a
 * test does not name either does nothing (stream bookkeeping) or throws "not used in this
 * test" (media and queue work), so a test states only the ports its rule exercises.
 */
import { EventEmitter } from 'node:events';
import { StaticKeyAuthorizer, type IngestIndex, type LiveIngestOptions, type PushClaims, type SegmenterHandle } from '../../src/ingest/live-ingest.ts';
import { silentLogger } from '../../src/log/logger.ts';

/** A port that the test at hand must never reach. */
export const notUsed = async (): Promise<never> => { throw new Error('not used in this test'); };

/** A segmenter that ends (reason `stopped`, exit 255) on its first stop and counts stops. */
export class FakeSegmenter extends EventEmitter implements SegmenterHandle {
  stops = 0;
  starts = 0;
  start(): void {
    this.starts += 1;
  }
  async stop(): Promise<void> {
    this.stops += 1;
    if (this.stops === 1) this.emit('end', { reason: 'stopped', exitCode: 255 });
  }
}

/** An index that accepts stream bookkeeping and refuses push gaps. */
export function bookkeepingIndex(overrides: Partial<IngestIndex> = {}): IngestIndex {
  return {
    startStream: async () => undefined,
    setRenditions: async () => undefined,
    endStream: async () => undefined,
    record: async () => ({ accepted: true, listed: 0 }),
    getStream: async () => undefined,
    resolvePushGap: notUsed,
    ...overrides,
  };
}

/** Push claims that refuse every call. */
export function unusedPushClaims(overrides: Partial<PushClaims> = {}): PushClaims {
  return { claimPush: notUsed, settlePush: notUsed, pushState: notUsed, ...overrides };
}

/** LiveIngest options of stand-ins (anonymous keys, empty ladder, `local` account), with `overrides` applied. */
export function ingestOptions(overrides: Partial<LiveIngestOptions> = {}): LiveIngestOptions {
  return {
    logger: silentLogger(),
    authorizer: new StaticKeyAuthorizer([], []),
    index: bookkeepingIndex(),
    pushClaims: unusedPushClaims(),
    queue: { enqueue: notUsed, enqueueAndWait: notUsed },
    storage: { putFile: notUsed },
    probe: { probe: notUsed },
    remuxer: { toMpegTs: notUsed },
    events: { emit: () => undefined },
    startSegmenter: () => new FakeSegmenter(),
    kickPublisher: () => undefined,
    publicUrl: 'http://127.0.0.1:1',
    segmentTargetMs: 2000,
    pushIdleTimeoutMs: 60_000,
    pushReplyTimeoutMs: 10_000,
    defaultAccountID: 'local',
    onInsufficientBalance: 'end',
    ...overrides,
  };
}
