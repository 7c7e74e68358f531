/**
 * AI routing overhead, in one run, against the limit: the same fast ai-runner-compatible
 * worker (test/helpers/fake-ai-worker.ts, answering at once) called (a) directly and
 * (b) through the gateway (validation, selection, forwarding, re-hosting the result media
 * in the object store), at concurrency 1 and 32.
 *
 * Usage: node --import tsx bench/ai-overhead.ts [--requests 400]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { startRedis } from '../test/helpers/redis-server.ts';
import { startFakeAiWorker } from '../test/helpers/fake-ai-worker.ts';
import { encodePng } from '../test/helpers/png.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/log/logger.ts';
import { startApp } from '../src/app.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '400' } } });
const requests = Number(values.requests);

const redis = await startRedis();
const worker = await startFakeAiWorker();
const dataDir = mkdtempSync(join(tmpdir(), 'mg-bench-ai-'));
const app = await startApp(loadConfig({
  overrides: {
    http: { port: 0 }, rtmp: { enabled: false }, transcode: { embedded: false }, log: { level: 'silent' },
    redis: { url: redis.url, keyPrefix: 'bench' }, storage: { dir: join(dataDir, 'objects') }, workDir: join(dataDir, 'work'),
    ai: { queueWaitMs: 60_000, maxImageBytes: 8 * 1024 * 1024 },
  },
}), createLogger({ level: 'silent' }), 'gateway');
const gateway = `http://127.0.0.1:${app.httpPort}`;
await fetch(`${gateway}/api/workers`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ url: worker.url, pipelines: [
    { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: true, capacity: 64 },
    { pipeline: 'upscale', model_id: 'stabilityai/stable-diffusion-x4-upscaler', warm: true, capacity: 64 },
  ] }),
});

// A ~1 MB PNG: 580x580 of random noise does not compress.
const random = randomBytes(580 * 580 * 3);
const bigPng = encodePng(580, 580, (x, y) => {
  const i = (y * 580 + x) * 3;
  return [random[i]!, random[i + 1]!, random[i + 2]!];
});

const t2iBody = JSON.stringify({ prompt: 'a bunny in a meadow', width: 64, height: 64 });
const cases = {
  'text-to-image (JSON)': (base: string) => fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: t2iBody }),
  [`upscale (${(bigPng.length / 1e6).toFixed(2)} MB multipart)`]: (base: string) => {
    const form = new FormData();
    form.append('prompt', 'sharper');
    form.append('image', new Blob([bigPng], { type: 'image/png' }), 'in.png');
    return fetch(`${base}/upscale`, { method: 'POST', body: form });
  },
};

async function measure(send: () => Promise<Response>, count: number, concurrency: number): Promise<{ rps: number; medianMs: number; p99Ms: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next += 1;
      const t0 = performance.now();
      const res = await send();
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      latencies.push(performance.now() - t0);
    }
  }));
  const wallS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * p) - 1)]!;
  return { rps: count / wallS, medianMs: pct(0.5), p99Ms: pct(0.99) };
}

const rows: Record<string, unknown>[] = [];
for (const [name, send] of Object.entries(cases)) {
  for (const concurrency of [1, 32]) {
    const count = name.startsWith('upscale') ? Math.max(64, Math.floor(requests / 4)) : requests;
    await measure(() => send(worker.url), 20, concurrency); // warm-up
    await measure(() => send(gateway), 20, concurrency);
    const direct = await measure(() => send(worker.url), count, concurrency);
    const via = await measure(() => send(gateway), count, concurrency);
    rows.push({
      request: name, concurrency, requests: count,
      directRps: direct.rps, gatewayRps: via.rps, rpsRatio: via.rps / direct.rps,
      directMedianMs: direct.medianMs, gatewayMedianMs: via.medianMs, addedMedianMs: via.medianMs - direct.medianMs,
      directP99Ms: direct.p99Ms, gatewayP99Ms: via.p99Ms, addedP99Ms: via.p99Ms - direct.p99Ms,
    });
  }
}

const f = (n: unknown, d = 2): string => (n as number).toFixed(d);
process.stdout.write(`\nAI routing overhead on ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}\n\n`);
process.stdout.write('| request | conc. | direct rps | gateway rps | ratio | direct p50 ms | gateway p50 ms | added p50 ms | direct p99 ms | gateway p99 ms | added p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|\n');
for (const r of rows) {
  process.stdout.write(`| ${r['request']} | ${r['concurrency']} | ${f(r['directRps'], 0)} | ${f(r['gatewayRps'], 0)} | ${f(r['rpsRatio'])} | ${f(r['directMedianMs'])} | ${f(r['gatewayMedianMs'])} | ${f(r['addedMedianMs'])} | ${f(r['directP99Ms'])} | ${f(r['gatewayP99Ms'])} | ${f(r['addedP99Ms'])} |\n`);
}
mkdirSync('bench/results', { recursive: true });
const out = join('bench/results', `ai-overhead-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, rows }, null, 2));
process.stdout.write(`\nwrote ${out}\n`);

await app.close();
await worker.close();
await redis.stop();
rmSync(dataDir, { recursive: true, force: true });
