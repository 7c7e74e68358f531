import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, fitRendition } from '../../../src/domain/profile.ts';
import { fluentArgs } from '../../../src/media/ffmpeg-runner.ts';
import { invocationToArgs } from '../../../src/media/invocation.ts';
import { buildLadderInvocation } from '../../../src/transcode/ladder-args.ts';

const source = { width: 1920, height: 1080, fpsNum: 30, fpsDen: 1 };

test('fluent-ffmpeg passes the ladder invocation to ffmpeg argument for argument', () => {
  const inv = buildLadderInvocation({
    inputPath: '/tmp/in.ts',
    outputs: ['P720p30fps16x9', 'P360p25fps16x9', 'P144p30fps16x9'].map((name, i) => ({ rendition: fitRendition(PRESETS[name]!, source)!, path: `/tmp/job/${i}.ts` })),
    sourceAudioCodec: 'mp3',
  });
  assert.deepEqual(fluentArgs(inv), invocationToArgs(inv));
});

test('values containing one space survive fluent-ffmpeg unsplit', () => {
  const inv = {
    inputOptions: ['-hide_banner', '-metadata', 'title=two words'],
    inputPath: '/tmp/my input.ts',
    filterComplex: '[0:v:0]drawtext=text=a b[v0]',
    outputs: [{ options: ['-map', '[v0]', '-metadata', 'comment=one space'], path: '/tmp/my out.ts' }],
  };
  const args = fluentArgs(inv);
  assert.deepEqual(args, invocationToArgs(inv));
  assert.ok(args.includes('title=two words'));
  assert.ok(args.includes('comment=one space'));
  assert.ok(args.includes('/tmp/my out.ts'));
});

test('a watermark image input reaches ffmpeg through fluent-ffmpeg with its own input options, after the source', () => {
  const inv = buildLadderInvocation({
    inputPath: '/tmp/in.ts',
    outputs: [{ rendition: fitRendition(PRESETS['P360p25fps16x9']!, source)!, path: '/tmp/job/0.ts' }],
    sourceAudioCodec: 'aac',
    watermark: {
      spec: { kind: 'image', imageKey: 'k', imageFormat: 'png', imageWidthPx: 10, imageHeightPx: 10, widthFraction: 0.1, position: 'center', margin: { fraction: 0 }, opacity: 1 },
      imagePath: '/tmp/mark.png', sourceWidthPx: 1920,
    },
  });
  const args = fluentArgs(inv);
  assert.deepEqual(args, invocationToArgs(inv));
  assert.deepEqual(args.slice(args.indexOf('/tmp/in.ts') + 1, args.indexOf('/tmp/mark.png') + 1), ['-protocol_whitelist', 'file', '-f', 'png_pipe', '-i', '/tmp/mark.png']);
});
