/**
 * Issue 17: "a published processed stream plays in HLS with the transform visible (measured
 * on decoded frames)". A real gateway process (cmd/gateway.ts, embedded transcoder) on a real
 * redis-server; the real clip's frames read with the frame API (openTracks, paced like a live
 * source), every video frame turned into a negative in grayscale by JS (Y → 255 − Y, U = V =
 * 128), audio passed through, published over RTMP to the gateway's own ingest with
 * publish(); then the stream's HLS (hls-parser, strict) is decoded with ffmpeg and measured
 * with its signalstats filter against the clip's own first seconds.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { AudioSource, VideoSource, openTracks, publish, type VideoFrame } from '../../../src/frames/index.ts';
import { childProcesses, startGateway, type RunningGateway } from '../../helpers/gateway-process.ts';
import { fetchMaster, fetchMedia, waitForEndedPlaylists } from '../../helpers/hls.ts';
import { CLIP } from '../../helpers/media.ts';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';

const run = promisify(execFile);
const STREAM = 'frames-negative';
/** Seconds of the clip published. */
const PUBLISH_S = 8;
const LADDER = 'P144p30fps16x9';

let redis: TestRedis;
let gateway: RunningGateway;

before(async () => {
  redis = await startRedis();
  gateway = await startGateway(redis.url, { MEDIAGATE_LADDER: LADDER, MEDIAGATE_LOG_LEVEL: 'info' });
});

after(async () => {
  await gateway?.stop();
  await redis?.stop();
});

/** The transform: a negative in grayscale (luma inverted, chroma neutral), on a copy. */
function negativeGray(frame: VideoFrame): VideoFrame {
  const lumaBytes = frame.width * frame.height;
  const data = Buffer.allocUnsafe(frame.data.length);
  for (let i = 0; i < lumaBytes; i++) data[i] = 255 - frame.data[i]!;
  data.fill(128, lumaBytes);
  return { ...frame, data };
}

interface Stats { frames: number; yAvg: number; satAvg: number; satMax: number }

/** Mean luma and saturation of every decoded frame of `input` (a URL or file; `-t` limits it), by ffmpeg's signalstats. */
async function signalStats(input: string, limitS?: number): Promise<Stats> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', ...(limitS === undefined ? [] : ['-t', String(limitS)]), '-i', input,
    '-map', '0:v:0', '-vf', 'signalstats,metadata=print:file=-', '-f', 'null', '-'], { maxBuffer: 64 * 1024 * 1024 });
  const values = (key: string): number[] => [...stdout.matchAll(new RegExp(`lavfi\\.signalstats\\.${key}=([\\d.]+)`, 'g'))].map((m) => Number(m[1]));
  const y = values('YAVG');
  const sat = values('SATAVG');
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { frames: y.length, yAvg: mean(y), satAvg: mean(sat), satMax: Math.max(...values('SATMAX')) };
}

test('a published processed stream plays in HLS with the transform visible (measured on decoded frames)', { timeout: 90_000 }, async (t) => {
  const { video: track, audio: audioTrack } = await openTracks({ file: CLIP }, { realtime: true, videoOverflow: 'wait' });
  assert.ok(track && audioTrack);
  const first = await track.recv();
  const video = new VideoSource({ width: first.width, height: first.height, frameRate: 24 });
  const audio = new AudioSource({ sampleRate: 48000, channels: 2 }) // openTracks' audio default;
  const publication = publish({ rtmpUrl: gateway.rtmpUrl(STREAM) }, { video, audio });
  await video.captureFrame(negativeGray(first)); // ffmpeg is running (and its command line set) once it took a frame
  // The stream name (a stream key where keys are configured) is not on ffmpeg's command line.
  const { stdout: args } = await run('ps', ['-o', 'args=', '-p', String(publication.pid)]);
  assert.match(args, /-fpre \/dev\/fd\/3 rtmp:\/\/127\.0\.0\.1:\d+\/live\/$/m);
  assert.doesNotMatch(args, new RegExp(STREAM));

  const feedVideo = (async () => {
    for await (const frame of track) {
      if (frame.pts >= PUBLISH_S * 90_000) break;
      await video.captureFrame(negativeGray(frame));
    }
    video.close();
  })();
  const feedAudio = (async () => {
    for await (const frame of audioTrack) {
      if (frame.pts >= PUBLISH_S * frame.sampleRate) break;
      await audio.captureFrame(frame);
    }
    audio.close();
  })();
  await Promise.all([feedVideo, feedAudio, publication.done]);
  assert.deepEqual(childProcesses(process.pid).filter((l) => l.includes('ffmpeg')), [], 'an ffmpeg outlived the publication');

  // The stream ends once the publish is over; the source rendition and the 144p one list every segment.
  const master = await fetchMaster(`${gateway.httpUrl}/stream/${STREAM}.m3u8`);
  assert.ok(master, 'no master playlist');
  const lists = await waitForEndedPlaylists(gateway.httpUrl, STREAM, master.variants.length, 40_000);
  assert.equal(lists.length, 2);
  const clip = await signalStats(CLIP, PUBLISH_S);
  for (const variant of master.variants) {
    const media = await fetchMedia(`${gateway.httpUrl}/stream/${variant.uri}`);
    const listedS = media.segments.reduce((s, seg) => s + seg.duration, 0);
    assert.ok(Math.abs(listedS - PUBLISH_S) < 1, `${variant.uri}: ${listedS} s listed, ${PUBLISH_S} s published`);
    const out = await signalStats(`${gateway.httpUrl}/stream/${variant.uri}`);
    t.diagnostic(`${variant.uri}: ${JSON.stringify(out)}; the clip's first ${PUBLISH_S} s: ${JSON.stringify(clip)}`);
    // The clip has colour and its luma; the output has none and the inverse luma.
    assert.ok(clip.satAvg > 8, `the clip's own mean saturation ${clip.satAvg}`);
    assert.ok(out.satAvg < 1 && out.satMax < 8, `${variant.uri}: saturation mean ${out.satAvg} max ${out.satMax} (gray expected)`);
    assert.ok(Math.abs(out.yAvg - (255 - clip.yAvg)) < 5, `${variant.uri}: mean luma ${out.yAvg}, the clip's ${clip.yAvg} (inverse ${255 - clip.yAvg})`);
    assert.ok(out.frames >= 0.9 * clip.frames, `${variant.uri}: ${out.frames} frames decoded, the clip's ${PUBLISH_S} s have ${clip.frames}`);
  }
});
