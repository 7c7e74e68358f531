/**
 * The replay of a pending HTTP push (src/ingest/push-session.ts) with in-memory stand-ins for
 * the segment index, queue, store and probe: a retry of a push still running on this gateway
 * awaits its settlement in process and is answered the moment it settles, without polling the
 * claim; a pending claim no push here will settle is read again until it settles.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveIngest, StaticKeyAuthorizer, type IngestIndex, type PushClaims, type PushedSegment } from '../../../src/ingest/live-ingest.ts';
import { ingestOptions } from '../../helpers/ingest-stand-ins.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { parseLadder } from '../../../src/domain/profile.ts';
import type { RenditionSegment, TranscodeResult } from '../../../src/domain/segment.ts';

type Claim = { sha256: string; state: 'pending' | 'done' | 'failed'; result?: string };

/** A segment index holding push claims in memory; counts how often a claim's state is read. */
function memoryIndex(): IngestIndex & PushClaims & { claims: Map<string, Claim>; pushStateReads: number } {
  const claims = new Map<string, Claim>();
  const key = (session: string, seq: number): string => `${session}/${seq}`;
  const index = {
    claims,
    pushStateReads: 0,
    startStream: async () => undefined,
    setRenditions: async () => undefined,
    endStream: async () => undefined,
    record: async () => ({ accepted: true, listed: 0 }),
    resolvePushGap: async () => undefined,
    getStream: async () => undefined,
    claimPush: async (_m: string, session: string, seq: number, sha256: string) => {
      const claim = claims.get(key(session, seq));
      if (!claim) {
        claims.set(key(session, seq), { sha256, state: 'pending' });
        return { claim: 'new' as const };
      }
      if (claim.sha256 !== sha256) return { claim: 'conflict' as const };
      return { claim: 'same' as const, state: claim.state, ...(claim.result !== undefined ? { result: claim.result } : {}) };
    },
    settlePush: async (_m: string, session: string, seq: number, state: 'done' | 'failed', result: string) => {
      const claim = claims.get(key(session, seq))!;
      claim.state = state;
      claim.result = result;
    },
    pushState: async (_m: string, session: string, seq: number) => {
      index.pushStateReads += 1;
      const claim = claims.get(key(session, seq));
      return claim && { state: claim.state, ...(claim.result !== undefined ? { result: claim.result } : {}) };
    },
  };
  return index;
}

const RENDITIONS: RenditionSegment[] = [{ rendition: 'P144p30fps16x9', key: 'cam/P144p30fps16x9/0.ts', width: 256, height: 144, frames: 48, bytes: 1000, durationMs: 2000, codecs: 'avc1.42c00c', frameRate: 24 }];

function makeIngest(index: IngestIndex & PushClaims, transcode: () => Promise<TranscodeResult>): LiveIngest {
  const options = ingestOptions({
    authorizer: new StaticKeyAuthorizer([], parseLadder(['P144p30fps16x9'])),
    index,
    pushClaims: index,
    queue: { enqueue: async () => undefined, enqueueAndWait: () => transcode() },
    storage: { putFile: async () => ({ sizeBytes: 100_000 }) },
    probe: {
      probe: async () => ({
        video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, frames: 48, codec: 'h264', profile: 'High', pixelFormat: 'yuv420p' },
        audio: { codec: 'aac', profile: 'LC' }, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24, durationMs: 2000,
      }),
    },
    remuxer: { toMpegTs: async () => undefined },
    startSegmenter: () => { throw new Error('no RTMP in this test'); },
    pushReplyTimeoutMs: 30_000,
    defaultAccountID: undefined,
  });
  return new LiveIngest(options);
}

function pushed(seq: number, sha256: string): PushedSegment {
  return { streamName: 'cam', seq, container: 'ts', bodyPath: '/nonexistent/body.ts', sha256, url: 'http://127.0.0.1:1/live/cam/0.ts', scratchTsPath: '/nonexistent/scratch.ts' };
}

/** A transcode that finishes when the test says so. */
function heldTranscode(): { run: () => Promise<TranscodeResult>; started: Promise<void>; finish: (r: TranscodeResult) => void; fail: (err: Error) => void } {
  let started!: () => void;
  const startedP = new Promise<void>((r) => { started = r; });
  let finish!: (r: TranscodeResult) => void;
  let fail!: (err: Error) => void;
  const result = new Promise<TranscodeResult>((res, rej) => { finish = res; fail = rej; });
  return { run: () => { started(); return result; }, started: startedP, finish, fail };
}

/** Whether `p` is still pending after the event loop has run every timer-free step it can. */
async function stillPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  for (let i = 0; i < 20; i += 1) await new Promise((r) => setImmediate(r));
  return !settled;
}

test('a replay of a push still running on this gateway is answered as soon as it settles, without polling its claim', async () => {
  const index = memoryIndex();
  const transcode = heldTranscode();
  const ingest = makeIngest(index, transcode.run);
  try {
    const first = ingest.push(pushed(0, 'aa'));
    await transcode.started;
    const replay = ingest.push(pushed(0, 'aa'));
    assert.ok(await stillPending(replay), 'the replay waits while the push is pending');
    transcode.finish({ manifestID: 'cam', seq: 0, elapsedMs: 10, renditions: RENDITIONS });
    const [a, b] = await Promise.all([first, replay]);
    assert.deepEqual(a, { manifestID: 'cam', seq: 0, renditions: RENDITIONS, replayed: false });
    assert.deepEqual(b, { manifestID: 'cam', seq: 0, renditions: RENDITIONS, replayed: true });
    assert.equal(index.pushStateReads, 0, 'the replay never read the claim again (no poll)');
  } finally {
    await ingest.close();
  }
});

test('a replay of a push that fails on this gateway gets the same failure when it settles', async () => {
  const index = memoryIndex();
  const transcode = heldTranscode();
  const ingest = makeIngest(index, transcode.run);
  try {
    const first = ingest.push(pushed(0, 'bb'));
    await transcode.started;
    const replay = ingest.push(pushed(0, 'bb'));
    assert.ok(await stillPending(replay));
    transcode.fail(new GatewayError('UNDECODABLE_MEDIA', 'segment 0 cannot be decoded'));
    await assert.rejects(first, (err: GatewayError) => err.code === 'UNDECODABLE_MEDIA');
    await assert.rejects(replay, (err: GatewayError) => err.code === 'UNDECODABLE_MEDIA' && err.message === 'segment 0 cannot be decoded');
    assert.equal(index.pushStateReads, 0);
  } finally {
    await ingest.close();
  }
});

test('a pending claim no push on this gateway will settle (another gateway holds it) is read again until it settles', async () => {
  const index = memoryIndex();
  const ingest = makeIngest(index, async () => { throw new Error('not transcoded here'); });
  try {
    // Open the session with seq 0, then plant a pending claim for seq 1 as another gateway would leave it.
    await ingest.push(pushed(0, 'cc')).catch(() => undefined);
    const session = ingest.list()[0]!.session;
    index.claims.set(`${session}/1`, { sha256: 'dd', state: 'pending' });
    const replay = ingest.push(pushed(1, 'dd'));
    setTimeout(() => { void index.settlePush('cam', session, 1, 'done', JSON.stringify(RENDITIONS)); }, 300);
    assert.deepEqual(await replay, { manifestID: 'cam', seq: 1, renditions: RENDITIONS, replayed: true });
    assert.ok(index.pushStateReads >= 1, 'the claim was read again');
  } finally {
    await ingest.close();
  }
});
