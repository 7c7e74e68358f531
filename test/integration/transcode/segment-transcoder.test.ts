/**
 * SegmentTranscoder against real ffmpeg/ffprobe and the real clip: segments cut the way a
 * live segmenter cuts them (`-c copy -f segment`, timestamps not reset), a filesystem-backed
 * fake storage, and independent ffprobe measurements of the outputs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fitRendition, parseProfile, PRESETS, type VideoProfile } from '../../../src/domain/profile.ts';
import { segmentKey, type TranscodeJob, type TranscodeResult } from '../../../src/domain/segment.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { FfmpegRunner } from '../../../src/media/ffmpeg-runner.ts';
import { SegmentTranscoder } from '../../../src/transcode/segment-transcoder.ts';
import { StoreRetry } from '../../../src/storage/store-retry.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { DirStorage } from '../../helpers/dir-storage.ts';

const run = promisify(execFile);
const MANIFEST = 'bbb';
const SESSION = 's1';
const LADDER: VideoProfile[] = ['P360p30fps16x9', 'P240p30fps16x9', 'P144p30fps16x9'].map((n) => PRESETS[n]!);

interface Measured { width: number; height: number; frames: number; firstPtsS: number; lastPtsS: number; frameDurationS: number; audioCodec?: string; audioStartS?: number; videoCodec: string }

/** Independent ffprobe measurement (not the code under test). */
async function measure(path: string): Promise<Measured> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_streams', '-show_entries', 'packet=stream_index,pts_time,duration_time', '-of', 'json', path]);
  const data = JSON.parse(stdout) as { streams: Record<string, string | number>[]; packets: { stream_index: number; pts_time: string; duration_time: string }[] };
  const v = data.streams.find((s) => s.codec_type === 'video')!;
  const a = data.streams.find((s) => s.codec_type === 'audio');
  const pts = data.packets.filter((p) => p.stream_index === v.index).map((p) => Number(p.pts_time));
  const [num, den] = String(v.r_frame_rate).split('/').map(Number);
  return {
    width: Number(v.width), height: Number(v.height), frames: Number(v.nb_read_packets),
    firstPtsS: Math.min(...pts), lastPtsS: Math.max(...pts), frameDurationS: den! / num!,
    videoCodec: String(v.codec_name),
    ...(a ? { audioCodec: String(a.codec_name), audioStartS: Number(a.start_time) } : {}),
  };
}

/** `ffmpeg -v error -i file -f null -` output: empty when the file decodes cleanly. */
async function decodeErrors(path: string): Promise<string> {
  const { stdout, stderr } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 'null', '-']);
  return stdout + stderr;
}

function childFfmpegPids(): number[] {
  const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,comm='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => /\bff(mpeg|probe)\b/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
}

let root: string;
let storage: DirStorage;
let workDir: string;
let runner: FfmpegRunner;
let transcoder: SegmentTranscoder;

function job(seq: number, profiles: readonly VideoProfile[], sourceKey = segmentKey(MANIFEST, SESSION, 'source', seq)): TranscodeJob {
  return { manifestID: MANIFEST, seq, sourceKey, durationMs: 2000, profiles };
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mediagate-transcode-'));
  storage = new DirStorage(join(root, 'store'));
  workDir = join(root, 'work');
  const cut = await clipWith2sGop(6);
  const sourceDir = storage.path(`${MANIFEST}/${SESSION}/source`);
  await mkdir(sourceDir, { recursive: true });
  // Like a live segmenter: stream copy, cut on keyframes, timestamps not reset.
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', cut, '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(sourceDir, '%d.ts')]);
  runner = new FfmpegRunner({ logger: silentLogger() });
  transcoder = new SegmentTranscoder({ storage, workDir, logger: silentLogger(), runner, x264Preset: 'veryfast', timeoutMs: 60_000 });
});

after(async () => {
  await transcoder.close();
  await runner.close();
  rmSync(root, { recursive: true, force: true });
});

test('ffmpeg and ffprobe are installed (these tests fail, not skip, without them)', () => {
  assert.match(execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }), /^ffmpeg version/);
  assert.match(execFileSync('ffprobe', ['-version'], { encoding: 'utf8' }), /^ffprobe version/);
});

