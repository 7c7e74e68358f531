/**
 * The composition root's closer stack: each component is registered right after it is
 * started, and `close()` closes them in reverse order (last started, first closed), after an
 * optional drain step, within one shutdown deadline.
 */
import type { Logger } from './log/logger.ts';

/** Closes one component; `deadlineMs` (epoch ms) is when the shutdown timeout runs out: closers that wait stop waiting then. */
export type CloseFn = (deadlineMs: number) => Promise<void>;

export interface LifecycleOptions {
  logger: Logger;
  /** How long a whole `close()` may wait (drain and closers), ms; config `shutdownTimeoutMs`. */
  shutdownTimeoutMs: number;
  /** Clock, epoch ms (tests); default `Date.now`. */
  now?: () => number;
}

export class Lifecycle {
  readonly #log: Logger;
  readonly #shutdownTimeoutMs: number;
  readonly #now: () => number;
  readonly #closers: { name: string; close: CloseFn }[] = [];
  #drain: CloseFn | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: LifecycleOptions) {
    this.#log = options.logger;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs;
    this.#now = options.now ?? Date.now;
  }

  /** Registers a started component; `name` appears in logs. Not closed when added after `close()` began. */
  add(name: string, close: CloseFn): void {
    this.#closers.push({ name, close });
  }

  /**
   * Sets the step that runs before any closer (the gateway's ordered drain); at most one.
   * @throws Error when a drain is already set
   */
  setDrain(drain: CloseFn): void {
    if (this.#drain) throw new Error('lifecycle drain already set');
    this.#drain = drain;
  }

  /**
   * Idempotent: drains, then runs every closer in reverse order with the same deadline
   * (now + `shutdownTimeoutMs`). A failing step is logged (warn) and the rest still run;
   * never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const deadlineMs = this.#now() + this.#shutdownTimeoutMs;
    try {
      await this.#drain?.(deadlineMs);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'error while draining');
    }
    for (const c of this.#closers.splice(0).reverse()) {
      try {
        await c.close(deadlineMs);
        this.#log.debug({ component: c.name }, 'closed');
      } catch (err) {
        this.#log.warn({ component: c.name, err: (err as Error).message }, 'error while closing');
      }
    }
  }
}
