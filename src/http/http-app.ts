/**
 * The express application: feature routers are mounted here by the composition root,
 * and one error handler renders every failure as `{"detail":{"msg","code"}}`
 * (docs/wire-contract.md §12). Known failure classes (http/error-classes.ts) get their own
 * status; a client that went away is logged at debug; unknown errors become a generic 500
 * and the real one is logged.
 */
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import { createServer, maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { ERROR_CODES, GatewayError, isGatewayError, type ErrorCode } from '../errors/gateway-error.ts';
import { classifyError, isClientAbort } from './error-classes.ts';
import type { Logger } from '../log/logger.ts';
import { REDACTED } from '../log/redact.ts';
import { requestGuard, type RequestGuardOptions } from './request-guard.ts';
import type { HealthReport } from './health.ts';

export type { HealthReport } from './health.ts';


export interface HttpAppOptions {
  logger: Logger;
  /** Routers mounted in order (playback, ingest, APIs); a router may come wrapped by {@link skipping}. */
  routers: (Router | ((req: Request, res: Response, next: NextFunction) => void))[];
  /** Readiness of dependencies for `GET /healthz`. */
  health: () => Promise<HealthReport>;
  /** Host and cross-site checks run before every route (request-guard.ts); absent = none. */
  guard?: RequestGuardOptions;
}

/** `Retry-After` of a 503 whose error names no wait of its own, seconds. */
const DEFAULT_RETRY_AFTER_S = 2;

/**
 * Renders an error in the contract's shape and status. `Retry-After` is the error's own
 * `retryAfterS` (the number its message names, if any); a 503 without one gets 2 s.
 */
export function sendError(res: Response, err: GatewayError, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  if (err.retryAfterS !== undefined) res.setHeader('Retry-After', String(err.retryAfterS));
  else if (err.status === 503 && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', String(DEFAULT_RETRY_AFTER_S));
  res.status(err.status).json({ detail: { msg: err.message, code: err.code } });
}

/** HTTP statuses of express-openapi-validator errors and the codes they become. */
const VALIDATOR_STATUS_CODES: Record<number, ErrorCode> = {
  400: 'INVALID_REQUEST', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE',
};

interface ValidatorErrorItem {
  path?: string;
  message?: string;
  errorCode?: string;
}

/**
 * `[{path: '/body/colour', errorCode: 'additionalProperties…'}]` → `colour: unknown field`;
 * `/query/state` → `query.state: …`. Every message names the field.
 */
export function describeValidationErrors(errors: readonly ValidatorErrorItem[]): string {
  return errors.slice(0, 5).map((x) => {
    const field = (x.path ?? '').replace(/^\/body\/?/, '').replace(/^\//, '').replace(/\//g, '.') || 'body';
    const why = x.errorCode?.startsWith('additionalProperties') ? 'unknown field' : (x.message ?? 'invalid');
    return `${field}: ${why}`;
  }).join('; ');
}

/**
 * The GatewayError the error handler renders for `err`: itself, a known failure class
 * (error-classes.ts), or an express-openapi-validator error with its status's code;
 * undefined for an unknown error (rendered as a generic 500).
 */
export function toGatewayError(err: unknown): GatewayError | undefined {
  if (isGatewayError(err)) return err;
  const classified = classifyError(err);
  if (classified) return classified;
  const e = err as { status?: number; message?: string; errors?: unknown[] };
  // express-openapi-validator: a status and an `errors` list whose messages name the field.
  if (typeof e?.status === 'number' && Array.isArray(e.errors)) {
    const code = VALIDATOR_STATUS_CODES[e.status];
    if (code) return new GatewayError(code, describeValidationErrors(e.errors as ValidatorErrorItem[]) || (e.message ?? ERROR_CODES[code].message));
  }
  return undefined;
}

/**
 * A request path as it may be logged: the stream name of an ingest path
 * (`/live/<streamKey>/<seq>.ts`) is a secret stream key, so it is replaced by `[redacted]`.
 */
export function loggablePath(path: string): string {
  return path.replace(/^\/live\/[^/]*/, `/live/${REDACTED}`).slice(0, 200);
}

/**
 * `router`, passed over for the requests `skip` names: they go straight to the next router, as
 * they would after walking every layer of this one unmatched. For the hot paths of one feature
 * (the AI pipeline POSTs) that the routers mounted before it never serve: express walks every
 * layer of every router mounted before the one that answers (each a path match and a `next`),
 * about 60 layers here.
 * @param skip must be true only for requests `router` would pass on untouched (no route, no
 *   middleware of it applies to them)
 */
export function skipping(skip: (req: Request) => boolean, router: Router): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    if (skip(req)) next();
    else router(req, res, next);
  };
}

export function createHttpApp(options: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (options.guard) app.use(requestGuard(options.guard));

  app.get('/healthz', async (_req: Request, res: Response) => {
    const report = await options.health();
    res.status(report.status === 'ok' ? 200 : 503).json(report);
  });

  for (const router of options.routers) app.use(router);

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new GatewayError('NOT_FOUND', `no route for ${req.method} ${req.path.slice(0, 200)}`));
  });

  // Express recognises error middleware by its four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (isClientAbort(err)) {
      // The client went away mid-request: nobody is left to answer, and nothing failed here.
      options.logger.debug({ path: loggablePath(req.path), method: req.method, reason: (err as Error).message }, 'client aborted the request');
      if (!res.headersSent && !req.socket.destroyed) sendError(res, new GatewayError('INVALID_REQUEST', 'the request body was cut off'));
      else res.destroy();
      return;
    }
    const known = toGatewayError(err);
    if (known) {
      if (known.status >= 500) options.logger.warn({ code: known.code, err: known.message, path: loggablePath(req.path) }, 'request failed');
      sendError(res, known);
      return;
    }
    options.logger.error({ err, path: loggablePath(req.path), method: req.method }, 'unhandled request error');
    sendError(res, new GatewayError('INTERNAL', 'internal error; see the gateway log'));
  });
  return app;
}

