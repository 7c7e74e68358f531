/**
 * Hosts on one machine for multi-host tests: one Linux network namespace per "host"
 * (`ip netns`), each with one veth link (`eth0` inside) plugged into a Linux bridge in the
 * root namespace, all in one private IPv4 /24. The root namespace holds `.1` on the bridge,
 * so this process (the test, playing the clients: publisher, players, API callers) reaches
 * every host directly; host N gets `.(11 + N)`. Each namespace also has its own `lo`, up, as
 * a real host does: a component that wrongly talks to 127.0.0.1 for another host's service
 * finds nothing there.
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2 (`ip`, looked up in /usr/sbin,
 * /sbin, then PATH); see {@link netnsUnavailable}.
 *
 * Names are unique per run (`mg<runId>…`, runId 5 hex digits) so several test runs on one
 * machine never meet, and the /24 is picked among 10.200.0.0–10.254.255.0 avoiding every
 * subnet the machine already routes. Teardown (`destroy()`, idempotent, synchronous) kills
 * what still runs in the namespaces, deletes them (their veth ends go with them) and the
 * bridge; it also runs on process exit and on SIGINT/SIGTERM. A run killed with SIGKILL leaves
 * a state file in {@link STATE_DIR}; the next run reaps what its dead owner left.
 *
 * ip-netns(8), ip-link(8) (types `veth`, `bridge`), network_namespaces(7).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';

/** Where each run notes its owner pid and what it created, for reaping after a SIGKILL. */
export const STATE_DIR = '/run/mediagate-netns';

/** iproute2's `ip`: /usr/sbin/ip or /sbin/ip when present, else the one on PATH. */
export const IP = ['/usr/sbin/ip', '/sbin/ip'].find((p) => existsSync(p)) ?? 'ip';

export interface NetnsHost {
  /** Logical name given to {@link createNetwork}, e.g. `gw-a`. */
  readonly name: string;
  /** The network namespace, e.g. `mg3f2a1-gw-a`. */
  readonly ns: string;
  /** Its IPv4 address on the bridge, e.g. `10.213.7.12`. */
  readonly address: string;
  /** The root-namespace end of its veth pair (plugged into the bridge); `cutLink` sets it down. */
  readonly link: string;
  /** Command prefix that runs a program inside the namespace: `[ip, netns, exec, <ns>]`. */
  readonly exec: readonly string[];
}

export interface NetnsNetwork {
  readonly runId: string;
  readonly bridge: string;
  /** The root namespace's address on the bridge (where this process's connections come from). */
  readonly clientAddress: string;
  /** `10.x.y.0/24`. */
  readonly subnet: string;
  readonly hosts: Readonly<Record<string, NetnsHost>>;
  /** Takes a host off the network (its veth end on the bridge down): packets to and from it are dropped, its sockets stay open. */
  cutLink(name: string): void;
  /** Puts it back. */
  restoreLink(name: string): void;
  /** Kills every process left in the namespaces, deletes them and the bridge. Idempotent, synchronous. */
  destroy(): void;
}

