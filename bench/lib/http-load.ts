/**
 * The load generator of the AI benchmarks (ai-overhead.ts, ai-compare.ts): POSTs one request
 * body over node:http with keep-alive, `concurrency` in flight, and measures rps and latency.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './stats.ts';

/** One HTTP request as the load generator sends it. */
export interface RequestSpec { path: string; headers: Record<string, string | number>; body: Buffer }

function send(agent: Agent, base: string, spec: RequestSpec): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${spec.path}`, { method: 'POST', agent, headers: { ...spec.headers, 'Content-Length': spec.body.length } }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(spec.body);
  });
}

export interface Measured { rps: number; medianMs: number; p99Ms: number; wallS: number }

/** Sends `count` requests with `concurrency` in flight; every answer must be 200. */
export async function measure(base: string, spec: RequestSpec, count: number, concurrency: number): Promise<Measured> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next += 1;
      const t0 = performance.now();
      const status = await send(agent, base, spec);
      if (status !== 200) throw new Error(`${base}${spec.path}: HTTP ${status}`);
      latencies.push(performance.now() - t0);
    }
  }));
  const wallS = (performance.now() - started) / 1000;
  agent.destroy();
  return { rps: count / wallS, medianMs: percentile(latencies, 0.5)!, p99Ms: percentile(latencies, 0.99)!, wallS };
}
