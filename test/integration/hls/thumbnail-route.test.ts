/**
 * `GET /stream/<manifestID>/thumbnail.jpg` on two real gateway processes sharing one
 * redis-server and one object store directory: segments of the real clip are HTTP-pushed to
 * the first gateway, the thumbnail is asked of the second (which never saw the stream) and
 * of the first. Real ffmpeg makes it; ffprobe checks it. The streams are recorded: once they
 * ended (push idle timeout), the recording's `thumbnails.vtt` and per-segment thumbnails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { spawnMediagate, startGatewayPair, waitForHttp, type GatewayPair, type MediagateProcess } from '../../helpers/gateway-process.ts';
import { probeJpeg } from '../../helpers/media.ts';
import { cutPushSegments, pushSegment } from '../../helpers/push-client.ts';

const run = promisify(execFile);
const WIDTH_PX = 200;

let pair: GatewayPair;
let a: MediagateProcess;
let b: MediagateProcess;
let work: string;
let segments: Buffer[];
/** The live test's session and thumbnails by seq, for the recording test. */
let liveSession = '';
const liveThumbnails = new Map<number, Buffer>();

before(async () => {
  pair = await startGatewayPair({
    MEDIAGATE_LADDER: 'P144p30fps16x9',
    MEDIAGATE_THUMBNAILS_WIDTH_PX: String(WIDTH_PX),
    MEDIAGATE_PUSH_IDLE_TIMEOUT_MS: '3000',
    MEDIAGATE_HLS_SWEEP_INTERVAL_MS: '500',
    MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '500',
    MEDIAGATE_RECORDING_ENABLED: 'true',
  });
  a = spawnMediagate('gateway', pair.first.env);
  b = spawnMediagate('gateway', pair.second.env);
  pair.processes.push(a, b);
  work = mkdtempSync(join(tmpdir(), 'mg-thumb-route-'));
  [segments] = await Promise.all([
    cutPushSegments(10, work),
    waitForHttp(`${pair.first.httpUrl}/healthz`, a, 120_000),
    waitForHttp(`${pair.second.httpUrl}/healthz`, b, 120_000),
  ]);
});

