/**
 * Redis traffic per HTTP-pushed segment: one gateway with its embedded transcoder on a private
 * redis-server, `--pushes` segments of the clip pushed one after another into one session
 * (the first push, which opens it, is not counted). Redis's `MONITOR` is read meanwhile; each
 * command is attributed to its connection by name (`CLIENT LIST`: `state`, `queue`,
 * `transcoder` …), a MULTI…EXEC block counts as one round trip, and the periodic background
 * (live-session polls, member and cluster heartbeats, BullMQ's stalled-job check) is left out;
 * the segment index's and push sessions' sweeps run once a minute here. What is left still
 * holds some load-dependent background (a transcoder's job-lock renewals while it transcodes,
 * the AI worker registry), so read the figure against a run of the same script at the other
 * commit on the same machine. Also prints the
 * `INFO commandstats` calls per segment (every command, the ones Lua scripts run included,
 * background included).
 *
 * Usage: node --import tsx bench/push-redis-commands.ts [--pushes 6] [--out file.json]
 * Reading it: `roundTripsPerPush` is what a pushed segment costs in Redis round trips;
 * `byConnection` says which part of the gateway sends them (the `state` connection carries the
 * push claims, push sessions, segment index and ledger; `queue` and the `mg:…` ones are BullMQ).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commandStats, commandStatsDelta, startRedis } from '../test/helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp } from '../test/helpers/gateway-process.ts';
import { cutPushSegments, pushSegment } from '../test/helpers/push-client.ts';

const run = promisify(execFile);
/** Commands of the periodic background, not of a push. */
const BACKGROUND = /live-open|:member|cluster:|"evalsha" "1e9bb7de/;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/** Round trips and commands per connection name in a MONITOR capture. */
function countMonitor(capture: string, names: ReadonlyMap<string, string>): { trips: Record<string, number>; commands: Record<string, number> } {
  const trips: Record<string, number> = {};
  const commands: Record<string, number> = {};
  const blocks = new Map<string, string[]>();
  const count = (conn: string, group: string[]): void => {
    if (group.some((l) => BACKGROUND.test(l))) return;
    trips[conn] = (trips[conn] ?? 0) + 1;
    for (const l of group) {
      const c = /\] "([^"]+)"/.exec(l)![1]!.toLowerCase();
      if (c !== 'multi' && c !== 'exec') commands[`${conn} ${c}`] = (commands[`${conn} ${c}`] ?? 0) + 1;
    }
  };
  for (const l of capture.split('\n')) {
    const m = /^\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(l);
    if (!m || m[1] === 'lua') continue;
    const conn = names.get(m[1]!) ?? m[1]!;
    const cmd = m[2]!.toLowerCase();
    // This script's own INFO / CLIENT LIST.
    if (cmd === 'info' || cmd === 'client') continue;
    const open = blocks.get(m[1]!);
    if (cmd === 'multi') blocks.set(m[1]!, [l]);
    else if (open) {
      open.push(l);
      if (cmd === 'exec') { blocks.delete(m[1]!); count(conn, open); }
    } else count(conn, [l]);
  }
  return { trips, commands };
}

const pushes = Number(arg('pushes', '6'));
const redis = await startRedis();
const work = mkdtempSync(join(tmpdir(), 'mg-bench-push-redis-'));
const d = await testDeployment(redis.url, {
  MEDIAGATE_LADDER: 'P144p30fps16x9', MEDIAGATE_LOG_LEVEL: 'warn', MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: '600000', MEDIAGATE_PUSH_REPLY_TIMEOUT_MS: '120000',
  MEDIAGATE_HLS_SWEEP_INTERVAL_MS: '60000', MEDIAGATE_HLS_HEARTBEAT_INTERVAL_MS: '60000', MEDIAGATE_HLS_HEARTBEAT_TTL_MS: '600000',
});
const gateway = spawnMediagate('gateway', d.env);
try {
  await waitForHttp(`${d.httpUrl}/healthz`, gateway, 180_000);
  const segments = await cutPushSegments(2 * (pushes + 1), work);
  const first = await pushSegment(d.httpUrl, 'bench', 0, segments[0]!);
  if (first.status !== 200) throw new Error(`push 0: ${first.status} ${first.body}`);
  const monitor = spawn('redis-cli', ['-u', redis.url, 'MONITOR']);
  let capture = '';
  monitor.stdout.on('data', (b: Buffer) => { capture += b.toString(); });
  await new Promise((r) => setTimeout(r, 300));
  const before = await commandStats(redis.url);
  for (let seq = 1; seq <= pushes; seq++) {
    const answer = await pushSegment(d.httpUrl, 'bench', seq, segments[seq]!);
    if (answer.status !== 200) throw new Error(`push ${seq}: ${answer.status} ${answer.body}`);
  }
  const stats = commandStatsDelta(before, await commandStats(redis.url));
  await new Promise((r) => setTimeout(r, 300));
  monitor.kill();
  const names = new Map<string, string>();
  for (const c of (await run('redis-cli', ['-u', redis.url, 'CLIENT', 'LIST'])).stdout.split('\n')) {
    const addr = /addr=(\S+)/.exec(c)?.[1];
    if (addr) names.set(addr, (/name=(\S*)/.exec(c)?.[1] || 'unnamed').replace(/^mediagate:gateway:/, ''));
  }
  const { trips, commands } = countMonitor(capture, names);
  const per = (o: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(o).sort().map(([k, v]) => [k, +(v / pushes).toFixed(2)]));
  const result = {
    pushes,
    roundTripsPerPush: +(Object.values(trips).reduce((a, b) => a + b, 0) / pushes).toFixed(2),
    byConnection: per(trips),
    commandsByConnection: per(commands),
    commandstatsCallsPerPush: +(Object.values(stats).reduce((a, b) => a + b, 0) / pushes).toFixed(1),
    commandstats: per(stats),
    redisVersion: execFileSync('redis-server', ['--version']).toString().trim(),
  };
  console.log(JSON.stringify(result, null, 1));
  const out = arg('out', '');
  if (out) writeFileSync(out, JSON.stringify(result, null, 1));
} finally {
  await gateway.stop();
  await redis.stop();
  d.cleanup();
  rmSync(work, { recursive: true, force: true });
}
