/**
 * Fault: SIGTERM to a gateway process (embedded transcoder) while it is busy, with a real
 * redis-server, real ffmpeg publishing the clip over RTMP and real HTTP pushes of its segments.
 *
 * - Mid-RTMP-stream: the segmenter flushes its partial last segment, which is stored, listed
 *   and transcoded; every playlist ends with ENDLIST (read back by a second gateway started
 *   afterwards, without a transcoder, so nothing is finished after the fact); the work dir
 *   holds no segment; exit code 0; no ffmpeg left.
 * - Mid-push-burst: every push in flight at SIGTERM is answered 200 with its renditions; a
 *   push arriving during shutdown gets 503 with Retry-After and Connection: close (not a
 *   reset, not a 500); the work dir holds no body.
 * - With a shutdown timeout too short for the last transcodes: still a clean exit with the last
 *   segment listed; its jobs stay queued and a transcoder started later ends the playlists.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, fetchText, seqOf, probeSegment, waitForEndedPlaylists, type MediaPlaylist } from '../../helpers/hls.ts';
import { boundaryOf, parseMultipart } from '../../helpers/multipart.ts';

const run = promisify(execFile);
const STREAM_KEY = 'fault-SIGTERM-key-91c2';
const MANIFEST_ID = 'sigterm';
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];

let redis: TestRedis;
const deployments: TestDeployment[] = [];
const processes: MediagateProcess[] = [];
let work: string;

before(async () => {
  redis = await startRedis();
  work = mkdtempSync(join(tmpdir(), 'mg-fault-shutdown-'));
});

after(async () => {
  for (const p of processes) await p.stop();
  await redis?.stop();
  for (const d of deployments) d.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function deploy(extra: Record<string, string>): Promise<TestDeployment> {
  const d = await testDeployment(redis.url, {
    MEDIAGATE_LADDER: LADDER.join(','),
    // Generous: the machine is shared; the test asserts what is done, not how fast.
    MEDIAGATE_SHUTDOWN_TIMEOUT_MS: '60000',
    ...extra,
  });
  deployments.push(d);
  return d;
}

function start(d: TestDeployment, env: Record<string, string> = {}): MediagateProcess {
  const p = spawnMediagate('gateway', { ...d.env, ...env });
  processes.push(p);
  return p;
}

/** Files (not directories) under the work dir, except node-media-server's own store. */
function filesIn(workDir: string): string[] {
  if (!existsSync(workDir)) return [];
  return readdirSync(workDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !f.startsWith('nms-store') && !statSync(join(workDir, f)).isDirectory())
    .map((f) => relative(workDir, join(workDir, f)));
}

function ffmpegOf(d: TestDeployment): string[] {
  return execSync('ps -eo args').toString().split('\n').filter((l) => l.includes('ffmpeg') && l.includes(d.dataDir));
}

function logged(p: MediagateProcess, msg: string): Record<string, unknown>[] {
  return p.lines
    .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
    .filter((o): o is Record<string, unknown> => o?.['msg'] === msg);
}

async function waitFor(what: string, p: MediagateProcess, ok: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms; log tail:\n${p.lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A gateway with one stream key, the clip published to it in real time, and SIGTERM about
 * 1 s after the `listed`-th source segment was listed (2 s GOPs: the segment being written
 * then is partial and exists only in the segmenter). Resolves once the gateway exited.
 */
async function sigtermMidStream(key: string, manifestID: string, listed: number, env: Record<string, string> = {}): Promise<{
  d: TestDeployment; gateway: MediagateProcess; publisher: ReturnType<typeof publish>; listedBefore: number; code: number | null;
}> {
  const d = await deploy({ ...env, MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: key, manifestID }]) });
  const gateway = start(d);
  await waitForHttp(`${d.httpUrl}/healthz`, gateway);
  const publisher = publish(await clipWith2sGop(40), `rtmp://127.0.0.1:${d.rtmpPort}/live/${key}`);
  try {
    await waitFor(`${listed} source segments listed`, gateway, () => logged(gateway, 'source segment listed').length >= listed, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const listedBefore = logged(gateway, 'source segment listed').length;
    gateway.child.kill('SIGTERM');
    const { code } = await gateway.exited;
    return { d, gateway, publisher, listedBefore, code };
  } catch (err) {
    publisher.child.kill('SIGKILL');
    throw err;
  }
}

