import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSegmenterArgs, parseSegmentListLine } from '../../../src/ingest/segmenter-args.ts';

const input = { inputUrl: 'rtmp://127.0.0.1:1935/live/sk_1', workDir: '/w', segmentTargetMs: 2000, rwTimeoutMs: 10_000, probeDurationMs: 1000 };

function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

test('the segmenter copies the first video and audio stream, each optional (audio-only publishes are cut too), into 2 s MPEG-TS segments named <seq>.ts', () => {
  const args = buildSegmenterArgs(input);
  assert.equal(valueOf(args, '-i'), input.inputUrl);
  assert.equal(valueOf(args, '-c'), 'copy');
  assert.deepEqual(args.filter((_, i) => args[i - 1] === '-map'), ['0:v:0?', '0:a:0?']);
  assert.equal(valueOf(args, '-f'), 'segment');
  assert.equal(valueOf(args, '-segment_format'), 'mpegts');
  assert.equal(valueOf(args, '-segment_time'), '2');
  assert.equal(valueOf(args, '-segment_start_number'), '0');
  assert.equal(args.at(-1), '/w/%d.ts');
});

test('timestamps are continuous: no reset, no copyts', () => {
  const args = buildSegmenterArgs(input);
  assert.equal(valueOf(args, '-reset_timestamps'), '0');
  assert.ok(!args.includes('-copyts'));
});

test('completed segments are listed as csv on stdout', () => {
  const args = buildSegmenterArgs(input);
  assert.equal(valueOf(args, '-segment_list'), 'pipe:1');
  assert.equal(valueOf(args, '-segment_list_type'), 'csv');
});

test('input stalls are bounded by -rw_timeout in microseconds, never by -timeout (rtmp listen mode)', () => {
  const args = buildSegmenterArgs({ ...input, rwTimeoutMs: 2500, probeDurationMs: 750, segmentTargetMs: 1500 });
  assert.equal(valueOf(args, '-rw_timeout'), '2500000');
  assert.equal(valueOf(args, '-analyzeduration'), '750000');
  assert.equal(valueOf(args, '-segment_time'), '1.5');
  assert.ok(!args.includes('-timeout'));
  assert.ok(args.indexOf('-rw_timeout') < args.indexOf('-i'), 'an input option');
  assert.ok(args.includes('-nostdin'));
});

test('segment list lines parse into file, start and end in ms', () => {
  assert.deepEqual(parseSegmentListLine('0.ts,0.000000,1.999000'), { file: '0.ts', startMs: 0, endMs: 1999 });
  assert.deepEqual(parseSegmentListLine('12.ts,24.000000,34.416000\r'), { file: '12.ts', startMs: 24000, endMs: 34416 });
  assert.deepEqual(parseSegmentListLine('"a,b.ts",1.5,2'), { file: 'a,b.ts', startMs: 1500, endMs: 2000 });
});

test('anything else is not a segment list line', () => {
  for (const line of ['', 'frame=1', '0.ts,abc,1', ',1,2', '0.ts,1']) assert.equal(parseSegmentListLine(line), undefined, line);
});
