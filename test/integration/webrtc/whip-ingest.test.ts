/**
 * WHIP ingest on a real gateway process (real Redis, ffmpeg, node-datachannel) with Debian's
 * Chromium as the publisher: its fake camera and microphone go over WHIP, the stream is
 * listed by the control API, and its HLS ladder plays to the end once the publisher DELETEs
 * the session. Bad input is refused before any ICE (no ffmpeg, no UDP socket); a publisher
 * that never completes ICE is cleaned up within the ICE timeout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { launchChromium, type TestChromium } from '../../helpers/chromium.ts';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { childPids, startGateway, waitUntil } from '../../helpers/gateway-process.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fetchMedia, waitForEndedPlaylists } from '../../helpers/hls.ts';
import { AWAIT_CONNECTED, FAKE_CAMERA, SEND_ONLY_OFFER } from '../../helpers/whip-page.ts';

const run = promisify(execFile);

const LADDER = ['P144p30fps16x9'];
const KEY = 'whip-key-0123456789';
const MANIFEST_ID = 'whip-cam';
const VP8_KEY = 'whip-key-vp8-0123456789';
const VP8_MANIFEST_ID = 'whip-vp8';
const TRICKLE_KEY = 'whip-key-trickle-0123456789';
const TRICKLE_MANIFEST_ID = 'whip-trickle';
const ICE_TIMEOUT_MS = 4000;
/** The ICE agent's UDP port range (webrtc.portRangeBegin/End), somewhere in 20000-29999. */
const PORT_RANGE_BEGIN = 20_000 + 2 * Math.floor(Math.random() * 4900);
const PORT_RANGE_END = PORT_RANGE_BEGIN + 99;

const gw = gatewayForSuite({
  MEDIAGATE_LADDER: LADDER.join(','),
  MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: KEY, manifestID: MANIFEST_ID }, { streamKey: VP8_KEY, manifestID: VP8_MANIFEST_ID },
    { streamKey: TRICKLE_KEY, manifestID: TRICKLE_MANIFEST_ID }]),
  MEDIAGATE_WEBRTC_ICE_TIMEOUT_MS: String(ICE_TIMEOUT_MS),
  MEDIAGATE_WEBRTC_PORT_RANGE_BEGIN: String(PORT_RANGE_BEGIN), MEDIAGATE_WEBRTC_PORT_RANGE_END: String(PORT_RANGE_END),
});
let browser: TestChromium;

before(async () => {
  await gw.ready;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** Page code: `stream` (fake camera 640x360 + microphone) and `pc` with its complete offer (all candidates gathered). */
const MAKE_OFFER = `${FAKE_CAMERA}
  ${SEND_ONLY_OFFER}`;

/**
 * Page code (a string: the tsconfig has no DOM lib): publishes the fake camera and microphone
 * over WHIP to `path` (same origin), waits for the connection, returns the reply's parts.
 */
const PUBLISH = (path: string, videoMime?: string): string => `(async () => {
  ${videoMime ? MAKE_OFFER.replace('await pc.setLocalDescription', `pc.getTransceivers().find((t) => t.sender.track.kind === 'video')
    .setCodecPreferences(RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType === ${JSON.stringify(videoMime)}));
  await pc.setLocalDescription`) : MAKE_OFFER}
  const postedAt = Date.now();
  const res = await fetch(${JSON.stringify(path)}, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await res.text();
  if (res.status !== 201) return { status: res.status, answer, postedAt };
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  ${AWAIT_CONNECTED}
  // Keep the stream referenced: Chromium stops capturing a collected stream's audio.
  window.whipPc = pc;
  window.whipStream = stream;
  return { status: res.status, answer, postedAt, location: res.headers.get('location'), etag: res.headers.get('etag'), contentType: res.headers.get('content-type') };
})()`;

/** An offer made by Chromium (fake camera + microphone), never answered in the page. */
const OFFER_ONLY = `(async () => {
  ${MAKE_OFFER}
  window.unansweredPc = pc;
  window.unansweredStream = stream;
  return pc.localDescription.sdp;
})()`;

/** The gateway's WHIP bridge ffmpeg children (their input is an SDP file). */
function whipFfmpegs(pid: number): number[] {
  return childPids(pid).filter((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').some((a) => a.endsWith('.sdp'));
    } catch {
      return false;
    }
  });
}

interface Published { status: number; answer: string; postedAt: number; location?: string; etag?: string; contentType?: string }