after(async () => {
  await pair?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function push(base: string, name: string, seq: number, body: Buffer): Promise<void> {
  const answer = await pushSegment(base, name, seq, body);
  assert.equal(answer.status, 200, `push ${name}/${seq}: ${answer.body}`);
}


const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * GET of a thumbnail. With `If-None-Match`, `Cache-Control: max-age=0` as a browser revalidates
 * (fetch would otherwise add `no-cache`, which asks for the full answer: RFC 9111 §5.2.1.4).
 */
async function getThumbnail(base: string, name: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${base}/stream/${name}/thumbnail.jpg`, { headers: headers['if-none-match'] ? { 'cache-control': 'max-age=0', ...headers } : headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

test('the latest keyframe as a JPEG, from a gateway that never saw the stream; it changes as the stream advances', async () => {
  await push(pair.first.httpUrl, 'thumbs', 0, segments[0]!);
  await push(pair.first.httpUrl, 'thumbs', 1, segments[1]!);

  const first = await getThumbnail(pair.second.httpUrl, 'thumbs');
  assert.equal(first.status, 200, first.body.toString());
  assert.equal(first.headers.get('content-type'), 'image/jpeg');
  assert.match(first.headers.get('cache-control') ?? '', /^public, max-age=2$/, 'cached for one (2 s) segment');
  const probed = await probeJpeg(first.body, work);
  assert.equal(probed.codec, 'mjpeg');
  assert.ok(probed.width <= WIDTH_PX, `width ${probed.width} <= ${WIDTH_PX}`);
  assert.equal(probed.width, WIDTH_PX, 'the 640-wide source is scaled down to the configured width');
  const etag = first.headers.get('etag');
  assert.match(etag ?? '', /^"[0-9a-z]+-1"$/, 'the ETag names the session and seq 1');
  const session = /^"([0-9a-z]+)-1"$/.exec(etag!)![1]!;
  liveSession = session;
  liveThumbnails.set(1, first.body);
  const stored = join(pair.first.env['MEDIAGATE_STORAGE_DIR']!, 'thumbs', session, 'thumbnails', '1.jpg');
  assert.ok(existsSync(stored), 'kept in the object store beside the session');
  assert.equal(sha(readFileSync(stored)), sha(first.body));

  // The holder reads the stored one: same picture.
  const again = await getThumbnail(pair.first.httpUrl, 'thumbs');
  assert.equal(sha(again.body), sha(first.body));
  const revalidated = await getThumbnail(pair.first.httpUrl, 'thumbs', { 'if-none-match': etag! });
  assert.equal(revalidated.status, 304);
  assert.equal((await getThumbnail(pair.first.httpUrl, 'thumbs', { 'if-none-match': `"other", ${etag!}` })).status, 304, 'an ETag list');
  assert.equal((await getThumbnail(pair.first.httpUrl, 'thumbs', { 'if-none-match': '"other"' })).status, 200, 'another ETag gets the picture');

  for (let seq = 2; seq < 5; seq++) await push(pair.first.httpUrl, 'thumbs', seq, segments[seq]!);
  const later = await getThumbnail(pair.second.httpUrl, 'thumbs');
  assert.equal(later.status, 200);
  assert.equal(later.headers.get('etag'), `"${session}-4"`);
  assert.notEqual(sha(later.body), sha(first.body), 'a later segment gives another picture');
  liveThumbnails.set(4, later.body);
  assert.ok((await probeJpeg(later.body, work)).width <= WIDTH_PX);
});

test('404 with a clear message for an unknown stream', async () => {
  const res = await getThumbnail(pair.second.httpUrl, 'no-such-stream');
  assert.equal(res.status, 404);
  const body = JSON.parse(res.body.toString()) as { detail: { msg: string; code: string } };
  assert.equal(body.detail.code, 'NOT_FOUND');
  assert.match(body.detail.msg, /stream no-such-stream not found/);
});

test('404 naming the missing video for an audio-only stream', async () => {
  const audioPath = join(work, 'audio-only.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', join(work, 'push-0.ts'), '-map', '0:a:0', '-c', 'copy', '-f', 'mpegts', audioPath]);
  await push(pair.first.httpUrl, 'thumbs-audio', 0, readFileSync(audioPath));
  for (const base of [pair.first.httpUrl, pair.second.httpUrl]) {
    const res = await getThumbnail(base, 'thumbs-audio');
    assert.equal(res.status, 404);
    const body = JSON.parse(res.body.toString()) as { detail: { msg: string; code: string } };
    assert.equal(body.detail.code, 'NOT_FOUND');
    assert.match(body.detail.msg, /stream thumbs-audio has no video/);
  }
});

test('an invalid manifest ID is a 400 and AI result paths still pass through', async () => {
  const bad = await fetch(`${pair.second.httpUrl}/stream/bad.name/thumbnail.jpg`);
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { detail: { code: string } }).detail.code, 'INVALID_NAME');
  const result = await fetch(`${pair.second.httpUrl}/stream/ai-000000000000000000000000/0.png`);
  assert.equal(result.status, 404, 'an AI result path still reaches the result route');
});

test('a recording gets a WebVTT index with one cue per segment and one thumbnail per segment, stored beside it; none for an audio-only one', async () => {
  assert.ok(liveSession, 'the live test ran first');
  const base = `${pair.second.httpUrl}/recordings/thumbs/${liveSession}`;
  // Ready once the push went idle (3 s) and the sweep finished the recording.
  let vtt: Response | undefined;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    vtt = await fetch(`${base}/thumbnails.vtt`);
    if (vtt.status !== 409) break;
    await vtt.arrayBuffer();
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(vtt!.status, 200, await vtt!.clone().text());
  assert.equal(vtt!.headers.get('content-type'), 'text/vtt; charset=utf-8');
  const text = await vtt!.text();
  const cues = [...text.matchAll(/^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(\S+)$/gm)];
  assert.ok(text.startsWith('WEBVTT\n'));
  assert.deepEqual(cues.map((c) => c[3]), [0, 1, 2, 3, 4].map((seq) => `thumbnails/${seq}.jpg`), 'one cue per pushed segment');
  assert.equal(cues[0]![1], '00:00:00.000');
  for (let i = 1; i < cues.length; i++) assert.equal(cues[i]![1], cues[i - 1]![2], 'cues follow each other on the timeline');
  assert.match(cues[4]![2]!, /^00:00:(09|10)\.\d{3}$/, 'five 2 s segments end near 10 s');

  const hashes = new Set<string>();
  for (const c of cues) {
    const res = await fetch(new URL(c[3]!, `${base}/thumbnails.vtt`));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    const jpeg = Buffer.from(await res.arrayBuffer());
    assert.ok((await probeJpeg(jpeg, work)).width <= WIDTH_PX);
    hashes.add(sha(jpeg));
  }
  assert.equal(hashes.size, 5, 'five different pictures');
  const seqs = readdirSync(join(pair.first.env['MEDIAGATE_STORAGE_DIR']!, 'thumbs', liveSession, 'thumbnails')).sort();
  assert.deepEqual(seqs, ['0.jpg', '1.jpg', '2.jpg', '3.jpg', '4.jpg'], 'stored beside the recording');
  for (const [seq, live] of liveThumbnails) {
    assert.equal(sha(readFileSync(join(pair.first.env['MEDIAGATE_STORAGE_DIR']!, 'thumbs', liveSession, 'thumbnails', `${seq}.jpg`))), sha(live), `seq ${seq}: the live one, not made again`);
  }
  const missing = await fetch(`${base}/thumbnails/7.jpg`);
  assert.equal(missing.status, 404);

  const recordings = await (await fetch(`${pair.second.httpUrl}/api/streams/thumbs-audio/recordings`)).json() as { recordings: { session: string; state: string }[] };
  const audio = recordings.recordings[0]!;
  assert.equal(audio.state, 'ready');
  const audioVtt = await fetch(`${pair.second.httpUrl}/recordings/thumbs-audio/${audio.session}/thumbnails.vtt`);
  assert.equal(audioVtt.status, 404);
  assert.match(((await audioVtt.json()) as { detail: { msg: string } }).detail.msg, /has no video/);
});
