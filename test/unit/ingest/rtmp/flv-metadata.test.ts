/**
 * The publisher's declared bitrate from an FLV onMetaData script tag. The tag below is the
 * one ffmpeg 5.1 (Lavf59.27.100) wrote for `ffmpeg -t 1 -i big_buck_bunny_360p24.mp4 -c copy
 * -f flv clip.flv`, read back from the file byte for byte: videodatarate 411.423828125,
 * audiodatarate 93.771484375 (kbit/s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFlvMetadata } from '../../../../src/ingest/rtmp/flv-metadata.ts';

const FFMPEG_ON_METADATA_TAG = Buffer.from(
  '120001740000000000000002000a6f6e4d65746144617461080000001000086475726174696f6e003ff2ac083126e979000577696474680040840000000000000006686569676874004076800000000000000d766964656f6461746172617465004079b6c80000000000096672616d6572617465004038000000000000000c766964656f636f646563696400401c000000000000000d617564696f6461746172617465004057716000000000000f617564696f73616d706c65726174650040e5888000000000000f617564696f73616d706c6573697a65004030000000000000000673746572656f0101000c617564696f636f6465636964004024000000000000000b6d616a6f725f6272616e6402000469736f6d000d6d696e6f725f76657273696f6e0200033531320011636f6d70617469626c655f6272616e647302001069736f6d69736f32617663316d7034310007656e636f64657202000d4c61766635392e32372e313030000866696c6573697a650040e6ee40000000000000090000017f',
  'hex');

/** An FLV script tag around `body` (11-byte header, body, PreviousTagSize). */
function scriptTag(body: Buffer): Buffer {
  const tag = Buffer.alloc(11 + body.length + 4);
  tag[0] = 18;
  tag.writeUIntBE(body.length, 1, 3);
  body.copy(tag, 11);
  tag.writeUInt32BE(11 + body.length, 11 + body.length);
  return tag;
}

function amf0String(s: string): Buffer {
  const b = Buffer.alloc(3 + Buffer.byteLength(s));
  b[0] = 0x02;
  b.writeUInt16BE(Buffer.byteLength(s), 1);
  b.write(s, 3);
  return b;
}

const BODY = FFMPEG_ON_METADATA_TAG.subarray(11, FFMPEG_ON_METADATA_TAG.length - 4);

test('ffmpeg\'s onMetaData tag declares (videodatarate + audiodatarate) × 1000 bit/s', () => {
  assert.equal(FFMPEG_ON_METADATA_TAG.readUIntBE(1, 3), BODY.length, 'the fixture is one whole tag');
  assert.deepEqual(readFlvMetadata(FFMPEG_ON_METADATA_TAG), { declaredBitrateBps: Math.round((411.423828125 + 93.771484375) * 1000) });
  assert.deepEqual(readFlvMetadata(FFMPEG_ON_METADATA_TAG), { declaredBitrateBps: 505_195 });
});

test('the same properties behind "@setDataFrame" (as an RTMP publisher sends them) declare the same rate', () => {
  const tag = scriptTag(Buffer.concat([amf0String('@setDataFrame'), BODY]));
  assert.deepEqual(readFlvMetadata(tag), { declaredBitrateBps: 505_195 });
});

test('no video rate, a zero one or one that is not a number declares nothing; a missing audio rate counts as 0', () => {
  const withRates = (video: string, audio: string): Buffer => {
    // Same length replacements of the property names keep the tag valid.
    const hex = FFMPEG_ON_METADATA_TAG.toString('hex')
      .replace(Buffer.from('videodatarate').toString('hex'), Buffer.from(video).toString('hex'))
      .replace(Buffer.from('audiodatarate').toString('hex'), Buffer.from(audio).toString('hex'));
    return Buffer.from(hex, 'hex');
  };
  assert.deepEqual(readFlvMetadata(withRates('videodataXXXX', 'audiodatarate')), {});
  assert.deepEqual(readFlvMetadata(withRates('videodatarate', 'audiodataXXXX')), { declaredBitrateBps: 411_424 });
  const zeroVideo = Buffer.from(FFMPEG_ON_METADATA_TAG);
  const at = zeroVideo.indexOf('videodatarate') + 'videodatarate'.length + 1; // after the number marker
  zeroVideo.writeDoubleBE(0, at);
  assert.deepEqual(readFlvMetadata(zeroVideo), {});
});

test('other tags are not metadata: audio, video, other script data, truncated tags; none throws', () => {
  const video = Buffer.from(FFMPEG_ON_METADATA_TAG);
  video[0] = 9;
  assert.equal(readFlvMetadata(video), undefined);
  assert.equal(readFlvMetadata(scriptTag(Buffer.concat([amf0String('onFI'), amf0String('x')]))), undefined);
  assert.equal(readFlvMetadata(scriptTag(Buffer.concat([amf0String('@setDataFrame'), amf0String('onCuePoint')]))), undefined);
  assert.equal(readFlvMetadata(Buffer.alloc(5, 18)), undefined);
  for (const cut of [14, 30, 60, 200]) {
    assert.doesNotThrow(() => readFlvMetadata(FFMPEG_ON_METADATA_TAG.subarray(0, cut)));
  }
});
