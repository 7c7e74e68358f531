/**
 * The configured watermark end to end, with real processes: a gateway (embedded transcoder, live
 * sessions on by default) started with `MEDIAGATE_WATERMARK_*`, the clip published over RTMP,
 * and the listed rendition segment checked pixel by pixel against the source segment of the same
 * seq (both decoded by ffmpeg to gray at the rendition's size). The source is encoded once more
 * by our ladder, so outside the mark the two differ by encoding noise only: thresholds inside
 * > 60 gray levels (an opaque white mark over the clip), outside < 8 (two encodes of the same
 * picture at 0.6-0.8 Mb/s, minus a 16 px band around the mark). A gateway configured with an
 * image that is not a PNG/JPEG does not start, naming the setting. With
 * `MEDIAGATE_WATERMARK_APPLY_TO_SOURCE`, the stream gets a marked copy of the source at its
 * size (`source-marked`, checked the same way against the unmarked source segment read from the
 * object store's directory, on the last listed segment whose picture is bright: inside the mark
 * > 20 gray levels and > 10 times the outside's, outside < 8), the master lists it and not the
 * source, and the source's playlist and segments answer 404.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PRESETS, fitRendition } from '../../../src/domain/profile.ts';
import { watermarkPlacement, type WatermarkSpec } from '../../../src/domain/watermark.ts';
import { publish, spawnMediagate, startGateway, testDeployment, waitForListedSegments, type RunningGateway } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';

const run = promisify(execFile);
const RENDITION = 'P240p30fps16x9';
const SIZE = fitRendition(PRESETS[RENDITION]!, { width: 640, height: 360, fpsNum: 24, fpsDen: 1 })!;

let redis: TestRedis;
let dir: string;

before(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'mg-wm-gw-'));
});
after(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function grayFrame(url: string, index: number, size: { width: number; height: number } = SIZE): Promise<Buffer> {
  const file = join(dir, `f-${Math.random().toString(36).slice(2)}.ts`);
  await writeFile(file, Buffer.from(await (await fetch(url)).arrayBuffer()));
  return grayFrameOfFile(file, index, size);
}

async function grayFrameOfFile(file: string, index: number, size: { width: number; height: number }): Promise<Buffer> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-vf', `select=eq(n\\,${index}),scale=${size.width}:${size.height}`, '-frames:v', '1',
    '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { encoding: 'buffer', maxBuffer: 1 << 24 });
  assert.equal(stdout.length, size.width * size.height, `frame ${index} of ${file}`);
  return stdout;
}

/** Mean |difference| inside the rectangle, outside it (minus a 16 px band), and the mean gray of the marked frame inside it. */
function compareRegion(marked: Buffer, source: Buffer, size: { width: number; height: number }, rect: { x: number; y: number; width: number; height: number }): { insideMean: number; outsideMean: number; white: number } {
  let inSum = 0; let inN = 0; let outSum = 0; let outN = 0; let whiteSum = 0;
  for (let y = 0; y < size.height; y++) {
    for (let x = 0; x < size.width; x++) {
      const d = Math.abs(marked[y * size.width + x]! - source[y * size.width + x]!);
      const inside = x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height;
      const band = x >= rect.x - 16 && x < rect.x + rect.width + 16 && y >= rect.y - 16 && y < rect.y + rect.height + 16;
      if (inside) { inSum += d; inN += 1; whiteSum += marked[y * size.width + x]!; } else if (!band) { outSum += d; outN += 1; }
    }
  }
  return { insideMean: inSum / inN, outsideMean: outSum / outN, white: whiteSum / inN };
}

test('a gateway configured with a GIF as watermark.image does not start, naming the setting', async () => {
  const gif = join(dir, 'mark.gif');
  await writeFile(gif, Buffer.from('GIF89a\x10\x00\x10\x00\x00\x00\x00;', 'latin1'));
  const deployment = await testDeployment(redis.url, { MEDIAGATE_WATERMARK_IMAGE: gif });
  const proc = spawnMediagate('gateway', deployment.env);
  try {
    const exit = await proc.exited;
    assert.notEqual(exit.code, 0);
    assert.ok(proc.lines.some((l) => l.includes('watermark.image: a GIF image; a watermark must be a PNG or JPEG')), proc.lines.slice(-5).join('\n'));
  } finally {
    await proc.stop();
    deployment.cleanup();
  }
});

