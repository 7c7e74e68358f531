/**
 * Scale-out: a gateway with no embedded transcoder and two separate transcoder processes
 * (cmd/transcoder.ts) sharing one Redis queue and one object store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { freePort } from '../../helpers/ports.ts';
import { seqOf, probeSegment, waitForEndedPlaylists } from '../../helpers/hls.ts';

// Two renditions smaller than the clip (640x360): a rendition of its own size is left out (src/domain/ladder-fit.ts).
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
const transcoders: MediagateProcess[] = [];
const metricsPorts: number[] = [];

before(async () => {
  redis = await startRedis();
  // Per-segment jobs (no live sessions): this test is about two transcoders sharing the job queue.
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_LADDER: LADDER.join(','), MEDIAGATE_TRANSCODE_EMBEDDED: 'false', MEDIAGATE_HLS_WINDOW_SEGMENTS: '50', MEDIAGATE_TRANSCODE_LIVE_SESSIONS: 'false',
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  for (let i = 0; i < 2; i++) {
    metricsPorts.push(await freePort());
    transcoders.push(spawnMediagate('transcoder', { ...deployment.env, MEDIAGATE_TRANSCODE_METRICS_PORT: String(metricsPorts[i]) }));
  }
  await Promise.all(transcoders.map(async (t) => {
    const deadline = Date.now() + 30_000;
    while (!t.lines.some((l) => l.includes('transcoder ready'))) {
      if (Date.now() > deadline) throw new Error(`transcoder did not start:\n${t.lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }));
});

after(async () => {
  await Promise.all([gateway?.stop(), ...transcoders.map((t) => t.stop())]);
  await redis?.stop();
  deployment?.cleanup();
});

test('two transcoder processes share the queue: both take jobs and the output is complete', { timeout: 150_000 }, async () => {
  const publisher = publish(await clipWith2sGop(16), `rtmp://127.0.0.1:${deployment.rtmpPort}/live/twin`);
  assert.equal(await publisher.exited, 0, publisher.stderr());
  const lists = await waitForEndedPlaylists(deployment.httpUrl, 'twin', LADDER.length + 1, 90_000);
  const sourceSeqs = lists[0]!.segments.map((s) => seqOf(s.uri));
  assert.ok(sourceSeqs.length >= 7, `about 8 segments, got ${sourceSeqs.length}`);
  assert.deepEqual(sourceSeqs, sourceSeqs.map((_, i) => i));
  for (const m of lists.slice(1)) assert.deepEqual(m.segments.map((s) => seqOf(s.uri)), sourceSeqs);

  const jobsPer = transcoders.map((t) => t.lines.filter((l) => l.includes('"msg":"segment transcoded"')).length);
  assert.ok(jobsPer.every((n) => n > 0), `both transcoders took jobs: ${jobsPer.join(' + ')}`);
  assert.equal(jobsPer[0]! + jobsPer[1]!, sourceSeqs.length, 'each segment transcoded exactly once');
  const p = await probeSegment(`${deployment.httpUrl}/stream/twin/P240p30fps16x9/${sourceSeqs[sourceSeqs.length - 1]}.ts`);
  assert.deepEqual([p.width, p.height], [426, 240]);
  assert.equal(gateway.lines.filter((l) => l.includes('"msg":"segment transcoded"')).length, 0, 'the gateway itself transcoded nothing');
  // Each standalone transcoder serves its own /metrics; together they count every segment.
  const counted = await Promise.all(metricsPorts.map(async (port) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('mediagate_segments_transcoded_total '));
    return Number(line?.split(' ')[1]);
  }));
  assert.deepEqual(counted, jobsPer, 'each transcoder metrics count its own jobs');
  assert.equal((await fetch(`http://127.0.0.1:${metricsPorts[0]}/healthz`)).status, 200);
});
