/**
 * End to end: the gateway as a real process (cmd/gateway.ts, embedded transcoder), a real
 * redis-server, the real clip published in real time over RTMP with ffmpeg, and the HLS
 * output checked with hls-parser (strict), ffprobe and ffmpeg. Run once per object store:
 * rtmp-to-hls.test.ts (fs) and rtmp-to-hls-s3.test.ts (s3).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { clipWith2sGop, CLIP } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, fetchText, seqOf, probeSegment, decodeErrors, waitForEndedPlaylists, type MediaPlaylist } from '../../helpers/hls.ts';
import { e2eStore, type E2eStorage, type E2eStore } from '../../helpers/s3rver.ts';
import { listAll } from '../../../src/storage/object-store.ts';

const STREAM_KEY = 'e2e-SECRET-key-7f3a9c';
const MANIFEST_ID = 'bunny';
const LADDER = ['P360p30fps16x9', 'P240p30fps16x9', 'P144p30fps16x9'];
/**
 * The renditions the clip gets: P360p30fps16x9 fits to 640x360, the clip's own size, so it is
 * left out (a ladder fits its source, src/domain/ladder-fit.ts); listed by bandwidth under the source.
 */
const RENDITIONS = LADDER.filter((name) => name !== 'P360p30fps16x9');
/** fitRendition of each ladder profile for the clip's 640x360 source. */
const EXPECTED_SIZES: Record<string, string> = { source: '640x360', P360p30fps16x9: '640x360', P240p30fps16x9: '426x240', P144p30fps16x9: '256x144' };
const PUBLISH_SECONDS = 22;

/**
 * Registers the suite (hooks and tests) in the calling test file, on the given object store:
 * `fs` (a directory of the deployment) or `s3` (s3rver, or the endpoint MEDIAGATE_TEST_S3_ENDPOINT
 * names; test/helpers/s3rver.ts).
 */