test('the configured watermark is on the live rendition, in its corner at its relative width, and nowhere else', async (t) => {
  const png = join(dir, 'mark.png');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=white:s=200x100', '-frames:v', '1', png]);
  let gateway: RunningGateway | undefined;
  try {
    gateway = await startGateway(redis.url, {
      MEDIAGATE_LADDER: RENDITION, MEDIAGATE_WATERMARK_IMAGE: png, MEDIAGATE_WATERMARK_POSITION: 'top-left',
      MEDIAGATE_WATERMARK_WIDTH_FRACTION: '0.25', MEDIAGATE_WATERMARK_MARGIN_FRACTION: '0.05', MEDIAGATE_WATERMARK_OPACITY: '1',
    });
    const pub = publish(await clipWith2sGop(8), gateway.rtmpUrl('wmstream'));
    const base = `${gateway.httpUrl}/stream/wmstream`;
    await waitForListedSegments(`${base}/${RENDITION}.m3u8`, 2, gateway.proc);
    await pub.exited;
    const seg = (await (await fetch(`${base}/${RENDITION}.m3u8`)).text()).split('\n').find((l) => l.endsWith('.ts'))!;
    const seq = Number(/(\d+)\.ts$/.exec(seg)![1]);
    const marked = await grayFrame(new URL(seg, `${base}/${RENDITION}.m3u8`).href, 10);
    const source = await grayFrame(`${base}/source/${seq}.ts`, 10);
    const spec: WatermarkSpec = {
      kind: 'image', imageKey: 'k', imageFormat: 'png', imageWidthPx: 200, imageHeightPx: 100, widthFraction: 0.25, position: 'top-left', margin: { fraction: 0.05 }, opacity: 1,
    };
    const rect = watermarkPlacement(spec, SIZE, 640);
    assert.deepEqual(rect, { x: 21, y: 21, width: 106, height: 54, marginPx: 21 });
    const { insideMean, outsideMean, white } = compareRegion(marked, source, SIZE, rect);
    t.diagnostic(`mark gray ${white.toFixed(1)}, mean |diff| inside ${insideMean.toFixed(2)}, outside ${outsideMean.toFixed(2)}`);
    assert.ok(white > 240, `the mark is white in the rendition: mean gray ${white.toFixed(1)}`);
    assert.ok(insideMean > 60, `inside the mark ${insideMean.toFixed(2)} > 60`);
    assert.ok(outsideMean < 8, `outside the mark ${outsideMean.toFixed(2)} < 8`);
  } finally {
    await gateway?.stop();
  }
});

