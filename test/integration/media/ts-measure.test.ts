/**
 * The transcoder without ffprobe against real ffmpeg and the real clip: segments of the
 * clip (and sources derived from it: 720p30, 29.97 fps through FLV's millisecond timestamps
 * like an RTMP publish, video only, MP3 audio) go through `SegmentTranscoder.transcode` with
 * the source measurement in the job, as the gateway queues it; every reported rendition must
 * equal ffprobe's measurement of the stored file (`probeSegment`: frames = -count_packets
 * nb_read_packets, bytes, codecs, size, frame rate), with no ffprobe run by the transcoder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_LADDER } from '../../../src/config/config-schema.ts';
import { parseLadder, parseProfile, PRESETS, type VideoProfile } from '../../../src/domain/profile.ts';
import { segmentKey, sourceSegmentInfo, type SourceSegmentInfo, type TranscodeJob, type TranscodeResult } from '../../../src/domain/segment.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { FfmpegRunner } from '../../../src/media/ffmpeg-runner.ts';
import { probeSegment } from '../../../src/media/probe.ts';
import { SegmentTranscoder } from '../../../src/transcode/segment-transcoder.ts';
import { measureTsFile } from '../../../src/media/ts-measure.ts';
import { CLIP, clipWith2sGop } from '../../helpers/media.ts';
import { DirStorage } from '../../helpers/dir-storage.ts';

const run = promisify(execFile);

/** The transcoder's log lines, parsed. */
const lines: Record<string, unknown>[] = [];
const logger = pino({ level: 'debug' }, new Writable({
  write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>); done(); },
}));

let root: string;
let storage: DirStorage;
let runner: FfmpegRunner;
let transcoder: SegmentTranscoder;

/** Cuts `input` into live-style MPEG-TS source segments under `<manifest>/s1/source/` (stream copy, timestamps kept). */
async function sourceSegments(manifest: string, input: string, extra: string[] = []): Promise<void> {
  const dir = storage.path(`${manifest}/s1/source`);
  await mkdir(dir, { recursive: true });
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', input, ...extra, '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(dir, '%d.ts')]);
}

/** The source measurement as the gateway's ingest puts it in the job (its own ffprobe of the segment). */
async function ingestMeasurement(manifest: string, seq: number): Promise<SourceSegmentInfo> {
  const info = sourceSegmentInfo(await probeSegment(storage.path(segmentKey(manifest, 's1', 'source', seq))));
  assert.ok(info);
  return info;
}

function job(manifest: string, seq: number, profiles: readonly VideoProfile[], source?: unknown): TranscodeJob {
  return { manifestID: manifest, seq, sourceKey: segmentKey(manifest, 's1', 'source', seq), durationMs: 2000, profiles, ...(source !== undefined ? { source: source as SourceSegmentInfo } : {}) };
}

/** Transcodes and returns the result with the number of ffprobe runs it logged. */
async function transcode(j: TranscodeJob): Promise<{ result: TranscodeResult; ffprobeRuns: number; warnings: string[] }> {
  const from = lines.length;
  const result = await transcoder.transcode(j);
  const mine = lines.slice(from);
  const done = mine.find((l) => l['msg'] === 'segment transcoded' && l['seq'] === j.seq && l['manifestID'] === j.manifestID);
  assert.ok(done, 'segment transcoded logged');
  return { result, ffprobeRuns: Number(done['ffprobeRuns']), warnings: mine.filter((l) => l['level'] === 40).map((l) => String(l['msg'])) };
}

