/**
 * The admin-token rule shared by every operator API (control, payments, AI workers):
 * a configured `http.adminToken` is always required as `Authorization: Bearer <token>`
 * (compared in constant time); with none configured, the API answers only while the
 * gateway binds loopback and is refused with 403 on a public bind.
 */
import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { GatewayError } from '../errors/gateway-error.ts';

export interface AdminGuardOptions {
  /** `http.adminToken`; '' = none configured. */
  adminToken: string;
  /** Whether the gateway binds only loopback. */
  loopbackOnly: boolean;
  /** Named in the 403 message, e.g. "control API". */
  apiName: string;
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Middleware enforcing the rule; errors go to the error handler (401/403 in the contract shape). */
export function adminGuard(options: AdminGuardOptions): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (options.adminToken === '') {
      next(options.loopbackOnly ? undefined
        : new GatewayError('FORBIDDEN', `the ${options.apiName} is disabled on a public bind address until http.adminToken (MEDIAGATE_HTTP_ADMIN_TOKEN) is set`));
      return;
    }
    const token = /^Bearer (.+)$/i.exec(req.header('authorization') ?? '')?.[1];
    if (token === undefined) {
      next(new GatewayError('UNAUTHORIZED', 'missing admin token: send Authorization: Bearer <http.adminToken>'));
      return;
    }
    next(tokenMatches(token, options.adminToken) ? undefined : new GatewayError('UNAUTHORIZED', 'invalid admin token'));
  };
}
