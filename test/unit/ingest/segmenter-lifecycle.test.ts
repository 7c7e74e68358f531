/** Segmenter process handling, with stand-in "ffmpeg" executables (no media needed). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Segmenter, type SegmenterEndInfo } from '../../../src/ingest/segmenter.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mediagate-seg-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeFfmpeg(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!${process.execPath}\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const base = { streamKey: 'sk_unit', rtmpPort: 1935, logger: silentLogger() };

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a malformed stream key is refused without echoing it', () => {
  assert.throws(() => new Segmenter({ ...base, streamKey: '../secret key', workDir: dir }), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'INVALID_NAME');
    assert.ok(!err.message.includes('secret'));
    return true;
  });
  assert.throws(() => new Segmenter({ inputUrl: 'rtmp://127.0.0.1:1935/other/sk', workDir: dir, logger: silentLogger() }), /rtmp:\/\/<host>:<port>\/live\/<streamKey>/);
});

test('a relative work dir is refused', () => {
  assert.throws(() => new Segmenter({ ...base, workDir: 'relative/dir' }), /absolute/);
});

test('segments are reported in order from the csv list, long ones flagged once, then end', async () => {
  const ffmpeg = fakeFfmpeg('lister.js', `
const fs = require('fs'); const dir = process.argv[process.argv.length - 1].replace('/%d.ts', '');
const lines = [['0.ts', 0, 1.999], ['1.ts', 2, 12.4], ['2.ts', 12.4, 14.4], ['3.ts', 14.4, 20]];
for (const [f] of lines) fs.writeFileSync(dir + '/' + f, Buffer.alloc(188 * 10));
process.stdout.write(lines.map((l) => l.join(',')).join('\\n') + '\\n', () => process.exit(0));`);
  const seg = new Segmenter({ ...base, workDir: path.join(dir, 'list'), ffmpegPath: ffmpeg });
  const events: string[] = [];
  seg.on('segment', (s) => events.push(`segment ${s.seq} ${s.startMs} ${s.durationMs} ${s.bytes}`));
  seg.on('longSegment', (l) => events.push(`long ${l.seq} ${l.durationMs} ${l.segmentTargetMs}`));
  seg.on('end', (e) => events.push(`end ${e.reason} ${e.exitCode} ${e.segments} ${e.longSegments}`));
  seg.start();
  const info = await seg.done;
  assert.equal(info.reason, 'inputEnded');
  assert.deepEqual(events, [
    'segment 0 0 1999 1880',
    'segment 1 2000 10400 1880',
    'long 1 10400 2000',
    'segment 2 12400 2000 1880',
    'segment 3 14400 5600 1880',
    'end inputEnded 0 4 2',
  ]);
});

test('list lines split across writes, with CRLF split between chunks, a lone CR and no final line end, are each read once', async () => {
  const ffmpeg = fakeFfmpeg('split-lister.js', `
const fs = require('fs'); const dir = process.argv[process.argv.length - 1].replace('/%d.ts', '');
for (const f of ['0.ts', '1.ts', '2.ts']) fs.writeFileSync(dir + '/' + f, Buffer.alloc(188));
const writes = ['0.ts,0,2\\r', '\\n1.ts,2,', '4\\r2.ts,4,6'];
const next = () => { const w = writes.shift(); if (w === undefined) { process.exit(0); return; } process.stdout.write(w, () => setTimeout(next, 30)); };
next();`);
  const seg = new Segmenter({ ...base, workDir: path.join(dir, 'split'), ffmpegPath: ffmpeg });
  const events: string[] = [];
  seg.on('segment', (s) => events.push(`segment ${s.seq} ${s.startMs} ${s.durationMs}`));
  seg.on('end', (e) => events.push(`end ${e.reason} ${e.segments}`));
  seg.start();
  await seg.done;
  assert.deepEqual(events, ['segment 0 0 2000', 'segment 1 2000 2000', 'segment 2 4000 2000', 'end inputEnded 3']);
});

test('a missing ffmpeg ends the segmenter with reason failed instead of throwing', async () => {
  const seg = new Segmenter({ ...base, workDir: path.join(dir, 'missing'), ffmpegPath: path.join(dir, 'no-such-ffmpeg') });
  seg.start();
  const info = await seg.done;
  assert.equal(info.reason, 'failed');
  assert.match(info.detail ?? '', /ENOENT/);
});

test('stop() sends SIGINT first and is idempotent', async () => {
  // The stand-in says when its SIGINT handler is installed (Node's start-up can take longer
  // than any fixed wait on a loaded machine, and a SIGINT before that kills it by signal).
  const ready = path.join(dir, 'graceful.ready');
  const ffmpeg = fakeFfmpeg('graceful.js', `process.on('SIGINT', () => process.exit(255)); require('node:fs').writeFileSync(${JSON.stringify(ready)}, ''); setInterval(() => {}, 1000); process.stdout.write('');`);
  const seg = new Segmenter({ ...base, workDir: path.join(dir, 'graceful'), ffmpegPath: ffmpeg });
  const ends: SegmenterEndInfo[] = [];
  seg.on('end', (e) => ends.push(e));
  seg.start();
  while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
  const pid = seg.pid;
  assert.ok(alive(pid));
  await Promise.all([seg.stop(), seg.stop(), seg.close()]);
  assert.equal(ends.length, 1);
  assert.equal(ends[0]!.reason, 'stopped');
  assert.equal(ends[0]!.exitCode, 255);
  assert.equal(alive(pid), false);
});

test('stop() kills an ffmpeg that ignores SIGINT after stopTimeoutMs, leaving no orphan', async () => {
  const ffmpeg = fakeFfmpeg('stubborn.js', `process.on('SIGINT', () => {}); setInterval(() => {}, 1000);`);
  const seg = new Segmenter({ ...base, workDir: path.join(dir, 'stubborn'), ffmpegPath: ffmpeg, stopTimeoutMs: 300 });
  seg.start();
  await new Promise((r) => setTimeout(r, 300));
  const pid = seg.pid;
  const t0 = Date.now();
  await seg.stop();
  const info = await seg.done;
  assert.equal(info.reason, 'killed');
  assert.equal(info.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(alive(pid), false);
});

test('stop() before start() ends at once and start() is then refused', async () => {
  const seg = new Segmenter({ ...base, workDir: path.join(dir, 'never') });
  await seg.stop();
  assert.equal((await seg.done).reason, 'stopped');
  assert.throws(() => seg.start(), GatewayError);
});
