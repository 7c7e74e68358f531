import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitRendition, parseProfile, PRESETS, type FittedRendition, type SourceVideoInfo, type VideoProfile } from '../../../src/domain/profile.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import {
  buildLadderArgs, buildLadderInvocation, buildLiveLadderArgs, gopFrames, LIVE_DECODER_OPTIONS, LIVE_THROUGHPUT_OUTPUT_OPTIONS, LIVE_X264_OPTIONS, type LadderOutput,
} from '../../../src/transcode/ladder-args.ts';
import { invocationToArgs } from '../../../src/media/invocation.ts';
import type { WatermarkSpec } from '../../../src/domain/watermark.ts';

const src1080p30: SourceVideoInfo = { width: 1920, height: 1080, fpsNum: 30, fpsDen: 1 };
const src360p24: SourceVideoInfo = { width: 640, height: 360, fpsNum: 24, fpsDen: 1 };

function fit(profile: VideoProfile, source: SourceVideoInfo): FittedRendition {
  const f = fitRendition(profile, source);
  assert.ok(f, `${profile.name} fits ${source.width}x${source.height}`);
  return f;
}

function outputs(source: SourceVideoInfo, ...profiles: VideoProfile[]): LadderOutput[] {
  return profiles.map((p, i) => ({ rendition: fit(p, source), path: `/tmp/job/${i}.ts` }));
}

/** The value following `flag` in `args`, asserting the flag occurs exactly once. */
function valueOf(args: readonly string[], flag: string): string | undefined {
  const at = args.flatMap((a, i) => (a === flag ? [i] : []));
  if (at.length === 0) return undefined;
  assert.equal(at.length, 1, `${flag} occurs once`);
  return args[at[0]! + 1];
}

const P = (name: string): VideoProfile => PRESETS[name]!;

test('a three-rendition ladder is one ffmpeg invocation with the exact expected argument vector', () => {
  const args = buildLadderArgs({
    inputPath: '/tmp/in.ts',
    outputs: outputs(src1080p30, P('P720p30fps16x9'), P('P360p30fps16x9'), P('P240p30fps16x9')),
    sourceAudioCodec: 'aac',
  });
  const perOutput = (label: string, bitrate: number, path: string): string[] => [
    '-map', label, '-map', '0:a:0', '-c:a', 'copy',
    '-c:v', 'libx264', '-preset', 'veryfast',
    '-b:v', String(bitrate), '-maxrate', String(bitrate), '-bufsize', String(bitrate * 2),
    '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
    '-pix_fmt', 'yuv420p', '-enc_time_base:v', '1/90000', '-muxdelay', '0', '-muxpreload', '0', '-f', 'mpegts', path,
  ];
  assert.deepEqual(args, [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-copyts', '-protocol_whitelist', 'file', '-f', 'mpegts', '-i', '/tmp/in.ts', '-y',
    '-filter_complex', '[0:v:0]split=3[s0][s1][s2];[s0]scale=1280:720[v0];[s1]scale=640:360[v1];[s2]scale=426:240[v2]',
    ...perOutput('[v0]', 4_000_000, '/tmp/job/0.ts'),
    ...perOutput('[v1]', 1_200_000, '/tmp/job/1.ts'),
    ...perOutput('[v2]', 600_000, '/tmp/job/2.ts'),
  ]);
});

test('a single rendition is scaled without a split filter', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src360p24, P('P144p30fps16x9')), sourceAudioCodec: 'aac' });
  assert.equal(inv.filterComplex, '[0:v:0]scale=256:144[v0]');
  assert.equal(inv.outputs.length, 1);
  assert.equal(valueOf(inv.outputs[0]!.options, '-b:v'), '400000');
  assert.equal(valueOf(inv.outputs[0]!.options, '-bufsize'), '800000');
});

test('the default GOP is two seconds of output frames, so a 24 fps source gets a keyframe every 48 frames', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src360p24, P('P360p30fps16x9')), sourceAudioCodec: undefined });
  const opts = inv.outputs[0]!.options;
  assert.equal(valueOf(opts, '-g'), '48');
  assert.equal(valueOf(opts, '-keyint_min'), '48');
  assert.equal(valueOf(opts, '-sc_threshold'), '0');
});

test('a lower profile frame rate adds an fps filter before scaling and sizes the GOP by the output rate', () => {
  const p25 = P('P360p25fps16x9');
  const outs = outputs(src1080p30, p25, P('P720p30fps16x9'));
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outs, sourceAudioCodec: 'aac' });
  assert.equal(inv.filterComplex, '[0:v:0]split=2[s0][s1];[s0]fps=25/1,scale=640:360[v0];[s1]scale=1280:720[v1]');
  assert.equal(valueOf(inv.outputs[0]!.options, '-g'), '50');
  assert.equal(valueOf(inv.outputs[1]!.options, '-g'), '60');
});

