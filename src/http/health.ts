/**
 * `GET /healthz` reports: each dependency check is a small async function; the report is
 * `ok` only when every check is (docs/operations.md, Health).
 */
import { settleWithin } from '../domain/time-limit.ts';

/** One dependency's state; `detail` says what is wrong and what to do. */
export interface HealthCheck {
  ok: boolean;
  detail?: string;
}

export interface HealthReport {
  /** `ok` when every dependency answers; `degraded` otherwise (HTTP 503). */
  status: 'ok' | 'degraded';
  checks: Record<string, HealthCheck>;
}

/** A named check; it should bound its own wait (see {@link pingCheck}). */
export type HealthProbe = () => Promise<HealthCheck>;

/**
 * Runs every probe concurrently and builds the report. A probe that throws counts as not ok,
 * with its message as the detail. Probes given as `undefined` are left out.
 * @returns a function for `HttpAppOptions.health`
 */
export function healthOf(probes: Readonly<Record<string, HealthProbe | undefined>>): () => Promise<HealthReport> {
  const entries = Object.entries(probes).filter((e): e is [string, HealthProbe] => e[1] !== undefined);
  return async () => {
    const results = await Promise.all(entries.map(([, probe]) => probe().catch((err: Error): HealthCheck => ({ ok: false, detail: err.message }))));
    const checks = Object.fromEntries(entries.map(([name], i) => [name, results[i]!]));
    return { status: results.every((c) => c.ok) ? 'ok' : 'degraded', checks };
  };
}

/**
 * A check that is ok when `ping()` resolves within `timeoutMs`; otherwise not ok with the
 * error's message (`timeout` when it did not answer in time).
 */
export function pingCheck(ping: () => Promise<unknown>, timeoutMs: number): HealthProbe {
  return async () => {
    try {
      await settleWithin(ping(), timeoutMs, () => { throw new Error('timeout'); });
      return { ok: true };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  };
}
