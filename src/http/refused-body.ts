/**
 * Refusing a request body (413) so that a client still writing it reads the answer: used by
 * every HTTP server of mediagate, express or plain node:http (the gateway's push ingest and
 * AI uploads, the trickle server, the reference AI worker's `/upscale` and
 * `/live-video-to-video`).
 *
 * Why not close at once. Answering 413 with `Connection: close`, or destroying the request,
 * closes a socket with unread bytes in its receive buffer, which the kernel answers with a
 * reset (RST): a client still writing its body then fails with EPIPE or ECONNRESET before it
 * reads the 413. Measured with 8 MiB bodies over a 1 MiB limit (about 1 MiB for the AI
 * worker), server and client in separate processes on loopback, when the servers closed at
 * once:
 * - the gateway's push, undici's fetch: 26 tries in 50 failed chunked; a 3 MiB body with a
 *   Content-Length, about one in six (test/integration/ingest/push-body-limit.test.ts);
 * - the trickle server: fetch chunked 44 in 50, fetch with a Content-Length 17 in 50,
 *   node:http chunked 14 in 50 (test/integration/trickle/trickle-body-limit.test.ts);
 * - the AI worker's `/upscale`: 49, 37 and 8 in 50, and its `/live-video-to-video`: 44, 15 and
 *   22 in 50, in the same order (test/integration/ai-worker/worker-body-limit.test.ts).
 * With this linger every one of those tries got its 413. With client and server in the same
 * process the server's answer won the race every time, so these tests run the server apart.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * How long a refused body is still read (and dropped) after the answer has gone out, ms,
 * before the connection is closed ({@link lingerAfterRefusal}): the longest a client that
 * keeps writing holds the connection once it has been answered. On loopback a client writes
 * 0.5-0.7 GB in those 2 s (measured against the push route), all read and dropped.
 */
export const REFUSED_BODY_LINGER_MS = 2000;

/**
 * Lets a client whose body is refused (413, or any answer sent before its body was read
 * whole) read the answer while it is still writing. Call it before sending the answer, with
 * the body unread (refused for its declared Content-Length) or partly read and no longer
 * consumed (every `data` listener removed, or an iterator left with `destroyOnReturn: false`):
 * the rest of the body is then read and dropped, never stored, and the connection stays
 * usable for the next request once the body ends. If the body has not ended
 * {@link REFUSED_BODY_LINGER_MS} after the answer was sent, the connection is closed
 * (`req.socket.destroy()`), so a client that keeps writing holds it that long at most.
 *
 * A body that has all arrived is only dropped. Never call it with a destroyed request: that
 * one's connection is gone already.
 * @param req the request whose body is refused (an express Request is one)
 * @param res its response, not yet finished or about to be (an express Response is one)
 */
export function lingerAfterRefusal(req: IncomingMessage, res: ServerResponse): void {
  // Node's server drops an unread body itself once the answer ends, but not one already being
  // read, so the body is set flowing here, with no 'data' listener (what is buffered goes too).
  req.resume();
  if (req.complete) return;
  const closeLater = (): void => {
    if (req.complete) return;
    const timer = setTimeout(() => req.socket.destroy(), REFUSED_BODY_LINGER_MS);
    timer.unref();
    const done = (): void => clearTimeout(timer);
    req.once('end', done);
    req.once('close', done);
  };
  if (res.writableFinished) closeLater();
  else res.once('finish', closeLater);
}