/** Every reported rendition equals ffprobe's measurement of the stored file, and ts-measure's frames/bytes equal ffprobe's. */
async function assertAsFfprobe(result: TranscodeResult): Promise<void> {
  assert.ok(result.renditions.length > 0);
  for (const r of result.renditions) {
    const path = storage.path(r.key);
    const p = await probeSegment(path);
    assert.ok(p.video);
    assert.deepEqual(
      { width: r.width, height: r.height, frames: r.frames, bytes: r.bytes, codecs: r.codecs, frameRate: r.frameRate },
      { width: p.video.width, height: p.video.height, frames: p.video.frames, bytes: p.bytes, codecs: p.codecs, frameRate: p.frameRate },
      r.key,
    );
    if (p.video.codec === 'h264') {
      const m = await measureTsFile(path);
      assert.deepEqual([m.frames, m.bytes, m.videoCodecs, m.width, m.height], [p.video.frames, p.bytes, p.codecs.split(',')[0], p.video.width, p.video.height], r.key);
    }
  }
}

const BASELINE_12FPS = parseProfile({ name: 'base12', width: 256, height: 144, bitrate: 200_000, fps: 12, profile: 'h264baseline' });
const MAIN = parseProfile({ name: 'main', width: 320, height: 180, bitrate: 250_000, profile: 'h264main' });
const CONSTRAINED_HIGH_INTRA = parseProfile({ name: 'chintra', width: 300, height: 170, bitrate: 300_000, profile: 'h264constrainedhigh', gop: 'intra' });
const NTSC_FILM = parseProfile({ name: 'film', width: 416, height: 234, bitrate: 300_000, fps: 24000, fpsDen: 1001 });
const CLIP_LADDER = [...['P360p30fps16x9', 'P240p30fps16x9', 'P144p30fps16x9'].map((n) => PRESETS[n]!), BASELINE_12FPS, MAIN, CONSTRAINED_HIGH_INTRA];

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mediagate-tsmeasure-'));
  storage = new DirStorage(join(root, 'store'));
  runner = new FfmpegRunner({ logger: silentLogger() });
  transcoder = new SegmentTranscoder({ storage, workDir: join(root, 'work'), logger, runner, x264Preset: 'veryfast', timeoutMs: 120_000 });
  const clip6 = await clipWith2sGop(6);
  await sourceSegments('clip', clip6, ['-c', 'copy']);
  // 720p30 (the whole default ladder fits), AAC copied.
  await sourceSegments('hd', clip6, ['-t', '4', '-vf', 'scale=1280:720,fps=30', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-c:a', 'copy']);
  // 29.97 fps with millisecond timestamps, as an RTMP publisher's segments have them (FLV in between).
  const flv = join(root, 'ntsc.flv');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', CLIP, '-t', '4', '-vf', 'fps=30000/1001', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-c:a', 'aac', '-f', 'flv', flv]);
  await sourceSegments('ntsc', flv, ['-c', 'copy']);
  await sourceSegments('silent', clip6, ['-t', '4', '-c:v', 'copy', '-an']);
  await sourceSegments('mp3', clip6, ['-t', '4', '-c:v', 'copy', '-c:a', 'libmp3lame']);
});

after(async () => {
  await transcoder.close();
  await runner.close();
  rmSync(root, { recursive: true, force: true });
});

