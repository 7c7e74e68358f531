/**
 * Issue 16, restream outputs, against a real receiver: while the real clip is published over
 * RTMP, an output added at runtime (`POST /api/streams/{id}/outputs`) copies the stream to nginx
 * with Debian's RTMP module, which records what it receives (`record all`); ffprobe of that
 * recording shows the source's codecs, size and frame rate. The target's stream key never shows
 * in API answers, events, /metrics, the gateway's log or any process's command line (`ps`).
 * DELETE stops the output's ffmpeg within a second.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { startNginxRtmp, type NginxRtmp } from '../../helpers/nginx-rtmp.ts';
import { commandLinesContaining, ffmpegsUnder, newLongLivedFfmpegs, probeStream, processGone, type TreeProcess } from '../../helpers/receivers.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchRetryingReset, PUBLISH_SECONDS, startOutputsFixture, type ListedOutput, type OutputsFixture } from './outputs-fixture.ts';

/** The target's stream key: a secret of the target (a YouTube/Twitch key in real use). */
const TARGET_KEY = 'nginx-SECRET-targetkey-93d1';
let nginx: NginxRtmp;
let fx: OutputsFixture;
let output: ListedOutput;
let outputProcs: TreeProcess[] = [];

before(async () => {
  nginx = await startNginxRtmp({ workers: 1, hls: false, record: true });
  fx = await startOutputsFixture('restream-nginx');
});

after(async () => {
  await fx?.close();
  await nginx?.stop();
});

test('an output added at runtime reaches nginx-rtmp, which receives the source\'s codecs, size and frame rate', { timeout: 60_000 }, async () => {
  const before = ffmpegsUnder(fx.gateway.proc.child.pid!);
  const created = await fx.addOutput({ url: nginx.rtmpUrl(TARGET_KEY), rendition: 'source' });
  assert.equal(created.status, 201, created.text);
  output = created.json as ListedOutput;
  assert.equal(typeof output.id, 'string');
  assert.equal(output.rendition, 'source');
  assert.ok(['connecting', 'live'].includes(output.state), `state at creation: ${output.state}`);
  assert.equal(typeof output.bytesSent, 'number');
  assert.equal(typeof output.uptimeSeconds, 'number');
  assert.ok(!Number.isNaN(Date.parse(output.createdAt)), `createdAt ${output.createdAt}`);
  // Redacted: host and application kept, the key replaced.
  assert.ok(!output.url.includes(TARGET_KEY), `url shown redacted: ${output.url}`);
  assert.match(output.url, new RegExp(`^rtmp://127\\.0\\.0\\.1:${nginx.rtmpPort}/live/.*redacted`, 'i'));

  const live = await fx.waitForOutput(output.id, (o) => o.state === 'live' && o.bytesSent > 0, 30_000, 'live with bytes sent');
  assert.equal(live.reason, undefined, 'a live output has no reason');
  outputProcs = await newLongLivedFfmpegs(fx.gateway.proc.child.pid!, before);
  assert.equal(outputProcs.length, 1, `one ffmpeg for the output: ${JSON.stringify(outputProcs)}`);

  // nginx records what it receives: wait for ~6 s of it, then probe it against the published clip.
  const recorded = nginx.recordedFile(TARGET_KEY);
  const deadline = Date.now() + 30_000;
  let probe = existsSync(recorded) && statSync(recorded).size > 0 ? await probeStream(recorded).catch(() => undefined) : undefined;
  while (!probe || probe.videoPackets < 6 * 24) {
    assert.ok(Date.now() < deadline, `nginx recorded ${probe?.videoPackets ?? 0} video packets in 30 s; nginx error log: ${nginx.errorLog()}`);
    await new Promise((r) => setTimeout(r, 1000));
    probe = existsSync(recorded) && statSync(recorded).size > 0 ? await probeStream(recorded).catch(() => undefined) : undefined;
  }
  const source = await probeStream(await clipWith2sGop(PUBLISH_SECONDS));
  assert.deepEqual(
    { video: probe.video?.codec, size: `${probe.video?.width}x${probe.video?.height}`, fps: probe.video?.fps, audio: probe.audio?.codec, sampleRate: probe.audio?.sampleRate },
    { video: source.video?.codec, size: `${source.video?.width}x${source.video?.height}`, fps: source.video?.fps, audio: source.audio?.codec, sampleRate: source.audio?.sampleRate },
    'nginx received what was published (stream copy, no re-encode)',
  );
  assert.equal(probe.video?.fps, 24);
  // The average frame rate over what arrived is the source's too (no dropped or doubled frames), within 5 %.
  assert.ok(Math.abs(probe.video!.avgFps - 24) / 24 < 0.05, `average frame rate ${probe.video!.avgFps}`);

  const after = (await fx.listOutputs()).find((o) => o.id === output.id)!;
  assert.ok(after.bytesSent >= live.bytesSent, 'bytesSent never decreases');
  assert.ok(after.uptimeSeconds >= 1, `uptime ${after.uptimeSeconds} s`);
  assert.equal(fx.publishing(), true, 'the publisher is still live');
});

