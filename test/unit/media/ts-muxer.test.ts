/**
 * TsMuxer's bytes (ISO/IEC 13818-1), read back by an independent parser in this file and by
 * ts-measure.ts: PAT/PMT with valid CRCs and the PCR PID, PTS/DTS/PCR fields at 33-bit
 * values and across the wrap, every payload size packed into whole 188-byte packets with
 * adaptation-field stuffing, and continuity counters across calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAvcDecoderConfig, splitAvcc } from '../../../src/media/h264.ts';
import { crc32Mpeg2, measureTs } from '../../../src/media/ts-measure.ts';
import { AUDIO_PID, PMT_PID, TIMESTAMP_WRAP_90K, TS_PACKET_BYTES, TsMuxer, VIDEO_PID } from '../../../src/media/ts-muxer.ts';

/** The bf0 test input's avcC (x264 High 3.0, 640x360). */
const AVCC = Buffer.from('0164001effe100186764001eacb405017fcb080000030008000003018078b17501000468ef3cb0fdf8f800', 'hex');

interface Parsed { pid: number; pusi: boolean; cc: number; af?: Buffer; payload: Buffer }

function parse(bytes: Buffer): Parsed[] {
  assert.equal(bytes.length % TS_PACKET_BYTES, 0);
  const out: Parsed[] = [];
  for (let at = 0; at < bytes.length; at += TS_PACKET_BYTES) {
    const p = bytes.subarray(at, at + TS_PACKET_BYTES);
    assert.equal(p[0], 0x47);
    const afc = (p[3]! >> 4) & 3;
    let start = 4;
    let af: Buffer | undefined;
    if (afc & 2) {
      af = p.subarray(5, 5 + p[4]!);
      start = 5 + p[4]!;
      assert.ok(start <= TS_PACKET_BYTES);
    }
    out.push({ pid: ((p[1]! & 0x1f) << 8) | p[2]!, pusi: (p[1]! & 0x40) !== 0, cc: p[3]! & 15, ...(af ? { af } : {}), payload: afc & 1 ? p.subarray(start) : Buffer.alloc(0) });
  }
  return out;
}

function readTimestamp(b: Buffer, at: number): number {
  return Math.floor(b[at]! / 2 % 8) * 2 ** 30 + b[at + 1]! * 2 ** 22 + (b[at + 2]! >> 1) * 2 ** 15 + b[at + 3]! * 2 ** 7 + (b[at + 4]! >> 1);
}

function readPcr(af: Buffer): number {
  return af.readUInt32BE(1) * 2 + (af[5]! >> 7);
}

test('PAT and PMT: one packet each, CRC-32/MPEG-2 valid, program 1 on PMT PID 0x1000, PCR on the video PID (audio PID without video)', () => {
  const sectionOf = (p: Parsed): Buffer => {
    assert.ok(p.pusi);
    assert.equal(p.payload[0], 0, 'pointer_field');
    const length = ((p.payload[2]! & 0x0f) << 8) | p.payload[3]!;
    const s = p.payload.subarray(1, 4 + length);
    assert.equal(crc32Mpeg2(s), 0, 'CRC_32 over the whole section is 0');
    assert.ok(p.payload.subarray(4 + length).every((b) => b === 0xff), 'filler after the section');
    return s;
  };
  const av = parse(new TsMuxer({ video: true, audio: true }).tables());
  assert.deepEqual(av.map((p) => p.pid), [0, PMT_PID]);
  const pat = sectionOf(av[0]!);
  assert.deepEqual([...pat.subarray(8, 12)], [0, 1, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]);
  const pmt = sectionOf(av[1]!);
  assert.equal(pmt[0], 2);
  assert.equal(((pmt[8]! & 0x1f) << 8) | pmt[9]!, VIDEO_PID, 'PCR_PID');
  assert.deepEqual([...pmt.subarray(12, 22)], [0x1b, 0xe1, 0x00, 0xf0, 0, 0x0f, 0xe1, 0x01, 0xf0, 0]);
  const audioOnly = sectionOf(parse(new TsMuxer({ video: false, audio: true }).tables())[1]!);
  assert.equal(((audioOnly[8]! & 0x1f) << 8) | audioOnly[9]!, AUDIO_PID);
});

test('a change of streams bumps the PMT version_number', () => {
  const m = new TsMuxer({ video: true, audio: false });
  const version = (): number => (parse(m.tables())[1]!.payload[6]! >> 1) & 0x1f;
  assert.equal(version(), 0);
  assert.equal(m.setStreams({ video: true, audio: false }), false);
  assert.equal(version(), 0);
  assert.equal(m.setStreams({ video: true, audio: true }), true);
  assert.equal(version(), 1);
});

test('video PES: PTS, and DTS only when it differs; 33-bit values and the wrap; PCR and random_access_indicator on the first packet', () => {
  const m = new TsMuxer({ video: true, audio: true });
  const big = 2 ** 33 - 1;
  const withDts = parse(m.video({ dts90k: big, pts90k: TIMESTAMP_WRAP_90K + 3003, keyframe: true, nalUnits: [Uint8Array.from([0x09, 0xf0])], pcr90k: big - 63000 }));
  const pes = withDts[0]!.payload;
  assert.deepEqual([...pes.subarray(0, 4)], [0, 0, 1, 0xe0]);
  assert.equal(pes[7], 0xc0, 'PTS_DTS_flags 11');
  assert.equal(pes[9]! >> 4, 3);
  assert.equal(pes[14]! >> 4, 1);
  assert.equal(readTimestamp(pes, 9), 3003, 'PTS wrapped mod 2^33');
  assert.equal(readTimestamp(pes, 14), big);
  const af = withDts[0]!.af!;
  assert.equal(af[0]! & 0x50, 0x50, 'random_access_indicator and PCR_flag');
  assert.equal(readPcr(af), big - 63000);
  assert.deepEqual([...pes.subarray(19)], [0, 0, 0, 1, 0x09, 0xf0], 'Annex B with a 4-byte start code');

  const ptsOnly = parse(m.video({ dts90k: 1234567, pts90k: 1234567, keyframe: false, nalUnits: [Uint8Array.from([0x41, 1])] }));
  assert.equal(ptsOnly[0]!.payload[7], 0x80, 'PTS_DTS_flags 10');
  assert.equal(readTimestamp(ptsOnly[0]!.payload, 9), 1234567);
  assert.equal(ptsOnly[0]!.af?.[0] ?? 0, 0, 'no flags without keyframe or PCR');
});

