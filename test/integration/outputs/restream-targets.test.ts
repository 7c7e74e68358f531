/**
 * Issue 16, restream outputs to several real targets at once while the clip is published: a
 * second mediagate gateway (RTMP), an SRT listener (ffmpeg in listener mode) and a port that
 * refuses connections. The refused output shows `retrying` with its reason and keeps retrying
 * (it goes live once a server opens on that port) while the other outputs stay live and the
 * HLS stream keeps listing new segments. DELETE of every output ends every output ffmpeg within
 * a second. No target's secret shows in the API, events or logs (command lines: restream-nginx.test.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type RunningGateway } from '../../helpers/gateway-process.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { startNginxRtmp, type NginxRtmp } from '../../helpers/nginx-rtmp.ts';
import { ffmpegsUnder, newLongLivedFfmpegs, probeStream, processGone, refusingPort, startSrtListener, type SrtListener, type TreeProcess } from '../../helpers/receivers.ts';
import { fetchRetryingReset, startOutputsFixture, type ListedOutput, type OutputsFixture } from './outputs-fixture.ts';

const RELAY_KEY = 'relay-SECRET-gatewaykey-5b7e';
const SRT_STREAMID = 'srt-SECRET-streamid-0c2f';
/** The listener refuses a caller without it: the output going live proves it reached ffmpeg (as a preset option, not an argument). */
const SRT_PASSPHRASE = 'srt-SECRET-pass-91d3';
const REFUSED_KEY = 'refused-SECRET-key-a4d8';
const SECRETS = [RELAY_KEY, SRT_STREAMID, SRT_PASSPHRASE, REFUSED_KEY];
/** How long the refused target stays refused while the others are watched, ms. */
const REFUSED_WATCH_MS = 6000;

let fx: OutputsFixture;
let target: RunningGateway;
let targetRedis: TestRedis | undefined;
let srt: SrtListener;
let refused: number;
let late: NginxRtmp | undefined;
let dir: string;
let beforeOutputs: TreeProcess[] = [];
const ids: Record<'relay' | 'srt' | 'refused', string> = { relay: '', srt: '', refused: '' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mg-outputs-'));
  // Started together: the restreaming gateway with its publisher, and the second mediagate
  // (its own Redis; source only, nothing to transcode). Reconnect waits of 0.5, 1, 2, 2… s (less
  // jitter) show the refused target's recovery within the file's time.
  [fx, target] = await Promise.all([
    startOutputsFixture('restream-targets', { MEDIAGATE_OUTPUTS_BACKOFF_INITIAL_MS: '500', MEDIAGATE_OUTPUTS_BACKOFF_MAX_MS: '2000' }),
    startRedis().then(async (redis) => {
      targetRedis = redis;
      return startGateway(redis.url, { MEDIAGATE_LADDER: '[]' });
    }),
  ]);
  srt = await startSrtListener(join(dir, 'srt-received.ts'), { passphrase: SRT_PASSPHRASE });
  refused = await refusingPort();
});

