/**
 * A restream output of a profile rendition (not `source`): the holder feeds it that rendition's
 * listed segments, found by polling the segment index (gateway-role.ts `listedSeqs`), so a real
 * RTMP receiver gets the transcoded rendition's picture size, copied.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../helpers/ports.ts';
import { probeStream } from '../../helpers/receivers.ts';
import { stopChild } from '../../helpers/redis-server.ts';
import { startOutputsFixture, type ListedOutput, type OutputsFixture } from './outputs-fixture.ts';

const RENDITION = 'P144p30fps16x9';
let fx: OutputsFixture | undefined;
const dir = mkdtempSync(join(tmpdir(), 'mg-out-profile-'));

after(async () => {
  await fx?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('an output of a profile rendition goes live and its receiver gets that rendition\'s size, copied', { timeout: 85_000 }, async () => {
  fx = await startOutputsFixture('outputs-profile');
  const deadline = Date.now() + 30_000;
  while ((await fx.lastSeq(RENDITION)) < 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  assert.ok((await fx.lastSeq(RENDITION)) >= 0, `${RENDITION} lists a segment`);
  const port = await freePort();
  const received = join(dir, 'received.flv');
  const receiver = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-listen', '1', '-i', `rtmp://127.0.0.1:${port}/live/profile-key`, '-c', 'copy', '-y', received], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300)); // the listener binds
    const added = await fx.addOutput({ url: `rtmp://127.0.0.1:${port}/live/profile-key`, rendition: RENDITION });
    assert.equal(added.status, 201, added.text);
    const id = (added.json as ListedOutput).id;
    await fx.waitForOutput(id, (o) => o.state === 'live' && o.bytesSent > 0, 30_000, 'profile output live');
    // Two more segments of the rendition reach the receiver before the output is removed.
    const seq = await fx.lastSeq(RENDITION);
    const more = Date.now() + 20_000;
    while ((await fx.lastSeq(RENDITION)) < seq + 2 && Date.now() < more) await new Promise((r) => setTimeout(r, 250));
    assert.equal((await fx.api(`/api/streams/${fx.manifestID}/outputs/${id}`, { method: 'DELETE' })).status, 204);
    await stopChild(receiver, 5000).catch(() => undefined);
    const probe = await probeStream(received);
    assert.equal(probe.video?.codec, 'h264');
    assert.deepEqual([probe.video?.width, probe.video?.height], [256, 144], 'the rendition\'s picture, not the source\'s 640x360');
    assert.ok(probe.videoPackets > 24, `frames arrived: ${probe.videoPackets}`);
  } finally {
    await stopChild(receiver, 2000).catch(() => undefined);
  }
});
