/**
 * AI routing overhead, in one run, against the limit: the same fast ai-runner-compatible
 * worker (test/helpers/fake-ai-worker.ts, answering at once with a real PNG) called
 * (a) directly and (b) through a mediagate gateway with its default settings (OpenAPI
 * validation, API-key authorization, billing hold + settle in Redis, worker selection,
 * forwarding, re-hosting the result media in the object store), for text-to-image (JSON)
 * and upscale (a ~1 MB multipart PNG) at concurrency 1 and 32; and (c) through a pass-through
 * proxy (bench/lib/pass-through-proxy-main.ts: node:http server, undici client, nothing else), the floor of
 * any gateway written in Node on this machine, measured right after (b).
 *
 * Gateway, worker, redis-server and this load generator are separate processes on the
 * same machine; the client is node:http with keep-alive for both (a) and (b). Each row also
 * has the CPU per request of every process (gateway, worker, Redis, load generator; the
 * scheduler's counters, every thread) and what those allow when the machine is the limit
 * (`cpuCeiling`): on a shared machine the CPU per request is steadier than the rps.
 * `--profile 1` (the default without --quick) then runs the gateway runs again under `node --cpu-prof` and prints where
 * the gateway's CPU time goes in each case: by step of a request in ms per request (COMPONENTS), and
 * self time by package and by function.
 *
 * Usage: node --import tsx bench/ai-overhead.ts [--quick] [--requests 1500] [--profile 1] [--profile-dir dir] [--out file.json]
 * (`--profile-dir` keeps the *.cpuprofile, loadable in Chrome DevTools, and the time window of each case.)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startRedis } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess } from '../test/helpers/gateway-process.ts';
import { stopChild } from '../test/helpers/redis-server.ts';
import { encodePng } from '../test/helpers/png.ts';
import { benchArgs, fmt, machineInfo, printGoals, printMachine, printTable, writeResult, type GoalRow } from './lib/report.ts';
import { measure, type RequestSpec } from './lib/http-load.ts';
import { summarizeCpuProfile, type ProfileComponent, type ProfileSummary } from './lib/cpu-profile.ts';
import { cpuSecondsPrecise } from './lib/procs.ts';
import { availableParallelism } from 'node:os';

const { quick, out, values } = benchArgs(['requests', 'profile', 'profile-dir']);
const requests = Number(values.requests ?? (quick ? 300 : 1500));
const profileDir = values['profile-dir'];
/** The gateway CPU profile runs by default in full runs (`--profile 0` skips it), not in --quick. */
const profile = profileDir !== undefined || (values.profile === undefined ? !quick : values.profile === '1' || values.profile === 'true');

/** A bench helper process (bench/lib/<main>) that prints `{"url": ...}` once listening. */
async function startUrlProcess(main: string, args: string[] = []): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lib', main), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${main} exited with ${code}`)));
  });
  return { url: (JSON.parse(first) as { url: string }).url, pid: child.pid!, stop: () => stopChild(child) };
}

