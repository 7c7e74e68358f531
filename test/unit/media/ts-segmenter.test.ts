/**
 * TsSegmenter's rules on synthetic packet sequences (the real-clip parity with ffprobe is in
 * test/integration/media/ts-segmenter.test.ts): where it cuts, where audio goes, what is
 * held or dropped before the first keyframe, audio-only streams, the events and their order,
 * the timestamps written, the access unit layout, and the frame-rate rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlvPacket } from '../../../src/media/flv-packets.ts';
import { AUDIO_PID, PMT_PID, TS_PACKET_BYTES, VIDEO_PID } from '../../../src/media/ts-muxer.ts';
import { frameRateFromSpan, TS_START_90K, TsSegmenter, type SourceStreamInfo, type TsChunk, type TsSegment, type TsSegmenterWarning } from '../../../src/media/ts-segmenter.ts';

/** The bf0 test input's avcC (x264 High 3.0, 640x360) and the clip's ASC (AAC LC 44.1 kHz stereo). */
const AVCC = Buffer.from('0164001effe100186764001eacb405017fcb080000030008000003018078b17501000468ef3cb0fdf8f800', 'hex');
const ASC = Buffer.from('1210', 'hex');

const avcConfig: FlvPacket = { type: 'avc-config', dtsMs: 0, avcC: AVCC };
const aacConfig: FlvPacket = { type: 'aac-config', dtsMs: 0, asc: ASC };
const avcc = (...nals: number[][]): Buffer => Buffer.concat(nals.map((n) => { const b = Buffer.alloc(4 + n.length); b.writeUInt32BE(n.length); Buffer.from(n).copy(b, 4); return b; }));
const video = (dtsMs: number, keyframe: boolean, ctsMs = 0, data = avcc([keyframe ? 0x65 : 0x41, 0x88, dtsMs & 0xff])): FlvPacket => ({ type: 'video', dtsMs, ctsMs, keyframe, data });
const audio = (dtsMs: number): FlvPacket => ({ type: 'audio', dtsMs, data: Buffer.alloc(20, dtsMs & 0xff) });

interface Run { events: string[]; info: SourceStreamInfo[]; chunks: TsChunk[]; segments: TsSegment[]; warnings: TsSegmenterWarning[]; seg: TsSegmenter }

function runSegmenter(packets: FlvPacket[], options: ConstructorParameters<typeof TsSegmenter>[0] = { segmentTargetMs: 2000 }, end = true): Run {
  const r: Run = { events: [], info: [], chunks: [], segments: [], warnings: [], seg: new TsSegmenter(options) };
  r.seg.on('info', (i) => { r.info.push(i); r.events.push('info'); });
  r.seg.on('chunk', (c) => { r.chunks.push(c); r.events.push(`chunk ${c.seq}${c.first ? ' first' : ''}`); });
  r.seg.on('segment', (s) => { r.segments.push(s); r.events.push(`segment ${s.seq}`); });
  r.seg.on('warning', (w) => { r.warnings.push(w); });
  for (const p of packets) r.seg.push(p);
  if (end) r.seg.end();
  return r;
}

/** The PES packets of one PID in a TS, each with its PTS/DTS and payload. */
function pesOf(ts: Buffer, pid: number): { pts: number; dts: number; data: Buffer }[] {
  const units: Buffer[][] = [];
  for (let at = 0; at < ts.length; at += TS_PACKET_BYTES) {
    const p = ts.subarray(at, at + TS_PACKET_BYTES);
    if ((((p[1]! & 0x1f) << 8) | p[2]!) !== pid || (p[3]! & 0x10) === 0) continue;
    const start = p[3]! & 0x20 ? 5 + p[4]! : 4;
    if (p[1]! & 0x40) units.push([]);
    units.at(-1)?.push(p.subarray(start));
  }
  const ts33 = (b: Buffer, at: number): number => Math.floor(b[at]! / 2 % 8) * 2 ** 30 + b[at + 1]! * 2 ** 22 + (b[at + 2]! >> 1) * 2 ** 15 + b[at + 3]! * 2 ** 7 + (b[at + 4]! >> 1);
  return units.map((u) => {
    const pes = Buffer.concat(u);
    const pts = ts33(pes, 9);
    return { pts, dts: pes[7]! & 0x40 ? ts33(pes, 14) : pts, data: pes.subarray(9 + pes[8]!) };
  });
}

/** 10 fps video with a keyframe every `gopMs`, audio every 50 ms, from `fromMs` to `toMs`. */
function stream(fromMs: number, toMs: number, gopMs: number): FlvPacket[] {
  const out: FlvPacket[] = [avcConfig, aacConfig];
  for (let t = fromMs; t < toMs; t += 50) {
    if (t % 100 === 0) out.push(video(t, (t - fromMs) % gopMs === 0));
    out.push(audio(t));
  }
  return out;
}

