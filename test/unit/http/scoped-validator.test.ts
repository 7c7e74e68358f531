/**
 * http/scoped-validator.ts: a router's OpenAPI validator runs only for the paths it covers,
 * and passes errors on as the validator does; per-path validators (`pathValidators`) validate
 * like the whole spec's and find a request's route with one path-to-regexp compile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { pathValidators, scopedValidator, specValidator } from '../../../src/http/scoped-validator.ts';
import { AI_SPEC_PATH } from '../../../src/ai/ai-routes.ts';

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

/** An app with `validators` on JSON bodies; each request reaching the route answers the body it saw. */
async function serve(validators: RequestHandler[]): Promise<{ url: string; close(): void }> {
  const app = express();
  app.use(express.json());
  app.use(validators);
  app.post('/:name', (req: Request, res: Response) => { res.json({ routed: req.path, body: req.body }); });
  app.use((err: { status?: number; message: string }, _req: Request, res: Response, _next: NextFunction) => { res.status(err.status ?? 500).json({ msg: err.message }); });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/** Counts express-openapi-validator's path-to-regexp compiles (its `pathToRegexp` calls) while `fn` runs. */
async function countCompiles(fn: () => Promise<void>): Promise<number> {
  const require = createRequire(import.meta.url);
  const ptr = require(require.resolve('path-to-regexp', { paths: [require.resolve('express-openapi-validator')] })) as { pathToRegexp: (...a: unknown[]) => unknown };
  const original = ptr.pathToRegexp;
  let calls = 0;
  ptr.pathToRegexp = (...a: unknown[]) => { calls++; return original(...a); };
  try {
    await fn();
  } finally {
    ptr.pathToRegexp = original;
  }
  return calls;
}

test('pathValidators: each path validated as the whole spec does (400 naming the field, defaults filled); other paths pass unvalidated', async (t) => {
  const app = await serve(pathValidators(AI_SPEC_PATH, ['/text-to-image', '/llm'], { validateRequests: { coerceTypes: false }, validateResponses: false }));
  t.after(() => app.close());
  const ok = await post(`${app.url}/text-to-image`, { prompt: 'a bunny' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal((ok.body['body'] as Record<string, unknown>)['model_id'], 'stabilityai/sdxl-turbo', 'the spec\'s default model_id is filled in');
  const bad = await post(`${app.url}/text-to-image`, { prompt: 5 });
  assert.equal(bad.status, 400);
  assert.match(String(bad.body['msg']), /prompt/);
  const llm = await post(`${app.url}/llm`, {});
  assert.equal(llm.status, 400);
  assert.match(String(llm.body['msg']), /messages/);
  const other = await post(`${app.url}/upscale`, { anything: true });
  assert.equal(other.status, 200, 'a path without a validator of its own is not validated here');
  assert.throws(() => pathValidators(AI_SPEC_PATH, ['/no-such-path'], {}), /\/no-such-path is not a path of/);
});

test('pathValidators: finding a request\'s route compiles one route, the whole spec\'s validator one per route before it', async (t) => {
  const options = { validateRequests: { coerceTypes: false }, validateResponses: false } as const;
  const perPath = await serve(pathValidators(AI_SPEC_PATH, ['/text-to-image', '/text-to-speech'], options));
  const whole = await serve(specValidator(AI_SPEC_PATH, (p) => p === '/text-to-image' || p === '/text-to-speech', options));
  t.after(() => { perPath.close(); whole.close(); });
  const requests = 20;
  for (const path of ['/text-to-image', '/text-to-speech']) {
    const body = path === '/text-to-image' ? { prompt: 'x' } : { text: 'x' };
    for (const app of [perPath, whole]) assert.equal((await post(`${app.url}${path}`, body)).status, 200); // the specs are loaded
    const perPathCompiles = await countCompiles(async () => { for (let i = 0; i < requests; i++) await post(`${perPath.url}${path}`, body); });
    const wholeCompiles = await countCompiles(async () => { for (let i = 0; i < requests; i++) await post(`${whole.url}${path}`, body); });
    assert.equal(perPathCompiles / requests, 1, `${path}: one compile per request`);
    assert.ok(wholeCompiles / requests > 5, `${path}: the whole spec's validator compiles ${wholeCompiles / requests} routes per request`);
  }
});
