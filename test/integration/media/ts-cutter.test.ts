/**
 * TsCutter on a real MPEG-TS stream written by ffmpeg (the clip with a 2 s GOP, stream copy):
 * cuts checked against ffprobe's packet list and ffmpeg's own continuity check.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pesPts90k, TsCutter, TsFrameCounter, type TsCut } from '../../../src/media/ts-cutter.ts';
import { measureTs, packetAt } from '../../../src/media/ts-measure.ts';
import { clipWith2sGop, tsSourceSegments, type TsSourceSegment } from '../../helpers/media.ts';

const run = promisify(execFile);
const FRAME_90K = 90_000 / 24;

let dir: string;
let source: TsSourceSegment[];
let stream: Buffer;
/** The same clip without audio. */
let videoOnly: TsSourceSegment[];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ts-cutter-'));
  // One audio frame per PES (`-muxdelay 0`), as the live ladder's renditions have: audio then falls exactly by PTS.
  source = await tsSourceSegments(await clipWith2sGop(12), 12, dir, 0, ['-muxdelay', '0', '-muxpreload', '0']);
  stream = Buffer.concat(source.map((s) => s.bytes));
  videoOnly = await tsSourceSegments(await clipWith2sGop(12), 6, dir, 0, ['-an', '-muxdelay', '0', '-muxpreload', '0']);
});

/** Pushes `data` one transport packet at a time; the packet index at which each seq's cut came out. */
function cutPacketByPacket(cutter: TsCutter, data: Buffer): Map<number, { at: number; cut: TsCut }> {
  const at = new Map<number, { at: number; cut: TsCut }>();
  for (let o = 0; o < data.length; o += 188) for (const cut of cutter.push(data.subarray(o, o + 188))) at.set(cut.seq, { at: o / 188, cut });
  return at;
}
after(() => rmSync(dir, { recursive: true, force: true }));

function cutAll(data: Buffer, bounds: readonly { seq: number; pts: number }[], piece = data.length): TsCut[] {
  const cutter = new TsCutter({ frameDuration90k: FRAME_90K });
  for (const b of bounds) cutter.addBoundary(b.seq, b.pts);
  const cuts: TsCut[] = [];
  for (let o = 0; o < data.length; o += piece) cuts.push(...cutter.push(data.subarray(o, o + piece)));
  cuts.push(...cutter.end());
  return cuts;
}

interface Probed { videoPts: number[]; firstKey: boolean; audioPts: number[]; warnings: string; tablesFirst: boolean; ccJumps: string[] }

/** continuity_counter jumps within the data (ISO/IEC 13818-1 §2.4.3.3: +1 mod 16 per packet with payload, per PID). */
function continuityJumps(data: Buffer): string[] {
  const last = new Map<number, number>();
  const jumps: string[] = [];
  for (let o = 0; o < data.length; o += 188) {
    const pid = ((data[o + 1]! & 0x1f) << 8) | data[o + 2]!;
    if ((data[o + 3]! & 0x10) === 0) continue; // no payload
    const cc = data[o + 3]! & 0x0f;
    const prev = last.get(pid);
    if (prev !== undefined && cc !== ((prev + 1) & 0x0f)) jumps.push(`pid ${pid}: ${prev} -> ${cc} at packet ${o / 188}`);
    last.set(pid, cc);
  }
  return jumps;
}

async function probe(cut: TsCut): Promise<Probed> {
  const path = join(dir, `cut-${cut.seq}-${Math.random().toString(36).slice(2)}.ts`);
  await writeFile(path, cut.bytes);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type,pts,flags', '-of', 'json', path]);
  const packets = (JSON.parse(stdout) as { packets: { codec_type: string; pts: string; flags: string }[] }).packets;
  const video = packets.filter((p) => p.codec_type === 'video');
  const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'warning', '-i', path, '-c', 'copy', '-f', 'null', '-']);
  const pid = (i: number): number => ((cut.bytes[i * 188 + 1]! & 0x1f) << 8) | cut.bytes[i * 188 + 2]!;
  const before: number[] = [];
  for (let i = 0; ![0x100, 0x101].includes(pid(i)); i++) before.push(pid(i));
  return {
    ccJumps: continuityJumps(cut.bytes),
    videoPts: video.map((p) => Number(p.pts)).sort((a, b) => a - b), firstKey: video[0]?.flags.startsWith('K') ?? false,
    audioPts: packets.filter((p) => p.codec_type === 'audio').map((p) => Number(p.pts)), warnings: stderr.trim(), tablesFirst: before.includes(0) && before.includes(0x1000),
  };
}

