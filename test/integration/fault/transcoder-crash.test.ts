/**
 * Fault: transcoder processes killed with SIGKILL mid-job (with their ffmpeg children, as a
 * container crash would), on a gateway with no embedded transcoder, a real redis-server and
 * the real clip pushed over HTTP in 2 s segments.
 *
 * - Killed once: another transcoder takes the job over within about two segment durations
 *   (bound below), the waiting push is answered 200, every seq is listed in every
 *   rendition and charged exactly once.
 * - Killed twice on the same job: the next transcoder fails it for good through the
 *   failed-for-good path (segment.failed once, hold released, no charge), the push gets 422,
 *   the renditions skip the seq with a discontinuity, the source lists it, and later seqs
 *   keep listing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { startReceiver, type TestReceiver } from '../events/receiver.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment, waitUntil, logLines } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { freePort } from '../../helpers/ports.ts';
import { seqOf, waitForEndedPlaylists, type MediaPlaylist } from '../../helpers/hls.ts';
import { createRedis, type Redis } from '../../../src/redis/connections.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const run = promisify(execFile);
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
const SEGMENT_MS = 2000;
/**
 * Takeover bound: the design gives at most 2.25 segment durations (lock 3 s + stalled check
 * every 1.5 s, see transcodeLockTimingFor); the rest is slack for a loaded 2-core machine.
 * BullMQ's defaults (30 s lock, 30 s check) took 72-75 s.
 */
const TAKEOVER_BOUND_MS = 6 * SEGMENT_MS;

let redis: TestRedis;
let receiver: TestReceiver;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let client: Redis;
let segments: Buffer[];
interface Transcoder { proc: MediagateProcess; metricsPort: number; killed: boolean }
const transcoders: Transcoder[] = [];

async function startTranscoder(): Promise<Transcoder> {
  const metricsPort = await freePort();
  const proc = spawnMediagate('transcoder', { ...deployment.env, MEDIAGATE_TRANSCODE_METRICS_PORT: String(metricsPort) });
  const t = { proc, metricsPort, killed: false };
  transcoders.push(t);
  await waitUntil(() => proc.lines.some((l) => l.includes('transcoder ready')), 30_000, () => `transcoder did not start:\n${proc.lines.join('\n')}`);
  return t;
}

/** Starts transcoders until `n` are alive. */
async function ensureTranscoders(n: number): Promise<void> {
  const missing = n - transcoders.filter((t) => !t.killed).length;
  await Promise.all(Array.from({ length: Math.max(0, missing) }, () => startTranscoder()));
}



