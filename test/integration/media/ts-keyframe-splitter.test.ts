/**
 * The keyframe splitter on the real clip (2 s GOPs, remuxed to MPEG-TS by ffmpeg): fed in
 * odd-sized pieces, it gives back exactly the keyframe-aligned segments ffprobe finds, and
 * each one decodes alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TsKeyframeSplitter } from '../../../src/media/ts-keyframe-splitter.ts';
import { clipWith2sGop, tsSourceSegments, type TsSourceSegment } from '../../helpers/media.ts';

const run = promisify(execFile);

describe('TsKeyframeSplitter', () => {
  let dir: string;
  let segments: TsSourceSegment[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kf-split-'));
    segments = await tsSourceSegments(await clipWith2sGop(8), 8, dir);
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('cuts a continuous stream fed in odd pieces into the same keyframe segments ffprobe finds', () => {
    const stream = Buffer.concat(segments.map((s) => s.bytes));
    const splitter = new TsKeyframeSplitter();
    const out: Buffer[][] = [];
    for (let off = 0; off < stream.length; off += 1001) {
      for (const e of splitter.push(stream.subarray(off, off + 1001))) {
        if (e.kind === 'start') out.push([]);
        else out[out.length - 1]!.push(e.bytes);
      }
    }
    for (const e of splitter.end()) if (e.kind === 'data') out[out.length - 1]!.push(e.bytes);
    assert.equal(segments.length, 4);
    assert.equal(out.length, segments.length);
    out.forEach((parts, i) => assert.ok(Buffer.concat(parts).equals(segments[i]!.bytes), `segment ${i} is byte-identical`));
    assert.equal(splitter.droppedPackets, 0);
  });

  it('drops what precedes the first keyframe and gives each segment its PAT/PMT so it decodes alone', async () => {
    // Start the stream mid-GOP: the first segment minus its first 40 packets.
    const stream = Buffer.concat([segments[0]!.bytes.subarray(188 * 40), segments[1]!.bytes, segments[2]!.bytes]);
    const splitter = new TsKeyframeSplitter();
    const out: Buffer[][] = [];
    for (const e of [...splitter.push(stream), ...splitter.end()]) {
      if (e.kind === 'start') out.push([]);
      else out[out.length - 1]!.push(e.bytes);
    }
    assert.equal(out.length, 2);
    assert.ok(splitter.droppedPackets > 0);
    for (const [i, parts] of out.entries()) {
      const file = join(dir, `part${i}.ts`);
      await writeFile(file, Buffer.concat(parts));
      const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file]);
      assert.equal(Number(stdout.trim().split(/\s+/)[0]), segments[i + 1]!.frames.length, stdout);
    }
  });
});
