import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import { MetricsRegistry, type MetricsRegistryOptions, type PullSource } from '../../../src/metrics/metrics-registry.ts';
import { DEFAULT_MODEL_ID, type Pipeline } from '../../../src/domain/pipelines.ts';
import { HttpMetrics } from '../../../src/metrics/http-metrics.ts';
import { IngestMetrics, registerLiveStreamsGauge, type LiveStreamSourceEntry } from '../../../src/metrics/ingest-metrics.ts';
import { TranscodeMetrics, type TranscodeMetricsOptions } from '../../../src/metrics/transcode-metrics.ts';
import { AiMetrics, type AiMetricsOptions, type WorkerPoolSourceEntry } from '../../../src/metrics/ai-metrics.ts';
import { LedgerMetrics } from '../../../src/metrics/ledger-metrics.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { createPushRouter } from '../../../src/ingest/push-routes.ts';
import { createAiRouter, type AiRoutesOptions } from '../../../src/ai/ai-routes.ts';
import { silentLogger } from '../../../src/log/logger.ts';

type GatewayMetricsOptions = MetricsRegistryOptions & TranscodeMetricsOptions & AiMetricsOptions & { liveStreams?: PullSource<LiveStreamSourceEntry> };

/** One registry with every feature's families on it, as src/app.ts builds them for a gateway. */
function gatewayMetrics(options: GatewayMetricsOptions = {}) {
  const metrics = new MetricsRegistry(options);
  const families = {
    ingest: new IngestMetrics(metrics),
    transcode: new TranscodeMetrics(metrics, options),
    ai: new AiMetrics(metrics, options),
    ledger: new LedgerMetrics(metrics),
    http: new HttpMetrics(metrics),
  };
  registerLiveStreamsGauge(metrics, options.liveStreams);
  return {
    ...families,
    registry: metrics.registry,
    contentType: metrics.contentType,
    metricsText: () => metrics.metricsText(),
    forgetStream: (manifestID: string) => metrics.forgetStream(manifestID),
    close: () => metrics.close(),
  };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of Prometheus text format (label values here never hold `"` or `,`). */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(',').filter(Boolean)) {
      const eq = pair.indexOf('=');
      labels[pair.slice(0, eq)] = JSON.parse(pair.slice(eq + 1)) as string;
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with exactly these labels, or undefined. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = parseSamples(text).filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted);
  assert.ok(found.length <= 1, `${name} has ${found.length} samples with ${wanted}`);
  return found[0]?.value;
}

function samplesOf(text: string, name: string): Sample[] {
  return parseSamples(text).filter((s) => s.name === name);
}

const FAMILIES: Record<string, string> = {
  mediagate_segments_emerged_total: 'counter',
  mediagate_segments_transcoded_total: 'counter',
  mediagate_segments_failed_total: 'counter',
  mediagate_transcode_jobs_stalled_total: 'counter',
  mediagate_transcode_duration_seconds: 'histogram',
  mediagate_transcode_overall_latency_seconds: 'histogram',
  mediagate_transcode_realtime_ratio: 'histogram',
  mediagate_transcode_success_ratio: 'gauge',
  mediagate_transcode_pixels_total: 'counter',
  mediagate_live_streams: 'gauge',
  mediagate_push_requests_total: 'counter',
  mediagate_ai_requests_total: 'counter',
  mediagate_ai_errors_total: 'counter',
  mediagate_ai_request_duration_seconds: 'histogram',
  mediagate_ai_worker_failures_total: 'counter',
  mediagate_ai_workers: 'gauge',
  mediagate_ai_workers_healthy: 'gauge',
  mediagate_ai_workers_suspended: 'gauge',
  mediagate_ai_worker_in_flight_requests: 'gauge',
  mediagate_ai_worker_capacity: 'gauge',
  mediagate_ledger_entries_total: 'counter',
  mediagate_ledger_credits_total: 'counter',
  mediagate_http_request_duration_seconds: 'histogram',
  mediagate_metrics_source_errors_total: 'counter',
  mediagate_process_cpu_user_seconds_total: 'counter',
  mediagate_process_resident_memory_bytes: 'gauge',
  mediagate_nodejs_eventloop_lag_seconds: 'gauge',
};

