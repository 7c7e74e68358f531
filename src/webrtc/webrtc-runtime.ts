/**
 * node-datachannel's process-wide state (libdatachannel's threads and thread pool, kept after
 * the last peer connection closes; its `cleanup()` closes what is left and frees them). The
 * composition root calls {@link closeWebRtc} once, after every WebRTC user (WHIP and WHEP
 * sessions) has closed its peer connections.
 */
import { cleanup } from 'node-datachannel';

/** Frees node-datachannel's global state. Call once, after every peer connection is closed. */
export function closeWebRtc(): void {
  cleanup();
}