test('cuts at the first keyframe at or past each target of the grid (start + k × target); audio goes to the segment current when it arrives', () => {
  const r = runSegmenter(stream(0, 7000, 1500), { segmentTargetMs: 2000 });
  // keyframes every 1.5 s: 0, 1500, 3000, 4500, 6000; targets 2000, 4000, 6000 → cuts at 0, 3000, 4500, 6000
  assert.deepEqual(r.segments.map((s) => [s.seq, s.startMs, s.durationMs, s.frames, s.audioFrames]),
    [[0, 0, 3000, 30, 60], [1, 3000, 1500, 15, 30], [2, 4500, 1500, 15, 30], [3, 6000, 1000, 10, 20]]);
  assert.deepEqual(r.segments.map((s) => s.startPts90k), [TS_START_90K, TS_START_90K + 270000, TS_START_90K + 405000, TS_START_90K + 540000]);
  const second = pesOf(r.segments[1]!.bytes, AUDIO_PID);
  assert.equal(second[0]!.pts, TS_START_90K + 3000 * 90, 'the audio at the keyframe time arrived after it');
});

test('events: info before the first segment; a chunk per video frame, the first with PAT/PMT and startPts90k; segment = its chunks, after them', () => {
  const r = runSegmenter(stream(0, 4500, 1000), { segmentTargetMs: 2000, firstSeq: 7 });
  assert.ok(r.events.indexOf('info') < r.events.indexOf('segment 7'));
  const described = (fpsFinal: boolean): SourceStreamInfo => ({
    video: { codec: 'h264', codecString: 'avc1.64001e', width: 640, height: 360, fpsNum: 10, fpsDen: 1, fpsFinal },
    audio: { codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 44100, channels: 2 },
  });
  assert.deepEqual(r.info, [described(false), described(true)], 'an early estimate, then the measured rate');
  assert.equal(r.events.slice(0, r.events.indexOf('info')).filter((e) => e.startsWith('chunk')).length, 3, 'the estimate comes with the 4th frame, before its chunk');
  assert.deepEqual(r.segments.map((s) => s.seq), [7, 8, 9]);
  for (const s of r.segments) {
    const chunks = r.chunks.filter((c) => c.seq === s.seq);
    // One chunk per video frame (audio rides along), plus the audio after the last frame at a cut.
    assert.ok(chunks.length === s.frames || chunks.length === s.frames + 1);
    assert.ok(chunks.slice(0, s.frames).every((c) => pesOf(c.bytes, VIDEO_PID).length === 1));
    assert.ok(chunks[0]!.first && chunks[0]!.startPts90k === s.startPts90k);
    assert.ok(Buffer.concat(chunks.map((c) => c.bytes)).equals(s.bytes));
    assert.deepEqual([0, 1, 2].map((n) => ((s.bytes[n * 188 + 1]! & 0x1f) << 8) | s.bytes[n * 188 + 2]!), [0, PMT_PID, VIDEO_PID]);
    assert.ok(r.events.lastIndexOf(`chunk ${s.seq}`) < r.events.indexOf(`segment ${s.seq}`));
  }
});

test('timestamps are rebased to 1.4 s at the first keyframe; PTS = DTS + composition time; a late joiner starts at 0 ms too', () => {
  const packets: FlvPacket[] = [avcConfig, video(5000, true, 200), video(5100, false, 300), video(5200, false, 0), video(5300, false, 100)];
  const r = runSegmenter(packets);
  const pes = pesOf(r.segments[0]!.bytes, VIDEO_PID);
  assert.deepEqual(pes.map((p) => [p.dts - TS_START_90K, p.pts - TS_START_90K]), [[0, 18000], [9000, 36000], [18000, 18000], [27000, 36000]]);
  assert.equal(r.segments[0]!.startPts90k, TS_START_90K + 18000);
  assert.equal(r.segments[0]!.startMs, 0);
  assert.equal(r.segments[0]!.durationMs, 400, 'the last segment ends one frame after its last DTS');
});

