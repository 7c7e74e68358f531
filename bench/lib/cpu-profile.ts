/**
 * Reads a V8 CPU profile (`node --cpu-prof` → *.cpuprofile) and sums self time by function
 * and by where the code lives (a package under node_modules, Node's internals, our src/),
 * so a benchmark can say where the time goes.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface ProfileSummary {
  /** Sampled wall time of the profile, ms. */
  totalMs: number;
  /** Time on the CPU (all samples not in `(idle)`), ms. */
  busyMs: number;
  /** Self time by area, ms, largest first. */
  byArea: { area: string; ms: number; shareOfBusy: number }[];
  /** Self time by function, ms, largest first. */
  byFunction: { fn: string; area: string; ms: number; shareOfBusy: number }[];
  /** Self time by component (when `components` were given), ms, largest first, every component. */
  byComponent?: { component: string; ms: number; shareOfBusy: number }[];
}

/**
 * A component of the profiled program: a sample belongs to the component of the frame nearest
 * its leaf that matches any rule (rules tried in order on each frame, `<function name> <url>`),
 * so the socket write under an ioredis call counts as Redis and the same write under the HTTP
 * response as the response. Samples no frame matches count as `other`.
 */
export interface ProfileComponent { component: string; match: RegExp }

/** Where a call frame's code lives: `node_modules/<pkg>`, `node:internal`, `src/<folder>`, `(gc)`, … */
export function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/').slice(0, 2).join('/') : url.slice(5)}`;
  const src = /\/(src|cmd|bench|test)\/([^/]+)/.exec(url);
  if (src) return `${src[1]}/${src[2]!.replace(/\.ts$/, '')}`;
  return url;
}

/**
 * Sums self time of one *.cpuprofile file, optionally only of the samples taken within
 * `window` (µs on the profile's clock, which is CLOCK_MONOTONIC: `process.hrtime.bigint() / 1000n`
 * in any process on the machine).
 */
export function summarizeCpuProfile(path: string, top = 25, window?: { fromUs: number; toUs: number }, components?: readonly ProfileComponent[]): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  const componentOf = (id: number): string => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const { functionName, url } = byId.get(at)!.callFrame;
      const frame = `${functionName} ${url}`;
      const rule = components!.find((c) => c.match.test(frame));
      if (rule) return rule.component;
    }
    return 'other';
  };
  const comps = new Map<string, number>();
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    totalUs += us;
    if (functionName === '(idle)') { idleUs += us; continue; }
    if (components) {
      const component = componentOf(id);
      comps.set(component, (comps.get(component) ?? 0) + us);
    }
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|src|cmd)\//, '$1/')}:${lineNumber + 1}` : ''}`.trim();
    const f = fns.get(key) ?? { area, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const busyUs = totalUs - idleUs;
  const share = (us: number): number => (busyUs > 0 ? us / busyUs : 0);
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    byArea: [...areas].map(([area, us]) => ({ area, ms: us / 1000, shareOfBusy: share(us) })).sort((a, b) => b.ms - a.ms).slice(0, top),
    byFunction: [...fns].map(([fn, { area, us }]) => ({ fn, area, ms: us / 1000, shareOfBusy: share(us) })).sort((a, b) => b.ms - a.ms).slice(0, top),
    ...(components ? { byComponent: [...comps].map(([component, us]) => ({ component, ms: us / 1000, shareOfBusy: share(us) })).sort((a, b) => b.ms - a.ms) } : {}),
  };
}
