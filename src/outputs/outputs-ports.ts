/**
 * What the outputs feature needs from elsewhere, implemented by other folders and passed in
 * by the composition root (src/gateway-role.ts).
 */
import type { RenditionPlan } from '../domain/profile.ts';
import type { OutputSpec, OutputStatus } from './output-types.ts';

/** The desired outputs and their states (outputs-store.ts `RedisOutputs` fits). */
export interface OutputsStore {
  reset(manifestID: string, specs: readonly OutputSpec[]): Promise<void>;
  add(manifestID: string, spec: OutputSpec, maxPerStream: number): Promise<boolean>;
  remove(manifestID: string, id: string): Promise<boolean>;
  list(manifestID: string): Promise<{ spec: OutputSpec; status?: OutputStatus }[]>;
  setStates(manifestID: string, states: ReadonlyMap<string, OutputStatus>): Promise<void>;
  expire(manifestID: string, keepS: number): Promise<void>;
}

/** Fields every output event carries; `url` redacted (domain/output-target.ts redactOutputUrl). */
interface OutputEventBase { manifestID: string; session: string; outputId: string; url: string; rendition: string }

/** The output events (events/events.ts `EventSink` fits). Fire-and-forget. */
export interface OutputEvents {
  emit(event:
    | ({ type: 'output.started' } & OutputEventBase)
    | ({ type: 'output.failed'; reason: string; retryInMs: number } & OutputEventBase)
    | ({ type: 'output.ended'; reason: string } & OutputEventBase)): void;
}

/** What the outputs API reads of a stream (hls/segment-index-store.ts `RedisSegmentIndex` fits). */
export interface OutputsStreamIndex {
  getStream(manifestID: string): Promise<{ state: 'live' | 'ended'; renditions: readonly RenditionPlan[] } | undefined>;
}
