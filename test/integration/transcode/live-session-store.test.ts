import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { redisConnectionsForSuite } from '../../helpers/suite-setup.ts';
import { RedisConnections } from '../../../src/redis/connections.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RedisLiveSessions, type LiveSessionRecord } from '../../../src/transcode/live-session-store.ts';
import { PRESETS } from '../../../src/domain/profile.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const testRedis = redisConnectionsForSuite('mediagate:test');
let sessions: RedisLiveSessions;
const keys = new RedisKeys('mgtest');

before(async () => {
  await testRedis.ready;
  sessions = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys });
});

function record(manifestID: string, session = 's1'): LiveSessionRecord {
  return { manifestID, session, profiles: [PRESETS['P360p30fps16x9']!], accountID: 'acct', segmentTargetMs: 2000, openedAtMs: Date.now() };
}

test('of transcoders racing for an open session exactly one owns it; the record and source travel with the claim', async () => {
  // Five transcoders: five connections to one Redis, each with its own store.
  const others = Array.from({ length: 5 }, (_, i) => new RedisConnections({ url: testRedis.server.url, logger: silentLogger(), namePrefix: `mediagate:t${i}` }));
  try {
    const stores = others.map((c) => new RedisLiveSessions({ redis: c.open('state'), keys }));
    await Promise.all(others.map((c) => c.ready('state', 5000)));
    const doubles: number[] = [];
    for (let n = 0; n < 50; n++) {
      await sessions.open(record(`race${n}`));
      await sessions.setSource(`race${n}`, 's1', { video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } });
      const claims = await Promise.all(stores.map((s, i) => s.claim(`race${n}`, 's1', `t${i}`, 10_000)));
      const won = claims.filter((c) => c.claim === 'ok');
      if (won.length !== 1) doubles.push(n);
      const ok = won[0];
      if (n === 0 && ok?.claim === 'ok') {
        assert.deepEqual(ok.session.record.profiles, [PRESETS['P360p30fps16x9']]);
        assert.equal(ok.session.record.accountID, 'acct');
        assert.equal(ok.session.nextSeq, 0);
        assert.equal(ok.session.endSeq, undefined);
        assert.equal(ok.session.takeover, false);
        assert.deepEqual(ok.session.source, { video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } });
      }
    }
    assert.deepEqual(doubles, [], 'sessions owned by several transcoders or none');
  } finally {
    await Promise.all(others.map((c) => c.close()));
  }
});

test('a lease not renewed expires and another transcoder takes the session over where it stood; the old owner can no longer renew or move it', async () => {
  await sessions.open(record('takeover'));
  const first = await sessions.claim('takeover', 's1', 'A', 300);
  assert.equal(first.claim, 'ok');
  assert.ok(!(await sessions.unowned(256)).some((s) => s.manifestID === 'takeover'), 'an owned session is not offered');
  assert.deepEqual(await sessions.renew('takeover', 's1', 'A', 300), { held: true });
  assert.equal(await sessions.progress('takeover', 's1', 'A', 5), true);
  assert.equal(await sessions.progress('takeover', 's1', 'A', 3), true, 'progress never goes back');
  assert.equal((await sessions.claim('takeover', 's1', 'B', 300)).claim, 'taken', 'a held lease is not taken');
  await new Promise((r) => setTimeout(r, 450));
  assert.ok((await sessions.unowned(256)).some((s) => s.manifestID === 'takeover'), 'an expired lease offers the session again');
  const second = await sessions.claim('takeover', 's1', 'B', 300);
  assert.ok(second.claim === 'ok');
  assert.equal(second.session.nextSeq, 5, 'the new owner resumes at the first seq not made');
  assert.equal(second.session.takeover, true);
  assert.deepEqual(await sessions.renew('takeover', 's1', 'A', 300), { held: false }, 'the old owner learns it lost the session');
  assert.equal(await sessions.progress('takeover', 's1', 'A', 9), false, 'the old owner cannot move the progress');
  assert.equal(await sessions.finish('takeover', 's1', 'A'), false, 'nor finish it');
  await sessions.end('takeover', 's1', 12);
  assert.deepEqual(await sessions.renew('takeover', 's1', 'B', 300), { held: true, endSeq: 12 }, 'the owner learns of the end with its renewal');
  assert.equal(await sessions.finish('takeover', 's1', 'B'), true);
  assert.equal((await sessions.claim('takeover', 's1', 'C', 300)).claim, 'gone');
  assert.deepEqual((await sessions.unowned()).filter((s) => s.manifestID === 'takeover'), []);
});

test('an owner whose lease expired while nobody took it (a Redis outage longer than the lease) takes it back with its next renewal', async () => {
  await sessions.open(record('outage'));
  assert.equal((await sessions.claim('outage', 's1', 'A', 200)).claim, 'ok');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await sessions.renew('outage', 's1', 'A', 200), { held: true });
  assert.equal((await sessions.claim('outage', 's1', 'B', 200)).claim, 'taken', 'A holds it again');
  assert.equal(await sessions.progress('outage', 's1', 'A', 4), true);
});

test('a released session is offered at once; a session whose record expired leaves the open set', async () => {
  await sessions.open(record('released'));
  assert.equal((await sessions.claim('released', 's1', 'A', 60_000)).claim, 'ok');
  assert.equal(await sessions.release('released', 's1', 'B'), false, 'only the owner releases');
  assert.equal(await sessions.release('released', 's1', 'A'), true);
  assert.ok((await sessions.unowned()).some((s) => s.manifestID === 'released'));
  const short = new RedisLiveSessions({ redis: testRedis.connections.open('state'), keys, sessionTtlMs: 200 });
  await short.open(record('abandoned'));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!(await sessions.unowned()).some((s) => s.manifestID === 'abandoned'));
  assert.equal(await testRedis.connections.open('state').zscore(keys.key('transcode', 'live-open'), 'abandoned:s1'), null);
});

test('transcoders advertise their slots until their heartbeat lapses', async () => {
  await sessions.advertise({ id: 'tA', slots: 2, used: 1 }, 300);
  await sessions.advertise({ id: 'tB', slots: 4, used: 0 }, 60_000);
  assert.deepEqual((await sessions.transcoders()).sort((a, b) => a.id.localeCompare(b.id)), [{ id: 'tA', slots: 2, used: 1 }, { id: 'tB', slots: 4, used: 0 }]);
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(await sessions.transcoders(), [{ id: 'tB', slots: 4, used: 0 }]);
  await sessions.withdraw('tB');
  assert.deepEqual(await sessions.transcoders(), []);
});

test('a ladder to fit to its source says so in the claimed record, and its source carries the measured bitrate', async () => {
  await sessions.open({ ...record('fitted'), fitToSource: true });
  const source = { video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' }, bitrateBps: 512_000 };
  await sessions.setSource('fitted', 's1', source);
  const claimed = await sessions.claim('fitted', 's1', 'tf', 10_000);
  assert.equal(claimed.claim, 'ok');
  assert.equal(claimed.claim === 'ok' && claimed.session.record.fitToSource, true);
  assert.deepEqual(claimed.claim === 'ok' && claimed.session.source, source);
  await sessions.open(record('as-set'));
  const plain = await sessions.claim('as-set', 's1', 'tf', 10_000);
  assert.equal(plain.claim === 'ok' && plain.session.record.fitToSource, undefined);
});