test('a fractional profile frame rate is passed as a fraction', () => {
  const p = parseProfile({ name: 'ntsc', width: 640, height: 360, bitrate: 1_000_000, fps: 30000, fpsDen: 1001 });
  const source: SourceVideoInfo = { width: 1280, height: 720, fpsNum: 60, fpsDen: 1 };
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(source, p), sourceAudioCodec: undefined });
  assert.equal(inv.filterComplex, '[0:v:0]fps=30000/1001,scale=640:360[v0]');
  assert.equal(valueOf(inv.outputs[0]!.options, '-g'), '60');
});

test('an HEVC profile uses libx265 with scene-cut detection off through x265-params', () => {
  const hevc = parseProfile({ name: 'hevc360', width: 640, height: 360, bitrate: 800_000, encoder: 'HEVC' });
  const opts = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, hevc), sourceAudioCodec: 'aac' }).outputs[0]!.options;
  assert.equal(valueOf(opts, '-c:v'), 'libx265');
  assert.equal(valueOf(opts, '-preset'), 'veryfast');
  assert.equal(valueOf(opts, '-b:v'), '800000');
  assert.equal(valueOf(opts, '-maxrate'), '800000');
  assert.equal(valueOf(opts, '-x265-params'), 'log-level=error:scenecut=0');
  assert.equal(valueOf(opts, '-sc_threshold'), undefined);
  assert.equal(valueOf(opts, '-enc_time_base:v'), '1/90000');
});

test('a CRF profile encodes at that quality with its bitrate as the maxrate cap', () => {
  const crf = parseProfile({ name: 'crf', width: 640, height: 360, bitrate: 1_500_000, quality: 23 });
  const opts = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, crf), sourceAudioCodec: 'aac' }).outputs[0]!.options;
  assert.equal(valueOf(opts, '-crf'), '23');
  assert.equal(valueOf(opts, '-b:v'), undefined);
  assert.equal(valueOf(opts, '-maxrate'), '1500000');
  assert.equal(valueOf(opts, '-bufsize'), '3000000');
});

test('an intra GOP makes every frame a keyframe and a GOP in seconds counts output frames', () => {
  const intra = parseProfile({ name: 'intra', width: 640, height: 360, bitrate: 1_000_000, gop: 'intra' });
  const every1s = parseProfile({ name: 'g1', width: 640, height: 360, bitrate: 1_000_000, gop: '1.5' });
  const outs = outputs(src1080p30, intra, every1s);
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outs, sourceAudioCodec: 'aac' });
  assert.equal(valueOf(inv.outputs[0]!.options, '-g'), '1');
  assert.equal(valueOf(inv.outputs[0]!.options, '-keyint_min'), '1');
  assert.equal(valueOf(inv.outputs[1]!.options, '-g'), '45');
  assert.equal(gopFrames(outs[1]!.rendition), 45);
});

test('H.264 profiles are passed to x264, and constrained high becomes high without B-frames as Livepeer does', () => {
  const mk = (profile: string) => parseProfile({ name: `p_${profile}`, width: 640, height: 360, bitrate: 1_000_000, profile });
  const outs = outputs(src1080p30, mk('h264baseline'), mk('h264main'), mk('h264high'), mk('h264constrainedhigh'), mk(''));
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outs, sourceAudioCodec: 'aac' });
  const profiles = inv.outputs.map((o) => valueOf(o.options, '-profile:v'));
  assert.deepEqual(profiles, ['baseline', 'main', 'high', 'high', undefined]);
  assert.equal(valueOf(inv.outputs[3]!.options, '-bf'), '0');
  assert.equal(valueOf(inv.outputs[2]!.options, '-bf'), undefined);
});

test('a source without audio gives video-only outputs', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, P('P720p30fps16x9'), P('P360p30fps16x9')), sourceAudioCodec: undefined });
  for (const o of inv.outputs) {
    assert.deepEqual(o.options.filter((a) => a.startsWith('0:a') || a.startsWith('-c:a')), []);
    assert.equal(o.options.filter((a) => a === '-map').length, 1);
  }
});