describe('two consecutive live segments through a 360p/240p/144p ladder', () => {
  const results: TranscodeResult[] = [];
  const sources: Measured[] = [];

  before(async () => {
    for (const seq of [0, 1]) {
      sources.push(await measure(storage.path(segmentKey(MANIFEST, SESSION, 'source', seq))));
      results.push(await transcoder.transcode(job(seq, LADDER)));
    }
  });

  test('every rendition of the ladder is produced, in ladder order, under its deterministic key', () => {
    for (const [seq, r] of results.entries()) {
      assert.equal(r.manifestID, MANIFEST);
      assert.equal(r.seq, seq);
      assert.deepEqual(r.renditions.map((x) => x.rendition), ['P360p30fps16x9', 'P240p30fps16x9', 'P144p30fps16x9']);
      assert.deepEqual(r.renditions.map((x) => x.key), LADDER.map((p) => segmentKey(MANIFEST, SESSION, p.name, seq)));
      assert.ok(r.elapsedMs > 0);
    }
  });

  test('each output decodes without a single ffmpeg error', async () => {
    for (const r of results) {
      for (const x of r.renditions) assert.equal(await decodeErrors(storage.path(x.key)), '', x.key);
    }
  });

  test('each output has the resolution fitRendition gives for a 640x360 source (426x240 for P240p, 256x144 for P144p)', async () => {
    const source = { width: 640, height: 360, fpsNum: 24, fpsDen: 1 };
    const expected = LADDER.map((p) => { const f = fitRendition(p, source)!; return `${f.width}x${f.height}`; });
    assert.deepEqual(expected, ['640x360', '426x240', '256x144']);
    for (const r of results) {
      for (const [i, x] of r.renditions.entries()) {
        const m = await measure(storage.path(x.key));
        assert.equal(`${m.width}x${m.height}`, expected[i], x.key);
        assert.equal(`${x.width}x${x.height}`, expected[i], `reported size of ${x.key}`);
      }
    }
  });

  test('each output has as many frames as its source segment, since 30 fps profiles keep a 24 fps source rate', async () => {
    for (const [seq, r] of results.entries()) {
      assert.equal(sources[seq]!.frames, 48);
      for (const x of r.renditions) {
        const m = await measure(storage.path(x.key));
        assert.equal(m.frames, sources[seq]!.frames, x.key);
        assert.equal(x.frames, sources[seq]!.frames, `reported frames of ${x.key}`);
        assert.equal(x.frameRate, 24);
      }
    }
  });

  test('each output starts at its source segment first PTS (exactly, and so within one frame), audio included', async () => {
    for (const [seq, r] of results.entries()) {
      const src = sources[seq]!;
      for (const x of r.renditions) {
        const m = await measure(storage.path(x.key));
        assert.ok(Math.abs(m.firstPtsS - src.firstPtsS) < src.frameDurationS, `${x.key}: ${m.firstPtsS} vs ${src.firstPtsS}`);
        assert.ok(Math.abs(m.firstPtsS - src.firstPtsS) < 0.0001, `${x.key} keeps the PTS exactly`);
        assert.equal(m.audioCodec, 'aac');
        assert.ok(Math.abs(m.audioStartS! - src.audioStartS!) < 0.0001, `${x.key} audio start ${m.audioStartS} vs ${src.audioStartS}`);
      }
    }
  });

  test('consecutive segments of each rendition are continuous: last PTS plus one frame is the next first PTS', async () => {
    for (const p of LADDER) {
      const a = await measure(storage.path(segmentKey(MANIFEST, SESSION, p.name, 0)));
      const b = await measure(storage.path(segmentKey(MANIFEST, SESSION, p.name, 1)));
      const gap = b.firstPtsS - (a.lastPtsS + a.frameDurationS);
      assert.ok(Math.abs(gap) < a.frameDurationS, `${p.name}: gap ${gap} s`);
    }
  });

  test('reported bytes, codecs and duration describe the stored files', async () => {
    for (const r of results) {
      for (const x of r.renditions) {
        assert.equal(x.bytes, (await stat(storage.path(x.key))).size);
        assert.match(x.codecs, /^avc1\.64[0-9a-f]{4},mp4a\.40\.2$/);
        assert.equal(x.durationMs, 2000);
      }
    }
  });

  test('no temporary files are left in the work directory', async () => {
    assert.deepEqual(await readdir(workDir), []);
  });
});

