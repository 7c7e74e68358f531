/**
 * One restream output (outputs/output-runner.ts) with a real ffmpeg: a target that refuses
 * connections goes `retrying` with ffmpeg's reason and reconnects after exponential waits
 * (jitter pinned), a real RTMP receiver makes it `live` with bytes counted, and `stop()`
 * ends its ffmpeg within a second with `output.ended`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChildSupervisor } from '../../../src/media/child-supervisor.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { OutputRunner, type OutputRunnerEvent } from '../../../src/outputs/output-runner.ts';
import type { OutputStatus } from '../../../src/outputs/output-types.ts';
import { freePort } from '../../helpers/ports.ts';
import { refusingPort } from '../../helpers/receivers.ts';
import { stopChild } from '../../helpers/redis-server.ts';

const run = promisify(execFile);

/** Four 2 s MPEG-TS segments of test video + audio (H.264/AAC, a keyframe at each start), on one timeline. */
async function segments(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const i of [0, 1, 2, 3]) {
    const file = join(dir, `${i}.ts`);
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440',
      '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '50', '-c:a', 'aac', '-output_ts_offset', String(2 * i), '-f', 'mpegts', file]);
    out.push(readFileSync(file));
  }
  return out;
}

function runner(url: string, supervisor: ChildSupervisor, bytes: Buffer[], seen: { states: OutputStatus['state'][]; events: OutputRunnerEvent[] }): OutputRunner {
  return new OutputRunner({
    manifestID: 'cam', spec: { id: 'out1', url, rendition: 'source', createdAtMs: 0, origin: 'api' }, supervisor,
    readSegment: async (key) => bytes[Number(key)], backoffInitialMs: 100, backoffMaxMs: 400, random: () => 0, logger: silentLogger(),
    onStatus: (s) => { if (seen.states.at(-1) !== s.state) seen.states.push(s.state); },
    onEvent: (e) => seen.events.push(e),
  });
}

test('a refused target is retrying with ffmpeg\'s reason, reconnecting after 100, 200, 400, 400 ms; stop() ends it', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-runner-'));
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const seen = { states: [] as OutputStatus['state'][], events: [] as OutputRunnerEvent[] };
  try {
    const bytes = await segments(dir);
    const port = await refusingPort();
    const r = runner(`rtmp://127.0.0.1:${port}/live/sekrit-key`, supervisor, bytes, seen);
    r.feed({ seq: 0, key: '0' });
    r.start();
    const deadline = Date.now() + 20_000;
    while (seen.events.filter((e) => e.type === 'output.failed').length < 4 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    const failed = seen.events.filter((e): e is Extract<OutputRunnerEvent, { type: 'output.failed' }> => e.type === 'output.failed');
    assert.deepEqual(failed.slice(0, 4).map((e) => e.retryInMs), [100, 200, 400, 400], 'exponential, capped at backoffMaxMs (jitter pinned to 0)');
    assert.match(failed[0]!.reason, /Connection refused/);
    assert.ok(!failed.some((e) => e.reason.includes('sekrit-key')), 'the key is redacted from the reason');
    assert.equal(r.status.state, 'retrying');
    assert.equal(r.status.bytesSent, 0);
    assert.deepEqual(seen.states, ['connecting', 'retrying'], 'reconnects stay retrying');
    await r.stop('removed');
    assert.equal(r.status.state, 'stopped');
    assert.deepEqual(seen.events.at(-1), { type: 'output.ended', reason: 'removed' });
    await new Promise((res) => setTimeout(res, 600));
    assert.equal(supervisor.size, 0, 'no ffmpeg restarted after stop');
  } finally {
    await supervisor.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real RTMP receiver makes the output live with the bytes counted; stop() ends its ffmpeg within a second', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-runner-'));
  const supervisor = new ChildSupervisor({ logger: silentLogger() });
  const seen = { states: [] as OutputStatus['state'][], events: [] as OutputRunnerEvent[] };
  const port = await freePort();
  const receiver = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-listen', '1', '-i', `rtmp://127.0.0.1:${port}/live/k`, '-c', 'copy', '-f', 'null', '-'], { stdio: 'ignore' });
  try {
    const bytes = await segments(dir);
    await new Promise((res) => setTimeout(res, 300)); // the listener binds
    const r = runner(`rtmp://127.0.0.1:${port}/live/k`, supervisor, bytes, seen);
    r.start();
    // Segments as a live stream lists them (a repeat is ignored).
    for (const seq of [0, 1, 1, 2, 3]) {
      r.feed({ seq, key: String(seq) });
      await new Promise((res) => setTimeout(res, 300));
    }
    const deadline = Date.now() + 15_000;
    while (r.status.state !== 'live' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.equal(r.status.state, 'live', JSON.stringify(seen));
    assert.ok(r.status.bytesSent > 0);
    assert.deepEqual(seen.events, [{ type: 'output.started' }]);
    const pid = r.pid!;
    const t0 = Date.now();
    await r.stop('stream ended');
    const stoppedMs = Date.now() - t0;
    assert.ok(stoppedMs < 1000, `ffmpeg exited ${stoppedMs} ms after stop()`);
    assert.throws(() => process.kill(pid, 0), 'the process is gone');
    assert.deepEqual(seen.states, ['connecting', 'live', 'stopped']);
  } finally {
    await supervisor.close();
    await stopChild(receiver, 2000).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
