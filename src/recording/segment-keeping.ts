/**
 * Keeps the segments of recorded sessions as they are listed: wraps the segment index's
 * `record` (what ingest calls for a source segment and the transcode results for each
 * rendition) so each delivered segment is first kept in the recording store (a no-op unless
 * its session is recorded and open), then recorded in the index; a segment the index refuses
 * (its seq was already skipped) is dropped again. Keeping first means a session the index
 * calls complete has every listed segment kept, whichever gateway or transcoder listed it.
 */
import type { SegmentOutcome } from '../domain/segment.ts';
import type { RecordingStore } from './recording-store.ts';

/** The index operation wrapped. */
export interface RecordingIndex {
  record(manifestID: string, session: string, outcome: SegmentOutcome): Promise<{ readonly accepted: boolean }>;
}

/**
 * The same index, with `record` keeping recorded segments; every other member is the
 * original's (bound to it).
 */
export function keepingRecordedSegments<T extends RecordingIndex>(index: T, store: Pick<RecordingStore, 'keepSegment' | 'dropSegment'>): T {
  const record = async (manifestID: string, session: string, outcome: SegmentOutcome): Promise<Awaited<ReturnType<T['record']>>> => {
    if (outcome.status === 'ok') {
      const s = outcome.segment;
      await store.keepSegment(manifestID, session, s.rendition, {
        seq: outcome.seq, durationMs: s.durationMs, discontinuity: outcome.discontinuity === true, bytes: s.bytes,
        width: s.width, height: s.height, codecs: s.codecs, frameRate: s.frameRate,
      });
    }
    const result = await index.record(manifestID, session, outcome) as Awaited<ReturnType<T['record']>>;
    if (outcome.status === 'ok' && !result.accepted) await store.dropSegment(manifestID, session, outcome.segment.rendition, outcome.seq);
    return result;
  };
  return new Proxy(index, {
    get(target, property) {
      if (property === 'record') return record;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
