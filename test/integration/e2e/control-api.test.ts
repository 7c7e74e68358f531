/**
 * The control API on a real gateway process: list, inspect and stop a live RTMP stream;
 * admin-token rules; request validation against openapi/control.yaml.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { waitForEndedPlaylists } from '../../helpers/hls.ts';

const TOKEN = 'admin-token-for-tests-91b2';
const gateway = gatewayForSuite({ MEDIAGATE_LADDER: 'P240p30fps16x9', MEDIAGATE_HTTP_ADMIN_TOKEN: TOKEN });

const api = (path: string, init: RequestInit = {}, token = TOKEN): Promise<Response> =>
  fetch(`${gateway.httpUrl}${path}`, { ...init, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });

test('the control API lists a live RTMP stream with its renditions, counts, bitrate and age, then stops it', { timeout: 120_000 }, async () => {
  const publisher = publish(await clipWith2sGop(40), gateway.rtmpUrl('ctl'));
  let listed: { streams: Record<string, unknown>[] } | undefined;
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    listed = (await (await api('/api/streams')).json()) as { streams: Record<string, unknown>[] };
    const s = listed.streams.find((x) => x['manifestID'] === 'ctl') as { renditions: { name: string; segments: number }[] } | undefined;
    if (s && s.renditions.length === 2 && s.renditions.every((r) => r.segments >= 2)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const stream = listed!.streams.find((x) => x['manifestID'] === 'ctl') as {
    state: string; protocol: string; segments: number; ingestBitrateBps: number; lastSegmentAgeMs: number; playbackUrl: string;
    renditions: { name: string; width: number; height: number; segments: number; bitrateBps: number }[];
  };
  assert.ok(stream, 'the live stream is listed');
  assert.equal(stream.state, 'live');
  assert.equal(stream.protocol, 'rtmp');
  assert.deepEqual(stream.renditions.map((r) => [r.name, r.width, r.height]), [['source', 640, 360], ['P240p30fps16x9', 426, 240]]);
  assert.ok(stream.segments >= 2);
  assert.ok(stream.ingestBitrateBps > 300_000 && stream.ingestBitrateBps < 3_000_000, `ingest bitrate ${stream.ingestBitrateBps}`);
  assert.ok(stream.lastSegmentAgeMs >= 0 && stream.lastSegmentAgeMs < 10_000, `last segment age ${stream.lastSegmentAgeMs}`);
  assert.equal(stream.playbackUrl, `${gateway.httpUrl}/stream/ctl.m3u8`);

  const one = await api('/api/streams/ctl');
  assert.equal(one.status, 200);
  assert.equal(((await one.json()) as { manifestID: string }).manifestID, 'ctl');

  const stopAt = Date.now();
  const stop = await api('/api/streams/ctl', { method: 'DELETE' });
  assert.equal(stop.status, 202);
  assert.deepEqual(await stop.json(), { manifestID: 'ctl', stopping: true });
  const killer = setTimeout(() => publisher.child.kill('SIGKILL'), 20_000);
  await publisher.exited;
  clearTimeout(killer);
  assert.ok(Date.now() - stopAt < 10_000, 'the publisher was disconnected (its ffmpeg exited) well before the clip ended');

  const lists = await waitForEndedPlaylists(gateway.httpUrl, 'ctl', 2, 30_000);
  assert.ok(lists.every((m) => m.endlist), 'the playlists end after the stop');
  const after = (await (await api('/api/streams/ctl')).json()) as { state: string };
  assert.equal(after.state, 'ended');
  assert.equal((await api('/api/streams/ctl', { method: 'DELETE' })).status, 409, 'stopping an ended stream is a conflict');
});

test('the control API requires the configured admin token', async () => {
  const missing = await api('/api/streams', {}, '');
  assert.equal(missing.status, 401);
  assert.match(((await missing.json()) as { detail: { msg: string } }).detail.msg, /missing admin token/);
  const wrong = await api('/api/streams', {}, 'not-the-token');
  assert.equal(wrong.status, 401);
  assert.equal((await api('/api/profiles')).status, 200);
  assert.equal((await api('/api/workers', {}, '')).status, 401, 'the worker API enforces the token too');
  assert.equal((await api('/api/accounts', {}, '')).status, 401, 'and the payments API');
  assert.equal((await api('/api/workers')).status, 200);
});

test('control API requests are validated against the OpenAPI spec with messages naming the field', async () => {
  const badState = await api('/api/streams?state=bogus');
  assert.equal(badState.status, 400);
  assert.match(((await badState.json()) as { detail: { msg: string } }).detail.msg, /state/);
  const badLimit = await api('/api/streams?limit=0');
  assert.equal(badLimit.status, 400);
  assert.match(((await badLimit.json()) as { detail: { msg: string } }).detail.msg, /limit/);
  const badName = await api('/api/streams/a.b');
  assert.equal(badName.status, 400);
  assert.equal((await api('/api/streams/nosuch')).status, 404);
  assert.equal((await api('/api/nothing-here')).status, 404);
});

test('the active profiles are listed in Livepeer JSON profile form', async () => {
  const body = (await (await api('/api/profiles')).json()) as { defaultLadder: { name: string; width: number; bitrate: number }[]; presets: unknown[] };
  assert.deepEqual(body.defaultLadder.map((p) => [p.name, p.width, p.bitrate]), [['P240p30fps16x9', 426, 600_000]]);
  assert.equal(body.presets.length, 13);
  const spec = await fetch(`${gateway.httpUrl}/openapi/control.yaml`);
  assert.equal(spec.status, 200);
  assert.match(await spec.text(), /operationId: stopStream/);
});
