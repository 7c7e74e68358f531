/**
 * /metrics during a live RTMP stream and an AI burst, on an in-process gateway with a real
 * redis-server, the embedded transcoder and a fake ai-runner worker: counters move with the
 * right labels, and no secret (stream key, API key, worker token) reaches the output.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAiWorker, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { freePort } from '../../helpers/ports.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { waitForEndedPlaylists } from '../../helpers/hls.ts';
import { appForSuite } from '../../helpers/suite-setup.ts';

const STREAM_KEY = 'metrics-SECRET-streamkey-55aa';
const API_KEY = 'mg-test-SECRET-apikey-0123456789';
const WORKER_TOKEN = 'worker-SECRET-token-9876';
let worker: FakeAiWorker;
let base: string;
let rtmpPort: number;

const gateway = appForSuite(async () => {
  worker = await startFakeAiWorker({ token: WORKER_TOKEN });
  rtmpPort = await freePort();
  return {
    rtmp: { port: rtmpPort }, ladder: ['P240p30fps16x9'], redis: { keyPrefix: 'metrics' },
    streamKeys: [{ streamKey: STREAM_KEY, manifestID: 'observed' }],
    ai: { apiKeys: [API_KEY], workers: [{ url: worker.url, token: WORKER_TOKEN, pipelines: [{ pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: true, capacity: 4 }] }] },
  };
});

before(async () => {
  await gateway.ready;
  base = gateway.httpUrl;
});

after(async () => {
  await worker?.close();
});

/** The value of one sample line, e.g. `mediagate_live_streams{protocol="rtmp"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return Number.NaN;
}

test('metrics move during a live stream and an AI burst, with the right labels and no secrets', { timeout: 120_000 }, async () => {
  const publisher = publish(await clipWith2sGop(12), `rtmp://127.0.0.1:${rtmpPort}/live/${STREAM_KEY}`);
  // Mid-stream: wait for transcoded segments, then fire the AI burst.
  let during = '';
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    during = await (await fetch(`${base}/metrics`)).text();
    if (sample(during, 'mediagate_segments_transcoded_total') >= 2) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(sample(during, 'mediagate_live_streams', { protocol: 'rtmp' }), 1, 'one live RTMP stream');
  assert.ok(sample(during, 'mediagate_segments_emerged_total') >= 2);

  const burst = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/text-to-image`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ prompt: 'x', width: 64, height: 64 }),
  })));
  assert.deepEqual([...new Set(burst.map((r) => r.status))], [200]);
  const unauthorized = await fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer wrong-key-SECRET-000000000' }, body: JSON.stringify({ prompt: 'x' }) });
  assert.equal(unauthorized.status, 401);

  assert.equal(await publisher.exited, 0);
  await waitForEndedPlaylists(base, 'observed', 2, 60_000);
  const text = await (await fetch(`${base}/metrics`)).text();

  const labels = { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo' };
  assert.equal(sample(text, 'mediagate_ai_requests_total', { ...labels, status_class: '2xx' }), 20);
  assert.equal(sample(text, 'mediagate_ai_requests_total', { ...labels, status_class: '4xx' }), 1);
  assert.equal(sample(text, 'mediagate_ai_request_duration_seconds_count', labels), 21);
  assert.equal(sample(text, 'mediagate_ai_workers'), 1);
  assert.equal(sample(text, 'mediagate_ai_workers_healthy'), 1);
  const emerged = sample(text, 'mediagate_segments_emerged_total');
  assert.ok(emerged >= 5, `segments emerged: ${emerged}`);
  assert.equal(sample(text, 'mediagate_segments_transcoded_total'), emerged, 'every emerged segment was transcoded');
  assert.ok(sample(text, 'mediagate_transcode_pixels_total') >= emerged * 426 * 240 * 40, 'pixels counted');
  assert.equal(sample(text, 'mediagate_transcode_duration_seconds_count'), emerged);
  assert.equal(sample(text, 'mediagate_live_streams', { protocol: 'rtmp' }), 0, 'the stream ended');
  assert.ok(sample(text, 'process_cpu_user_seconds_total') > 0 || sample(text, 'mediagate_process_cpu_user_seconds_total') > 0, 'process metrics');
  assert.ok(sample(text, 'mediagate_ledger_credits_total', { kind: 'transcode' }) > 0, 'transcoding charged');
  assert.ok(sample(text, 'mediagate_ledger_credits_total', { kind: 'ai' }) > 0, 'AI charged');
  assert.equal(sample(text, 'mediagate_ledger_entries_total', { kind: 'ai' }), 20, 'one ledger entry per successful AI request');
  assert.ok(!/manifest_id=/.test(text), 'no manifest ID labels unless enabled');
  for (const secret of [STREAM_KEY, API_KEY, WORKER_TOKEN, 'wrong-key-SECRET']) assert.ok(!text.includes(secret), `${secret} not in /metrics`);
});
