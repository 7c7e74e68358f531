/**
 * LiveIngest and the cluster-wide stream lease, with in-memory stand-ins for the lease store,
 * index and segmenter: a publish of a manifest ID held elsewhere is refused before any state
 * of the stream is touched; a publish whose lease is free and whose stream is still live in
 * the index continues that session (seqs going on, a discontinuity at the join); a stream
 * whose lease another owner took ends here without touching the shared state; a stream that
 * ends releases its lease.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveIngest, StaticKeyAuthorizer, type LiveIngestOptions, type StreamLeases } from '../../../src/ingest/live-ingest.ts';
import { parseLadder } from '../../../src/domain/profile.ts';
import { bookkeepingIndex, fakeSegmenters, type FakeSegmenter, ingestOptions } from '../../helpers/ingest-stand-ins.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import type { SegmentOutcome } from '../../../src/domain/segment.ts';

/** Leases in a Map (no expiry): `holders` maps manifest ID → owner. */
function memoryLeases(holders = new Map<string, string>()): StreamLeases & { holders: Map<string, string> } {
  return {
    holders,
    acquire: async (m, owner) => {
      const h = holders.get(m);
      if (h !== undefined && h !== owner) return { acquired: false, holder: h, remainingMs: 4000 };
      holders.set(m, owner);
      return { acquired: true };
    },
    renew: async (held) => held.filter((h) => holders.get(h.manifestID) !== h.owner),
    release: async (m, owner) => {
      if (holders.get(m) !== owner) return false;
      holders.delete(m);
      return true;
    },
  };
}

interface Calls { started: string[]; ended: string[]; opened: string[]; recorded: SegmentOutcome[] }

function makeIngest(leases: StreamLeases, overrides: Partial<LiveIngestOptions> = {}): { ingest: LiveIngest; segmenters: FakeSegmenter[]; calls: Calls } {
  const { segmenters, startSegmenter } = fakeSegmenters();
  const calls: Calls = { started: [], ended: [], opened: [], recorded: [] };
  const ingest = new LiveIngest(ingestOptions({
    leases, memberId: 'gw-b', leaseTtlMs: 5000,
    index: bookkeepingIndex({
      startStream: async (m) => { calls.started.push(m); },
      endStream: async (m) => { calls.ended.push(m); },
      record: async (_m, _s, outcome) => { calls.recorded.push(outcome); return { accepted: true, listed: 1 }; },
      resumeStream: async () => undefined,
    }),
    sessions: { opened: async (s) => { calls.opened.push(s.manifestID); } },
    startSegmenter,
    unpublishGraceMs: 50,
    ...overrides,
  }));
  return { ingest, segmenters, calls };
}

test('a publish of a manifest ID whose lease another gateway holds is refused (STREAM_BUSY) and touches nothing of the stream', async () => {
  const leases = memoryLeases(new Map([['cam', 'gw-a']]));
  const { ingest, segmenters, calls } = makeIngest(leases);
  await assert.rejects(ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam'),
    (err: unknown) => err instanceof GatewayError && err.code === 'STREAM_BUSY' && /another gateway or push session/.test(err.message));
  assert.deepEqual(calls, { started: [], ended: [], opened: [], recorded: [] }, 'no index, recording or session state was written');
  assert.equal(segmenters.length, 0, 'no segmenter');
  assert.equal(leases.holders.get('cam'), 'gw-a', 'the holder keeps its lease');
  assert.deepEqual(ingest.list(), []);
});

test('a push of a manifest ID held by a gateway is refused as well, and an RTMP publish of one held by a push session', async () => {
  const leases = memoryLeases(new Map([['cam', 'gw-a'], ['pushed', 'push:s1']]));
  const { ingest } = makeIngest(leases);
  await assert.rejects(ingest.publish('conn-1', 'pushed', 'rtmp://127.0.0.1:1935/live/pushed'), (err: unknown) => err instanceof GatewayError && err.code === 'STREAM_BUSY');
  await assert.rejects(ingest.push({
    streamName: 'cam', seq: 0, container: 'ts', bodyPath: '/nonexistent', sha256: 'x', url: 'http://127.0.0.1/live/cam/0.ts', scratchTsPath: '/nonexistent.ts',
  }), (err: unknown) => err instanceof GatewayError && err.code === 'STREAM_BUSY');
});

