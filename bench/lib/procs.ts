/**
 * Process accounting from /proc (Linux): resident memory and CPU time of a process and its
 * descendants, for benchmark reports.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux x86_64). */
const USER_HZ = 100;

interface Stat { pid: number; ppid: number; utime: number; stime: number; cutime: number; cstime: number }

function readStat(pid: number, file = `/proc/${pid}/stat`): Stat | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: split after its closing parenthesis.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]), cutime: Number(rest[13]), cstime: Number(rest[14]) };
  } catch {
    return undefined;
  }
}

/** `pid` and every live descendant. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(st.pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Resident set size of one process in bytes (VmRSS), 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS over `pid` and its live descendants, bytes. */
export function treeRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + rssBytes(p), 0);
}

/**
 * CPU seconds (user + system) used so far by `pid` itself, and by its children that have
 * exited and been waited for (ffmpeg/ffprobe runs of a transcoder, say).
 */
export function cpuSeconds(pid: number): { self: number; reapedChildren: number } {
  const st = readStat(pid);
  if (!st) return { self: 0, reapedChildren: 0 };
  return { self: (st.utime + st.stime) / USER_HZ, reapedChildren: (st.cutime + st.cstime) / USER_HZ };
}

/**
 * CPU seconds (user + system) used so far by one thread of `pid` (`tid` = `pid`: its main
 * thread, which runs a Node process's JavaScript), from /proc/<pid>/task/<tid>/stat; 0 when gone.
 */
export function threadCpuSeconds(pid: number, tid = pid): number {
  const st = readStat(pid, `/proc/${pid}/task/${tid}/stat`);
  return st ? (st.utime + st.stime) / USER_HZ : 0;
}

/**
 * CPU seconds `pid` has run so far, every live thread summed, from the scheduler's own
 * nanosecond counters (`/proc/<pid>/task/<tid>/schedstat`, first field): finer than
 * {@link cpuSeconds}' 10 ms ticks, for per-request figures from a few hundred requests.
 * Threads that have exited are not counted; 0 when the process is gone.
 */
export function cpuSecondsPrecise(pid: number): number {
  let ns = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch { /* thread gone */ }
  }
  return ns / 1e9;
}

/** Machine-wide busy and total CPU seconds since boot (all cores), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!;
  return { busy: (total - idle) / USER_HZ, total: total / USER_HZ };
}

/** Samples `measure()` every `intervalMs` until stopped; returns the peak seen. */
export function samplePeak(measure: () => number, intervalMs = 250): { stop(): number } {
  let peak = measure();
  const timer = setInterval(() => { peak = Math.max(peak, measure()); }, intervalMs);
  return { stop: () => { clearInterval(timer); peak = Math.max(peak, measure()); return peak; } };
}
