/**
 * The member ID of a gateway or transcoder process: stable for the process's lifetime,
 * unique across the hosts of a deployment, readable in logs and Redis. It names the holder
 * of the stream ownership leases (ingest/stream-lease-store.ts) and is the one identity the
 * cluster's members are known by. Built once by the composition root (core.ts) and passed to
 * the parts that need it; feature folders never make their own.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * `<hostname>-<pid>-<random4>`, e.g. `edge-3-41237-9f0c`: the host (any character outside
 * `[A-Za-z0-9_.-]` becomes `_`, at most 63 characters), the pid, and 2 random bytes in hex
 * so a restarted process that got the same pid (pid 1 in a container) is another member.
 */
export function newMemberId(host: string = hostname(), pid: number = process.pid): string {
  const safeHost = host.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 63) || 'host';
  return `${safeHost}-${pid}-${randomBytes(2).toString('hex')}`;
}
