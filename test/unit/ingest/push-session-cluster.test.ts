/**
 * Push sessions shared by gateways (src/ingest/push-session.ts over a PushSessionStore): two
 * LiveIngest instances (two gateways) on one push sessions store and one segment index, with
 * in-memory stand-ins. Pushes of one stream alternating between them are one session, opened
 * and authorized once, and its idle end runs once, on one of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveIngest, type LiveIngestOptions, type PublishAuthorizer, type StreamGrant } from '../../../src/ingest/live-ingest.ts';
import { bookkeepingIndex, ingestOptions, MemoryPushSessions, unusedPushClaims } from '../../helpers/ingest-stand-ins.ts';
import { parseLadder } from '../../../src/domain/profile.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

function cluster(idleMs: number): { gateways: [LiveIngest, LiveIngest]; started: string[]; ended: { session: string; endSeq: number }[]; events: string[]; authorized: number; listedSessions: string[]; claims: Set<string> } {
  const sessions = new MemoryPushSessions();
  const started: string[] = [];
  const ended: { session: string; endSeq: number }[] = [];
  const listedSessions: string[] = [];
  const events: string[] = [];
  const state = { authorized: 0 };
  const authorizer: PublishAuthorizer = {
    authorize: async ({ streamKey }): Promise<StreamGrant> => {
      state.authorized += 1;
      return { manifestID: streamKey, profiles: parseLadder(['P144p30fps16x9']) };
    },
  };
  const index = bookkeepingIndex({
    startStream: async (_m, session) => { started.push(session); },
    endStream: async (_m, session, endSeq) => { ended.push({ session, endSeq }); },
    record: async (_m, session) => { listedSessions.push(session); return { accepted: true, listed: 1 }; },
    resolvePushGap: async () => undefined,
  });
  const claims = new Set<string>();
  const options = (): LiveIngestOptions => ingestOptions({
    authorizer, index, pushSessions: sessions, pushIdleTimeoutMs: idleMs,
    pushClaims: unusedPushClaims({
      claimPush: async (_m, session, seq) => {
        const key = `${session}/${seq}`;
        if (claims.has(key)) return { claim: 'same', state: 'done', result: '[]' };
        claims.add(key);
        return { claim: 'new' };
      },
      settlePush: async () => undefined,
    }),
    storage: { putFile: async () => ({ sizeBytes: 1000 }) },
    probe: { probe: async () => ({ video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, frames: 48, codec: 'h264' }, codecs: 'avc1.64001e', frameRate: 24, durationMs: 2000 }) },
    queue: { enqueue: async () => undefined, enqueueAndWait: async (job) => ({ manifestID: job.manifestID, seq: job.seq, renditions: [], elapsedMs: 1 }) },
    events: { emit: (e) => { if (e.type === 'stream.started' || e.type === 'stream.ended') events.push(e.type); } },
  });
  return {
    gateways: [new LiveIngest(options()), new LiveIngest(options())], started, ended, events, listedSessions, claims,
    get authorized() { return state.authorized; },
  };
}

function segment(seq: number): Parameters<LiveIngest['push']>[0] {
  return {
    streamName: 'lbcam', seq, container: 'ts', bodyPath: '/nonexistent/body.ts', sha256: String(seq).repeat(64).slice(0, 64),
    url: `http://127.0.0.1:1/live/lbcam/${seq}.ts`, scratchTsPath: '/nonexistent/scratch.ts',
  };
}

test('pushes of one stream alternating between two gateways are one session: opened and authorized once, every segment listed in it, ended once', async () => {
  const idleMs = 150;
  const c = cluster(idleMs);
  for (let seq = 0; seq < 6; seq++) {
    const outcome = await c.gateways[seq % 2]!.push(segment(seq));
    assert.equal(outcome.manifestID, 'lbcam');
  }
  assert.equal(c.started.length, 1, 'one session started in the index');
  assert.equal(c.authorized, 1, 'authorized once, by the gateway of the first push');
  assert.deepEqual(new Set(c.listedSessions), new Set(c.started), 'every segment listed in that session');
  assert.equal(c.listedSessions.length, 6);
  assert.deepEqual(c.gateways.map((g) => g.list().map((s) => s.session)), [c.started, c.started], 'both gateways hold the one session');
  await new Promise((r) => setTimeout(r, idleMs * 5));
  assert.deepEqual(c.ended, [{ session: c.started[0]!, endSeq: 6 }], 'the idle end ran once, with the end seq of both gateways\' pushes');
  assert.deepEqual(c.events, ['stream.started', 'stream.ended']);
  assert.deepEqual(c.gateways.map((g) => g.list().length), [0, 0], 'neither gateway keeps a handle of the ended session');
  await Promise.all(c.gateways.map((g) => g.close()));
});

test('a gateway that shuts down leaves the push session to the other one, which continues and ends it', async () => {
  const idleMs = 150;
  const c = cluster(idleMs);
  await c.gateways[0].push(segment(0));
  const closed = await c.gateways[0].close();
  assert.deepEqual(closed, [], 'no push session is ended at shutdown');
  assert.deepEqual(c.ended, []);
  await c.gateways[1].push(segment(1));
  assert.equal(c.started.length, 1, 'the push after the shutdown continues the session');
  await new Promise((r) => setTimeout(r, idleMs * 5));
  assert.deepEqual(c.ended, [{ session: c.started[0]!, endSeq: 2 }]);
  await c.gateways[1].close();
});

test('a push of a seq below the one that opened its session (pushed at the same time to another gateway) is refused with 400 before any claim or work', async () => {
  const c = cluster(60_000);
  await c.gateways[1].push(segment(1));
  await assert.rejects(c.gateways[0].push(segment(0)), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'INVALID_REQUEST');
    assert.equal(err.status, 400);
    assert.match(err.message, /segment 0 comes before segment 1, which opened this push session/);
    return true;
  });
  assert.deepEqual([...c.claims].map((k) => k.split('/')[1]), ['1'], 'seq 0 was never claimed, so never transcoded or charged');
  assert.equal(c.listedSessions.length, 1);
  await c.gateways[0].push(segment(2));
  assert.equal(c.started.length, 1, 'the session goes on');
  await Promise.all(c.gateways.map((g) => g.close()));
});