test('SIGTERM mid-RTMP-stream: the last segment is flushed, stored, listed and transcoded, every playlist ends, nothing is left behind', { timeout: 150_000 }, async () => {
  const { d, gateway, publisher, listedBefore, code } = await sigtermMidStream(STREAM_KEY, MANIFEST_ID, 3);
  try {
    assert.equal(code, 0, `exit code; log tail:\n${gateway.lines.slice(-20).join('\n')}`);

    const ended = logged(gateway, 'segmenter ended');
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!['reason'], 'stopped', 'the segmenter was stopped by the gateway (SIGINT), not killed');
    const segments = ended[0]!['segments'] as number;
    assert.ok(segments > listedBefore, `the segmenter reported the flushed partial segment (${segments} reported, ${listedBefore} listed before SIGTERM)`);
    assert.equal(logged(gateway, 'source segment listed').length, segments, 'every reported segment was stored and listed before exit');
    assert.deepEqual(ffmpegOf(d), [], 'no ffmpeg left behind');
    assert.deepEqual(filesIn(join(d.dataDir, 'work')), [], 'nothing left in the work dir');

    // A second gateway, with no transcoder, reads the index as the first one left it.
    const reader = start(d, { MEDIAGATE_TRANSCODE_EMBEDDED: 'false' });
    await waitForHttp(`${d.httpUrl}/healthz`, reader);
    const master = await fetchMaster(`${d.httpUrl}/stream/${MANIFEST_ID}.m3u8`);
    assert.ok(master, 'the master playlist is served');
    assert.deepEqual(master.variants.map((v) => v.uri), [`${MANIFEST_ID}/source.m3u8`, ...LADDER.map((r) => `${MANIFEST_ID}/${r}.m3u8`)]);
    const lists = new Map<string, MediaPlaylist>();
    for (const v of master.variants) lists.set(v.uri.split('/')[1]!.replace('.m3u8', ''), await fetchMedia(`${d.httpUrl}/stream/${v.uri}`));
    const expectedSeqs = Array.from({ length: segments }, (_, i) => i).slice(-6);
    for (const [rendition, media] of lists) {
      assert.equal(media.endlist, true, `${rendition} ends with ENDLIST:\n${(await fetchText(`${d.httpUrl}/stream/${MANIFEST_ID}/${rendition}.m3u8`)).text}`);
      assert.deepEqual(media.segments.map((s) => seqOf(s.uri)), expectedSeqs, `${rendition} lists every segment up to the flushed one`);
    }
    const last = lists.get('source')!.segments.at(-1)!;
    assert.ok(last.duration < 1.95, `the last source segment is the partial one flushed at SIGTERM (${last.duration} s)`);
    for (const rendition of lists.keys()) {
      const p = await probeSegment(`${d.httpUrl}/stream/${MANIFEST_ID}/${rendition}/${segments - 1}.ts`);
      assert.ok(p.frames > 0, `${rendition}/${segments - 1}.ts is stored and decodable`);
    }
    await reader.stop();
    assert.deepEqual(filesIn(join(d.dataDir, 'work')), [], 'nothing left in the work dir after the reader either');
  } finally {
    publisher.child.kill('SIGKILL');
    await publisher.exited.catch(() => undefined);
  }
});

