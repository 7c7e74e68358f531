/**
 * WHEP's pure parts (src/webrtc/whep-viewer.ts): which H.264 format of an offer the answer
 * takes, the checks of an offer, and where in the RTP a viewer's video may start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { checkWhepOffer, chooseH264, startsKeyframe } from '../../../src/webrtc/whep-viewer.ts';

/** A receive-only offer shaped like Chromium's (formats trimmed). */
const OFFER = [
  'v=0', 'o=- 4611 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 102 106 108', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=recvonly',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:102 H264/90000', 'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f',
  'a=rtpmap:106 H264/90000', 'a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'a=rtpmap:108 H264/90000', 'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 0', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=recvonly',
  'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'a=rtpmap:0 PCMU/8000', '',
].join('\r\n');

test('the answer takes H.264 packetization mode 1, Constrained Baseline first, and Opus', () => {
  const offer = checkWhepOffer(OFFER);
  assert.equal(offer.video.mid, '0');
  assert.equal(offer.h264.payloadType, 108);
  assert.equal(offer.audio?.mid, '1');
  assert.equal(offer.opus?.payloadType, 111);
  // Without a Constrained Baseline mode-1 format, another mode-1 profile; never mode 0.
  assert.equal(chooseH264(offer.video.codecs.filter((c) => c.payloadType !== 108))?.payloadType, 102);
  assert.equal(chooseH264(offer.video.codecs.filter((c) => c.payloadType === 106 || c.payloadType === 96)), undefined);
});

test('an offer without an H.264 receive section, or not SDP at all, is INVALID_REQUEST (400)', () => {
  const vp8Only = OFFER.split('\r\n').filter((l) => !/ H264\/|fmtp:10[268]/.test(l)).join('\r\n').replace('96 102 106 108', '96');
  const sendOnly = OFFER.replace('a=mid:0\r\na=recvonly', 'a=mid:0\r\na=sendonly');
  for (const sdp of [vp8Only, sendOnly, 'not an offer']) {
    assert.throws(() => checkWhepOffer(sdp), (err: unknown) => err instanceof GatewayError && err.code === 'INVALID_REQUEST' && err.status === 400);
  }
  // Audio is optional: without Opus the answer sends video only.
  const noAudio = checkWhepOffer(OFFER.replace('a=rtpmap:111 opus/48000/2', 'a=rtpmap:111 G722/8000'));
  assert.equal(noAudio.opus, undefined);
});

test('a viewer\'s video starts at an SPS or IDR: single NAL unit, the first of a STAP-A, or a FU-A start fragment', () => {
  assert.equal(startsKeyframe(Buffer.from([0x67, 0x42])), true, 'SPS');
  assert.equal(startsKeyframe(Buffer.from([0x65, 0x88])), true, 'IDR slice');
  assert.equal(startsKeyframe(Buffer.from([0x41, 0x9a])), false, 'non-IDR slice');
  assert.equal(startsKeyframe(Buffer.from([0x78, 0x00, 0x0a, 0x67, 0x42])), true, 'STAP-A starting with an SPS');
  assert.equal(startsKeyframe(Buffer.from([0x78, 0x00, 0x0a, 0x06, 0x05])), false, 'STAP-A starting with SEI');
  assert.equal(startsKeyframe(Buffer.from([0x7c, 0x85, 0x88])), true, 'FU-A start of an IDR');
  assert.equal(startsKeyframe(Buffer.from([0x7c, 0x05, 0x88])), false, 'FU-A middle of an IDR');
  assert.equal(startsKeyframe(Buffer.from([0x7c, 0x81, 0x9a])), false, 'FU-A start of a non-IDR slice');
});
