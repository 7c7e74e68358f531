/**
 * No frozen playlists (issue 11, item 1), on in-process gateways with a real redis-server,
 * real ffmpeg and the clip: a push gap of 100 does not stop the playlists, and a transcode
 * result that arrives after its seq was skipped is neither listed nor charged.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { freePort } from '../../helpers/ports.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { fetchMedia, seqOf, waitForEndedPlaylists, type MediaPlaylist } from '../../helpers/hls.ts';
import { loadConfig } from '../../../src/config/config.ts';
import type { MediagateConfig } from '../../../src/config/config-schema.ts';
import { createLogger, silentLogger } from '../../../src/log/logger.ts';
import { startApp, type RunningApp } from '../../../src/app.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { RedisLedger } from '../../../src/payments/ledger-store.ts';

const run = promisify(execFile);
const LADDER = ['P144p30fps16x9'];
let redis: TestRedis;
let client: Redis;
let dataDir: string;
let segments: string[];
const apps: RunningApp[] = [];

type Overrides = NonNullable<Parameters<typeof loadConfig>[0]>['overrides'];

function config(prefix: string, overrides: Overrides): MediagateConfig {
  const dir = join(dataDir, prefix);
  mkdirSync(dir, { recursive: true });
  return loadConfig({
    overrides: {
      http: { port: 0 }, rtmp: { enabled: false }, ladder: LADDER,
      redis: { url: redis.url, keyPrefix: prefix }, storage: { dir: join(dir, 'objects') }, workDir: join(dir, 'work'),
      ...overrides,
    },
  });
}

async function start(cfg: MediagateConfig, role: 'gateway' | 'transcoder'): Promise<RunningApp> {
  const app = await startApp(cfg, createLogger({ level: 'silent' }), role);
  apps.push(app);
  return app;
}

before(async () => {
  redis = await startRedis();
  client = createRedis({ url: redis.url, logger: silentLogger(), name: 'test' });
  dataDir = mkdtempSync(join(tmpdir(), 'mg-frozen-'));
  const cut = join(dataDir, 'cut');
  mkdirSync(cut);
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(8), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(cut, '%d.ts')]);
  segments = readdirSync(cut).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => join(cut, f));
});

after(async () => {
  for (const app of apps) await app.close();
  client?.disconnect();
  await redis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function listedSeqs(list: MediaPlaylist): number[] {
  return list.segments.map((s) => seqOf(s.uri));
}

test('a push gap of 100 does not freeze the playlists: later segments are listed after a discontinuity', { timeout: 120_000 }, async () => {
  assert.ok(segments.length >= 4, `cut into ${segments.length} segments`);
  // The bound is far away, so what resolves the gap here is the push path itself (one script).
  // The push session must outlive the test's slowest transcode: it is ended through the control API.
  const app = await start(config('gap', { hls: { maxSegmentWaitMs: 120_000 }, push: { idleTimeoutMs: 120_000 } }), 'gateway');
  const base = `http://127.0.0.1:${app.httpPort}`;
  const pushed: [number, string][] = [[0, segments[0]!], [1, segments[1]!], [102, segments[2]!], [103, segments[3]!]];
  for (const [seq, file] of pushed) {
    const res = await fetch(`${base}/live/gapped/${seq}.ts`, { method: 'POST', body: readFileSync(file), headers: { 'Content-Duration': '2000' } });
    assert.equal(res.status, 200, `push ${seq}: ${await res.text()}`);
  }
  // Both playlists move past the gap while the stream is live (no ENDLIST needed for that).
  for (const rendition of ['source', ...LADDER]) {
    const deadline = Date.now() + 15_000;
    let list = await fetchMedia(`${base}/stream/gapped/${rendition}.m3u8`);
    while (!listedSeqs(list).includes(103) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      list = await fetchMedia(`${base}/stream/gapped/${rendition}.m3u8`);
    }
    assert.deepEqual(listedSeqs(list), [0, 1, 102, 103], `${rendition} lists the segments after the gap`);
    assert.deepEqual(list.segments.map((s) => s.discontinuity === true), [false, false, true, false], `${rendition}: a discontinuity marks the gap`);
  }
  // A seq inside the resolved gap, pushed late, is refused (it would not be listed) and not transcoded.
  const late = await fetch(`${base}/live/gapped/50.ts`, { method: 'POST', body: readFileSync(segments[0]!), headers: { 'Content-Duration': '2000' } });
  assert.equal(late.status, 409);
  assert.match(((await late.json()) as { detail: { msg: string } }).detail.msg, /segment 50 of gapped arrived after the playlists skipped it/);
  // Objects are stored per publish session: <manifestID>/<session>/<rendition>/<seq>.ts.
  const gappedSession = (await client.hget('gap:stream:gapped', 'session'))!;
  assert.equal(existsSync(join(dataDir, 'gap', 'objects', 'gapped', gappedSession, LADDER[0]!, '50.ts')), false, 'not transcoded');
  assert.equal(existsSync(join(dataDir, 'gap', 'objects', 'gapped', gappedSession, LADDER[0]!, '102.ts')), true, 'where renditions are stored');
  // And the stream ends normally with ENDLIST everywhere.
  assert.equal((await fetch(`${base}/api/streams/gapped`, { method: 'DELETE' })).status, 202);
  const ended = await waitForEndedPlaylists(base, 'gapped', 1 + LADDER.length, 30_000);
  for (const list of ended) assert.deepEqual(listedSeqs(list), [0, 1, 102, 103]);
});

test('a transcode result for a seq its playlists already skipped is not listed and not charged', { timeout: 150_000 }, async () => {
  const prefix = 'late';
  const rtmpPort = await freePort();
  // A gateway with no transcoder: source segments are listed and their transcodes queued (and held).
  const gatewayConfig = config(prefix, { rtmp: { enabled: true, port: rtmpPort }, transcode: { embedded: false, metricsPort: 0 }, hls: { maxSegmentWaitMs: 1000, sweepIntervalMs: 200 } });
  const app = await start(gatewayConfig, 'gateway');
  const base = `http://127.0.0.1:${app.httpPort}`;
  const ledger = new RedisLedger({ redis: client, prefix });
  const initial = (await ledger.getAccount('local'))!.balance;

  const publisher = publish(await clipWith2sGop(6), `rtmp://127.0.0.1:${rtmpPort}/live/latecomer`);
  assert.equal(await publisher.exited, 0, publisher.stderr());
  // The stream ended; its renditions had nothing within the bound, so they are resolved as
  // failed and every playlist ends, with the source segments listed.
  const ended = await waitForEndedPlaylists(base, 'latecomer', 1 + LADDER.length, 60_000);
  const [source, ...renditions] = ended;
  assert.ok(source!.segments.length >= 2, `source lists ${source!.segments.length} segments`);
  for (const list of renditions) assert.equal(list.segments.length, 0, 'no rendition segment was listed');
  const held = (await ledger.getAccount('local'))!.balance;
  assert.ok(held < initial, 'the queued transcodes hold credits');

  // Now a transcoder comes up and transcodes the queued jobs: their results arrive late.
  await start(gatewayConfig, 'transcoder');
  const objects = join(gatewayConfig.storage.dir, 'latecomer', (await client.hget(`${prefix}:stream:latecomer`, 'session'))!, LADDER[0]!);
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && !(existsSync(objects) && readdirSync(objects).length >= source!.segments.length
    && (await ledger.getAccount('local'))!.balance === initial)) {
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(existsSync(objects) && readdirSync(objects).length >= source!.segments.length, 'the late transcodes ran and stored their renditions');
  assert.equal((await ledger.getAccount('local'))!.balance, initial, 'every hold was released: nothing charged for what is not listed');
  const entries = await ledger.listEntries('local');
  assert.deepEqual(entries.entries.filter((e) => e.kind === 'transcode'), [], 'no transcode charge in the ledger');
  const [, ...after] = await waitForEndedPlaylists(base, 'latecomer', 1 + LADDER.length, 5000);
  for (const list of after) assert.equal(list.segments.length, 0, 'a late rendition segment was listed');
});