describe('TsCutter', () => {
  test('cuts at keyframe boundaries: PAT and PMT before any audio or video, a keyframe, audio by PTS, no continuity errors, every packet once', async () => {
    const bounds = source.map((s) => ({ seq: s.seq, pts: s.startPts90k }));
    const cuts = cutAll(stream, bounds);
    assert.deepEqual(cuts.map((c) => c.seq), source.map((s) => s.seq));
    let videoFrames = 0;
    for (const [i, cut] of cuts.entries()) {
      const p = await probe(cut);
      assert.equal(p.warnings, '', `cut ${i} reads without warnings`);
      assert.deepEqual(p.ccJumps, [], `cut ${i}: continuity counters consecutive on every PID`);
      assert.ok(p.tablesFirst, `cut ${i}: PAT and PMT before any audio or video`);
      assert.ok(p.firstKey && cut.startsWithKeyframe, `cut ${i} video starts with a keyframe`);
      assert.equal(p.videoPts[0], source[i]!.startPts90k);
      assert.equal(cut.firstVideoPts90k, p.videoPts[0]);
      assert.equal(cut.lastVideoPts90k, p.videoPts[p.videoPts.length - 1]);
      assert.equal(cut.videoFrames, p.videoPts.length);
      videoFrames += cut.videoFrames;
      if (i > 0) assert.ok(Math.min(...p.audioPts) >= source[i]!.startPts90k, `cut ${i}: no audio before its boundary`);
      if (i + 1 < cuts.length) assert.ok(Math.max(...p.audioPts) < source[i + 1]!.startPts90k, `cut ${i}: no audio after the next boundary`);
    }
    assert.equal(videoFrames, source.reduce((n, s) => n + s.frames.length, 0), 'every video frame in exactly one cut');
  });

  test('the same cuts whatever the sizes of the pushed pieces (1 byte, odd sizes, whole)', () => {
    const bounds = source.slice(0, 3).map((s) => ({ seq: s.seq, pts: s.startPts90k }));
    const part = Buffer.concat(source.slice(0, 3).map((s) => s.bytes));
    const whole = cutAll(part, bounds).map((c) => c.bytes.toString('hex'));
    assert.deepEqual(cutAll(part, bounds, 1001).map((c) => c.bytes.toString('hex')), whole);
    assert.deepEqual(cutAll(part, bounds, 1).map((c) => c.bytes.toString('hex')), whole);
  });

  test('every audio and video packet in exactly one cut, byte for byte, whatever the pushed pieces (pipe reads that split packets); each cut measures as its source segment', () => {
    const bounds = source.map((s) => ({ seq: s.seq, pts: s.startPts90k }));
    /** The audio and video packets of `data` (PIDs 0x100, 0x101), as hex, in order. */
    const esPackets = (data: Buffer): string[] => {
      const out: string[] = [];
      for (let o = 0; o < data.length; o += 188) if ([0x100, 0x101].includes(((data[o + 1]! & 0x1f) << 8) | data[o + 2]!)) out.push(data.toString('hex', o, o + 188));
      return out;
    };
    const inStream = esPackets(stream).sort();
    const whole = cutAll(stream, bounds);
    for (const piece of [stream.length, 65_536, 32_768, 188 * 3 + 5, 187]) {
      const cuts = cutAll(stream, bounds, piece);
      assert.deepEqual(cuts.map((c) => c.bytes.toString('hex')), whole.map((c) => c.bytes.toString('hex')), `piece ${piece}: the same cuts`);
      assert.deepEqual(cuts.flatMap((c) => esPackets(c.bytes)).sort(), inStream, `piece ${piece}: every ES packet once`);
    }
    for (const [i, cut] of whole.entries()) {
      const m = measureTs(cut.bytes);
      const src = measureTs(source[i]!.bytes);
      assert.equal(m.frames, cut.videoFrames);
      assert.equal(m.bytes, cut.bytes.length);
      assert.deepEqual({ frames: m.frames, codecs: m.videoCodecs, width: m.width, height: m.height, streams: m.streams },
        { frames: src.frames, codecs: src.videoCodecs, width: src.width, height: src.height, streams: src.streams }, `cut ${i}`);
    }
  });

  test('a segment is returned once the next one has video and the audio reached its boundary; end() returns the last', () => {
    const cutter = new TsCutter({ frameDuration90k: FRAME_90K });
    cutter.addBoundary(0, source[0]!.startPts90k);
    assert.deepEqual(cutter.push(source[0]!.bytes), [], 'nothing says seq 0 is over');
    cutter.addBoundary(1, source[1]!.startPts90k);
    const got = cutter.push(source[1]!.bytes);
    assert.deepEqual(got.map((c) => c.seq), [0]);
    assert.deepEqual(cutter.end().map((c) => c.seq), [1]);
  });

  test('PAT and PMT are copied into a segment whose keyframe came without them, with consecutive continuity counters', async () => {
    // Remove every PSI packet after the stream's first ones.
    const packets: Buffer[] = [];
    let seenVideo = false;
    for (let o = 0; o < stream.length; o += 188) {
      const pkt = stream.subarray(o, o + 188);
      const pid = ((pkt[1]! & 0x1f) << 8) | pkt[2]!;
      if (pid === 0x100) seenVideo = true;
      if (seenVideo && [0, 0x11, 0x1000].includes(pid)) continue;
      packets.push(pkt);
    }
    const cuts = cutAll(Buffer.concat(packets), source.map((s) => ({ seq: s.seq, pts: s.startPts90k })));
    assert.equal(cuts.length, source.length);
    for (const cut of cuts.slice(1)) {
      const p = await probe(cut);
      assert.ok(p.tablesFirst);
      assert.ok(p.firstKey);
      assert.equal(p.warnings, '');
    }
  });

  test('half a frame of tolerance: a boundary a third of a frame after the keyframe still cuts at it; one a frame after cuts at the next frame', () => {
    const [s0, s1] = source;
    const part = Buffer.concat([s0!.bytes, s1!.bytes]);
    const near = cutAll(part, [{ seq: 0, pts: s0!.startPts90k }, { seq: 1, pts: s1!.startPts90k + FRAME_90K / 3 }]);
    assert.equal(near[1]!.firstVideoPts90k, s1!.startPts90k);
    assert.ok(near[1]!.startsWithKeyframe);
    const late = cutAll(part, [{ seq: 0, pts: s0!.startPts90k }, { seq: 1, pts: s1!.startPts90k + FRAME_90K }]);
    assert.ok(late[1]!.firstVideoPts90k! >= s1!.startPts90k + FRAME_90K / 2);
    assert.equal(late[1]!.startsWithKeyframe, false);
  });

  test('a seq with no video frame of its own gives an empty cut; the next seq is cut normally', () => {
    const [s0, s1, s2] = source;
    const part = Buffer.concat([s0!.bytes, s1!.bytes, s2!.bytes]);
    // Two boundaries within half a frame of the same keyframe: it starts the later seq, the earlier one gets no frame.
    const cuts = cutAll(part, [{ seq: 0, pts: s0!.startPts90k }, { seq: 1, pts: s1!.startPts90k + FRAME_90K / 4 }, { seq: 2, pts: s1!.startPts90k + FRAME_90K / 3 }]);
    assert.deepEqual(cuts.map((c) => [c.seq, c.videoFrames > 0]), [[0, true], [1, false], [2, true]]);
    assert.equal(cuts[1]!.bytes.length, 0);
    assert.equal(cuts[2]!.firstVideoPts90k, s1!.startPts90k);
  });

  test('early close: with its frame count announced, a segment is returned once its last frame is whole, before any byte of the next keyframe; same bytes', () => {
    const data = Buffer.concat(videoOnly.slice(0, 2).map((s) => s.bytes));
    const nextKeyAt = videoOnly[0]!.bytes.length / 188;
    const cutter = (): TsCutter => {
      const c = new TsCutter({ frameDuration90k: FRAME_90K });
      c.addBoundary(0, videoOnly[0]!.startPts90k);
      c.addBoundary(1, videoOnly[1]!.startPts90k);
      return c;
    };
    const late = cutPacketByPacket(cutter(), data).get(0)!;
    assert.ok(late.at >= nextKeyAt, `without a count, seq 0 waits for seq 1's keyframe (packet ${late.at}, keyframe from ${nextKeyAt})`);
    const c = cutter();
    c.setFrameCount(0, videoOnly[0]!.frames.length);
    const early = cutPacketByPacket(c, data).get(0)!;
    assert.ok(early.at < nextKeyAt, `with the count, seq 0 is out at packet ${early.at}, before seq 1's PAT/PMT and keyframe at ${nextKeyAt}`);
    assert.equal(early.cut.videoFrames, videoOnly[0]!.frames.length);
    assert.equal(early.cut.bytes.toString('hex'), late.cut.bytes.toString('hex'));
    assert.equal(c.droppedPackets, 0);
  });

  test('audio: a segment is complete once its last audio PES before the boundary is whole, before the first audio PES at or after it comes', () => {
    const data = Buffer.concat(source.slice(0, 2).map((s) => s.bytes));
    const boundary = source[1]!.startPts90k;
    let firstAudioAfter = -1;
    for (let o = 0; o < data.length && firstAudioAfter < 0; o += 188) {
      const p = packetAt(data, o);
      if (p.pid === 0x101 && p.pusi && pesPts90k(p.payload)! >= boundary) firstAudioAfter = o / 188;
    }
    assert.ok(firstAudioAfter > 0, 'the clip has audio after the boundary');
    const c = new TsCutter({ frameDuration90k: FRAME_90K });
    c.addBoundary(0, source[0]!.startPts90k);
    c.addBoundary(1, boundary);
    const got = cutPacketByPacket(c, data).get(0)!;
    assert.ok(got.at < firstAudioAfter, `seq 0 out at packet ${got.at}, before the first audio at or after its end (${firstAudioAfter})`);
    assert.equal(got.cut.bytes.toString('hex'), cutAll(stream, source.map((s) => ({ seq: s.seq, pts: s.startPts90k })))[0]!.bytes.toString('hex'), 'the same segment as cut from the whole stream');
  });

  test('TsFrameCounter: each seq\'s frame count, final as soon as the decode time reaches the next boundary, whatever the piece sizes', () => {
    for (const piece of [188 * 7, 1001, stream.length]) {
      const counts: [number, number][] = [];
      const counter = new TsFrameCounter({ frameDuration90k: FRAME_90K, onCount: (seq, frames) => counts.push([seq, frames]) });
      for (const s of source) counter.addBoundary(s.seq, s.startPts90k);
      for (let o = 0; o < stream.length; o += piece) counter.push(stream.subarray(o, o + piece));
      // The last seq has no next boundary: never final.
      assert.deepEqual(counts, source.slice(0, -1).map((s) => [s.seq, s.frames.length]), `piece ${piece}`);
    }
    // Seq 0's count is out by the end of seq 1's first frames (its keyframe and the frames decoded before the boundary).
    const counts: number[] = [];
    const counter = new TsFrameCounter({ frameDuration90k: FRAME_90K, onCount: (seq) => counts.push(seq) });
    counter.addBoundary(0, source[0]!.startPts90k);
    counter.addBoundary(1, source[1]!.startPts90k);
    counter.push(source[0]!.bytes);
    assert.deepEqual(counts, [], 'not final before seq 1 starts');
    counter.push(source[1]!.bytes.subarray(0, source[1]!.frames[3]!.offset));
    assert.deepEqual(counts, [0]);
  });
});
