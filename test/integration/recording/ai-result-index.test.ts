/**
 * The AI results' expiry through the results index (ai/result-index-store.ts), against a real
 * redis-server and a real filesystem results store (the flat layout the gateway uses): results
 * noted in the index are deleted once the TTL has passed and forgotten; results the index does
 * not hold (stored before it existed) are deleted by the full listing, at the first run and
 * then at most every half TTL; a run with many results kept neither lists nor stats them; and
 * gateways sweeping at once, or finding objects already gone, leave nothing behind and log no
 * failure.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { redisClientForSuite } from '../../helpers/suite-setup.ts';
import { createLogger } from '../../../src/log/logger.ts';
import type { Logger } from '../../../src/log/logger.ts';
import { FsObjectStore } from '../../../src/storage/fs-store.ts';
import { RecordingStore } from '../../../src/recording/recording-store.ts';
import { RedisKeys } from '../../../src/redis/keys.ts';
import { RecordingSweeper, type SweptIndex, type SweptResults } from '../../../src/recording/recording-sweeper.ts';
import { RedisResultIndex } from '../../../src/ai/result-index-store.ts';

const TTL_MS = 60_000;

const testRedis = redisClientForSuite();
let dir: string;
let counter = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mg-ai-result-index-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** No open session: the sweep's segment steps have nothing to do. */
const noSegments: SweptIndex = {
  getStream: async () => undefined,
  renditionStats: async () => ({ frontier: 0 }),
  sessionComplete: async () => true,
};
const noObjects = { putBytes: async () => undefined, deleteKeys: async () => undefined, deletePrefix: async () => undefined };

/** A deployment of its own: a key prefix, a results directory, the index. */
function deployment(): { prefix: string; keys: RedisKeys; root: string; results: FsObjectStore; index: RedisResultIndex } {
  const prefix = `ri${++counter}`;
  const keys = new RedisKeys(prefix);
  const root = join(dir, prefix, '.results');
  return { prefix, keys, root, results: new FsObjectStore(root, { layout: 'flat' }), index: new RedisResultIndex({ redis: testRedis.client, keys }) };
}

/** A gateway's sweep over a deployment; `lockPrefix` apart gives it locks of its own (to run at once with another). */
function sweeper(d: { keys: RedisKeys; results: SweptResults; index?: RedisResultIndex }, logger: Logger = createLogger({ level: 'silent' }), lockPrefix?: string): RecordingSweeper {
  return new RecordingSweeper({
    store: new RecordingStore({ redis: testRedis.client, keys: lockPrefix ? new RedisKeys(lockPrefix) : d.keys }),
    index: noSegments, objects: noObjects, results: d.results, ...(d.index ? { resultIndex: d.index } : {}),
    events: { emit: () => undefined }, logger, publicUrl: 'http://gw',
    sweepIntervalMs: 5000, windowSegments: 2, marginSegments: 1, endedKeepMs: 60_000, recordingKeepMs: 0, resultTtlMs: TTL_MS, segmentTargetMs: 2000,
  });
}

/** Lets the next run of this deployment's sweep do the results step again (its per-period lock gone). */
async function nextPeriod(prefix: string, options: { listing?: boolean } = {}): Promise<void> {
  await testRedis.client.del(`${prefix}:rec:lock:ai-results`);
  if (options.listing) await testRedis.client.del(`${prefix}:rec:lock:ai-results-listing`);
}

const requestID = (n: number): string => `ai-${n.toString(16).padStart(24, '0')}`;

/** Stores a result as the AI routes do and notes it in the index as stored at `storedAtMs`. */
async function storeNoted(d: ReturnType<typeof deployment>, n: number, storedAtMs: number): Promise<string> {
  const key = `${requestID(n)}/0.png`;
  await d.results.putBytes(key, Buffer.from(`png ${n}`), { newKey: true });
  await d.index.add([key], storedAtMs);
  return key;
}

const fileOf = (d: { root: string }, key: string): string => join(d.root, key.replace('/', '+'));

async function indexed(d: { prefix: string }): Promise<string[]> {
  return (await testRedis.client.zrange(`${d.prefix}:ai:results`, '0', '-1')).sort();
}

test('results noted in the index are deleted once the TTL has passed and forgotten; younger ones stay', async () => {
  const d = deployment();
  const nowMs = Date.now();
  // Their files are new (mtime now): only the index can tell they are past the TTL.
  const old = [await storeNoted(d, 1, nowMs - TTL_MS - 1000), await storeNoted(d, 2, nowMs - TTL_MS - 1), await storeNoted(d, 3, nowMs - TTL_MS - 5000)];
  const young = [await storeNoted(d, 4, nowMs - TTL_MS + 10_000), await storeNoted(d, 5, nowMs)];
  await sweeper(d).sweep({ force: true });
  for (const key of old) assert.equal(existsSync(fileOf(d, key)), false, `${key} past the TTL is deleted`);
  for (const key of young) assert.equal(existsSync(fileOf(d, key)), true, `${key} within the TTL is kept`);
  assert.deepEqual(await indexed(d), young.sort(), 'the deleted results are forgotten by the index');
  assert.equal((await d.results.getStream(old[0]!)), undefined);
});