test('SIGTERM mid-push-burst: in-flight pushes are answered with their renditions, a new push gets 503 + Retry-After, no body is left on disk', { timeout: 150_000 }, async () => {
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(12), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(work, '%d.ts')]);
  const segments = readdirSync(work).filter((f) => /^\d+\.ts$/.test(f)).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => readFileSync(join(work, f)));
  assert.ok(segments.length >= 5, `cut into ${segments.length} segments`);
  const BURST = 4;

  const d = await deploy({ MEDIAGATE_TRANSCODE_CONCURRENCY: '1' });
  const gateway = start(d);
  await waitForHttp(`${d.httpUrl}/healthz`, gateway);

  let sigtermAt = Number.POSITIVE_INFINITY;
  const pushes = segments.slice(0, BURST).map(async (body, seq) => {
    const res = await fetch(`${d.httpUrl}/live/burst/${seq}.ts`, { method: 'POST', body, headers: { Accept: 'multipart/mixed' } });
    const buf = Buffer.from(await res.arrayBuffer());
    return { seq, status: res.status, at: Date.now(), type: res.headers.get('content-type'), buf };
  });
  // Every body received and its source listed (so each is in flight), then SIGTERM at once.
  await waitFor(`${BURST} pushed segments listed`, gateway, () => logged(gateway, 'source segment listed').length >= BURST, 60_000);
  sigtermAt = Date.now();
  gateway.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const late = await fetch(`${d.httpUrl}/live/burst/${BURST}.ts`, { method: 'POST', body: segments[BURST]!, headers: { Accept: 'multipart/mixed' } });
  const lateBody = (await late.json()) as { detail?: { msg: string; code: string } };

  const answered = await Promise.all(pushes);
  const { code } = await gateway.exited;
  assert.equal(code, 0, `exit code; log tail:\n${gateway.lines.slice(-20).join('\n')}`);

  const inFlight = answered.filter((a) => a.at > sigtermAt);
  assert.ok(inFlight.length >= 2, `at least 2 pushes were still in flight at SIGTERM (${inFlight.length})`);
  for (const a of answered) {
    assert.equal(a.status, 200, `push ${a.seq}: ${a.buf.toString().slice(0, 300)}`);
    const parts = parseMultipart(a.buf, boundaryOf(a.type));
    assert.deepEqual(parts.map((p) => p.headers['rendition-name']), LADDER, `push ${a.seq} carries its renditions`);
    assert.ok(parts.every((p) => p.body.length > 1000), `push ${a.seq} renditions have media`);
  }
  assert.equal(late.status, 503, `a push during shutdown: ${JSON.stringify(lateBody)}`);
  assert.ok(Number(late.headers.get('retry-after')) > 0, 'Retry-After');
  assert.equal(late.headers.get('connection'), 'close');
  assert.match(lateBody.detail?.msg ?? '', /shutting down/);
  assert.deepEqual(filesIn(join(d.dataDir, 'work')), [], 'no request body or transcode file left in the work dir');
  assert.deepEqual(ffmpegOf(d), [], 'no ffmpeg left behind');
});

test('SIGTERM with a shutdown timeout too short for the last transcodes: clean exit, the last segments stay queued, and a transcoder started afterwards ends every playlist', { timeout: 150_000 }, async () => {
  const key = 'fault-timeout-key-5e7a';
  const manifestID = 'sigterm-timeout';
  // The queued jobs are listed only if their results come within hls.maxSegmentWaitMs of the
  // stream's end (after that the sweep skips them, which frozen-playlists.test.ts covers);
  // this test is about the next transcoder finishing them, so the wait outlasts the restarts.
  const { d, gateway, publisher, code } = await sigtermMidStream(key, manifestID, 2, {
    MEDIAGATE_SHUTDOWN_TIMEOUT_MS: '0', MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS: '120000',
  });
  try {
    assert.equal(code, 0, `exit code; log tail:\n${gateway.lines.slice(-20).join('\n')}`);
    assert.ok(gateway.lines.some((l) => l.includes('stay queued for another transcoder')), 'the timeout is logged with what was left');
    const segments = logged(gateway, 'segmenter ended')[0]!['segments'] as number;
    assert.equal(logged(gateway, 'source segment listed').length, segments, 'the flushed last segment was still stored and listed');
    assert.deepEqual(ffmpegOf(d), [], 'no ffmpeg left behind');
    assert.deepEqual(filesIn(join(d.dataDir, 'work')), [], 'nothing left in the work dir');

    // The jobs left in the queue are taken by the next transcoder, and the playlists end.
    const reader = start(d, { MEDIAGATE_TRANSCODE_EMBEDDED: 'false' });
    await waitForHttp(`${d.httpUrl}/healthz`, reader);
    const before = await fetchMedia(`${d.httpUrl}/stream/${manifestID}/${LADDER[0]}.m3u8`);
    assert.equal(before.endlist, false, 'the renditions were not complete when the gateway left (the test needs the timeout to bite)');
    const transcoder = spawnMediagate('transcoder', { ...d.env, MEDIAGATE_TRANSCODE_METRICS_PORT: '0' });
    processes.push(transcoder);
    const lists = await waitForEndedPlaylists(d.httpUrl, manifestID, LADDER.length + 1, 60_000);
    const expectedSeqs = Array.from({ length: segments }, (_, i) => i).slice(-6);
    for (const media of lists) assert.deepEqual(media.segments.map((s) => seqOf(s.uri)), expectedSeqs);
    await transcoder.stop();
    await reader.stop();
  } finally {
    publisher.child.kill('SIGKILL');
    await publisher.exited.catch(() => undefined);
  }
});
