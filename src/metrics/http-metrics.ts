/**
 * `mediagate_http_request_duration_seconds` by method, route template and status code, and
 * the router that serves `GET /metrics`. The route label is the express route template that
 * matched (`req.route.path`, under a root-mounted router), else the template a feature
 * router named for a request it refused before its route (http/response-outcome.ts
 * `setRouteTemplate`), else `unmatched`; never the request's URL.
 */
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { ServerResponse } from 'node:http';
import { Histogram } from 'prom-client';
import { onResponseDone, routeTemplateOf } from '../http/response-outcome.ts';
import { OTHER, methodLabel, statusCodeLabel } from './metric-labels.ts';
import { metricName, type MetricsRegistry } from './metrics-registry.ts';

/** HTTP request duration, seconds (a push request waits for its renditions). */
export const HTTP_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Longest route template kept as a label. */
const ROUTE_TEMPLATE_MAX_LENGTH = 100;

/** The HTTP duration family and the `/metrics` router of one registry. */
export class HttpMetrics {
  readonly #metrics: MetricsRegistry;
  readonly #seconds: Histogram<string>;

  constructor(metrics: MetricsRegistry) {
    this.#metrics = metrics;
    this.#seconds = new Histogram({
      name: metricName('http_request_duration_seconds'), registers: [metrics.registry], labelNames: ['method', 'route', 'status_code'], buckets: HTTP_SECONDS_BUCKETS,
      help: 'HTTP request duration by method, route template and status code, seconds.',
    });
  }

  /**
   * Express middleware that times every request to the end of its response (`aborted` when
   * the client left first). Mount it before the feature routers.
   */
  middleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      onResponseDone(res, ({ statusCode, durationMs }) => {
        this.#seconds.observe({ method: methodLabel(req.method), route: routeLabel(req, res), status_code: statusCodeLabel(statusCode) }, durationMs / 1000);
      });
      next();
    };
  }

  /**
   * Times a request answered outside express (the playlist cache's hits, hls/playback.ts
   * `playlistHitHandler`) as `middleware()` would, under the route template `route`.
   */
  observe(method: string, route: string, res: ServerResponse): void {
    onResponseDone(res as Response, ({ statusCode, durationMs }) => {
      this.#seconds.observe({ method: methodLabel(method), route, status_code: statusCodeLabel(statusCode) }, durationMs / 1000);
    });
  }

  /** A router with `middleware()` for every request and `GET /metrics`; mount it before the feature routers. */
  router(): Router {
    const router = Router();
    router.use(this.middleware());
    router.get('/metrics', this.#metrics.metricsHandler());
    return router;
  }
}

/** The route template of a request handled by a root-mounted router, else the one its router named, else `unmatched`. */
function routeLabel(req: Request, res: Response): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  if (route === undefined) return routeTemplateOf(res) ?? 'unmatched';
  if (req.baseUrl !== '' || typeof route.path !== 'string' || route.path.length > ROUTE_TEMPLATE_MAX_LENGTH) return OTHER;
  return route.path;
}
