/**
 * Features record their own metrics through their recorder ports: the real feature code
 * (AI routes, LiveIngest's push, TranscodeResults) is given the real metric family as its
 * port, and the scrape shows the samples it recorded with the values it held typed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsRegistry } from '../../../src/metrics/metrics-registry.ts';
import { HttpMetrics } from '../../../src/metrics/http-metrics.ts';
import { AiMetrics } from '../../../src/metrics/ai-metrics.ts';
import { IngestMetrics } from '../../../src/metrics/ingest-metrics.ts';
import { TranscodeMetrics } from '../../../src/metrics/transcode-metrics.ts';
import { createAiRouter, type AiRoutesOptions } from '../../../src/ai/ai-routes.ts';
import type { AiRecorder } from '../../../src/ai/ai-recorder.ts';
import type { IngestRecorder } from '../../../src/ingest/ingest-ports.ts';
import { LiveIngest, StaticKeyAuthorizer, type PushedSegment } from '../../../src/ingest/live-ingest.ts';
import { TranscodeResults, type ResultsMetrics } from '../../../src/transcode/transcode-results.ts';
import { createHttpApp } from '../../../src/http/http-app.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { parseLadder } from '../../../src/domain/profile.ts';
import { DEFAULT_MODEL_ID, type Pipeline } from '../../../src/domain/pipelines.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { bookkeepingIndex, ingestOptions, unusedPushClaims } from '../../helpers/ingest-stand-ins.ts';

/** The value of the sample `name{labels}` (labels in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function post(port: number, path: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the families fit the recorder ports their features declare, and a call through a port lands in its family', async () => {
  const metrics = new MetricsRegistry({ processMetrics: false });
  // metrics/ implements the ports structurally, without importing them (tsc checks these assignments).
  const ai: AiRecorder = new AiMetrics(metrics);
  const ingest: IngestRecorder = new IngestMetrics(metrics);
  const transcode: ResultsMetrics = new TranscodeMetrics(metrics);
  ai.recordAiRequest({ pipeline: 'upscale', modelID: 'stabilityai/stable-diffusion-x4-upscaler', statusCode: 413, durationMs: 3, errorKind: 'too_large' });
  ingest.recordSegmentEmerged('cam');
  ingest.recordPushRequest('aborted');
  transcode.recordSegmentTranscoded({ manifestID: 'cam', segmentDurationMs: 2000, transcodeElapsedMs: 1000, outputPixels: 640n * 360n * 48n });
  const text = await metrics.metricsText();
  assert.equal(sample(text, 'mediagate_ai_errors_total', { pipeline: 'upscale', model_id: 'stabilityai/stable-diffusion-x4-upscaler', kind: 'too_large' }), 1);
  assert.equal(sample(text, 'mediagate_segments_emerged_total'), 1);
  assert.equal(sample(text, 'mediagate_push_requests_total', { status_code: 'aborted' }), 1);
  assert.equal(sample(text, 'mediagate_transcode_pixels_total'), 640 * 360 * 48);
  metrics.close();
});

test('the AI routes record each pipeline request with its pipeline, resolved model, status and error kind, refused ones too', async () => {
  const metrics = new MetricsRegistry({ processMetrics: false });
  const aiMetrics = new AiMetrics(metrics);
  const http = new HttpMetrics(metrics);
  const uploadDir = mkdtempSync(join(tmpdir(), 'mg-ai-recorder-'));
  const notUsed = async (): Promise<never> => { throw new Error('not used in this test'); };
  const sessions = {
    route: async (routed: { modelID: string }) => {
      throw new GatewayError('NO_WORKER', `no worker serves model_id "${routed.modelID}"`);
    },
  } as unknown as AiRoutesOptions['sessions'];
  const app = createHttpApp({
    logger: silentLogger(),
    health: async () => ({ status: 'ok', checks: {} }),
    routers: [
      http.router(),
      createAiRouter({
        sessions, registry: { modelFor: (p: Pipeline) => DEFAULT_MODEL_ID[p] } as unknown as AiRoutesOptions['registry'],
        authorizer: {
          authorize: async (key) => {
            if (key !== 'good-key') throw new GatewayError('UNAUTHORIZED', 'invalid API key');
            return {};
          },
        },
        results: { putBytes: notUsed, getStream: notUsed }, fetchMedia: notUsed, framesToMp4: notUsed, probeAudioMs: notUsed,
        uploadDir, publicUrl: 'http://127.0.0.1', adminToken: '', loopbackOnly: true, maxImageBytes: 1024, maxAudioBytes: 1024,
        recorder: aiMetrics, logger: silentLogger(),
      }),
    ],
  });
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  const port = (server.address() as AddressInfo).port;
  try {
    const json = { 'content-type': 'application/json' };
    // Refused by the API-key check before any body is read: the pipeline's default model.
    assert.equal(await post(port, '/text-to-image', JSON.stringify({ prompt: 'x', model_id: 'org/named' }), { ...json, authorization: 'Bearer wrong' }), 401);
    // The llm pipeline names its model in `model`; no worker serves it.
    assert.equal(await post(port, '/llm', JSON.stringify({ model: 'org/llm-model', messages: [{ role: 'user', content: 'hi' }] }), { ...json, authorization: 'Bearer good-key' }), 503);
    // Refused by the request validator (a required field is missing).
    assert.equal(await post(port, '/text-to-image', JSON.stringify({ model_id: 'org/named' }), { ...json, authorization: 'Bearer good-key' }), 400);
    const text = await metrics.metricsText();
    const t2iDefault = { pipeline: 'text-to-image', model_id: DEFAULT_MODEL_ID['text-to-image'] };
    assert.equal(sample(text, 'mediagate_ai_requests_total', { ...t2iDefault, status_class: '4xx' }), 1);
    assert.equal(sample(text, 'mediagate_ai_errors_total', { ...t2iDefault, kind: 'unauthorized' }), 1);
    assert.equal(sample(text, 'mediagate_ai_errors_total', { pipeline: 'llm', model_id: 'org/llm-model', kind: 'no_worker' }), 1);
    assert.equal(sample(text, 'mediagate_ai_errors_total', { pipeline: 'text-to-image', model_id: 'org/named', kind: 'invalid_request' }), 1);
    assert.equal(sample(text, 'mediagate_ai_request_duration_seconds_count', { pipeline: 'llm', model_id: 'org/llm-model' }), 1);
    // The route label comes from the AI router's own table, also for a request refused before its route.
    assert.equal(sample(text, 'mediagate_http_request_duration_seconds_count', { method: 'POST', route: '/text-to-image', status_code: '401' }), 1);
    assert.equal(sample(text, 'mediagate_http_request_duration_seconds_count', { method: 'POST', route: '/llm', status_code: '503' }), 1);
  } finally {
    await new Promise((r) => server.close(r));
    server.closeAllConnections();
    rmSync(uploadDir, { recursive: true, force: true });
    metrics.close();
  }
});

test('LiveIngest counts a pushed segment as emerged once it is queued, and not again for its replay', async () => {
  const metrics = new MetricsRegistry({ processMetrics: false, manifestIdLabels: true });
  const ingestMetrics = new IngestMetrics(metrics);
  const claims = new Map<number, { state: 'pending' | 'done' | 'failed'; result?: string }>();
  const ingest = new LiveIngest(ingestOptions({
    authorizer: new StaticKeyAuthorizer([], parseLadder(['P144p30fps16x9'])),
    index: bookkeepingIndex(),
    pushClaims: unusedPushClaims({
      claimPush: async (_m, _s, seq) => {
        const claim = claims.get(seq);
        if (!claim) {
          claims.set(seq, { state: 'pending' });
          return { claim: 'new' };
        }
        return { claim: 'same', ...claim };
      },
      settlePush: async (_m, _s, seq, state, result) => { claims.set(seq, { state, result }); },
      pushState: async (_m, _s, seq) => claims.get(seq),
    }),
    queue: { enqueue: async () => undefined, enqueueAndWait: async (job) => ({ manifestID: job.manifestID, seq: job.seq, elapsedMs: 10, renditions: [] }) },
    storage: { putFile: async () => ({ sizeBytes: 100_000 }) },
    probe: {
      probe: async () => ({
        video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, frames: 48, codec: 'h264', profile: 'High', pixelFormat: 'yuv420p' },
        audio: { codec: 'aac', profile: 'LC' }, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 24, durationMs: 2000,
      }),
    },
    defaultAccountID: undefined,
    recorder: ingestMetrics,
  }));
  const pushed = (seq: number): PushedSegment => ({
    streamName: 'cam', seq, container: 'ts', bodyPath: '/nonexistent/body.ts', sha256: `sha-${seq}`, url: 'http://127.0.0.1:1/live/cam/0.ts', scratchTsPath: '/nonexistent/scratch.ts',
  });
  try {
    await ingest.push(pushed(0));
    assert.equal((await ingest.push(pushed(0))).replayed, true);
    await ingest.push(pushed(1));
    const text = await metrics.metricsText();
    assert.equal(sample(text, 'mediagate_segments_emerged_total', { manifest_id: 'cam' }), 2);
  } finally {
    await ingest.close();
    metrics.close();
  }
});

test('TranscodeResults records a job failed for good with the reason its error code names', async () => {
  const metrics = new MetricsRegistry({ processMetrics: false });
  const results = new TranscodeResults({
    index: { getStream: async () => undefined, record: async () => ({ accepted: true }) },
    metrics: new TranscodeMetrics(metrics),
    retry: { deadline: () => 0, run: (_what, op) => op() },
    events: { emit: () => undefined },
    logger: silentLogger(),
  });
  const job = { manifestID: 'cam', session: 's1', seq: 3, sourceKey: 'cam/s1/source/3.ts', durationMs: 2000, profiles: [], enqueuedAtMs: 0 };
  await results.failedForGood(job, 'segment 3 cannot be decoded', 'UNDECODABLE_MEDIA', 'error');
  await results.failedForGood({ ...job, seq: 4 }, 'lost twice', 'TRANSCODE_FAILED', 'transcoder_lost');
  results.transcoderLost(job);
  const text = await metrics.metricsText();
  assert.equal(sample(text, 'mediagate_segments_failed_total', { reason_code: 'undecodable' }), 1);
  assert.equal(sample(text, 'mediagate_segments_failed_total', { reason_code: 'transcoder_lost' }), 1);
  assert.equal(sample(text, 'mediagate_transcode_jobs_stalled_total'), 1);
  metrics.close();
});
