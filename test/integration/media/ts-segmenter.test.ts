/**
 * The in-process segmenter against ffmpeg/ffprobe on the real clip: ffmpeg writes FLV files
 * (the clip stream-copied: High profile with B-frames and 10 s GOPs; re-encoded with 3 and
 * with no B-frames and 2 s GOPs; 1080p30 6 Mb/s; audio only), test/helpers/flv.ts splits
 * them into the tags node-media-server hands a subscriber, and every tag goes through
 * parseFlvTag → TsSegmenter. Each segment must match ffprobe's view of the same packets in
 * the FLV file: the same video/audio packets with the same PTS/DTS (shifted by the constant
 * 1.4 s), keyframe flags, PTS ≥ DTS, no ffmpeg warning, a PCR at each video frame, the codec
 * string and picture size ffprobe reports, ts-measure's numbers; and all chunks concatenated
 * decode as one stream without continuity warnings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseFlvTag } from '../../../src/media/flv-packets.ts';
import { probeSegment } from '../../../src/media/probe.ts';
import { measureTs } from '../../../src/media/ts-measure.ts';
import { AUDIO_PID, PMT_PID, TS_PACKET_BYTES, VIDEO_PID } from '../../../src/media/ts-muxer.ts';
import { TS_OUTPUT_BYTES, TS_START_90K, TsSegmenter, type SourceStreamInfo, type TsChunk, type TsSegment } from '../../../src/media/ts-segmenter.ts';
import { clipFlv, readFlvTags } from '../../helpers/flv.ts';

const run = promisify(execFile);
const TARGET_MS = 2000;

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'ts-segmenter-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

interface Packet { type: 'video' | 'audio'; pts: number; dts: number; key: boolean }

async function ffprobePackets(path: string): Promise<Packet[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type,pts,dts,flags', '-of', 'json', path], { maxBuffer: 64 << 20 });
  const packets = (JSON.parse(stdout) as { packets: { codec_type: string; pts: number; dts: number; flags: string }[] }).packets;
  return packets.map((p) => ({ type: p.codec_type as Packet['type'], pts: p.pts, dts: p.dts, key: p.flags.startsWith('K') }));
}

/** ffmpeg decoding the file: its warnings (empty when clean). */
async function decodeWarnings(path: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'warning', '-i', path, '-f', 'null', '-'], { maxBuffer: 64 << 20 });
  return stderr.trim();
}

interface Segmented { info: SourceStreamInfo[]; chunks: TsChunk[]; segments: TsSegment[]; cpuMs: number; order: string[] }

function segment(tags: Buffer[], segmentTargetMs = TARGET_MS): Segmented {
  const copies = tags.map((t) => Buffer.from(t));
  const out: Segmented = { info: [], chunks: [], segments: [], cpuMs: 0, order: [] };
  const s = new TsSegmenter({ segmentTargetMs });
  s.on('info', (i) => { out.info.push(i); out.order.push('info'); });
  s.on('chunk', (c) => { out.chunks.push(c); out.order.push(`chunk ${c.seq}`); });
  s.on('segment', (g) => { out.segments.push(g); out.order.push(`segment ${g.seq}`); });
  const t0 = process.cpuUsage();
  for (const tag of tags) {
    const p = parseFlvTag(tag);
    if (p) s.push(p);
  }
  s.end();
  const cpu = process.cpuUsage(t0);
  out.cpuMs = (cpu.user + cpu.system) / 1000;
  tags.forEach((t, i) => assert.ok(t.equals(copies[i]!), 'input tags are never modified'));
  return out;
}

/** The FLV file's packets grouped as the segmenter's rule says (module docs of ts-segmenter.ts), in file order. */
function expectedGroups(source: Packet[], targetMs: number): Packet[][] {
  const groups: Packet[][] = [];
  const firstKey = source.find((p) => p.type === 'video' && p.key)!;
  for (const p of source) {
    if (groups.length === 0) {
      if (p !== firstKey) continue;
    }
    // The k-th cut: the first keyframe at or past the first keyframe's DTS + k × target.
    if (p.type === 'video' && p.key && (groups.length === 0 || p.dts >= firstKey.dts + groups.length * targetMs)) {
      groups.push([]);
    }
    groups[groups.length - 1]!.push(p);
  }
  // Audio held before the first keyframe joins segment 0 when not older than the keyframe.
  const held = source.slice(0, source.indexOf(firstKey)).filter((p) => p.type === 'audio' && p.dts >= firstKey.dts);
  groups[0]!.splice(1, 0, ...held);
  return groups;
}