test('AAC source audio is copied into every rendition', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, P('P720p30fps16x9'), P('P360p30fps16x9')), sourceAudioCodec: 'aac' });
  for (const o of inv.outputs) {
    assert.equal(valueOf(o.options, '-c:a'), 'copy');
    assert.ok(o.options.join(' ').includes('-map 0:a:0'));
  }
});

test('non-AAC source audio is encoded to AAC at 128 kb/s in every rendition', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, P('P720p30fps16x9'), P('P360p30fps16x9')), sourceAudioCodec: 'mp2' });
  for (const o of inv.outputs) {
    assert.equal(valueOf(o.options, '-c:a'), 'aac');
    assert.equal(valueOf(o.options, '-b:a'), '128000');
  }
});

test('timestamps are kept: copyts, a 90 kHz encoder time base, and no mpegts mux delay on every output', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, P('P720p30fps16x9'), P('P144p30fps16x9')), sourceAudioCodec: 'aac' });
  assert.ok(inv.inputOptions.includes('-copyts'));
  for (const o of inv.outputs) {
    assert.equal(valueOf(o.options, '-enc_time_base:v'), '1/90000');
    assert.equal(valueOf(o.options, '-muxdelay'), '0');
    assert.equal(valueOf(o.options, '-muxpreload'), '0');
    assert.equal(valueOf(o.options, '-f'), 'mpegts');
    assert.equal(valueOf(o.options, '-pix_fmt'), 'yuv420p');
  }
});

test('the x264 preset is configurable and applies to every rendition', () => {
  const inv = buildLadderInvocation({ inputPath: '/in.ts', outputs: outputs(src1080p30, P('P720p30fps16x9'), P('P360p30fps16x9')), sourceAudioCodec: 'aac', x264Preset: 'ultrafast' });
  assert.deepEqual(inv.outputs.map((o) => valueOf(o.options, '-preset')), ['ultrafast', 'ultrafast']);
});

test('an unknown preset and an empty ladder are refused', () => {
  assert.throws(() => buildLadderArgs({ inputPath: '/in.ts', outputs: outputs(src1080p30, P('P360p30fps16x9')), sourceAudioCodec: 'aac', x264Preset: 'warp' as never }),
    (e: GatewayError) => e.code === 'CONFIG_INVALID' && /warp/.test(e.message));
  assert.throws(() => buildLadderArgs({ inputPath: '/in.ts', outputs: [], sourceAudioCodec: 'aac' }), (e: GatewayError) => e.code === 'INTERNAL');
});

test('argument values are never joined with spaces, so a path with a space stays one argument', () => {
  const args = buildLadderArgs({ inputPath: '/tmp/my in.ts', outputs: [{ rendition: fit(P('P144p30fps16x9'), src360p24), path: '/tmp/my out.ts' }], sourceAudioCodec: 'aac' });
  assert.equal(args[args.indexOf('-i') + 1], '/tmp/my in.ts');
  assert.equal(args.at(-1), '/tmp/my out.ts');
});

test('a rotated source is turned once before the split, the way ffmpeg autorotates that display matrix', () => {
  const rotated: SourceVideoInfo = { ...src360p24, rotationDeg: 90 };
  const inv = buildLadderInvocation({ inputPath: '/tmp/in.ts', outputs: outputs(rotated, P('P240p30fps16x9'), P('P144p30fps16x9')), sourceAudioCodec: 'aac', sourceRotationDeg: 90 });
  assert.equal(inv.filterComplex, '[0:v:0]transpose=clock,split=2[s0][s1];[s0]scale=136:240[v0];[s1]scale=82:144[v1]');
  const one = buildLadderInvocation({ inputPath: '/tmp/in.ts', outputs: outputs({ ...src360p24, rotationDeg: 270 }, P('P240p30fps16x9')), sourceAudioCodec: undefined, sourceRotationDeg: 270 });
  assert.equal(one.filterComplex, '[0:v:0]transpose=cclock,scale=136:240[v0]');
  const flipped = buildLadderInvocation({ inputPath: '/tmp/in.ts', outputs: outputs(src360p24, P('P240p30fps16x9')), sourceAudioCodec: undefined, sourceRotationDeg: 180 });
  assert.equal(flipped.filterComplex, '[0:v:0]hflip,vflip,scale=426:240[v0]');
  const none = buildLadderInvocation({ inputPath: '/tmp/in.ts', outputs: outputs(src360p24, P('P240p30fps16x9')), sourceAudioCodec: undefined });
  assert.equal(none.filterComplex, '[0:v:0]scale=426:240[v0]');
});