/** TYPE of every family in the text; the family's name for counters keeps `_total` in prom-client. */
function familyTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    const h = /^# HELP (\S+) \S/.exec(line);
    if (h) helps.add(h[1]!);
  }
  for (const name of types.keys()) assert.ok(helps.has(name), `${name} has TYPE but no HELP`);
  return types;
}

const SECRET = 'sk-live-SECRETc0ffee0123456789abcdef';

async function listen(app: Express): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

async function send(port: number, method: string, path: string, options: { body?: string; headers?: Record<string, string>; abortAfterMs?: number } = {}): Promise<{ status: number; body: string } | 'aborted'> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => (options.abortAfterMs !== undefined ? resolve('aborted') : reject(err)));
    if (options.abortAfterMs !== undefined) setTimeout(() => req.destroy(), options.abortAfterMs);
    req.end(options.body);
  });
}

test('a scrape lists every metric family with HELP and TYPE, under the mediagate_ prefix', async () => {
  const metrics = gatewayMetrics();
  const text = await metrics.metricsText();
  const types = familyTypes(text);
  for (const [name, type] of Object.entries(FAMILIES)) assert.equal(types.get(name), type, name);
  for (const name of types.keys()) assert.ok(name.startsWith('mediagate_'), name);
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
  metrics.close();
});

test('transcode counters and histograms move with each segment, without a manifest label by default', async () => {
  const metrics = gatewayMetrics({ processMetrics: false });
  metrics.ingest.recordSegmentEmerged('cam1');
  metrics.ingest.recordSegmentEmerged('cam1');
  metrics.transcode.recordSegmentTranscoded({ manifestID: 'cam1', segmentDurationMs: 2000, transcodeElapsedMs: 500, outputPixels: 1280n * 720n * 60n, overallLatencyMs: 900 });
  metrics.transcode.recordSegmentFailed('cam1', 'undecodable');
  metrics.transcode.recordTranscodeJobStalled('cam1');
  metrics.transcode.recordSegmentFailed('cam1', 'transcoder_lost');
  const text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_segments_emerged_total'), 2);
  assert.equal(value(text, 'mediagate_transcode_jobs_stalled_total'), 1);
  assert.equal(value(text, 'mediagate_segments_failed_total', { reason_code: 'transcoder_lost' }), 1);
  assert.equal(value(text, 'mediagate_segments_transcoded_total'), 1);
  assert.equal(value(text, 'mediagate_segments_failed_total', { reason_code: 'undecodable' }), 1);
  assert.equal(value(text, 'mediagate_transcode_duration_seconds_count'), 1);
  assert.equal(value(text, 'mediagate_transcode_duration_seconds_sum'), 0.5);
  assert.equal(value(text, 'mediagate_transcode_duration_seconds_bucket', { le: '0.5' }), 1);
  assert.equal(value(text, 'mediagate_transcode_duration_seconds_bucket', { le: '0.25' }), 0);
  assert.equal(value(text, 'mediagate_transcode_overall_latency_seconds_sum'), 0.9);
  assert.equal(value(text, 'mediagate_transcode_realtime_ratio_sum'), 4);
  assert.equal(value(text, 'mediagate_transcode_pixels_total'), 1280 * 720 * 60);
  assert.equal(value(text, 'mediagate_transcode_success_ratio'), 1 / 3);
  assert.ok(!text.includes('manifest_id'), 'no manifest_id label when not enabled');
  assert.ok(!text.includes('cam1'));
});

