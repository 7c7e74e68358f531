/**
 * `make bench` / `make bench-quick`: runs every benchmark of issue 7 in sequence (never two
 * at once: they measure the same two cores), each as its own process printing its tables
 * and writing its JSON to bench/results/, then prints the headline figures of all of them
 * and writes bench/results/summary-<date>.json.
 *
 * Usage: node --import tsx bench/run.ts [--quick] [--only throughput,latency,ingest-scale,ai-overhead,storage]
 * Exit status: non-zero when any benchmark failed (the others still run).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RESULTS_DIR, machineInfo, printMachine, printTable, writeResult } from './lib/report.ts';

/** The benchmarks, in the order they run; each takes `--quick` and `--out <json>`. */
const BENCHMARKS = ['throughput', 'latency', 'ingest-scale', 'ai-overhead', 'storage'] as const;

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
const quick = values.quick === true;
const selected = values.only ? values.only.split(',').map((s) => s.trim()) : [...BENCHMARKS];
for (const name of selected) {
  if (!(BENCHMARKS as readonly string[]).includes(name)) throw new Error(`unknown benchmark "${name}"; known: ${BENCHMARKS.join(', ')}`);
}

const machine = await machineInfo();
const stamp = machine.date.replace(/[:.]/g, '-');
process.stdout.write(`mediagate benchmarks (${quick ? 'quick' : 'full'} run)\n`);
printMachine(machine);

interface Outcome { benchmark: string; ok: boolean; wallS: number; json?: string; headline?: Record<string, unknown>; goal?: string; error?: string }
const outcomes: Outcome[] = [];
for (const name of selected) {
  const out = join(RESULTS_DIR, `${name}-${stamp}.json`);
  process.stdout.write(`\n=== ${name} ${'='.repeat(Math.max(0, 70 - name.length))}\n`);
  const t0 = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, `${name}.ts`), ...(quick ? ['--quick'] : []), '--out', out], { stdio: 'inherit' });
    child.once('error', () => resolve(-1));
    child.once('exit', (c) => resolve(c));
  });
  const wallS = (performance.now() - t0) / 1000;
  if (code === 0 && existsSync(out)) {
    const result = JSON.parse(readFileSync(out, 'utf8')) as { headline?: Record<string, unknown>; goal?: string };
    outcomes.push({ benchmark: name, ok: true, wallS, json: out, ...(result.headline ? { headline: result.headline } : {}), ...(result.goal ? { goal: result.goal } : {}) });
  } else {
    outcomes.push({ benchmark: name, ok: false, wallS, error: `exited with ${code}` });
  }
}

const cell = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : 2)) : String(v));
printTable(`Headline figures (${quick ? 'bench-quick' : 'bench'})`, ['benchmark', 'figure', 'value'],
  outcomes.flatMap((o) => (o.ok
    ? Object.entries(o.headline ?? {}).map(([k, v]) => [o.benchmark, k, cell(v)])
    : [[o.benchmark, 'FAILED', o.error ?? '']])));
printTable('Runs', ['benchmark', 'status', 'wall s', 'goal'], outcomes.map((o) => [o.benchmark, o.ok ? 'ok' : 'FAILED', o.wallS.toFixed(0), o.goal ?? '']));
writeResult('summary', machine, { quick, outcomes });
process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
