/**
 * Reading `POST /live/video-to-video/<stream>/start` (Livepeer's form and mediagate's JSON)
 * and `…/update` bodies: the 400s name the problem as Livepeer does ("Missing source_id",
 * "Invalid model params").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../../src/errors/gateway-error.ts';
import { parseStartForm, parseStartJson, parseUpdateBody } from '../../../../src/ai/live/live-start-request.ts';

const rejects400 = (fn: () => unknown, msg: RegExp): void => {
  assert.throws(fn, (e: GatewayError) => e instanceof GatewayError && e.status === 400 && msg.test(e.message));
};

test('Livepeer\'s form: source_id, source_type (any case), query with pipeline and params', () => {
  const r = parseStartForm({ source_id: 'conn-1', source_type: 'rtmpConn', query: `pipeline=mediagate%2Fcpu-filter&params=${encodeURIComponent('{"filter":"grayscale"}')}&streamId=s1`, rtmp_url: 'rtmp://mtx/live/cam' });
  assert.deepEqual(r, { form: true, modelID: 'mediagate/cpu-filter', params: { filter: 'grayscale' }, source: { id: 'conn-1', type: 'rtmpconn' }, streamID: 's1' });
  assert.deepEqual(parseStartForm({ source_id: 'x', source_type: 'webrtcsession' }), { form: true, modelID: undefined, params: {}, source: { id: 'x', type: 'webrtcsession' } });
});

test('the form\'s refusals: missing fields, unknown source type, params not a JSON object, a bad model ID', () => {
  rejects400(() => parseStartForm({ source_type: 'rtmpconn' }), /^Missing source_id$/);
  rejects400(() => parseStartForm({ source_id: 'a' }), /^Missing source_type$/);
  rejects400(() => parseStartForm({ source_id: 'a', source_type: 'srtconn' }), /^Invalid source type srtconn/);
  rejects400(() => parseStartForm({ source_id: 'a', source_type: 'rtmpconn', query: 'params=%7Bnot-json' }), /^Invalid model params$/);
  rejects400(() => parseStartForm({ source_id: 'a', source_type: 'rtmpconn', query: 'params=%5B1%2C2%5D' }), /^Invalid model params$/);
  rejects400(() => parseStartForm({ source_id: 'a', source_type: 'rtmpconn', query: 'pipeline=..%2Fetc' }), /query pipeline: not a model ID/);
});

test('the JSON body: model_id and params, nothing else', () => {
  assert.deepEqual(parseStartJson({ model_id: 'mediagate/cpu-filter', params: { filter: 'negate' } }), { form: false, modelID: 'mediagate/cpu-filter', params: { filter: 'negate' } });
  assert.deepEqual(parseStartJson(undefined), { form: false, modelID: undefined, params: {} });
  rejects400(() => parseStartJson({ model_id: 'm', prompt: 'x' }), /prompt: unknown field/);
  rejects400(() => parseStartJson({ params: 'negate' }), /Invalid model params/);
  rejects400(() => parseStartJson({ model_id: 7 }), /model_id: must be a string/);
  rejects400(() => parseStartJson([1]), /expected a JSON object/);
});

test('an update is any JSON object, kept as sent; anything else is refused', () => {
  const raw = Buffer.from('{"filter": "tint", "tint": {"r": 255, "g": 0, "b": 0}}');
  assert.equal(parseUpdateBody(raw), raw);
  rejects400(() => parseUpdateBody(Buffer.from('not json')), /the body is not JSON/);
  rejects400(() => parseUpdateBody(Buffer.from('null')), /expected a JSON object/);
  rejects400(() => parseUpdateBody(Buffer.from('"x"')), /Invalid model params/);
  rejects400(() => parseUpdateBody(Buffer.alloc(200 * 1024, 0x20)), /larger than/);
});
