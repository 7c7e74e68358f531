import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findH264Sps, h264CodecString, h264CodecStringFromNames, splitAnnexB, unescapeRbsp } from '../../../src/media/h264.ts';
import { audioCodecString, findHevcSps, hevcCodecString, parseFfprobeHexDump, sniffPrivateCodec } from '../../../src/media/codec-strings.ts';
import { rotationFromSideData } from '../../../src/media/probe.ts';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

test('High profile level 3.1 SPS bytes give avc1.64001f', () => {
  assert.equal(h264CodecString(bytes(0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9)), 'avc1.64001f');
});

test('Main profile level 3.0 with constraint_set1 gives avc1.4d401e', () => {
  assert.equal(h264CodecString(bytes(0x67, 0x4d, 0x40, 0x1e)), 'avc1.4d401e');
});

test('Constrained Baseline keeps the constraint flags exactly as written in the SPS', () => {
  // x264 baseline sets constraint_set0 and constraint_set1: 0xc0.
  assert.equal(h264CodecString(bytes(0x67, 0x42, 0xc0, 0x15)), 'avc1.42c015');
  assert.equal(h264CodecString(bytes(0x67, 0x42, 0xe0, 0x1e)), 'avc1.42e01e');
});

test('the SPS header byte may carry nal_ref_idc bits other than 3', () => {
  assert.equal(h264CodecString(bytes(0x27, 0x64, 0x00, 0x28)), 'avc1.640028');
});

test('bytes that are not an SPS are refused', () => {
  assert.throws(() => h264CodecString(bytes(0x68, 0x64, 0x00, 0x1f)), RangeError);
  assert.throws(() => h264CodecString(bytes(0x67, 0x64)), RangeError);
});

test('the first SPS is found after an access unit delimiter in Annex-B data with 3- and 4-byte start codes', () => {
  const annexB = bytes(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1e, 0xac, 0, 0, 0, 1, 0x68, 0xef, 0x8f);
  const sps = findH264Sps(annexB);
  assert.ok(sps);
  assert.deepEqual(Array.from(sps), [0x67, 0x64, 0x00, 0x1e, 0xac]);
  assert.equal(splitAnnexB(annexB).length, 3);
  assert.equal(findH264Sps(bytes(0, 0, 1, 0x68, 0xef)), undefined);
});

test('findH264Sps stops at the first SPS but returns exactly the NAL unit splitAnnexB gives: short SPS skipped, trailing zeros, empty units, SPS last', () => {
  const bySplit = (data: Uint8Array): number[] | undefined => {
    const nal = splitAnnexB(data).find((n) => n.length >= 4 && (n[0]! & 0x1f) === 7);
    return nal && Array.from(nal);
  };
  const cases = [
    bytes(0, 0, 1, 0x67, 0x64, 0x00), // an SPS of 3 bytes: not one
    bytes(0, 0, 1, 0x67, 0x64, 0x00, 0, 0, 1, 0x67, 0x4d, 0x40, 0x1e, 0, 0, 0), // the short one skipped; trailing zeros of the last
    bytes(0, 0, 1, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0c, 0xda, 0, 0, 0, 1, 0x68), // an empty unit first
    bytes(0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0, 0, 0, 0, 1), // zeros then a start code at the very end
    bytes(0x55, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0x00), // bytes before the first start code
    bytes(0, 0, 1), bytes(0, 0), bytes(),
  ];
  for (const [i, data] of cases.entries()) assert.deepEqual(findH264Sps(data) && Array.from(findH264Sps(data)!), bySplit(data), `case ${i}`);
  // Random byte streams rich in zeros, ones and SPS headers.
  let seed = 7;
  const next = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; };
  const alphabet = [0, 0, 0, 1, 0x67, 0x27, 0x09, 0x64, 0x1f];
  for (let round = 0; round < 2000; round++) {
    const data = Uint8Array.from({ length: next() % 40 }, () => alphabet[next() % alphabet.length]!);
    assert.deepEqual(findH264Sps(data) && Array.from(findH264Sps(data)!), bySplit(data), `random ${Buffer.from(data).toString('hex')}`);
  }
});