test('access units: AUD first, SPS/PPS before each keyframe unless it carries them', () => {
  const sps = [0x67, 0x64, 0x00, 0x1e, 0xac, 0xb4, 0x05, 0x01, 0x7f, 0xcb, 0x08, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0x80, 0x78, 0xb1, 0x75];
  const r = runSegmenter([avcConfig,
    video(0, true), video(100, false),
    video(200, true, 0, avcc([0x09, 0x10], sps, [0x68, 1], [0x65, 9]))]);
  const types = pesOf(r.segments[0]!.bytes, VIDEO_PID).map((p) => {
    const nals: number[] = [];
    for (let i = 0; i + 4 < p.data.length; i++) if (p.data[i] === 0 && p.data[i + 1] === 0 && p.data[i + 2] === 0 && p.data[i + 3] === 1) nals.push(p.data[i + 4]! & 0x1f);
    return nals;
  });
  assert.deepEqual(types, [[9, 7, 8, 5], [9, 1], [9, 7, 8, 5]]);
});

test('before the first keyframe: inter frames dropped, audio older than the keyframe dropped, newer held and written after it', () => {
  const r = runSegmenter([avcConfig, aacConfig, audio(0), video(0, false), audio(50), audio(100), audio(120), video(100, true), audio(150)]);
  const seg = r.segments[0]!;
  assert.equal(seg.frames, 1);
  assert.deepEqual(pesOf(seg.bytes, AUDIO_PID).map((p) => (p.pts - TS_START_90K) / 90), [0, 20, 50]);
  const order = [];
  for (let at = 376; at < seg.bytes.length; at += 188) if (seg.bytes[at + 1]! & 0x40) order.push(((seg.bytes[at + 1]! & 0x1f) << 8) | seg.bytes[at + 2]!);
  assert.deepEqual(order, [VIDEO_PID, AUDIO_PID, AUDIO_PID, AUDIO_PID], 'the keyframe first');
});

test('ffmpeg\'s end-of-sequence tag (key-flagged) neither cuts nor counts as a frame', () => {
  const r = runSegmenter([...stream(0, 2100, 1000), { type: 'video-end', dtsMs: 2100 }]);
  assert.deepEqual(r.segments.map((s) => s.frames), [20, 1]);
});

test('audio only: after audioOnlyAfterMs without an AVC config; cuts at the first audio frame past each 2 s target of the grid; PCR on the audio PID', () => {
  const packets: FlvPacket[] = [aacConfig];
  for (let k = 0; k < 300; k++) packets.push(audio(Math.round((k * 1024 * 1000) / 44100)));
  const r = runSegmenter(packets, { segmentTargetMs: 2000, audioOnlyAfterMs: 500 }, false);
  r.seg.push(avcConfig);
  r.seg.push(video(7000, true));
  assert.deepEqual(r.warnings.map((w) => w.code), ['late-video-ignored']);
  r.seg.end();
  assert.deepEqual(r.info, [{ audio: { codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 44100, channels: 2 } }]);
  assert.deepEqual(r.segments.map((s) => [s.startMs, s.audioFrames, s.frames]), [[0, 87, 0], [2020, 86, 0], [4017, 86, 0], [6014, 41, 0]]);
  assert.equal(r.segments.reduce((n, s) => n + s.audioFrames, 0), 300, 'no frame lost, the held ones included');
  assert.deepEqual([0, 1, 2].map((n) => ((r.segments[1]!.bytes[n * 188 + 1]! & 0x1f) << 8) | r.segments[1]!.bytes[n * 188 + 2]!), [0, PMT_PID, AUDIO_PID]);
  assert.equal(r.segments[1]!.bytes[188 * 2 + 5]! & 0x50, 0x50, 'PCR and random access on the audio PES');
});

test('an AAC config after the video started: a new PMT version with audio, then the audio', () => {
  const packets: FlvPacket[] = [avcConfig, video(0, true), video(100, false), aacConfig, audio(150), video(200, false)];
  const r = runSegmenter(packets);
  const bytes = r.segments[0]!.bytes;
  const pmts = [];
  for (let at = 0; at < bytes.length; at += 188) if ((((bytes[at + 1]! & 0x1f) << 8) | bytes[at + 2]!) === PMT_PID) pmts.push((bytes[at + 10]! >> 1) & 0x1f);
  assert.deepEqual(pmts, [0, 1]);
  assert.equal(pesOf(bytes, AUDIO_PID).length, 1);
  assert.ok(r.info.at(-1)!.audio, 'info again with the audio');
});

test('a publisher clock that restarts: later timestamps are shifted so DTS keeps increasing by one frame', () => {
  const restarted = stream(0, 1000, 1000).slice(2); // the same clock again from 0, configs left out
  const r = runSegmenter([...stream(0, 3000, 1000), ...restarted]);
  assert.ok(r.warnings.some((w) => w.code === 'timestamp-jump'));
  const all = Buffer.concat(r.segments.map((s) => s.bytes));
  const dts = pesOf(all, VIDEO_PID).map((p) => (p.dts - TS_START_90K) / 90);
  assert.deepEqual(dts, Array.from({ length: 40 }, (_, k) => k * 100));
  const audioPts = pesOf(all, AUDIO_PID).map((p) => (p.pts - TS_START_90K) / 90);
  assert.ok(audioPts.every((t, k) => k === 0 || t > audioPts[k - 1]!), 'audio PTS increasing');
  assert.deepEqual(r.segments.map((s) => [s.startMs, s.frames]), [[0, 20], [2000, 20]]);
});

