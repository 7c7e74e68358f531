/**
 * LiveIngest's stream taps (ingest-ports.ts StreamTap), the hook restream outputs and
 * thumbnails run on: told when a stream is held here, of each source segment once it is
 * listed (in seq order, with its object key), and when the stream is not held any more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiveIngest, type LiveIngestOptions, type StreamTap } from '../../../src/ingest/live-ingest.ts';
import { bookkeepingIndex, fakeSegmenters, ingestOptions } from '../../helpers/ingest-stand-ins.ts';

const probed = { video: { codec: 'h264', width: 640, height: 360, frames: 48 }, audio: undefined, durationMs: 2000, codecs: 'avc1.64001e', frameRate: 24 };

function tapped(overrides: Partial<LiveIngestOptions> = {}): { ingest: LiveIngest; seen: string[]; segmenter: () => ReturnType<ReturnType<typeof fakeSegmenters>['startSegmenter']> } {
  const { segmenters, startSegmenter } = fakeSegmenters();
  const seen: string[] = [];
  const tap: StreamTap = {
    opened: (s) => seen.push(`opened ${s.manifestID} resumed=${s.resumed}`),
    sourceListed: (s) => seen.push(`listed ${s.manifestID} ${s.seq} ${s.key} ${s.bytes}`),
    closed: (s) => seen.push(`closed ${s.manifestID} continued=${s.continued}`),
  };
  const throwing: StreamTap = { opened: () => { throw new Error('tap bug'); }, sourceListed: () => { throw new Error('tap bug'); } };
  const ingest = new LiveIngest(ingestOptions({
    startSegmenter, unpublishGraceMs: 50, storage: { putFile: async () => ({ sizeBytes: 1000 }) }, taps: [throwing, tap], ...overrides,
  }));
  return { ingest, seen, segmenter: () => segmenters[0]! };
}

test('taps see the stream open, each source segment listed in seq order with its key, and the end; a throwing tap changes nothing', async () => {
  const { ingest, seen, segmenter } = tapped();
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  for (const seq of [0, 1, 2]) segmenter().emit('segment', { seq, path: `/nonexistent/${seq}.ts`, durationMs: 2000, probed });
  await new Promise((r) => setTimeout(r, 50));
  await ingest.unpublish('conn-1');
  const session = seen[1]!.split(' ')[3]!.split('/')[1];
  assert.deepEqual(seen, [
    'opened cam resumed=false',
    `listed cam 0 cam/${session}/source/0.ts 1000`,
    `listed cam 1 cam/${session}/source/1.ts 1000`,
    `listed cam 2 cam/${session}/source/2.ts 1000`,
    'closed cam continued=false',
  ]);
});

test('a segment the index refuses to list (skipped already) reaches no tap', async () => {
  const { ingest, seen, segmenter } = tapped({ index: bookkeepingIndex({ record: async (_m, _s, o) => ({ accepted: o.seq !== 1, listed: o.seq !== 1 ? 1 : 0 }) }) });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  for (const seq of [0, 1, 2]) segmenter().emit('segment', { seq, path: `/nonexistent/${seq}.ts`, durationMs: 2000, probed });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen.filter((l) => l.startsWith('listed')).map((l) => Number(l.split(' ')[2])), [0, 2]);
  await ingest.close();
});

test('a publisher reconnecting to a live session opens it here as resumed', async () => {
  const { ingest, seen } = tapped({ index: bookkeepingIndex({ resumeStream: async () => ({ session: 'old', nextSeq: 4 }) }), leases: { acquire: async () => ({ acquired: true as const }), renew: async () => [], release: async () => true }, memberId: 'gw-a' });
  await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
  assert.deepEqual(seen, ['opened cam resumed=true']);
  await ingest.close();
});

test('an RTMP segment file is stored with sourceFinal (the store may link it), and the file is deleted once stored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-final-'));
  try {
    const puts: { key: string; options: unknown }[] = [];
    const { ingest, segmenter } = tapped({ storage: { putFile: async (key, _path, options) => { puts.push({ key, options }); return { sizeBytes: 1000 }; } } });
    await ingest.publish('conn-1', 'cam', 'rtmp://127.0.0.1:1935/live/cam');
    const file = join(dir, '0.ts');
    writeFileSync(file, Buffer.alloc(1000));
    segmenter().emit('segment', { seq: 0, path: file, durationMs: 2000, probed });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(puts.length, 1);
    assert.deepEqual(puts[0]!.options, { sourceFinal: true });
    assert.equal(existsSync(file), false, 'the work file is deleted once stored');
    await ingest.unpublish('conn-1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
