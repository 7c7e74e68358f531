/**
 * Requests waiting for a worker slot, in arrival order (FIFO). The worker registry wakes the
 * waiters of a (pipeline, model_id) when one of its slots is released, and every waiter when
 * capacity may have appeared anywhere (a worker registered or back healthy). A woken waiter
 * re-checks the registry and, when another request took the slot first, waits again: no
 * polling, and no lost wake-up (all waiters of the key are woken, in the order they came).
 */
export type SlotWaitOutcome = 'woken' | 'timeout' | 'aborted';

interface Waiter {
  readonly key: string;
  readonly settle: (outcome: SlotWaitOutcome) => void;
}

export class SlotWaiters {
  /** A Set iterates in insertion order: the arrival order of the waiters. */
  readonly #waiting = new Set<Waiter>();

  /** Requests waiting now. */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Waits until {@link wake} for `key` (or {@link wakeAll}), `timeoutMs` or `signal`.
   * @param key the (pipeline, model_id) the caller needs a slot of
   * @param timeoutMs longest wait, ms (0 or less: resolves `timeout` at once)
   * @returns why the wait ended; never rejects
   */
  wait(key: string, timeoutMs: number, signal?: AbortSignal): Promise<SlotWaitOutcome> {
    if (signal?.aborted) return Promise.resolve('aborted');
    if (timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      const onAbort = (): void => waiter.settle('aborted');
      const timer = setTimeout(() => waiter.settle('timeout'), timeoutMs);
      const waiter: Waiter = {
        key,
        settle: (outcome) => {
          if (!this.#waiting.delete(waiter)) return;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      this.#waiting.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes every waiter for `key`, oldest first. */
  wake(key: string): void {
    for (const waiter of [...this.#waiting]) if (waiter.key === key) waiter.settle('woken');
  }

  /** Wakes the oldest waiter for `key`; false when none waits. */
  wakeOne(key: string): boolean {
    for (const waiter of this.#waiting) {
      if (waiter.key === key) {
        waiter.settle('woken');
        return true;
      }
    }
    return false;
  }

  /** Wakes every waiter, oldest first. */
  wakeAll(): void {
    for (const waiter of [...this.#waiting]) waiter.settle('woken');
  }
}
