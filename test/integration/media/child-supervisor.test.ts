/**
 * The child supervisor with real child processes: no child outlives `close()` (one of them
 * ignores SIGTERM, one is a real ffmpeg, one wants SIGINT), every exit event carries pid,
 * code and signal, and each stderr line reaches the logger with the child's pid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ChildSupervisor, type ChildExit, type SupervisedChild } from '../../../src/media/child-supervisor.ts';

function captureLogger(): { logger: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), records };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A node child that prints `ready` once its signal handlers are installed, then idles. */
function nodeScript(body: string): string[] {
  return ['-e', `${body}; setInterval(() => {}, 1000); process.stdout.write('ready\\n');`];
}

async function ready(child: SupervisedChild): Promise<void> {
  let seen = '';
  child.process.stdout!.setEncoding('utf8');
  while (!seen.includes('ready')) {
    const [chunk] = await once(child.process.stdout!, 'data') as [string];
    seen += chunk;
  }
}

test('close() leaves no child alive: SIGTERM, the per-child graceful signal, SIGKILL for one that ignores both', async () => {
  const { logger } = captureLogger();
  const supervisor = new ChildSupervisor({ logger, killGraceMs: 1500 });
  const exits: ChildExit[] = [];
  supervisor.on('exit', (e) => exits.push(e));

  const plain = supervisor.spawn(process.execPath, nodeScript(''), { name: 'plain' });
  const stubborn = supervisor.spawn(process.execPath, nodeScript("process.on('SIGTERM', () => {})"), { name: 'stubborn' });
  // Exits 3 on SIGINT (as ffmpeg exits 255 after flushing): the graceful signal is per child.
  const flusher = supervisor.spawn(process.execPath, nodeScript("process.on('SIGINT', () => process.exit(3)); process.on('SIGTERM', () => {})"), {
    name: 'flusher', gracefulSignal: 'SIGINT',
  });
  const ffmpeg = supervisor.spawn('ffmpeg', ['-nostdin', '-hide_banner', '-re', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=5', '-f', 'null', '-'], {
    name: 'ffmpeg', stdio: ['ignore', 'ignore', 'pipe'],
  });
  await Promise.all([ready(plain), ready(stubborn), ready(flusher)]);
  const pids = [plain, stubborn, flusher, ffmpeg].map((c) => c.pid!);
  assert.ok(pids.every((pid) => typeof pid === 'number' && isAlive(pid)), 'all four children run');
  assert.equal(supervisor.size, 4);
  assert.deepEqual(new Set(supervisor.pids), new Set(pids));

  const closing = supervisor.close();
  assert.equal(supervisor.close(), closing, 'close() is idempotent: the same promise');
  await closing;
  await supervisor.close();

  assert.deepEqual(pids.filter(isAlive), [], 'no child alive after close()');
  assert.equal(supervisor.size, 0);
  assert.equal(exits.length, 4, 'one exit event per child');
  const byName = new Map(exits.map((e) => [e.name, e]));
  assert.deepEqual(byName.get('plain'), { name: 'plain', pid: plain.pid, code: null, signal: 'SIGTERM' });
  assert.deepEqual(byName.get('stubborn'), { name: 'stubborn', pid: stubborn.pid, code: null, signal: 'SIGKILL' });
  assert.deepEqual(byName.get('flusher'), { name: 'flusher', pid: flusher.pid, code: 3, signal: null });
  const ff = byName.get('ffmpeg')!;
  assert.equal(ff.pid, ffmpeg.pid);
  // ffmpeg handles SIGTERM itself and exits with its own code (255), or dies of the signal.
  assert.ok(ff.code === 255 || ff.signal === 'SIGTERM', `ffmpeg ended by SIGTERM: ${JSON.stringify(ff)}`);

  assert.throws(() => supervisor.spawn(process.execPath, ['-e', ''], { name: 'late' }), /closed/);
});

test('each stderr line goes to the logger at debug with the pid, redacted; the exit is logged with code and signal', async () => {
  const { logger, records } = captureLogger();
  const supervisor = new ChildSupervisor({ logger });
  const seen: string[] = [];
  // Lines split across writes, a CRLF and a lone CR (ffmpeg's progress lines), no final line end.
  const script = "process.stderr.write('first li'); setTimeout(() => { process.stderr.write('ne SECRET\\r\\nsecond\\rthird'); }, 50)";
  const child = supervisor.spawn(process.execPath, ['-e', script], {
    name: 'talker',
    redact: (line) => line.replaceAll('SECRET', '[redacted]'),
    onStderrLine: (line) => seen.push(line),
  });
  const exit = await child.exited;
  assert.deepEqual(exit, { name: 'talker', pid: child.pid, code: 0, signal: null });
  await supervisor.close();

  assert.deepEqual(seen, ['first line [redacted]', 'second', 'third']);
  const stderrRecords = records.filter((r) => r.msg === 'child stderr');
  assert.deepEqual(stderrRecords.map((r) => [r.level, r.pid, r.name, r.line]), [
    [20, child.pid, 'talker', 'first line [redacted]'],
    [20, child.pid, 'talker', 'second'],
    [20, child.pid, 'talker', 'third'],
  ]);
  assert.ok(!JSON.stringify(records).includes('SECRET'), 'the secret never reaches the log');
  const exited = records.find((r) => r.msg === 'child exited');
  assert.ok(exited, 'the exit is logged');
  assert.deepEqual([exited.pid, exited.code, exited.signal], [child.pid, 0, null]);
});

test('a program that cannot be started ends with spawnError and no pid', async () => {
  const { logger } = captureLogger();
  const supervisor = new ChildSupervisor({ logger });
  const events: ChildExit[] = [];
  supervisor.on('exit', (e) => events.push(e));
  const child = supervisor.spawn('/nonexistent/ffmpeg-not-here', [], { name: 'missing' });
  const exit = await child.exited;
  assert.equal(exit.pid, undefined);
  assert.match(exit.spawnError?.message ?? '', /ENOENT/);
  await supervisor.close();
  assert.equal(events.length, 1);
  assert.equal(supervisor.size, 0);
});