test('every rendition is encoded 8-bit 4:2:0 whatever the source pixel format (a 10-bit source too)', () => {
  const args = buildLadderArgs({ inputPath: '/tmp/in.ts', outputs: outputs(src360p24, P('P360p30fps16x9'), P('P240p30fps16x9')), sourceAudioCodec: 'aac' });
  assert.deepEqual(args.flatMap((a, i) => (a === '-pix_fmt' ? [args[i + 1]] : [])), ['yuv420p', 'yuv420p']);
});

test('the live ladder: stdin in (pipe protocol only), rendition i on pipe:3+i, the per-segment graph and encoder options plus keyframes at source keyframes', () => {
  const ladder = [P('P720p30fps16x9'), P('P360p30fps16x9'), P('P240p30fps16x9')];
  const live = buildLiveLadderArgs({ renditions: ladder.map((p) => fit(p, src1080p30)), sourceAudioCodec: 'aac' });
  const perSegment = buildLadderInvocation({ inputPath: '/tmp/in.ts', outputs: outputs(src1080p30, ...ladder), sourceAudioCodec: 'aac' });
  const at = live.indexOf('-i');
  assert.equal(live[at + 1], 'pipe:0');
  assert.equal(valueOf(live.slice(0, at), '-protocol_whitelist'), 'pipe');
  assert.equal(valueOf(live.slice(0, at), '-f'), 'mpegts');
  assert.ok(live.slice(0, at).includes('-copyts'));
  assert.equal(valueOf(live, '-filter_complex'), perSegment.filterComplex);
  // Outputs: each ends at its pipe; its options are the per-segment ones, then the live ones.
  const pipes = live.flatMap((a, i) => (/^pipe:[3-9]$/.test(a) ? [i] : []));
  assert.deepEqual(pipes.map((i) => live[i]), ['pipe:3', 'pipe:4', 'pipe:5']);
  let from = live.indexOf('-filter_complex') + 2;
  pipes.forEach((end, i) => {
    const options = live.slice(from, end);
    const expected = perSegment.outputs[i]!.options;
    assert.deepEqual(options.slice(0, expected.length), [...expected]);
    assert.deepEqual(options.slice(expected.length), [...LIVE_X264_OPTIONS, '-force_key_frames', 'source', '-flush_packets', '1']);
    from = end + 1;
  });
  assert.equal(from, live.length);
});

test('the live ladder tuned for throughput: the same command without the decoder\'s and x264\'s thread and lookahead limits', () => {
  const renditions = [P('P720p30fps16x9'), P('P240p30fps16x9')].map((p) => fit(p, src1080p30));
  const latency = buildLiveLadderArgs({ renditions, sourceAudioCodec: 'aac' });
  const throughput = buildLiveLadderArgs({ renditions, sourceAudioCodec: 'aac', tuning: 'throughput' });
  assert.deepEqual(buildLiveLadderArgs({ renditions, sourceAudioCodec: 'aac', tuning: 'latency' }), latency, 'latency is the default');
  const input = (args: string[]): string[] => args.slice(0, args.indexOf('-i'));
  const decoderAt = input(latency).indexOf(LIVE_DECODER_OPTIONS[0]!);
  assert.deepEqual(input(latency).slice(decoderAt, decoderAt + LIVE_DECODER_OPTIONS.length), [...LIVE_DECODER_OPTIONS]);
  assert.deepEqual(input(throughput), [...input(latency).slice(0, decoderAt), ...input(latency).slice(decoderAt + LIVE_DECODER_OPTIONS.length)], 'the input options without the decoder\'s');
  for (const option of ['-threads', '-rc-lookahead', '-x264-params']) assert.ok(!throughput.includes(option), `no ${option}`);
  // Each output: the latency command's options with LIVE_X264_OPTIONS replaced by LIVE_THROUGHPUT_OUTPUT_OPTIONS.
  const outputsOf = (args: string[]): string[][] => {
    const from = args.indexOf('-filter_complex') + 2;
    const ends = args.flatMap((a, i) => (/^pipe:[3-9]$/.test(a) ? [i] : []));
    return ends.map((end, i) => args.slice(i === 0 ? from : ends[i - 1]! + 1, end + 1));
  };
  const expected = outputsOf(latency).map((o) => {
    const at = o.indexOf(LIVE_X264_OPTIONS[0]!, o.indexOf('-enc_time_base:v'));
    return [...o.slice(0, at), ...LIVE_THROUGHPUT_OUTPUT_OPTIONS, ...o.slice(at + LIVE_X264_OPTIONS.length)];
  });
  assert.deepEqual(outputsOf(throughput), expected);
  assert.equal(outputsOf(throughput).length, 2);
});