/** Checks every PID's continuity_counter: +1 mod 16 per payload packet, unchanged on adaptation-field-only ones (ISO/IEC 13818-1 §2.4.3.3). */
function assertContinuity(bytes: Buffer): void {
  const last = new Map<number, number>();
  for (const [n, p] of tsPackets(bytes).entries()) {
    const prev = last.get(p.pid);
    if (prev !== undefined) assert.equal(p.cc, p.payload ? (prev + 1) & 0x0f : prev, `continuity_counter of PID ${p.pid} at packet ${n}`);
    last.set(p.pid, p.cc);
  }
}

/** The transport packets of a file: PID, PUSI, random_access_indicator, PCR (90 kHz base). */
function tsPackets(bytes: Buffer): { pid: number; pusi: boolean; rai: boolean; cc: number; payload: boolean; pcr?: number }[] {
  assert.equal(bytes.length % TS_PACKET_BYTES, 0, 'whole 188-byte packets');
  const out = [];
  for (let at = 0; at < bytes.length; at += TS_PACKET_BYTES) {
    assert.equal(bytes[at], 0x47, `sync byte at ${at}`);
    const pid = ((bytes[at + 1]! & 0x1f) << 8) | bytes[at + 2]!;
    const hasAf = (bytes[at + 3]! & 0x20) !== 0;
    let rai = false;
    let pcr: number | undefined;
    if (hasAf && bytes[at + 4]! > 0) {
      const flags = bytes[at + 5]!;
      rai = (flags & 0x40) !== 0;
      if (flags & 0x10) pcr = bytes.readUInt32BE(at + 6) * 2 + (bytes[at + 10]! >> 7);
    }
    out.push({ pid, pusi: (bytes[at + 1]! & 0x40) !== 0, rai, cc: bytes[at + 3]! & 0x0f, payload: (bytes[at + 3]! & 0x10) !== 0, ...(pcr !== undefined ? { pcr } : {}) });
  }
  return out;
}

const byType = (packets: Packet[], type: Packet['type']): Packet[] => packets.filter((p) => p.type === type);

