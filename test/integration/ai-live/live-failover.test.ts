/**
 * Live video-to-video end to end, a worker crash: two reference AI workers (processes)
 * registered, a session runs on one of them with params updated to greyscale; that worker
 * is SIGKILLed (with its ffmpeg children, as a machine crash). The session swaps to the other
 * worker, the `-out` stream resumes within the bound below, and the resumed frames are still
 * grey (the cached params were replayed to the new worker) and carry input counters from
 * after the crash.
 *
 * The watchdogs are shortened (`ai.live.eventTimeoutMs`, `ai.live.outputTimeoutMs` 6 s; the
 * workers' status events every 1 s instead of 10 s to stay inside them) so that a crash the
 * trickle errors do not reveal at once is still found quickly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { counterClip, referenceFrames, compareFrames, meanComparison, type FrameSummary } from '../../helpers/frame-counter.ts';
import {
  startLiveCluster, publishLoop, startLive, updateLive, liveStatus, waitFor, OutputWatch, ADMIN_TOKEN, type LiveCluster,
} from '../../helpers/live-cluster.ts';
import { listWorkers } from '../../helpers/ai-cluster.ts';
import { crashProcessTree } from '../../helpers/gateway-process.ts';
import { fetchMedia } from '../../helpers/hls.ts';

const WATCHDOG_MS = 6000;
/**
 * From the crash to the first -out segment listed after it, at most: the watchdog, a new
 * worker's start (5 s, Livepeer's start timeout), and two 2 s segments (the first input
 * segment to the new worker, its output segment), plus 3 s of slack for a busy machine.
 */
const RESUME_BOUND_MS = WATCHDOG_MS + 5000 + 4000 + 3000;
const STREAM = 'crash';

let cluster: LiveCluster;
/** The gateway's log lines of live sessions and trickle, the last 40: what a failure message needs. */
const sessionLog = (lines: readonly string[]): string => lines.filter((l) => /live-v2v|trickle/.test(l)).slice(-40).join('\n');
/** The worker ID in a live status reply. */
const workerOf = (body: Record<string, unknown>): unknown => (body['gateway_status'] as Record<string, unknown> | undefined)?.['worker_id'];
let reference: Map<number, FrameSummary>;
let clip: string;

before(async () => {
  clip = await counterClip(40);
  reference = await referenceFrames(clip);
  cluster = await startLiveCluster({
    workers: 2,
    gatewayEnv: { MEDIAGATE_AI_LIVE_EVENT_TIMEOUT_MS: String(WATCHDOG_MS), MEDIAGATE_AI_LIVE_OUTPUT_TIMEOUT_MS: String(WATCHDOG_MS) },
    // Status events every second, well inside the shortened event watchdog.
    workerEnv: { MEDIAGATE_AI_WORKER_LIVE_STATUS_INTERVAL_MS: '1000' },
  });
});

after(async () => {
  await cluster?.close();
});

test('SIGKILL of the serving worker: the session swaps to the other one and the -out stream resumes, params kept', { timeout: 120_000 }, async () => {
  const { gateway } = cluster;
  const publisher = publishLoop(clip, gateway.rtmpUrl(STREAM));
  const watch = new OutputWatch(gateway.httpUrl, `${STREAM}-out`);
  try {
    await waitFor('the input stream listed', async () => ((await fetchMedia(`${gateway.httpUrl}/stream/${STREAM}/source.m3u8`).catch(() => undefined))?.segments.length ?? 0) > 0 || undefined, 20_000);
    const started = await startLive(gateway.httpUrl, STREAM, { filter: 'negate' });
    assert.equal(started.status, 200, started.text);
    await waitFor('output', async () => (watch.decoded().length >= 1 ? true : undefined), 40_000);
    assert.equal((await updateLive(gateway.httpUrl, STREAM, { filter: 'grayscale' })).status, 200);
    await waitFor('grey output', async () => (watch.decoded().some((s) => s.frames!.length > 0 && s.frames!.every((f) => !f.inverted)) ? true : undefined), 30_000);

    // The worker holding the session, as its status names it.
    const workers = await listWorkers(gateway.httpUrl, ADMIN_TOKEN);
    const servingID = workerOf((await liveStatus(gateway.httpUrl, STREAM)).body);
    const serving = workers.find((w) => w.id === servingID);
    assert.ok(serving, `the status names the worker serving the session (${servingID}): ${JSON.stringify(workers)}`);
    const victim = cluster.workers.find((w) => w.url === serving.url)!;
    const survivor = cluster.workers.find((w) => w !== victim)!;
    const segmentsBefore = watch.segments.length;
    const crashedAtMs = Date.now();
    await crashProcessTree(victim.proc);
    const crashedAtFrame = Math.floor((crashedAtMs - publisher.startedAtMs) / 1000 * 24);

    const resumed = await waitFor('output after the crash', async () => {
      const s = watch.segments.slice(segmentsBefore).find((x) => x.frames !== undefined && x.frames.some((f) => f.n !== undefined && f.n > crashedAtFrame));
      return s;
    }, RESUME_BOUND_MS + 20_000, () => sessionLog(gateway.proc.lines));
    const resumeMs = resumed.seenAtMs - crashedAtMs;
    process.stdout.write(`# crash → first -out segment with post-crash frames listed after ${(resumeMs / 1000).toFixed(2)} s (bound ${RESUME_BOUND_MS / 1000} s)\n`);
    assert.ok(resumeMs <= RESUME_BOUND_MS, `output resumed after ${resumeMs} ms, within ${RESUME_BOUND_MS} ms`);

    // The survivor serves it now, with the cached params replayed: the frames are still grey.
    const after = await listWorkers(gateway.httpUrl, ADMIN_TOKEN);
    const nowServing = workerOf((await liveStatus(gateway.httpUrl, STREAM)).body);
    assert.equal(after.find((w) => w.id === nowServing)?.url, survivor.url, 'the survivor holds the session');
    await waitFor('two more output segments', async () => (watch.decoded().indexOf(resumed) + 2 < watch.decoded().length ? true : undefined), 20_000);
    const later = watch.decoded().slice(watch.decoded().indexOf(resumed));
    const cmps = later.flatMap((s) => s.frames!).filter((f) => f.n !== undefined && reference.has(f.n)).map((f) => ({ f, c: compareFrames(f, reference.get(f.n!)!) }));
    assert.ok(cmps.length >= 24, `${cmps.length} resumed frames compared`);
    assert.ok(cmps.every((x) => !x.f.inverted), 'no negated frame: the greyscale params were replayed');
    const mean = meanComparison(cmps.map((x) => x.c))!;
    assert.ok(mean.outChroma < 4 && mean.lumaError < 12, `grey frames of the input (chroma ${mean.outChroma.toFixed(2)}, luma error ${mean.lumaError.toFixed(2)})`);
    const status = (await liveStatus(gateway.httpUrl, STREAM)).body['gateway_status'] as { swaps: number; state: string };
    assert.equal(status.state, 'running');
    assert.ok(status.swaps >= 1, `the status counts the swap: ${JSON.stringify(status)}`);
  } finally {
    publisher.stop();
    await publisher.exited;
    await watch.stop();
  }
});
