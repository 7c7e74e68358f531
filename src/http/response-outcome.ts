/**
 * How a response ended, for the routers that record their own request metrics (ai/, the
 * ingest push route) and for the HTTP duration metric (metrics/http-metrics.ts), plus the
 * route template a router names for a request it refuses before any route matched.
 */
import type { Response } from 'express';

/** How one response ended. */
export interface ResponseOutcome {
  /** The HTTP status sent, or `aborted` when the connection closed before the response was complete. */
  readonly statusCode: number | 'aborted';
  /** From the `onResponseDone` call to the end of the response, ms (an SSE stream: its last chunk). */
  readonly durationMs: number;
}

/**
 * Calls `done` once, when `res` has been sent in full (`finish`) or its connection closed
 * first (`close`, then `aborted`). A `done` that throws is ignored: recording a metric never
 * breaks a response.
 */
export function onResponseDone(res: Response, done: (outcome: ResponseOutcome) => void): void {
  const startedMs = performance.now();
  let called = false;
  const end = (): void => {
    if (called) return;
    called = true;
    try {
      done({ statusCode: res.writableFinished ? res.statusCode : 'aborted', durationMs: performance.now() - startedMs });
    } catch {
      // Metrics never break a response.
    }
  };
  res.once('finish', end);
  res.once('close', end);
}

const ROUTE_TEMPLATE_LOCAL = 'routeTemplate';

/**
 * Names the route template of a request that a router owns but may refuse before its route
 * matches (an AI pipeline refused by the API-key check is still `/text-to-image`). Written
 * by the router from its own route table, never copied from the URL.
 */
export function setRouteTemplate(res: Response, template: string): void {
  (res.locals as Record<string, unknown>)[ROUTE_TEMPLATE_LOCAL] = template;
}

/** The template set by {@link setRouteTemplate}, if any. */
export function routeTemplateOf(res: Response): string | undefined {
  const template = (res.locals as Record<string, unknown>)[ROUTE_TEMPLATE_LOCAL];
  return typeof template === 'string' ? template : undefined;
}
