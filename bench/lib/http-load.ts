/**
 * The load generator of the AI benchmarks (ai-overhead.ts, ai-compare.ts): POSTs one request
 * body over node:http with keep-alive, `concurrency` in flight, and measures rps and latency.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './stats.ts';
import { parseServerTiming } from '../../src/ai/stage-times.ts';

/** One HTTP request as the load generator sends it. */
export interface RequestSpec { path: string; headers: Record<string, string | number>; body: Buffer }

function send(agent: Agent, base: string, spec: RequestSpec): Promise<{ status: number; serverTiming: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${spec.path}`, { method: 'POST', agent, headers: { ...spec.headers, 'Content-Length': spec.body.length } }, (res) => {
      res.on('data', () => undefined);
      const timing = res.headers['server-timing'];
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serverTiming: Array.isArray(timing) ? timing.join(', ') : timing }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(spec.body);
  });
}

export interface Measured {
  rps: number; medianMs: number; p99Ms: number; wallS: number;
  /**
   * Median ms of each stage of the gateway's `Server-Timing` header (ai.serverTiming; a stage
   * a request lacks counts 0), plus `outside`: the client's latency minus the header's `total`
   * (Node's HTTP parsing and the routers before the AI router, the reply's serialization and
   * write, both sockets, the client). Absent when no answer had the header.
   */
  stagesMs?: Record<string, number>;
}

/** Sends `count` requests with `concurrency` in flight; every answer must be 200. */
export async function measure(base: string, spec: RequestSpec, count: number, concurrency: number): Promise<Measured> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const timings: Record<string, number>[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next += 1;
      const t0 = performance.now();
      const { status, serverTiming } = await send(agent, base, spec);
      if (status !== 200) throw new Error(`${base}${spec.path}: HTTP ${status}`);
      const ms = performance.now() - t0;
      latencies.push(ms);
      if (serverTiming !== undefined) {
        const stages = parseServerTiming(serverTiming);
        if (stages['total'] !== undefined) stages['outside'] = ms - stages['total'];
        timings.push(stages);
      }
    }
  }));
  const wallS = (performance.now() - started) / 1000;
  agent.destroy();
  const measured: Measured = { rps: count / wallS, medianMs: percentile(latencies, 0.5)!, p99Ms: percentile(latencies, 0.99)!, wallS };
  if (timings.length > 0) {
    const names = [...new Set(timings.flatMap((t) => Object.keys(t)))];
    measured.stagesMs = Object.fromEntries(names.map((n) => [n, percentile(timings.map((t) => t[n] ?? 0), 0.5)!]));
  }
  return measured;
}
