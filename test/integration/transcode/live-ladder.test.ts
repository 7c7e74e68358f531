/**
 * LiveLadder against real ffmpeg and the real clip: the source is the clip remuxed to one
 * continuous MPEG-TS, cut into source segments at its video keyframes (test/helpers/media.ts
 * `tsSourceSegments`: positions and PTS from ffprobe), and
 * fed as several chunks per segment the way the ingest segmenter hands them over. Every
 * rendition segment is checked with ffprobe, independently of the code under test.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fitRendition, PRESETS, type FittedRendition } from '../../../src/domain/profile.ts';
import type { SourceSegmentInfo } from '../../../src/domain/segment.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { ChildSupervisor, type ChildExit } from '../../../src/media/child-supervisor.ts';
import { LiveLadder, type LiveLadderChunk, type LiveRenditionSegment } from '../../../src/transcode/live-ladder.ts';
import { CLIP, clipWith2sGop, tsSourceSegments, type TsSourceSegment } from '../../helpers/media.ts';
import { clipFlv, readFlvTags } from '../../helpers/flv.ts';
import { parseFlvTag } from '../../../src/media/flv-packets.ts';
import { TsSegmenter, type TsSegment } from '../../../src/media/ts-segmenter.ts';

const run = promisify(execFile);
const SOURCE: SourceSegmentInfo = { video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } };
const RENDITIONS: FittedRendition[] = ['P240p30fps16x9', 'P144p30fps16x9'].map((n) => fitRendition(PRESETS[n]!, SOURCE.video)!);
/** One frame of the clip (24 fps), 90 kHz. */
const FRAME_90K = 90_000 / 24;

type SourceSegment = TsSourceSegment;

/** A segment as chunks of uneven sizes (not whole transport packets), the first one flagged. */
function chunksOf(segment: SourceSegment, pieces = 5): LiveLadderChunk[] {
  const out: LiveLadderChunk[] = [];
  const step = Math.ceil(segment.bytes.length / pieces) + 7;
  for (let o = 0; o < segment.bytes.length; o += step) {
    out.push({ seq: segment.seq, first: o === 0, ...(o === 0 ? { startPts90k: segment.startPts90k } : {}), bytes: segment.bytes.subarray(o, o + step) });
  }
  return out;
}

interface Probed { width: number; height: number; frames: number; videoPts: number[]; firstKey: boolean; audioPts: number[]; decodeErrors: string }

/** Independent ffprobe measurement of one segment file (not the code under test). */
async function probe(path: string): Promise<Probed> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_streams', '-show_entries', 'packet=codec_type,pts,flags', '-of', 'json', path]);
  const data = JSON.parse(stdout) as { streams: Record<string, string | number>[]; packets: { codec_type: string; pts: string; flags: string }[] };
  const v = data.streams.find((s) => s.codec_type === 'video')!;
  const video = data.packets.filter((p) => p.codec_type === 'video');
  const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 'null', '-']);
  return {
    width: Number(v.width), height: Number(v.height), frames: Number(v.nb_read_packets),
    videoPts: video.map((p) => Number(p.pts)).sort((a, b) => a - b), firstKey: video[0]?.flags.startsWith('K') ?? false,
    audioPts: data.packets.filter((p) => p.codec_type === 'audio').map((p) => Number(p.pts)).sort((a, b) => a - b),
    decodeErrors: stderr.trim(),
  };
}

interface Collected { segments: LiveRenditionSegment[]; completes: number[]; errors: GatewayError[]; exits: ChildExit[] }

