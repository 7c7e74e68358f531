/** RtmpSegmenter's lifecycle with stand-in tag sources (no media needed). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RtmpSegmenter, type SegmenterEndInfo } from '../../../src/ingest/rtmp-segmenter.ts';
import type { FlvTagReader, FlvTagSource } from '../../../src/ingest/rtmp/packet-tap.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mediagate-seg-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A tag source the test drives: `reader` once read, `reads` how often. */
function manualSource(): FlvTagSource & { reader?: FlvTagReader; reads: number } {
  const source: FlvTagSource & { reader?: FlvTagReader; reads: number } = {
    reads: 0,
    read(reader) {
      source.reads += 1;
      source.reader = reader;
    },
  };
  return source;
}

test('a relative work dir and a non-positive target are refused', () => {
  assert.throws(() => new RtmpSegmenter({ tags: manualSource(), workDir: 'relative/dir', logger: silentLogger() }), /absolute/);
  assert.throws(() => new RtmpSegmenter({ tags: manualSource(), workDir: dir, logger: silentLogger(), segmentTargetMs: 0 }), /segmentTargetMs/);
});

test('start() reads the tag source once and creates the work dir; the end of the tags ends it with reason inputEnded', async () => {
  const tags = manualSource();
  const workDir = path.join(dir, 'ended');
  const seg = new RtmpSegmenter({ tags, workDir, logger: silentLogger() });
  const ends: SegmenterEndInfo[] = [];
  seg.on('end', (e) => ends.push(e));
  seg.start();
  assert.equal(tags.reads, 1);
  assert.ok(existsSync(workDir));
  tags.reader!.end();
  const info = await seg.done;
  assert.deepEqual(ends, [info]);
  assert.deepEqual(info, { reason: 'inputEnded', segments: 0, longSegments: 0 });
  await seg.cleanup();
  assert.equal(existsSync(workDir), false, 'cleanup() removes the work dir');
});

test('stop() ends once with reason stopped and is idempotent; tags and the input end after it are ignored', async () => {
  const tags = manualSource();
  const seg = new RtmpSegmenter({ tags, workDir: path.join(dir, 'stopped'), logger: silentLogger() });
  const ends: SegmenterEndInfo[] = [];
  seg.on('end', (e) => ends.push(e));
  seg.start();
  await Promise.all([seg.stop(), seg.stop(), seg.close()]);
  // A late tag (not even a valid one) and the input end change nothing.
  tags.reader!.tag(Buffer.from('not a tag'));
  tags.reader!.end();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ends.length, 1);
  assert.equal(ends[0]!.reason, 'stopped');
});

test('stop() before start() ends at once and start() is then refused', async () => {
  const tags = manualSource();
  const seg = new RtmpSegmenter({ tags, workDir: path.join(dir, 'never'), logger: silentLogger() });
  await seg.stop();
  assert.equal((await seg.done).reason, 'stopped');
  assert.throws(() => seg.start(), GatewayError);
  assert.equal(tags.reads, 0, 'the tags were never read');
});
