/**
 * parseFlvTag on hand-built tags (Adobe FLV specification v10.1 Annex E): every AVC/AAC
 * packet type, the signed composition time, ffmpeg's key-flagged end-of-sequence tag, the
 * 32-bit timestamp, and everything else reported as unsupported without throwing or
 * touching the input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlvTag } from '../../../src/media/flv-packets.ts';

/** One whole tag: 11-byte header, body, PreviousTagSize. */
function tag(type: number, timestampMs: number, body: number[]): Buffer {
  const t = Buffer.alloc(11 + body.length + 4);
  t[0] = type;
  t.writeUIntBE(body.length, 1, 3);
  t.writeUIntBE(timestampMs & 0xffffff, 4, 3);
  t[7] = Math.floor(timestampMs / 0x1000000) & 0xff;
  Buffer.from(body).copy(t, 11);
  t.writeUInt32BE(11 + body.length, 11 + body.length);
  return t;
}

test('the 13-byte FLV file header gives undefined', () => {
  assert.equal(parseFlvTag(Buffer.from('464c5601050000000900000000', 'hex')), undefined);
});

test('AVC sequence header, NAL units and end of sequence are told apart by AVCPacketType', () => {
  assert.deepEqual(parseFlvTag(tag(9, 0, [0x17, 0, 0, 0, 0, 1, 0x64, 0x00])), { type: 'avc-config', dtsMs: 0, avcC: Buffer.from([1, 0x64, 0]) });
  assert.deepEqual(parseFlvTag(tag(9, 40, [0x17, 1, 0, 0, 83, 0, 0, 0, 1, 0x65])),
    { type: 'video', dtsMs: 40, ctsMs: 83, keyframe: true, data: Buffer.from([0, 0, 0, 1, 0x65]) });
  assert.deepEqual(parseFlvTag(tag(9, 80, [0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])),
    { type: 'video', dtsMs: 80, ctsMs: 0, keyframe: false, data: Buffer.from([0, 0, 0, 1, 0x41]) });
  // ffmpeg's closing end-of-sequence tag carries the key flag: still not a keyframe.
  assert.deepEqual(parseFlvTag(tag(9, 9999, [0x17, 2, 0, 0, 0])), { type: 'video-end', dtsMs: 9999 });
});

test('the composition time is a signed 24-bit number', () => {
  const p = parseFlvTag(tag(9, 100, [0x27, 1, 0xff, 0xff, 0xd6, 0, 0, 0, 1, 0x41]));
  assert.equal(p?.type === 'video' && p.ctsMs, -42);
  const q = parseFlvTag(tag(9, 100, [0x27, 1, 0x7f, 0xff, 0xff, 0, 0, 0, 1, 0x41]));
  assert.equal(q?.type === 'video' && q.ctsMs, 0x7fffff);
});

test('the timestamp takes TimestampExtended as its upper 8 bits', () => {
  const p = parseFlvTag(tag(8, 0x1234567 * 2, [0xaf, 1, 0x21]));
  assert.deepEqual(p, { type: 'audio', dtsMs: 0x1234567 * 2, data: Buffer.from([0x21]) });
  assert.deepEqual(parseFlvTag(tag(8, 0xffffffff, [0xaf, 1, 0x21])), { type: 'audio', dtsMs: 0xffffffff, data: Buffer.from([0x21]) });
});

test('AAC AudioSpecificConfig and raw frames', () => {
  assert.deepEqual(parseFlvTag(tag(8, 0, [0xaf, 0, 0x12, 0x10])), { type: 'aac-config', dtsMs: 0, asc: Buffer.from([0x12, 0x10]) });
  assert.deepEqual(parseFlvTag(tag(8, 23, [0xaf, 1, 1, 2, 3])), { type: 'audio', dtsMs: 23, data: Buffer.from([1, 2, 3]) });
});

test('other codecs, script data, encrypted, enhanced-RTMP and truncated tags are unsupported, never thrown', () => {
  const cases: [Buffer, RegExp][] = [
    [tag(18, 0, [2, 0, 10]), /script data/],
    [tag(9, 0, [0x12, 0, 0]), /video codec id 2/],
    [tag(9, 0, [0x90, 0x68, 0x76, 0x63, 0x31]), /enhanced RTMP/],
    [tag(9, 0, [0x57, 0]), /info\/command/],
    [tag(9, 0, [0x17, 1, 0]), /shorter than its 5-byte header/],
    [tag(8, 0, [0x2f, 1, 0]), /sound format 2/],
    [tag(8, 0, [0xaf]), /shorter than its 2-byte header/],
    [tag(0x28, 0, [0xaf, 1, 0]), /encrypted/],
    [tag(9, 0, []), /empty video tag/],
    [tag(8, 0, []), /empty audio tag/],
    [tag(9, 0, [0x17, 1, 0, 0, 0, 1]).subarray(0, 13), /truncated tag/],
    [Buffer.from([9, 0, 0]), /shorter than the 11-byte tag header/],
  ];
  for (const [bytes, what] of cases) {
    const p = parseFlvTag(bytes);
    assert.equal(p?.type, 'unsupported');
    assert.match((p as { what: string }).what, what);
  }
});

test('the tag is never modified and the packet bytes are views into it', () => {
  const t = tag(9, 40, [0x17, 1, 0, 0, 83, 0, 0, 0, 1, 0x65]);
  const copy = Buffer.from(t);
  const p = parseFlvTag(t);
  assert.ok(t.equals(copy));
  assert.equal(p?.type === 'video' && p.data.buffer, t.buffer);
});
