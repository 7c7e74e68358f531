/**
 * Two gateways (two checkouts of mediagate, e.g. a commit before a change and the working tree
 * after it) compared on text-to-image in one run: the same Redis, the same fast fake worker
 * (test/helpers/fake-ai-worker.ts, its own process) and the same load generator (node:http,
 * keep-alive, this process), rounds interleaved with the order alternating, so both see the
 * same load on a shared machine. Per round and gateway: CPU per request of the gateway and of
 * Redis (scheduler counters of every thread, /proc/<pid>/task/<tid>/schedstat), median latency
 * and rps; at the end the medians and the median of each round's after/before ratio.
 *
 * `--pipeline upscale` compares upscale instead: a multipart upload of a PNG of random noise
 * (`--upload-kb`, default 64 KiB), which goes through the gateway's upload path (multer to disk).
 *
 * Usage: node --import tsx bench/ai-compare.ts --before <checkout dir> [--after <dir, default this
 * checkout>] [--rounds 6] [--requests 2000] [--concurrency 1,32] [--pipeline text-to-image|upscale]
 * [--upload-kb 64] [--timing 1] [--out file.json]
 * (a checkout needs its node_modules, e.g. a symlink to this one's; `git archive <commit> | tar -x -C dir`)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { startRedis, stopChild } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp } from '../test/helpers/gateway-process.ts';
import { measure, type RequestSpec } from './lib/http-load.ts';
import { benchArgs, fmt, printTable, writeResult, machineInfo, printMachine } from './lib/report.ts';
import { percentile } from './lib/stats.ts';
import { encodePng } from '../test/helpers/png.ts';
import { cpuSecondsPrecise } from './lib/procs.ts';

const { out, values } = benchArgs(['before', 'after', 'rounds', 'requests', 'concurrency', 'timing', 'pipeline', 'upload-kb']);
/** `--timing 1`: both gateways add the Server-Timing stage profile (ai.serverTiming; both checkouts must know the setting). */
const timing = values.timing === '1' || values.timing === 'true';
const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (values.before === undefined) throw new Error('--before <checkout dir> is required');
const dirs = { before: resolve(values.before), after: resolve(values.after ?? here) };
const rounds = Number(values.rounds ?? 6);
const requests = Number(values.requests ?? 2000);
const concurrencies = (values.concurrency ?? '1,32').split(',').map(Number);

const pipeline = values.pipeline ?? 'text-to-image';
if (pipeline !== 'text-to-image' && pipeline !== 'upscale') throw new Error('--pipeline must be text-to-image or upscale');

/** A multipart upscale request whose `image` is a PNG of random noise of about `kb` KiB (noise does not compress). */
function upscaleSpec(kb: number): RequestSpec {
  const side = Math.max(8, Math.round(Math.sqrt((kb * 1024) / 3)));
  const noise = randomBytes(side * side * 3);
  const png = encodePng(side, side, (x, y) => {
    const i = (y * side + x) * 3;
    return [noise[i]!, noise[i + 1]!, noise[i + 2]!];
  });
  const boundary = 'mediagate-bench-boundary';
  return {
    path: '/upscale', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nsharper\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n`),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
  };
}

const spec: RequestSpec = pipeline === 'upscale'
  ? upscaleSpec(Number(values['upload-kb'] ?? 64))
  : { path: '/text-to-image', headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify({ prompt: 'a bunny in a meadow', width: 64, height: 64 })) };

async function startGateway(name: string, dir: string, redisUrl: string, workerUrl: string): Promise<{ url: string; pid: number; cleanup(): Promise<void> }> {
  const deployment = await testDeployment(redisUrl, {
    MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_LOG_LEVEL: 'warn',
    MEDIAGATE_REDIS_KEY_PREFIX: `cmp-${name}-${Date.now()}`, MEDIAGATE_AI_QUEUE_WAIT_MS: '60000',
    ...(timing ? { MEDIAGATE_AI_SERVER_TIMING: 'true' } : {}),
  });
  const proc = spawnMediagate('gateway', deployment.env, [], [], dir);
  await waitForHttp(`${deployment.httpUrl}/healthz`, proc);
  const res = await fetch(`${deployment.httpUrl}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: workerUrl, pipelines: [
      { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: true, capacity: 64 },
      { pipeline: 'upscale', model_id: 'stabilityai/stable-diffusion-x4-upscaler', warm: true, capacity: 64 },
    ] }),
  });
  if (!res.ok) throw new Error(`registering the worker with ${name}: HTTP ${res.status} ${await res.text()}`);
  return { url: deployment.httpUrl, pid: proc.child.pid!, cleanup: async () => { await proc.stop(); deployment.cleanup(); } };
}

