/**
 * Scratch files in the local work dir (`workDir`): who owns an entry, and the startup sweep
 * of entries a crashed process left behind.
 *
 * Every scratch entry a process creates carries its pid right after a fixed prefix:
 * `transcode/job-<pid>-<random>/`, `segmenter/<pid>-<session>/<seq>.ts`,
 * `push/push-<pid>-<random>.<ext>`. Several processes may share one work dir on a host (a
 * gateway and standalone transcoders, say), so at startup a process removes only entries
 * of the kinds it creates itself and only when their owner is gone:
 * - the pid is not a live process (`kill(pid, 0)` fails with ESRCH), or
 * - the pid is this process's own: the sweep runs before the process creates any scratch
 *   entry, so such an entry was left by an earlier process that had the same pid (a
 *   container's entry point is often pid 1 on every start);
 * - entries of the layout without a pid (before pids were added) when modified before this
 *   process started.
 * A leftover whose pid was reused by an unrelated live process is kept until a later start.
 * Pids only mean something within one pid namespace: processes in different containers
 * need their own work dirs.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';

/** The owner part of a scratch name created by this process: `<pid>-`. */
export function ownerTag(): string {
  return `${process.pid}-`;
}

/** Whether `pid` is a live process in this pid namespace (EPERM: alive, owned by another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SweepOptions {
  /** Directory whose entries are examined (not recursive); a missing one is fine. */
  dir: string;
  /** Name prefix of the entries this process kind owns, before `<pid>-` (`job-`, `push-`, `''`). */
  prefix: string;
  /** Entries without a pid must match this to be removed (the layout before pids), e.g. `/^job-/`. */
  legacy: RegExp;
  logger: Logger;
  /** Epoch ms this process started; default `performance.timeOrigin`. */
  processStartMs?: number;
  /** Default {@link isProcessAlive}. */
  isAlive?: (pid: number) => boolean;
}

/**
 * Removes the entries of `dir` left by dead owners (see the module docstring). Errors on
 * single entries are logged and skipped.
 * @returns names removed
 */
export async function sweepLeftovers(options: SweepOptions): Promise<string[]> {
  const startMs = options.processStartMs ?? performance.timeOrigin;
  const alive = options.isAlive ?? isProcessAlive;
  let names: string[];
  try {
    names = await readdir(options.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const owned = new RegExp(`^${options.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)-`);
  const removed: string[] = [];
  for (const name of names) {
    const path = join(options.dir, name);
    try {
      const m = owned.exec(name);
      let stale: boolean;
      if (m) {
        const pid = Number(m[1]);
        stale = pid === process.pid || !alive(pid);
      } else {
        stale = options.legacy.test(name) && (await stat(path)).mtimeMs < startMs;
      }
      if (!stale) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(name);
    } catch (err) {
      options.logger.warn({ dir: options.dir, entry: name, err: (err as Error).message }, 'cannot sweep a work dir entry');
    }
  }
  if (removed.length > 0) options.logger.info({ dir: options.dir, removed: removed.length }, 'removed scratch files left by a process that is gone');
  return removed;
}

/** Which scratch kinds a process creates (decides what its startup sweep may remove). */
export interface ScratchKinds {
  /** Transcode job dirs: the transcoder role, and a gateway with the embedded transcoder. */
  readonly transcoder: boolean;
  /** Segmenter session dirs, push request bodies and AI upload dirs: the gateway role. */
  readonly gateway: boolean;
}

/**
 * Removes what a crashed process left in `workDir`, of the kinds this process creates, plus
 * object-store downloads (`storage/get-…`, both roles). Only entries whose owner process is
 * gone (see the module docstring), so processes sharing the work dir keep theirs.
 */
export async function sweepWorkDir(workDir: string, kinds: ScratchKinds, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'work-dir' });
  // Object-store downloads (S3 getFile) of either role; they never had a layout without a pid.
  const areas: { dir: string; prefix: string; legacy: RegExp }[] = [{ dir: 'storage', prefix: 'get-', legacy: /(?!)/ }];
  if (kinds.transcoder) areas.push({ dir: 'transcode', prefix: 'job-', legacy: /^job-/ });
  if (kinds.gateway) {
    areas.push({ dir: 'segmenter', prefix: '', legacy: /^[0-9a-z]+$/ });
    areas.push({ dir: 'push', prefix: 'push-', legacy: /^push-[0-9a-f]{16}\./ });
    // AI uploads never had a layout without a pid: nothing is legacy there.
    areas.push({ dir: 'uploads', prefix: 'upload-', legacy: /(?!)/ });
  }
  for (const area of areas) {
    await sweepLeftovers({ ...area, dir: join(workDir, area.dir), logger: log });
  }
}