async function startGateway(redisUrl: string, workerUrl: string, nodeArgs: string[] = []): Promise<{ proc: MediagateProcess; url: string; cleanup(): Promise<void> }> {
  const deployment = await testDeployment(redisUrl, {
    MEDIAGATE_RTMP_ENABLED: 'false', MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_LOG_LEVEL: 'warn',
    MEDIAGATE_REDIS_KEY_PREFIX: `bench${Date.now()}`, MEDIAGATE_AI_QUEUE_WAIT_MS: '60000', MEDIAGATE_AI_MAX_IMAGE_BYTES: String(8 * 1024 * 1024),
    // The stage profile (Server-Timing header): a few performance.now() calls per request.
    MEDIAGATE_AI_SERVER_TIMING: 'true',
  });
  const proc = spawnMediagate('gateway', deployment.env, nodeArgs);
  await waitForHttp(`${deployment.httpUrl}/healthz`, proc);
  const res = await fetch(`${deployment.httpUrl}/api/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: workerUrl, pipelines: [
      { pipeline: 'text-to-image', model_id: 'stabilityai/sdxl-turbo', warm: true, capacity: 64 },
      { pipeline: 'upscale', model_id: 'stabilityai/stable-diffusion-x4-upscaler', warm: true, capacity: 64 },
    ] }),
  });
  if (!res.ok) throw new Error(`registering the worker: HTTP ${res.status} ${await res.text()}`);
  return { proc, url: deployment.httpUrl, cleanup: async () => { await proc.stop(); deployment.cleanup(); } };
}

// A ~1 MB PNG: 580x580 of random noise does not compress.
const random = randomBytes(580 * 580 * 3);
const bigPng = encodePng(580, 580, (x, y) => {
  const i = (y * 580 + x) * 3;
  return [random[i]!, random[i + 1]!, random[i + 2]!];
});
const boundary = 'mediagate-bench-boundary';
const multipart = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nsharper\r\n`),
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n`),
  bigPng,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);
const cases: { name: string; spec: RequestSpec; count: number }[] = [
  { name: 'text-to-image (JSON)', count: requests, spec: { path: '/text-to-image', headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify({ prompt: 'a bunny in a meadow', width: 64, height: 64 })) } },
  { name: `upscale (${(multipart.length / 1e6).toFixed(2)} MB multipart)`, count: Math.max(64, Math.floor(requests / 5)), spec: { path: '/upscale', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body: multipart } },
];
const concurrencies = [1, 32];

/**
 * The steps of a gateway request, for the profile's "where the time goes" (first match from the
 * sample's leaf up decides; cpu-profile.ts ProfileComponent). `(program)` is V8 and libuv
 * outside JavaScript; `other` the event loop, promises and streams between the steps.
 */
const COMPONENTS: ProfileComponent[] = [
  { component: 'result media: data URL check + decode', match: /parseDataUrl|\/src\/ai\/media-fetch/ },
  { component: 'result media: stored (object store, fs calls)', match: /\/src\/storage\// },
  { component: 'Redis ledger: hold + settle', match: /ioredis|redis-parser|\/src\/payments\/|\/src\/redis\// },
  { component: 'upload: multipart to disk (multer)', match: /multer|busboy|streamsearch|upload-scope|media-sniff/ },
  { component: 'worker call: HTTP client, reply JSON', match: /\/src\/ai\/worker-(client|exchange|request|reply)|node:_http_client|node:_http_agent/ },
  { component: 'worker selection', match: /\/src\/ai\/(session-manager|selector|worker-registry|slot-waiters|retry-policy)/ },
  { component: 'OpenAPI validation', match: /express-openapi-validator|\/ajv|path-to-regexp/ },
  { component: 'JSON body parser', match: /body-parser|raw-body|iconv-lite|type-is|media-typer/ },
  { component: 'response: JSON + socket write', match: /express\/lib\/response/ },
  { component: 'HTTP shell: host guard, metrics, logs', match: /\/src\/(http|metrics|log)\/|prom-client|pino/ },
  { component: 'AI route handler (rest)', match: /\/src\/ai\// },
  { component: 'express routing', match: /node_modules\/(router|express)\// },
  { component: 'HTTP server: parse + socket', match: /node:_http_server|node:_http_common/ },
  { component: 'GC', match: /^\(garbage collector\) / },
  { component: '(program)', match: /^\(program\) / },
];

/**
 * What the measured CPU per request allows on this machine when every process is CPU-bound
 * (the c=32 case): each process runs on one core at most (the worker, the load generator and
 * Redis are single-threaded; the gateway's libuv threads do little), and together they share
 * `availableParallelism()` cores. Direct: worker + load generator; through the gateway: gateway
 * + worker + Redis + load generator. Returns the rps ratio that predicts (`ceilingRpsRatio`),
 * the ratio with a gateway that cost nothing (`zeroGatewayRpsRatio`), and the most gateway CPU
 * per request that still allows 0.5 × direct (`gatewayCpuMsForHalf`, ≤ 0 when nothing does).
 */
function cpuCeiling(gatewayMs: number, cpu: { directWorkerCpuMsPerRequest: number; directLoadCpuMsPerRequest: number; workerCpuMsPerRequest: number; redisCpuMsPerRequest: number; loadCpuMsPerRequest: number }): { ceilingRpsRatio: number; zeroGatewayRpsRatio: number; gatewayCpuMsForHalf: number } {
  const cores = availableParallelism();
  const directMax = Math.min(1 / cpu.directWorkerCpuMsPerRequest, 1 / cpu.directLoadCpuMsPerRequest, cores / (cpu.directWorkerCpuMsPerRequest + cpu.directLoadCpuMsPerRequest));
  const others = cpu.workerCpuMsPerRequest + cpu.redisCpuMsPerRequest + cpu.loadCpuMsPerRequest;
  const othersMax = Math.min(1 / cpu.workerCpuMsPerRequest, 1 / Math.max(cpu.redisCpuMsPerRequest, 1e-9), 1 / cpu.loadCpuMsPerRequest);
  const viaMax = (g: number): number => Math.min(g > 0 ? 1 / g : Infinity, othersMax, cores / (g + others));
  const half = directMax / 2;
  return {
    ceilingRpsRatio: viaMax(gatewayMs) / directMax,
    zeroGatewayRpsRatio: viaMax(0) / directMax,
    gatewayCpuMsForHalf: othersMax < half ? 0 : Math.min(1 / half, cores / half - others),
  };
}

const machine = await machineInfo();
const redis = await startRedis();
const worker = await startUrlProcess('fake-worker-main.ts');
// The floor of any Node gateway on this machine: the same worker behind a pass-through proxy.
const proxy = await startUrlProcess('pass-through-proxy-main.ts', [worker.url]);
const gateway = await startGateway(redis.url, worker.url);
const rows: Record<string, unknown>[] = [];
try {
  for (const c of cases) {
    for (const concurrency of concurrencies) {
      await measure(worker.url, c.spec, 50, concurrency); // warm-up: JIT, connections, caches
      await measure(gateway.url, c.spec, 50, concurrency);
      await measure(proxy.url, c.spec, 50, concurrency);
      // CPU per request of every process taking part, from the scheduler's counters (all threads).
      const gatewayPid = gateway.proc.child.pid!;
      const cpuNow = (): { gateway: number; worker: number; redis: number; load: number; proxy: number } => {
        const own = process.cpuUsage();
        return { gateway: cpuSecondsPrecise(gatewayPid), worker: cpuSecondsPrecise(worker.pid), redis: cpuSecondsPrecise(redis.pid), load: (own.user + own.system) / 1e6, proxy: cpuSecondsPrecise(proxy.pid) };
      };
      const msPerRequest = (from: ReturnType<typeof cpuNow>, to: ReturnType<typeof cpuNow>, key: keyof ReturnType<typeof cpuNow>): number => ((to[key] - from[key]) * 1000) / c.count;
      const d0 = cpuNow();
      const direct = await measure(worker.url, c.spec, c.count, concurrency);
      const d1 = cpuNow();
      const via = await measure(gateway.url, c.spec, c.count, concurrency);
      const v1 = cpuNow();
      const floor = await measure(proxy.url, c.spec, c.count, concurrency);
      const p1 = cpuNow();
      const gatewayCpuMsPerRequest = msPerRequest(d1, v1, 'gateway');
      const cpu = {
        directWorkerCpuMsPerRequest: msPerRequest(d0, d1, 'worker'), directLoadCpuMsPerRequest: msPerRequest(d0, d1, 'load'),
        workerCpuMsPerRequest: msPerRequest(d1, v1, 'worker'), redisCpuMsPerRequest: msPerRequest(d1, v1, 'redis'), loadCpuMsPerRequest: msPerRequest(d1, v1, 'load'),
      };
      rows.push({
        request: c.name, concurrency, requests: c.count,
        directRps: direct.rps, gatewayRps: via.rps, rpsRatio: via.rps / direct.rps,
        directMedianMs: direct.medianMs, gatewayMedianMs: via.medianMs, addedMedianMs: via.medianMs - direct.medianMs,
        directP99Ms: direct.p99Ms, gatewayP99Ms: via.p99Ms, addedP99Ms: via.p99Ms - direct.p99Ms,
        gatewayCpuMsPerRequest, ...cpu, ...cpuCeiling(gatewayCpuMsPerRequest, cpu),
        ...(via.stagesMs ? { stagesMs: via.stagesMs } : {}),
        proxyRps: floor.rps, proxyRpsRatio: floor.rps / direct.rps, proxyMedianMs: floor.medianMs, proxyAddedMedianMs: floor.medianMs - direct.medianMs,
        proxyCpuMsPerRequest: msPerRequest(v1, p1, 'proxy'),
      });
    }
  }
} finally {
  await gateway.cleanup();
}

// Where the gateway's time goes: the same gateway runs under the V8 sampling profiler.
const profiles: Record<string, ProfileSummary> = {};
if (profile) {
  const dir = profileDir ?? mkdtempSync(join(tmpdir(), 'mg-bench-prof-'));
  mkdirSync(dir, { recursive: true });
  const profiled = await startGateway(redis.url, worker.url, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200']);
  const windows: Record<string, { fromUs: number; toUs: number }> = {};
  try {
    for (const c of cases) {
      for (const concurrency of concurrencies) {
        await measure(profiled.url, c.spec, 50, concurrency);
        const fromUs = Number(process.hrtime.bigint() / 1000n);
        await measure(profiled.url, c.spec, c.count, concurrency);
        windows[`${c.name} c=${concurrency}`] = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
      }
    }
  } finally {
    await profiled.cleanup();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no CPU profile written in ${dir}`);
  for (const [name, window] of Object.entries(windows)) profiles[name] = summarizeCpuProfile(join(dir, file), 20, window, COMPONENTS);
  if (profileDir === undefined) rmSync(dir, { recursive: true, force: true });
  else writeFileSync(join(dir, 'windows.json'), JSON.stringify({ profile: file, windows }, null, 2));
}
await proxy.stop();
await worker.stop();
await redis.stop();