test('with applyToSource the master lists the marked source-size copy instead of the source, the copy is marked, and the raw source answers 404', async (t) => {
  const png = join(dir, 'mark-src.png');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=white:s=200x100', '-frames:v', '1', png]);
  const full = { width: 640, height: 360 };
  let gateway: RunningGateway | undefined;
  try {
    gateway = await startGateway(redis.url, {
      MEDIAGATE_LADDER: RENDITION, MEDIAGATE_WATERMARK_IMAGE: png, MEDIAGATE_WATERMARK_POSITION: 'top-left',
      MEDIAGATE_WATERMARK_WIDTH_FRACTION: '0.25', MEDIAGATE_WATERMARK_MARGIN_FRACTION: '0.05', MEDIAGATE_WATERMARK_OPACITY: '1',
      MEDIAGATE_WATERMARK_APPLY_TO_SOURCE: 'true',
    });
    const pub = publish(await clipWith2sGop(8), gateway.rtmpUrl('wmsrc'));
    const base = `${gateway.httpUrl}/stream/wmsrc`;
    await waitForListedSegments(`${base}/source-marked.m3u8`, 2, gateway.proc);
    await pub.exited;

    const master = await (await fetch(`${base}.m3u8`)).text();
    const uris = master.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(uris, ['wmsrc/source-marked.m3u8', `wmsrc/${RENDITION}.m3u8`], master);
    assert.match(master, /RESOLUTION=640x360/);

    const refused = await fetch(`${base}/source.m3u8`);
    assert.equal(refused.status, 404);
    const body = await refused.json() as { detail: { msg: string; code: string } };
    assert.equal(body.detail.code, 'NOT_FOUND');
    assert.match(body.detail.msg, /not served to players: its watermark has applyToSource; play its marked copy, rendition source-marked/);

    // The last listed segment: past the clip's dark opening, so the picture around the mark is not flat.
    const seg = (await (await fetch(`${base}/source-marked.m3u8`)).text()).split('\n').filter((l) => l.endsWith('.ts')).at(-1)!;
    const seq = Number(/(\d+)\.ts$/.exec(seg)![1]);
    assert.equal((await fetch(`${base}/source/${seq}.ts`)).status, 404, 'the raw source segment is not served either');

    // The unmarked source segment, read where the gateway stored it (fs object store: <manifestID>/<session>/source/<seq>.ts).
    const objects = join(gateway.deployment.env['MEDIAGATE_STORAGE_DIR']!, 'wmsrc');
    const [session] = readdirSync(objects);
    const source = await grayFrameOfFile(join(objects, session!, 'source', `${seq}.ts`), 10, full);
    const marked = await grayFrame(new URL(seg, `${base}/source-marked.m3u8`).href, 10, full);
    // Its bitrate is not above the source's: the bytes of every listed segment, against the source's same seqs.
    const listed = (await (await fetch(`${base}/source-marked.m3u8`)).text()).split('\n').filter((l) => l.endsWith('.ts'));
    let copyBytes = 0; let sourceBytes = 0;
    for (const uri of listed) {
      copyBytes += (await (await fetch(new URL(uri, `${base}/source-marked.m3u8`).href)).arrayBuffer()).byteLength;
      sourceBytes += statSync(join(objects, session!, 'source', `${Number(/(\d+)\.ts$/.exec(uri)![1])}.ts`)).size;
    }
    t.diagnostic(`${listed.length} segments: source ${sourceBytes} bytes, marked copy ${copyBytes} bytes (${(copyBytes / sourceBytes).toFixed(3)})`);
    assert.ok(copyBytes < sourceBytes, `the marked copy (${copyBytes} bytes) is smaller than the source (${sourceBytes} bytes)`);
    const spec: WatermarkSpec = {
      kind: 'image', imageKey: 'k', imageFormat: 'png', imageWidthPx: 200, imageHeightPx: 100, widthFraction: 0.25, position: 'top-left', margin: { fraction: 0.05 }, opacity: 1,
    };
    const rect = watermarkPlacement(spec, full, 640);
    assert.deepEqual(rect, { x: 32, y: 32, width: 160, height: 80, marginPx: 32 });
    const { insideMean, outsideMean, white } = compareRegion(marked, source, full, rect);
    t.diagnostic(`source-size copy, seq ${seq}: mark gray ${white.toFixed(1)}, mean |diff| inside ${insideMean.toFixed(2)}, outside ${outsideMean.toFixed(2)}, source mean gray ${(source.reduce((a, b) => a + b, 0) / source.length).toFixed(1)}`);
    assert.ok(white > 240, `the mark is white in the copy: mean gray ${white.toFixed(1)}`);
    // A bright frame (the clip's sky, gray ~210): an opaque white mark differs by less than over
    // the dark opening, so the threshold here is > 20 inside and 10 times the outside's noise.
    assert.ok(insideMean > 20 && insideMean > 10 * outsideMean, `inside the mark ${insideMean.toFixed(2)} > 20 and > 10 × outside ${outsideMean.toFixed(2)}`);
    assert.ok(outsideMean < 8, `outside the mark ${outsideMean.toFixed(2)} < 8`);
  } finally {
    await gateway?.stop();
  }
});