test('results stored before the index (files only) still expire: the first run lists the store, then a listing runs at most every half TTL', async () => {
  const d = deployment();
  const past = (Date.now() - TTL_MS - 60_000) / 1000;
  const write = (n: number, mtimeS?: number): string => {
    const key = `${requestID(n)}/0.png`;
    writeFileSync(fileOf(d, key), `png ${n}`);
    if (mtimeS !== undefined) utimesSync(fileOf(d, key), mtimeS, mtimeS);
    return key;
  };
  await d.results.check();
  const before1 = write(11, past);
  const before2 = write(12, past);
  const fresh = write(13);
  const s = sweeper(d);
  await s.sweep({ force: true });
  assert.equal(existsSync(fileOf(d, before1)), false, 'an old result the index never held is deleted by the first run');
  assert.equal(existsSync(fileOf(d, before2)), false);
  assert.equal(existsSync(fileOf(d, fresh)), true, 'a young one the index does not hold is kept');
  assert.ok(Number(await testRedis.client.pttl(`${d.prefix}:rec:lock:ai-results-listing`)) > TTL_MS / 2 - 1000, 'the next listing waits half the TTL');

  // Another old unindexed result (e.g. its index write failed): left to the next listing, not to every run.
  const late = write(14, past);
  await nextPeriod(d.prefix);
  await s.sweep({ force: true });
  assert.equal(existsSync(fileOf(d, late)), true, 'no listing within half the TTL of the last one');
  await nextPeriod(d.prefix, { listing: true });
  await s.sweep({ force: true });
  assert.equal(existsSync(fileOf(d, late)), false, 'the next listing deletes it');
  assert.equal(existsSync(fileOf(d, fresh)), true);
});

test('a run with many results kept reads none of them (no listing, no stat, no readdir): it deletes what expired', async () => {
  const d = deployment();
  const nowMs = Date.now();
  const KEPT = 2000;
  for (let n = 0; n < KEPT; n++) await storeNoted(d, 100 + n, nowMs - n);
  const expired = [await storeNoted(d, 90, nowMs - TTL_MS - 1), await storeNoted(d, 91, nowMs - 2 * TTL_MS), await storeNoted(d, 92, nowMs - TTL_MS - 30_000)];
  let listCalls = 0;
  const results: SweptResults = {
    list: (prefix, options) => { listCalls += 1; return d.results.list(prefix, options); },
    deleteKeys: (keys) => d.results.deleteKeys(keys),
  };
  const s = sweeper({ keys: d.keys, results, index: d.index });
  // A listing ran in this half TTL (the lock of the first run).
  await testRedis.client.set(`${d.prefix}:rec:lock:ai-results-listing`, '1', 'PX', TTL_MS);

  // node:fs/promises stat and readdir, counted (the store imports them by name: the ESM
  // bindings are re-synced from the builtin's object).
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realStat = fsp.stat;
  const realReaddir = fsp.readdir;
  let stats = 0;
  let readdirs = 0;
  fsp.stat = ((...args: Parameters<typeof realStat>) => { stats += 1; return realStat(...args); }) as typeof realStat;
  fsp.readdir = ((...args: Parameters<typeof realReaddir>) => { readdirs += 1; return realReaddir(...args); }) as typeof realReaddir;
  syncBuiltinESMExports();
  try {
    await s.sweep({ force: true });
    assert.equal(listCalls, 0, 'the results store is not listed');
    assert.equal(stats, 0, 'no result is stat-ed');
    assert.equal(readdirs, 0, 'the results directory is not read');
    for (const key of expired) assert.equal(existsSync(fileOf(d, key)), false, `${key} is deleted`);
    assert.equal(readdirSync(d.root).length, KEPT, 'every kept result is still there');
    assert.equal((await indexed(d)).length, KEPT);

    // The counters do see a listing: the one due every half TTL reads every result kept.
    await nextPeriod(d.prefix, { listing: true });
    await s.sweep({ force: true });
    assert.equal(listCalls, Math.ceil(KEPT / 1000));
    assert.equal(stats, KEPT, 'the listing stats every kept result, once (only the files of each page)');
  } finally {
    fsp.stat = realStat;
    fsp.readdir = realReaddir;
    syncBuiltinESMExports();
  }
  assert.equal(readdirSync(d.root).length, KEPT, 'the listing kept them too');
});

test('gateways sweeping at once, and index entries whose objects are gone already, leave nothing behind and log no failure', async () => {
  const d = deployment();
  const nowMs = Date.now();
  const old: string[] = [];
  for (let n = 0; n < 1500; n++) old.push(await storeNoted(d, 1000 + n, nowMs - TTL_MS - 1 - n));
  const young = await storeNoted(d, 5000, nowMs);
  // Noted, but its object was deleted already (by another gateway's run, or a listing).
  const gone = `${requestID(6000)}/0.png`;
  await d.index.add([gone], nowMs - TTL_MS - 10);
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line); } });
  // Locks of their own: the three runs overlap as if each gateway's lock had expired.
  await testRedis.client.set(`${d.prefix}-a:rec:lock:ai-results-listing`, '1', 'PX', TTL_MS);
  await testRedis.client.set(`${d.prefix}-b:rec:lock:ai-results-listing`, '1', 'PX', TTL_MS);
  await testRedis.client.set(`${d.prefix}-c:rec:lock:ai-results-listing`, '1', 'PX', TTL_MS);
  await Promise.all(['a', 'b', 'c'].map((x) => sweeper(d, logger, `${d.prefix}-${x}`).sweep({ force: true })));
  assert.deepEqual(lines, [], 'no run failed');
  assert.deepEqual(readdirSync(d.root), [young.replace('/', '+')], 'every expired result is deleted, the young one kept');
  assert.deepEqual(await indexed(d), [young], 'the index holds only the young one');
});