const markSpec: WatermarkSpec = {
  kind: 'image', imageKey: 'watermarks/a.png', imageFormat: 'png', imageWidthPx: 200, imageHeightPx: 100,
  widthFraction: 0.25, position: 'bottom-right', margin: { fraction: 0.02 }, opacity: 0.5,
};

test('an image watermark is a second input (file only, PNG demuxer forced) overlaid after each rendition scale at that rendition size', () => {
  const inv = buildLadderInvocation({
    inputPath: '/in.ts', outputs: outputs(src360p24, P('P360p30fps16x9'), P('P240p30fps16x9')), sourceAudioCodec: 'aac',
    watermark: { spec: markSpec, imagePath: '/w/a.png', sourceWidthPx: 640 },
  });
  assert.deepEqual(inv.extraInputs, [{ options: ['-protocol_whitelist', 'file', '-f', 'png_pipe'], path: '/w/a.png' }]);
  assert.equal(inv.filterComplex, [
    '[0:v:0]split=2[s0][s1]', '[1:v]format=rgba,colorchannelmixer=aa=0.5,split=2[m0][m1]',
    '[s0]scale=640:360[b0]', '[m0]scale=160:80[w0]', '[b0][w0]overlay=x=467:y=267[v0]',
    '[s1]scale=426:240[b1]', '[m1]scale=106:54[w1]', '[b1][w1]overlay=x=311:y=177[v1]',
  ].join(';'));
  const args = invocationToArgs(inv);
  assert.deepEqual(args.slice(args.indexOf('/in.ts') + 1, args.indexOf('-filter_complex')), ['-protocol_whitelist', 'file', '-f', 'png_pipe', '-i', '/w/a.png', '-y']);
});

test('a JPEG watermark at full opacity on one rendition needs no split and no alpha change', () => {
  const inv = buildLadderInvocation({
    inputPath: '/in.ts', outputs: outputs(src360p24, P('P144p30fps16x9')), sourceAudioCodec: undefined,
    watermark: { spec: { ...markSpec, imageFormat: 'jpeg', opacity: 1, position: 'top-left' }, imagePath: '/w/a.jpg', sourceWidthPx: 640 },
  });
  assert.equal(inv.extraInputs?.[0]?.options.join(' '), '-protocol_whitelist file -f jpeg_pipe');
  assert.equal(inv.filterComplex, '[1:v]format=rgba[m0];[0:v:0]scale=256:144[b0];[m0]scale=64:32[w0];[b0][w0]overlay=x=5:y=5[v0]');
});

test('a text watermark is a drawtext after each scale, sized by the rendition height, with no expansion of its text', () => {
  const inv = buildLadderInvocation({
    inputPath: '/in.ts', outputs: outputs(src360p24, P('P360p30fps16x9'), P('P240p30fps16x9')), sourceAudioCodec: 'aac',
    watermark: { spec: { kind: 'text', text: 'Live, now', fontSizeFraction: 0.1, position: 'top-right', margin: { px: 20 }, opacity: 0.75 }, sourceWidthPx: 640 },
  });
  assert.equal(inv.extraInputs, undefined);
  assert.equal(inv.filterComplex, [
    '[0:v:0]split=2[s0][s1]',
    "[s0]scale=640:360,drawtext=text='Live, now':expansion=none:fontsize=36:fontcolor=white@0.75:borderw=2:bordercolor=black@0.75:x=w-tw-20:y=20[v0]",
    "[s1]scale=426:240,drawtext=text='Live, now':expansion=none:fontsize=24:fontcolor=white@0.75:borderw=2:bordercolor=black@0.75:x=w-tw-13:y=13[v1]",
  ].join(';'));
});

test('the live ladder takes the watermark image as input 1 after its stdin input', () => {
  const args = buildLiveLadderArgs({
    renditions: [fit(P('P240p30fps16x9'), src360p24)], sourceAudioCodec: 'aac', watermark: { spec: markSpec, imagePath: '/w/a.png', sourceWidthPx: 640 },
  });
  const i = args.indexOf('pipe:0');
  assert.deepEqual(args.slice(i + 1, i + 7), ['-protocol_whitelist', 'file', '-f', 'png_pipe', '-i', '/w/a.png']);
  assert.match(valueOf(args, '-filter_complex')!, /^\[1:v\]format=rgba,colorchannelmixer=aa=0\.5\[m0\];\[0:v:0\]scale=426:240\[b0\];\[m0\]scale=106:54\[w0\];\[b0\]\[w0\]overlay=x=311:y=177\[v0\]$/);
});