function collect(ladder: LiveLadder): Collected {
  const c: Collected = { segments: [], completes: [], errors: [], exits: [] };
  ladder.on('segment', (s) => c.segments.push(s));
  ladder.on('complete', ({ seq }) => c.completes.push(seq));
  ladder.on('error', (e) => c.errors.push(e));
  ladder.on('exit', (e) => c.exits.push(e));
  ladder.on('failed', (f) => assert.fail(`rendition segment failed: ${JSON.stringify(f)}`));
  return c;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Checks every rendition segment against the source segments with ffprobe: all present,
 * aligned (first video PTS = the source segment's start within a frame), keyframe first,
 * continuous across segments, audio by PTS inside its segment, decodes cleanly at the listed
 * size with the listed frame count.
 */
async function assertLadderOutput(dir: string, source: readonly { seq: number; startPts90k: number }[], c: Collected): Promise<void> {
  assert.deepEqual(c.errors, []);
  assert.deepEqual(c.completes, source.map((s) => s.seq), 'complete once per seq, in order');
  for (const r of RENDITIONS) {
    const name = r.profile.name;
    const mine = c.segments.filter((s) => s.rendition === name);
    assert.deepEqual(mine.map((s) => s.seq), source.map((s) => s.seq), `${name}: every seq, in order`);
    const frameDur90k = (90_000 * r.fpsDen) / r.fpsNum;
    let prevLast: number | undefined;
    for (const [i, seg] of mine.entries()) {
      const path = join(dir, `${name}-${seg.seq}.ts`);
      await writeFile(path, seg.bytes);
      const p = await probe(path);
      const src = source[i]!;
      const next = source[i + 1];
      const where = `${name} seq ${seg.seq}`;
      assert.equal(p.decodeErrors, '', `${where} decodes cleanly`);
      assert.ok(p.firstKey, `${where} starts with a keyframe`);
      assert.ok(Math.abs(p.videoPts[0]! - src.startPts90k) <= FRAME_90K, `${where}: first PTS ${p.videoPts[0]} vs source ${src.startPts90k}`);
      assert.equal(seg.startPts90k, p.videoPts[0], `${where}: startPts90k`);
      if (prevLast !== undefined) {
        assert.ok(Math.abs(p.videoPts[0]! - (prevLast + frameDur90k)) <= frameDur90k, `${where}: continuous (${prevLast} → ${p.videoPts[0]})`);
      }
      prevLast = p.videoPts[p.videoPts.length - 1];
      assert.deepEqual([seg.measured.width, seg.measured.height], [p.width, p.height], `${where}: listed size`);
      assert.deepEqual([p.width, p.height], [r.width, r.height], `${where}: the rendition's size`);
      assert.equal(seg.measured.frames, p.frames, `${where}: frames`);
      assert.equal(seg.measured.bytes, seg.bytes.length);
      assert.match(seg.measured.codecs, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
      assert.ok(p.audioPts.length > 0, `${where} has audio`);
      if (i > 0) assert.ok(p.audioPts[0]! >= src.startPts90k, `${where}: audio starts at the boundary or after`);
      if (next) {
        assert.ok(p.audioPts[p.audioPts.length - 1]! < next.startPts90k, `${where}: audio ends before the next boundary`);
        assert.equal(seg.durationMs, Math.round((next.startPts90k - src.startPts90k) / 90), `${where}: duration to the next boundary`);
      }
    }
    const total = mine.reduce((n, s) => n + s.measured.frames, 0);
    const whole = (await probe(await concatenated(dir, name, mine))).frames;
    assert.equal(total, whole, `${name}: the segments together hold every frame once`);
  }
}

async function concatenated(dir: string, name: string, segments: LiveRenditionSegment[]): Promise<string> {
  const path = join(dir, `${name}-all.ts`);
  await writeFile(path, Buffer.concat(segments.map((s) => s.bytes)));
  return path;
}

let dir: string;
let supervisor: ChildSupervisor;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'live-ladder-'));
  supervisor = new ChildSupervisor({ logger: silentLogger() });
});
after(async () => {
  await supervisor.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('LiveLadder', () => {
  test('a 2 s GOP source: every seq of every rendition, aligned with the source, keyframe first, continuous; end() flushes the last seq', async () => {
    const source = await tsSourceSegments(await clipWith2sGop(12), 12, dir, 7);
    assert.equal(source.length, 6);
    const ladder = new LiveLadder({ renditions: RENDITIONS, source: SOURCE, supervisor, logger: silentLogger() });
    const c = collect(ladder);
    for (const seg of source) for (const chunk of chunksOf(seg)) ladder.write(chunk);
    const last = source[source.length - 1]!.seq;
    await waitFor('every seq but the last', () => c.completes.includes(last - 1));
    // Nothing says the last seq is over until end(): it is held, then flushed.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.segments.some((s) => s.seq === last), false, 'the last seq waits for end()');
    await ladder.end();
    assert.ok(c.completes.includes(last), 'end() emitted the last seq');
    await waitFor('exit', () => c.exits.length === 1);
    assert.equal(c.exits[0]!.code, 0);
    await assertLadderOutput(dir, source, c);
  });

  test('the clip\'s own irregular GOPs (10.4 s, 1.5 s, 3.9 s, ...) give long but aligned segments', async () => {
    const source = await tsSourceSegments(CLIP, 17, dir);
    assert.deepEqual(source.map((s) => Math.round((s.startPts90k - source[0]!.startPts90k) / 9000) / 10), [0, 10.4, 11.9, 15.8]);
    const ladder = new LiveLadder({ renditions: RENDITIONS, source: SOURCE, supervisor, logger: silentLogger() });
    const c = collect(ladder);
    for (const seg of source) for (const chunk of chunksOf(seg, 9)) ladder.write(chunk);
    await ladder.end();
    await assertLadderOutput(dir, source, c);
  });

  test('fed by the in-process RTMP segmenter (FLV tags → TsSegmenter chunks, B-frames, 2 s GOP): every seq aligned with its segments', async () => {
    const segmenter = new TsSegmenter({ segmentTargetMs: 2000 });
    const ladder = new LiveLadder({ renditions: RENDITIONS, source: SOURCE, supervisor, logger: silentLogger() });
    const c = collect(ladder);
    const segments: TsSegment[] = [];
    segmenter.on('chunk', (chunk) => ladder.write(chunk));
    segmenter.on('segment', (seg) => segments.push(seg));
    for (const tag of readFlvTags(await clipFlv('bf3', 12))) {
      const packet = parseFlvTag(tag);
      if (packet) segmenter.push(packet);
    }
    segmenter.end();
    await ladder.end();
    assert.equal(segments.length, 6);
    await assertLadderOutput(dir, segments, c);
  });

  test('a source without audio: every seq emitted as soon as the next one\'s video is out, video-only codecs', async () => {
    const source = await tsSourceSegments(await clipWith2sGop(12), 8, dir, 0, ['-an']);
    const videoOnly: SourceSegmentInfo = { video: SOURCE.video };
    const ladder = new LiveLadder({ renditions: RENDITIONS, source: videoOnly, supervisor, logger: silentLogger() });
    const c = collect(ladder);
    for (const seg of source) for (const chunk of chunksOf(seg)) ladder.write(chunk);
    await ladder.end();
    assert.deepEqual(c.completes, source.map((s) => s.seq));
    for (const seg of c.segments) {
      assert.match(seg.measured.codecs, /^avc1\.[0-9a-f]{6}$/);
      const path = join(dir, `video-only-${seg.rendition}-${seg.seq}.ts`);
      await writeFile(path, seg.bytes);
      const p = await probe(path);
      assert.equal(p.audioPts.length, 0);
      assert.ok(p.firstKey);
      assert.equal(p.frames, seg.measured.frames);
    }
  });

  test('an ffmpeg killed mid-stream surfaces as an error event, then exit; input is refused afterwards', async () => {
    const source = await tsSourceSegments(await clipWith2sGop(12), 12, dir);
    const ladder = new LiveLadder({ renditions: RENDITIONS, source: SOURCE, supervisor, logger: silentLogger() });
    const c = collect(ladder);
    for (const chunk of chunksOf(source[0]!)) ladder.write(chunk);
    assert.ok(ladder.pid !== undefined);
    process.kill(ladder.pid!, 'SIGKILL');
    await waitFor('exit', () => c.exits.length === 1);
    assert.equal(c.exits[0]!.signal, 'SIGKILL');
    assert.equal(c.errors.length, 1);
    assert.equal(c.errors[0]!.code, 'TRANSCODE_FAILED');
    assert.match(c.errors[0]!.message, /SIGKILL/);
    assert.throws(() => ladder.write(chunksOf(source[1]!)[0]!), (err: unknown) => err instanceof GatewayError && err.code === 'INTERNAL');
    await assert.rejects(ladder.end(), (err: unknown) => err instanceof GatewayError && err.code === 'TRANSCODE_FAILED');
    await ladder.close();
  });

  test('close() stops ffmpeg without an error event', async () => {
    const source = await tsSourceSegments(await clipWith2sGop(12), 12, dir);
    const ladder = new LiveLadder({ renditions: RENDITIONS, source: SOURCE, supervisor, logger: silentLogger() });
    const c = collect(ladder);
    for (const chunk of chunksOf(source[0]!)) ladder.write(chunk);
    await ladder.close();
    await ladder.close();
    await waitFor('exit', () => c.exits.length === 1);
    assert.deepEqual(c.errors, []);
    assert.equal(supervisor.size, 0, 'no ffmpeg left');
  });
});
