/**
 * Live video-to-video on a real gateway process (cmd/gateway.ts) with the clip published over
 * RTMP and a live worker over real HTTP and trickle (test/helpers/live-worker-stand-in.ts,
 * which passes input segments through unchanged: the gateway's plumbing is what is tested
 * here; the transform is the reference worker's, tested end to end elsewhere): start with the
 * JSON body → the `<stream>-out` stream plays in HLS through the gateway's own ingest; an
 * update reaches the worker's control channel and shows in the status; status carries the
 * worker's last status event and the gateway's figures; the refusals (unknown stream,
 * Livepeer's form errors, a `-out` stream) name the problem; the session stops with the
 * input (after the output of its last segments) and its `-out` playlist ends. Watchdogs and
 * swaps: live-v2v-swaps.test.ts.
 *
 * Shortened watchdogs for tests: MEDIAGATE_AI_LIVE_EVENT_TIMEOUT_MS, _OUTPUT_TIMEOUT_MS,
 * _SWAP_WINDOW_MS, _MAX_SWAPS, _KEEPALIVE_INTERVAL_MS, _CHARGE_INTERVAL_MS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../../helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments, waitUntil } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';
import { startLiveWorkerStandIn } from '../../helpers/live-worker-stand-in.ts';

interface Status {
  type?: string;
  inference_status?: { last_params?: unknown };
  gateway_status: {
    request_id: string; state: string; stop_reason?: string; worker_id?: string; swaps: number; params_updates: number;
    input: { segments: number; fps: number }; output: { segments: number; fps: number }; latency_ms?: number;
  };
}

test('live video-to-video: start (JSON) → -out plays in HLS → update reaches the worker → status → the session stops with its input', { timeout: 85_000 }, async () => {
  const redis = await startRedis();
  const worker = await startLiveWorkerStandIn({ eventIntervalMs: 500 });
  const gw = await startGateway(redis.url, {
    MEDIAGATE_AI_WORKERS: JSON.stringify([{ url: worker.url, pipelines: [{ pipeline: 'live-video-to-video', model_id: 'mediagate/cpu-filter', warm: true, capacity: 1 }] }]),
    MEDIAGATE_AI_LIVE_KEEPALIVE_INTERVAL_MS: '1000',
    MEDIAGATE_LADDER: '["P144p30fps16x9"]',
  });
  const live = `${gw.httpUrl}/live/video-to-video`;
  const pub = publish(CLIP, gw.rtmpUrl('cam'));
  try {
    // Not publishing yet (and the wait for it is short here only because nobody publishes "nobody").
    const notLive = await fetch(`${live}/nobody/update`, { method: 'POST', body: '{"filter":"none"}' });
    assert.equal(notLive.status, 404);
    assert.match(((await notLive.json()) as { detail: { msg: string } }).detail.msg, /no live session runs on stream "nobody"/);
    assert.equal((await fetch(`${live}/nobody/status`)).status, 404);

    await waitForListedSegments(`${gw.httpUrl}/stream/cam/source.m3u8`, 1, gw.proc);

    // Livepeer's form refusals, and a -out stream.
    const form = new FormData();
    form.set('source_type', 'rtmpconn');
    const missing = await fetch(`${live}/cam/start`, { method: 'POST', body: form });
    assert.equal(missing.status, 400);
    assert.equal(((await missing.json()) as { detail: { msg: string } }).detail.msg, 'Missing source_id');
    const badParams = new FormData();
    badParams.set('source_id', 'conn1');
    badParams.set('source_type', 'rtmpconn');
    badParams.set('query', 'pipeline=mediagate%2Fcpu-filter&params=%7Bbroken');
    const invalid = await fetch(`${live}/cam/start`, { method: 'POST', body: badParams });
    assert.equal(invalid.status, 400);
    assert.equal(((await invalid.json()) as { detail: { msg: string } }).detail.msg, 'Invalid model params');
    const out = await fetch(`${live}/cam-out/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(out.status, 400);

    // Start with the JSON body.
    const started = await fetch(`${live}/cam/start`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model_id: 'mediagate/cpu-filter', params: { filter: 'negate' } }),
    });
    const startReply = (await started.json()) as { request_id: string; output_stream: string; hls_url: string; state: string };
    assert.equal(started.status, 200, JSON.stringify(startReply));
    assert.equal(startReply.output_stream, 'cam-out');
    assert.equal(startReply.hls_url, `${gw.httpUrl}/stream/cam-out.m3u8`);
    assert.equal(startReply.state, 'running');
    assert.deepEqual(worker.starts.map((s) => [s['model_id'], s['params'], s['stream_id'], s['gateway_request_id']]), [['mediagate/cpu-filter', { filter: 'negate' }, 'cam', startReply.request_id]]);
    const again = await fetch(`${live}/cam/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(again.status, 409, 'one session per stream');

    // The -out stream plays: its source rendition and a ladder rendition are listed.
    await waitForListedSegments(`${gw.httpUrl}/stream/cam-out/source.m3u8`, 2, gw.proc);
    const master = await (await fetch(`${gw.httpUrl}/stream/cam-out.m3u8`)).text();
    assert.match(master, /#EXT-X-STREAM-INF/);

    // An update goes to the worker's control channel and comes back in its status event.
    const update = await fetch(`${live}/cam/update`, { method: 'POST', body: '{"filter":"grayscale"}' });
    assert.equal(update.status, 200);
    await waitUntil(() => worker.controls.includes('{"filter":"grayscale"}'), 10_000, () => `controls: ${JSON.stringify(worker.controls)}`);
    let status: Status | undefined;
    await waitUntil(() => {
      void fetch(`${live}/cam/status`).then(async (r) => { status = (await r.json()) as Status; });
      return JSON.stringify(status?.inference_status?.last_params) === '{"filter":"grayscale"}';
    }, 10_000, () => JSON.stringify(status));
    assert.equal(status!.type, 'status');
    const g = status!.gateway_status;
    assert.equal(g.state, 'running');
    assert.equal(g.request_id, startReply.request_id);
    assert.equal(g.params_updates, 1);
    assert.ok(g.input.segments >= 2 && g.output.segments >= 2, JSON.stringify(g));
    assert.ok(g.input.fps > 0 && g.output.fps > 0, JSON.stringify(g));
    assert.ok(g.latency_ms !== undefined && g.latency_ms >= 0, JSON.stringify(g));
    await waitUntil(() => worker.controls.includes('{"keep":"alive"}'), 5000, () => `controls: ${JSON.stringify(worker.controls)}`);
    const bad = await fetch(`${live}/cam/update`, { method: 'POST', body: 'not json' });
    assert.equal(bad.status, 400);

    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    assert.match(metrics, /^mediagate_live_v2v_sessions 1$/m);
    assert.match(metrics, /^mediagate_live_v2v_input_frames_total [1-9]/m);
    assert.match(metrics, /^mediagate_live_v2v_output_frames_total [1-9]/m);
    assert.match(metrics, /^mediagate_live_v2v_latency_seconds_count [1-9]/m);

    // The input ends: the session stops and the -out playlist ends.
    pub.child.kill('SIGTERM');
    await waitUntil(() => {
      void fetch(`${live}/cam/status`).then(async (r) => { status = (await r.json()) as Status; });
      return status?.gateway_status.state === 'stopped';
    }, 20_000, () => JSON.stringify(status));
    assert.equal(status!.gateway_status.stop_reason, 'input stream ended');
    assert.equal(status!.gateway_status.output.segments, status!.gateway_status.input.segments, 'the output of every input segment was taken before the stop');
    let outPlaylist = '';
    await waitUntil(() => {
      void fetch(`${gw.httpUrl}/stream/cam-out/source.m3u8`).then(async (r) => { outPlaylist = await r.text(); });
      return outPlaylist.includes('#EXT-X-ENDLIST');
    }, 30_000, () => outPlaylist);
    const after = await fetch(`${live}/cam/update`, { method: 'POST', body: '{"filter":"none"}' });
    assert.equal(after.status, 404, 'an ended session takes no update');
  } finally {
    pub.child.kill('SIGKILL');
    await gw.stop();
    await worker.close();
    await redis.stop();
  }
});