test('bad input is dropped with one warning per kind; push after end() is ignored; end() is idempotent', () => {
  const r = runSegmenter([video(0, true), { type: 'avc-config', dtsMs: 0, avcC: Buffer.from([1, 2, 3]) }, { type: 'aac-config', dtsMs: 0, asc: Buffer.from([0xf8]) },
    { type: 'unsupported', what: 'script data' }, audio(0)], { segmentTargetMs: 2000 }, false);
  assert.deepEqual(r.warnings.map((w) => w.code), ['video-before-config', 'bad-avc-config', 'bad-aac-config', 'unsupported', 'audio-before-config']);
  r.seg.end();
  r.seg.end();
  r.seg.push(avcConfig);
  r.seg.push(video(0, true));
  assert.deepEqual(r.events, [], 'nothing was ever written');
  assert.throws(() => new TsSegmenter({ segmentTargetMs: 0 }), RangeError);
  assert.throws(() => new TsSegmenter({ segmentTargetMs: 2000, firstSeq: -1 }), RangeError);
});

test('frame rate: the standard rate whose intervals fit the span within FLV\'s 1 ms rounding, else the measured fraction', () => {
  const span = (fps: number, k0: number, n: number): number => Math.round(((k0 + n) * 1000) / fps) - Math.round((k0 * 1000) / fps);
  for (const k0 of [0, 7, 131]) {
    assert.deepEqual(frameRateFromSpan(48, span(24, k0, 48)), [24, 1]);
    assert.deepEqual(frameRateFromSpan(60, span(30, k0, 60)), [30, 1]);
    assert.deepEqual(frameRateFromSpan(50, span(25, k0, 50)), [25, 1]);
    assert.deepEqual(frameRateFromSpan(120, span(60, k0, 120)), [60, 1]);
    assert.deepEqual(frameRateFromSpan(60, span(30000 / 1001, k0, 60)), [30000, 1001]);
    assert.deepEqual(frameRateFromSpan(48, span(24000 / 1001, k0, 48)), [24000, 1001]);
  }
  assert.deepEqual(frameRateFromSpan(10, 1234), [1013, 125], 'no standard rate fits: 8.104 fps');
  assert.deepEqual(frameRateFromSpan(0, 0), [0, 1]);
});

test('a clock jump forward restarts the cut grid instead of cutting at every following keyframe', () => {
  const r = runSegmenter([...stream(0, 4000, 1000), ...stream(600_000, 606_000, 1000).filter((p) => p.type !== 'avc-config' && p.type !== 'aac-config')], { segmentTargetMs: 2000 });
  const starts = r.segments.map((s) => s.startMs);
  // 0 and 2000 before the jump; after it one cut at the jump, then every 2 s again (not every 1 s keyframe).
  assert.deepEqual(starts.slice(0, 2), [0, 2000]);
  const after = starts.slice(2);
  assert.ok(after.length <= 4, `segments after the jump start at ${after.join(', ')}`);
  for (let i = 1; i < after.length; i++) assert.ok(after[i]! - after[i - 1]! >= 2000, `a 2 s grid after the jump: ${after.join(', ')}`);
});

test('keepSegmentBytes false: the chunks are the only copy; a segment reports its size and no bytes', () => {
  const packets = stream(0, 6000, 2000);
  const kept = runSegmenter(packets);
  const streamed = runSegmenter(packets, { segmentTargetMs: 2000, keepSegmentBytes: false });
  assert.deepEqual(streamed.chunks.map((c) => c.bytes.toString('hex')), kept.chunks.map((c) => c.bytes.toString('hex')), 'the same chunks');
  assert.equal(streamed.segments.length, 3);
  for (const [i, s] of streamed.segments.entries()) {
    assert.equal(s.bytes.length, 0, 'no segment bytes kept');
    assert.equal(s.byteLength, kept.segments[i]!.bytes.length);
    assert.equal(kept.segments[i]!.byteLength, kept.segments[i]!.bytes.length);
    assert.equal(s.byteLength, streamed.chunks.filter((c) => c.seq === s.seq).reduce((n, c) => n + c.bytes.length, 0));
  }
});
