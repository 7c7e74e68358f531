/**
 * WHEP playback on a real gateway (cmd/gateway.ts as a child process, a real redis-server),
 * watched by Debian's Chromium (playwright-core): a stream published over RTMP plays over
 * WebRTC with frames decoded, its glass-to-glass latency measured from a clock burned into the
 * published picture; a stream published over WHIP from a Chromium canvas plays too (its latency
 * measured the same way); a source with B-frames plays re-encoded, with its audio as Opus; the viewer
 * limit answers 503 with Retry-After; bad offers and content types are refused; the relay's
 * ffmpeg ends with the last viewer, and a viewer that never completes ICE is closed after the
 * ICE timeout.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { publish as publishFrames, VideoSource } from '../../../src/frames/index.ts';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { launchChromium, type TestChromium } from '../../helpers/chromium.ts';
import { installWhepPlayer, paintClock, play, readClock, stopViewer, viewerStats, whipClockPublisher, type ViewerStats } from '../../helpers/whep-client.ts';

const CLOCK_KEY = 'whep-clock-SECRET-91f2';
const CLOCK_ID = 'whep-clock';
const CLIP_KEY = 'whep-clip-SECRET-77aa';
const CLIP_ID = 'whep-clip';
const WHIP_KEY = 'whep-whip-SECRET-3b0c';
const WHIP_ID = 'whep-whip';
const WIDTH = 640;
const HEIGHT = 360;
const FPS = 30;
const ICE_TIMEOUT_MS = 4000;

const gateway = gatewayForSuite({
  MEDIAGATE_LADDER: '[]',
  MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: CLOCK_KEY, manifestID: CLOCK_ID }, { streamKey: CLIP_KEY, manifestID: CLIP_ID }, { streamKey: WHIP_KEY, manifestID: WHIP_ID }]),
  MEDIAGATE_WEBRTC_WHEP_MAX_VIEWERS_PER_STREAM: '2',
  MEDIAGATE_WEBRTC_ICE_TIMEOUT_MS: String(ICE_TIMEOUT_MS),
});
let chromium: TestChromium;
let page: Page;

before(async () => {
  await gateway.ready;
  chromium = await launchChromium();
  page = await chromium.newPage();
  // Same origin as the WHEP endpoint.
  await page.goto(`${gateway.httpUrl}/healthz`);
  await installWhepPlayer(page);
});

after(async () => {
  await chromium?.close();
});

/** Polls a viewer's stats until `done` holds or `timeoutMs` passes; the last stats. */
async function statsUntil(index: number, done: (s: ViewerStats) => boolean, timeoutMs: number): Promise<ViewerStats> {
  const deadline = Date.now() + timeoutMs;
  let stats = await viewerStats(page, index);
  while (!done(stats) && Date.now() < deadline) {
    await sleep(250);
    stats = await viewerStats(page, index);
  }
  return stats;
}

/** Relay ffmpeg processes (descendants of the gateway process writing RTP) now, as `pid args`. */
function relayProcesses(): string[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' }).trim().split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)).filter((m) => m !== null).map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const family = new Set([gateway.proc.child.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) if (family.has(r.ppid) && !family.has(r.pid)) { family.add(r.pid); grew = true; }
  }
  return rows.filter((r) => family.has(r.pid) && r.args.includes('ffmpeg') && r.args.includes('-f rtp')).map((r) => `${r.pid} ${r.args}`);
}

/** The gateway's log lines about WHEP (for failure messages). */
function whepLog(): string {
  return gateway.proc.lines.filter((l) => /whep|WHEP/.test(l)).slice(-15).join('\n');
}

