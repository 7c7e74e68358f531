/** RtmpServer start/close behaviour around NMS's host-hostile defaults. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { RtmpServer } from '../../../src/ingest/rtmp/rtmp-server.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { RtmpSegmenter } from '../../../src/ingest/rtmp-segmenter.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { freePort, gop2Clip, publish, removeDir, requireMediaTools, tempDir, waitFor } from './helpers.ts';

const dir = tempDir('rtmp-start');
after(() => removeDir(dir));

const callbacks = { onPublish: () => ({ accept: true as const }), onUnpublish: () => undefined };

function occupy(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

test('start() on a port in use rejects with a clear error and the process keeps running', async () => {
  const port = await freePort();
  const blocker = await occupy(port);
  try {
    const server = new RtmpServer({ port, logger: silentLogger(), storePath: path.join(dir, 'busy-store'), ...callbacks });
    await assert.rejects(server.start(), (err: unknown) => {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, new RegExp(`RTMP port 127\\.0\\.0\\.1:${port} is already in use`));
      return true;
    });
    await server.close();
  } finally {
    blocker.close();
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(process.exitCode === undefined || process.exitCode === 0, 'still alive and not marked as failing');
});

test('port 0 and a relative store path are configuration errors', () => {
  assert.throws(() => new RtmpServer({ port: 0, logger: silentLogger(), storePath: dir, ...callbacks }), /0 is not supported/);
  assert.throws(() => new RtmpServer({ port: 1935, logger: silentLogger(), storePath: 'data', ...callbacks }), /absolute/);
});

test('publish handlers may be given to start() instead of the constructor; without any, start() refuses and binds nothing', async () => {
  requireMediaTools();
  const clip = await gop2Clip();
  const port = await freePort();
  const bare = new RtmpServer({ port, logger: silentLogger(), storePath: path.join(dir, 'bare-store') });
  await assert.rejects(bare.start(), (err: unknown) => err instanceof GatewayError && err.code === 'INTERNAL' && /without publish handlers/.test(err.message));
  assert.equal(await canConnect(port), false, 'nothing listens after the refused start');
  await bare.close();
  const published: string[] = [];
  const later = new RtmpServer({ port, logger: silentLogger(), storePath: path.join(dir, 'later-store') });
  await later.start({ onPublish: (req) => { published.push(req.streamName); return { accept: true }; }, onUnpublish: () => undefined });
  try {
    assert.equal(await canConnect(port), true);
    const pub = publish(port, 'handlers_at_start', clip);
    await waitFor('onPublish given to start() called', () => published.length > 0, 20_000);
    assert.deepEqual(published, ['handlers_at_start']);
    pub.child.kill('SIGKILL');
    await pub.exited;
  } finally {
    await later.close();
  }
});

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('start() resolves once the port accepts connections, installs no signal handlers, and close() is idempotent and frees the port', async () => {
  const port = await freePort();
  const sigint = process.listenerCount('SIGINT');
  const sigterm = process.listenerCount('SIGTERM');
  const server = new RtmpServer({ port, logger: silentLogger(), storePath: path.join(dir, 'store'), ...callbacks });
  await Promise.all([server.start(), server.start()]);
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
  assert.equal(process.listenerCount('SIGINT'), sigint, 'NMS store SIGINT handler neutralised');
  assert.equal(process.listenerCount('SIGTERM'), sigterm, 'NMS store SIGTERM handler neutralised');
  await Promise.all([server.close(), server.close()]);
  await server.close();
  const again = await occupy(port); // released
  again.close();
  await assert.rejects(server.start(), /closed/);
});

test('close() with a live publisher disconnects it, reports its unpublish once, and ends the pull; a new server can follow in the same process', async () => {
  requireMediaTools();
  const clip = await gop2Clip();
  const port = await freePort();
  const unpublished: string[] = [];
  let segmenter: RtmpSegmenter | undefined;
  const server: RtmpServer = new RtmpServer({
    port,
    logger: silentLogger(),
    storePath: path.join(dir, 'live-store'),
    onPublish: (req) => {
      segmenter = new RtmpSegmenter({ tags: server.flvTags(req.sessionId)!, workDir: path.join(dir, 'live-segs'), logger: silentLogger() });
      segmenter.start();
      return { accept: true };
    },
    onUnpublish: (id) => {
      unpublished.push(id);
    },
  });
  await server.start();
  const pub = publish(port, 'closing_key', clip);
  await waitFor('live publish', () => server.liveSessionIds.length === 1, 5000);
  const sessionId = server.liveSessionIds[0]!;
  await new Promise((r) => setTimeout(r, 2500));
  await server.close();
  assert.deepEqual(unpublished, [sessionId]);
  assert.notEqual((await pub.exited).code, 0);
  const end = await segmenter!.done;
  assert.equal(end.reason, 'inputEnded');
  assert.ok(end.segments >= 1, 'the segment cut so far was flushed');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(unpublished, [sessionId], 'NMS late donePublish did not report it again');

  // a second instance in the same process (the first one's NMS listeners stay inert)
  const port2 = await freePort();
  let published = 0;
  const next = new RtmpServer({
    port: port2, logger: silentLogger(), storePath: path.join(dir, 'next-store'),
    onPublish: () => {
      published += 1;
      return { accept: true };
    },
    onUnpublish: () => undefined,
  });
  await next.start();
  try {
    const exit = await publish(port2, 'next_key', clip, { inputArgs: ['-t', '1'] }).exited;
    assert.equal(exit.code, 0);
    assert.equal(published, 1);
  } finally {
    await next.close();
  }
});
