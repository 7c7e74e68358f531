/**
 * Watermarks drawn by real ffmpeg on the real clip, in both transcode paths: the per-segment job
 * (SegmentTranscoder) and the continuous live ladder (LiveLadder). The image is configured as a
 * local file, checked and copied into the (directory) object store by WatermarkResolver, and
 * fetched back by key, as a transcoder on another host would.
 *
 * The proof compares each watermarked rendition with the same rendition made without a mark:
 * the same frame of both is decoded by ffmpeg to 8-bit gray, and the mean absolute difference
 * per pixel is taken inside the overlay's rectangle (domain/watermark.ts watermarkPlacement)
 * and outside it. Thresholds: inside > 60 gray levels (a white mark, half of it at alpha 0.5,
 * at opacity 0.9 over the clip's greens: measured 142-147); outside < 2 levels over the frame
 * minus a 16 px band around the rectangle (measured 0.00-0.01). Outside need not be 0: x264's
 * rate control may spend bits differently on the two pictures (the mark's edges cost bits), so
 * quantizers and hence encoding noise elsewhere can differ by a level; macroblocks (16×16)
 * that straddle the rectangle's edge hold both, hence the band. A mark in the wrong place or at
 * the wrong size fails both bounds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fitRendition, PRESETS, type FittedRendition, type VideoProfile } from '../../../src/domain/profile.ts';
import { segmentKey, type SourceSegmentInfo, type TranscodeJob } from '../../../src/domain/segment.ts';
import { parseWatermarkRequest, watermarkPlacement, type WatermarkSpec } from '../../../src/domain/watermark.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { ChildSupervisor } from '../../../src/media/child-supervisor.ts';
import { FfmpegRunner } from '../../../src/media/ffmpeg-runner.ts';
import { LiveLadder, type LiveRenditionSegment } from '../../../src/transcode/live-ladder.ts';
import { SegmentTranscoder } from '../../../src/transcode/segment-transcoder.ts';
import { ladderFrames, WatermarkResolver } from '../../../src/ingest/watermark-resolver.ts';
import { DirStorage } from '../../helpers/dir-storage.ts';
import { clipWith2sGop, tsSourceSegments } from '../../helpers/media.ts';

const run = promisify(execFile);
const LADDER: VideoProfile[] = ['P360p30fps16x9', 'P240p30fps16x9'].map((n) => PRESETS[n]!);
const SOURCE: SourceSegmentInfo = { video: { width: 640, height: 360, fpsNum: 24, fpsDen: 1, codec: 'h264' }, audio: { codec: 'aac', profile: 'LC' } };
/** Mean absolute gray difference inside the mark's rectangle must exceed this (levels of 255). */
const INSIDE_MIN = 60;
/** ... and outside it (minus {@link EDGE_BAND_PX}) stay below this. */
const OUTSIDE_MAX = 2;
/** Pixels around the rectangle left out of the outside mean: one macroblock. */
const EDGE_BAND_PX = 16;
/** The decoded frame compared (a P-frame well into the segment, not the keyframe). */
const FRAME_INDEX = 20;

let root: string;
let storage: DirStorage;

/** Frame `index` of an MPEG-TS file as 8-bit gray, `width`×`height` bytes (ffmpeg decodes; not the code under test). */
async function grayFrame(path: string, index: number, width: number, height: number): Promise<Buffer> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-vf', `select=eq(n\\,${index})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 1 << 24 });
  assert.equal(stdout.length, width * height, `frame ${index} of ${path} decoded`);
  return stdout;
}

/** Mean absolute difference inside the rectangle, and outside it beyond the band. */
function compare(a: Buffer, b: Buffer, width: number, height: number, rect: { x: number; y: number; width: number; height: number }): { inside: number; outside: number } {
  let inSum = 0; let inN = 0; let outSum = 0; let outN = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.abs(a[y * width + x]! - b[y * width + x]!);
      if (x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height) { inSum += d; inN += 1; }
      else if (x < rect.x - EDGE_BAND_PX || x >= rect.x + rect.width + EDGE_BAND_PX || y < rect.y - EDGE_BAND_PX || y >= rect.y + rect.height + EDGE_BAND_PX) { outSum += d; outN += 1; }
    }
  }
  return { inside: inSum / inN, outside: outSum / outN };
}

async function assertMarkedOnlyInside(plain: string, marked: string, rendition: { width: number; height: number }, spec: WatermarkSpec, note: (s: string) => void): Promise<void> {
  const rect = watermarkPlacement(spec, rendition, SOURCE.video.width);
  const a = await grayFrame(plain, FRAME_INDEX, rendition.width, rendition.height);
  const b = await grayFrame(marked, FRAME_INDEX, rendition.width, rendition.height);
  const { inside, outside } = compare(a, b, rendition.width, rendition.height, rect);
  note(`${rendition.width}x${rendition.height}: mean |diff| inside ${inside.toFixed(2)}, outside ${outside.toFixed(2)}`);
  assert.ok(inside > INSIDE_MIN, `${rendition.width}x${rendition.height}: inside the mark ${inside.toFixed(2)} > ${INSIDE_MIN}`);
  assert.ok(outside < OUTSIDE_MAX, `${rendition.width}x${rendition.height}: outside the mark ${outside.toFixed(2)} < ${OUTSIDE_MAX}`);
}