/** Waits until `GET /api/streams` lists `manifestID`. */
async function waitLive(manifestID: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await (await fetch(`${gateway.httpUrl}/api/streams`)).text()).includes(`"${manifestID}"`)) {
    assert.ok(Date.now() < deadline, `stream ${manifestID} did not go live: ${gateway.proc.lines.slice(-5).join('\n')}`);
    await sleep(200);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

test('a stream published over RTMP plays over WHEP in Chromium with frames decoded and sub-second glass-to-glass latency; the viewer limit answers 503 with Retry-After', { timeout: 80_000 }, async (t) => {
  // The publisher: frames made here, each with the wall clock of its making burned in, encoded
  // by the frame API's low-latency x264 (no B-frames: the relay copies H.264) with a 1 s GOP.
  const source = new VideoSource({ width: WIDTH, height: HEIGHT, format: 'yuv420p', frameRate: FPS });
  const publication = publishFrames({ rtmpUrl: gateway.rtmpUrl(CLOCK_KEY) }, { video: source }, { keyframeIntervalSec: 1 });
  let publishing = true;
  const frame = Buffer.alloc(WIDTH * HEIGHT * 1.5, 128);
  const t0 = Date.now();
  const producer = (async () => {
    for (let n = 0; publishing; n++) {
      const due = t0 + (n * 1000) / FPS;
      if (due > Date.now()) await sleep(due - Date.now());
      const now = Date.now();
      frame.fill(60 + (n % 60), 0, WIDTH * HEIGHT);
      paintClock(frame, WIDTH, now);
      await source.captureFrame({ kind: 'video', width: WIDTH, height: HEIGHT, format: 'yuv420p', data: frame, pts: Math.round((now - t0) * 90), timeBase: { num: 1, den: 90000 } });
    }
  })();
  try {
    // The stream is live once ingest lists it.
    await waitLive(CLOCK_ID);
    const first = await play(page, `${gateway.httpUrl}/whep/${CLOCK_ID}`);
    assert.equal(first.status, 201, JSON.stringify(first));
    assert.ok('location' in first && /^\/whep\/sessions\/[A-Za-z0-9_-]+$/.test(first.location), JSON.stringify(first));
    const second = await play(page, `${gateway.httpUrl}/whep/${CLOCK_ID}`);
    assert.equal(second.status, 201, JSON.stringify(second));

    // A third viewer of the stream is over the limit (2 in this test).
    const third = await play(page, `${gateway.httpUrl}/whep/${CLOCK_ID}`);
    assert.equal(third.status, 503);
    assert.ok('retryAfter' in third && Number(third.retryAfter) > 0, JSON.stringify(third));
    assert.equal((JSON.parse(third.body) as { detail: { code: string } }).detail.code, 'TOO_MANY_VIEWERS');

    const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    assert.match(metrics, /^mediagate_whep_viewers 2$/m);
    assert.match(metrics, /^mediagate_whep_streams 1$/m);

    const index = 'index' in first ? first.index : -1;
    await readClock(page, index, WIDTH);
    const stats = await statsUntil(index, (s) => s.framesDecoded > 0 && s.latenciesMs.length >= 5 * FPS, 30_000);
    assert.ok(stats.framesDecoded > 0, `frames decoded: ${JSON.stringify(stats)}\n${whepLog()}`);
    assert.ok(stats.latenciesMs.length >= 2 * FPS, `clock read on ${stats.latenciesMs.length} frames`);
    const lat = median(stats.latenciesMs);
    const p95 = [...stats.latenciesMs].sort((a, b) => a - b)[Math.floor(stats.latenciesMs.length * 0.95)]!;
    t.diagnostic(`glass-to-glass latency over ${stats.latenciesMs.length} frames: median ${lat} ms, p95 ${p95} ms, min ${Math.min(...stats.latenciesMs)} ms; frames decoded ${stats.framesDecoded}`);
    assert.ok(lat < 1000, `median glass-to-glass latency ${lat} ms`);
    const second2 = await statsUntil('index' in second ? second.index : -1, (s) => s.framesDecoded > 0, 5000);
    assert.ok(second2.framesDecoded > 0, 'the second viewer decodes frames too');
    const relays = relayProcesses();
    assert.equal(relays.length, 1, `one relay ffmpeg for the stream, shared by its viewers: ${relays.join('\n')}`);
    assert.match(relays[0]!, /-c:v copy/, 'H.264 without B-frames is copied');

    // DELETE ends a viewer; the second one frees the relay.
    assert.equal(await stopViewer(page, index), 200);
    assert.equal(await stopViewer(page, 'index' in second ? second.index : -1), 200);
    const gone = Date.now() + 5000;
    while (relayProcesses().length > 0 && Date.now() < gone) await sleep(100);
    assert.deepEqual(relayProcesses(), [], 'the relay ffmpeg ended with the last viewer');
    assert.equal((await fetch(`${gateway.httpUrl}${first.status === 201 && 'location' in first ? first.location : ''}`, { method: 'DELETE' })).status, 404);
  } finally {
    publishing = false;
    await producer.catch(() => undefined);
    source.close();
    await publication.stop();
  }
});

test('a source with B-frames plays over WHEP re-encoded without them, its AAC as Opus', { timeout: 60_000 }, async (t) => {
  const input = await clipWith2sGop(20);
  const publisher = publish(input, gateway.rtmpUrl(CLIP_KEY));
  try {
    await waitLive(CLIP_ID);
    const viewer = await play(page, `${gateway.httpUrl}/whep/${CLIP_ID}`);
    assert.equal(viewer.status, 201, JSON.stringify(viewer));
    const index = 'index' in viewer ? viewer.index : -1;
    const stats = await statsUntil(index, (s) => s.framesDecoded >= 48 && s.audioPackets > 50, 20_000);
    t.diagnostic(`frames decoded ${stats.framesDecoded}, audio packets ${stats.audioPackets}`);
    assert.ok(stats.framesDecoded >= 48, `frames decoded: ${JSON.stringify(stats)}\n${whepLog()}`);
    assert.ok(stats.audioPackets > 50, `Opus packets received: ${stats.audioPackets}`);
    const relays = relayProcesses();
    assert.equal(relays.length, 1);
    assert.match(relays[0]!, /-c:v libx264 .*-bf 0/, 'the relay re-encodes the video without B-frames');
    assert.match(relays[0]!, /-c:a libopus/);
    assert.equal(await stopViewer(page, index), 200);
  } finally {
    publisher.child.kill('SIGINT');
    await publisher.exited.catch(() => undefined);
  }
});

test('a stream published from a Chromium page over WHIP plays over WHEP in another page, glass to glass under 1 s', { timeout: 60_000 }, async (t) => {
  // The publisher: a canvas with the wall clock burned in, sent by Chromium's own encoder over WHIP.
  const publisherPage = await chromium.newPage();
  try {
    await publisherPage.goto(`${gateway.httpUrl}/healthz`);
    assert.equal(await publisherPage.evaluate(whipClockPublisher('/whip', WHIP_KEY)), 201);
    await waitLive(WHIP_ID);
    const viewer = await play(page, `${gateway.httpUrl}/whep/${WHIP_ID}`);
    assert.equal(viewer.status, 201, JSON.stringify(viewer));
    const index = 'index' in viewer ? viewer.index : -1;
    await readClock(page, index, WIDTH);
    const stats = await statsUntil(index, (s) => s.latenciesMs.length >= 3 * FPS, 30_000);
    assert.ok(stats.framesDecoded > 0, `frames decoded: ${JSON.stringify(stats)}\n${whepLog()}`);
    assert.ok(stats.latenciesMs.length >= FPS, `clock read on ${stats.latenciesMs.length} frames`);
    const lat = median(stats.latenciesMs);
    t.diagnostic(`WHIP → WHEP glass-to-glass latency over ${stats.latenciesMs.length} frames: median ${lat} ms, min ${Math.min(...stats.latenciesMs)} ms, max ${Math.max(...stats.latenciesMs)} ms; frames decoded ${stats.framesDecoded}; relay ${relayProcesses().map((r) => (/-c:v copy/.test(r) ? 'copy' : 'encode')).join()}`);
    assert.ok(lat < 1000, `median glass-to-glass latency ${lat} ms`);
    assert.equal(await stopViewer(page, index), 200);
  } finally {
    await publisherPage.evaluate('window.whipLocation && fetch(window.whipLocation, { method: "DELETE" })').catch(() => undefined);
    await publisherPage.close();
  }
});

test('a viewer that never completes ICE is closed after the ICE timeout, and the relay with it', { timeout: 60_000 }, async () => {
  const input = await clipWith2sGop(20);
  const publisher = publish(input, gateway.rtmpUrl(CLIP_KEY));
  const offerPage = await chromium.newPage();
  try {
    await waitLive(CLIP_ID);
    await offerPage.goto(`${gateway.httpUrl}/healthz`);
    // An offer Chromium made, posted from here: the page never gets the answer, so ICE never starts.
    const offer = await offerPage.evaluate<string>(`(async () => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      window.unanswered = pc;
      return pc.localDescription.sdp;
    })()`);
    const res = await fetch(`${gateway.httpUrl}/whep/${CLIP_ID}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
    assert.equal(res.status, 201);
    const location = res.headers.get('location')!;
    const answeredAt = Date.now();
    // The relay starts at the stream's next keyframe (2 s GOP) and ends with the viewer.
    const deadline = answeredAt + ICE_TIMEOUT_MS + 5000;
    let sawRelay = false;
    while (Date.now() < deadline) {
      const relays = relayProcesses().length;
      if (relays > 0) sawRelay = true;
      else if (sawRelay) break;
      await sleep(100);
    }
    const closedAfterMs = Date.now() - answeredAt;
    assert.ok(sawRelay, 'the relay started for the viewer');
    assert.deepEqual(relayProcesses(), [], 'the relay ended with the viewer');
    assert.ok(closedAfterMs >= ICE_TIMEOUT_MS - 500, `not closed before the ICE timeout (${closedAfterMs} ms)`);
    assert.equal((await fetch(`${gateway.httpUrl}${location}`, { method: 'DELETE' })).status, 404, 'the session is gone');
    assert.match(whepLog(), /ICE did not connect in time/);
  } finally {
    await offerPage.close();
    publisher.child.kill('SIGINT');
    await publisher.exited.catch(() => undefined);
  }
});

test('WHEP refuses other content types (415), a body that is not SDP (400) and a stream not live here (404)', async () => {
  const url = `${gateway.httpUrl}/whep/${CLOCK_ID}`;
  const wrongType = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'v=0' });
  assert.equal(wrongType.status, 415);
  assert.equal(((await wrongType.json()) as { detail: { code: string } }).detail.code, 'UNSUPPORTED_MEDIA_TYPE');
  const notSdp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'hello, this is not SDP' });
  assert.equal(notSdp.status, 400);
  assert.equal(((await notSdp.json()) as { detail: { code: string } }).detail.code, 'INVALID_REQUEST');
  const noH264 = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n';
  const vp8Only = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: noH264 });
  assert.equal(vp8Only.status, 400);
  const notLive = await fetch(`${gateway.httpUrl}/whep/nobody-publishes-this`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: noH264.replace('VP8', 'H264') + 'a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n' });
  assert.equal(notLive.status, 404);
  assert.equal(((await notLive.json()) as { detail: { code: string } }).detail.code, 'STREAM_NOT_LIVE');
  assert.equal(relayProcesses().length, 0);
});
