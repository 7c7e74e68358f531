/**
 * `make bench` / `make bench-quick`: runs every benchmark of issue 7 in sequence (never two
 * at once: they measure the same two cores), each as its own process printing its tables
 * and writing its JSON to bench/results/, then prints the headline figures of all of them
 * and writes bench/results/summary-<date>.json. Issue 14: every benchmark that measures a goal
 * writes `goals` rows (goal, measured, target, met); they are printed together as one goals
 * table and kept in the summary under `goals` (the per-benchmark `outcomes` keep their keys).
 *
 * Usage: node --import tsx bench/run.ts [--quick] [--only throughput,latency,ingest-scale,ai-overhead,storage,outputs,thumbnails,frames,whep-viewers,whip,live-v2v]
 *   [--gateway-env 'MEDIAGATE_X=v …'] (extra settings for the gateways of throughput, latency, ingest-scale, outputs)
 * Exit status: non-zero when any benchmark failed (the others still run).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RESULTS_DIR, machineInfo, printGoals, printMachine, printTable, writeResult, type GoalRow } from './lib/report.ts';

/** The benchmarks, in the order they run; each takes `--quick` and `--out <json>`. */
const BENCHMARKS = ['throughput', 'latency', 'ingest-scale', 'ai-overhead', 'storage', 'outputs', 'thumbnails', 'frames', 'whep-viewers', 'whip', 'live-v2v'] as const;

/** Issue 14's goals by benchmark, for the goals table when a benchmark failed before writing its rows. */
const ISSUE_14_GOALS: (GoalRow & { benchmark: string })[] = [
  { benchmark: 'ingest-scale', goal: 'concurrent passthrough publishers, mediagate / nginx-rtmp (ramp to 256)', measured: undefined, target: '≥ 1.0', met: undefined },
  { benchmark: 'ingest-scale', goal: 'memory per stream, mediagate / nginx-rtmp', measured: undefined, target: '≤ 2', met: undefined },
  { benchmark: 'ingest-scale', goal: 'burst of 32 publishers within 1 s: streams that lost a GOP', measured: undefined, target: '0', met: undefined },
  { benchmark: 'latency', goal: 'publish → first segment in every rendition / nginx-rtmp first segment', measured: undefined, target: '≤ 1.2', met: undefined },
  { benchmark: 'latency', goal: 'per segment: source listed → every rendition listed, p95 s', measured: undefined, target: '≤ 0.5 s', met: undefined },
  { benchmark: 'throughput', goal: 'transcoding throughput, live, one transcoder process / raw ffmpeg', measured: undefined, target: '≥ 0.95', met: undefined },
  { benchmark: 'ai-overhead', goal: 'text-to-image added median at c=1, ms', measured: undefined, target: '≤ 1 ms', met: undefined },
  { benchmark: 'ai-overhead', goal: 'text-to-image requests per second at c=32, gateway / direct', measured: undefined, target: '≥ 0.5', met: undefined },
];

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' }, 'gateway-env': { type: 'string' } } });
/** Passed on to the benchmarks that start gateways (see gatewayEnv in bench/lib/report.ts). */
const GATEWAY_BENCHMARKS = new Set(['throughput', 'latency', 'ingest-scale', 'outputs', 'live-v2v']);
const quick = values.quick === true;
const selected = values.only ? values.only.split(',').map((s) => s.trim()) : [...BENCHMARKS];
for (const name of selected) {
  if (!(BENCHMARKS as readonly string[]).includes(name)) throw new Error(`unknown benchmark "${name}"; known: ${BENCHMARKS.join(', ')}`);
}

const machine = await machineInfo();
const stamp = machine.date.replace(/[:.]/g, '-');
process.stdout.write(`mediagate benchmarks (${quick ? 'quick' : 'full'} run)\n`);
printMachine(machine);

interface Outcome { benchmark: string; ok: boolean; wallS: number; json?: string; headline?: Record<string, unknown>; goal?: string; error?: string; goals?: GoalRow[] }
const outcomes: Outcome[] = [];
for (const name of selected) {
  const out = join(RESULTS_DIR, `${name}-${stamp}.json`);
  process.stdout.write(`\n=== ${name} ${'='.repeat(Math.max(0, 70 - name.length))}\n`);
  const t0 = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, `${name}.ts`), ...(quick ? ['--quick'] : []), ...(values['gateway-env'] && GATEWAY_BENCHMARKS.has(name) ? ['--gateway-env', values['gateway-env']] : []), '--out', out], { stdio: 'inherit' });
    child.once('error', () => resolve(-1));
    child.once('exit', (c) => resolve(c));
  });
  const wallS = (performance.now() - t0) / 1000;
  if (code === 0 && existsSync(out)) {
    const result = JSON.parse(readFileSync(out, 'utf8')) as { headline?: Record<string, unknown>; goal?: string; goals?: GoalRow[] };
    outcomes.push({ benchmark: name, ok: true, wallS, json: out, ...(result.headline ? { headline: result.headline } : {}), ...(result.goal ? { goal: result.goal } : {}), ...(result.goals ? { goals: result.goals } : {}) });
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
// Issue 14: one table of every goal measured in this run (a benchmark that failed shows as not measured).
const goals: (GoalRow & { benchmark: string })[] = outcomes.flatMap((o) => (o.ok
  ? (o.goals ?? []).map((g) => ({ benchmark: o.benchmark, ...g }))
  : ISSUE_14_GOALS.filter((g) => g.benchmark === o.benchmark).map((g) => ({ ...g, measured: `not measured (${o.error ?? 'failed'})`, met: undefined }))));
printGoals(`Goals (${quick ? 'bench-quick' : 'bench'}, same run, same machine)`, goals.map((g) => ({ ...g, goal: `${g.benchmark}: ${g.goal}` })));
const goalsMet = { met: goals.filter((g) => g.met === true).length, missed: goals.filter((g) => g.met === false).length, unknown: goals.filter((g) => g.met === undefined).length };
process.stdout.write(`goals met ${goalsMet.met}, missed ${goalsMet.missed}, not decided ${goalsMet.unknown}\n`);
writeResult('summary', machine, { quick, outcomes, goals, goalsMet });
process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
