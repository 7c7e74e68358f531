/**
 * Each ffmpeg/ffprobe run on client bytes is guarded by its own arguments (forced demuxer,
 * `file` protocol only, MOV external references off), not only by the ingest's inspection
 * in front of it: the ingest probe, the MP4 rewrap, the transcoder's ladder and the audio
 * probe are handed an HLS playlist and an ffconcat script naming a local file directly, with
 * real ffmpeg, and the file (a FIFO tripwire) is never opened. Plus the inspection itself on
 * real ffmpeg output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../../../src/log/logger.ts';
import { FfmpegRunner } from '../../../src/media/ffmpeg-runner.ts';
import { buildLadderInvocation } from '../../../src/transcode/ladder-args.ts';
import { fitRendition, presetsByName } from '../../../src/domain/profile.ts';
import { probeSegment } from '../../../src/media/probe.ts';
import { Remuxer } from '../../../src/media/remux.ts';
import { probeAudioDurationMs } from '../../../src/media/audio-probe.ts';
import { inspectSegmentFile } from '../../../src/media/media-input.ts';
import { craftExternalReferenceMp4 } from '../../helpers/mp4-dref.ts';
import { tripwire, type Tripwire } from '../../helpers/tripwire.ts';

const run = promisify(execFile);
let dir: string;
let realTs: string;
let realMp4: string;
let runner: FfmpegRunner;
const wires: Tripwire[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mg-media-input-'));
  realTs = join(dir, 'real.ts');
  realMp4 = join(dir, 'real.mp4');
  const encode = ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x96:rate=30', '-t', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p'];
  await run('ffmpeg', [...encode, '-f', 'mpegts', realTs]);
  await run('ffmpeg', [...encode, '-f', 'mp4', realMp4]);
  runner = new FfmpegRunner({ logger: silentLogger() });
});

after(async () => {
  for (const w of wires) w.close();
  await runner?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The two indirect inputs, each naming a fresh tripwire in `dir` (concat: by the relative name its safe mode accepts). */
