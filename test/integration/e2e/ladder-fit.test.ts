/**
 * A ladder that fits its source (src/domain/ladder-fit.ts), end to end: a real gateway process
 * (embedded transcoder, live sessions, the default ladder P720p30fps16x9 + P360p30fps16x9 +
 * P240p30fps16x9), real RTMP publishes with ffmpeg, the master parsed with hls-parser and every
 * rendition's bitrate measured with ffprobe on its concatenated segments.
 *
 * - The clip (640x360, ~0.5 Mb/s) gets `source` + 426x240: 720p would upscale, 360p is its own
 *   size; 426x240 is below the source's bitrate, and so listed under it.
 * - A 1080p30 source (lavfi testsrc2, 4 s) keeps the full default ladder, each rendition below
 *   the source's bitrate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish, logLines } from '../../helpers/gateway-process.ts';
import { CLIP } from '../../helpers/media.ts';
import { fetchMaster, fetchMedia, waitForEndedPlaylists } from '../../helpers/hls.ts';

const run = promisify(execFile);

// No MEDIAGATE_LADDER: the default ladder.
const gateway = gatewayForSuite({ MEDIAGATE_TRANSCODE_LIVE_SESSIONS: 'true' });
let work: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'mg-ladder-fit-'));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Variant { name: string; width: number; height: number; bandwidth: number; measuredBps: number }

/** The ended master's variants in order, each with its bitrate measured by ffprobe over all its segments (concatenated). */
async function measuredVariants(manifestID: string, renditions: number): Promise<Variant[]> {
  await waitForEndedPlaylists(gateway.httpUrl, manifestID, renditions, 90_000);
  const master = (await fetchMaster(`${gateway.httpUrl}/stream/${manifestID}.m3u8`))!;
  const out: Variant[] = [];
  for (const v of master.variants) {
    const name = v.uri.split('/')[1]!.replace('.m3u8', '');
    const media = await fetchMedia(`${gateway.httpUrl}/stream/${v.uri}`);
    const parts = await Promise.all(media.segments.map(async (s) => Buffer.from(await (await fetch(`${gateway.httpUrl}/stream/${manifestID}/${s.uri}`)).arrayBuffer())));
    const file = join(work, `${manifestID}-${name}.ts`);
    writeFileSync(file, Buffer.concat(parts));
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration,size', '-of', 'json', file]);
    const format = (JSON.parse(stdout) as { format: { duration: string; size: string } }).format;
    out.push({
      name, width: v.resolution?.width ?? 0, height: v.resolution?.height ?? 0, bandwidth: v.bandwidth,
      measuredBps: Math.round((Number(format.size) * 8) / Number(format.duration)),
    });
  }
  return out;
}

function describe(variants: readonly Variant[]): string {
  return variants.map((v) => `${v.name} ${v.width}x${v.height} BANDWIDTH=${v.bandwidth} measured=${v.measuredBps}`).join('; ');
}

test('the clip (640x360, ~0.5 Mb/s) gets source + 426x240, listed by bandwidth, the rendition below the source\'s measured bitrate', { timeout: 90_000 }, async (t) => {
  const publisher = publish(CLIP, gateway.rtmpUrl('clip'), ['-t', '16']);
  // The ffmpeg the embedded transcoder runs for the live ladder, as `ps` shows it (its encoder options).
  const ladderArgs = new Set<string>();
  const poll = setInterval(() => {
    try {
      for (const line of execFileSync('ps', ['-o', 'args=', '--ppid', String(gateway.proc.child.pid)]).toString().split('\n')) if (line.includes('libx264')) ladderArgs.add(line);
    } catch { /* no child right now */ }
  }, 300);
  assert.equal(await publisher.exited, 0, publisher.stderr());
  const variants = await measuredVariants('clip', 2);
  clearInterval(poll);
  t.diagnostic(describe(variants));
  assert.deepEqual(variants.map((v) => [v.name, `${v.width}x${v.height}`]), [['source', '640x360'], ['P240p30fps16x9', '426x240']]);
  const [source, rendition] = variants as [Variant, Variant];
  assert.ok(source.measuredBps > 350_000 && source.measuredBps < 700_000, `the clip is ~0.5 Mb/s: ${source.measuredBps}`);
  assert.ok(rendition.measuredBps < source.measuredBps, `426x240 (${rendition.measuredBps} b/s) below the source (${source.measuredBps} b/s)`);
  assert.ok(rendition.bandwidth < source.bandwidth, 'and so is its BANDWIDTH');

  const fitted = logLines(gateway.proc, 'ladder fitted to source').find((l) => l['manifestID'] === 'clip');
  assert.ok(fitted, 'the fit is logged');
  assert.deepEqual(fitted['leftOut'], ['P720p30fps16x9 (upscale)', 'P360p30fps16x9 (not-smaller)']);
  // The cap: the source's measured bitrate × 426·240 / 640·360, from the first segment.
  const sourceBitrateBps = fitted['sourceBitrateBps'] as number;
  const capBps = Math.floor(sourceBitrateBps * (426 * 240) / (640 * 360));
  t.diagnostic(`source bitrate of the first segment ${sourceBitrateBps} b/s; 426x240 capped at ${capBps} b/s`);
  assert.deepEqual(fitted['capped'], [`P240p30fps16x9 600000→${capBps}bps`]);
  // The live session's transcoder encodes it at that cap, not at the preset's 600 kb/s.
  assert.ok([...ladderArgs].some((a) => a.includes(`scale=426:240`) && a.includes(`-b:v ${capBps} -maxrate ${capBps}`)), [...ladderArgs].join('\n') || 'no ladder ffmpeg seen');
  assert.ok([...ladderArgs].every((a) => !a.includes('scale=640:360')), 'no 640x360 rendition is encoded');
});

test('a 1080p30 source keeps the full default ladder, every rendition below the source\'s measured bitrate', { timeout: 90_000 }, async (t) => {
  const input = join(work, 'testsrc2-1080p30.mp4');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '4', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', input]);
  const publisher = publish(input, gateway.rtmpUrl('full'));
  assert.equal(await publisher.exited, 0, publisher.stderr());
  const variants = await measuredVariants('full', 4);
  t.diagnostic(describe(variants));
  const fitted = logLines(gateway.proc, 'ladder fitted to source').find((l) => l['manifestID'] === 'full');
  t.diagnostic(`source bitrate of the first segment ${String(fitted?.['sourceBitrateBps'])} b/s; capped: ${JSON.stringify(fitted?.['capped'])}`);
  assert.deepEqual(variants.map((v) => [v.name, `${v.width}x${v.height}`]),
    [['source', '1920x1080'], ['P720p30fps16x9', '1280x720'], ['P360p30fps16x9', '640x360'], ['P240p30fps16x9', '426x240']]);
  const source = variants[0]!;
  for (const v of variants.slice(1)) {
    assert.ok(v.measuredBps < source.measuredBps, `${v.name} (${v.measuredBps} b/s) below the source (${source.measuredBps} b/s)`);
  }
  for (let i = 1; i < variants.length; i++) assert.ok(variants[i]!.bandwidth <= variants[i - 1]!.bandwidth, 'listed by bandwidth, highest first');
});
