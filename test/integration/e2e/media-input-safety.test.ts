/**
 * Client bytes must never make ffmpeg/ffprobe read anything but themselves. A real gateway
 * process on 127.0.0.1 gets an HLS playlist, an ffconcat script and an MP4 whose track data
 * is a reference to another file, pushed as `.ts` and `.mp4`, and an HLS playlist behind an
 * ID3 tag as an audio-to-text upload. The local "secret" media is real ffmpeg output with a
 * marker string in an H.264 SEI message, so any copy of it in storage is found by that string.
 *
 * Whether a local file is opened at all is seen with a tripwire: a named pipe (FIFO) whose
 * writer, a `cat secret.ts > fifo` started by the test, stays blocked until something opens
 * the pipe for reading. Any ffmpeg/ffprobe following the playlist opens it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { craftExternalReferenceMp4 } from '../../helpers/mp4-dref.ts';
import { tripwire, type Tripwire } from '../../helpers/tripwire.ts';

const run = promisify(execFile);
const MARKER = `MGSECRET${randomBytes(6).toString('hex')}`;
let redis: TestRedis;
let deployment: TestDeployment;
let gateway: MediagateProcess;
let secrets: string;
let secretTs: string;
let secretMp4: string;
const wires: Tripwire[] = [];

/** A tripwire at `path` that delivers the secret MPEG-TS when opened. */
async function secretWire(path: string): Promise<Tripwire> {
  const w = await tripwire(path, secretTs);
  wires.push(w);
  return w;
}

/** 2 s of testsrc (208x120, H.264 + AAC for MPEG-TS, video only for MP4), with `marker` in an SEI user-data message when given. */
async function encodeTestsrc(path: string, format: 'mpegts' | 'mp4', marker?: string): Promise<void> {
  const audio = format === 'mpegts' ? ['-f', 'lavfi', '-i', 'sine=frequency=440', '-c:a', 'aac'] : [];
  const sei = marker ? ['-bsf:v', `h264_metadata=sei_user_data=086f3693-b7b3-4f2c-9653-21492feee5b8+${marker}`] : [];
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=208x120:rate=30', ...audio,
    '-t', '2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '60', ...sei, '-f', format, path]);
}

before(async () => {
  redis = await startRedis();
  deployment = await testDeployment(redis.url, { MEDIAGATE_LADDER: 'P144p30fps16x9' });
  gateway = spawnMediagate('gateway', deployment.env);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  secrets = mkdtempSync(join(tmpdir(), 'mg-secret-'));
  secretTs = join(secrets, 'secret.ts');
  secretMp4 = join(secrets, 'secret.mp4');
  await encodeTestsrc(secretTs, 'mpegts', MARKER);
  await encodeTestsrc(secretMp4, 'mp4', MARKER);
  assert.ok(readFileSync(secretTs).includes(MARKER) && readFileSync(secretMp4).includes(MARKER), 'the secret media carries the marker');
});

after(async () => {
  for (const w of wires) w.close();
  await gateway?.stop();
  await redis?.stop();
  deployment?.cleanup();
  if (secrets) rmSync(secrets, { recursive: true, force: true });
});

function push(name: string, ext: 'ts' | 'mp4', body: Buffer): Promise<Response> {
  return fetch(`${deployment.httpUrl}/live/${name}/0.${ext}`, { method: 'POST', body });
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    const s = statSync(p);
    if (s.isDirectory()) out = out.concat(filesUnder(p));
    else if (s.isFile()) out.push(p);
  }
  return out;
}

/**
 * The refusal every indirect input must get: the tripwire (if any) never opened, 422 with the
 * JSON error body naming `what`, nothing listed, nothing of the secret stored.
 */
async function assertRefused(res: Response, name: string, what: RegExp, wire?: Tripwire): Promise<void> {
  const text = await res.text();
  if (wire) assert.equal(await wire.wasOpened(), false, `the local file ${wire.path} was opened (answer ${res.status}: ${text})`);
  assert.equal(res.status, 422, text);
  const body = JSON.parse(text) as { detail: { msg: string; code: string } };
  assert.equal(body.detail.code, 'UNDECODABLE_MEDIA');
  assert.match(body.detail.msg, what);
  const source = await fetch(`${deployment.httpUrl}/stream/${name}/source.m3u8`);
  const listing = source.status === 200 ? await source.text() : '';
  assert.ok(!/\.ts\s*$/m.test(listing), `nothing listed for ${name}:\n${listing}`);
  for (const file of filesUnder(deployment.dataDir)) {
    assert.ok(!readFileSync(file).includes(MARKER), `${file} holds none of the local secret`);
  }
}