/** Local ports of the UDP sockets process `pid` has open (its fds matched against /proc/net/udp and udp6). */
function udpSockets(pid: number): number[] {
  const portOf = new Map<string, number>();
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const inode = fields[9];
      const local = fields[1];
      if (inode && inode !== '0' && local) portOf.set(inode, parseInt(local.split(':').at(-1)!, 16));
    }
  }
  const open: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      const port = m ? portOf.get(m[1]!) : undefined;
      if (port !== undefined) open.push(port);
    } catch {
      // closed meanwhile
    }
  }
  return open;
}

test('a Chromium page publishes its camera over WHIP: listed in GET /api/streams, the HLS ladder plays to the end after DELETE', { timeout: 90_000 }, async (t) => {
  const page = await browser.newPage();
  // Same origin as the gateway: its request guard refuses cross-site POSTs.
  await page.goto(`${gw.httpUrl}/healthz`);
  const published = await page.evaluate<Published>(PUBLISH(`/whip/${KEY}`));
  assert.equal(published.status, 201, published.answer);
  assert.equal(published.contentType, 'application/sdp');
  assert.match(published.answer, /^v=0\r\n/);
  assert.match(published.answer, /a=rtpmap:\d+ H264\/90000/, 'the answer takes H.264');
  assert.match(published.location ?? '', /^\/whip\/sessions\/[0-9a-f]{32}$/);
  assert.match(published.etag ?? '', /^"[0-9a-f]+"$/);

  let listed = false;
  const deadline = Date.now() + 30_000;
  while (!listed && Date.now() < deadline) {
    const streams = await (await fetch(`${gw.httpUrl}/api/streams`)).json() as { streams?: { manifestID: string }[] } | { manifestID: string }[];
    const list = Array.isArray(streams) ? streams : streams.streams ?? [];
    listed = list.some((s) => s.manifestID === MANIFEST_ID);
    if (!listed) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(listed, `${MANIFEST_ID} is listed by GET /api/streams`);

  // Time to the first listed source segment, from the POST (reported, not asserted).
  let firstSegmentAt = 0;
  while (Date.now() < deadline + 30_000) {
    const res = await fetch(`${gw.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`);
    if (res.status === 200 && (await res.text()).split('\n').some((l) => l.endsWith('.ts'))) {
      firstSegmentAt = Date.now();
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(firstSegmentAt > 0, 'a source segment is listed');
  assert.match(await (await fetch(`${gw.httpUrl}/metrics`)).text(), /^mediagate_whip_sessions 1$/m, 'one WHIP session in /metrics');
  t.diagnostic(`time to first listed source segment from the WHIP POST: ${firstSegmentAt - published.postedAt} ms`);
  // Publish about 8 s, then end the session as a WHIP client does.
  await new Promise((r) => setTimeout(r, 8000));
  const sessionUrl = `${gw.httpUrl}${published.location!}`;
  assert.equal((await fetch(sessionUrl, { method: 'DELETE' })).status, 200);
  assert.equal((await fetch(sessionUrl, { method: 'DELETE' })).status, 404, 'the session resource is gone');
  await page.close();

  const lists = await waitForEndedPlaylists(gw.httpUrl, MANIFEST_ID, LADDER.length + 1, 60_000);
  for (const list of lists) {
    assert.ok(list.segments.length >= 3, `${list.uri ?? 'a rendition'} lists ${list.segments.length} segments`);
    const total = list.segments.reduce((sum, s) => sum + s.duration, 0);
    assert.ok(total >= 6, `about 8 s published, ${total} s listed`);
  }
  for (const rendition of ['source', ...LADDER]) {
    const url = `${gw.httpUrl}/stream/${MANIFEST_ID}/${rendition}.m3u8`;
    const media = await fetchMedia(url);
    assert.ok(media.endlist, `${rendition} ends`);
    // ffprobe decodes every frame of the playlist (no muxer: a browser's variable frame timing is kept as is).
    const probe = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,nb_read_frames', '-of', 'json', url]);
    assert.equal(probe.stderr.trim(), '', `${rendition} decodes to the end without errors`);
    const stream = (JSON.parse(probe.stdout) as { streams: { codec_name: string; width: number; nb_read_frames: string }[] }).streams[0]!;
    assert.equal(stream.codec_name, 'h264');
    const listedS = media.segments.reduce((sum, seg) => sum + seg.duration, 0);
    t.diagnostic(`${rendition}: ${stream.width} px wide, ${stream.nb_read_frames} frames decoded over ${listedS.toFixed(1)} s listed`);
    assert.ok(Number(stream.nb_read_frames) >= listedS * 5, `${rendition}: ${stream.nb_read_frames} frames decoded over ${listedS} s`);
  }
  // Browser keyframes at the segment target: no source segment is much longer than it (2 s default).
  const source = await fetchMedia(`${gw.httpUrl}/stream/${MANIFEST_ID}/source.m3u8`);
  const longest = Math.max(...source.segments.slice(0, -1).map((s) => s.duration));
  t.diagnostic(`source segment durations: ${source.segments.map((s) => s.duration.toFixed(2)).join(', ')}`);
  assert.ok(longest <= 4.5, `keyframes requested every segment target: longest source segment ${longest} s`);
  assert.deepEqual(whipFfmpegs(gw.proc.child.pid!), [], 'no WHIP ffmpeg is left');
  assert.deepEqual(gw.proc.lines.filter((l) => l.includes(KEY)), [], 'the stream key is in no log line');
  assert.match(await (await fetch(`${gw.httpUrl}/metrics`)).text(), /^mediagate_whip_sessions 0$/m, 'no WHIP session after DELETE');
});

test('WHIP bad input is refused before any ICE: 415 other content type, 401 no key, 400 not SDP, 403 wrong key', { timeout: 30_000 }, async () => {
  const pid = gw.proc.child.pid!;
  const socketsBefore = udpSockets(pid).length;
  const page = await browser.newPage();
  await page.goto(`${gw.httpUrl}/healthz`);
  const offer = await page.evaluate<string>(OFFER_ONLY);
  await page.close();
  const post = (path: string, body: string, headers: Record<string, string>): Promise<Response> =>
    fetch(`${gw.httpUrl}${path}`, { method: 'POST', headers, body });
  const codeOf = async (res: Response): Promise<string> => ((await res.json()) as { detail: { code: string } }).detail.code;

  const wrongType = await post(`/whip/${KEY}`, offer, { 'content-type': 'text/plain' });
  assert.equal(wrongType.status, 415);
  assert.equal(await codeOf(wrongType), 'UNSUPPORTED_MEDIA_TYPE');

  const noKey = await post('/whip', offer, { 'content-type': 'application/sdp' });
  assert.equal(noKey.status, 401);
  assert.equal(await codeOf(noKey), 'UNAUTHORIZED');

  const notSdp = await post(`/whip/${KEY}`, 'hello, this is not SDP', { 'content-type': 'application/sdp' });
  assert.equal(notSdp.status, 400);
  const notSdpBody = (await notSdp.json()) as { detail: { code: string; msg: string } };
  assert.equal(notSdpBody.detail.code, 'INVALID_REQUEST');
  assert.match(notSdpBody.detail.msg, /not an SDP offer/);

  const wrongKey = await post('/whip/not-the-key', offer, { 'content-type': 'application/sdp' });
  assert.equal(wrongKey.status, 403);
  assert.equal(await codeOf(wrongKey), 'PUBLISH_DENIED');
  const wrongBearer = await post('/whip', offer, { 'content-type': 'application/sdp', authorization: 'Bearer not-the-key' });
  assert.equal(wrongBearer.status, 403);

  assert.deepEqual(whipFfmpegs(pid), [], 'no ffmpeg was started');
  assert.equal(udpSockets(pid).length, socketsBefore, 'no UDP socket was opened');
  assert.equal((await fetch(`${gw.httpUrl}/healthz`)).status, 200, 'the gateway is still up');
  const unknown = await fetch(`${gw.httpUrl}/whip/sessions/0123456789abcdef0123456789abcdef`, { method: 'DELETE' });
  assert.equal(unknown.status, 404);
});

test('a WHIP publisher that never completes ICE is cleaned up within the ICE timeout: no ffmpeg, no socket, no session left; its sockets were in the port range', { timeout: 40_000 }, async () => {
  const pid = gw.proc.child.pid!;
  const socketsAtStart = udpSockets(pid);
  const socketsBefore = socketsAtStart.length;
  const page = await browser.newPage();
  await page.goto(`${gw.httpUrl}/healthz`);
  const offer = await page.evaluate<string>(OFFER_ONLY);
  // Posted from here, not the page: the page never learns the answer, so ICE never starts on its side.
  const res = await fetch(`${gw.httpUrl}/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${KEY}` }, body: offer });
  const answer = await res.text();
  assert.equal(res.status, 201, answer);
  const location = res.headers.get('location')!;
  const answeredAt = Date.now();
  assert.equal(whipFfmpegs(pid).length, 1, 'the session started its ffmpeg');
  const before = new Set(socketsAtStart);
  const opened = udpSockets(pid).filter((port) => !before.has(port));
  // The answer's host candidates (RFC 8839: the port is the sixth field) are the ICE sockets.
  const icePorts = answer.split('\r\n').filter((l) => l.startsWith('a=candidate:')).map((l) => Number(l.split(' ')[5]));
  assert.ok(icePorts.length > 0, 'the answer has host candidates');
  assert.ok(icePorts.every((port) => port >= PORT_RANGE_BEGIN && port <= PORT_RANGE_END && opened.includes(port)),
    `ICE sockets opened in webrtc.portRangeBegin..End (${PORT_RANGE_BEGIN}-${PORT_RANGE_END}): candidates ${icePorts.join(', ')}; opened ${opened.join(', ')}`);
  await waitUntil(() => whipFfmpegs(pid).length === 0 && udpSockets(pid).length <= socketsBefore,
    ICE_TIMEOUT_MS + 5000, () => `left: ffmpeg ${whipFfmpegs(pid).join(', ')}; UDP sockets ${udpSockets(pid).length} (before ${socketsBefore})`);
  const cleanedAfterMs = Date.now() - answeredAt;
  assert.ok(cleanedAfterMs >= ICE_TIMEOUT_MS - 500, `not closed before the timeout (${cleanedAfterMs} ms)`);
  assert.equal((await fetch(`${gw.httpUrl}${location}`, { method: 'DELETE' })).status, 404, 'the session is gone');
  await page.close();
});

test('over webrtc.whipMaxSessions a publish is refused 503 TOO_MANY_PUBLISHERS with Retry-After, before its key is checked and without starting anything', { timeout: 60_000 }, async () => {
  const keys = ['whip-cap-key-a-0123456789', 'whip-cap-key-b-0123456789'];
  const capped = await startGateway(gw.redis.url, {
    MEDIAGATE_LADDER: LADDER.join(','), MEDIAGATE_REDIS_KEY_PREFIX: 'whipcap',
    MEDIAGATE_STREAM_KEYS: JSON.stringify(keys.map((streamKey, i) => ({ streamKey, manifestID: `whip-cap-${i}` }))),
    MEDIAGATE_WEBRTC_WHIP_MAX_SESSIONS: '1', MEDIAGATE_WEBRTC_ICE_TIMEOUT_MS: '30000',
  });
  try {
    const pid = capped.proc.child.pid!;
    const page = await browser.newPage();
    await page.goto(`${capped.httpUrl}/healthz`);
    const offer = await page.evaluate<string>(OFFER_ONLY);
    await page.close();
    const post = (key: string): Promise<Response> =>
      fetch(`${capped.httpUrl}/whip`, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` }, body: offer });

    const first = await post(keys[0]!);
    assert.equal(first.status, 201, await first.clone().text());
    assert.equal(whipFfmpegs(pid).length, 1);
    const socketsWithOne = udpSockets(pid).length;

    const refused = await post(keys[1]!);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '10');
    const body = (await refused.json()) as { detail: { code: string; msg: string } };
    assert.equal(body.detail.code, 'TOO_MANY_PUBLISHERS');
    assert.match(body.detail.msg, /webrtc\.whipMaxSessions/);
    const wrongKey = await post('not-a-key-at-all');
    assert.equal(wrongKey.status, 503, 'a full gateway refuses before the key is checked');
    assert.equal(whipFfmpegs(pid).length, 1, 'no ffmpeg for a refused publish');
    assert.equal(udpSockets(pid).length, socketsWithOne, 'no UDP socket for a refused publish');

    // The place is free again once the first session ends.
    assert.equal((await fetch(`${capped.httpUrl}${first.headers.get('location')!}`, { method: 'DELETE' })).status, 200);
    const again = await post(keys[1]!);
    assert.equal(again.status, 201, await again.clone().text());
    assert.equal((await fetch(`${capped.httpUrl}${again.headers.get('location')!}`, { method: 'DELETE' })).status, 200);
  } finally {
    await capped.stop();
  }
});

test('a VP8-only WHIP publisher is re-encoded: its source segments are H.264 with AAC audio; a kick ends its session', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${gw.httpUrl}/healthz`);
    const published = await page.evaluate<Published>(PUBLISH(`/whip/${VP8_KEY}`, 'video/VP8'));
    assert.equal(published.status, 201, published.answer);
    assert.match(published.answer, /a=rtpmap:\d+ VP8\/90000/, 'the answer takes VP8 (the only video codec offered)');
    assert.doesNotMatch(published.answer, /H264/);
    const playlist = `${gw.httpUrl}/stream/${VP8_MANIFEST_ID}/source.m3u8`;
    let first: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!first && Date.now() < deadline) {
      const res = await fetch(playlist);
      if (res.status === 200) first = (await res.text()).split('\n').find((l) => l.endsWith('.ts'));
      if (!first) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(first, 'a source segment is listed');
    const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width', '-of', 'json', new URL(first, playlist).href]);
    const streams = (JSON.parse(probe.stdout) as { streams: { codec_type: string; codec_name: string; width?: number }[] }).streams;
    assert.deepEqual(streams.map((x) => `${x.codec_type}:${x.codec_name}`).sort(), ['audio:aac', 'video:h264']);
    assert.equal(streams.find((x) => x.codec_type === 'video')!.width, 640);
    // A kick through the control API ends the bridge's RTMP publish, and the WHIP session with it.
    assert.equal((await fetch(`${gw.httpUrl}/api/streams/${VP8_MANIFEST_ID}`, { method: 'DELETE' })).status, 202);
    const pid = gw.proc.child.pid!;
    await waitUntil(() => whipFfmpegs(pid).length === 0, 10_000, () => `bridge ffmpeg left: ${whipFfmpegs(pid).join(', ')}`);
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = (await fetch(`${gw.httpUrl}${published.location!}`, { method: 'DELETE' })).status === 404;
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(gone, 'the kicked stream\'s WHIP session is closed');
  } finally {
    await page.close();
  }
});

test('trickle ICE: an offer posted before gathering, its candidates sent with PATCH, connects and publishes', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${gw.httpUrl}/healthz`);
    const result = await page.evaluate<{ status: number; patches: number[]; etags: string[]; candidatesInOffer: number; location: string }>(`(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
      const pc = new RTCPeerConnection();
      for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
      const gathered = [];
      let done;
      const allGathered = new Promise((resolve) => { done = resolve; });
      pc.onicecandidate = (e) => { if (e.candidate) gathered.push(e.candidate); else done(); };
      await pc.setLocalDescription(await pc.createOffer());
      const offer = pc.localDescription.sdp;
      const res = await fetch(${JSON.stringify(`/whip/${TRICKLE_KEY}`)}, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
      const answer = await res.text();
      if (res.status !== 201) return { status: res.status, patches: [], etags: [], candidatesInOffer: 0, location: answer };
      const location = res.headers.get('location');
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await allGathered;
      const patches = [];
      const etags = [res.headers.get('etag')];
      for (const c of gathered) {
        const frag = 'a=mid:' + c.sdpMid + '\\r\\na=' + c.candidate + '\\r\\n';
        const p = await fetch(location, { method: 'PATCH', headers: { 'content-type': 'application/trickle-ice-sdpfrag' }, body: frag });
        patches.push(p.status);
        etags.push(p.headers.get('etag'));
      }
      await new Promise((resolve, reject) => {
        const check = () => {
          if (pc.connectionState === 'connected') resolve();
          if (pc.connectionState === 'failed') reject(new Error('WebRTC connection failed'));
        };
        pc.onconnectionstatechange = check;
        check();
      });
      window.tricklePc = pc;
      window.trickleStream = stream;
      return { status: res.status, patches, etags, candidatesInOffer: (offer.match(/a=candidate:/g) || []).length, location };
    })()`);
    assert.equal(result.status, 201, result.location);
    assert.equal(result.candidatesInOffer, 0, 'the offer was posted before any candidate was gathered');
    assert.ok(result.patches.length > 0, 'candidates were trickled');
    assert.ok(result.patches.every((status) => status === 204), `PATCH answers: ${result.patches.join(', ')}`);
    assert.equal(new Set(result.etags).size, result.etags.length, 'each PATCH gives the session a new ETag');
    const playlist = `${gw.httpUrl}/stream/${TRICKLE_MANIFEST_ID}/source.m3u8`;
    let listed = false;
    const deadline = Date.now() + 30_000;
    while (!listed && Date.now() < deadline) {
      const res = await fetch(playlist);
      listed = res.status === 200 && (await res.text()).includes('.ts');
      if (!listed) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(listed, 'the trickled session publishes: a source segment is listed');
    const wrongType = await fetch(`${gw.httpUrl}${result.location}`, { method: 'PATCH', headers: { 'content-type': 'application/sdp' }, body: 'a=end-of-candidates' });
    assert.equal(wrongType.status, 415);
    assert.equal((await fetch(`${gw.httpUrl}${result.location}`, { method: 'DELETE' })).status, 200);
    const gone = await fetch(`${gw.httpUrl}${result.location}`, { method: 'PATCH', headers: { 'content-type': 'application/trickle-ice-sdpfrag' }, body: 'a=end-of-candidates' });
    assert.equal(gone.status, 404);
  } finally {
    await page.close();
  }
});