/** All checks of one FLV input; returns the segmented result for extra assertions. */
async function checkParity(name: string, flv: string, expectFps: string): Promise<Segmented> {
  const tags = readFlvTags(flv);
  const result = segment(tags);
  const source = await ffprobePackets(flv);
  const groups = expectedGroups(source, TARGET_MS);
  assert.equal(result.segments.length, groups.length, 'one segment per keyframe at or past each target');
  const base = groups[0]![0]!.dts;
  const to90k = (ms: number): number => TS_START_90K + (ms - base) * 90;
  const info = result.info.at(-1)!;
  const beforeFirstSegment = result.order.slice(0, result.order.indexOf('segment 0'));
  assert.ok(beforeFirstSegment.slice(0, 8).includes('info'), 'a first info within the first frames');
  assert.equal(result.info[beforeFirstSegment.filter((e) => e === 'info').length - 1]!.video!.fpsFinal, true, 'the measured rate before the first segment');

  const all: Buffer[] = [];
  for (const [i, seg] of result.segments.entries()) {
    const file = join(dir, `${name}-${seg.seq}.ts`);
    writeFileSync(file, seg.bytes);
    const chunks = result.chunks.filter((c) => c.seq === seg.seq);
    assert.ok(chunks[0]!.first && chunks.slice(1).every((c) => !c.first), 'the first chunk of a seq is marked first');
    assert.equal(chunks[0]!.startPts90k, seg.startPts90k);
    assert.ok(Buffer.concat(chunks.map((c) => c.bytes)).equals(seg.bytes), 'the segment is its chunks');
    all.push(...chunks.map((c) => c.bytes));

    // Same packets, same timestamps (after the constant offset), same keyframe flags.
    const ours = await ffprobePackets(file);
    const expected = groups[i]!;
    for (const type of ['video', 'audio'] as const) {
      const got = byType(ours, type).map((p) => [p.pts, p.dts, p.key]);
      const want = byType(expected, type).map((p) => [to90k(p.pts), to90k(p.dts), type === 'audio' ? true : p.key]);
      assert.deepEqual(got, want, `${name} seq ${seg.seq}: ${type} packets (pts, dts, key)`);
    }
    assert.equal(seg.frames, byType(expected, 'video').length);
    assert.equal(seg.audioFrames, byType(expected, 'audio').length);
    for (const p of ours) assert.ok(p.pts >= p.dts, `${name} seq ${seg.seq}: PTS ≥ DTS`);
    assert.equal(await decodeWarnings(file), '', `${name} seq ${seg.seq}: ffmpeg decodes without a warning`);

    // Starts with PAT, PMT, then the keyframe's PES with random_access_indicator and a PCR.
    const ts = tsPackets(seg.bytes);
    assert.deepEqual(ts.slice(0, 3).map((p) => p.pid), [0, PMT_PID, VIDEO_PID]);
    assert.ok(ts[2]!.pusi && ts[2]!.rai && ts[2]!.pcr !== undefined, 'the keyframe opens the segment with RAI and PCR');
    const firstVideo = byType(ours, 'video')[0]!;
    assert.ok(firstVideo.key, 'every segment starts with a keyframe');
    assert.equal(seg.startPts90k, firstVideo.pts);
    // A PCR on every video PES start, never more than 100 ms apart, and ≤ the DTS it precedes.
    const pcrs = ts.filter((p) => p.pcr !== undefined);
    assert.ok(ts.filter((p) => p.pid === VIDEO_PID && p.pusi).every((p) => p.pcr !== undefined), 'PCR on each video PES');
    for (let k = 1; k < pcrs.length; k++) assert.ok(pcrs[k]!.pcr! - pcrs[k - 1]!.pcr! <= 9000, 'PCRs ≤ 100 ms apart');
    assert.ok(pcrs[0]!.pcr! < firstVideo.dts);

    // Durations equal the keyframe spacing.
    const next = groups[i + 1]?.find((p) => p.type === 'video');
    if (next) assert.equal(seg.durationMs, next.pts - expected[0]!.pts, 'duration = next keyframe − this one');
    assert.equal(seg.startMs, expected[0]!.pts - groups[0]![0]!.pts);

    // In-process measurement and ffprobe agree with `info`.
    const m = measureTs(seg.bytes);
    assert.deepEqual({ frames: m.frames, codec: m.videoCodecs, width: m.width, height: m.height },
      { frames: seg.frames, codec: info.video!.codecString, width: info.video!.width, height: info.video!.height });
    const probe = await probeSegment(file);
    assert.equal(probe.codecs, `${info.video!.codecString},${info.audio!.codecString}`);
    assert.deepEqual([probe.video!.width, probe.video!.height], [info.video!.width, info.video!.height]);
    // ffprobe guesses r_frame_rate from the first frames' millisecond-rounded timestamps: over a
    // short segment (the 1.46 s one after the clip's 10 s GOP) it reads 24000/1001 for 24/1.
    if (seg.durationMs >= TARGET_MS) assert.equal(`${probe.video!.fpsNum}/${probe.video!.fpsDen}`, expectFps, 'ffprobe r_frame_rate');
    assert.deepEqual([probe.audio!.sampleRate, probe.audio!.channels], [info.audio!.sampleRate, info.audio!.channels]);
  }
  assert.equal(`${info.video!.fpsNum}/${info.video!.fpsDen}`, expectFps, 'frame rate from the DTS = ffprobe r_frame_rate');

  // All chunks in order = one continuous stream.
  const concat = join(dir, `${name}-all.ts`);
  writeFileSync(concat, Buffer.concat(all));
  assertContinuity(Buffer.concat(all));
  assert.equal(await decodeWarnings(concat), '', `${name}: the concatenation decodes without warnings (continuity counters)`);
  const whole = await ffprobePackets(concat);
  assert.equal(byType(whole, 'video').length, result.segments.reduce((n, s) => n + s.frames, 0));
  return result;
}