/** Arguments of the processes a process started (its ffmpeg/ffprobe runs). */
async function childArgs(pid: number): Promise<string[]> {
  const { stdout } = await run('ps', ['-o', 'args=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean);
}

/**
 * Waits until a live transcoder not in `except` runs ffmpeg on source segment `seq` of
 * `manifestID` (read from `ps`, so it needs nothing from the code under test), and returns it.
 */
async function transcoderWorkingOn(manifestID: string, seq: number, except: readonly Transcoder[], timeoutMs: number): Promise<Transcoder> {
  // Objects are scoped by publish session: <manifestID>/<session>/source/<seq>.ts.
  const input = `/${manifestID}/<session>/source/${seq}.ts`;
  const inputPattern = new RegExp(`/${manifestID}/[^/\\s]+/source/${seq}\\.ts`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const t of transcoders.filter((x) => !x.killed && !except.includes(x))) {
      if ((await childArgs(t.proc.child.pid!)).some((a) => inputPattern.test(a))) return t;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no transcoder worked on ${input} within ${timeoutMs} ms:\n${allLines()}`);
}

/** SIGKILLs a transcoder and every process under it (its ffmpeg), as a machine or container crash would. */
async function crash(t: Transcoder): Promise<void> {
  const pid = t.proc.child.pid!;
  const descendants: number[] = [];
  const walk = async (parent: number): Promise<void> => {
    const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(parent)]).catch(() => ({ stdout: '' }));
    for (const child of stdout.split('\n').map((s) => Number(s.trim())).filter((n) => n > 0)) {
      descendants.push(child);
      await walk(child);
    }
  };
  await walk(pid);
  t.killed = true;
  process.kill(pid, 'SIGKILL');
  for (const d of descendants) {
    try { process.kill(d, 'SIGKILL'); } catch { /* already gone */ }
  }
  await t.proc.exited;
}

async function push(manifestID: string, seq: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`${deployment.httpUrl}/live/${manifestID}/${seq}.ts`, { method: 'POST', body: segments[seq]! });
  return { status: res.status, body: await res.text() };
}

async function metric(t: Transcoder, line: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.metricsPort}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(' ')[1]) : 0;
}

/** Sum of a metric line over the transcoders still alive. */
async function metricSum(line: string): Promise<number> {
  let sum = 0;
  for (const t of transcoders.filter((x) => !x.killed)) sum += await metric(t, line);
  return sum;
}

async function charges(manifestID: string): Promise<number[]> {
  const res = await fetch(`${deployment.httpUrl}/api/accounts/local/ledger?limit=1000`);
  assert.equal(res.status, 200);
  const { entries } = (await res.json()) as { entries: { kind: string; manifestID?: string; seq?: number }[] };
  return entries.filter((e) => e.kind === 'transcode' && e.manifestID === manifestID).map((e) => e.seq!).sort((a, b) => a - b);
}

/** Ends a push stream now (the control API) instead of waiting for its idle timeout. */
async function endStream(manifestID: string): Promise<MediaPlaylist[]> {
  const res = await fetch(`${deployment.httpUrl}/api/streams/${manifestID}`, { method: 'DELETE' });
  assert.equal(res.status, 202, await res.text());
  return waitForEndedPlaylists(deployment.httpUrl, manifestID, LADDER.length + 1, 60_000);
}

function listedSeqs(list: MediaPlaylist): number[] {
  return list.segments.map((s) => seqOf(s.uri));
}

function allLines(): string {
  return [gateway, ...transcoders.map((t) => t.proc)].flatMap((p) => p.lines).join('\n');
}

before(async () => {
  redis = await startRedis();
  receiver = await startReceiver();
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_LADDER: LADDER.join(','),
    MEDIAGATE_TRANSCODE_EMBEDDED: 'false',
    MEDIAGATE_TRANSCODE_CONCURRENCY: '1',
    MEDIAGATE_SEGMENT_TARGET_MS: String(SEGMENT_MS),
    MEDIAGATE_HLS_WINDOW_SEGMENTS: '50',
    MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: '60000',
    MEDIAGATE_EVENTS_WEBHOOK_URLS: receiver.url,
  });
  gateway = spawnMediagate('gateway', deployment.env);
  client = createRedis({ url: redis.url, logger: silentLogger(), name: 'test' });
  const cut = join(deployment.dataDir, 'cut');
  mkdirSync(cut);
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(10), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(cut, '%d.ts')]);
  segments = readdirSync(cut).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => readFileSync(join(cut, f)));
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  await ensureTranscoders(2);
});

after(async () => {
  client?.disconnect();
  await Promise.all([gateway?.stop(), ...transcoders.map((t) => t.proc.stop())]);
  await receiver?.close();
  await redis?.stop();
  deployment?.cleanup();
});

test('a transcoder killed mid-job: another takes the job over within ~2 segment durations; every seq listed and charged once', { timeout: 120_000 }, async (t) => {
  const m = 'crash1';
  assert.ok(segments.length >= 4, `the clip gives ${segments.length} segments`);
  assert.equal((await push(m, 0)).status, 200);

  const waiting = push(m, 1);
  const first = await transcoderWorkingOn(m, 1, [], 30_000);
  await crash(first);
  const killedAtMs = Date.now();
  assert.equal(logLines(first.proc, 'segment transcoded').filter((l) => l['seq'] === 1).length, 0, 'killed before it finished seq 1');

  await transcoderWorkingOn(m, 1, [first], 90_000);
  const takeoverMs = Date.now() - killedAtMs;
  t.diagnostic(`seq 1 taken over ${takeoverMs} ms after the kill`);
  assert.ok(takeoverMs <= TAKEOVER_BOUND_MS, `taken over after ${takeoverMs} ms (bound ${TAKEOVER_BOUND_MS} ms)`);
  const reply = await waiting;
  assert.equal(reply.status, 200, `the push waiting on the killed job is answered: ${reply.body}`);

  for (let seq = 2; seq < segments.length; seq++) assert.equal((await push(m, seq)).status, 200);
  const lists = await endStream(m);
  const all = segments.map((_, i) => i);
  for (const list of lists) {
    assert.deepEqual(listedSeqs(list), all, 'every seq listed');
    assert.ok(list.segments.every((s) => !s.discontinuity), 'no discontinuity');
  }
  assert.deepEqual(await charges(m), all, 'exactly one charge per seq');

  // The takeover is logged (no secrets: the manifest ID is the stream's public name here) and counted.
  const lost = transcoders.filter((t) => !t.killed).flatMap((t) => logLines(t.proc, 'transcoder stopped mid-job; segment re-queued for another transcoder'));
  assert.deepEqual(lost.map((l) => [l['level'], l['manifestID'], l['seq']]), [[40, m, 1]]);
  assert.equal(await metricSum('mediagate_transcode_jobs_stalled_total'), 1);
  assert.equal(await metricSum('mediagate_segments_failed_total{reason_code="transcoder_lost"}'), 0);
});

test('a job whose transcoder is killed twice fails for good: 422, a discontinuity in the renditions, the source lists it, later seqs continue', { timeout: 120_000 }, async () => {
  const m = 'crash2';
  await ensureTranscoders(3);
  assert.equal((await push(m, 0)).status, 200);

  const waiting = push(m, 1);
  const first = await transcoderWorkingOn(m, 1, [], 30_000);
  await crash(first);
  const second = await transcoderWorkingOn(m, 1, [first], 90_000);
  await crash(second);

  const reply = await waiting;
  assert.equal(reply.status, 422, reply.body);
  assert.equal((JSON.parse(reply.body) as { detail: { code: string } }).detail.code, 'TRANSCODE_FAILED');
  for (let seq = 2; seq < 4; seq++) assert.equal((await push(m, seq)).status, 200);

  const lists = await endStream(m);
  const source = lists.find((l) => l.segments[0]?.uri.startsWith('source/'));
  assert.ok(source, 'a source playlist');
  assert.deepEqual(listedSeqs(source), [0, 1, 2, 3], 'the source lists the failed seq');
  for (const list of lists.filter((l) => l !== source)) {
    assert.deepEqual(listedSeqs(list), [0, 2, 3], 'renditions skip seq 1');
    assert.deepEqual(list.segments.map((s) => s.discontinuity === true), [false, true, false], 'with a discontinuity before seq 2');
  }

  const survivor = transcoders.filter((t) => !t.killed);
  const failedLogs = survivor.flatMap((t) => logLines(t.proc, 'segment failed for good')).filter((l) => l['manifestID'] === m);
  assert.equal(failedLogs.length, 1, 'failed for good once');
  assert.equal(await metricSum('mediagate_segments_failed_total{reason_code="transcoder_lost"}'), 1);
  // Each loss is logged by whichever process re-queued it (maybe one killed later; its lines were kept).
  const lost = transcoders.flatMap((t) => logLines(t.proc, 'transcoder stopped mid-job; segment re-queued for another transcoder')).filter((l) => l['manifestID'] === m);
  assert.deepEqual(lost.map((l) => l['seq']), [1, 1], 'both losses logged');
  assert.deepEqual(await charges(m), [0, 2, 3], 'nothing charged for the failed seq');
  const holds = await client.keys('mg:pay:hold:transcode:crash2:*:1');
  assert.equal(holds.length, 1);
  assert.equal(await client.hget(holds[0]!, 'state'), 'released', 'its hold was released');

  await waitUntil(() => receiver.received.some((r) => r.body.includes('"stream.ended"') && r.body.includes(m)), 30_000, () => 'no stream.ended event');
  const failedEvents = receiver.received.map((r) => JSON.parse(r.body) as { type: string; data: { manifestID: string; seq?: number } })
    .filter((e) => e.type === 'segment.failed' && e.data.manifestID === m);
  assert.deepEqual(failedEvents.map((e) => e.data.seq), [1], 'segment.failed emitted once, for seq 1');
});
