/**
 * Recordings end to end: a real gateway process (embedded transcoder, one-rendition ladder)
 * with `recording.enabled`, a real redis-server, the clip published over RTMP in real time by
 * ffmpeg. Once the stream ends, its VOD playlists must decode to their end, list every
 * segment (each one served), and each rendition's MP4 must last what its EXTINF add up to.
 * Publishing the same manifest ID again makes a second recording and leaves the first intact.
 * Run once per object store: recording.test.ts (fs) and recording-s3.test.ts (s3rver, or the
 * endpoint MEDIAGATE_TEST_S3_ENDPOINT names).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, setOptions, types } from 'hls-parser';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, publish, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { startReceiver, type TestReceiver } from '../events/receiver.ts';
import { e2eStore, type E2eStorage, type E2eStore } from '../../helpers/s3rver.ts';
import { listAll } from '../../../src/storage/object-store.ts';

setOptions({ strictMode: true });
const run = promisify(execFile);
const MANIFEST_ID = 'rec-cam';
const RENDITION = 'P144p30fps16x9';

/** Registers the suite in the calling test file, on the given object store (`fs` or `s3`). */
export function recordingSuite(storage: E2eStorage): void {
  let redis: TestRedis;
  let deployment: TestDeployment;
  let gateway: MediagateProcess;
  let receiver: TestReceiver;
  let store: E2eStore;

  before(async () => {
    redis = await startRedis();
    receiver = await startReceiver();
    store = await e2eStore(storage, join(tmpdir(), 'mg-rec-store'));
    deployment = await testDeployment(redis.url, {
      ...store.env,
      MEDIAGATE_LADDER: RENDITION,
      MEDIAGATE_RECORDING_ENABLED: 'true',
      MEDIAGATE_RETENTION_SWEEP_INTERVAL_MS: '300',
      MEDIAGATE_EVENTS_WEBHOOK_URLS: receiver.url,
      MEDIAGATE_LOG_LEVEL: 'info',
    });
    gateway = spawnMediagate('gateway', deployment.env);
    await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  });

  after(async () => {
    await gateway?.stop();
    await receiver?.close();
    await redis?.stop();
    await store?.close();
    deployment?.cleanup();
  });

  interface Recording { session: string; state: string; durationMs?: number; playbackUrl?: string; renditions?: { name: string; segments: number; mp4Url: string; playlistUrl: string }[] }

  async function recordings(): Promise<Recording[]> {
    const res = await fetch(`${deployment.httpUrl}/api/streams/${MANIFEST_ID}/recordings`);
    assert.equal(res.status, 200);
    return ((await res.json()) as { recordings: Recording[] }).recordings;
  }

  async function waitForReady(count: number, timeoutMs: number): Promise<Recording[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = await recordings();
      if (list.length >= count && list.every((r) => r.state === 'ready')) return list;
      if (Date.now() > deadline) throw new Error(`recordings not ready: ${JSON.stringify(list)}\n${gateway.lines.slice(-15).join('\n')}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async function text(url: string): Promise<string> {
    const res = await fetch(url);
    assert.equal(res.status, 200, `${url}: ${res.status}`);
    return res.text();
  }

  /** sha256 of every segment a media playlist lists, by URI. */
  async function segmentHashes(playlistUrl: string, media: types.MediaPlaylist): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const s of media.segments) {
      const res = await fetch(new URL(s.uri, playlistUrl));
      assert.equal(res.status, 200, `segment ${s.uri} is served`);
      out.set(s.uri, createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex'));
    }
    return out;
  }

  /** Sessions of the manifest ID that have objects in the store. */
  async function sessionsWithObjects(): Promise<string[]> {
    if (!store.stores) return readdirSync(join(deployment.dataDir, 'objects', MANIFEST_ID));
    const sessions = new Set<string>();
    for await (const o of listAll(store.stores.media, `${MANIFEST_ID}/`)) sessions.add(o.key.split('/')[1]!);
    return [...sessions];
  }

  /** Publishes the first `seconds` of the clip in real time; `whileLive` runs once the session is listed as a recording. */
  async function publishClip(seconds: number, whileLive?: (session: string) => Promise<void>): Promise<void> {
    const publisher = publish(await clipWith2sGop(seconds), `rtmp://127.0.0.1:${deployment.rtmpPort}/live/${MANIFEST_ID}`);
    if (whileLive) {
      let live: Recording | undefined;
      while (!live) {
        await new Promise((r) => setTimeout(r, 200));
        live = (await recordings()).find((r) => r.state === 'recording');
      }
      await whileLive(live.session);
    }
    assert.equal(await publisher.exited, 0, publisher.stderr());
  }

  test('a recorded stream becomes a VOD recording that decodes to its end, with every segment, and MP4s as long as their EXTINF sum; a republish leaves it intact', { timeout: 170_000 }, async (t) => {
    await publishClip(30, async (session) => {
      // While it is being made, a recording can be neither played nor deleted.
      for (const [url, method] of [[`${deployment.httpUrl}/recordings/${MANIFEST_ID}/${session}/index.m3u8`, 'GET'], [`${deployment.httpUrl}/api/streams/${MANIFEST_ID}/recordings/${session}`, 'DELETE']] as const) {
        const res = await fetch(url, { method });
        assert.equal(res.status, 409, `${method} ${url}`);
        assert.equal(((await res.json()) as { detail: { code: string } }).detail.code, 'RECORDING_IN_PROGRESS');
      }
      assert.equal((await fetch(`${deployment.httpUrl}/recordings/${MANIFEST_ID}/index.m3u8`)).status, 404, 'no finished recording yet');
    });
    const [first] = await waitForReady(1, 60_000);
    assert.ok(first!.playbackUrl && first!.renditions, JSON.stringify(first));
    assert.deepEqual(first!.renditions!.map((r) => r.name), ['source', RENDITION]);

    // The latest-session path serves the same master with the session in its URIs.
    const latest = parse(await text(`${deployment.httpUrl}/recordings/${MANIFEST_ID}/index.m3u8`)) as types.MasterPlaylist;
    assert.deepEqual(latest.variants.map((v) => v.uri), [`${first!.session}/source.m3u8`, `${first!.session}/${RENDITION}.m3u8`]);
    const master = parse(await text(first!.playbackUrl!)) as types.MasterPlaylist;
    assert.deepEqual(master.variants.map((v) => v.uri), ['source.m3u8', `${RENDITION}.m3u8`]);

    const hashes = new Map<string, Map<string, string>>();
    for (const rendition of first!.renditions!) {
      const media = parse(await text(rendition.playlistUrl)) as types.MediaPlaylist;
      assert.equal(media.playlistType, 'VOD');
      assert.equal(media.endlist, true);
      assert.equal(media.mediaSequenceBase ?? 0, 0);
      const seqs = media.segments.map((s) => Number(/\/(\d+)\.ts$/.exec(s.uri)![1]));
      // ~30 s in ~2 s segments, from seq 0 with none missing (a lost one would be a discontinuity).
      assert.equal(seqs[0], 0, `${rendition.name} starts at seq 0`);
      assert.deepEqual(seqs, seqs.map((_, i) => i), `${rendition.name} lists every seq`);
      assert.ok(seqs.length >= 13, `${rendition.name} has ${seqs.length} segments`);
      assert.equal(rendition.segments, seqs.length);
      hashes.set(rendition.name, await segmentHashes(rendition.playlistUrl, media));

      // The VOD playlist decodes to its end.
      const decoded = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', rendition.playlistUrl, '-map', '0', '-f', 'null', '-']);
      assert.equal(decoded.stderr.trim(), '', `${rendition.name} decodes without an error`);

      // The MP4 lasts the sum of the EXTINF (within 0.1 s).
      const extinfS = media.segments.reduce((sum, s) => sum + s.duration, 0);
      const res = await fetch(rendition.mp4Url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'video/mp4');
      const mp4 = join(deployment.dataDir, `${rendition.name}.mp4`);
      writeFileSync(mp4, Buffer.from(await res.arrayBuffer()));
      const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', mp4]);
      const info = JSON.parse(probe.stdout) as { format: { duration: string }; streams: { codec_name: string }[] };
      assert.deepEqual(info.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'stream copy: H.264 and AAC, nothing re-encoded');
      const mp4S = Number(info.format.duration);
      assert.ok(Math.abs(mp4S - extinfS) <= 0.1, `${rendition.name}: MP4 ${mp4S} s vs EXTINF sum ${extinfS} s`);
      t.diagnostic(`${rendition.name}: ${seqs.length} segments, EXTINF sum ${extinfS.toFixed(3)} s, MP4 ${mp4S.toFixed(3)} s`);
      const mp4Decoded = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', mp4, '-f', 'null', '-']);
      assert.equal(mp4Decoded.stderr.trim(), '', `${rendition.name}.mp4 decodes without an error`);
    }
    const events = receiver.received.map((r) => JSON.parse(r.body) as { type: string; data: { session: string; hlsUrl: string; mp4Urls: Record<string, string> } });
    const ready = events.find((e) => e.type === 'recording.ready' && e.data.session === first!.session);
    assert.ok(ready, `recording.ready was delivered: ${events.map((e) => e.type).join(', ')}`);
    assert.equal(ready!.data.hlsUrl, first!.playbackUrl);
    assert.deepEqual(Object.keys(ready!.data.mp4Urls), ['source', RENDITION]);

    // Nothing is left in the work directory once the stream ended.
    for (const dir of ['segmenter', 'transcode']) {
      assert.deepEqual(readdirSync(join(deployment.dataDir, 'work', dir)), [], `work/${dir} is empty`);
    }

    // Republish the same manifest ID: a second recording; the first is untouched.
    await publishClip(8);
    const both = await waitForReady(2, 60_000);
    assert.equal(both.length, 2);
    assert.equal(both[1]!.session, first!.session, 'newest first');
    assert.notEqual(both[0]!.session, first!.session);
    for (const rendition of first!.renditions!) {
      const media = parse(await text(rendition.playlistUrl)) as types.MediaPlaylist;
      assert.deepEqual(await segmentHashes(rendition.playlistUrl, media), hashes.get(rendition.name), `${rendition.name} of the first recording is unchanged`);
    }
    const newest = parse(await text(`${deployment.httpUrl}/recordings/${MANIFEST_ID}/index.m3u8`)) as types.MasterPlaylist;
    assert.ok(newest.variants[0]!.uri.startsWith(`${both[0]!.session}/`), 'the latest path follows the newest recording');

    // Deleting the first recording removes it; the second stays.
    const del = await fetch(`${deployment.httpUrl}/api/streams/${MANIFEST_ID}/recordings/${first!.session}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal((await fetch(first!.playbackUrl!)).status, 404);
    assert.equal((await fetch(new URL(`${first!.session}`, `${deployment.httpUrl}/recordings/${MANIFEST_ID}/`))).status, 400);
    assert.deepEqual((await recordings()).map((r) => r.session), [both[0]!.session]);
    assert.deepEqual(await sessionsWithObjects(), [both[0]!.session], 'only the second session has objects');
  });
}
