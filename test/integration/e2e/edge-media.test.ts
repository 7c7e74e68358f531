/**
 * Edge media end to end: the gateway as a real process (embedded transcoder), a real
 * redis-server, event webhooks to a real local receiver, and real encodes of the clip made at
 * test time: an audio-only RTMP publish, VP8/VP9 pushes, an HEVC MP4 push, a rotated MP4 push and a
 * 10-bit H.264 push.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, fetchText, decodeErrors } from '../../helpers/hls.ts';

const run = promisify(execFile);
const LADDER = ['P240p30fps16x9'];
let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let receiver: Server;
let work: string;
const events: { type: string; data: Record<string, unknown> }[] = [];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => resolve(body));
  });
}

async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args], { maxBuffer: 16 * 1024 * 1024 });
}

/** `seconds` of the clip from 30 s (picture content), H.264 with a 2 s GOP plus the given options. */
async function encode(out: string, seconds: number, videoArgs: string[], audioArgs = ['-c:a', 'copy']): Promise<string> {
  await ffmpeg('-ss', '30', '-i', CLIP, '-t', String(seconds), ...videoArgs, ...audioArgs, out);
  return out;
}

/** Cuts a file into 2 s MPEG-TS segments; returns their paths in order. */
async function cutTs(input: string, prefix: string): Promise<string[]> {
  await ffmpeg('-i', input, '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(work, `${prefix}-%d.ts`));
  return readdirSync(work).filter((f) => new RegExp(`^${prefix}-\\d+\\.ts$`).test(f))
    .sort((a, b) => parseInt(a.slice(prefix.length + 1)) - parseInt(b.slice(prefix.length + 1))).map((f) => join(work, f));
}

function push(name: string, seq: number, body: Buffer, ext: 'ts' | 'mp4'): Promise<Response> {
  return fetch(`${deployment.httpUrl}/live/${name}/${seq}.${ext}`, { method: 'POST', body, headers: { 'Content-Duration': '2000' } });
}

async function api(path: string): Promise<Record<string, unknown> & { warnings: { code: string; msg: string }[]; renditions: { name: string; width: number; height: number; segments: number }[] }> {
  const res = await fetch(`${deployment.httpUrl}${path}`);
  assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
  return (await res.json()) as never;
}

async function streamInfo(path: string): Promise<{ width: number; height: number; pix_fmt: string; codec_name: string; profile: string }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,pix_fmt,codec_name,profile', '-of', 'json', path]);
  return (JSON.parse(stdout) as { streams: never[] }).streams[0]!;
}

/** The first decoded frame of a file as 8-bit gray pixels, scaled to w×h, after `filter` (ffmpeg autorotation stays on). */
async function grayFrame(path: string, w: number, h: number, filter = ''): Promise<Buffer> {
  const out = join(work, `frame-${Math.random().toString(36).slice(2)}.gray`);
  await ffmpeg('-i', path, '-frames:v', '1', '-vf', `${filter}${filter ? ',' : ''}scale=${w}:${h}`, '-pix_fmt', 'gray', '-f', 'rawvideo', out);
  return readFileSync(out);
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

before(async () => {
  redis = await startRedis();
  receiver = createServer(async (req, res) => {
    events.push(JSON.parse(await readBody(req)) as { type: string; data: Record<string, unknown> });
    res.end('ok');
  });
  const receiverPort = await new Promise<number>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve((receiver.address() as { port: number }).port)));
  deployment = await testDeployment(redis.url, {
    MEDIAGATE_LADDER: LADDER.join(','),
    MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: '3000',
    MEDIAGATE_EVENTS_WEBHOOK_URLS: `http://127.0.0.1:${receiverPort}/hook`,
    MEDIAGATE_EVENTS_SECRET: 'whsec-edge-media',
    MEDIAGATE_EVENTS_TIMEOUT_MS: '1000',
  });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  work = mkdtempSync(join(tmpdir(), 'mg-edge-'));
});

