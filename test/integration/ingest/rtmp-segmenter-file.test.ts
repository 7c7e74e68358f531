/**
 * RtmpSegmenter writes each segment file as the segment is muxed (its chunks are appended as
 * they come) rather than holding the whole segment in memory until it closes: the memory a
 * stream costs stays a few frames, not a segment (bench/README.md, issue 14 goal 1). Fed with
 * the real clip's FLV tags (test/helpers/flv.ts) through a stand-in tag source.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RtmpSegmenter, SEGMENT_WRITE_BUFFER_BYTES, SEGMENT_WRITE_DELAY_MS, type SegmentInfo } from '../../../src/ingest/rtmp-segmenter.ts';
import type { FlvTagReader, FlvTagSource } from '../../../src/ingest/rtmp/packet-tap.ts';
import type { TsChunk } from '../../../src/media/ts-segmenter.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { clipFlv, readFlvTags } from '../../helpers/flv.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mediagate-seg-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The FLV tag's 32-bit DTS, ms. */
const dtsOf = (tag: Buffer): number => ((tag[7]! << 24) | tag.readUIntBE(4, 3)) >>> 0;
/** Lets the segmenter's file writes (libuv thread pool) complete. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 200));

test('a segment file grows while its segment is open and, once closed, holds exactly its chunks', async () => {
  // 2 s GOPs (-g 48 at 24 fps): segment 0 = [0, 2 s), segment 1 = [2 s, 4 s), ...
  const tags = readFlvTags(await clipFlv('bf0', 8)).slice(1); // without the 13-byte FLV header
  let reader: FlvTagReader | undefined;
  const source: FlvTagSource = { read(r) { reader = r; } };
  const workDir = path.join(dir, 'grow');
  const seg = new RtmpSegmenter({ tags: source, workDir, logger: silentLogger(), segmentTargetMs: 2000 });
  const chunks: TsChunk[] = [];
  const segments: SegmentInfo[] = [];
  seg.on('chunk', (c) => chunks.push({ ...c, bytes: Buffer.from(c.bytes) })); // a view of the muxer's output: copied
  // Each file as it is when its segment is reported (later ones are removed by the ingest in the gateway).
  const files = new Map<number, Buffer>();
  seg.on('segment', (s) => { segments.push(s); files.set(s.seq, readFileSync(s.path)); });
  seg.start();

  // Segment 1 half done: 3 s of media.
  const half = tags.filter((t) => dtsOf(t) < 3000);
  for (const t of half) reader!.tag(t);
  await settle();
  assert.deepEqual(segments.map((s) => s.seq), [0], 'segment 1 is still open');
  const open = path.join(workDir, '1.ts');
  assert.ok(existsSync(open), 'the open segment already has its file');
  const openBytes = chunks.filter((c) => c.seq === 1).reduce((n, c) => n + c.bytes.length, 0);
  assert.ok(openBytes > 0);
  assert.equal(statSync(open).size, openBytes, 'every chunk produced so far is in the file');

  for (const t of tags.slice(half.length)) reader!.tag(t);
  reader!.end();
  const end = await seg.done;
  assert.equal(end.reason, 'inputEnded');
  assert.ok(segments.length >= 4, `8 s of 2 s GOPs: ${segments.length} segments`);
  for (const s of segments) {
    const expected = Buffer.concat(chunks.filter((c) => c.seq === s.seq).map((c) => c.bytes));
    assert.equal(s.bytes, expected.length, `segment ${s.seq}: reported size`);
    assert.ok(files.get(s.seq)!.equals(expected), `segment ${s.seq}: the file is its chunks, in order`);
  }
  await seg.cleanup();
});

test('a segment whose file cannot be written is not reported, and the stream goes on', async () => {
  const tags = readFlvTags(await clipFlv('bf0', 8)).slice(1);
  let reader: FlvTagReader | undefined;
  const source: FlvTagSource = { read(r) { reader = r; } };
  const workDir = path.join(dir, 'unwritable');
  const seg = new RtmpSegmenter({ tags: source, workDir, logger: silentLogger(), segmentTargetMs: 2000 });
  const segments: number[] = [];
  seg.on('segment', (s) => segments.push(s.seq));
  seg.start();
  // A directory where segment 1's file goes: its open fails.
  mkdirSync(path.join(workDir, '1.ts'));
  for (const t of tags) reader!.tag(t);
  reader!.end();
  const end = await seg.done;
  assert.equal(segments.includes(1), false, 'segment 1 is not reported');
  assert.ok(segments.includes(0) && segments.includes(2), `the others are: ${segments.join(',')}`);
  assert.equal(end.segments, segments.length);
  await seg.cleanup();
});

test('small chunks are gathered and written together, at the latest SEGMENT_WRITE_DELAY_MS after the first', async () => {
  const tags = readFlvTags(await clipFlv('bf0', 8)).slice(1);
  let reader: FlvTagReader | undefined;
  const source: FlvTagSource = { read(r) { reader = r; } };
  const workDir = path.join(dir, 'gathered');
  const seg = new RtmpSegmenter({ tags: source, workDir, logger: silentLogger(), segmentTargetMs: 2000 });
  const chunks: TsChunk[] = [];
  seg.on('chunk', (c) => chunks.push({ ...c, bytes: Buffer.from(c.bytes) })); // a view of the muxer's output: copied
  seg.start();
  // Into segment 1 (from 2 s), then frames up to 2.3 s, one tag at a time.
  for (const t of tags.filter((t) => dtsOf(t) < 2000)) reader!.tag(t);
  await settle();
  const file = path.join(workDir, '1.ts');
  let sizes = 0;
  let gathered = false;
  for (const t of tags.filter((t) => dtsOf(t) >= 2000 && dtsOf(t) < 2300)) {
    reader!.tag(t);
    const produced = chunks.filter((c) => c.seq === 1).reduce((n, c) => n + c.bytes.length, 0);
    const written = existsSync(file) ? statSync(file).size : 0;
    assert.ok(written <= produced);
    // At most one buffer's worth waits.
    assert.ok(produced - written < SEGMENT_WRITE_BUFFER_BYTES, `${produced - written} bytes not written`);
    if (written < produced) gathered = true;
    sizes += 1;
  }
  assert.ok(sizes > 3 && gathered, 'some chunks produced are not written at once');
  const produced = chunks.filter((c) => c.seq === 1).reduce((n, c) => n + c.bytes.length, 0);
  await new Promise((r) => setTimeout(r, SEGMENT_WRITE_DELAY_MS + 100));
  assert.equal(statSync(file).size, produced, 'once the delay passed, every chunk is in the file');
  reader!.end();
  await seg.done;
  await seg.cleanup();
});

test('a file of the same name left in the work dir is replaced, not truncated (the object store may have linked it)', async () => {
  const tags = readFlvTags(await clipFlv('bf0', 4)).slice(1);
  let reader: FlvTagReader | undefined;
  const source: FlvTagSource = { read(r) { reader = r; } };
  const workDir = path.join(dir, 'left');
  mkdirSync(workDir, { recursive: true });
  const left = path.join(workDir, '0.ts');
  writeFileSync(left, 'an object the store linked');
  const stored = path.join(dir, 'left-stored.ts');
  linkSync(left, stored);
  const seg = new RtmpSegmenter({ tags: source, workDir, logger: silentLogger(), segmentTargetMs: 2000 });
  const files = new Map<number, number>();
  seg.on('segment', (s) => files.set(s.seq, statSync(s.path).size));
  seg.start();
  for (const t of tags) reader!.tag(t);
  reader!.end();
  await seg.done;
  assert.equal(readFileSync(stored, 'utf8'), 'an object the store linked', 'the linked file is untouched');
  assert.ok((files.get(0) ?? 0) > 1000, 'segment 0 was written to a new file');
  await seg.cleanup();
});

test('the next segment\'s file is created ahead, through the thread pool, while the segment before it is muxed; none is left after the end', async () => {
  const tags = readFlvTags(await clipFlv('bf0', 8)).slice(1);
  let reader: FlvTagReader | undefined;
  const source: FlvTagSource = { read(r) { reader = r; } };
  const workDir = path.join(dir, 'ahead');
  const seg = new RtmpSegmenter({ tags: source, workDir, logger: silentLogger(), segmentTargetMs: 2000 });
  const reported: string[] = [];
  seg.on('segment', (s) => reported.push(path.basename(s.path)));
  seg.start();
  await settle();
  assert.ok(existsSync(path.join(workDir, '0.ts')), 'segment 0\'s file exists before its first chunk');
  assert.equal(statSync(path.join(workDir, '0.ts')).size, 0);
  // Segment 1 half done: segment 2's file is there, empty, before its first chunk.
  for (const t of tags.filter((t) => dtsOf(t) < 3000)) reader!.tag(t);
  await settle();
  assert.ok(existsSync(path.join(workDir, '2.ts')), 'segment 2\'s file is created while segment 1 is muxed');
  assert.equal(statSync(path.join(workDir, '2.ts')).size, 0);
  for (const t of tags.filter((t) => dtsOf(t) >= 3000)) reader!.tag(t);
  reader!.end();
  await seg.done;
  assert.ok(reported.length >= 4);
  assert.deepEqual(readdirSync(workDir).sort(), [...reported].sort(), 'only the reported segments\' files: the one opened ahead for a segment that never came is removed');
  await seg.cleanup();
});
