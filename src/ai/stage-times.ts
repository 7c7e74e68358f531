/**
 * Where one AI pipeline request's time goes inside the gateway, for the `Server-Timing`
 * response header (W3C Server Timing, https://www.w3.org/TR/server-timing/) the AI routes add
 * when `ai.serverTiming` is on (docs/operations.md, bench/ai-overhead.ts prints the medians).
 *
 * The clock starts when the request reaches the AI router (Node's HTTP parsing, the host
 * guard and the routers it skips come before and are not counted) and each {@link mark}
 * ends a stage: its `dur` is the ms since the previous mark, so the durations add up to the
 * time from arrival to the last mark. Stages a request does not go through are absent; a
 * stage marked twice (a failed-over attempt) sums its parts.
 */
export class StageTimes {
  #lastMs = performance.now();
  readonly #startMs = this.#lastMs;
  readonly #durMs = new Map<string, number>();

  /** Ends the stage `name` (a token: letters, digits, `-`) now. */
  mark(name: string): void {
    const nowMs = performance.now();
    this.#durMs.set(name, (this.#durMs.get(name) ?? 0) + nowMs - this.#lastMs);
    this.#lastMs = nowMs;
  }

  /** The header's value: each stage with its `dur` in ms (3 decimals), then `total` since the start. */
  header(): string {
    const parts: string[] = [];
    for (const [name, ms] of this.#durMs) parts.push(`${name};dur=${ms.toFixed(3)}`);
    parts.push(`total;dur=${(this.#lastMs - this.#startMs).toFixed(3)}`);
    return parts.join(', ');
  }
}

/**
 * Reads a `Server-Timing` header's `name;dur=ms` entries into a record (other parameters
 * ignored; entries without a `dur` skipped).
 */
export function parseServerTiming(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of value.split(',')) {
    const [name, ...params] = entry.trim().split(';');
    const dur = params.map((p) => /^\s*dur=([0-9.]+)\s*$/.exec(p)?.[1]).find((d) => d !== undefined);
    if (name && dur !== undefined) out[name.trim()] = Number(dur);
  }
  return out;
}
