/**
 * Restream outputs on a real gateway process (cmd/gateway.ts) with the clip published over
 * RTMP: an output added through the control API reaches a real ffmpeg RTMP receiver
 * (`ffmpeg -listen 1`) as a copy (same codecs), goes `live` with bytes counted in the API and
 * /metrics; an output to a port that refuses connections is `retrying` with ffmpeg's reason
 * while the other output and the HLS stream go on; bad input is refused with the documented
 * codes; a DELETE stops its ffmpeg within a second; the target's stream key appears in no
 * reply, event-free log line or metric.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, stopChild } from '../../helpers/redis-server.ts';
import { publish, startGateway, waitForListedSegments, waitUntil } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';
import { freePort } from '../../helpers/ports.ts';
import { ffmpegsUnder, probeStream, processGone, refusingPort } from '../../helpers/receivers.ts';

interface OutputReply { id: string; url: string; rendition: string; state: string; reason?: string; bytesSent: number; uptimeSeconds: number; createdAt: string }

const SECRET_KEY = 'tgtSecretKey42';

test('an output added at runtime restreams a copy to a real RTMP receiver; a refused target retries without affecting it or the stream; bad input is refused; DELETE stops the ffmpeg within 1 s', { timeout: 85_000 }, async () => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'mg-out-'));
  const gw = await startGateway(redis.url, { MEDIAGATE_OUTPUTS_MAX_PER_STREAM: '2', MEDIAGATE_OUTPUTS_BACKOFF_INITIAL_MS: '200', MEDIAGATE_OUTPUTS_BACKOFF_MAX_MS: '1000' });
  const receiverPort = await freePort();
  const received = join(dir, 'received.flv');
  const receiver = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-listen', '1', '-i', `rtmp://127.0.0.1:${receiverPort}/live/${SECRET_KEY}`, '-c', 'copy', '-y', received], { stdio: 'ignore' });
  const pub = publish(CLIP, gw.rtmpUrl('cam'));
  const api = `${gw.httpUrl}/api/streams/cam/outputs`;
  const post = (body: unknown): Promise<Response> => fetch(api, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const list = async (): Promise<OutputReply[]> => ((await (await fetch(api)).json()) as { outputs: OutputReply[] }).outputs;
  try {
    // Not live yet: 404 STREAM_NOT_LIVE.
    const early = await fetch(`${gw.httpUrl}/api/streams/nobody/outputs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'rtmp://127.0.0.1/live/x' }) });
    assert.equal(early.status, 404);
    assert.equal(((await early.json()) as { detail: { code: string } }).detail.code, 'STREAM_NOT_LIVE');

    await waitForListedSegments(`${gw.httpUrl}/stream/cam/source.m3u8`, 1, gw.proc);

    // Bad input.
    for (const [body, status, code, named] of [
      [{ url: 'http://example.com/live/x' }, 400, 'INVALID_OUTPUT_URL', /"http:" is not supported/],
      [{ url: 'rtmp//no-scheme' }, 400, 'INVALID_OUTPUT_URL', /malformed/],
      [{ url: 'rtmp://127.0.0.1/live/x', rendition: 'P9000p' }, 400, 'UNKNOWN_RENDITION', /no rendition "P9000p"/],
    ] as const) {
      const res = await post(body);
      const reply = (await res.json()) as { detail: { code: string; msg: string } };
      assert.equal(res.status, status, JSON.stringify(reply));
      assert.equal(reply.detail.code, code);
      assert.match(reply.detail.msg, named);
    }

    const good = await post({ url: `rtmp://127.0.0.1:${receiverPort}/live/${SECRET_KEY}` });
    assert.equal(good.status, 201);
    const added = (await good.json()) as OutputReply;
    assert.equal(added.url, `rtmp://127.0.0.1:${receiverPort}/live/[redacted]`);
    assert.equal(added.rendition, 'source');
    const refused = await refusingPort();
    const bad = (await (await post({ url: `rtmp://127.0.0.1:${refused}/live/${SECRET_KEY}`, rendition: 'source' })).json()) as OutputReply;
    const third = await post({ url: 'srt://127.0.0.1:9?streamid=abc' });
    assert.equal(third.status, 409, 'outputs.maxPerStream is 2');
    assert.equal(((await third.json()) as { detail: { code: string } }).detail.code, 'TOO_MANY_OUTPUTS');

    let outputs: OutputReply[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      outputs = await list();
      const g = outputs.find((o) => o.id === added.id);
      const b = outputs.find((o) => o.id === bad.id);
      if (g?.state === 'live' && g.bytesSent > 100_000 && b?.state === 'retrying') break;
      if (Date.now() > deadline) assert.fail(`outputs did not settle: ${JSON.stringify(outputs)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const badNow = outputs.find((o) => o.id === bad.id)!;
    assert.match(badNow.reason ?? '', /Connection refused/);
    assert.equal(badNow.bytesSent, 0);
    assert.ok(outputs.find((o) => o.id === added.id)!.uptimeSeconds > 0);
    assert.ok(!JSON.stringify(outputs).includes(SECRET_KEY), 'no key in the API');

    // The HLS stream goes on while one output retries.
    await waitForListedSegments(`${gw.httpUrl}/stream/cam/source.m3u8`, 4, gw.proc);

    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`mediagate_output_sent_bytes\\{output_id="${added.id}",manifest_id="cam"\\} [1-9]`));
    assert.match(metrics, new RegExp(`mediagate_output_state\\{output_id="${bad.id}",manifest_id="cam",state="retrying"\\} 1`));
    assert.ok(!metrics.includes(SECRET_KEY), 'no key in /metrics');

    // DELETE: the receiver's output ffmpeg is gone within 1 s.
    const pids = ffmpegsUnder(gw.proc.child.pid!).filter((p) => p.cmdline.includes(`:${receiverPort}/`));
    assert.equal(pids.length, 1, 'one ffmpeg for the output');
    const t0 = Date.now();
    const del = await fetch(`${api}/${added.id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    await waitUntil(() => processGone(pids[0]!.pid), 1000, () => `output ffmpeg ${pids[0]!.pid} still running`);
    console.log(`output ffmpeg gone ${Date.now() - t0} ms after the DELETE was sent`);
    assert.equal((await fetch(`${api}/${added.id}`, { method: 'DELETE' })).status, 404);
    assert.deepEqual((await list()).map((o) => o.id), [bad.id]);

    // What the receiver got is a copy: H.264 + AAC at the clip's frame rate.
    await stopChild(receiver, 5000);
    assert.ok(statSync(received).size > 100_000);
    const probe = await probeStream(received);
    assert.equal(probe.video?.codec, 'h264');
    assert.equal(probe.audio?.codec, 'aac');
    assert.equal(probe.video?.width, 640);
    assert.equal(Math.round(probe.video!.avgFps), 24);

    const logs = gw.proc.lines.join('\n');
    assert.ok(!logs.includes(SECRET_KEY), 'no key in the gateway log');
  } catch (err) {
    console.log(gw.proc.lines.slice(-40).join('\n'));
    throw err;
  } finally {
    pub.child.kill('SIGKILL');
    await stopChild(receiver, 2000).catch(() => undefined);
    await gw.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