/** A 200×100 RGBA PNG: opaque white on the left half, half-transparent white on the right. */
async function markPng(path: string): Promise<void> {
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', "color=c=white:s=200x100,format=rgba,geq=r='255':g='255':b='255':a='if(lt(X,100),255,128)'", '-frames:v', '1', path]);
}

describe('watermark on transcoded renditions (real ffmpeg, real clip)', () => {
  let spec: WatermarkSpec;
  let sourceTs: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'mg-watermark-'));
    storage = new DirStorage(join(root, 'objects'));
    await markPng(join(root, 'mark.png'));
    const request = parseWatermarkRequest({ image: join(root, 'mark.png'), position: 'bottom-right', widthFraction: 0.25, marginPx: 16, opacity: 0.9 }, 'watermark');
    spec = await new WatermarkResolver(storage).resolve(request, ladderFrames(LADDER), 'watermark');
    sourceTs = join(root, 'source.ts');
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', await clipWith2sGop(4), '-t', '2', '-c', 'copy', '-f', 'mpegts', sourceTs]);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a local image is checked and copied into the object store under a content-addressed key', async () => {
    assert.equal(spec.kind, 'image');
    assert.ok(spec.kind === 'image' && /^watermarks\/[0-9a-f]{32}\.png$/.test(spec.imageKey), JSON.stringify(spec));
    assert.ok(spec.kind === 'image' && spec.imageWidthPx === 200 && spec.imageHeightPx === 100);
    assert.deepEqual(await readdir(join(root, 'objects', 'watermarks')), [spec.kind === 'image' ? spec.imageKey.split('/')[1] : '']);
  });

  test('per-segment job: each rendition differs from the unmarked one inside the mark only, at that rendition\'s size', async (t) => {
    const runner = new FfmpegRunner({ logger: silentLogger() });
    const transcoder = new SegmentTranscoder({ storage, workDir: join(root, 'work'), logger: silentLogger(), runner });
    try {
      const outputs: Record<string, string>[] = [];
      for (const [session, watermark] of [['plain', undefined], ['marked', spec]] as const) {
        const sourceKey = segmentKey('wm', session, 'source', 0);
        await storage.putFile(sourceKey, sourceTs);
        const job: TranscodeJob = { manifestID: 'wm', seq: 0, sourceKey, durationMs: 2000, profiles: LADDER, source: SOURCE, ...(watermark ? { watermark } : {}) };
        const result = await transcoder.transcode(job);
        assert.deepEqual(result.renditions.map((r) => `${r.width}x${r.height}`), ['640x360', '426x240']);
        outputs.push(Object.fromEntries(result.renditions.map((r) => [r.rendition, storage.path(r.key)])));
      }
      for (const profile of LADDER) {
        const fitted = fitRendition(profile, SOURCE.video)!;
        await assertMarkedOnlyInside(outputs[0]![profile.name]!, outputs[1]![profile.name]!, fitted, spec, (m) => t.diagnostic(m));
      }
    } finally {
      await transcoder.close();
      await runner.close();
    }
  });

  test('live ladder: each rendition differs from the unmarked one inside the mark only', async (t) => {
    const supervisor = new ChildSupervisor({ logger: silentLogger() });
    try {
      const segments = await tsSourceSegments(await clipWith2sGop(4), 4, root);
      const renditions: FittedRendition[] = LADDER.map((p) => fitRendition(p, SOURCE.video)!);
      const image = await storage.getFile(spec.kind === 'image' ? spec.imageKey : '');
      const files: Record<string, string>[] = [];
      for (const name of ['plain', 'marked'] as const) {
        const ladder = new LiveLadder({
          renditions, source: SOURCE, supervisor, logger: silentLogger(),
          ...(name === 'marked' ? { watermark: { spec, imagePath: image.path, sourceWidthPx: 640 } } : {}),
        });
        const got: LiveRenditionSegment[] = [];
        ladder.on('segment', (s) => got.push(s));
        ladder.on('failed', (f) => assert.fail(`rendition segment failed: ${JSON.stringify(f)}`));
        for (const seg of segments) ladder.write({ seq: seg.seq, first: true, startPts90k: seg.startPts90k, bytes: seg.bytes });
        await ladder.end();
        const out: Record<string, string> = {};
        for (const r of renditions) {
          const first = got.find((s) => s.seq === segments[0]!.seq && s.rendition === r.profile.name);
          assert.ok(first, `${name}: ${r.profile.name} segment 0`);
          out[r.profile.name] = join(root, `${name}-${r.profile.name}.ts`);
          await writeFile(out[r.profile.name]!, first.bytes);
        }
        files.push(out);
      }
      for (const r of renditions) await assertMarkedOnlyInside(files[0]![r.profile.name]!, files[1]![r.profile.name]!, r, spec, (m) => t.diagnostic(m));
    } finally {
      await supervisor.close();
    }
  });

  test('a text watermark (drawtext, fontconfig Sans) changes its corner of the rendition and nothing else', async (t) => {
    const runner = new FfmpegRunner({ logger: silentLogger() });
    const transcoder = new SegmentTranscoder({ storage, workDir: join(root, 'work-text'), logger: silentLogger(), runner });
    const text: WatermarkSpec = { kind: 'text', text: 'MEDIAGATE LIVE', fontSizeFraction: 0.1, position: 'top-left', margin: { fraction: 0.02 }, opacity: 1 };
    try {
      const files: string[] = [];
      for (const [session, watermark] of [['text-plain', undefined], ['text-marked', text]] as const) {
        const sourceKey = segmentKey('wm', session, 'source', 0);
        await storage.putFile(sourceKey, sourceTs);
        const result = await transcoder.transcode({ manifestID: 'wm', seq: 0, sourceKey, durationMs: 2000, profiles: [LADDER[0]!], source: SOURCE, ...(watermark ? { watermark } : {}) });
        files.push(storage.path(result.renditions[0]!.key));
      }
      const size = { width: 640, height: 360 };
      const p = watermarkPlacement(text, size, 640);
      // drawtext measures the text itself: its box starts at the margin and is one font size high;
      // 'MEDIAGATE LIVE' at 36 px is about 280 px wide, so the first 150 px are surely inside it.
      const a = await grayFrame(files[0]!, FRAME_INDEX, size.width, size.height);
      const b = await grayFrame(files[1]!, FRAME_INDEX, size.width, size.height);
      const inside = compare(a, b, size.width, size.height, { x: p.x, y: p.y, width: 150, height: p.height });
      const outside = compare(a, b, size.width, size.height, { x: 0, y: 0, width: 360, height: p.y + p.height + 8 });
      t.diagnostic(`text: mean |diff| in its first 150 px ${inside.inside.toFixed(2)}, outside a 360 px corner box ${outside.outside.toFixed(2)}`);
      assert.ok(inside.inside > 15, `text drawn: ${inside.inside.toFixed(2)} > 15`);
      assert.ok(outside.outside < OUTSIDE_MAX, `nothing else changed: ${outside.outside.toFixed(2)} < ${OUTSIDE_MAX}`);
    } finally {
      await transcoder.close();
      await runner.close();
    }
  });

  test('an image that is not a PNG/JPEG, or larger than the frame, is refused when configured, and nothing is stored', async () => {
    const resolver = new WatermarkResolver(storage);
    await writeFile(join(root, 'logo.gif'), Buffer.from('GIF89a\x10\x00\x10\x00\x00\x00\x00;', 'latin1'));
    await writeFile(join(root, 'notes.png'), 'not an image at all');
    const big = join(root, 'big.png');
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=blue:s=1280x720', '-frames:v', '1', big]);
    const before = await readdir(join(root, 'objects', 'watermarks'));
    const refused = async (image: string, pattern: RegExp): Promise<void> => {
      await assert.rejects(resolver.resolve(parseWatermarkRequest({ image }, 'streamKeys[0].watermark'), ladderFrames(LADDER), 'streamKeys[0].watermark'),
        (err: unknown) => err instanceof GatewayError && err.code === 'INVALID_WATERMARK' && err.status === 400 && pattern.test(err.message));
    };
    await refused(join(root, 'logo.gif'), /^streamKeys\[0\]\.watermark\.image: a GIF image; a watermark must be a PNG or JPEG$/);
    await refused(join(root, 'notes.png'), /^streamKeys\[0\]\.watermark\.image: not a PNG or JPEG image/);
    await refused(big, /^streamKeys\[0\]\.watermark: image is 1280x720, larger than the largest frame of the ladder \(640x360\)/);
    await refused(join(root, 'missing.png'), /cannot read .*missing\.png \(ENOENT\)/);
    await assert.rejects(resolver.resolve(parseWatermarkRequest({ imageKey: 'watermarks/none.png' }, 'w'), ladderFrames(LADDER), 'auth webhook: watermark'),
      (err: unknown) => err instanceof GatewayError && err.code === 'INVALID_WATERMARK' && /^auth webhook: watermark\.imageKey: "watermarks\/none\.png" is not an object/.test(err.message));
    assert.deepEqual(await readdir(join(root, 'objects', 'watermarks')), before, 'no image stored');
  });
});