test('a publish takes the lease as this gateway and releases it when the stream ends', async () => {
  const leases = memoryLeases();
  const { ingest, calls } = makeIngest(leases);
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  assert.equal(leases.holders.get('cam'), 'gw-b');
  assert.deepEqual(calls.started, ['cam']);
  await ingest.unpublish('conn-1');
  assert.deepEqual(calls.ended, ['cam']);
  assert.equal(leases.holders.has('cam'), false, 'released');
});

test('a publish refused for another reason after the lease was taken gives the lease back', async () => {
  const leases = memoryLeases();
  const { ingest } = makeIngest(leases, { billing: { standing: async () => 'no-credits', reserveSegment: async () => false } as unknown as LiveIngestOptions['billing'] });
  await assert.rejects(ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam'), (err: unknown) => err instanceof GatewayError && err.code === 'INSUFFICIENT_BALANCE');
  assert.equal(leases.holders.has('cam'), false);
});

test('a reconnect to a stream still live in the index continues its session: seqs go on from the index, a discontinuity at the join, no new session', async () => {
  const leases = memoryLeases();
  const { ingest, segmenters, calls } = makeIngest(leases, {
    index: {
      ...bookkeepingIndex(),
      startStream: async (m) => { calls.started.push(m); },
      record: async (_m, session, outcome) => { calls.recorded.push({ ...outcome, session } as unknown as SegmentOutcome); return { accepted: true, listed: 1 }; },
      resumeStream: async () => ({ session: 'old-session', nextSeq: 7 }),
    },
    storage: { putFile: async () => ({ sizeBytes: 1000 }) },
  });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  assert.deepEqual(calls.started, [], 'no new session in the index');
  assert.deepEqual(calls.opened, [], 'the recording session is the old one');
  assert.equal(ingest.list()[0]!.session, 'old-session');
  const probed = { video: { codec: 'h264', width: 640, height: 360, frames: 48 }, audio: undefined, durationMs: 2000, codecs: 'avc1.64001e', frameRate: 24 };
  for (const seq of [0, 1]) segmenters[0]!.emit('segment', { seq, path: `/nonexistent/${seq}.ts`, durationMs: 2000, probed });
  await new Promise((r) => setTimeout(r, 50));
  const listed = calls.recorded.map((o) => ({ seq: o.seq, discontinuity: o.status === 'ok' && o.discontinuity === true, session: (o as unknown as { session: string }).session }));
  assert.deepEqual(listed, [
    { seq: 7, discontinuity: true, session: 'old-session' },
    { seq: 8, discontinuity: false, session: 'old-session' },
  ]);
});

test('a stream whose lease another owner took stops here without ending the stream in the index or releasing the new holder\'s lease', async () => {
  const leases = memoryLeases();
  const { ingest, segmenters, calls } = makeIngest(leases);
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  leases.holders.set('cam', 'gw-c');
  await ingest.renewLeases();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(segmenters[0]!.stops, 1, 'stopped');
  assert.deepEqual(ingest.list(), []);
  assert.deepEqual(calls.ended, [], 'the index entry belongs to the new holder');
  assert.equal(leases.holders.get('cam'), 'gw-c');
  assert.deepEqual(ingest.held(), []);
});

test('the transcode job of the join of a resumed stream asks for a discontinuity in its renditions; the next ones do not', async () => {
  const jobs: { seq: number; discontinuity?: boolean }[] = [];
  const { ingest, segmenters } = makeIngest(memoryLeases(), {
    authorizer: new StaticKeyAuthorizer([], parseLadder(['P144p30fps16x9'])),
    index: { ...bookkeepingIndex(), record: async () => ({ accepted: true, listed: 1 }), resumeStream: async () => ({ session: 'old-session', nextSeq: 7 }) },
    storage: { putFile: async () => ({ sizeBytes: 1000 }) },
    queue: { enqueue: async (job) => { jobs.push(job); }, enqueueAndWait: async () => { throw new Error('not used'); } },
  });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  const probed = { video: { codec: 'h264', width: 640, height: 360, frames: 48 }, audio: undefined, durationMs: 2000, codecs: 'avc1.64001e', frameRate: 24 };
  for (const seq of [0, 1]) segmenters[0]!.emit('segment', { seq, path: `/nonexistent/${seq}.ts`, durationMs: 2000, probed });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(jobs.map((j) => ({ seq: j.seq, discontinuity: j.discontinuity === true })), [{ seq: 7, discontinuity: true }, { seq: 8, discontinuity: false }]);
});
