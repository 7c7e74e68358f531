import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IndexSweeper, type SweptIndex } from '../../../src/hls/index-sweeper.ts';
import { silentLogger } from '../../../src/log/logger.ts';

function fakeIndex(): SweptIndex & { sweeps: (boolean | undefined)[]; failRenew: boolean; lost: { manifestID: string; session: string }[] } {
  const fake = {
    sweeps: [] as (boolean | undefined)[],
    failRenew: false,
    lost: [] as { manifestID: string; session: string }[],
    async renewHeartbeats() {
      if (fake.failRenew) throw new Error('connect ECONNREFUSED');
      return fake.lost;
    },
    async sweep(_nowMs?: number, options?: { expireHeartbeats?: boolean }) {
      fake.sweeps.push(options?.expireHeartbeats);
      return { expired: [], resolved: [] };
    },
  };
  return fake;
}

test('after Redis was unreachable, no heartbeat is expired until holders had a full TTL to renew', async () => {
  const index = fakeIndex();
  const sweeper = new IndexSweeper({
    index, logger: silentLogger(), held: () => [], onLost: () => undefined, heartbeatIntervalMs: 1000, sweepIntervalMs: 1000, heartbeatTtlMs: 300,
  });
  await sweeper.sweep();
  index.failRenew = true;
  await sweeper.renew();
  index.failRenew = false;
  await sweeper.sweep();
  await new Promise((r) => setTimeout(r, 400));
  await sweeper.sweep();
  assert.deepEqual(index.sweeps, [true, false, true]);
  await sweeper.close();
});

test('a held stream found ended elsewhere is handed back with its session; close() stops the timers and is idempotent', async () => {
  const index = fakeIndex();
  index.lost = [{ manifestID: 'm', session: 's1' }];
  const lost: { manifestID: string; session: string }[] = [];
  const sweeper = new IndexSweeper({
    index, logger: silentLogger(), held: () => [{ manifestID: 'm', session: 's1' }], onLost: (s) => lost.push(s),
    heartbeatIntervalMs: 20, sweepIntervalMs: 20, heartbeatTtlMs: 1000,
  });
  sweeper.start();
  await new Promise((r) => setTimeout(r, 120));
  await sweeper.close();
  await sweeper.close();
  assert.ok(lost.length > 0 && lost.every((s) => s.manifestID === 'm' && s.session === 's1'));
  const sweeps = index.sweeps.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(index.sweeps.length, sweeps, 'no sweep after close()');
});

test('each heartbeat tick renews the ownership leases beside the index heartbeats, even when the index renewal fails', async () => {
  const index = fakeIndex();
  let ownership = 0;
  const sweeper = new IndexSweeper({
    index, logger: silentLogger(), held: () => [], onLost: () => undefined, heartbeatIntervalMs: 1000, sweepIntervalMs: 1000, heartbeatTtlMs: 3000,
    renewOwnership: async () => { ownership += 1; },
  });
  await sweeper.renew();
  index.failRenew = true;
  await sweeper.renew();
  assert.equal(ownership, 2);
  await sweeper.close();
});
