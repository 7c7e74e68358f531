/**
 * Live video-to-video with the reference worker (cmd/ai-worker.ts, its `live-video-to-video`
 * pipeline) as a real process on a real gateway process, the clip published over RTMP: the
 * worker registers the capability itself; a JSON start gets it running; the `-out` stream is
 * listed through the gateway's own ingest; an update reaches the worker (its next status
 * event carries the new params); the status shows the worker's event and the gateway's
 * figures; when the publisher stops, the session takes the worker's last output and stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../../helpers/redis-server.ts';
import { publish, spawnMediagate, startGateway, waitForHttp, waitForListedSegments, waitUntil } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';
import { freePort } from '../../helpers/ports.ts';

interface Status {
  type?: string;
  state?: string;
  inference_status?: { last_params?: unknown };
  gateway_status: { state: string; stop_reason?: string; worker_id?: string; input: { segments: number }; output: { segments: number }; latency_ms?: number };
}

test('the reference worker\'s live pipeline behind a real gateway: start → -out listed → update applied → status → stop with the input', { timeout: 85_000 }, async () => {
  const redis = await startRedis();
  const gw = await startGateway(redis.url, { MEDIAGATE_LADDER: '["P144p30fps16x9"]', MEDIAGATE_AI_HEALTH_INTERVAL_MS: '500' });
  const port = await freePort();
  const worker = spawnMediagate('ai-worker', {
    MEDIAGATE_AI_WORKER_PORT: String(port), MEDIAGATE_AI_WORKER_GATEWAY_URL: gw.httpUrl, MEDIAGATE_AI_WORKER_MODELS: '',
    MEDIAGATE_AI_WORKER_REGISTER_INTERVAL_MS: '500', MEDIAGATE_AI_WORKER_LIVE_STATUS_INTERVAL_MS: '1000',
  });
  const pub = publish(CLIP, gw.rtmpUrl('cam'));
  const live = `${gw.httpUrl}/live/video-to-video`;
  let status: Status | undefined;
  const poll = (): Status | undefined => {
    void fetch(`${live}/cam/status`).then(async (r) => { if (r.status === 200) status = (await r.json()) as Status; });
    return status;
  };
  try {
    await waitForHttp(`http://127.0.0.1:${port}/health`, worker, 60_000);
    let offered = false;
    await waitUntil(() => {
      void fetch(`${gw.httpUrl}/api/workers`).then(async (r) => {
        const { workers } = (await r.json()) as { workers: { healthy: boolean; pipelines: { pipeline: string; model_id: string }[] }[] };
        offered = workers.some((w) => w.healthy && w.pipelines.some((p) => p.pipeline === 'live-video-to-video' && p.model_id === 'mediagate/cpu-filter'));
      });
      return offered;
    }, 30_000, () => 'the worker never offered live-video-to-video');
    await waitForListedSegments(`${gw.httpUrl}/stream/cam/source.m3u8`, 1, gw.proc);

    const started = await fetch(`${live}/cam/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ params: { filter: 'negate' } }) });
    const reply = (await started.json()) as { state: string; model_id: string };
    assert.equal(started.status, 200, JSON.stringify(reply));
    assert.deepEqual([reply.state, reply.model_id], ['running', 'mediagate/cpu-filter'], 'no model named: the default live model');
    await waitForListedSegments(`${gw.httpUrl}/stream/cam-out/source.m3u8`, 2, gw.proc, 60_000);

    assert.equal((await fetch(`${live}/cam/update`, { method: 'POST', body: '{"filter":"grayscale"}' })).status, 200);
    await waitUntil(() => JSON.stringify(poll()?.inference_status?.last_params) === '{"filter":"grayscale"}', 15_000, () => JSON.stringify(status));
    assert.equal(status!.type, 'status');
    assert.equal(status!.gateway_status.state, 'running');
    assert.ok(status!.gateway_status.output.segments >= 2 && status!.gateway_status.latency_ms !== undefined, JSON.stringify(status!.gateway_status));

    pub.child.kill('SIGTERM');
    await waitUntil(() => poll()?.gateway_status.state === 'stopped', 30_000, () => JSON.stringify(status?.gateway_status));
    assert.equal(status!.gateway_status.stop_reason, 'input stream ended');
    let playlist = '';
    await waitUntil(() => {
      void fetch(`${gw.httpUrl}/stream/cam-out/source.m3u8`).then(async (r) => { playlist = await r.text(); });
      return playlist.includes('#EXT-X-ENDLIST');
    }, 30_000, () => playlist);
  } finally {
    pub.child.kill('SIGKILL');
    await worker.stop();
    await gw.stop();
    await redis.stop();
  }
});
