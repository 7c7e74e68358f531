/**
 * The gateway's ordered shutdown (docs/operations.md, Shutdown): what runs before the
 * composition root closes its components in reverse start order.
 */
import type { Logger } from '../log/logger.ts';
import type { LiveIngest } from './live-ingest.ts';

/**
 * The gateway's shutdown, before its components close (each step bounded by `deadlineMs`):
 * 1. stop accepting: new HTTP requests get 503 `SHUTTING_DOWN` with `Retry-After` and
 *    `Connection: close`; new RTMP publishes and push sessions are refused;
 * 2. meanwhile, in-flight HTTP requests finish (a push answers with its renditions, so the
 *    queue and the embedded transcoder stay up), and every RTMP segmenter is flushed: its
 *    partial last segment is stored, listed and queued, and the stream is ended (ENDLIST);
 * 3. this gateway drops its handles of push sessions without ending them: they are shared by
 *    every gateway (ingest/push-session-store.ts) and end when idle, on whichever gateway;
 * 4. with the embedded transcoder, wait until the ended streams' queued segments are
 *    transcoded, so their renditions end too. At the deadline, whatever is still queued or
 *    running stays in the Redis queue: another transcoder (or this gateway once restarted)
 *    transcodes it and the renditions then get ENDLIST. Without the embedded transcoder the
 *    jobs are the standalone transcoders' from the start.
 */
export async function drainGateway(d: {
  http: { drain(deadlineMs: number): Promise<void> };
  ingest: Pick<LiveIngest, 'stopAccepting' | 'flush' | 'close'>;
  index: { sessionComplete(manifestID: string, session: string): Promise<boolean> };
  waitForTranscodes: boolean;
  deadlineMs: number;
  logger: Logger;
}): Promise<void> {
  const log = d.logger.child({ component: 'shutdown' });
  const startedMs = Date.now();
  log.info({ timeoutMs: d.deadlineMs - startedMs }, 'draining: refusing new requests and publishes, finishing in-flight work');
  d.ingest.stopAccepting();
  const [, rtmpEnded] = await Promise.all([d.http.drain(d.deadlineMs), d.ingest.flush('rtmp')]);
  const ended = [...rtmpEnded, ...(await d.ingest.close())];
  if (!d.waitForTranscodes || ended.length === 0) {
    log.info({ streams: ended.length, elapsedMs: Date.now() - startedMs }, 'drained');
    return;
  }
  let pending = ended;
  for (;;) {
    const complete = await Promise.all(pending.map((s) => d.index.sessionComplete(s.manifestID, s.session).catch(() => false)));
    pending = pending.filter((_, i) => !complete[i]);
    if (pending.length === 0 || Date.now() >= d.deadlineMs) break;
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, d.deadlineMs - Date.now()))));
  }
  if (pending.length > 0) {
    log.warn({ manifestIDs: pending.map((s) => s.manifestID) },
      'shutdown timeout: the last segments of these streams stay queued for another transcoder; their renditions end once transcoded');
  }
  log.info({ streams: ended.length, elapsedMs: Date.now() - startedMs }, 'drained');
}
