/**
 * Shared reporting for benchmarks: machine facts, markdown tables on stdout, JSON results
 * under bench/results/ (not committed).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where every benchmark writes its JSON. */
export const RESULTS_DIR = join(repo, 'bench', 'results');

export interface Machine {
  date: string;
  cores: number;
  cpu: string;
  memGiB: number;
  /** 1-minute load average when the benchmark started (other work on the machine). */
  loadAvg1: number;
  node: string;
  ffmpeg: string;
  redis: string;
  nginx: string;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args);
    return (stdout || stderr).split('\n')[0]!.trim();
  } catch {
    return 'not installed';
  }
}

/** Facts about this machine and the versions of what the benchmarks run. */
export async function machineInfo(): Promise<Machine> {
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadAvg1: Number(loadavg()[0]!.toFixed(2)),
    node: process.version,
    ffmpeg: (await firstLine('ffmpeg', ['-version'])).replace(/ Copyright.*/, ''),
    redis: (await firstLine('redis-server', ['--version'])).replace(/ sha=.*/, ''),
    nginx: await firstLine('nginx', ['-v']),
  };
}

/** `--quick` (the bench-quick budget) and `--out <file>` (JSON path), common to every benchmark. */
export interface CommonArgs {
  quick: boolean;
  out: string | undefined;
}

/**
 * Parses the common flags plus the benchmark's own string options.
 * @returns the common flags and the benchmark's values (undefined when not given).
 */
export function benchArgs<K extends string>(own: readonly K[] = []): CommonArgs & { values: Record<K, string | undefined> } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { quick: { type: 'boolean' }, out: { type: 'string' } };
  for (const k of own) options[k] = { type: 'string' };
  const { values } = parseArgs({ options, strict: true });
  return { quick: values['quick'] === true, out: values['out'] as string | undefined, values: values as Record<K, string | undefined> };
}

export type Cell = string | number | undefined;

/** Formats a number with `digits` decimals; undefined/NaN become an empty cell. */
export function fmt(n: number | undefined, digits = 2): string {
  return n === undefined || Number.isNaN(n) ? '' : n.toFixed(digits);
}

/** Prints a markdown table (ready to paste into bench/README.md). */
export function printTable(title: string, columns: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const line = (cells: readonly Cell[]): string => `| ${cells.map((c) => (c === undefined ? '' : String(c))).join(' | ')} |`;
  process.stdout.write(`\n${title}\n\n${line(columns)}\n${line(columns.map(() => '---'))}\n${rows.map(line).join('\n')}\n`);
}

/** Prints the machine line every table is read against. */
export function printMachine(m: Machine): void {
  process.stdout.write(`${m.date} · ${m.cores} cores (${m.cpu}), ${m.memGiB} GiB, load ${m.loadAvg1} · Node ${m.node} · ${m.ffmpeg} · ${m.redis} · ${m.nginx}\n`);
}

/**
 * Writes `{ benchmark, machine, ...data }` as JSON to `out` or to
 * bench/results/<benchmark>-<timestamp>.json, and says where.
 * @returns the path written.
 */
export function writeResult(benchmark: string, machine: Machine, data: Record<string, unknown>, out?: string): string {
  const path = out ?? join(RESULTS_DIR, `${benchmark}-${machine.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ benchmark, machine, ...data }, null, 2)}\n`);
  process.stdout.write(`\nwrote ${path}\n`);
  return path;
}

/**
 * One goal of an issue as a benchmark measured it: `measured` is the figure (a ratio, seconds,
 * a count), `target` the goal as text (`≥ 1.0`, `≤ 0.5 s`), `met` undefined when the run could
 * not tell (a step missing, a cap reached). Every benchmark writes its rows under `goals` in its
 * JSON; bench/run.ts gathers them into one table.
 */
export interface GoalRow { goal: string; measured: number | string | undefined; target: string; met: boolean | undefined }

/** Prints goal rows as a markdown table (goal, measured, target, met?). */
export function printGoals(title: string, rows: readonly GoalRow[]): void {
  printTable(title, ['goal', 'measured', 'target', 'met?'], rows.map((r) => [
    r.goal, typeof r.measured === 'number' ? fmt(r.measured, Math.abs(r.measured) >= 100 ? 0 : 2) : r.measured, r.target, r.met === undefined ? 'n/a' : r.met ? 'yes' : 'no',
  ]));
}

/**
 * `--gateway-env 'MEDIAGATE_A=1 MEDIAGATE_B=x'`: extra settings for every gateway and
 * transcoder a benchmark starts (space-separated NAME=value pairs; values without spaces), e.g.
 * to switch a path on or off and measure both. Names must be mediagate settings, or
 * `NODE_OPTIONS` to run the processes with other Node/V8 flags (e.g. `--max-semi-space-size=4`).
 * @throws on a malformed pair or a name outside MEDIAGATE_* and NODE_OPTIONS
 */
export function gatewayEnv(spec: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (spec ?? '').split(/\s+/).filter(Boolean)) {
    const m = /^(MEDIAGATE_[A-Z0-9_]+|NODE_OPTIONS)=(.*)$/.exec(pair);
    if (!m) throw new Error(`--gateway-env: "${pair}" is not MEDIAGATE_NAME=value or NODE_OPTIONS=flag`);
    out[m[1]!] = m[2]!;
  }
  return out;
}