printMachine(machine);
printTable('AI routing overhead: the same fast worker called directly and through the gateway (separate processes)',
  ['request', 'conc.', 'requests', 'direct rps', 'gateway rps', 'ratio', 'direct p50 ms', 'gateway p50 ms', 'added p50 ms', 'direct p99 ms', 'gateway p99 ms', 'added p99 ms', 'gateway CPU ms/req'],
  rows.map((r) => [r['request'] as string, r['concurrency'] as number, r['requests'] as number, fmt(r['directRps'] as number, 0), fmt(r['gatewayRps'] as number, 0), fmt(r['rpsRatio'] as number),
    fmt(r['directMedianMs'] as number), fmt(r['gatewayMedianMs'] as number), fmt(r['addedMedianMs'] as number), fmt(r['directP99Ms'] as number), fmt(r['gatewayP99Ms'] as number), fmt(r['addedP99Ms'] as number), fmt(r['gatewayCpuMsPerRequest'] as number)]));
printTable('CPU per request of each process (ms; scheduler counters) and what it allows on this machine when CPU-bound',
  ['request', 'conc.', 'direct: worker', 'direct: load gen.', 'gateway', 'worker', 'redis', 'load gen.', 'ratio measured', 'ratio the CPU allows', 'ratio with a free gateway', 'gateway CPU for 0.5 ×'],
  rows.map((r) => [r['request'] as string, r['concurrency'] as number, fmt(r['directWorkerCpuMsPerRequest'] as number, 3), fmt(r['directLoadCpuMsPerRequest'] as number, 3),
    fmt(r['gatewayCpuMsPerRequest'] as number, 3), fmt(r['workerCpuMsPerRequest'] as number, 3), fmt(r['redisCpuMsPerRequest'] as number, 3), fmt(r['loadCpuMsPerRequest'] as number, 3),
    fmt(r['rpsRatio'] as number), fmt(r['ceilingRpsRatio'] as number), fmt(r['zeroGatewayRpsRatio'] as number), fmt(r['gatewayCpuMsForHalf'] as number, 3)]));
