/**
 * A time limit on a promise whose callee takes no AbortSignal (BullMQ and ioredis calls,
 * a caller's publish decision, a child's exit): where the callee does take one, pass it
 * `AbortSignal.timeout(ms)` instead. The one place where such a race is written, so that
 * each use clears its timer (none is left to hold the process open) and handles a late
 * rejection of the losing promise.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * `work`'s outcome, or `onTimeout()`'s after `timeoutMs`, whichever comes first. The timer is
 * cleared as soon as `work` settles. `work` is not cancelled: it runs on, and a late
 * rejection of it is ignored.
 * @param timeoutMs the limit, ms
 * @param onTimeout gives the result at the limit, or throws to reject with its error
 * @returns the value of `work` or of `onTimeout`
 * @throws what `work` rejects with first, or what `onTimeout` throws
 */
export async function settleWithin<T, F = never>(work: Promise<T>, timeoutMs: number, onTimeout: () => F): Promise<T | F> {
  const timer = new AbortController();
  const expired = sleep(timeoutMs, undefined, { signal: timer.signal }).then(
    onTimeout,
    // Only the abort below lands here, after the race is decided.
    () => undefined as never,
  );
  try {
    return await Promise.race([work, expired]);
  } finally {
    timer.abort();
  }
}