function ip(args: readonly string[]): string {
  return execFileSync(IP, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function errorText(err: unknown): string {
  const e = err as { stderr?: Buffer; message?: string };
  return (e.stderr?.toString().trim() || e.message || String(err)).split('\n')[0]!;
}

/**
 * Why network namespaces cannot be used here, or undefined when they can: not root, no `ip`,
 * or the kernel refuses a namespace or a bridge (an unprivileged container). Tries for real:
 * creates and deletes one namespace and one bridge.
 */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run the test as root';
  const probe = `mgprobe${randomBytes(3).toString('hex')}`;
  try {
    ip(['netns', 'add', probe]);
  } catch (err) {
    return `cannot create a network namespace with ${IP} (${errorText(err)}); install iproute2 and run as root`;
  }
  try {
    ip(['link', 'add', probe, 'type', 'bridge']);
    ip(['link', 'del', probe]);
  } catch (err) {
    return `cannot create a Linux bridge (${errorText(err)})`;
  } finally {
    try { ip(['netns', 'del', probe]); } catch { /* reported above */ }
  }
  return undefined;
}

interface RunState {
  readonly pid: number;
  readonly namespaces: readonly string[];
  /** Root-namespace ends of the veth pairs. */
  readonly links: readonly string[];
  readonly bridge: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeRun(state: RunState): void {
  // Deleting one end of a veth pair deletes both; a namespace's own cleanup (when its last
  // process is gone) runs later in the kernel and, under load, after this process has exited.
  for (const link of state.links ?? []) {
    try { ip(['link', 'del', link]); } catch { /* gone */ }
  }
  for (const ns of state.namespaces) {
    let pids: number[] = [];
    try { pids = ip(['netns', 'pids', ns]).split('\n').map(Number).filter((p) => p > 0); } catch { /* namespace gone */ }
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    try { ip(['netns', 'del', ns]); } catch { /* gone */ }
  }
  try { ip(['link', 'del', state.bridge]); } catch { /* gone */ }
}

/** Removes what runs whose owner process is gone (SIGKILLed) left behind. */
export function reapDeadRuns(): string[] {
  if (!existsSync(STATE_DIR)) return [];
  const reaped: string[] = [];
  for (const file of readdirSync(STATE_DIR)) {
    const path = join(STATE_DIR, file);
    let state: RunState;
    try {
      state = JSON.parse(readFileSync(path, 'utf8')) as RunState;
    } catch {
      rmSync(path, { force: true });
      continue;
    }
    if (alive(state.pid)) continue;
    removeRun(state);
    rmSync(path, { force: true });
    reaped.push(file);
  }
  return reaped;
}

/** A /24 in 10.200–254.x.0 that no address or route of the root namespace touches. */
function freeSubnet(): string {
  const used = ip(['-4', 'route', 'show', 'table', 'all']) + ip(['-4', 'addr', 'show']);
  for (let i = 0; i < 50; i++) {
    const prefix = `10.${randomInt(200, 255)}.${randomInt(0, 256)}`;
    if (!used.includes(`${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.x.y.0/24 subnet found for the namespace network');
}

/**
 * Creates the bridge and one namespace per name (at most 200), each plugged in and up.
 * @param names host names, `[a-z0-9-]`, e.g. `['store', 'gw-a', 'gw-b']`
 * @param options.signals tear down and exit on SIGINT/SIGTERM (default true); a caller that
 *   stops its processes gracefully first passes false and calls `destroy()` itself (the exit hook stays)
 * @throws Error naming the `ip` command that failed (what was created is removed first)
 */
export function createNetwork(names: readonly string[], options: { signals?: boolean } = {}): NetnsNetwork {
  const signals = options.signals ?? true;
  for (const n of names) if (!/^[a-z0-9-]{1,20}$/.test(n)) throw new Error(`bad host name ${JSON.stringify(n)}`);
  reapDeadRuns();
  const runId = randomBytes(3).toString('hex').slice(0, 5);
  const bridge = `mg${runId}br`;
  const prefix = freeSubnet();
  const hosts: Record<string, NetnsHost> = {};
  names.forEach((name, i) => {
    const ns = `mg${runId}-${name}`;
    hosts[name] = { name, ns, address: `${prefix}.${11 + i}`, link: `mg${runId}v${i}`, exec: [IP, 'netns', 'exec', ns] };
  });
  const state: RunState = { pid: process.pid, namespaces: Object.values(hosts).map((h) => h.ns), links: Object.values(hosts).map((h) => h.link), bridge };
  mkdirSync(STATE_DIR, { recursive: true });
  const stateFile = join(STATE_DIR, `${runId}.json`);
  writeFileSync(stateFile, JSON.stringify(state));

  let destroyed = false;
  const onExit = (): void => destroy();
  const onSignal = (signal: NodeJS.Signals): void => {
    destroy();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  function destroy(): void {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    removeRun(state);
    rmSync(stateFile, { force: true });
  }
  process.on('exit', onExit);
  if (signals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  try {
    ip(['link', 'add', bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${prefix}.1/24`, 'dev', bridge]);
    ip(['link', 'set', bridge, 'up']);
    for (const h of Object.values(hosts)) {
      ip(['netns', 'add', h.ns]);
      ip(['link', 'add', h.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      ip(['link', 'set', h.link, 'master', bridge, 'up']);
      ip(['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      ip(['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    destroy();
    throw new Error(`cannot set up the namespace network: ${errorText(err)}`);
  }

  const host = (name: string): NetnsHost => {
    const h = hosts[name];
    if (!h) throw new Error(`no host ${name}`);
    return h;
  };
  return {
    runId, bridge, clientAddress: `${prefix}.1`, subnet: `${prefix}.0/24`, hosts,
    cutLink: (name) => { ip(['link', 'set', host(name).link, 'down']); },
    restoreLink: (name) => { ip(['link', 'set', host(name).link, 'up']); },
    destroy,
  };
}

/** What of runs `runId` is still on the machine: namespaces and links whose names start with `mg<runId>`. */
export function leftovers(runId: string): string[] {
  const mark = `mg${runId}`;
  const names = [
    ...ip(['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!),
    ...ip(['-o', 'link', 'show']).split('\n').map((l) => (l.split(':')[1] ?? '').trim().split('@')[0]!),
  ];
  return names.filter((n) => n.startsWith(mark));
}