describe('with the source measurement in the job: no ffprobe, and exactly what ffprobe measures', () => {
  test('the default ladder on a 720p30 source with AAC', async () => {
    const ladder = parseLadder(DEFAULT_LADDER);
    assert.deepEqual(ladder.map((p) => p.name), ['P720p30fps16x9', 'P360p30fps16x9', 'P240p30fps16x9']);
    for (const seq of [0, 1]) {
      const { result, ffprobeRuns, warnings } = await transcode(job('hd', seq, ladder, await ingestMeasurement('hd', seq)));
      assert.deepEqual(result.renditions.map((r) => `${r.width}x${r.height}`), ['1280x720', '640x360', '426x240']);
      assert.equal(ffprobeRuns, 0);
      assert.deepEqual(warnings, []);
      await assertAsFfprobe(result);
    }
  });

  test('the clip (640x360, 24 fps): presets, Baseline at 12 fps, Main, constrained High all-intra at an odd size', async () => {
    for (const seq of [0, 1, 2]) {
      const { result, ffprobeRuns } = await transcode(job('clip', seq, CLIP_LADDER, await ingestMeasurement('clip', seq)));
      assert.equal(result.renditions.length, CLIP_LADDER.length);
      assert.equal(ffprobeRuns, 0);
      await assertAsFfprobe(result);
      const codecs = Object.fromEntries(result.renditions.map((r) => [r.rendition, r.codecs.split(',')[0]!.slice(0, 7)]));
      assert.equal(codecs['base12'], 'avc1.42');
      assert.equal(codecs['main'], 'avc1.4d');
      assert.equal(codecs['P360p30fps16x9'], 'avc1.64');
    }
  });

  test('29.97 fps with millisecond timestamps, kept, and converted to 25 and 23.976 fps', async () => {
    for (const seq of [0, 1]) {
      const { result, ffprobeRuns } = await transcode(job('ntsc', seq, [PRESETS['P360p30fps16x9']!, PRESETS['P240p25fps16x9']!, NTSC_FILM], await ingestMeasurement('ntsc', seq)));
      assert.equal(ffprobeRuns, 0);
      assert.deepEqual(result.renditions.map((r) => r.frameRate), [30000 / 1001, 25, 24000 / 1001]);
      await assertAsFfprobe(result);
    }
  });

  test('a source without audio gives video-only codecs; MP3 source audio is encoded to AAC-LC', async () => {
    const ladder = [PRESETS['P240p30fps16x9']!, PRESETS['P144p30fps16x9']!];
    const silent = await transcode(job('silent', 0, ladder, await ingestMeasurement('silent', 0)));
    assert.equal(silent.ffprobeRuns, 0);
    assert.match(silent.result.renditions[0]!.codecs, /^avc1\.[0-9a-f]{6}$/);
    await assertAsFfprobe(silent.result);
    const mp3Source = await ingestMeasurement('mp3', 1);
    assert.equal(mp3Source.audio?.codec, 'mp3');
    const mp3 = await transcode(job('mp3', 1, ladder, mp3Source));
    assert.equal(mp3.ffprobeRuns, 0);
    assert.match(mp3.result.renditions[0]!.codecs, /,mp4a\.40\.2$/);
    await assertAsFfprobe(mp3.result);
  });
});

describe('fallbacks to ffprobe', () => {
  test('a job without the source measurement (an older gateway) probes the source once, and the outputs still not', async () => {
    const { result, ffprobeRuns } = await transcode(job('clip', 1, CLIP_LADDER.slice(0, 3)));
    assert.equal(ffprobeRuns, 1);
    await assertAsFfprobe(result);
  });

  test('a malformed source measurement is not trusted: the source is probed, with a warning', async () => {
    const good = await ingestMeasurement('clip', 0);
    for (const bad of [{ video: { ...good.video, width: 0 } }, { video: { ...good.video, fpsDen: '1' } }, 'h264', { audio: good.audio }]) {
      const { result, ffprobeRuns, warnings } = await transcode(job('clip', 0, [PRESETS['P144p30fps16x9']!], bad));
      assert.equal(ffprobeRuns, 1, JSON.stringify(bad));
      assert.deepEqual(warnings, ['job carries a malformed source measurement; probing the source']);
      await assertAsFfprobe(result);
    }
  });

  test('an HEVC rendition is measured by ffprobe; the H.264 ones beside it are not', async () => {
    const hevc = parseProfile({ name: 'hevc144', width: 256, height: 144, bitrate: 200_000, encoder: 'HEVC' });
    const { result, ffprobeRuns, warnings } = await transcode(job('clip', 2, [PRESETS['P240p30fps16x9']!, hevc], await ingestMeasurement('clip', 2)));
    assert.equal(ffprobeRuns, 1);
    assert.deepEqual(warnings, []);
    assert.match(result.renditions[1]!.codecs, /^hvc1\./);
    await assertAsFfprobe(result);
  });
});