export function rtmpToHlsSuite(storage: E2eStorage): void {
  let store: E2eStore;
  const gateway = gatewayForSuite(async () => {
    store = await e2eStore(storage, join(tmpdir(), 'mg-e2e-store'));
    return {
      ...store.env,
      MEDIAGATE_LADDER: LADDER.join(','),
      MEDIAGATE_STREAM_KEYS: JSON.stringify([{ streamKey: STREAM_KEY, manifestID: MANIFEST_ID }]),
    };
  });
  after(async () => {
    await store?.close();
  });

  test('a real-time RTMP publish of the clip becomes a playable ABR HLS ladder that ends after unpublish', { timeout: 180_000 }, async () => {
    const input = await clipWith2sGop(PUBLISH_SECONDS);
    const masterUrl = `${gateway.httpUrl}/stream/${MANIFEST_ID}.m3u8`;
    const startedAt = Date.now();
    const publisher = publish(input, gateway.rtmpUrl(STREAM_KEY));

    // While publishing: poll every playlist, remember every segment seen and when each rendition listed its first one.
    const seen = new Map<string, Set<number>>();
    const firstListedMs = new Map<string, number>();
    const mediaSequences = new Map<string, number[]>();
    let publisherDone = false;
    void publisher.exited.then(() => { publisherDone = true; });
    let secondPublisherCode: number | null | undefined;
    let finals: Map<string, MediaPlaylist> | undefined;
    const deadline = Date.now() + (PUBLISH_SECONDS + 90) * 1000;

    while (Date.now() < deadline) {
      const master = await fetchMaster(masterUrl);
      if (master) {
        const lists = new Map<string, MediaPlaylist>();
        for (const v of master.variants) {
          const rendition = v.uri.split('/')[1]!.replace('.m3u8', '');
          const media = await fetchMedia(`${gateway.httpUrl}/stream/${v.uri}`);
          lists.set(rendition, media);
          const set = seen.get(rendition) ?? new Set<number>();
          for (const s of media.segments) set.add(seqOf(s.uri));
          seen.set(rendition, set);
          if (media.segments.length > 0 && !firstListedMs.has(rendition)) firstListedMs.set(rendition, Date.now() - startedAt);
          mediaSequences.set(rendition, [...(mediaSequences.get(rendition) ?? []), media.mediaSequenceBase ?? 0]);
        }
        if (secondPublisherCode === undefined && (seen.get('source')?.size ?? 0) >= 2) {
          // A second publisher on the live key is refused while the first keeps going.
          const second = publish(input, gateway.rtmpUrl(STREAM_KEY));
          const killer = setTimeout(() => second.child.kill('SIGKILL'), 15_000);
          secondPublisherCode = await second.exited;
          clearTimeout(killer);
          assert.equal(publisherDone, false, 'the first publisher is still live');
        }
        if (publisherDone && lists.size === RENDITIONS.length + 1 && [...lists.values()].every((m) => m.endlist)) {
          finals = lists;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(await publisher.exited, 0, `publisher failed: ${publisher.stderr()}`);
    assert.notEqual(secondPublisherCode, 0, 'the second publisher was refused');
    assert.ok(finals, `every rendition playlist ended with ENDLIST within the deadline; gateway log tail:\n${gateway.proc.lines.slice(-15).join('\n')}`);

    // Master: source first, then every rendition the clip gets, by bandwidth, with its real resolution, bandwidth and codecs.
    const master = (await fetchMaster(masterUrl))!;
    const names = master.variants.map((v) => v.uri.split('/')[1]!.replace('.m3u8', ''));
    assert.deepEqual(names, ['source', ...RENDITIONS]);
    for (const v of master.variants) {
      const rendition = v.uri.split('/')[1]!.replace('.m3u8', '');
      assert.equal(`${v.resolution?.width}x${v.resolution?.height}`, EXPECTED_SIZES[rendition], `${rendition} RESOLUTION`);
      assert.ok(v.bandwidth > 50_000 && v.bandwidth < 5_000_000, `${rendition} BANDWIDTH ${v.bandwidth} is a measured bitrate`);
      assert.match(v.codecs ?? '', /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, `${rendition} CODECS`);
      assert.equal(v.frameRate, 24, `${rendition} FRAME-RATE`);
    }

    const sourceSeqs = [...seen.get('source')!].sort((a, b) => a - b);
    const segmentCount = sourceSeqs.length;
    assert.ok(segmentCount >= 10, `about ${PUBLISH_SECONDS / 2} source segments, got ${segmentCount}`);
    for (const rendition of names) {
      const seqs = [...seen.get(rendition)!].sort((a, b) => a - b);
      // In sequence with no gaps: every seq 0..N-1 was listed, in every rendition.
      assert.deepEqual(seqs, Array.from({ length: segmentCount }, (_, i) => i), `${rendition} lists every segment`);
      const final: MediaPlaylist = finals!.get(rendition)!;
      assert.ok(final.segments.length <= 6, 'live window of 6');
      const finalSeqs: number[] = final.segments.map((s) => seqOf(s.uri));
      assert.deepEqual(finalSeqs, finalSeqs.map((_, i) => finalSeqs[0]! + i), `${rendition} window is contiguous`);
      assert.equal(final.mediaSequenceBase, finalSeqs[0], `${rendition} media sequence matches the first listed seq`);
      const ms = mediaSequences.get(rendition)!;
      assert.ok(ms.every((v, i) => i === 0 || v >= ms[i - 1]!), `${rendition} media sequence never decreases`);
      assert.ok(final.segments.every((s) => Math.ceil(Number(s.duration.toFixed(3))) <= final.targetDuration), 'TARGETDURATION covers every EXTINF');
    }

    // Every segment decodes at its rendition's resolution, and timestamps run on across segment boundaries.
    for (const rendition of names) {
      const [w, h] = EXPECTED_SIZES[rendition]!.split('x').map(Number);
      let previous: Awaited<ReturnType<typeof probeSegment>> | undefined;
      for (const seq of sourceSeqs) {
        const url = `${gateway.httpUrl}/stream/${MANIFEST_ID}/${rendition}/${seq}.ts`;
        const p = await probeSegment(url);
        assert.deepEqual([p.width, p.height], [w, h], `${rendition}/${seq} size`);
        if (previous && seq < segmentCount - 1) {
          const gapS = p.firstPtsS - (previous.lastPtsS + previous.frameDurationS);
          assert.ok(Math.abs(gapS) <= previous.frameDurationS + 1e-3, `${rendition} ${seq - 1}→${seq}: gap ${gapS.toFixed(4)} s exceeds one frame`);
        }
        previous = p;
      }
      assert.equal(await decodeErrors(`${gateway.httpUrl}/stream/${MANIFEST_ID}/${rendition}/0.ts`), '', `${rendition}/0.ts decodes cleanly`);
      assert.equal(await decodeErrors(`${gateway.httpUrl}/stream/${MANIFEST_ID}/${rendition}.m3u8`), '', `${rendition} playlist decodes cleanly`);
    }

    // The secret stream key appears in no playlist and no log line.
    const masterText = (await fetchText(masterUrl)).text;
    assert.ok(!masterText.includes(STREAM_KEY));
    for (const rendition of names) assert.ok(!(await fetchText(`${gateway.httpUrl}/stream/${MANIFEST_ID}/${rendition}.m3u8`)).text.includes(STREAM_KEY));
    const leaked = gateway.proc.lines.filter((l) => l.includes(STREAM_KEY));
    assert.deepEqual(leaked, [], 'stream key never logged');
    assert.ok(gateway.proc.lines.some((l) => l.includes(`/stream/${MANIFEST_ID}.m3u8`)), 'the playback URL is logged when the stream starts');

    const timings = Object.fromEntries([...firstListedMs].map(([r, ms]) => [r, ms]));
    process.stdout.write(`# first segment listed (ms after publish start): ${JSON.stringify(timings)}\n`);
    const transcoded = gateway.proc.lines.filter((l) => l.includes('"msg":"segment transcoded"')).map((l) => JSON.parse(l) as { elapsedMs: number; realTimeRatio: number });
    assert.equal(transcoded.length, segmentCount, 'each segment transcoded once');
    if (transcoded.length) {
      const ratios = transcoded.map((t) => t.realTimeRatio).sort((a, b) => a - b);
      process.stdout.write(`# per-segment transcode real-time ratio (segment duration / wall time): median ${ratios[Math.floor(ratios.length / 2)]} min ${ratios[0]}\n`);
    }
  });

  test('RTMP source segments are measured in process with the frames ffprobe counts, and the segmenter work dir is gone once the stream ended', async () => {
    const listed = gateway.proc.lines
      .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
      .filter((o): o is Record<string, unknown> => o?.['msg'] === 'source segment listed' && o['manifestID'] === MANIFEST_ID);
    assert.ok(listed.length >= 8, `expected every source segment of the ${PUBLISH_SECONDS} s publish in the log, got ${listed.length}`);
    // No ffprobe for an RTMP stream, not even at its start: the segmenter measures every segment as it muxes it.
    assert.deepEqual(listed.filter((o) => o['measuredBy'] !== 'segmenter'), [], `measured by the segmenter: ${JSON.stringify(listed.map((o) => o['measuredBy']))}`);
    for (const o of listed) {
      const probe = await probeSegment(`${gateway.httpUrl}/stream/${MANIFEST_ID}/source/${String(o['seq'])}.ts`);
      assert.equal(o['frames'], probe.frames, `seq ${String(o['seq'])} (${String(o['measuredBy'])}): frames listed vs ffprobe`);
    }
    const segmenterDir = join(gateway.deployment.dataDir, 'work', 'segmenter');
    assert.deepEqual(existsSync(segmenterDir) ? readdirSync(segmenterDir, { recursive: true }) : [], [], 'segmenter files left behind');
  });

  test('playback answers with the contract headers', async () => {
    const master = await fetch(`${gateway.httpUrl}/stream/${MANIFEST_ID}.m3u8`);
    assert.equal(master.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    assert.equal(master.headers.get('access-control-allow-origin'), '*');
    const seg = await fetch(`${gateway.httpUrl}/stream/${MANIFEST_ID}/source/0.ts`);
    assert.equal(seg.status, 200);
    assert.equal(seg.headers.get('content-type'), 'video/mp2t');
    assert.match(seg.headers.get('cache-control') ?? '', /immutable/);
    assert.ok((await seg.arrayBuffer()).byteLength > 1000);
  });

  test('bad playback paths get 400 or 404 with a message naming the problem', async () => {
    const cases: [string, number, RegExp][] = [
      [`/stream/..%2F..%2Fetc.m3u8`, 400, /invalid playback path/],
      [`/stream/${MANIFEST_ID}/source/01.ts`, 400, /invalid playback path/],
      [`/stream/${MANIFEST_ID}/source/abc.ts`, 400, /invalid playback path/],
      [`/stream/nosuchstream.m3u8`, 404, /stream nosuchstream not found/],
      [`/stream/${MANIFEST_ID}/P1080p.m3u8`, 404, /has no rendition P1080p/],
      [`/stream/${MANIFEST_ID}/source/9999.ts`, 404, /not found/],
      [`/stream/${STREAM_KEY}.m3u8`, 404, /not found/],
    ];
    for (const [path, status, message] of cases) {
      const res = await fetch(`${gateway.httpUrl}${path}`);
      const body = (await res.json()) as { detail: { msg: string; code: string } };
      assert.equal(res.status, status, path);
      assert.match(body.detail.msg, message, path);
    }
  });

  test('publishes with an unknown key or a malformed name are refused and nothing is stored', async () => {
    for (const key of ['not-a-configured-key', 'bad.name']) {
      const p = publish(await clipWith2sGop(PUBLISH_SECONDS), gateway.rtmpUrl(key));
      const killer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
      const code = await p.exited;
      clearTimeout(killer);
      assert.notEqual(code, 0, `${key} refused`);
    }
    const res = await fetch(`${gateway.httpUrl}/stream/not-a-configured-key.m3u8`);
    assert.equal(res.status, 404);
    const health = await fetch(`${gateway.httpUrl}/healthz`);
    assert.equal(health.status, 200, 'the gateway is still up');
  });

  test('the original clip with keyframes up to 10 s apart is published as-is: long segments, a warning, and a complete ladder', { timeout: 180_000 }, async () => {
    const linesBefore = gateway.proc.lines.length;
    const publisher = publish(CLIP, gateway.rtmpUrl(STREAM_KEY), ['-t', '24']);
    assert.equal(await publisher.exited, 0, publisher.stderr());
    const lists = await waitForEndedPlaylists(gateway.httpUrl, MANIFEST_ID, RENDITIONS.length + 1, 90_000);
    const sourceSeqs = lists[0]!.segments.map((s) => seqOf(s.uri));
    assert.ok(sourceSeqs.length >= 3, `a few long segments, got ${sourceSeqs.length}`);
    for (const m of lists) {
      assert.deepEqual(m.segments.map((s) => seqOf(s.uri)), sourceSeqs, 'every rendition lists the same segments');
      assert.ok(m.targetDuration >= 11, `TARGETDURATION ${m.targetDuration} covers the 10.4 s first GOP`);
      assert.ok(m.segments[0]!.duration > 10, 'the first segment runs to the first keyframe after 2 s (10.42 s)');
    }
    for (const rendition of ['source', ...RENDITIONS]) {
      assert.equal(await decodeErrors(`${gateway.httpUrl}/stream/${MANIFEST_ID}/${rendition}.m3u8`), '', `${rendition} decodes`);
    }
    const warned = gateway.proc.lines.slice(linesBefore).some((l) => l.includes('publisher keyframes are far apart'));
    assert.ok(warned, 'the gateway warns about the long keyframe interval');
  });

  if (storage === 's3') {
    test('on S3, every segment is an object in the bucket and none is a file on the gateway host', async () => {
      const keys: string[] = [];
      for await (const o of listAll(store.stores!.media, `${MANIFEST_ID}/`)) keys.push(o.key);
      for (const rendition of ['source', ...RENDITIONS]) {
        assert.ok(keys.some((k) => new RegExp(`^${MANIFEST_ID}/[^/]+/${rendition}/0\\.ts$`).test(k)), `${rendition}/0.ts is in the bucket`);
      }
      assert.equal(existsSync(join(gateway.deployment.dataDir, 'objects')), false, 'nothing written under storage.dir');
      const downloads = join(gateway.deployment.dataDir, 'work', 'storage');
      assert.deepEqual(existsSync(downloads) ? readdirSync(downloads) : [], [], 'the transcoder\'s downloads are deleted');
    });
  }

  test('SIGTERM shuts the gateway down cleanly with no ffmpeg left behind', async () => {
    gateway.proc.child.kill('SIGTERM');
    const { code } = await gateway.proc.exited;
    assert.equal(code, 0);
    const leftovers = execSync('ps -eo args').toString().split('\n').filter((l) => l.includes('ffmpeg') && l.includes(gateway.deployment.dataDir));
    assert.deepEqual(leftovers, []);
    assert.ok(gateway.proc.lines.some((l) => l.includes('"msg":"stopped"')));
  });
}