test('ffprobe extradata hex dumps parse to bytes, including a short last line', () => {
  // Real `ffprobe -show_data` output for the test clip's segments.
  const dump = '\n00000000: 0000 0167 6400 1eac d940 a02f f961 0000  ...gd....@./.a..\n'
    + '00000010: 0300 0100 0003 0030 0f16 2d96 0000 0001  .......0..-.....\n'
    + '00000020: 68ef 8fcb                                h...\n';
  const data = parseFfprobeHexDump(dump);
  assert.equal(data.length, 36);
  assert.equal(h264CodecString(findH264Sps(data)!), 'avc1.64001e');
});

test('emulation-prevention bytes are removed from an RBSP', () => {
  assert.deepEqual(Array.from(unescapeRbsp(bytes(1, 0, 0, 3, 1, 0, 0, 3, 0, 3))), [1, 0, 0, 1, 0, 0, 0, 3]);
});

test('an HEVC Main SPS gives hvc1.1.6.L<level>.B0 with bit-reversed compatibility flags', () => {
  // NAL header (type 33), vps id / sub layers byte, then profile_tier_level: Main, compat 0x60000000,
  // constraint bytes B0 00 00 00 00 00, level_idc 63 (2.1).
  const sps = bytes(0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0xa0);
  assert.equal(findHevcSps(Uint8Array.from([0, 0, 0, 1, ...sps])) !== undefined, true);
  assert.equal(hevcCodecString(sps), 'hvc1.1.6.L63.B0');
});

test('an HEVC Main 10 high-tier SPS is described with H and profile 2', () => {
  const sps = bytes(0x42, 0x01, 0x01, 0x22, 0x20, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x99, 0x00);
  assert.equal(hevcCodecString(sps), 'hvc1.2.4.H153.90');
});

test('AAC profiles map to their MPEG-4 audio object types', () => {
  assert.equal(audioCodecString('aac', 'LC'), 'mp4a.40.2');
  assert.equal(audioCodecString('aac', 'HE-AAC'), 'mp4a.40.5');
  assert.equal(audioCodecString('aac', 'HE-AACv2'), 'mp4a.40.29');
  assert.equal(audioCodecString('aac', ''), 'mp4a.40.2');
  assert.equal(audioCodecString('mp3', ''), 'mp4a.40.34');
  assert.equal(audioCodecString('ac3', ''), 'ac-3');
  assert.equal(audioCodecString('pcm_s16le', ''), undefined);
});

test('without an SPS the H.264 codec string falls back to the profile name and level', () => {
  assert.equal(h264CodecStringFromNames('High', 31), 'avc1.64001f');
  assert.equal(h264CodecStringFromNames('Constrained Baseline', 30), 'avc1.42401e');
});

test('VP8, VP9 and AV1 payloads in an MPEG-TS private stream are named from their first bytes', () => {
  // VP8 key frame: 3-byte frame tag (bit 0 = 0: key frame), then the start code 9d 01 2a (RFC 6386 §9.1).
  assert.equal(sniffPrivateCodec(bytes(0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02)), 'vp8');
  assert.equal(sniffPrivateCodec(bytes(0x51, 0x42, 0x00, 0x9d, 0x01, 0x2a)), undefined, 'an inter frame has no start code to check');
  // VP9 profile 0 key frame: frame_marker 0b10, then the sync code 49 83 42.
  assert.equal(sniffPrivateCodec(bytes(0x82, 0x49, 0x83, 0x42, 0x00)), 'vp9');
  // AV1 temporal unit: temporal-delimiter OBU with a zero size.
  assert.equal(sniffPrivateCodec(bytes(0x12, 0x00, 0x0a, 0x0b)), 'av1');
  assert.equal(sniffPrivateCodec(bytes(0x00, 0x00, 0x01, 0x09)), undefined);
  assert.equal(sniffPrivateCodec(bytes()), undefined);
});

test('the display rotation is the negated side-data rotation, in whole quarter turns', () => {
  assert.equal(rotationFromSideData(undefined), 0);
  assert.equal(rotationFromSideData([{}]), 0);
  assert.equal(rotationFromSideData([{ rotation: 90 }]), 270);
  assert.equal(rotationFromSideData([{ rotation: -90 }]), 90);
  assert.equal(rotationFromSideData([{ rotation: 180 }]), 180);
  assert.equal(rotationFromSideData([{ rotation: -180 }]), 180);
  assert.equal(rotationFromSideData([{ rotation: 0 }]), 0);
  assert.equal(rotationFromSideData([{ rotation: -88 }]), 90, 'rounded to the nearest quarter turn');
});