/** `Retry-After` (s) of a request refused while the process shuts down: about a restart's time. */
export const SHUTDOWN_RETRY_AFTER_S = 5;

/** A bound HTTP server whose application is installed later and that drains before closing. */
export interface EarlyServer {
  readonly server: Server;
  /** Installs the application; until then every request gets 503 `STARTING` with `Retry-After: 1`. */
  setHandler(app: (req: IncomingMessage, res: ServerResponse) => void): void;
  /**
   * Stops taking requests and waits for the ones in flight: from now on every new request
   * is answered 503 `SHUTTING_DOWN` with `Retry-After` and `Connection: close` (the port
   * stays bound, so clients get an answer instead of a refused connection), idle keep-alive
   * connections are closed, and in-flight responses close their connection when done.
   * Resolves when no request is in flight or at `deadlineMs` (epoch ms), whichever is first.
   * The listener itself is closed by `closeServer`.
   */
  drain(deadlineMs: number): Promise<void>;
}

/** `Retry-After` of the 503 STARTING answered before the application is installed, seconds. */
const STARTING_RETRY_AFTER_S = 1;

/**
 * Listens on host:port and resolves once bound. Until `setHandler` installs the application,
 * requests get 503 `STARTING` with `Retry-After: 1`.
 * @throws Error naming the address and what to do when the port is taken.
 */
export async function listenEarly(host: string, port: number, setting = 'MEDIAGATE_HTTP_PORT'): Promise<EarlyServer> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    const err = new GatewayError('STARTING', `the gateway is starting; retry in ${STARTING_RETRY_AFTER_S} s`, { retryAfterS: STARTING_RETRY_AFTER_S });
    res.statusCode = err.status;
    res.setHeader('Retry-After', String(err.retryAfterS));
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ detail: { msg: err.message, code: err.code } }));
  };
  let draining = false;
  const inFlight = new Set<ServerResponse>();
  let idle: (() => void) | undefined;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer((req, res) => {
      if (draining) {
        refuseWhileShuttingDown(res);
        return;
      }
      inFlight.add(res);
      res.once('close', () => {
        inFlight.delete(res);
        if (inFlight.size === 0) idle?.();
      });
      handler(req, res);
    });
    s.keepAliveTimeout = 5000;
    s.on('clientError', answerClientError);
    s.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new Error(`port ${host}:${port} is already in use; stop the other process or set ${setting}`)
        : err);
    });
    s.listen(port, host, () => resolve(s));
  });
  const drain = async (deadlineMs: number): Promise<void> => {
    draining = true;
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    server.closeIdleConnections();
    if (inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      idle = resolve;
      timer = setTimeout(resolve, Math.max(0, deadlineMs - Date.now()));
    });
    clearTimeout(timer);
  };
  return { server, setHandler: (app) => { handler = app; }, drain };
}

/** 503 SHUTTING_DOWN with Retry-After and Connection: close, in the contract's error shape. */
function refuseWhileShuttingDown(res: ServerResponse): void {
  const err = new GatewayError('SHUTTING_DOWN', `the gateway is shutting down; retry in ${SHUTDOWN_RETRY_AFTER_S} s (another gateway, or this one once restarted)`,
    { retryAfterS: SHUTDOWN_RETRY_AFTER_S });
  res.writeHead(err.status, {
    'Retry-After': String(err.retryAfterS),
    'Connection': 'close',
    'Content-Type': 'application/json',
  });
  res.end(JSON.stringify({ detail: { msg: err.message, code: err.code } }));
}

/**
 * Answers a request node:http could not parse with the contract's JSON error body instead of
 * node's bare status line: headers over `--max-http-header-size` (16 KiB by default) → 431,
 * a request not received within `requestTimeout` → 408, any other parse error → 400. The
 * statuses are node's own defaults for these cases (node `lib/_http_server.js`).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const error = err.code === 'HPE_HEADER_OVERFLOW'
    ? new GatewayError('HEADERS_TOO_LARGE', `request headers exceed the limit of ${maxHeaderSize} bytes (a header such as Livepeer-Transcode-Configuration is too long)`)
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new GatewayError('REQUEST_TIMEOUT', 'the request was not received in time')
      : new GatewayError('INVALID_REQUEST', 'malformed HTTP request');
  const body = JSON.stringify({ detail: { msg: error.message, code: error.code } });
  const reason = error.status === 431 ? 'Request Header Fields Too Large' : error.status === 408 ? 'Request Timeout' : 'Bad Request';
  socket.end(`HTTP/1.1 ${error.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/**
 * Stops listening and closes idle keep-alive sockets; connections still busy after
 * `graceMs` (default 2000) are closed. Resolves when closed; also when already closed.
 * Call `EarlyServer.drain` first to let in-flight requests finish.
 */
export function closeServer(server: Server, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
