/**
 * AudioSpecificConfig parsing and ADTS headers (ISO/IEC 14496-3 §1.6.2.1, §1.A.2.2) on
 * known configs: the clip's (AAC LC, 44.1 kHz, stereo), HE-AAC with explicit SBR, and the
 * configs ADTS cannot express.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AacConfigError, aacCodecString, adtsHeader, parseAudioSpecificConfig } from '../../../src/media/aac.ts';

test('AAC LC 44.1 kHz stereo (the clip\'s 12 10)', () => {
  const c = parseAudioSpecificConfig(Buffer.from('1210', 'hex'));
  assert.deepEqual(c, { objectType: 2, coreObjectType: 2, samplingIndex: 4, sampleRateHz: 44100, channelConfig: 2, channels: 2 });
  assert.equal(aacCodecString(c), 'mp4a.40.2');
});

test('HE-AAC with explicit SBR: the core is LC at the core rate, output at the extension rate', () => {
  // object type 5, index 6 (24 kHz), 2 channels, extension index 3 (48 kHz), core type 2
  const c = parseAudioSpecificConfig(Buffer.from('2b118800', 'hex'));
  assert.deepEqual(c, { objectType: 5, coreObjectType: 2, samplingIndex: 6, sampleRateHz: 48000, channelConfig: 2, channels: 2 });
  assert.equal(aacCodecString(c), 'mp4a.40.5');
});

test('configs ADTS cannot carry are refused', () => {
  assert.throws(() => parseAudioSpecificConfig(Buffer.from('17800000', 'hex')), AacConfigError); // explicit frequency (index 15)
  assert.throws(() => parseAudioSpecificConfig(Buffer.from('f8', 'hex')), AacConfigError); // escape object type cut short
  assert.throws(() => parseAudioSpecificConfig(Buffer.from('2e10', 'hex')), AacConfigError); // object type 5 without its core type
  assert.throws(() => parseAudioSpecificConfig(Buffer.from('3a10', 'hex')), AacConfigError); // object type 7: no ADTS profile
});

test('the ADTS header: sync, MPEG-4, no CRC, profile, rate index, channels, frame length incl. header, VBR fullness', () => {
  const h = adtsHeader(parseAudioSpecificConfig(Buffer.from('1210', 'hex')), 371);
  assert.equal(h.length, 7);
  const bits = BigInt(`0x${h.toString('hex')}`);
  const field = (offset: number, width: number): number => Number((bits >> BigInt(56 - offset - width)) & ((1n << BigInt(width)) - 1n));
  assert.equal(field(0, 12), 0xfff); // syncword
  assert.equal(field(12, 1), 0); // ID: MPEG-4
  assert.equal(field(13, 2), 0); // layer
  assert.equal(field(15, 1), 1); // protection_absent
  assert.equal(field(16, 2), 1); // profile: object type 2 − 1
  assert.equal(field(18, 4), 4); // sampling_frequency_index
  assert.equal(field(23, 3), 2); // channel_configuration
  assert.equal(field(30, 13), 378); // frame_length
  assert.equal(field(43, 11), 0x7ff); // adts_buffer_fullness
  assert.equal(field(54, 2), 0); // number_of_raw_data_blocks_in_frame − 1
  assert.throws(() => adtsHeader(parseAudioSpecificConfig(Buffer.from('1210', 'hex')), 8185), RangeError);
});