test('manifest IDs become labels only when enabled, and invalid ones are bucketed as other', async () => {
  const metrics = gatewayMetrics({ processMetrics: false, manifestIdLabels: true });
  metrics.ingest.recordSegmentEmerged('cam1');
  metrics.ingest.recordSegmentEmerged('cam2');
  metrics.transcode.recordSegmentTranscoded({ manifestID: 'cam1', segmentDurationMs: 2000, transcodeElapsedMs: 1000, outputPixels: 100 });
  metrics.transcode.recordSegmentFailed('cam2', 'transcode_error');
  metrics.ingest.recordSegmentEmerged('../etc/passwd');
  const text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: 'cam1' }), 1);
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: 'cam2' }), 1);
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: 'other' }), 1);
  assert.equal(value(text, 'mediagate_segments_transcoded_total', { manifest_id: 'cam1' }), 1);
  assert.equal(value(text, 'mediagate_segments_failed_total', { manifest_id: 'cam2', reason_code: 'transcode_error' }), 1);
  assert.equal(value(text, 'mediagate_transcode_duration_seconds_count', { manifest_id: 'cam1' }), 1);
  assert.equal(value(text, 'mediagate_transcode_pixels_total', { manifest_id: 'cam1' }), 100);
  assert.ok(!text.includes('passwd'));
  // Series of other families never carry the manifest label.
  for (const s of [...samplesOf(text, 'mediagate_transcode_success_ratio'), ...samplesOf(text, 'mediagate_live_streams')]) {
    assert.equal(s.labels['manifest_id'], undefined);
  }
});

test('manifest IDs shaped like credentials, or flagged by isSecret, are bucketed as other', async () => {
  const keys = new Set(['studio-key-1']);
  const metrics = gatewayMetrics({ processMetrics: false, manifestIdLabels: true, isSecret: (v) => keys.has(v) });
  const uuid = '550e8400-e29b-41d4-a716-446655440000';
  for (const id of ['sk-live-abc', 'Zm9vYmFyYmF6cXV4cXV1eHF1dXg1234', 'studio-key-1', 'studio-a', uuid]) metrics.ingest.recordSegmentEmerged(id);
  const text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: 'other' }), 3);
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: 'studio-a' }), 1);
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: uuid }), 1);
  assert.ok(!text.includes('studio-key-1'));
});

test('forgetStream drops one stream\'s labelled series and keeps the others', async () => {
  const metrics = gatewayMetrics({ processMetrics: false, manifestIdLabels: true });
  for (const id of ['cam1', 'cam2']) {
    metrics.ingest.recordSegmentEmerged(id);
    metrics.transcode.recordSegmentTranscoded({ manifestID: id, segmentDurationMs: 2000, transcodeElapsedMs: 700, outputPixels: 10n, overallLatencyMs: 1000 });
    metrics.transcode.recordSegmentFailed(id, 'storage');
  }
  metrics.forgetStream('cam1');
  const text = await metrics.metricsText();
  assert.ok(!text.includes('"cam1"'), 'cam1 series removed');
  assert.equal(value(text, 'mediagate_segments_emerged_total', { manifest_id: 'cam2' }), 1);
  assert.equal(value(text, 'mediagate_transcode_pixels_total', { manifest_id: 'cam2' }), 10);
  assert.equal(value(text, 'mediagate_transcode_overall_latency_seconds_count', { manifest_id: 'cam2' }), 1);
  assert.equal(value(text, 'mediagate_segments_failed_total', { manifest_id: 'cam2', reason_code: 'storage' }), 1);
});

test('the success ratio covers a sliding window and is NaN when nothing finished in it', async () => {
  let nowMs = 1_000_000;
  const metrics = gatewayMetrics({ processMetrics: false, successRateWindowMs: 60_000, now: () => nowMs });
  assert.ok(Number.isNaN(value(await metrics.metricsText(), 'mediagate_transcode_success_ratio')));
  metrics.transcode.recordSegmentFailed('a', 'transcode_error');
  nowMs += 30_000;
  for (let i = 0; i < 3; i++) metrics.transcode.recordSegmentTranscoded({ manifestID: 'a', segmentDurationMs: 2000, transcodeElapsedMs: 500, outputPixels: 1 });
  assert.equal(value(await metrics.metricsText(), 'mediagate_transcode_success_ratio'), 0.75);
  nowMs += 45_000; // the failure is now older than the window
  assert.equal(value(await metrics.metricsText(), 'mediagate_transcode_success_ratio'), 1);
  nowMs += 120_000;
  assert.ok(Number.isNaN(value(await metrics.metricsText(), 'mediagate_transcode_success_ratio')));
  // The counters are cumulative regardless of the window.
  assert.equal(value(await metrics.metricsText(), 'mediagate_segments_failed_total', { reason_code: 'transcode_error' }), 1);
});