after(async () => {
  await fx?.close();
  await target?.stop();
  await targetRedis?.stop();
  await srt?.stop();
  await late?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a second gateway and an SRT listener receive the stream while a refused target keeps retrying with its reason, and HLS carries on', { timeout: 75_000 }, async () => {
  beforeOutputs = ffmpegsUnder(fx.gateway.proc.child.pid!);
  const add = async (url: string): Promise<ListedOutput> => {
    const r = await fx.addOutput({ url });
    assert.equal(r.status, 201, r.text);
    return r.json as ListedOutput;
  };
  ids.relay = (await add(target.rtmpUrl(RELAY_KEY))).id;
  ids.srt = (await add(`${srt.url}?streamid=${SRT_STREAMID}&passphrase=${SRT_PASSPHRASE}`)).id;
  const refusedOutput = await add(`rtmp://127.0.0.1:${refused}/live/${REFUSED_KEY}`);
  ids.refused = refusedOutput.id;
  assert.equal(refusedOutput.rendition, 'source', 'rendition defaults to source');
  assert.match(refusedOutput.url, new RegExp(`^rtmp://127\\.0\\.0\\.1:${refused}/live/`));

  await fx.waitForOutput(ids.relay, (o) => o.state === 'live' && o.bytesSent > 0, 30_000, 'relay to the second gateway live');
  await fx.waitForOutput(ids.srt, (o) => o.state === 'live' && o.bytesSent > 0, 30_000, 'SRT output live');
  const retrying = await fx.waitForOutput(ids.refused, (o) => o.state === 'retrying', 20_000, 'refused output retrying');
  assert.equal(typeof retrying.reason, 'string');
  assert.ok(retrying.reason!.length > 0, 'retrying names its reason');
  process.stdout.write(`# refused target's reason: ${retrying.reason}\n`);
  // The outputs' ffmpegs run now: none shows a target's secret on its command line (`ps`).
  const running = ffmpegsUnder(fx.gateway.proc.child.pid!);
  assert.ok(running.length >= 2, `the outputs' ffmpegs run: ${running.length}`);
  for (const p of running) for (const secret of SECRETS) assert.ok(!p.cmdline.includes(secret), `pid ${p.pid}'s command line shows no target secret`);

  // Watch for a while: the refused output never goes live, the others stay live and keep sending,
  // the source and the rendition keep listing new segments.
  const first = await fx.listOutputs();
  const seqs0 = { source: await fx.lastSeq('source'), rendition: await fx.lastSeq('P144p30fps16x9') };
  const refusedStates = new Set<string>();
  const watchUntil = Date.now() + REFUSED_WATCH_MS;
  while (Date.now() < watchUntil) {
    const now = await fx.listOutputs();
    const r = now.find((o) => o.id === ids.refused)!;
    refusedStates.add(r.state);
    assert.notEqual(r.state, 'live', 'nothing listens on the refused port');
    if (r.state === 'retrying') assert.ok(r.reason && r.reason.length > 0, 'every retrying sample has a reason');
    for (const id of [ids.relay, ids.srt]) assert.equal(now.find((o) => o.id === id)?.state, 'live', `output ${id} stays live while another target refuses`);
    await new Promise((res) => setTimeout(res, 500));
  }
  const last = await fx.listOutputs();
  for (const id of [ids.relay, ids.srt]) {
    const a = first.find((o) => o.id === id)!.bytesSent;
    const b = last.find((o) => o.id === id)!.bytesSent;
    assert.ok(b > a, `output ${id} kept sending (${a} → ${b} bytes)`);
  }
  const seqs1 = { source: await fx.lastSeq('source'), rendition: await fx.lastSeq('P144p30fps16x9') };
  assert.ok(seqs1.source >= seqs0.source + 2, `source kept listing segments: ${seqs0.source} → ${seqs1.source}`);
  assert.ok(seqs1.rendition >= seqs0.rendition + 2, `the rendition kept listing segments: ${seqs0.rendition} → ${seqs1.rendition}`);
  assert.ok([...refusedStates].every((s) => s === 'retrying' || s === 'connecting'), `refused output states: ${[...refusedStates].join(', ')}`);

  // The second gateway lists the relayed stream as live, with segments.
  const streams = (await (await fetchRetryingReset(`${target.httpUrl}/api/streams`)).json()) as { streams: { manifestID: string; state: string; segments: number }[] };
  const relayed = streams.streams.find((s) => s.manifestID === RELAY_KEY);
  assert.ok(relayed, `the second gateway lists the relayed stream: ${JSON.stringify(streams)}`);
  assert.equal(relayed.state, 'live');
  assert.ok(relayed.segments >= 1, `the relayed stream has segments: ${relayed.segments}`);

  // The SRT listener got H.264 at the source's frame rate.
  assert.ok(srt.bytesReceived() > 100_000, `SRT listener received ${srt.bytesReceived()} bytes`);
  const probe = await probeStream(srt.file);
  assert.equal(probe.video?.codec, 'h264');
  assert.equal(probe.video?.fps, 24);
  assert.equal(probe.audio?.codec, 'aac');

  // The refused target comes up: the output, still retrying on its own, goes live and nginx records it.
  late = await startNginxRtmp({ workers: 1, hls: false, record: true, rtmpPort: refused });
  await fx.waitForOutput(ids.refused, (o) => o.state === 'live' && o.bytesSent > 0, 20_000, 'refused output live once the target listens');
  const recorded = late.recordedFile(REFUSED_KEY);
  const deadline = Date.now() + 10_000;
  while (!(existsSync(recorded) && statSync(recorded).size > 50_000)) {
    assert.ok(Date.now() < deadline, `nginx recorded the recovered output: ${late.errorLog()}`);
    await new Promise((res) => setTimeout(res, 250));
  }
  const failed = fx.events.events.filter((e) => e.type === 'output.failed' && JSON.stringify(e).includes(ids.refused));
  assert.ok(failed.length >= 1, `output.failed delivered for the refused target: ${JSON.stringify(fx.events.events.map((e) => e.type))}`);
});

test('DELETE of every output ends every output ffmpeg within a second; no target secret was shown in answers, events or logs', { timeout: 30_000 }, async () => {
  assert.ok(ids.relay && ids.srt && ids.refused, 'the first test created the outputs');
  const procs = await newLongLivedFfmpegs(fx.gateway.proc.child.pid!, beforeOutputs);
  assert.equal(procs.length, 3, `one ffmpeg per output: ${JSON.stringify(procs.map((p) => p.pid))}`);
  const t0 = Date.now();
  const answers = await Promise.all(Object.values(ids).map((id) => fx.api(`/api/streams/${fx.manifestID}/outputs/${id}`, { method: 'DELETE' })));
  assert.deepEqual(answers.map((a) => a.status), [204, 204, 204]);
  while (procs.some((p) => !processGone(p.pid)) && Date.now() - t0 < 1500) await new Promise((r) => setTimeout(r, 20));
  const goneMs = Date.now() - t0;
  assert.deepEqual(procs.filter((p) => !processGone(p.pid)).map((p) => p.pid), [], 'every output ffmpeg exited');
  assert.ok(goneMs <= 1000, `every output ffmpeg gone ${goneMs} ms after the DELETEs were sent (≤ 1000)`);
  assert.deepEqual((await fx.listOutputs()).filter((o) => o.state !== 'stopped'), [], 'no output left running');
  // The SRT listener sees its caller leave.
  const srtExit = await Promise.race([srt.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
  assert.notEqual(srtExit, 'still running', 'the SRT listener saw the output disconnect');

  for (const secret of SECRETS) {
    assert.deepEqual(fx.bodies.filter((b) => b.includes(secret)), [], `${secret} in no API answer`);
    assert.deepEqual(fx.events.events.filter((e) => JSON.stringify(e).includes(secret)), [], `${secret} in no event`);
    assert.deepEqual(fx.gateway.proc.lines.filter((l) => l.includes(secret)), [], `${secret} in no log line of the restreaming gateway`);
  }
  assert.equal((await fetchRetryingReset(`${fx.gateway.httpUrl}/healthz`)).status, 200);
});
