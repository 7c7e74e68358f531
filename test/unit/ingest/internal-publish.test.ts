/**
 * Streams the gateway pushes to itself (src/ingest/internal-publish.ts): the in-memory grant
 * answers only pushes under its one-time name while the stream is open, every other name
 * goes to the configured authorizer; segments are pushed in order with their bytes and a
 * scratch file that is removed afterwards; end() pushes what is queued, then ends the stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger } from '../../../src/log/logger.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { InternalPublishes } from '../../../src/ingest/internal-publish.ts';
import type { PushedSegment } from '../../../src/ingest/push-session.ts';

test('internal streams: a one-time push grant, ordered pushes from scratch files, end after the queue', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-internal-'));
  const pushed: { name: string; seq: number; bytes: string; sha: boolean; file: string }[] = [];
  const stopped: string[] = [];
  const internal = new InternalPublishes({
    push: async (s: PushedSegment) => {
      const bytes = readFileSync(s.bodyPath);
      pushed.push({ name: s.streamName, seq: s.seq, bytes: bytes.toString(), sha: s.sha256 === createHash('sha256').update(bytes).digest('hex'), file: s.bodyPath });
      await delay(10);
      return { manifestID: 'cam-out', seq: s.seq, renditions: [], replayed: false };
    },
    stop: async (manifestID, reason) => { stopped.push(`${manifestID}: ${reason}`); return true; },
    workDir: dir, scratchPrefix: 'push-test-', logger: silentLogger(), concurrency: 1,
  });
  const authorizer = internal.authorizer({ authorize: async () => { throw new GatewayError('PUBLISH_DENIED', 'unknown key'); } });
  try {
    const stream = internal.open({ manifestID: 'cam-out', accountID: 'acct', profiles: [], record: true });
    for (const s of ['s0', 's1', 's2']) stream.write(Buffer.from(s));
    for (let i = 0; i < 50 && pushed.length === 0; i++) await delay(5);
    const name = pushed[0]!.name;
    assert.match(name, /^[A-Za-z0-9_-]{32}$/, 'a valid stream name of 192 random bits');
    assert.deepEqual(await authorizer.authorize({ streamKey: name, url: 'x', protocol: 'push' }), { manifestID: 'cam-out', profiles: [], accountID: 'acct', record: true, watermark: false });
    await assert.rejects(authorizer.authorize({ streamKey: name, url: 'x', protocol: 'rtmp' }), /unknown key/, 'never for an RTMP publish');
    await assert.rejects(authorizer.authorize({ streamKey: 'cam-out', url: 'x', protocol: 'push' }), /unknown key/, 'the manifest ID is not the name');
    await stream.end('session ended');
    assert.deepEqual(pushed.map((p) => [p.seq, p.bytes, p.sha, p.name === name]), [[0, 's0', true, true], [1, 's1', true, true], [2, 's2', true, true]]);
    assert.deepEqual(stopped, ['cam-out: session ended']);
    assert.ok(pushed.every((p) => !existsSync(p.file)), 'scratch files removed');
    await assert.rejects(authorizer.authorize({ streamKey: name, url: 'x', protocol: 'push' }), /unknown key/, 'the grant is gone after the end');
    stream.write(Buffer.from('late'));
    assert.equal(pushed.length, 3, 'nothing is pushed after the end');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a WHIP publish\'s one-time RTMP grant: answers only RTMP publishes under its name, with the grant given, until released', async () => {
  const internal = new InternalPublishes({
    push: async () => { throw new Error('no push here'); }, stop: async () => true,
    workDir: tmpdir(), scratchPrefix: 'push-test-', logger: silentLogger(),
  });
  const authorizer = internal.authorizer({ authorize: async () => { throw new GatewayError('PUBLISH_DENIED', 'unknown key'); } });
  const grant = { manifestID: 'cam', profiles: [], accountID: 'acct', record: true, outputs: [{ url: 'rtmp://example.net/app/target-key', rendition: 'source' }] };
  const first = internal.rtmpGrant(grant);
  const second = internal.rtmpGrant(grant);
  assert.match(first.name, /^[A-Za-z0-9_-]{32}$/, 'a valid stream name of 192 random bits');
  assert.notEqual(first.name, second.name);
  assert.deepEqual(await authorizer.authorize({ streamKey: first.name, url: 'x', protocol: 'rtmp' }), grant, 'the grant as the authorizer gave it');
  await assert.rejects(authorizer.authorize({ streamKey: first.name, url: 'x', protocol: 'push' }), /unknown key/, 'never for a push');
  await assert.rejects(authorizer.authorize({ streamKey: 'cam', url: 'x', protocol: 'rtmp' }), /unknown key/, 'the manifest ID is not the name');
  first.release();
  first.release();
  await assert.rejects(authorizer.authorize({ streamKey: first.name, url: 'x', protocol: 'rtmp' }), /unknown key/, 'gone once released');
  assert.equal((await authorizer.authorize({ streamKey: second.name, url: 'x', protocol: 'rtmp' })).manifestID, 'cam', 'the other name still holds');
});
