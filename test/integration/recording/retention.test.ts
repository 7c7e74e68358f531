/**
 * Retention of a stream that is not recorded: a real gateway process (embedded transcoder,
 * one-rendition ladder, a 2-segment live window, a margin of 1 and a fast sweep), a real
 * redis-server and the clip published over RTMP in real time. While it runs, the store holds
 * about the window plus the margin per rendition, not everything published; once it ended,
 * everything of the session is deleted after `retention.endedKeepS`, and the work directory
 * is empty.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMedia } from '../../helpers/hls.ts';

const MANIFEST_ID = 'ret-cam';
const RENDITION = 'P144p30fps16x9';
const WINDOW = 2;
const MARGIN = 1;

const gateway = gatewayForSuite({
  MEDIAGATE_LADDER: RENDITION,
  MEDIAGATE_HLS_WINDOW_SEGMENTS: String(WINDOW),
  MEDIAGATE_RETENTION_MARGIN_SEGMENTS: String(MARGIN),
  MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '200',
  MEDIAGATE_RETENTION_ENDED_KEEP_S: '2',
  MEDIAGATE_LOG_LEVEL: 'info',
});

/** Segment files per rendition under the stream's folder of the filesystem store (every session). */
function objectCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  const root = join(gateway.deployment.dataDir, 'objects', MANIFEST_ID);
  if (!existsSync(root)) return counts;
  for (const session of readdirSync(root)) {
    for (const rendition of readdirSync(join(root, session))) {
      const files = readdirSync(join(root, session, rendition)).filter((f) => f.endsWith('.ts'));
      counts.set(rendition, (counts.get(rendition) ?? 0) + files.length);
    }
  }
  return counts;
}

test('a stream that is not recorded keeps about its live window plus the margin in the store, and nothing once it ended', { timeout: 120_000 }, async () => {
  const publisher = publish(await clipWith2sGop(30), gateway.rtmpUrl(MANIFEST_ID));
  const most = new Map<string, number>();
  let running = true;
  void publisher.exited.finally(() => { running = false; });
  let deletedWhileLive = false;
  while (running) {
    for (const [rendition, n] of objectCounts()) most.set(rendition, Math.max(most.get(rendition) ?? 0, n));
    if (!deletedWhileLive) {
      const res = await fetch(`${gateway.httpUrl}/stream/${MANIFEST_ID}/source/0.ts`);
      deletedWhileLive = res.status === 404 && (await fetch(`${gateway.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`)).status === 200;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.equal(await publisher.exited, 0, publisher.stderr());
  const listed = await fetchMedia(`${gateway.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`);
  const published = (listed.mediaSequenceBase ?? 0) + listed.segments.length;
  assert.ok(published >= 13, `${published} source segments published`);
  assert.ok(deletedWhileLive, 'the first segment was deleted while the stream was live');

  // The transcoded rendition lags its source by the segment in transcode; the source by what is
  // stored but not yet transcoded (the horizon is the slowest rendition's playlist).
  const bound = { source: WINDOW + MARGIN + 3, [RENDITION]: WINDOW + MARGIN + 1 };
  console.log(`# most objects at once per rendition: ${JSON.stringify(Object.fromEntries(most))} (window ${WINDOW} + margin ${MARGIN}); published ${published}`);
  for (const [rendition, n] of most) {
    assert.ok(n <= bound[rendition as keyof typeof bound]!, `${rendition}: at most ${n} objects, bound ${bound[rendition as keyof typeof bound]}`);
  }
  assert.ok(most.get('source')! < published && most.get(RENDITION)! < published, 'the store never held the whole stream');

  // Ended and not recorded: after retention.endedKeepS, nothing of the session is left.
  const deadline = Date.now() + 30_000;
  while ([...objectCounts().values()].some((n) => n > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual([...objectCounts().values()].filter((n) => n > 0), [], 'every object of the ended session is deleted');
  for (const dir of ['segmenter', 'transcode']) {
    assert.deepEqual(readdirSync(join(gateway.deployment.dataDir, 'work', dir)), [], `work/${dir} is empty`);
  }
});