printTable('The floor of a Node gateway on this machine: the same worker behind a pass-through proxy (node:http server, undici keep-alive client, nothing else), measured right after the gateway',
  ['request', 'conc.', 'proxy rps', 'proxy / direct', 'proxy added p50 ms', 'proxy CPU ms/req', 'gateway / direct', 'gateway added p50 ms', 'gateway CPU ms/req'],
  rows.map((r) => [r['request'] as string, r['concurrency'] as number, fmt(r['proxyRps'] as number, 0), fmt(r['proxyRpsRatio'] as number), fmt(r['proxyAddedMedianMs'] as number), fmt(r['proxyCpuMsPerRequest'] as number, 3),
    fmt(r['rpsRatio'] as number), fmt(r['addedMedianMs'] as number), fmt(r['gatewayCpuMsPerRequest'] as number, 3)]));
// Where one request's time goes, stage by stage (the gateway's Server-Timing header, ai.serverTiming):
// median ms per stage, in the order a request passes them; `outside` is the client's latency minus
// the gateway's `total` (HTTP parsing before the AI router, the reply's write, the sockets, the client).
const STAGE_ORDER = ['auth', 'body', 'upload', 'validate', 'slot', 'hold', 'call', 'media', 'store', 'settle', 'total', 'outside'];
const staged = rows.filter((r) => r['stagesMs'] !== undefined);
if (staged.length > 0) {
  const names = STAGE_ORDER.filter((n) => staged.some((r) => (r['stagesMs'] as Record<string, number>)[n] !== undefined));
  printTable('Where a request\'s time goes in the gateway, stage by stage (Server-Timing, median ms per stage; stages in the order they end)',
    ['request', 'conc.', ...names, 'direct p50', 'gateway p50'],
    staged.map((r) => [r['request'] as string, r['concurrency'] as number, ...names.map((n) => fmt((r['stagesMs'] as Record<string, number>)[n] ?? 0, 3)),
      fmt(r['directMedianMs'] as number), fmt(r['gatewayMedianMs'] as number)]));
}
const countOf = (name: string): number => cases.find((c) => name.startsWith(c.name))!.count;
for (const [name, p] of Object.entries(profiles)) {
  const n = countOf(name);
  printTable(`Gateway CPU profile, ${name}: where a request's time goes (busy ${fmt(p.busyMs / n, 3)} ms per request)`,
    ['component', 'ms per request', '% of busy'], (p.byComponent ?? []).map((c) => [c.component, fmt(c.ms / n, 3), fmt(c.shareOfBusy * 100, 1)]));
  printTable(`Gateway CPU profile, ${name}: busy ${fmt(p.busyMs, 0)} ms of ${fmt(p.totalMs, 0)} ms; self time by area`,
    ['area', 'ms', '% of busy'], p.byArea.slice(0, 12).map((a) => [a.area, fmt(a.ms, 0), fmt(a.shareOfBusy * 100, 1)]));
  printTable(`Gateway CPU profile, ${name}: top functions by self time`,
    ['function', 'area', 'ms', '% of busy'], p.byFunction.slice(0, 15).map((f) => [f.fn, f.area, fmt(f.ms, 0), fmt(f.shareOfBusy * 100, 1)]));
}
const row = (name: string, c: number): Record<string, unknown> => rows.find((r) => (r['request'] as string).startsWith(name) && r['concurrency'] === c)!;
// Issue 14, goal 4: text-to-image added median ≤ 1 ms at c=1, requests per second at c=32 ≥ 0.5 × direct.
const addedC1 = row('text-to-image', 1)['addedMedianMs'] as number;
const rpsC32 = row('text-to-image', 32)['rpsRatio'] as number;
const goals: GoalRow[] = [
  { goal: 'text-to-image added median at c=1, ms', measured: addedC1, target: '≤ 1 ms', met: addedC1 <= 1 },
  { goal: 'text-to-image requests per second at c=32, gateway / direct', measured: rpsC32, target: '≥ 0.5', met: rpsC32 >= 0.5 },
];
printGoals('Issue 14 goal 4 (same run, same machine)', goals);
writeResult('ai-overhead', machine, {
  requests, rows, profiles, goals,
  headline: {
    t2iAddedMedianMsC1: row('text-to-image', 1)['addedMedianMs'], t2iAddedMedianMsC32: row('text-to-image', 32)['addedMedianMs'],
    t2iRpsRatioC32: row('text-to-image', 32)['rpsRatio'],
    upscaleAddedMedianMsC1: row('upscale', 1)['addedMedianMs'], upscaleAddedMedianMsC32: row('upscale', 32)['addedMedianMs'],
    upscaleRpsRatioC32: row('upscale', 32)['rpsRatio'],
    t2iGatewayCpuMsPerRequestC1: row('text-to-image', 1)['gatewayCpuMsPerRequest'], t2iGatewayCpuMsPerRequestC32: row('text-to-image', 32)['gatewayCpuMsPerRequest'],
    t2iWorkerCpuMsPerRequestC32: row('text-to-image', 32)['workerCpuMsPerRequest'], t2iRedisCpuMsPerRequestC32: row('text-to-image', 32)['redisCpuMsPerRequest'],
    t2iLoadCpuMsPerRequestC32: row('text-to-image', 32)['loadCpuMsPerRequest'],
    t2iRpsRatioCeilingC32: row('text-to-image', 32)['ceilingRpsRatio'], t2iRpsRatioZeroGatewayC32: row('text-to-image', 32)['zeroGatewayRpsRatio'],
    t2iGatewayCpuMsForHalfC32: row('text-to-image', 32)['gatewayCpuMsForHalf'],
    t2iProxyAddedMedianMsC1: row('text-to-image', 1)['proxyAddedMedianMs'], t2iProxyRpsRatioC32: row('text-to-image', 32)['proxyRpsRatio'],
  },
  goal: 'text-to-image added median ≤ 1 ms at c=1, requests per second at c=32 ≥ 0.5 × direct',
}, out);