for (const ext of ['mp4', 'ts'] as const) {
  test(`an HLS playlist of local files pushed as .${ext} is refused as a playlist and no local file is opened`, { timeout: 60_000 }, async () => {
    const wire = await secretWire(join(secrets, `wire-hls-${ext}.ts`));
    const playlist = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${secretTs}\n#EXTINF:2.0,\n${wire.path}\n#EXT-X-ENDLIST\n`;
    const name = `hls-as-${ext}`;
    await assertRefused(await push(name, ext, Buffer.from(playlist)), name, /HLS playlist/, wire);
  });

  test(`an ffconcat script pushed as .${ext} is refused as a concat script and the file it names is never opened`, { timeout: 60_000 }, async () => {
    // The concat demuxer's safe mode only takes plain relative names: the file sits next to the pushed body.
    const pushDir = join(deployment.dataDir, 'work', 'push');
    mkdirSync(pushDir, { recursive: true });
    const wire = await secretWire(join(pushDir, `wire-concat-${ext}.ts`));
    try {
      const script = `ffconcat version 1.0\nfile 'wire-concat-${ext}.ts'\n`;
      const name = `concat-as-${ext}`;
      await assertRefused(await push(name, ext, Buffer.from(script)), name, /concat script/, wire);
    } finally {
      wire.close();
    }
  });
}

test('the crafted MP4 with an alias data reference really makes ffmpeg read the other file when drefs are enabled', { timeout: 60_000 }, async () => {
  // The control: without it the refusal below could be refusing a harmless file.
  const dir = mkdtempSync(join(secrets, 'control-'));
  const crafted = join(dir, 'crafted.mp4');
  writeFileSync(crafted, craftExternalReferenceMp4(readFileSync(secretMp4), secretMp4, dir));
  assert.ok(!readFileSync(crafted).includes(MARKER), 'the crafted file itself holds none of the secret');
  const out = join(dir, 'out.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-enable_drefs', '1', '-i', crafted, '-c', 'copy', '-f', 'mpegts', out]);
  assert.ok(readFileSync(out).includes(MARKER), 'with enable_drefs 1 ffmpeg copied the referenced file\'s media');
});

test('an .mp4 whose track data is an external reference to a local file is refused and the file is not read', { timeout: 60_000 }, async () => {
  const pushDir = join(deployment.dataDir, 'work', 'push');
  const body = craftExternalReferenceMp4(readFileSync(secretMp4), secretMp4, pushDir);
  const name = 'dref-mp4';
  await assertRefused(await push(name, 'mp4', body), name, /external data reference \(dref 'alis'\)/);
});

test('an audio-to-text upload that is an HLS playlist behind an ID3 tag opens no local file', { timeout: 60_000 }, async () => {
  const wire = await secretWire(join(secrets, 'wire-audio.ts'));
  // An empty ID3v2.4 tag: ffmpeg skips ID3 tags before guessing the format, so the playlist would be probed as HLS.
  const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0]);
  const playlist = Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${wire.path}\n#EXT-X-ENDLIST\n`);
  const form = new FormData();
  form.append('audio', new Blob([Buffer.concat([id3, playlist])], { type: 'audio/mpeg' }), 'a.mp3');
  const res = await fetch(`${deployment.httpUrl}/audio-to-text`, { method: 'POST', body: form });
  const text = await res.text();
  assert.equal(await wire.wasOpened(), false, `the playlist's local segment was opened (answer ${res.status}: ${text})`);
  assert.equal(res.status, 422, text);
  assert.equal((JSON.parse(text) as { detail: { code: string } }).detail.code, 'UNDECODABLE_MEDIA');
});

test('the gateway is still up and takes a real segment after the refusals', { timeout: 120_000 }, async () => {
  const plain = join(secrets, 'plain.ts');
  await encodeTestsrc(plain, 'mpegts');
  const res = await push('after-refusals', 'ts', readFileSync(plain));
  assert.equal(res.status, 200, await res.clone().text());
  const list = await (await fetch(`${deployment.httpUrl}/stream/after-refusals/source.m3u8`)).text();
  assert.match(list, /0\.ts/);
});