test('random bytes as a segment fail as UNDECODABLE_MEDIA and leave no files behind', async () => {
  const key = `${MANIFEST}/${SESSION}/source/99.ts`;
  await mkdir(dirname(storage.path(key)), { recursive: true });
  await writeFile(storage.path(key), Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 7919 + 13) % 251)));
  await assert.rejects(transcoder.transcode(job(99, LADDER, key)), (e: GatewayError) => {
    assert.equal(e.code, 'UNDECODABLE_MEDIA');
    assert.equal(e.retryable, false);
    assert.match(e.message, /must be MPEG-TS: no sync byte 0x47/);
    return true;
  });
  assert.deepEqual(await readdir(workDir), []);
  for (const p of LADDER) await assert.rejects(stat(storage.path(segmentKey(MANIFEST, SESSION, p.name, 99))));
});

test('a PNG image as a segment fails as UNDECODABLE_MEDIA naming the container', async () => {
  const key = `${MANIFEST}/${SESSION}/source/98.ts`;
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x64', '-frames:v', '1', '-f', 'image2', '-c:v', 'png', '-y', storage.path(key)]);
  await assert.rejects(transcoder.transcode(job(98, LADDER, key)), (e: GatewayError) => e.code === 'UNDECODABLE_MEDIA' && /PNG image/.test(e.message));
  assert.deepEqual(await readdir(workDir), []);
});

test('a profile larger than the source is omitted and the rest are encoded', async () => {
  const result = await transcoder.transcode(job(2, [PRESETS['P720p30fps16x9']!, PRESETS['P144p30fps16x9']!]));
  assert.deepEqual(result.renditions.map((r) => r.rendition), ['P144p30fps16x9']);
  await assert.rejects(stat(storage.path(segmentKey(MANIFEST, SESSION, 'P720p30fps16x9', 2))));
});

test('a ladder where nothing fits gives no renditions and runs no ffmpeg', async () => {
  const result = await transcoder.transcode(job(2, [PRESETS['P720p30fps16x9']!, PRESETS['P576p30fps16x9']!]));
  assert.deepEqual(result.renditions, []);
  assert.deepEqual(await readdir(workDir), []);
});

test('a retried job writes the same keys again, replacing the previous objects', async () => {
  const profiles = [PRESETS['P144p30fps16x9']!];
  const first = await transcoder.transcode(job(0, profiles));
  const second = await transcoder.transcode(job(0, profiles));
  assert.deepEqual(second.renditions.map((r) => r.key), first.renditions.map((r) => r.key));
  assert.equal(await decodeErrors(storage.path(second.renditions[0]!.key)), '');
  assert.deepEqual(await readdir(storage.path(`${MANIFEST}/${SESSION}/P144p30fps16x9`)), ['0.ts', '1.ts', '2.ts']);
});

test('a lower frame rate halves the frames and stays continuous across segments within one output frame', async () => {
  const half = parseProfile({ name: 'half', width: 256, height: 144, bitrate: 200_000, fps: 12 });
  const [a, b] = [await transcoder.transcode(job(0, [half])), await transcoder.transcode(job(1, [half]))];
  const src = await measure(storage.path(segmentKey(MANIFEST, SESSION, 'source', 0)));
  const ma = await measure(storage.path(a.renditions[0]!.key));
  const mb = await measure(storage.path(b.renditions[0]!.key));
  assert.equal(ma.frames, 24);
  assert.equal(mb.frames, 24);
  assert.equal(a.renditions[0]!.frameRate, 12);
  assert.ok(Math.abs(ma.firstPtsS - src.firstPtsS) < ma.frameDurationS, `first PTS ${ma.firstPtsS} vs source ${src.firstPtsS}`);
  const gap = mb.firstPtsS - (ma.lastPtsS + ma.frameDurationS);
  assert.ok(Math.abs(gap) < ma.frameDurationS, `gap ${gap} s`);
});

