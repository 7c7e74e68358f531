/**
 * The shapes of restream outputs shared by the store, the runner, the manager and the routes
 * (docs/wire-contract.md, "Restream outputs").
 */

/**
 * `connecting`: its ffmpeg is starting or connecting; `live`: bytes are flowing to the target;
 * `retrying`: the last attempt failed (`reason`), the next starts after a backoff; `stopped`:
 * removed, or its stream ended.
 */
export type OutputState = 'connecting' | 'live' | 'retrying' | 'stopped';

/** Where an output came from: `outputs.defaults`, the stream's grant (its stream key's or the auth webhook's `outputs`), the control API. */
export type OutputOrigin = 'config' | 'grant' | 'api';

/** One desired output of a stream, as stored. `url` is the secret target URL: never shown as is. */
export interface OutputSpec {
  /** Random ID, 11 characters of [A-Za-z0-9_-]. */
  readonly id: string;
  readonly url: string;
  /** `source` or a profile name of the stream's ladder. */
  readonly rendition: string;
  readonly createdAtMs: number;
  readonly origin: OutputOrigin;
}

/** An output's last state as its runner reported it (written by the stream's holder). */
export interface OutputStatus {
  readonly state: OutputState;
  /** Why the last attempt failed (redacted ffmpeg stderr, e.g. `Connection refused`); with `retrying` (and kept on `stopped`). */
  readonly reason?: string;
  /** Bytes written to the target over every connection of this output. */
  readonly bytesSent: number;
  /** When the current connection went live (epoch ms); absent unless `live`. */
  readonly liveSinceMs?: number;
  /** Epoch ms of this report. */
  readonly updatedAtMs: number;
}
