/**
 * Thumbnails of real source segments (media/thumbnail.ts) with real ffmpeg: the clip cut into
 * MPEG-TS segments, a filesystem object store in a temp dir.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ChildSupervisor } from '../../../src/media/child-supervisor.ts';
import { Thumbnails, ThumbnailError, extractThumbnail } from '../../../src/media/thumbnail.ts';
import { FsObjectStore } from '../../../src/storage/fs-store.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { probeJpeg } from '../../helpers/media.ts';
import { cutPushSegments } from '../../helpers/push-client.ts';

const run = promisify(execFile);
const OPTIONS = { widthPx: 160, jpegQscale: 5 };

let dir: string;
let segments: Buffer[];
let audioOnly: Buffer;
let supervisor: ChildSupervisor;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mg-thumb-'));
  segments = await cutPushSegments(8, dir);
  const audioPath = join(dir, 'audio-only.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', join(dir, 'push-0.ts'), '-map', '0:a:0', '-c', 'copy', '-f', 'mpegts', audioPath]);
  audioOnly = readFileSync(audioPath);
  supervisor = new ChildSupervisor({ logger: createLogger({ level: 'silent' }) });
});

after(async () => {
  await supervisor.close();
  rmSync(dir, { recursive: true, force: true });
});


const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the first keyframe of a real segment becomes a JPEG at most widthPx wide that decodes, keeping the aspect ratio', async () => {
  const jpeg = await extractThumbnail(supervisor, Readable.from([segments[0]!]), OPTIONS);
  assert.deepEqual(jpeg.subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]), 'JPEG SOI marker');
  const probed = await probeJpeg(jpeg, dir);
  assert.equal(probed.codec, 'mjpeg');
  assert.equal(probed.width, 160);
  assert.equal(probed.height, 90, '640x360 scaled to 160 wide keeps 16:9');
});

test('a source narrower than widthPx keeps its width', async () => {
  const jpeg = await extractThumbnail(supervisor, Readable.from([segments[0]!]), { widthPx: 1920, jpegQscale: 5 });
  assert.equal((await probeJpeg(jpeg, dir)).width, 640);
});

test('later segments give different pictures', async () => {
  const first = await extractThumbnail(supervisor, Readable.from([segments[0]!]), OPTIONS);
  const later = await extractThumbnail(supervisor, Readable.from([segments[3]!]), OPTIONS);
  assert.notEqual(sha(first), sha(later));
});

test('an audio-only segment is refused as no-video', async () => {
  await assert.rejects(extractThumbnail(supervisor, Readable.from([audioOnly]), OPTIONS),
    (err: unknown) => err instanceof ThumbnailError && err.reason === 'no-video');
  assert.equal(supervisor.size, 0, 'no ffmpeg left running');
});

test('bytes that are not MPEG-TS fail without hanging', async () => {
  await assert.rejects(extractThumbnail(supervisor, Readable.from([Buffer.alloc(4096, 7)]), OPTIONS),
    (err: unknown) => err instanceof ThumbnailError && err.reason === 'failed');
});

test('Thumbnails: concurrent requests share one ffmpeg run, the result is stored beside the segment and another instance reads it without decoding', async () => {
  const store = new FsObjectStore(join(dir, 'store'));
  await store.putBytes('m/s1/source/2.ts', segments[2]!);
  let runs = 0;
  const onExit = (exit: { name: string }): void => { if (exit.name === 'thumbnail') runs++; };
  supervisor.on('exit', onExit);
  try {
    const thumbnails = new Thumbnails({ objects: store, supervisor, ...OPTIONS });
    const got = await Promise.all([1, 2, 3, 4].map(() => thumbnails.get('m/s1/source/2.ts', 'm/s1/thumbnails/2.jpg')));
    assert.equal(runs, 1, 'one ffmpeg for four concurrent requests');
    for (const g of got) assert.equal(sha(g!), sha(got[0]!));
    const stored = await store.getStream('m/s1/thumbnails/2.jpg');
    assert.ok(stored, 'stored in the object store');
    stored.stream.destroy();
    assert.equal(stored.sizeBytes, got[0]!.length);

    // Another gateway (a new instance on the same store): reads, does not decode.
    const other = new Thumbnails({ objects: store, supervisor, ...OPTIONS });
    assert.equal(sha((await other.get('m/s1/source/2.ts', 'm/s1/thumbnails/2.jpg'))!), sha(got[0]!));
    assert.equal(runs, 1, 'no second decode');

    assert.equal(await other.get('m/s1/source/9.ts', 'm/s1/thumbnails/9.jpg'), undefined, 'a segment not in the store gives undefined');
  } finally {
    supervisor.off('exit', onExit);
    await store.close();
  }
});