describe('TsSegmenter on the real clip', () => {
  test('the clip stream-copied (High, B-frames, 10 s GOPs): one segment per GOP, packets and timestamps as ffprobe reads the FLV', async () => {
    const r = await checkParity('copy', await clipFlv('copy', 12), '24/1');
    assert.deepEqual(r.info.at(-1), {
      video: { codec: 'h264', codecString: 'avc1.64001e', width: 640, height: 360, fpsNum: 24, fpsDen: 1, fpsFinal: true },
      audio: { codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 44100, channels: 2 },
    });
  });

  test('re-encoded with 3 B-frames and 2 s GOPs: 2 s segments with DTS < PTS on B-frames and parity with ffprobe', async () => {
    const r = await checkParity('bf3', await clipFlv('bf3', 10), '24/1');
    assert.deepEqual(r.segments.map((s) => s.durationMs).slice(0, -1), [2000, 2000, 2000, 2000]);
    assert.deepEqual(r.segments.map((s) => s.frames), [48, 48, 48, 48, 48]);
  });

  test('re-encoded without B-frames: PTS = DTS, parity with ffprobe', async () => {
    const r = await checkParity('bf0', await clipFlv('bf0', 10), '24/1');
    assert.equal(r.segments.length, 5);
  });

  test('29.97 fps through millisecond timestamps: 30000/1001 as ffprobe says, parity with ffprobe', async () => {
    const r = await checkParity('ntsc', await clipFlv('ntsc', 6), '30000/1001');
    assert.deepEqual(r.info.map((i) => [i.video!.fpsNum, i.video!.fpsDen, i.video!.fpsFinal]), [[30, 1, false], [30000, 1001, true]]);
  });

  test('1080p30 at 6 Mb/s: 30/1 as ffprobe says, parity with ffprobe; CPU per media second reported', async (t) => {
    const flv = await clipFlv('1080p30', 8);
    const r = await checkParity('1080p30', flv, '30/1');
    const mediaS = r.segments.reduce((n, s) => n + s.durationMs, 0) / 1000;
    // The first run includes compiling the code; later runs are what a long-lived gateway pays.
    const tags = readFlvTags(flv);
    const warm = [1, 2, 3, 4].map(() => segment(tags).cpuMs);
    t.diagnostic(`parse + mux CPU per media second, 1080p30 6 Mb/s: first run ${(r.cpuMs / mediaS).toFixed(2)} ms, warm ${(Math.min(...warm) / mediaS).toFixed(2)} ms`);
  });

  test('AAC as ffmpeg encodes it, mono 48 kHz and 5.1 at 22.05 kHz: ADTS that ffprobe reads with the rate and channels of info', async () => {
    for (const [kind, sampleRate, channels] of [['mono48k', 48000, 1], ['six22k', 22050, 6]] as const) {
      const flv = await clipFlv(kind, 4);
      const r = segment(readFlvTags(flv));
      assert.deepEqual(r.info.at(-1), { audio: { codec: 'aac', codecString: 'mp4a.40.2', sampleRate, channels } });
      const file = join(dir, `${kind}.ts`);
      writeFileSync(file, Buffer.concat(r.chunks.map((c) => c.bytes)));
      const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,profile,sample_rate,channels', '-of', 'json', file]);
      assert.deepEqual(JSON.parse(stdout).streams, [{ codec_name: 'aac', profile: 'LC', sample_rate: String(sampleRate), channels }]);
      assert.equal((await ffprobePackets(file)).length, (await ffprobePackets(flv)).length, `${kind}: every frame`);
      assert.equal(await decodeWarnings(file), '', `${kind}: decodes without warnings`);
    }
  });

  test('chunkViews: every frame is muxed into one reused buffer, chunks are views of it, and the segments are byte for byte what the muxer wrote before', async () => {
    // sha256 of each segment as the muxer wrote it when every frame had Buffers of its own
    // (at 2aa0339), for the clip stream-copied (10 s GOPs, keyframes larger than TS_OUTPUT_BYTES) and audio only.
    const before: Record<'copy' | 'audio', string[]> = {
      copy: [
        '6297d1477dfbe392ffa0d2aa19ea85998b4c45c9b40fc56c508c88224d3737c6',
        '1d3af6a324d88616d61bf5d0bb65deb9fb65fb972da07abf70c40e5fba39498a',
        'e7d868bccab96b337ee0a3acf8053951f9e660ee4dc733c4bfdcd2bd45cf023e',
      ],
      audio: [
        '7557c3cfedc5d66d7b4a843a4848cb268571a2156bbe4d6d52bd6362537b4f53',
        '9f71f86202fb071f339d88594779039de5e5a5b4205ffe9509ea1d8e12985950',
        '4aba68407a6d8bdf74a438694496673e7567aa1bae56752a0f9819ec608e98ab',
        '07b64f6f9909a90678b974bda101852e7fda46cdc1cada38a71d8f0f2b3e3076',
      ],
    };
    for (const kind of ['copy', 'audio'] as const) {
      const tags = readFlvTags(await clipFlv(kind, kind === 'copy' ? 12 : 7));
      const kept = segment(tags);
      const s = new TsSegmenter({ segmentTargetMs: TARGET_MS, keepSegmentBytes: false, chunkViews: true });
      const bySeq = new Map<number, Buffer[]>();
      const views: Buffer[] = [];
      s.on('chunk', (c) => {
        views.push(c.bytes);
        bySeq.set(c.seq, [...(bySeq.get(c.seq) ?? []), Buffer.from(c.bytes)]);
      });
      const byteLengths: number[] = [];
      s.on('segment', (g) => {
        assert.equal(g.bytes.length, 0, 'no segment bytes kept');
        byteLengths.push(g.byteLength);
      });
      for (const tag of tags) {
        const p = parseFlvTag(tag);
        if (p) s.push(p);
      }
      s.end();
      const segments = [...bySeq.keys()].sort((a, b) => a - b).map((seq) => Buffer.concat(bySeq.get(seq)!));
      assert.deepEqual(segments.map((b) => b.length), byteLengths, `${kind}: byteLength is the sum of the chunks`);
      assert.deepEqual(segments.map((b) => createHash('sha256').update(b).digest('hex')), before[kind], `${kind}: the same bytes as before`);
      assert.deepEqual(segments.map((b) => createHash('sha256').update(b).digest('hex')), kept.segments.map((g) => createHash('sha256').update(g.bytes).digest('hex')), `${kind}: the same bytes as a segmenter that keeps its segments`);
      // Chunks up to TS_OUTPUT_BYTES are views of the same buffer, from its start: nothing allocated per frame.
      const small = views.filter((v) => v.length <= TS_OUTPUT_BYTES);
      assert.ok(small.length > 10, `${kind}: small chunks`);
      assert.ok(small.every((v) => v.byteOffset === 0 && v.buffer === small[0]!.buffer), `${kind}: one reused output buffer`);
      if (kind === 'copy') assert.ok(views.some((v) => v.length > TS_OUTPUT_BYTES), 'a keyframe larger than the kept buffer');
    }
  });

  test('audio only: cuts on audio frames at the target, PCR on the audio PID, parity with ffprobe', async () => {
    const flv = await clipFlv('audio', 7);
    const r = segment(readFlvTags(flv));
    const source = await ffprobePackets(flv);
    const base = source[0]!.dts;
    assert.deepEqual(r.info.at(-1), { audio: { codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 44100, channels: 2 } });
    assert.ok(r.segments.length >= 3);
    let consumed = 0;
    for (const seg of r.segments) {
      const file = join(dir, `audio-${seg.seq}.ts`);
      writeFileSync(file, seg.bytes);
      const ours = await ffprobePackets(file);
      const want = source.slice(consumed, consumed + ours.length);
      consumed += ours.length;
      assert.deepEqual(ours.map((p) => p.pts), want.map((p) => TS_START_90K + (p.pts - base) * 90));
      assert.ok(ours.every((p) => p.type === 'audio'));
      assert.ok(want[0]!.dts - base >= seg.startMs && seg.startMs === Math.round((ours[0]!.pts - TS_START_90K) / 90));
      const end = seg.startMs + seg.durationMs;
      if (seg !== r.segments.at(-1)) assert.ok(end >= (seg.seq + 1) * TARGET_MS && end < (seg.seq + 1) * TARGET_MS + 24, 'cut at the first frame at or past each target of the grid');
      const ts = tsPackets(seg.bytes);
      assert.deepEqual(ts.slice(0, 3).map((p) => p.pid), [0, PMT_PID, AUDIO_PID]);
      assert.ok(ts[2]!.pcr !== undefined);
      assert.equal(await decodeWarnings(file), '');
    }
    assert.equal(consumed, source.length, 'every audio frame is in a segment');
    const concat = join(dir, 'audio-all.ts');
    writeFileSync(concat, Buffer.concat(r.chunks.map((c) => c.bytes)));
    assertContinuity(Buffer.concat(r.chunks.map((c) => c.bytes)));
    assert.equal(await decodeWarnings(concat), '');
  });
});
