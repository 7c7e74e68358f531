import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mpegTsStreamKinds, parseShowinfoLine, rawDecoderArgs } from '../../../src/media/raw-decoder.ts';

test('showinfo and ashowinfo frame lines parse to kind, n, pts and size; other lines do not', () => {
  assert.deepEqual(parseShowinfoLine('[Parsed_showinfo_3 @ 0x55d0c8a2b8c0] n:  12 pts:  45000 pts_time:0.5     pos:    44207 fmt:yuv420p sar:0/1 s:640x360 i:P iskey:1 type:I '),
    { kind: 'video', n: 12, pts: 45000, width: 640, height: 360 });
  assert.deepEqual(parseShowinfoLine('[Parsed_ashowinfo_2 @ 0x564d11026080] n:1 pts:471 pts_time:0.0098125 pos:65800 fmt:s16 channels:2 chlayout:stereo rate:48000 nb_samples:1114'),
    { kind: 'audio', n: 1, pts: 471 });
  assert.equal(parseShowinfoLine('[Parsed_showinfo_1 @ 0x564d10baf800] config in time_base: 1/90000, frame_rate: 24/1'), undefined);
  assert.equal(parseShowinfoLine('[Parsed_showinfo_1 @ 0x564d10baf800]   side data - User Data Unregistered:'), undefined);
  assert.equal(parseShowinfoLine('[Parsed_showinfo_1 @ 0x1] n:   4 pts:NOPTS pts_time:NOPTS s:2x2 ')?.pts, undefined);
});

test('raw decoder arguments: passthrough timing, the 90 kHz showinfo chain last, video on pipe 1 and audio on pipe 3', () => {
  const args = rawDecoderArgs({ input: { location: 'file:/x.mp4' }, video: { pixelFormat: 'rgb24', width: 320, frameRate: 10 }, audio: { sampleRate: 16000, channels: 1 }, realtime: true });
  const s = args.join(' ');
  assert.ok(args.includes('-copyts') && args.includes('-re'));
  assert.match(s, /-map 0:v:0 -vf fps=10,scale=320:-2,format=rgb24,settb=1\/90000,showinfo=checksum=0 -fps_mode passthrough .* -f rawvideo pipe:1/);
  assert.match(s, /-map 0:a:0 -af aresample=16000:async=1,aformat=sample_fmts=s16:channel_layouts=mono,ashowinfo .* -f s16le pipe:3$/);
  const ts = rawDecoderArgs({ input: { stdinFormat: 'mpegts' }, video: { pixelFormat: 'yuv420p' } });
  assert.match(ts.join(' '), /-f mpegts -i pipe:0/);
  assert.ok(!ts.includes('pipe:3'));
  assert.throws(() => rawDecoderArgs({ input: { location: 'x' } }), RangeError);
  // A network input gets a read timeout, a file none.
  assert.match(rawDecoderArgs({ input: { location: 'http://127.0.0.1:1/stream/a/source.m3u8' }, video: { pixelFormat: 'yuv420p' } }).join(' '), /-rw_timeout 10000000 -i http:/);
  assert.ok(!args.includes('-rw_timeout'));
});

test('MPEG-TS stream kinds come from the PAT/PMT at the head; undefined until both are in', () => {
  // PAT (program 1 → PMT PID 0x1000) and PMT (H.264 on 0x100, ADTS AAC on 0x101), CRCs as ffmpeg writes them.
  const pat = packet(0, section([0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00]));
  const pmt = packet(0x1000, section([0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00]));
  assert.equal(mpegTsStreamKinds(pat), undefined);
  assert.deepEqual(mpegTsStreamKinds(Buffer.concat([pat, pmt])), { video: true, audio: true });
  assert.throws(() => mpegTsStreamKinds(Buffer.alloc(188, 1)));
});

function crc32mpeg(data: number[]): number {
  let crc = 0xffffffff;
  for (const b of data) {
    crc ^= b << 24;
    for (let i = 0; i < 8; i++) crc = (crc & 0x80000000) ? ((crc << 1) ^ 0x04c11db7) >>> 0 : (crc << 1) >>> 0;
  }
  return crc >>> 0;
}

function section(bytes: number[]): number[] {
  const crc = crc32mpeg(bytes);
  return [...bytes, crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff];
}

function packet(pid: number, payload: number[]): Buffer {
  const p = Buffer.alloc(188, 0xff);
  p[0] = 0x47;
  p[1] = 0x40 | (pid >> 8);
  p[2] = pid & 0xff;
  p[3] = 0x10;
  p[4] = 0; // pointer_field
  Buffer.from(payload).copy(p, 5);
  return p;
}