test('every payload size packs into whole packets that reassemble to the PES, with stuffing in the adaptation field', () => {
  const m = new TsMuxer({ video: true, audio: true });
  let cc = -1;
  for (let size = 0; size < 600; size++) {
    for (const [keyframe, pcr] of [[false, undefined], [true, 900000]] as const) {
      const nal = Uint8Array.from({ length: size + 1 }, (_, i) => (i * 7 + 1) & 0xff);
      const bytes = m.video({ dts90k: 900000, pts90k: 900000, keyframe, nalUnits: [nal], ...(pcr !== undefined ? { pcr90k: pcr } : {}) });
      const packets = parse(bytes);
      assert.ok(packets[0]!.pusi && packets.slice(1).every((p) => !p.pusi));
      for (const p of packets) {
        assert.equal(p.pid, VIDEO_PID);
        if (cc >= 0) assert.equal(p.cc, (cc + 1) & 15, 'continuity_counter +1 per packet');
        cc = p.cc;
        if (p.af && p.af.length > 1) assert.ok(p.af.subarray(1 + (p.af[0]! & 0x10 ? 6 : 0)).every((b) => b === 0xff), 'stuffing bytes are 0xFF');
      }
      const pes = Buffer.concat(packets.map((p) => p.payload));
      assert.deepEqual([...pes.subarray(pes.length - nal.length)], [...nal]);
      assert.equal(pes.length, 14 + 4 + nal.length, `size ${size}: nothing but PES in the payload`);
      const minimal = Math.ceil((pes.length + (keyframe ? 8 : 0)) / 184);
      assert.equal(packets.length, minimal, `size ${size}: no extra packet`);
    }
  }
});

test('audio PES with PES_packet_length; a PCR-only packet keeps the continuity counter', () => {
  const m = new TsMuxer({ video: false, audio: true });
  const frame = Buffer.alloc(300, 0x55);
  const packets = parse(m.audio({ pts90k: 126000, parts: [Buffer.from([0xff, 0xf1]), frame], pcr90k: 63000 }));
  const pes = Buffer.concat(packets.map((p) => p.payload));
  assert.deepEqual([...pes.subarray(0, 4)], [0, 0, 1, 0xc0]);
  assert.equal(pes.readUInt16BE(4), pes.length - 6);
  assert.equal(readTimestamp(pes, 9), 126000);
  assert.equal(readPcr(packets[0]!.af!), 63000);
  const pcrOnly = parse(m.pcrOnly(72000))[0]!;
  assert.equal(pcrOnly.pid, AUDIO_PID);
  assert.equal(pcrOnly.cc, packets.at(-1)!.cc, 'adaptation-field-only packets do not increment the counter');
  assert.equal(pcrOnly.payload.length, 0);
  assert.equal(readPcr(pcrOnly.af!), 72000);
});

test('ts-measure reads a muxed keyframe: frames, picture size and codec string from the SPS', () => {
  const config = parseAvcDecoderConfig(AVCC);
  const m = new TsMuxer({ video: true, audio: false });
  const frame = (key: boolean): Buffer => m.video({ dts90k: 126000, pts90k: 126000, keyframe: key, pcr90k: 63000,
    nalUnits: [Uint8Array.from([0x09, 0xf0]), ...(key ? [...config.sps, ...config.pps] : []), Uint8Array.from([key ? 0x65 : 0x41, 0x88, 0x84])] });
  const ts = Buffer.concat([m.tables(), frame(true), frame(false), frame(false)]);
  const measured = measureTs(ts);
  assert.deepEqual({ ...measured, streams: undefined }, { frames: 3, bytes: ts.length, videoCodecs: 'avc1.64001e', width: 640, height: 360, streams: undefined });
});

test('avcC: NAL length size, SPS and PPS; AVCC samples split into NAL units', () => {
  const config = parseAvcDecoderConfig(AVCC);
  assert.equal(config.nalLengthBytes, 4);
  assert.equal(config.sps.length, 1);
  assert.equal(config.sps[0]![0], 0x67);
  assert.deepEqual([...config.pps[0]!], [0x68, 0xef, 0x3c, 0xb0]);
  assert.throws(() => parseAvcDecoderConfig(AVCC.subarray(0, 20)), /runs past/);
  assert.throws(() => parseAvcDecoderConfig(Buffer.from([2, 0x64, 0, 0x1e, 0xff, 0xe0, 0])), /configurationVersion/);
  assert.throws(() => parseAvcDecoderConfig(Buffer.from([1, 0x64, 0, 0x1e, 0xff, 0xe0, 0])), /no SPS/);
  const sample = Buffer.from([0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 9, 0x41]);
  assert.deepEqual(splitAvcc(sample, 4).map((n) => [...n]), [[0x06, 0x05], [0x65, 1, 2]], 'a length past the end stops the split');
  assert.deepEqual(splitAvcc(Buffer.from([0, 1, 0x41, 0, 2, 0x41, 0x42]), 2).map((n) => [...n]), [[0x41], [0x41, 0x42]]);
});