test('non-AAC source audio is encoded to AAC in the renditions', async () => {
  const key = `${MANIFEST}/mp2src/0.ts`;
  await mkdir(dirname(storage.path(key)), { recursive: true });
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-copyts', '-i', storage.path(segmentKey(MANIFEST, SESSION, 'source', 0)), '-c:v', 'copy', '-c:a', 'mp2', '-muxdelay', '0', '-muxpreload', '0', '-f', 'mpegts', storage.path(key)]);
  const result = await transcoder.transcode({ ...job(0, [PRESETS['P144p30fps16x9']!], key), manifestID: 'mp2src' });
  const m = await measure(storage.path(result.renditions[0]!.key));
  assert.equal(m.audioCodec, 'aac');
  assert.match(result.renditions[0]!.codecs, /,mp4a\.40\.2$/);
  assert.equal(await decodeErrors(storage.path(result.renditions[0]!.key)), '');
});

test('an HEVC profile produces HEVC with an hvc1 codecs string read from its SPS', async () => {
  const hevc = parseProfile({ name: 'hevc144', width: 256, height: 144, bitrate: 200_000, encoder: 'HEVC' });
  const result = await transcoder.transcode(job(1, [hevc]));
  const x = result.renditions[0]!;
  const m = await measure(storage.path(x.key));
  assert.equal(m.videoCodec, 'hevc');
  assert.equal(m.frames, 48);
  assert.match(x.codecs, /^hvc1\.1\.6\.L\d+(\.[0-9A-F]{2})*,mp4a\.40\.2$/);
  assert.equal(await decodeErrors(storage.path(x.key)), '');
});

test('close stops a running transcode, which fails as retryable TRANSCODE_FAILED with nothing left behind', async () => {
  const own = new SegmentTranscoder({ storage, workDir, logger: silentLogger(), runner });
  const pending = own.transcode(job(2, LADDER));
  await new Promise((r) => setTimeout(r, 250));
  await own.close();
  await assert.rejects(pending, (e: GatewayError) => e.code === 'TRANSCODE_FAILED' && e.retryable);
  assert.deepEqual(childFfmpegPids(), []);
  assert.deepEqual(await readdir(workDir), []);
  await assert.rejects(own.transcode(job(2, LADDER)), (e: GatewayError) => e.code === 'TRANSCODE_FAILED');
});

test('with a storage retry, a job waits out a store outage on its source download and rendition uploads; without one it fails', async () => {
  // A store that refuses connections for its first `down` calls (as the S3 store reports it), then works.
  const outage = (down: number): { store: typeof storage; calls: () => number } => {
    let calls = 0;
    const refuse = (): GatewayError => new GatewayError('STORAGE_FAILED', 'cannot reach the store',
      { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    const store = Object.assign(Object.create(storage) as typeof storage, {
      getFile: async (key: string) => { calls += 1; if (calls <= down) throw refuse(); return storage.getFile(key); },
      putFile: async (key: string, path: string) => { calls += 1; if (calls <= down) throw refuse(); return storage.putFile(key, path); },
    });
    return { store, calls: () => calls };
  };
  const profiles = [PRESETS['P144p30fps16x9']!];
  const retried = outage(3);
  const own = new SegmentTranscoder({
    storage: retried.store, workDir, logger: silentLogger(), runner,
    storageRetry: new StoreRetry({ logger: silentLogger(), config: { retryDelayMs: 5, maxRetryDelayMs: 20, budgetMs: 5000 } }),
  });
  const result = await own.transcode(job(1, profiles));
  assert.deepEqual(result.renditions.map((r) => r.rendition), ['P144p30fps16x9']);
  assert.equal(retried.calls(), 5, 'three refused downloads, one download, one upload');
  assert.equal(await decodeErrors(storage.path(result.renditions[0]!.key)), '');
  await own.close();

  const once = new SegmentTranscoder({ storage: outage(1).store, workDir, logger: silentLogger(), runner });
  await assert.rejects(once.transcode(job(1, profiles)), (e: GatewayError) => e.code === 'STORAGE_FAILED' && e.retryable);
  await once.close();
  assert.deepEqual(await readdir(workDir), [], 'no job directory is left behind');
});
