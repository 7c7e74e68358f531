/**
 * http/http-app.ts `skipping`: a router passed over for the requests a predicate names (the AI
 * pipeline POSTs, ai-routes.ts `isPipelinePost`), entered as before by every other request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { skipping } from '../../../src/http/http-app.ts';
import { isPipelinePost } from '../../../src/ai/ai-routes.ts';
import { isPlaybackRead } from '../../../src/hls/playback.ts';

test('a skipped router never sees the requests the predicate names; every other request walks it as before', async () => {
  const seen: string[] = [];
  const first = Router();
  first.use((req: Request, _res: Response, next: NextFunction) => {
    seen.push(`${req.method} ${req.path}`);
    next();
  });
  first.get('/first', (_req: Request, res: Response) => { res.send('first'); });
  first.post('/fails', () => { throw new Error('from the first router'); });
  const last = Router();
  last.post('/text-to-image', (_req: Request, res: Response) => { res.send('pipeline'); });
  last.get('/text-to-image', (_req: Request, res: Response) => { res.send('get'); });
  const app = express();
  app.use(skipping(isPipelinePost, first));
  app.use(last);
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => { res.status(500).send(err.message); });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const post = await fetch(`${base}/text-to-image`, { method: 'POST' });
    assert.equal(await post.text(), 'pipeline');
    assert.deepEqual(seen, [], 'the pipeline POST passed the first router by');
    assert.equal(await (await fetch(`${base}/text-to-image`)).text(), 'get');
    assert.equal(await (await fetch(`${base}/first`)).text(), 'first');
    const failed = await fetch(`${base}/fails`, { method: 'POST' });
    assert.equal(failed.status, 500);
    assert.equal(await failed.text(), 'from the first router');
    assert.deepEqual(seen, ['GET /text-to-image', 'GET /first', 'POST /fails']);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('isPipelinePost names the POST of each pipeline path, nothing else', () => {
  assert.equal(isPipelinePost({ method: 'POST', path: '/text-to-image' }), true);
  assert.equal(isPipelinePost({ method: 'POST', path: '/llm' }), true);
  assert.equal(isPipelinePost({ method: 'GET', path: '/text-to-image' }), false);
  assert.equal(isPipelinePost({ method: 'POST', path: '/api/workers' }), false);
  assert.equal(isPipelinePost({ method: 'POST', path: '/live/key/0.ts' }), false);
  assert.equal(isPipelinePost({ method: 'POST', path: '/text-to-image/extra' }), false);
});

test('isPlaybackRead names a GET or HEAD below /stream/, nothing else', () => {
  assert.equal(isPlaybackRead({ method: 'GET', path: '/stream/cam.m3u8' }), true);
  assert.equal(isPlaybackRead({ method: 'GET', path: '/stream/cam/source.m3u8' }), true);
  assert.equal(isPlaybackRead({ method: 'HEAD', path: '/stream/cam/source/3.ts' }), true);
  assert.equal(isPlaybackRead({ method: 'OPTIONS', path: '/stream/cam/source.m3u8' }), false);
  assert.equal(isPlaybackRead({ method: 'POST', path: '/stream/cam/source.m3u8' }), false);
  assert.equal(isPlaybackRead({ method: 'GET', path: '/streams' }), false);
  assert.equal(isPlaybackRead({ method: 'GET', path: '/whep/cam' }), false);
  assert.equal(isPlaybackRead({ method: 'GET', path: '/console/' }), false);
});
