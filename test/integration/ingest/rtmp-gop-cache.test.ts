/**
 * node-media-server keeps each publish's current GOP twice (as FLV tags and as RTMP messages)
 * for players that join; the packet tap (src/ingest/rtmp/packet-tap.ts) drops those caches
 * while no player watches, so a stream nobody plays costs no GOP of memory. What a local RTMP
 * player (ffprobe) sees with a 4 s-GOP cut of the clip published in real time: the first player, joining
 * mid-GOP with no player before it, starts with the frames it gets live (not the GOP's
 * keyframe); a second one, joining once the first has watched past a keyframe, gets the cached
 * GOP from its keyframe, as NMS replays it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import {
  captureLogger, publish, secretKey, SOURCE_CLIP, waitFor, useRtmpServer, type RtmpServerFixture,
} from './helpers.ts';

const { logger } = captureLogger();
let acceptedAtMs = 0;

const rtmp: RtmpServerFixture = useRtmpServer('rtmp-gop', {
  logger,
  onPublish: async (req) => {
    acceptedAtMs = Date.now();
    rtmp.server.flvTags(req.sessionId)!.read({ tag: () => undefined, end: () => undefined });
    return { accept: true };
  },
  onUnpublish: () => undefined,
});
const { dir } = rtmp;

/** A player: ffprobe pulling the stream, listing its video packets (key flag, PTS in s) until the stream ends. */
function player(url: string): Promise<{ key: boolean; ptsS: number }[]> {
  const child = spawn('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=flags,pts_time', '-of', 'csv=p=0', url], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => child.on('close', () => {
    clearTimeout(killer);
    resolve(out.split('\n').filter((l) => l.trim() !== '').map((l) => {
      const [ptsS, flags] = l.split(',');
      return { key: (flags ?? '').startsWith('K'), ptsS: Number(ptsS) };
    }));
  }));
}

const sleepUntil = (atMs: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, atMs - Date.now())));

test('with no player, a joining player gets no cached GOP; with one watching, the next player gets the GOP from its keyframe', { timeout: 60_000 }, async () => {
  const key = secretKey('gop');
  const url = `rtmp://127.0.0.1:${rtmp.port}/live/${key}`;
  // 10 s with a 4 s GOP (keyframes at 0, 4, 8 s): wide margins for players starting on a busy machine.
  const clip = path.join(dir, 'gop4.mp4');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', SOURCE_CLIP, '-t', '10', '-c:v', 'libx264', '-preset', 'ultrafast',
    '-g', '96', '-keyint_min', '96', '-sc_threshold', '0', '-c:a', 'copy', clip]);
  const publisher = publish(rtmp.port, key, clip);
  await waitFor('publish accepted', () => acceptedAtMs > 0, 20_000);
  // Mid-GOP (keyframes at 0 and 4 s): the first player joins with no player before it.
  await sleepUntil(acceptedAtMs + 1500);
  const first = player(url);
  // Mid-GOP again (4 to 8 s); the first player has been watching since before the 4 s keyframe.
  await sleepUntil(acceptedAtMs + 5500);
  const second = player(url);
  const [p1, p2] = await Promise.all([first, second]);
  assert.equal((await publisher.exited).code, 0);

  assert.ok(p1.length > 0 && p2.length > 0, `both players got video (${p1.length}, ${p2.length} packets)`);
  assert.equal(p1[0]!.key, false, `the first player starts with live inter frames, not a cached keyframe (first PTS ${p1[0]!.ptsS} s)`);
  assert.ok(p1.some((p) => p.key), 'it gets the next keyframe');
  assert.equal(p2[0]!.key, true, 'the second player starts at the cached GOP\'s keyframe');
  assert.ok(p2[0]!.ptsS < p2.find((p, i) => i > 0 && p.key)!.ptsS, 'a keyframe before the live one: replayed from the cache');
});