test('the target\'s stream key shows in no API answer, event, metric or log line', { timeout: 30_000 }, async () => {
  assert.ok(output, 'the first test created the output');
  const metrics = await (await fetchRetryingReset(`${fx.gateway.httpUrl}/metrics`)).text();
  assert.ok(!metrics.includes(TARGET_KEY), 'no metric carries the key');
  assert.ok(metrics.includes(output.id), 'the output\'s metrics are labelled with its id');
  const started = fx.events.events.filter((e) => e.type === 'output.started');
  assert.ok(started.length >= 1, `output.started delivered: ${JSON.stringify(fx.events.events.map((e) => e.type))}`);
  assert.ok(JSON.stringify(started).includes(output.id), 'output.started names the output id');
  assert.deepEqual(fx.events.events.filter((e) => JSON.stringify(e).includes(TARGET_KEY)), [], 'no event carries the key');
  assert.deepEqual(fx.bodies.filter((b) => b.includes(TARGET_KEY)), [], 'no API answer carries the key');
  assert.deepEqual(fx.gateway.proc.lines.filter((l) => l.includes(TARGET_KEY)), [], 'no log line carries the key');
});

test('the target\'s stream key is in no process\'s command line (`ps`), the output\'s ffmpeg included', async () => {
  assert.ok(output && outputProcs.length === 1, 'the first test found the output\'s ffmpeg');
  assert.equal(processGone(outputProcs[0]!.pid), false, 'the output\'s ffmpeg is running');
  assert.deepEqual(commandLinesContaining(TARGET_KEY), [], 'no process shows the key in `ps`');
});

test('DELETE removes the output and its ffmpeg is gone within a second; the stream carries on', { timeout: 30_000 }, async () => {
  assert.ok(output && outputProcs.length === 1, 'the first test found the output\'s ffmpeg');
  const [proc] = outputProcs;
  assert.equal(processGone(proc!.pid), false, 'the output\'s ffmpeg runs before the DELETE');
  const seqBefore = await fx.lastSeq();
  const deletedAt = Date.now();
  const del = await fx.api(`/api/streams/${fx.manifestID}/outputs/${output.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204, del.text);
  while (!processGone(proc!.pid) && Date.now() - deletedAt < 1500) await new Promise((r) => setTimeout(r, 20));
  const goneMs = Date.now() - deletedAt;
  assert.equal(processGone(proc!.pid), true, 'the output\'s ffmpeg exited');
  assert.ok(goneMs <= 1000, `the output's ffmpeg was gone ${goneMs} ms after the DELETE was sent (≤ 1000)`);
  process.stdout.write(`# output ffmpeg gone ${goneMs} ms after DELETE\n`);

  const listed = (await fx.listOutputs()).filter((o) => o.id === output.id && o.state !== 'stopped');
  assert.deepEqual(listed, [], 'the deleted output is no longer listed (or is listed as stopped)');
  const again = await fx.api(`/api/streams/${fx.manifestID}/outputs/${output.id}`, { method: 'DELETE' });
  assert.equal(again.status, 404, `a second DELETE of the same output: ${again.text}`);

  // The stream goes on: new source segments are listed after the output is gone.
  const deadline = Date.now() + 15_000;
  while ((await fx.lastSeq()) <= seqBefore) {
    assert.ok(Date.now() < deadline, 'a new source segment was listed after the DELETE');
    await new Promise((r) => setTimeout(r, 500));
  }
  const ended = fx.events.events.filter((e) => e.type === 'output.ended' && JSON.stringify(e).includes(output.id));
  const endDeadline = Date.now() + 5000;
  while (ended.length === 0 && Date.now() < endDeadline) {
    await new Promise((r) => setTimeout(r, 200));
    ended.push(...fx.events.events.filter((e) => e.type === 'output.ended' && JSON.stringify(e).includes(output.id)));
  }
  assert.ok(ended.length >= 1, 'output.ended delivered for the deleted output');
  assert.deepEqual(ffmpegsUnder(fx.gateway.proc.child.pid!).filter((p) => p.pid === proc!.pid), []);
});
