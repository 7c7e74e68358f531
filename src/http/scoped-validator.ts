/**
 * An OpenAPI validator (express-openapi-validator's `middleware()`, an array of middlewares)
 * scoped to the paths its spec covers. Each router mounts its validator at the root, so
 * without this every request of the whole app passes through every router's validator:
 * about six middlewares each, every one awaiting the loaded spec (a promise hop), the
 * response validator hooking `res.json`, only for the validator to find the path ignored
 * (`ignorePaths`). Scoped, a request outside the paths skips each of them with one test.
 */
import { readFileSync } from 'node:fs';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { parse as parseYaml } from 'yaml';

/**
 * @param covers true for the request paths (`req.path`, as `ignorePaths` sees it at the
 *   root) the validator must see: at least every path its `ignorePaths` does not ignore
 * @param validator the middlewares `OpenApiValidator.middleware(...)` returns
 * @returns the same middlewares, each passing other requests straight on
 */
export function scopedValidator(covers: (path: string) => boolean, validator: readonly RequestHandler[]): RequestHandler[] {
  return validator.map((handler) => (req: Request, res: Response, next: NextFunction) => {
    if (covers(req.path)) return handler(req, res, next);
    next();
  });
}

/** express-openapi-validator's options, less those {@link specValidator} sets itself. */
export type SpecValidatorOptions = Omit<Parameters<typeof OpenApiValidator.middleware>[0], 'apiSpec' | 'ignorePaths' | 'validateSecurity'>;

/**
 * The OpenAPI validator of one router: `OpenApiValidator.middleware()` over `apiSpec`, ignoring
 * every path `covers` does not take and scoped to those paths ({@link scopedValidator}).
 * Security is never validated by it: each router checks its own credentials first (admin guard,
 * API keys).
 * @param apiSpec absolute path of the OpenAPI document (openapi/*.yaml)
 * @param covers true for the request paths the validator must see
 * @param options request/response validation options (coercion, unknown query parameters, file uploads)
 */
export function specValidator(apiSpec: string, covers: (path: string) => boolean, options: SpecValidatorOptions): RequestHandler[] {
  return scopedValidator(covers, OpenApiValidator.middleware({
    apiSpec, ...options, validateSecurity: false, ignorePaths: (path: string) => !covers(path),
  }));
}

/**
 * The OpenAPI validators of a router's hot static paths: one express-openapi-validator per
 * path, over a copy of `apiSpec` holding that path only, chosen by the request's exact
 * `req.path`; a request to any other path passes straight on.
 *
 * Why: the validator finds a request's route on every request by compiling the routes of its
 * spec with path-to-regexp (`pathToRegexp`, no cache) one by one, in its sorted order
 * (alphabetical, static before parametrized), until one matches
 * (express-openapi-validator 5.6.2, dist/middlewares/openapi.metadata.js `lookupRoute`; no
 * option turns it off). Over the whole of openapi/ai.yaml that is 10 to 13 compiles for a
 * pipeline path (~40 µs of CPU per request); over a spec of one path it is one.
 * @param apiSpec absolute path of the OpenAPI document (openapi/*.yaml); read once, here
 * @param paths static paths of the document (no `{param}`), each validated as in the document
 *   (its `components` and `servers` kept)
 * @param options request/response validation options, the same for every path
 * @throws Error when a path is not in the document
 */
export function pathValidators(apiSpec: string, paths: readonly string[], options: SpecValidatorOptions): RequestHandler[] {
  const { paths: all, ...rest } = parseYaml(readFileSync(apiSpec, 'utf8')) as { paths: Record<string, unknown> };
  const byPath = new Map<string, readonly RequestHandler[]>();
  for (const path of paths) {
    if (all[path] === undefined) throw new Error(`${path} is not a path of ${apiSpec}`);
    // Each validator gets its own copy: it resolves and rewrites its document in place.
    const doc = structuredClone({ ...rest, paths: { [path]: all[path] } });
    byPath.set(path, OpenApiValidator.middleware({ apiSpec: doc as never, ...options, validateSecurity: false }));
  }
  const stages = Math.max(0, ...[...byPath.values()].map((v) => v.length));
  return Array.from({ length: stages }, (_, i) => (req: Request, res: Response, next: NextFunction) => {
    const handler = byPath.get(req.path)?.[i];
    if (handler) return handler(req, res, next);
    next();
  });
}
