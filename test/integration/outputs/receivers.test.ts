/**
 * The real receivers the restream tests and bench/outputs.ts send to, checked on their own with
 * ffmpeg as the sender: nginx-rtmp records what it receives (`record all`) and relays it
 * (`push`), the SRT listener writes what a caller sends and exits when it leaves, a refusing
 * port refuses. nginx (Debian nginx-light + libnginx-mod-rtmp) missing fails here: `make test`
 * installs it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginxRtmp, type NginxRtmp } from '../../helpers/nginx-rtmp.ts';
import { descendants, probeStream, processGone, refusingPort, startSrtListener } from '../../helpers/receivers.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { waitUntil } from '../../helpers/gateway-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'mg-receivers-'));
const servers: NginxRtmp[] = [];
after(async () => {
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** ffmpeg sends the first `seconds` of `input` in real time to `url` (stream copy) and exits. */
function send(input: string, seconds: number, format: 'flv' | 'mpegts', url: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-i', input, '-t', String(seconds), '-c', 'copy', '-f', format, url], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

test('nginx-rtmp records what it receives and relays it with push: both recordings have the source\'s codecs and frame rate', { timeout: 60_000 }, async () => {
  const clip = await clipWith2sGop(6);
  const receiver = await startNginxRtmp({ workers: 1, hls: false, record: true, apps: ['live', 'relayed'] });
  servers.push(receiver);
  const relay = await startNginxRtmp({ workers: 1, hls: false, record: true, push: [`rtmp://127.0.0.1:${receiver.rtmpPort}/relayed`] });
  servers.push(relay);
  const sent = await send(clip, 4, 'flv', relay.rtmpUrl('clip'));
  assert.equal(sent.code, 0, sent.stderr);
  const source = await probeStream(clip);
  // The relay opens its push connection once the publish has started: the pushed copy starts a moment later.
  for (const [name, file, minPackets] of [['relay', relay.recordedFile('clip'), 3 * 24], ['receiver (pushed)', receiver.recordedFile('clip', 'relayed'), 24]] as const) {
    await waitUntil(() => existsSync(file) && statSync(file).size > 20_000, 10_000, () => `${name} recorded nothing: ${relay.errorLog()} ${receiver.errorLog()}`);
    const p = await probeStream(file);
    assert.equal(p.video?.codec, source.video?.codec, name);
    assert.equal(p.video?.fps, 24, name);
    assert.equal(p.audio?.codec, source.audio?.codec, name);
    assert.ok(p.videoPackets >= minPackets, `${name}: ${p.videoPackets} video packets of 4 s sent`);
  }
  assert.equal(existsSync(receiver.recordedFile('clip')), false, 'nothing was published to the receiver\'s live app');
});

test('the SRT listener writes what its caller sends and exits when the caller leaves', { timeout: 60_000 }, async () => {
  const clip = await clipWith2sGop(6);
  const srt = await startSrtListener(join(dir, 'srt.ts'));
  try {
    const sent = await send(clip, 3, 'mpegts', `${srt.url}?streamid=anything`);
    assert.equal(sent.code, 0, sent.stderr);
    const code = await Promise.race([srt.exited, new Promise((r) => setTimeout(() => r('running'), 10_000))]);
    assert.notEqual(code, 'running', 'the listener exited after its caller left');
    assert.ok(srt.bytesReceived() > 100_000, `${srt.bytesReceived()} bytes received`);
    const p = await probeStream(srt.file);
    assert.equal(p.video?.codec, 'h264');
    assert.equal(p.video?.fps, 24);
  } finally {
    await srt.stop();
  }
});

test('a refusing port refuses TCP connections; an ffmpeg sending RTMP there fails', { timeout: 30_000 }, async () => {
  const port = await refusingPort();
  const error = await new Promise<string>((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve('connected'); });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  assert.equal(error, 'ECONNREFUSED');
  const sent = await send(await clipWith2sGop(6), 1, 'flv', `rtmp://127.0.0.1:${port}/live/x`);
  assert.notEqual(sent.code, 0);
  assert.match(sent.stderr, /refused/i);
});

test('descendants and processGone see a child process come and go', { timeout: 10_000 }, async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await waitUntil(() => descendants(process.pid).some((p) => p.pid === child.pid && p.comm === 'sleep'), 5000, () => 'sleep listed under this process');
  assert.equal(processGone(child.pid!), false);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(processGone(child.pid!), true);
});