const machine = await machineInfo();
const redis = await startRedis();
const workerChild = spawn(process.execPath, ['--import', 'tsx', join(here, 'bench', 'lib', 'fake-worker-main.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
const workerUrl = (JSON.parse(await new Promise<string>((r) => createInterface({ input: workerChild.stdout! }).once('line', r))) as { url: string }).url;
const gateways = {
  before: await startGateway('before', dirs.before, redis.url, workerUrl),
  after: await startGateway('after', dirs.after, redis.url, workerUrl),
};
type Side = keyof typeof gateways;
interface Sample { round: number; side: Side; concurrency: number; gatewayCpuMs: number; redisCpuMs: number; medianMs: number; rps: number; load1: number; stagesMs?: Record<string, number> }
const samples: Sample[] = [];
const { loadavg } = await import('node:os');
try {
  for (const c of concurrencies) for (const side of ['before', 'after'] as const) await measure(gateways[side].url, spec, 300, c);
  for (let round = 0; round < rounds; round++) {
    for (const c of concurrencies) {
      const order: Side[] = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
      for (const side of order) {
        const g = gateways[side];
        const g0 = cpuSecondsPrecise(g.pid);
        const r0 = cpuSecondsPrecise(redis.pid);
        const m = await measure(g.url, spec, requests, c);
        const gatewayCpuMs = ((cpuSecondsPrecise(g.pid) - g0) * 1000) / requests;
        const redisCpuMs = ((cpuSecondsPrecise(redis.pid) - r0) * 1000) / requests;
        samples.push({ round, side, concurrency: c, gatewayCpuMs, redisCpuMs, medianMs: m.medianMs, rps: m.rps, load1: loadavg()[0]!, ...(m.stagesMs ? { stagesMs: m.stagesMs } : {}) });
        process.stderr.write(`round ${round} c=${c} ${side}: gateway ${gatewayCpuMs.toFixed(3)} ms/req, redis ${redisCpuMs.toFixed(3)}, p50 ${m.medianMs.toFixed(2)} ms, ${m.rps.toFixed(0)} rps, load ${loadavg()[0]!.toFixed(1)}\n`);
      }
    }
  }
} finally {
  await gateways.before.cleanup();
  await gateways.after.cleanup();
  await stopChild(workerChild);
  await redis.stop();
}

const median = (xs: number[]): number => percentile(xs, 0.5)!;
const rows = concurrencies.map((c) => {
  const of = (side: Side, key: 'gatewayCpuMs' | 'redisCpuMs' | 'medianMs' | 'rps'): number[] => samples.filter((s) => s.side === side && s.concurrency === c).map((s) => s[key]);
  const paired = (key: 'gatewayCpuMs' | 'rps'): number[] => Array.from({ length: rounds }, (_, r) => {
    const a = samples.find((s) => s.round === r && s.side === 'after' && s.concurrency === c)![key];
    const b = samples.find((s) => s.round === r && s.side === 'before' && s.concurrency === c)![key];
    return a / b;
  });
  const cpuRatios = paired('gatewayCpuMs');
  return {
    concurrency: c,
    beforeGatewayCpuMs: median(of('before', 'gatewayCpuMs')), afterGatewayCpuMs: median(of('after', 'gatewayCpuMs')),
    cpuRatioMedian: median(cpuRatios), cpuRatioMin: Math.min(...cpuRatios), cpuRatioMax: Math.max(...cpuRatios),
    beforeRedisCpuMs: median(of('before', 'redisCpuMs')), afterRedisCpuMs: median(of('after', 'redisCpuMs')),
    beforeMedianMs: median(of('before', 'medianMs')), afterMedianMs: median(of('after', 'medianMs')),
    rpsRatioMedian: median(paired('rps')),
  };
});
printMachine(machine);
printTable(`${pipeline === 'upscale' ? `upscale (${(spec.body.length / 1024).toFixed(0)} KiB multipart)` : 'text-to-image'}, ${rounds} interleaved rounds of ${requests} requests per gateway (before ${dirs.before}, after ${dirs.after}); medians`,
  ['conc.', 'before: gateway CPU ms/req', 'after', 'after/before (paired median, min–max)', 'before: Redis CPU ms/req', 'after', 'before: p50 ms', 'after', 'after/before rps (paired median)'],
  rows.map((r) => [r.concurrency, fmt(r.beforeGatewayCpuMs, 3), fmt(r.afterGatewayCpuMs, 3), `${fmt(r.cpuRatioMedian)} (${fmt(r.cpuRatioMin)}–${fmt(r.cpuRatioMax)})`,
    fmt(r.beforeRedisCpuMs, 3), fmt(r.afterRedisCpuMs, 3), fmt(r.beforeMedianMs), fmt(r.afterMedianMs), fmt(r.rpsRatioMedian)]));
// The stage profile of each side (--timing): the median over the rounds of each round's median per stage.
if (timing) {
  const order = ['auth', 'body', ...(pipeline === 'upscale' ? ['upload'] : []), 'validate', 'slot', 'hold', 'call', 'media', 'store', 'settle', 'total', 'outside'];
  const stageRows = concurrencies.flatMap((c) => (['before', 'after'] as const).map((side) => {
    const of = samples.filter((s) => s.side === side && s.concurrency === c && s.stagesMs);
    return [`${side} c=${c}`, ...order.map((n) => fmt(median(of.map((s) => s.stagesMs![n] ?? 0)), 3)), fmt(median(of.map((s) => s.medianMs)))];
  }));
  printTable('Where a request\'s time goes, stage by stage (Server-Timing; ms, median of the rounds\' medians; stages in the order they end)', ['gateway', ...order, 'p50'], stageRows);
}
writeResult('ai-compare', machine, { dirs, rounds, requests, rows, samples }, out);
