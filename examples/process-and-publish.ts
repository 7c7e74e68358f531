/**
 * Processing frames in JavaScript and publishing the result with mediagate's frame API
 * (docs/frames.md "Publishing frames").
 *
 *   node --import tsx examples/process-and-publish.ts rtmp://127.0.0.1:1935/live/<stream> [file] [seconds]
 *       publish to a gateway's RTMP ingest: the new stream gets a ladder and HLS at
 *       http://<gateway>/stream/<stream>.m3u8 (and a recording and billing, as configured)
 *   node --import tsx examples/process-and-publish.ts out.mp4 [file] [seconds]
 *       save the processed media to an MP4 instead
 *
 * The source defaults to the test clip and 10 s of it. Every video frame becomes a negative
 * in grayscale (luma inverted, chroma neutral); audio goes through untouched. Video and audio
 * are fed concurrently, one loop each, as an encoder with both needs.
 */
import { fileURLToPath } from 'node:url';
import { AudioSource, MediaStreamError, VideoSource, openTracks, publish, saveMp4, type AudioFrame, type VideoFrame } from 'mediagate/frames';

const [target = 'processed.mp4', file = fileURLToPath(new URL('../test/fixtures/big_buck_bunny_360p24.mp4', import.meta.url)), secondsArg = '10'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const live = target.startsWith('rtmp://') || target.startsWith('rtmps://');

/** Negative grayscale of a yuv420p frame, on a copy: Y → 255 − Y, U = V = 128. */
function negativeGray(frame: VideoFrame): VideoFrame {
  const luma = frame.width * frame.height;
  const data = Buffer.allocUnsafe(frame.data.length);
  for (let i = 0; i < luma; i++) data[i] = 255 - frame.data[i]!;
  data.fill(128, luma);
  return { ...frame, data };
}

// A live publish is paced like a live source (realtime); a file is made as fast as it goes,
// with nothing dropped (overflow 'wait').
const { video, audio } = await openTracks({ file }, { realtime: live, videoOverflow: 'wait' });
if (!video) throw new Error(`${file} has no video`);

/** The first `seconds` of a track, transformed. Pts are the source's own (not from 0). */
async function* firstSeconds<F extends VideoFrame | AudioFrame>(frames: AsyncIterable<F>, map: (f: F) => F): AsyncGenerator<F> {
  let start: number | undefined;
  for await (const f of frames) {
    start ??= f.pts;
    if ((f.pts - start) * f.timeBase.num / f.timeBase.den >= seconds) return; // leaving the loop stops the track
    yield map(f);
  }
}
const videoFrames = firstSeconds(video, negativeGray);
const audioFrames = audio ? firstSeconds(audio, (f) => f) : undefined;

if (!live) {
  const saved = await saveMp4(target, { video: videoFrames, ...(audioFrames ? { audio: audioFrames } : {}) });
  console.log(`saved ${target}: ${saved.videoFrames} video frames, ${saved.audioSamples} audio samples per channel`);
} else {
  // The source's size from its first frame; its rate from the clip (24 fps): frames are placed on that grid by pts.
  const first = (await videoFrames.next()).value as VideoFrame;
  const videoSource = new VideoSource({ width: first.width, height: first.height, frameRate: 24 });
  const audioSource = audioFrames ? new AudioSource({ sampleRate: 48000, channels: 2 }) : undefined;
  const publication = publish({ rtmpUrl: target }, { video: videoSource, ...(audioSource ? { audio: audioSource } : {}) });
  process.once('SIGINT', () => { void publication.stop(); });
  console.log(`publishing ${seconds} s to ${target.replace(/[^/]+$/, '<stream>')} (Ctrl-C stops)`);
  await Promise.all([
    (async () => {
      await videoSource.captureFrame(first);
      for await (const f of videoFrames) await videoSource.captureFrame(f);
      videoSource.close();
    })(),
    (async () => {
      if (!audioSource || !audioFrames) return;
      for await (const f of audioFrames) await audioSource.captureFrame(f);
      audioSource.close();
    })(),
    publication.done,
  ]).catch((err: unknown) => {
    // After Ctrl-C the sources refuse further frames with ENDED: a normal stop.
    if (!(err instanceof MediaStreamError && err.code === 'ENDED')) throw err;
  });
  console.log(`published: ${videoSource.framesWritten} video frames (${videoSource.repeatedFrames} repeated, ${videoSource.skippedFrames} skipped)`);
}