test('AI requests, errors, latency and worker failures are counted by pipeline, model and kind', async () => {
  const metrics = gatewayMetrics({ processMetrics: false });
  metrics.ai.recordAiRequest({ pipeline: 'text-to-image', modelID: 'stabilityai/sdxl-turbo', statusCode: 200, durationMs: 1500 });
  metrics.ai.recordAiRequest({ pipeline: 'text-to-image', modelID: 'stabilityai/sdxl-turbo', statusCode: 402, durationMs: 5 });
  metrics.ai.recordAiRequest({ pipeline: 'llm', modelID: 'meta-llama/llama-3.1-8B-Instruct', statusCode: 503, durationMs: 20, errorKind: 'no_worker' });
  metrics.ai.recordAiWorkerFailure('llm', 'meta-llama/llama-3.1-8B-Instruct', 'timeout');
  const text = await metrics.metricsText();
  const t2i = { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo' };
  const llm = { pipeline: 'llm', model_id: 'meta-llama/llama-3.1-8B-Instruct' };
  assert.equal(value(text, 'mediagate_ai_requests_total', { ...t2i, status_class: '2xx' }), 1);
  assert.equal(value(text, 'mediagate_ai_requests_total', { ...t2i, status_class: '4xx' }), 1);
  assert.equal(value(text, 'mediagate_ai_errors_total', { ...t2i, kind: 'insufficient_balance' }), 1);
  assert.equal(value(text, 'mediagate_ai_errors_total', { ...llm, kind: 'no_worker' }), 1);
  assert.equal(value(text, 'mediagate_ai_request_duration_seconds_count', t2i), 2);
  assert.equal(value(text, 'mediagate_ai_request_duration_seconds_sum', t2i), 1.505);
  assert.equal(value(text, 'mediagate_ai_worker_failures_total', { ...llm, kind: 'timeout' }), 1);
  assert.equal(samplesOf(text, 'mediagate_ai_errors_total').length, 2, 'a 2xx is not an error');
});

test('a model ID that looks secret, is odd, or is not known to the gateway is labelled other', async () => {
  const known = new Set(['stabilityai/sdxl-turbo']);
  const metrics = gatewayMetrics({ processMetrics: false, knownModel: (_p, m) => known.has(m) });
  for (const modelID of [SECRET, 'hf_AbCdEfGhIjKlMnOpQrStUvWx', 'a b"c', 'x'.repeat(300), 'org/not-registered', 'stabilityai/sdxl-turbo']) {
    metrics.ai.recordAiRequest({ pipeline: 'text-to-image', modelID, statusCode: 200, durationMs: 1 });
  }
  const text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_ai_requests_total', { pipeline: 'text-to-image', model_id: 'other', status_class: '2xx' }), 5);
  assert.equal(value(text, 'mediagate_ai_requests_total', { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', status_class: '2xx' }), 1);
  assert.ok(!text.includes('not-registered'));
});

test('pull gauges reflect the live-stream and worker-pool sources at each scrape', async () => {
  const unsourced = gatewayMetrics({ processMetrics: false });
  let text = await unsourced.metricsText();
  assert.equal(samplesOf(text, 'mediagate_live_streams').length, 0, 'no source: no live-stream series');
  assert.equal(value(text, 'mediagate_ai_workers'), 0);

  let streams = [{ protocol: 'rtmp' }, { protocol: 'rtmp' }, { protocol: 'push' }];
  let workers: WorkerPoolSourceEntry[] = [
    { healthy: true, pipelines: [{ pipeline: 'text-to-image', inFlight: 2, capacity: 4 }, { pipeline: 'llm', inFlight: 1, capacity: 1 }] },
    { healthy: false, suspendedUntil: new Date().toISOString(), pipelines: [{ pipeline: 'text-to-image', inFlight: 0, capacity: 2 }] },
    { healthy: true, pipelines: [{ pipeline: 'text-to-image', inFlight: 3, capacity: 3 }] },
  ];
  let calls = 0;
  const metrics = gatewayMetrics({ processMetrics: false, liveStreams: () => streams, workerPool: () => { calls += 1; return workers; } });
  text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_live_streams', { protocol: 'rtmp' }), 2);
  assert.equal(value(text, 'mediagate_live_streams', { protocol: 'push' }), 1);
  assert.equal(value(text, 'mediagate_ai_workers'), 3);
  assert.equal(value(text, 'mediagate_ai_workers_healthy'), 2);
  assert.equal(value(text, 'mediagate_ai_workers_suspended'), 1);
  assert.equal(value(text, 'mediagate_ai_worker_in_flight_requests', { pipeline: 'text-to-image' }), 5);
  assert.equal(value(text, 'mediagate_ai_worker_in_flight_requests', { pipeline: 'llm' }), 1);
  assert.equal(value(text, 'mediagate_ai_worker_capacity', { pipeline: 'text-to-image' }), 9);
  assert.equal(calls, 1, 'the worker source is read once per scrape');

  streams = [];
  workers = [];
  text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_live_streams', { protocol: 'rtmp' }), 0);
  assert.equal(value(text, 'mediagate_ai_workers'), 0);
  assert.equal(samplesOf(text, 'mediagate_ai_worker_in_flight_requests').length, 0);
});

test('a pull source that throws is counted and does not fail the scrape', async () => {
  const metrics = gatewayMetrics({
    processMetrics: false,
    workerPool: () => { throw new Error(`registry broke ${SECRET}`); },
    liveStreams: async () => { throw new Error('ingest broke'); },
  });
  const text = await metrics.metricsText();
  assert.equal(value(text, 'mediagate_metrics_source_errors_total', { source: 'worker_pool' }), 1);
  assert.equal(value(text, 'mediagate_metrics_source_errors_total', { source: 'live_streams' }), 1);
  assert.equal(samplesOf(text, 'mediagate_live_streams').length, 0);
  assert.ok(!text.includes(SECRET));
});

test('ledger totals are summed exactly from bigint amounts; bad amounts are dropped', async () => {
  const metrics = gatewayMetrics({ processMetrics: false });
  metrics.ledger.recordLedgerEntry('transcode', 2n ** 53n);
  metrics.ledger.recordLedgerEntry('transcode', 1n);
  metrics.ledger.recordLedgerEntry('transcode', 1n);
  metrics.ledger.recordLedgerEntry('ai', 250);
  metrics.ledger.recordLedgerEntry('topup', 1000n);
  metrics.ledger.recordLedgerEntry('ai', -5n);
  metrics.ledger.recordLedgerEntry('ai', 0.5);
  const text = await metrics.metricsText();
  // Float accumulation would lose both +1s at 2^53; the exact sum is 2^53 + 2.
  assert.equal(value(text, 'mediagate_ledger_credits_total', { kind: 'transcode' }), 2 ** 53 + 2);
  assert.equal(value(text, 'mediagate_ledger_credits_total', { kind: 'ai' }), 250);
  assert.equal(value(text, 'mediagate_ledger_credits_total', { kind: 'topup' }), 1000);
  assert.equal(value(text, 'mediagate_ledger_entries_total', { kind: 'transcode' }), 3);
  assert.equal(value(text, 'mediagate_ledger_entries_total', { kind: 'ai' }), 3);
});

test('a secret passed wherever a label could come from never appears in the scrape', async () => {
  const metrics = gatewayMetrics({
    manifestIdLabels: true,
    liveStreams: () => [{ protocol: SECRET }],
    workerPool: () => [{ healthy: true, pipelines: [{ pipeline: SECRET, inFlight: 1, capacity: 1 }] }],
  });
  const s = SECRET as never;
  metrics.ingest.recordSegmentEmerged(SECRET);
  metrics.transcode.recordSegmentTranscoded({ manifestID: SECRET, segmentDurationMs: 2000, transcodeElapsedMs: 100, outputPixels: 1 });
  metrics.transcode.recordSegmentFailed(SECRET, s);
  metrics.transcode.recordSegmentFailed('cam1', s);
  metrics.ai.recordAiRequest({ pipeline: SECRET, modelID: SECRET, statusCode: 500, durationMs: 1, errorKind: s });
  metrics.ai.recordAiRequest({ pipeline: 'llm', modelID: `org/${SECRET}`, statusCode: 200, durationMs: 1 });
  metrics.ai.recordAiWorkerFailure(SECRET, SECRET, s);
  metrics.ledger.recordLedgerEntry(s, 5n);
  metrics.ingest.recordPushRequest(Number.NaN);
  const text = await metrics.metricsText();
  assert.ok(!text.includes('SECRET'), 'the secret leaked into the scrape');
  assert.equal(value(text, 'mediagate_segments_failed_total', { manifest_id: 'cam1', reason_code: 'other' }), 1);
  assert.equal(value(text, 'mediagate_ai_errors_total', { pipeline: 'other', model_id: 'other', kind: 'other' }), 1);
  assert.equal(value(text, 'mediagate_live_streams', { protocol: 'other' }), 1);
  assert.equal(value(text, 'mediagate_ledger_entries_total', { kind: 'other' }), 1);
});

test('two instances share no state', async () => {
  const a = gatewayMetrics({ liveStreams: () => [{ protocol: 'rtmp' }] });
  const b = gatewayMetrics();
  a.ingest.recordSegmentEmerged('cam1');
  a.ledger.recordLedgerEntry('ai', 7n);
  const textA = await a.metricsText();
  const textB = await b.metricsText();
  assert.equal(value(textA, 'mediagate_segments_emerged_total'), 1);
  assert.equal(value(textB, 'mediagate_segments_emerged_total'), 0);
  assert.equal(value(textA, 'mediagate_ledger_credits_total', { kind: 'ai' }), 7);
  assert.equal(samplesOf(textB, 'mediagate_ledger_credits_total').length, 0);
  assert.equal(samplesOf(textB, 'mediagate_live_streams').length, 0);
  assert.notEqual(a.registry, b.registry);
  a.close();
  a.close();
  assert.equal((await a.metricsText()).trim(), '', 'closed: nothing registered');
  assert.equal(value(await b.metricsText(), 'mediagate_segments_emerged_total'), 0);
});

test('over HTTP: GET /metrics serves the text, and pushes, AI requests and routes are counted without secrets', async () => {
  const metrics = gatewayMetrics({ knownModel: (_p, m) => m === 'stabilityai/sdxl-turbo' });
  const workDir = mkdtempSync(join(tmpdir(), 'mg-metrics-http-'));
  // The real push and AI routers record through their ports; only what lies behind them is faked.
  const sessions = {
    route: async (routed: { request: { fields: Record<string, unknown> } }, accept: (reply: unknown, worker: unknown) => Promise<unknown>) => {
      const prompt = routed.request.fields['prompt'];
      if (prompt === 'slow') await new Promise((r) => setTimeout(r, 300));
      if (prompt === 'broke') throw new GatewayError('WORKER_FAILED');
      const reply = await accept({ kind: 'json', status: 200, body: { images: [] } }, { workerID: 'w1', endpoint: { url: 'http://127.0.0.1:9' }, timeoutMs: 1000 });
      return { reply, workerID: 'w1', attempts: 1, done: () => undefined };
    },
  } as unknown as AiRoutesOptions['sessions'];
  const notUsed = async (): Promise<never> => { throw new Error('not used in this test'); };
  const app = createHttpApp({
    logger: silentLogger(),
    health: async () => ({ status: 'ok', checks: {} }),
    routers: [
      metrics.http.router(),
      createPushRouter({
        ingest: { push: async (segment) => ({ manifestID: segment.streamName, seq: segment.seq, renditions: [], replayed: false }) },
        storage: { getFile: notUsed }, remuxer: { toMp4: notUsed }, workDir, maxBodyBytes: 1024 * 1024, recorder: metrics.ingest, logger: silentLogger(),
      }),
      createAiRouter({
        sessions, registry: { modelFor: (p: Pipeline) => DEFAULT_MODEL_ID[p] } as unknown as AiRoutesOptions['registry'], authorizer: { authorize: async () => ({}) },
        results: { putBytes: notUsed, getStream: notUsed }, fetchMedia: notUsed, framesToMp4: notUsed, probeAudioMs: notUsed,
        uploadDir: workDir, publicUrl: 'http://127.0.0.1', adminToken: '', loopbackOnly: true, maxImageBytes: 1024, maxAudioBytes: 1024,
        recorder: metrics.ai, logger: silentLogger(),
      }),
    ],
  });
  const { server, port } = await listen(app);
  try {
    const auth = { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' };
    assert.deepEqual(await send(port, 'POST', `/live/${SECRET.replace(/[^A-Za-z0-9_-]/g, '')}/0.ts`, { body: 'x', headers: auth }), { status: 200, body: '' });
    assert.equal((await send(port, 'GET', '/live/key/1.ts') as { status: number }).status, 405);
    const ok = await send(port, 'POST', '/text-to-image', { body: JSON.stringify({ prompt: 'a cat', model_id: 'stabilityai/sdxl-turbo' }), headers: auth });
    assert.equal((ok as { status: number }).status, 200);
    await send(port, 'POST', '/text-to-image', { body: JSON.stringify({ prompt: 'a dog', model_id: SECRET }), headers: auth });
    await send(port, 'POST', '/text-to-image', { body: JSON.stringify({ prompt: 'broke' }), headers: auth });
    assert.equal(await send(port, 'POST', '/text-to-image', { body: JSON.stringify({ prompt: 'slow' }), headers: auth, abortAfterMs: 50 }), 'aborted');
    await send(port, 'GET', `/nothing/${SECRET}`);
    await new Promise((r) => setTimeout(r, 400));

    const scraped = await send(port, 'GET', '/metrics');
    assert.ok(scraped !== 'aborted');
    assert.equal(scraped.status, 200);
    const text = scraped.body;
    assert.ok(!text.includes('SECRET'), 'a secret leaked into /metrics');
    assert.equal(value(text, 'mediagate_push_requests_total', { status_code: '200' }), 1);
    assert.equal(value(text, 'mediagate_push_requests_total', { status_code: '405' }), 1);
    const t2i = { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo' };
    // The default model is used when model_id is absent.
    assert.equal(value(text, 'mediagate_ai_requests_total', { ...t2i, status_class: '2xx' }), 1);
    assert.equal(value(text, 'mediagate_ai_requests_total', { ...t2i, status_class: '5xx' }), 1);
    assert.equal(value(text, 'mediagate_ai_requests_total', { ...t2i, status_class: 'aborted' }), 1);
    assert.equal(value(text, 'mediagate_ai_requests_total', { pipeline: 'text-to-image', model_id: 'other', status_class: '2xx' }), 1);
    assert.equal(value(text, 'mediagate_ai_errors_total', { ...t2i, kind: 'worker_failed' }), 1);
    assert.equal(value(text, 'mediagate_ai_errors_total', { ...t2i, kind: 'aborted' }), 1);
    assert.equal(value(text, 'mediagate_http_request_duration_seconds_count', { method: 'POST', route: '/live/*path', status_code: '200' }), 1);
    assert.equal(value(text, 'mediagate_http_request_duration_seconds_count', { method: 'POST', route: '/text-to-image', status_code: '503' }), 1);
    assert.equal(value(text, 'mediagate_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1);
    assert.match(text, /mediagate_process_cpu_user_seconds_total \d/);
  } finally {
    await new Promise((r) => server.close(r));
    server.closeAllConnections();
    rmSync(workDir, { recursive: true, force: true });
  }
});
