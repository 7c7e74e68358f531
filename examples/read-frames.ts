/**
 * Reading frames with mediagate's frame API (docs/frames.md "Reading frames").
 *
 *   node --import tsx examples/read-frames.ts [file]                    # default: the test clip
 *   node --import tsx examples/read-frames.ts http://127.0.0.1:8935 <manifestID>   # a live stream
 *
 * Prints the first frames of both tracks with their times, the mean luma of one video frame
 * per second, and saves 5 s of the audio to read-frames.wav in the temp directory.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTracks, saveWav, type TrackSource, type VideoFrame } from 'mediagate/frames';

const [first, second] = process.argv.slice(2);
const source: TrackSource = first?.startsWith('http') && second
  ? { live: { gateway: first, manifestID: second } }
  : { file: first ?? fileURLToPath(new URL('../test/fixtures/big_buck_bunny_360p24.mp4', import.meta.url)) };

/** Mean of the Y plane (the first width × height bytes of a yuv420p frame), 0–255. */
function meanLuma(frame: VideoFrame): number {
  let sum = 0;
  const pixels = frame.width * frame.height;
  for (let i = 0; i < pixels; i++) sum += frame.data[i]!;
  return sum / pixels;
}

const { video, audio } = await openTracks(source, { video: { format: 'yuv420p' }, audio: { sampleRate: 48000, channels: 2 } });
console.log(`opened: video ${video ? 'yes' : 'no'}, audio ${audio ? 'yes' : 'no'}`);

await Promise.all([
  (async () => {
    if (!video) return;
    let n = 0;
    let lastSecond = -1;
    for await (const frame of video) {
      const seconds = frame.pts / frame.timeBase.den;
      if (n < 3) console.log(`video #${n}: ${frame.width}x${frame.height} ${frame.format} pts ${frame.pts} (${seconds.toFixed(3)} s), ${frame.data.length} bytes`);
      if (Math.floor(seconds) !== lastSecond) {
        lastSecond = Math.floor(seconds);
        console.log(`  t=${seconds.toFixed(2)} s mean luma ${meanLuma(frame).toFixed(1)}`);
      }
      n++;
    }
    console.log(`video: ${n} frames, ${video.droppedFrames} dropped (consumer behind)`);
  })(),
  (async () => {
    if (!audio) return;
    // saveWav stops the track after 5 s; every frame before is also a 20 ms AudioFrame.
    const path = join(tmpdir(), 'read-frames.wav');
    const saved = await saveWav(path, audio, { maxSeconds: 5 });
    console.log(`audio: saved ${saved.durationSeconds} s (${saved.samples} samples at ${saved.sampleRate} Hz × ${saved.channels}) to ${path}`);
  })(),
]);
