/**
 * Fault: scratch files a crashed process left in the work dir are removed when the next
 * process starts, each role removing only the kinds it creates, and only entries whose
 * owner is gone (entries of a live process sharing the work dir stay). Real transcoder and
 * gateway processes, a real redis-server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { spawnMediagate, testDeployment, waitForHttp, type MediagateProcess, type TestDeployment } from '../../helpers/gateway-process.ts';

let redis: TestRedis;
let deployment: TestDeployment;
const processes: MediagateProcess[] = [];

before(async () => {
  redis = await startRedis();
  deployment = await testDeployment(redis.url, { MEDIAGATE_TRANSCODE_METRICS_PORT: '0' });
});

after(async () => {
  for (const p of processes) await p.stop();
  await redis?.stop();
  deployment?.cleanup();
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

function plant(workDir: string, files: readonly string[]): void {
  for (const f of files) {
    mkdirSync(dirname(join(workDir, f)), { recursive: true });
    writeFileSync(join(workDir, f), 'leftover');
  }
}

function present(workDir: string, files: readonly string[]): string[] {
  return files.filter((f) => existsSync(join(workDir, f)));
}

async function waitForLine(p: MediagateProcess, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void p.exited.then(() => { exited = true; });
  while (!p.lines.some((l) => l.includes(text))) {
    if (exited || Date.now() > deadline) throw new Error(`"${text}" not logged; log tail:\n${p.lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('leftovers of dead processes are swept at startup by the role that creates them; a live process\'s files and foreign files stay', { timeout: 120_000 }, async () => {
  const work = join(deployment.dataDir, 'work');
  const dead = await deadPid();
  const live = process.pid; // this test process: alive, and not the process being started
  const transcodeLeftovers = [`transcode/job-${dead}-a1B2c3/P240p30fps16x9.ts`, 'transcode/job-Xy12ab/source.ts'];
  const gatewayLeftovers = [
    `segmenter/${dead}-mx9qd4732dd3445d/3.ts`, 'segmenter/mx9qabc123ef0011/0.ts',
    `push/push-${dead}-0123456789abcdef.ts`, `push/push-${dead}-0123456789abcdef.remux.ts`, 'push/push-fedcba9876543210.mp4',
    `uploads/upload-${dead}-0123456789abcdef/5f0e1d2c3b4a69788796a5b4c3d2e1f0`, `uploads/upload-${dead}-5f0e1d2c3b4a69788796a5b4c3d2e1f0`,
  ];
  const kept = [
    `transcode/job-${live}-Qw34er/source.ts`, `segmenter/${live}-mx9qlive0000aaaa/1.ts`, `push/push-${live}-00000000000000aa.ts`,
    `uploads/upload-${live}-00000000000000bb/0123`, `uploads/upload-${live}-000000000000000000000000000000cc`, 'notes.txt', 'transcode/not-a-job.txt', 'push/readme.txt',
  ];
  plant(work, [...transcodeLeftovers, ...gatewayLeftovers, ...kept]);

  // A standalone transcoder sweeps transcode job dirs only.
  const transcoder = spawnMediagate('transcoder', deployment.env);
  processes.push(transcoder);
  await waitForLine(transcoder, 'transcoder ready');
  assert.deepEqual(present(work, transcodeLeftovers), [], 'the transcoder removed the dead transcoders\' job dirs');
  assert.deepEqual(present(work, gatewayLeftovers), gatewayLeftovers, 'the transcoder left the gateway\'s kinds alone');
  assert.deepEqual(present(work, kept), kept);
  await transcoder.stop();

  // A gateway without the embedded transcoder sweeps segmenter dirs and push bodies, not job dirs.
  plant(work, transcodeLeftovers);
  const gateway = spawnMediagate('gateway', { ...deployment.env, MEDIAGATE_TRANSCODE_EMBEDDED: 'false' });
  processes.push(gateway);
  await waitForHttp(`${deployment.httpUrl}/healthz`, gateway);
  assert.deepEqual(present(work, gatewayLeftovers), [], 'the gateway removed the dead gateways\' segmenter dirs, push bodies and AI uploads');
  assert.deepEqual(present(work, transcodeLeftovers), transcodeLeftovers, 'a gateway without a transcoder leaves job dirs alone');
  assert.deepEqual(present(work, kept), kept);
  assert.equal(readdirSync(join(work, 'segmenter')).length, 1, 'only the live process\'s segmenter dir is left');
  assert.ok(gateway.lines.some((l) => l.includes('removed scratch files left by a process that is gone')), 'the sweep is logged');
  await gateway.stop();

  // With the embedded transcoder, the gateway sweeps job dirs too.
  const embedded = spawnMediagate('gateway', deployment.env);
  processes.push(embedded);
  await waitForHttp(`${deployment.httpUrl}/healthz`, embedded);
  assert.deepEqual(present(work, transcodeLeftovers), []);
  assert.deepEqual(present(work, kept), kept);
  await embedded.stop();
});
