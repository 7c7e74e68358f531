/**
 * The live sessions' start checks (src/ai/live/live-sessions.ts): a start waits a bounded
 * time for its stream to be live on this gateway (404 STREAM_NOT_LIVE after), a `-out` stream
 * is ignored for Livepeer's form and refused for the JSON body, and a worker's start answer
 * is checked, its relative channel URLs resolved against the worker's base URL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../../src/log/logger.ts';
import { GatewayError } from '../../../../src/errors/gateway-error.ts';
import { LiveSessions, workerChannels } from '../../../../src/ai/live/live-sessions.ts';

function sessions(streamWaitMs: number): LiveSessions {
  return new LiveSessions({
    manager: {} as never, registry: { modelFor: () => 'mediagate/cpu-filter' } as never, retry: {} as never,
    readSegment: async () => undefined, trickle: {} as never, outputs: {} as never,
    timings: { eventTimeoutMs: 30_000, outputTimeoutMs: 30_000, maxInflightSegments: 3, keepaliveIntervalMs: 10_000, chargeIntervalMs: 5000, swapWindowMs: 180_000, maxSwaps: 2 },
    startTimeoutMs: 5000, streamWaitMs, statusKeepMs: 60_000, logger: silentLogger(), newRequestID: () => 'ai-1',
  });
}

test('a start on a stream that does not publish here waits streamWaitMs, then 404 STREAM_NOT_LIVE', async () => {
  const live = sessions(150);
  const startedMs = Date.now();
  await assert.rejects(live.start('cam', { form: false, modelID: undefined, params: {} }, {}), (e: GatewayError) => e.code === 'STREAM_NOT_LIVE' && e.status === 404);
  assert.ok(Date.now() - startedMs >= 140, 'waited for the stream');
  await live.close();
});

test('-out streams: ignored for Livepeer\'s form, 400 for the JSON body; bad names 400', async () => {
  const live = sessions(10);
  assert.equal(await live.start('cam-out', { form: true, modelID: undefined, params: {} }, {}), undefined);
  await assert.rejects(live.start('cam-out', { form: false, modelID: undefined, params: {} }, {}), (e: GatewayError) => e.status === 400 && /ends in -out/.test(e.message));
  await assert.rejects(live.start('../x', { form: false, modelID: undefined, params: {} }, {}), (e: GatewayError) => e.code === 'INVALID_NAME');
  await live.close();
});

test('a worker\'s start answer: relative URLs resolved against its base, absolute ones kept, missing ones refused', () => {
  const reply = { publish_url: '/ai/trickle/m1', subscribe_url: 'ai/trickle/m1-out', control_url: 'http://10.0.0.5:9000/ai/trickle/m1-control', events_url: '/ai/trickle/m1-events' };
  assert.deepEqual(workerChannels(reply, 'http://127.0.0.1:8000/runner'), {
    publishUrl: 'http://127.0.0.1:8000/ai/trickle/m1', subscribeUrl: 'http://127.0.0.1:8000/runner/ai/trickle/m1-out',
    controlUrl: 'http://10.0.0.5:9000/ai/trickle/m1-control', eventsUrl: 'http://127.0.0.1:8000/ai/trickle/m1-events',
  });
  assert.throws(() => workerChannels({ ...reply, events_url: undefined }, 'http://w'), /no events_url/);
  assert.throws(() => workerChannels({ ...reply, publish_url: 'file:///etc/passwd' }, 'http://w'), /not http/);
  assert.throws(() => workerChannels('nope', 'http://w'), /not a JSON object/);
});