async function indirectInputs(tag: string): Promise<{ kind: string; body: Buffer; wire: Tripwire }[]> {
  const hls = await tripwire(join(dir, `${tag}-wire-hls.ts`), realTs);
  const concat = await tripwire(join(dir, `${tag}-wire-concat.ts`), realTs);
  wires.push(hls, concat);
  return [
    { kind: 'HLS playlist', body: Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${hls.path}\n#EXT-X-ENDLIST\n`), wire: hls },
    { kind: 'ffconcat script', body: Buffer.from(`ffconcat version 1.0\nfile '${tag}-wire-concat.ts'\n`), wire: concat },
  ];
}

test('the ingest probe reads a playlist or concat script as MPEG-TS only and opens nothing it names', { timeout: 30_000 }, async () => {
  for (const input of await indirectInputs('probe')) {
    const path = join(dir, `probe-${input.wire.path.endsWith('hls.ts') ? 'hls' : 'concat'}.ts`);
    writeFileSync(path, input.body);
    await assert.rejects(probeSegment(path), { code: 'UNDECODABLE_MEDIA' }, input.kind);
    assert.equal(await input.wire.wasOpened(), false, `${input.kind}: ${input.wire.path} was opened`);
  }
});

test('the MP4 rewrap reads a playlist or concat script as MP4 only and opens nothing it names', { timeout: 30_000 }, async () => {
  const remuxer = new Remuxer(runner);
  for (const input of await indirectInputs('remux')) {
    const path = join(dir, `remux-${input.wire.path.endsWith('hls.ts') ? 'hls' : 'concat'}.mp4`);
    writeFileSync(path, input.body);
    await assert.rejects(remuxer.toMpegTs(path, join(dir, 'remux-out.ts')), { code: 'UNDECODABLE_MEDIA' }, input.kind);
    assert.equal(await input.wire.wasOpened(), false, `${input.kind}: ${input.wire.path} was opened`);
  }
});

test('the MP4 rewrap does not follow an external data reference', { timeout: 30_000 }, async () => {
  const crafted = join(dir, 'dref.mp4');
  writeFileSync(crafted, craftExternalReferenceMp4(readFileSync(realMp4), realMp4, dir));
  const out = join(dir, 'dref-out.ts');
  // Whatever ffmpeg makes of the blanked file, none of the referenced file's media may come out.
  await new Remuxer(runner).toMpegTs(crafted, out).catch(() => undefined);
  const control = join(dir, 'dref-control.ts');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-enable_drefs', '1', '-i', crafted, '-c', 'copy', '-f', 'mpegts', control]);
  const mdat = readFileSync(realMp4);
  const at = mdat.indexOf('mdat') + 4;
  const payload = mdat.subarray(at + 64, at + 128); // 64 bytes of the first video sample
  assert.ok(readFileSync(control).includes(payload), 'control: with enable_drefs 1 the referenced media is copied');
  let written = Buffer.alloc(0);
  try { written = readFileSync(out); } catch { /* nothing written */ }
  assert.ok(!written.includes(payload), 'the rewrap copied none of the referenced file');
});

test('the transcoder ladder reads its source as MPEG-TS only and opens nothing a playlist names', { timeout: 60_000 }, async () => {
  const [profile] = presetsByName(['P144p30fps16x9']);
  const rendition = fitRendition(profile!, { width: 640, height: 360, fpsNum: 30, fpsDen: 1 })!;
  for (const input of await indirectInputs('ladder')) {
    const path = join(dir, `ladder-${input.wire.path.endsWith('hls.ts') ? 'hls' : 'concat'}.ts`);
    writeFileSync(path, input.body);
    const invocation = buildLadderInvocation({ inputPath: path, outputs: [{ rendition, path: join(dir, 'ladder-out.ts') }], sourceAudioCodec: undefined });
    await assert.rejects(runner.run(invocation, { timeoutMs: 30_000 }), input.kind);
    assert.equal(await input.wire.wasOpened(), false, `${input.kind}: ${input.wire.path} was opened`);
  }
});

test('the audio probe reads an upload with the demuxer its first bytes name, so an ID3 tag cannot front a playlist', { timeout: 30_000 }, async () => {
  const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0]);
  for (const input of await indirectInputs('audio')) {
    const upload = join(dir, `upload-${input.kind.split(' ')[0]}`);
    writeFileSync(upload, Buffer.concat([id3, input.body]));
    await assert.rejects(probeAudioDurationMs(upload), { code: 'UNDECODABLE_MEDIA' }, input.kind);
    assert.equal(await input.wire.wasOpened(), false, `${input.kind}: ${input.wire.path} was opened`);
  }
  // Real audio still measures: WAV and ADTS AAC (both with their own demuxer).
  for (const [format, codec] of [['wav', 'pcm_s16le'], ['adts', 'aac']] as const) {
    const path = join(dir, `tone.${format}`);
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1.5', '-c:a', codec, '-f', format, path]);
    const ms = await probeAudioDurationMs(path);
    assert.ok(Math.abs(ms - 1500) < 100, `${format}: ${ms} ms`);
  }
});

test('real segments pass the inspection; indirect, mislabelled and externally referenced files are refused by name', { timeout: 30_000 }, async () => {
  await inspectSegmentFile(realTs, 'mpegts');
  await inspectSegmentFile(realMp4, 'mov');
  const write = (name: string, data: Buffer | string): string => { const p = join(dir, name); writeFileSync(p, data); return p; };
  const cases: [string, 'mpegts' | 'mov', RegExp][] = [
    [write('i-hls.ts', '\ufeff  #EXTM3U\n#EXTINF:1,\nx.ts\n'), 'mpegts', /HLS playlist/],
    [write('i-concat.mp4', 'ffconcat version 1.0\nfile x.ts\n'), 'mov', /concat script/],
    [write('i-mpd.mp4', '<?xml version="1.0"?><MPD/>'), 'mov', /XML manifest/],
    [write('i-mp4-as-ts.ts', readFileSync(realMp4)), 'mpegts', /no sync byte 0x47/],
    [write('i-ts-as-mp4.mp4', readFileSync(realTs)), 'mov', /does not start with an MP4 box/],
    [write('i-dref.mp4', craftExternalReferenceMp4(readFileSync(realMp4), realMp4, dir)), 'mov', /external data reference \(dref 'alis'\)/],
  ];
  for (const [path, demuxer, message] of cases) {
    await assert.rejects(inspectSegmentFile(path, demuxer), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'UNDECODABLE_MEDIA');
      assert.match(err.message, message);
      return true;
    }, path);
  }
});
