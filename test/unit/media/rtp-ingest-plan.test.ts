/**
 * The RTP → RTMP bridge's SDP and ffmpeg arguments (src/media/rtp-ingest.ts rtpIngestPlan):
 * negotiated payload types in the SDP, H.264 copied, VP8/VP9 re-encoded with keyframes at the
 * segment target, Opus to AAC, and the RTMP stream name kept off the command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRtcp, rtpIngestPlan } from '../../../src/media/rtp-ingest.ts';

const RTMP = 'rtmp://127.0.0.1:1935/live/OneTimeSecretName0123456789abcd';

test('H.264 + Opus: SDP with the negotiated payload types, video copied, Opus to AAC, the stream name only in the preset', () => {
  const plan = rtpIngestPlan({
    video: { codec: 'H264', payloadType: 108, clockRate: 90000, fmtp: 'packetization-mode=1;profile-level-id=42e01f' },
    audio: { codec: 'opus', payloadType: 111, clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' },
    rtmpUrl: RTMP, keyframeIntervalMs: 2000,
  }, { video: 40000, audio: 40002 }, '/tmp/x.sdp');
  const sdp = plan.sdp.split('\r\n');
  for (const line of ['m=video 40000 RTP/AVP 108', 'a=rtpmap:108 H264/90000', 'a=fmtp:108 packetization-mode=1;profile-level-id=42e01f',
    'm=audio 40002 RTP/AVP 111', 'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'c=IN IP4 127.0.0.1']) {
    assert.ok(sdp.includes(line), `SDP has ${line}`);
  }
  const args = plan.args.join(' ');
  assert.match(args, /-protocol_whitelist file,udp,rtp .*-i \/tmp\/x\.sdp/);
  assert.match(args, /-map 0:v:0 -c:v copy/);
  assert.match(args, /-map 0:a:0 -c:a aac/);
  assert.match(args, /-f flv .*-fpre \/dev\/fd\/3 rtmp:\/\/127\.0\.0\.1:1935\/live\/$/);
  assert.ok(!args.includes('OneTimeSecretName'), 'the stream name is not on the command line');
  assert.equal(plan.secretOptions, 'rtmp_playpath=OneTimeSecretName0123456789abcd\n');
});

test('VP8 without audio: re-encoded to H.264 with a keyframe every segment target and no B-frames', () => {
  const plan = rtpIngestPlan({ video: { codec: 'VP8', payloadType: 96, clockRate: 90000 }, rtmpUrl: RTMP, keyframeIntervalMs: 2000 }, { video: 40010 }, '/tmp/y.sdp');
  const args = plan.args.join(' ');
  assert.match(args, /-c:v libx264 .*-bf 0/);
  assert.match(args, /-force_key_frames expr:gte\(t,n_forced\*2\)/);
  assert.ok(!args.includes('0:a'), 'no audio mapped');
  assert.ok(!plan.sdp.includes('m=audio'));
  assert.throws(() => rtpIngestPlan({ rtmpUrl: RTMP, keyframeIntervalMs: 2000 }, {}, '/tmp/z.sdp'), RangeError);
});

test('RTCP is told from RTP by its packet type (RFC 5761 §4)', () => {
  const sr = Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 1]);
  const rtp = Buffer.from([0x80, 0x60 | 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(isRtcp(sr), true);
  assert.equal(isRtcp(rtp), false, 'payload type 96 with the marker bit');
  assert.equal(isRtcp(Buffer.from([0x80, 111, 0, 1, 0, 0, 0, 0])), false);
});
