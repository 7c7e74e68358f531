/**
 * An OpenAPI validator (express-openapi-validator's `middleware()`, an array of middlewares)
 * scoped to the paths its spec covers. Each router mounts its validator at the root, so
 * without this every request of the whole app passes through every router's validator:
 * about six middlewares each, every one awaiting the loaded spec (a promise hop), the
 * response validator hooking `res.json`, only for the validator to find the path ignored
 * (`ignorePaths`). Scoped, a request outside the paths skips each of them with one test.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';

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
