import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/log/logger.ts';
import { FfmpegRunError, FfmpegRunner } from '../../../src/media/ffmpeg-runner.ts';
import type { FfmpegInvocation } from '../../../src/media/invocation.ts';

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'mediagate-runner-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

/** ffmpeg processes that are children of this test process. */
function childFfmpegPids(): number[] {
  const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,comm='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => /\bffmpeg\b/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
}

/** A tiny synthetic encode; `realtime` paces the input at wall-clock speed so the process runs for `seconds`. */
function synthetic(out: string, seconds: number, realtime: boolean): FfmpegInvocation {
  return {
    inputOptions: ['-hide_banner', '-nostdin', '-loglevel', 'error', ...(realtime ? ['-re'] : []), '-f', 'lavfi'],
    inputPath: 'testsrc=size=64x64:rate=10',
    filterComplex: '',
    outputs: [{ options: ['-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-f', 'mpegts'], path: out }],
  };
}

test('ffmpeg is installed (integration tests fail, not skip, without it)', () => {
  assert.match(execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }), /^ffmpeg version/);
});

test('a successful run resolves after ffmpeg has written its output', async () => {
  const runner = new FfmpegRunner({ logger: silentLogger() });
  const out = join(dir, 'ok.ts');
  const result = await runner.run(synthetic(out, 0.5, false), { timeoutMs: 20_000 });
  assert.equal(result.stderrTail, '');
  assert.ok(statSync(out).size > 0);
  assert.equal(runner.liveCount, 0);
  await runner.close();
});

test('a non-zero exit rejects with the exit code and the last stderr lines', async () => {
  const runner = new FfmpegRunner({ logger: silentLogger() });
  const inv: FfmpegInvocation = { inputOptions: ['-hide_banner', '-nostdin', '-loglevel', 'error'], inputPath: join(dir, 'missing.ts'), filterComplex: '', outputs: [{ options: ['-f', 'mpegts'], path: join(dir, 'never.ts') }] };
  await assert.rejects(runner.run(inv, { timeoutMs: 20_000 }), (e: FfmpegRunError) => {
    assert.equal(e.reason, 'exit');
    assert.equal(e.exitCode, 1);
    assert.match(e.stderrTail, /No such file or directory/);
    assert.ok(e.stderrTail.split('\n').length <= 20);
    return true;
  });
  await runner.close();
});

test('a run over its time limit is stopped and rejects as a timeout, leaving no ffmpeg process', async () => {
  const runner = new FfmpegRunner({ logger: silentLogger(), killGraceMs: 2000 });
  const started = Date.now();
  await assert.rejects(runner.run(synthetic(join(dir, 'slow.ts'), 60, true), { timeoutMs: 700 }), (e: FfmpegRunError) => e.reason === 'timeout');
  assert.ok(Date.now() - started < 5000, 'stopped by SIGTERM well before the 60 s run would end');
  assert.deepEqual(childFfmpegPids(), []);
  await runner.close();
});

test('an ffmpeg that does not stop on SIGTERM is killed with SIGKILL after the grace period', async () => {
  // ffmpeg blocks in open() on a FIFO without a writer; one SIGTERM does not interrupt it.
  const fifo = join(dir, 'stuck.fifo');
  execFileSync('mkfifo', [fifo]);
  const runner = new FfmpegRunner({ logger: silentLogger(), killGraceMs: 400 });
  const inv: FfmpegInvocation = { inputOptions: ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'mpegts'], inputPath: fifo, filterComplex: '', outputs: [{ options: ['-c', 'copy', '-f', 'mpegts'], path: join(dir, 'stuck.ts') }] };
  const started = Date.now();
  await assert.rejects(runner.run(inv, { timeoutMs: 300 }), (e: FfmpegRunError) => e.reason === 'timeout');
  const elapsedMs = Date.now() - started;
  assert.ok(elapsedMs >= 650 && elapsedMs < 3000, `settled after SIGTERM + grace, took ${elapsedMs} ms`);
  assert.deepEqual(childFfmpegPids(), []);
  await runner.close();
});

test('aborting the signal stops the run', async () => {
  const runner = new FfmpegRunner({ logger: silentLogger() });
  const ac = new AbortController();
  const run = runner.run(synthetic(join(dir, 'aborted.ts'), 60, true), { timeoutMs: 60_000, signal: ac.signal });
  setTimeout(() => ac.abort(), 300);
  await assert.rejects(run, (e: FfmpegRunError) => e.reason === 'aborted');
  assert.deepEqual(childFfmpegPids(), []);
  await runner.close();
});

test('close stops every running ffmpeg, is idempotent, and refuses later runs', async () => {
  const runner = new FfmpegRunner({ logger: silentLogger() });
  const runs = [1, 2].map((i) => runner.run(synthetic(join(dir, `long${i}.ts`), 60, true), { timeoutMs: 60_000 }));
  const settled = Promise.allSettled(runs);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(runner.liveCount, 2);
  await Promise.all([runner.close(), runner.close()]);
  const results = await settled;
  assert.deepEqual(results.map((r) => r.status === 'rejected' && (r.reason as FfmpegRunError).reason), ['closed', 'closed']);
  assert.equal(runner.liveCount, 0);
  assert.deepEqual(childFfmpegPids(), []);
  await assert.rejects(runner.run(synthetic(join(dir, 'late.ts'), 1, false), { timeoutMs: 5000 }), (e: FfmpegRunError) => e.reason === 'closed');
  assert.equal(existsSync(join(dir, 'late.ts')), false);
});