after(async () => {
  await gateway?.stop();
  await redis?.stop();
  receiver?.closeAllConnections();
  receiver?.close();
  deployment?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function waitForEvent(type: string, manifestID: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = events.find((e) => e.type === type && e.data['manifestID'] === manifestID);
    if (found) return found.data;
    if (Date.now() > deadline) throw new Error(`no ${type} event for ${manifestID} within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => [e.type, e.data['manifestID']]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('an audio-only RTMP publish is served as audio-only HLS: listed, CODECS mp4a without RESOLUTION, AUDIO_ONLY in the API, ended normally', { timeout: 90_000 }, async () => {
  const audio = await encode(join(work, 'audio.mp4'), 7, ['-vn']);
  const publisher = publish(audio, `rtmp://127.0.0.1:${deployment.rtmpPort}/live/audio-only`);
  assert.equal(await publisher.exited, 0, publisher.stderr());
  const ended = await waitForEvent('stream.ended', 'audio-only', 30_000);
  assert.notEqual(ended['reason'], 'failed');
  assert.ok((ended['segments'] as number) >= 3, `segments ${String(ended['segments'])}`);

  const master = await fetchText(`${deployment.httpUrl}/stream/audio-only.m3u8`);
  assert.equal(master.status, 200, master.text);
  assert.match(master.text, /#EXT-X-STREAM-INF:BANDWIDTH=\d+,AVERAGE-BANDWIDTH=\d+,CODECS="mp4a\.40\.2"\naudio-only\/source\.m3u8\n/);
  assert.doesNotMatch(master.text, /RESOLUTION/);
  const media = await fetchMedia(`${deployment.httpUrl}/stream/audio-only/source.m3u8`);
  assert.ok(media.endlist);
  assert.ok(media.segments.length >= 3);
  const first = `${deployment.httpUrl}/stream/audio-only/${media.segments[0]!.uri}`;
  assert.equal(await decodeErrors(first), '');
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', first]);
  assert.deepEqual([...new Set(stdout.split('\n').map((l) => l.trim()).filter(Boolean))], ['audio']);

  const info = await api('/api/streams/audio-only');
  assert.deepEqual(info.warnings.map((w) => w.code), ['AUDIO_ONLY']);
  assert.deepEqual(info.renditions.map((r) => [r.name, r.width, r.height]), [['source', 0, 0]]);
  assert.ok(info.renditions[0]!.segments >= 3);
  assert.equal(events.filter((e) => e.type === 'segment.failed' && e.data['manifestID'] === 'audio-only').length, 0);
});

test('unsupported codecs are refused naming them: WebM VP8 copied into MPEG-TS (private data), VP9 in MP4', { timeout: 60_000 }, async () => {
  const vp8 = await encode(join(work, 'vp8.webm'), 2, ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k'], ['-c:a', 'libvorbis']);
  const vp8Ts = join(work, 'vp8.ts');
  await ffmpeg('-i', vp8, '-c', 'copy', '-f', 'mpegts', vp8Ts);
  const vp9 = await encode(join(work, 'vp9.webm'), 2, ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k'], ['-an']);
  const vp9Mp4 = join(work, 'vp9.mp4');
  await ffmpeg('-i', vp9, '-c', 'copy', '-f', 'mp4', vp9Mp4);
  for (const [body, ext, codec] of [[vp8Ts, 'ts', 'vp8'], [vp9Mp4, 'mp4', 'vp9']] as const) {
    const res = await push(`unsupported-${codec}`, 0, readFileSync(body), ext);
    const text = await res.text();
    assert.equal(res.status, 422, text);
    const detail = (JSON.parse(text) as { detail: { msg: string; code: string } }).detail;
    assert.equal(detail.code, 'UNDECODABLE_MEDIA');
    assert.match(detail.msg, new RegExp(`unsupported codec ${codec}\\b`));
  }
  assert.equal((await fetch(`${deployment.httpUrl}/healthz`)).status, 200);
});

test('an HEVC MP4 push is rewrapped and transcoded (the rewrap no longer forces the H.264-only bitstream filter)', { timeout: 60_000 }, async () => {
  const hevc = await encode(join(work, 'hevc.mp4'), 2, ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error']);
  const res = await push('hevc', 0, readFileSync(hevc), 'mp4');
  assert.equal(res.status, 200, await res.text());
  const info = await api('/api/streams/hevc');
  assert.deepEqual(info.renditions.map((r) => [r.name, r.width, r.height, r.segments]), [['source', 640, 360, 1], ['P240p30fps16x9', 426, 240, 1]]);
  const master = await fetchText(`${deployment.httpUrl}/stream/hevc.m3u8`);
  assert.match(master.text, /CODECS="hvc1\.[^"]*,mp4a\.40\.2"[^\n]*\nhevc\/source\.m3u8/);
});

test('a rotated MP4 push gets upright portrait renditions of the displayed size; the API says the source is rotated', { timeout: 120_000 }, async (t) => {
  const plain = await encode(join(work, 'plain.mp4'), 4, ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0']);
  // The display matrix as phones write it: ffprobe reports rotation 90 (ffmpeg autorotates it counter-clockwise).
  const rotated = join(work, 'rotated.mp4');
  await ffmpeg('-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated);
  const parts = join(work, 'rot-%d.mp4');
  await ffmpeg('-i', rotated, '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mp4', parts);
  const segs = readdirSync(work).filter((f) => /^rot-\d+\.mp4$/.test(f)).sort().map((f) => join(work, f));
  assert.ok(segs.length >= 2);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream_side_data=rotation', '-of', 'csv=p=0', segs[0]!]);
  assert.equal(stdout.trim(), '90', 'each pushed segment carries the display matrix');

  for (let seq = 0; seq < segs.length; seq++) {
    const res = await push('rotated', seq, readFileSync(segs[seq]!), 'mp4');
    assert.equal(res.status, 200, await res.text());
  }
  const info = await api('/api/streams/rotated');
  assert.deepEqual(info.warnings.map((w) => w.code), ['SOURCE_ROTATED']);
  const sizes = Object.fromEntries(info.renditions.map((r) => [r.name, `${r.width}x${r.height}`]));
  assert.deepEqual(sizes, { source: '640x360', 'source-playable': '360x640', P240p30fps16x9: '136x240' });

  const master = (await fetchMaster(`${deployment.httpUrl}/stream/rotated.m3u8`))!;
  // By bandwidth (the playable copy carries the source's bitrate, the 136x240 rendition its pixel share), the source last.
  assert.deepEqual(master.variants.map((v) => v.uri), ['rotated/source-playable.m3u8', 'rotated/P240p30fps16x9.m3u8', 'rotated/source.m3u8'],
    'the unrotated source is listed last');

  // Orientation: the rendition's first frame matches the source as ffmpeg autorotates it, not the other turn.
  for (const [name, w, h] of [['source-playable', 360, 640], ['P240p30fps16x9', 136, 240]] as const) {
    const media = await fetchMedia(`${deployment.httpUrl}/stream/rotated/${name}.m3u8`);
    const segment = join(work, `${name}-0.ts`);
    writeFileSync(segment, Buffer.from(await (await fetch(`${deployment.httpUrl}/stream/rotated/${media.segments[0]!.uri}`)).arrayBuffer()));
    const s = await streamInfo(segment);
    assert.deepEqual([s.width, s.height, s.pix_fmt], [w, h, 'yuv420p']);
    const out = await grayFrame(segment, w, h);
    const upright = meanAbsDiff(out, await grayFrame(segs[0]!, w, h));
    const wrongTurn = meanAbsDiff(out, await grayFrame(segs[0]!, w, h, 'hflip,vflip'));
    t.diagnostic(`${name} ${w}x${h}: mean absolute gray difference to the autorotated source ${upright.toFixed(2)}, to the opposite turn ${wrongTurn.toFixed(2)}`);
    assert.ok(upright < 6, `${name}: mean abs difference to the autorotated source ${upright.toFixed(2)}`);
    assert.ok(wrongTurn > 3 * upright + 5, `${name}: the opposite turn differs clearly (${wrongTurn.toFixed(2)} vs ${upright.toFixed(2)})`);
  }
});

test('a 10-bit H.264 push is flagged in the API and gets an 8-bit rendition of the source size, listed before the source', { timeout: 120_000 }, async () => {
  const tenBit = await encode(join(work, 'ten.mp4'), 4, ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p10le', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0']);
  const segs = await cutTs(tenBit, 'ten');
  assert.ok(segs.length >= 2);
  assert.deepEqual([(await streamInfo(segs[0]!)).profile, (await streamInfo(segs[0]!)).pix_fmt], ['High 10', 'yuv420p10le']);
  for (let seq = 0; seq < segs.length; seq++) {
    const res = await push('tenbit', seq, readFileSync(segs[seq]!), 'ts');
    assert.equal(res.status, 200, await res.text());
  }
  const info = await api('/api/streams/tenbit');
  assert.deepEqual(info.warnings.map((w) => w.code), ['SOURCE_NOT_BROWSER_PLAYABLE']);
  assert.match(info.warnings[0]!.msg, /High 10/);
  const sizes = Object.fromEntries(info.renditions.map((r) => [r.name, `${r.width}x${r.height}`]));
  assert.deepEqual(sizes, { source: '640x360', 'source-playable': '640x360', P240p30fps16x9: '426x240' });
  assert.ok(gateway.lines.some((l) => l.includes('"msg":"source lint"') && l.includes('SOURCE_NOT_BROWSER_PLAYABLE')), 'logged');

  const master = await fetchText(`${deployment.httpUrl}/stream/tenbit.m3u8`);
  const uris = master.text.split('\n').filter((l) => l.startsWith('tenbit/'));
  assert.deepEqual(uris, ['tenbit/source-playable.m3u8', 'tenbit/P240p30fps16x9.m3u8', 'tenbit/source.m3u8'], 'by bandwidth, the source last');
  assert.match(master.text, /RESOLUTION=640x360,CODECS="avc1\.64[0-9a-f]{4},mp4a\.40\.2"[^\n]*\ntenbit\/source-playable\.m3u8/, 'the copy is 8-bit High');
  assert.match(master.text, /CODECS="avc1\.6e[0-9a-f]{4},mp4a\.40\.2"[^\n]*\ntenbit\/source\.m3u8/, 'the source is High 10 (profile_idc 110)');

  const media = await fetchMedia(`${deployment.httpUrl}/stream/tenbit/source-playable.m3u8`);
  const segment = join(work, 'ten-playable-0.ts');
  writeFileSync(segment, Buffer.from(await (await fetch(`${deployment.httpUrl}/stream/tenbit/${media.segments[0]!.uri}`)).arrayBuffer()));
  const s = await streamInfo(segment);
  assert.deepEqual([s.width, s.height, s.pix_fmt, s.profile], [640, 360, 'yuv420p', 'High']);
  assert.equal(await decodeErrors(segment), '');
});
