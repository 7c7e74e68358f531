/**
 * The segmenter pulls an RTMP publish from the address RTMP is bound to (rtmp.host). The
 * gateway runs as a real process (cmd/gateway.ts, embedded transcoder) with RTMP bound to
 * 127.0.0.2, a loopback address that is not 127.0.0.1: a pull from 127.0.0.1 (the old
 * hard-coded URL) reaches nothing there, so no segment was ever listed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { fetchMedia, fetchText, seqOf } from '../../helpers/hls.ts';

const RTMP_HOST = '127.0.0.2';
const STREAM_KEY = 'bind-host-SECRET-key-31c9';
const MANIFEST_ID = 'bound';

const gateway = gatewayForSuite({
  MEDIAGATE_RTMP_HOST: RTMP_HOST,
  MEDIAGATE_LADDER: 'P144p30fps16x9',
  MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: STREAM_KEY, manifestID: MANIFEST_ID }]),
});

test('with RTMP bound to a specific address other than 127.0.0.1, a publish is segmented and its segments are listed', { timeout: 120_000 }, async () => {
  const input = await clipWith2sGop(8);
  const publisher = publish(input, `rtmp://${RTMP_HOST}:${gateway.deployment.rtmpPort}/live/${STREAM_KEY}`);
  const sourceUrl = `${gateway.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`;
  let listed: number[] = [];
  let publisherCode: number | null | undefined;
  void publisher.exited.then((code) => { publisherCode = code; });
  const deadline = Date.now() + 60_000;
  // Until the playlist ends (the publisher left) or the deadline: every source segment listed.
  while (Date.now() < deadline) {
    if ((await fetchText(sourceUrl)).status === 200) {
      const media = await fetchMedia(sourceUrl);
      listed = media.segments.map((s) => seqOf(s.uri));
      if (media.endlist) break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await publisher.exited;
  assert.equal(publisherCode, 0, `the publisher was accepted and ran to the end: ${publisher.stderr()}`);
  assert.ok(listed.length >= 3, `source segments listed: [${listed.join(', ')}]`);
  assert.deepEqual(listed, listed.map((_, i) => i), 'listed in order from seq 0');
  const pulled = gateway.proc.lines.filter((l) => l.includes('RTMP play refused'));
  assert.deepEqual(pulled, [], 'the segmenter pull was not refused');
  assert.ok(!gateway.proc.lines.some((l) => l.includes(STREAM_KEY)), 'the stream key is in no log line');
});
