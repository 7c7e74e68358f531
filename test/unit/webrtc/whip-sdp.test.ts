/**
 * The WHIP offer parsing and codec choice (src/webrtc/whip-sdp.ts) on offers as Chromium 156
 * writes them (H.264 in several profiles and packetization modes, VP8, VP9, AV1; Opus).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { chooseAudioCodec, chooseVideoCodec, filterCandidates, fragmentCandidates, parseOffer } from '../../../src/webrtc/whip-sdp.ts';

const OFFER = [
  'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 0', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly',
  'a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host', 'a=candidate:2 1 udp 2113937151 10.1.2.3 50001 typ host',
  'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'a=rtpmap:63 red/48000/2', 'a=rtpmap:0 PCMU/8000',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 104 108 116 98 45', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=sendonly',
  'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96',
  'a=rtpmap:102 H264/90000', 'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:104 H264/90000', 'a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'a=rtpmap:108 H264/90000', 'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:116 H264/90000', 'a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f',
  'a=rtpmap:98 VP9/90000', 'a=fmtp:98 profile-id=0', 'a=rtpmap:45 AV1/90000',
  '',
].join('\r\n');

test('a Chromium offer: two sections with their mids, directions and codecs', () => {
  const media = parseOffer(OFFER);
  assert.deepEqual(media.map((m) => [m.kind, m.mid, m.direction, m.codecs.length]), [['audio', '0', 'sendonly', 3], ['video', '1', 'sendonly', 8]]);
  assert.deepEqual(media[0]!.codecs[0], { payloadType: 111, name: 'opus', clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' });
});

test('the answer takes H.264 Constrained Baseline in packetization mode 1, else Baseline/Main, else VP8, else VP9; Opus for audio', () => {
  const [audio, video] = parseOffer(OFFER);
  assert.equal(chooseVideoCodec(video!.codecs)?.payloadType, 108);
  assert.equal(chooseVideoCodec(video!.codecs)?.codec, 'H264');
  const without = (pts: number[]) => video!.codecs.filter((c) => !pts.includes(c.payloadType));
  assert.equal(chooseVideoCodec(without([108]))?.payloadType, 102, 'Baseline next');
  assert.equal(chooseVideoCodec(without([108, 102]))?.payloadType, 116, 'then Main; never packetization mode 0');
  assert.deepEqual(chooseVideoCodec(without([108, 102, 116]))?.codec, 'VP8');
  assert.deepEqual(chooseVideoCodec(without([108, 102, 116, 96]))?.codec, 'VP9');
  assert.equal(chooseVideoCodec(without([108, 102, 116, 96, 98])), undefined, 'AV1 only, or mode 0 only: none');
  assert.equal(chooseAudioCodec(audio!.codecs)?.payloadType, 111);
  assert.equal(chooseAudioCodec(audio!.codecs.filter((c) => c.name !== 'opus')), undefined);
});

test('what is not an SDP offer is refused with 400 INVALID_REQUEST naming the problem', () => {
  const refused = (text: string, why: RegExp): void => {
    assert.throws(() => parseOffer(text), (err: unknown) => err instanceof GatewayError && err.code === 'INVALID_REQUEST' && err.status === 400 && why.test(err.message));
  };
  refused('', /start with the line v=0/);
  refused('hello, this is not SDP', /start with the line v=0/);
  refused('{"sdp":"v=0"}', /start with the line v=0/);
  refused('v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0', /no o= line/);
  refused('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n', /no m= line/);
  refused('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000', /has no a=mid/);
  refused('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nthis line is prose\r\n', /<letter>=<value>/);
  refused(`v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n${'a=x\r\n'.repeat(20_000)}`, /longer than/);
});

test('loopback-only candidates: other addresses are dropped from the offer; trickle fragments give candidates with their mid', () => {
  const kept = filterCandidates(OFFER, (address) => address.startsWith('127.'));
  assert.ok(kept.includes('127.0.0.1 50000'));
  assert.ok(!kept.includes('10.1.2.3'));
  assert.equal(kept.split('\r\n').length, OFFER.split('\r\n').length - 1, 'only that line goes');
  assert.deepEqual(fragmentCandidates('a=ice-ufrag:x\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\na=mid:1\r\na=candidate:2 1 udp 1 127.0.0.1 6 typ host\r\na=end-of-candidates\r\n', '0'), [
    { candidate: 'candidate:1 1 udp 1 127.0.0.1 5 typ host', mid: '0' },
    { candidate: 'candidate:2 1 udp 1 127.0.0.1 6 typ host', mid: '1' },
  ]);
});
