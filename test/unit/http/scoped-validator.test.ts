/**
 * http/scoped-validator.ts: a router's OpenAPI validator runs only for the paths it covers,
 * and passes errors on as the validator does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { scopedValidator } from '../../../src/http/scoped-validator.ts';

function run(handlers: RequestHandler[], path: string): { calls: string[]; error: unknown } {
  const calls: string[] = [];
  let error: unknown;
  let i = 0;
  const next: NextFunction = (err?: unknown) => {
    if (err !== undefined) {
      error = err;
      return;
    }
    const handler = handlers[i++];
    if (handler) void handler({ path } as Request, {} as Response, next);
    else calls.push('route');
  };
  next();
  return { calls, error };
}

test('the validator middlewares run for covered paths only; other requests go straight on', () => {
  const seen: string[] = [];
  const validator: RequestHandler[] = ['metadata', 'request', 'response'].map((name) => (req, _res, next) => {
    seen.push(`${name} ${req.path}`);
    next();
  });
  const scoped = scopedValidator((path) => path.startsWith('/api/streams'), validator);
  assert.deepEqual(run(scoped, '/api/streams/cam').calls, ['route']);
  assert.deepEqual(seen, ['metadata /api/streams/cam', 'request /api/streams/cam', 'response /api/streams/cam']);
  seen.length = 0;
  assert.deepEqual(run(scoped, '/text-to-image').calls, ['route']);
  assert.deepEqual(seen, [], 'an uncovered path reaches no validator middleware');
});

test('an error a covered validator passes on reaches the error handler', () => {
  const refusal = new Error('request/body must have required property prompt');
  const scoped = scopedValidator(() => true, [(_req, _res, next) => next(refusal)]);
  const { calls, error } = run(scoped, '/text-to-image');
  assert.deepEqual(calls, []);
  assert.equal(error, refusal);
});
