/**
 * Live video-to-video watchdogs and swaps on a real gateway process (cmd/gateway.ts) with the
 * clip published over RTMP and two live workers over real HTTP and trickle
 * (test/helpers/live-worker-stand-in.ts, which can be told to stop producing output): the
 * output watchdog suspends a silent worker and the session swaps to the other, which gets
 * the cached update; past the swap budget the session stops with "Too many swaps".
 *
 * Shortened for the test: MEDIAGATE_AI_LIVE_OUTPUT_TIMEOUT_MS (6 s), MEDIAGATE_AI_LIVE_MAX_SWAPS (1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../../helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments, waitUntil } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';
import { startLiveWorkerStandIn } from '../../helpers/live-worker-stand-in.ts';

interface Status {
  gateway_status: { state: string; stop_reason?: string; swaps: number };
}

test('a worker that stops producing output while input flows is suspended and the session swaps to another; past the swap budget it stops with "Too many swaps"', { timeout: 85_000 }, async () => {
  const redis = await startRedis();
  const workers = [await startLiveWorkerStandIn({ eventIntervalMs: 500 }), await startLiveWorkerStandIn({ eventIntervalMs: 500 })];
  const gw = await startGateway(redis.url, {
    MEDIAGATE_AI_WORKERS: JSON.stringify(workers.map((w) => ({ url: w.url, pipelines: [{ pipeline: 'live-video-to-video', model_id: 'mediagate/cpu-filter', warm: true, capacity: 1 }] }))),
    // Shortened watchdogs: 6 s without output (input counts as recent within 3 s), one swap per window.
    MEDIAGATE_AI_LIVE_OUTPUT_TIMEOUT_MS: '6000',
    MEDIAGATE_AI_LIVE_MAX_SWAPS: '1',
    // Long enough for the check below (the default first suspension is 5 s).
    MEDIAGATE_AI_SUSPEND_BASE_MS: '60000',
    MEDIAGATE_LADDER: '["P144p30fps16x9"]',
  });
  const live = `${gw.httpUrl}/live/video-to-video`;
  const pub = publish(CLIP, gw.rtmpUrl('cam'));
  let status: Status | undefined;
  const poll = (): boolean => {
    void fetch(`${live}/cam/status`).then(async (r) => { status = (await r.json()) as Status; });
    return status !== undefined;
  };
  try {
    await waitForListedSegments(`${gw.httpUrl}/stream/cam/source.m3u8`, 1, gw.proc);
    // Livepeer's form this time: an empty 200 once the first worker is set up.
    const form = new URLSearchParams({ source_id: 'conn1', source_type: 'rtmpconn', query: `pipeline=mediagate%2Fcpu-filter&params=${encodeURIComponent('{"filter":"negate"}')}` });
    const started = await fetch(`${live}/cam/start`, { method: 'POST', body: form });
    assert.equal(started.status, 200);
    assert.equal(await started.text(), '');
    const first = workers.find((w) => w.starts.length === 1)!;
    const second = workers.find((w) => w !== first)!;
    assert.ok(first && second.starts.length === 0, 'one worker started');
    await waitForListedSegments(`${gw.httpUrl}/stream/cam-out/source.m3u8`, 1, gw.proc);
    // An update before the swap: replayed to the next worker.
    assert.equal((await fetch(`${live}/cam/update`, { method: 'POST', body: '{"filter":"grayscale"}' })).status, 200);

    first.muteOutput();
    const mutedAt = Date.now();
    await waitUntil(() => poll() && status!.gateway_status.swaps === 1 && status!.gateway_status.state === 'running', 30_000, () => JSON.stringify(status?.gateway_status));
    const swappedAfterMs = Date.now() - mutedAt;
    assert.ok(swappedAfterMs < 6000 + 5000, `swapped ${swappedAfterMs} ms after the output stopped (output timeout 6000 ms)`);
    assert.equal(second.starts.length, 1, 'the other worker was started');
    await waitUntil(() => second.controls.includes('{"filter":"grayscale"}'), 10_000, () => JSON.stringify(second.controls));
    const segmentsAtSwap = second.outputSegments();
    await waitUntil(() => second.outputSegments() >= segmentsAtSwap + 2, 15_000, () => `second worker output ${second.outputSegments()}`);
    const workersList = (await (await fetch(`${gw.httpUrl}/api/workers`)).json()) as { workers: { url: string; suspendedUntil?: string }[] };
    assert.ok(workersList.workers.find((w) => w.url === first.url)?.suspendedUntil, 'the silent worker is suspended');

    // The second worker goes silent too: a second swap within the window is one too many.
    second.muteOutput();
    await waitUntil(() => poll() && status!.gateway_status.state === 'stopped', 30_000, () => JSON.stringify(status?.gateway_status));
    assert.match(status!.gateway_status.stop_reason ?? '', /^Too many swaps/);
    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    assert.match(metrics, /^mediagate_live_v2v_swaps_total\{reason="output"\} 1$/m);
    assert.match(metrics, /^mediagate_live_v2v_sessions_ended_total\{reason="too-many-swaps"\} 1$/m);
  } finally {
    pub.child.kill('SIGKILL');
    await gw.stop();
    for (const w of workers) await w.close();
    await redis.stop();
  }
});
