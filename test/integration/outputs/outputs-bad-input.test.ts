/**
 * Issue 16, bad input to the outputs API on a real gateway with a live stream: a malformed URL
 * or an unsupported scheme → 400 naming it; an unknown rendition → 400; a stream that is not live
 * → 404; more than `outputs.maxPerStream` → 409; an unknown output → 404; no admin token → 401.
 * Each answer has the error shape, never repeats a secret of the URL, creates no output, and the
 * gateway and its stream stay up.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { refusingPort } from '../../helpers/receivers.ts';
import { errorDetail, fetchRetryingReset, startOutputsFixture, type ListedOutput, type OutputsFixture } from './outputs-fixture.ts';

const SECRET = 'badinput-SECRET-key-77e0';
const MAX_PER_STREAM = 2;
let fx: OutputsFixture;
let port: number;

before(async () => {
  fx = await startOutputsFixture('outputs-bad', { MEDIAGATE_OUTPUTS_MAX_PER_STREAM: String(MAX_PER_STREAM) });
  port = await refusingPort();
});

after(async () => {
  await fx?.close();
});

test('a malformed URL, an unsupported scheme or a missing url is a 400 naming the problem, never echoing the URL\'s secret, and creates nothing', { timeout: 30_000 }, async () => {
  const cases: [string, unknown, RegExp][] = [
    ['http scheme', { url: `http://127.0.0.1:${port}/live/${SECRET}` }, /scheme|http/i],
    ['file scheme', { url: `file:///etc/${SECRET}` }, /scheme|file/i],
    ['not a URL', { url: `rtmp//127.0.0.1/live/${SECRET}` }, /malformed|url/i],
    ['no host', { url: `rtmp:///live/${SECRET}` }, /malformed|host|url/i],
    ['spaces in the URL', { url: `rtmp://127.0.0.1:${port}/live/${SECRET} -f null` }, /malformed|url/i],
    ['url missing', { rendition: 'source' }, /url/i],
    ['url not a string', { url: 42 }, /url/i],
    ['empty body', '', /body|url|json|request/i],
    ['not JSON', `{"url": "rtmp://127.0.0.1/live/${SECRET}"`, /json|body|parse|request/i],
  ];
  for (const [name, body, named] of cases) {
    const r = await fx.addOutput(body);
    assert.equal(r.status, 400, `${name}: ${r.text}`);
    const { msg } = errorDetail(r);
    assert.match(msg, named, `${name}: the message names the problem: ${msg}`);
    assert.ok(!r.text.includes(SECRET), `${name}: the answer does not repeat the URL's secret`);
  }
  assert.deepEqual(await fx.listOutputs(), [], 'no output was created');
});

test('an unknown rendition is a 400 naming the rendition; a profile of the stream\'s ladder is accepted', { timeout: 30_000 }, async () => {
  const r = await fx.addOutput({ url: `rtmp://127.0.0.1:${port}/live/${SECRET}`, rendition: 'P1080p60fps16x9' });
  assert.equal(r.status, 400, r.text);
  assert.match(errorDetail(r).msg, /rendition/i);
  assert.deepEqual(await fx.listOutputs(), [], 'no output was created');
  const ok = await fx.addOutput({ url: `rtmp://127.0.0.1:${port}/live/${SECRET}-a`, rendition: 'P144p30fps16x9' });
  assert.equal(ok.status, 201, ok.text);
  assert.equal((ok.json as ListedOutput).rendition, 'P144p30fps16x9');
});

test('a stream that is not live is a 404; more than outputs.maxPerStream is a 409; an unknown output is a 404; no token is a 401', { timeout: 30_000 }, async () => {
  const notLive = await fx.addOutput({ url: `rtmp://127.0.0.1:${port}/live/${SECRET}` }, 'no-such-stream');
  assert.equal(notLive.status, 404, notLive.text);
  assert.match(errorDetail(notLive).msg, /live|stream/i);

  // One output exists (previous test); fill up to the limit, then one more.
  while ((await fx.listOutputs()).length < MAX_PER_STREAM) {
    const r = await fx.addOutput({ url: `rtmp://127.0.0.1:${port}/live/${SECRET}-${Date.now()}` });
    assert.equal(r.status, 201, r.text);
  }
  const tooMany = await fx.addOutput({ url: `rtmp://127.0.0.1:${port}/live/${SECRET}-over` });
  assert.equal(tooMany.status, 409, tooMany.text);
  assert.match(errorDetail(tooMany).msg, /maxPerStream|outputs/i);
  assert.equal((await fx.listOutputs()).length, MAX_PER_STREAM, 'the refused output was not added');

  const unknown = await fx.api(`/api/streams/${fx.manifestID}/outputs/no-such-output`, { method: 'DELETE' });
  assert.equal(unknown.status, 404, unknown.text);
  errorDetail(unknown);

  const noToken = await fx.api(`/api/streams/${fx.manifestID}/outputs`, { method: 'POST', body: JSON.stringify({ url: `rtmp://127.0.0.1:${port}/live/x` }) }, '');
  assert.equal(noToken.status, 401, noToken.text);
  const listNoToken = await fx.api(`/api/streams/${fx.manifestID}/outputs`, {}, '');
  assert.equal(listNoToken.status, 401, listNoToken.text);

  // Still up, still live, and no answer carried the secret.
  assert.equal((await fetchRetryingReset(`${fx.gateway.httpUrl}/healthz`)).status, 200);
  assert.equal(fx.publishing(), true, 'the publisher is still live');
  assert.deepEqual(fx.bodies.filter((b) => b.includes(SECRET)), [], 'no API answer carried the secret');
  assert.deepEqual(fx.gateway.proc.lines.filter((l) => l.includes(SECRET)), [], 'no log line carried the secret');
});
