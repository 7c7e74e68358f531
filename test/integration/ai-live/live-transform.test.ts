/**
 * Live video-to-video end to end, the media half: a gateway process, a reference AI worker
 * process serving `live-video-to-video` over trickle, the clip (with a frame counter burned
 * in, test/helpers/frame-counter.ts) published over RTMP in real time. `start` with a negate
 * filter: the `<stream>-out` stream plays as HLS and each of its frames is the negation of
 * the input frame whose counter it carries; `update` to greyscale mid-stream: the output's
 * frames turn grey with the input's luma.
 *
 * Measured on decoded frames as means of a 32×16 grid of cells below the counter (0-255
 * levels, R, G, B): for the clip through ffmpeg alone (negate, 1 Mbit/s x264), the negation
 * error is 1.6 against an identity error of 156 on the same frames; greyscale (hue=s=0) gives
 * a luma error of 1.3 and chroma 0 against the input's 24. The bounds below leave room for the
 * worker's RGB round trip and two more encodes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { counterClip, referenceFrames, compareFrames, meanComparison, type FrameComparison, type FrameSummary } from '../../helpers/frame-counter.ts';
import {
  startLiveCluster, accountWithApiKey, publishLoop, startLive, updateLive, waitFor, OutputWatch, type LiveCluster, type SeenOutSegment,
} from '../../helpers/live-cluster.ts';
import { fetchMaster, fetchMedia } from '../../helpers/hls.ts';

/** Largest mean |out − (255 − in)| of a negated output, levels. */
const MAX_NEGATE_ERROR = 12;
/** Smallest mean |out − in| a negated output must show (it is not the input passed through). */
const MIN_NEGATE_IDENTITY_ERROR = 40;
/** Largest mean |luma(out) − luma(in)| of a greyscaled output, levels. */
const MAX_GREY_LUMA_ERROR = 12;
/** Largest mean chroma (|R−G|+|G−B|+|B−R|)/3 of a grey output, levels. */
const MAX_GREY_CHROMA = 4;
const CLIP_SECONDS = 40;
const STREAM = 'v2v';

let cluster: LiveCluster;
let reference: Map<number, FrameSummary>;
let clip: string;

before(async () => {
  clip = await counterClip(CLIP_SECONDS);
  reference = await referenceFrames(clip);
  cluster = await startLiveCluster({ workers: 1 });
});

after(async () => {
  await cluster?.close();
});

/** Each decoded output frame compared with the input frame of the same counter. */
function comparisons(segments: readonly SeenOutSegment[]): { frame: FrameSummary; cmp: FrameComparison }[] {
  const out: { frame: FrameSummary; cmp: FrameComparison }[] = [];
  for (const s of segments) {
    for (const frame of s.frames ?? []) {
      const input = frame.n === undefined ? undefined : reference.get(frame.n);
      if (input) out.push({ frame, cmp: compareFrames(frame, input) });
    }
  }
  return out;
}

test('start: the -out stream plays and its frames are the negated input frames; update to greyscale turns the following frames grey', { timeout: 120_000 }, async () => {
  const { gateway } = cluster;
  const { apiKey } = await accountWithApiKey(gateway.httpUrl, 'viewer', 1_000_000n);
  const publisher = publishLoop(clip, gateway.rtmpUrl(STREAM));
  const watch = new OutputWatch(gateway.httpUrl, `${STREAM}-out`);
  try {
    await waitFor('the input stream listed', async () => ((await fetchMedia(`${gateway.httpUrl}/stream/${STREAM}/source.m3u8`).catch(() => undefined))?.segments.length ?? 0) > 0 || undefined, 20_000);
    const started = await startLive(gateway.httpUrl, STREAM, { filter: 'negate' }, apiKey);
    assert.equal(started.status, 200, started.text);

    // Three output segments decoded: the -out stream plays.
    await waitFor('3 decoded output segments', async () => (watch.decoded().length >= 3 ? true : undefined), 40_000,
      () => gateway.proc.lines.slice(-15).join('\n'));
    const master = await fetchMaster(`${gateway.httpUrl}/stream/${STREAM}-out.m3u8`);
    assert.ok(master, 'the -out stream has a master playlist');
    assert.deepEqual(master.variants.map((v) => v.uri.split('/')[1]), ['source.m3u8', 'P144p30fps16x9.m3u8'], 'source and its ladder');
    const negated = comparisons(watch.decoded().slice(0, 3));
    const frames = watch.decoded().slice(0, 3).reduce((n, s) => n + s.frames!.length, 0);
    assert.ok(negated.length >= frames * 0.9, `the counter is read in ${negated.length} of ${frames} output frames`);
    assert.ok(negated.every((c) => c.frame.inverted), 'every output frame carries the counter inverted');
    const mean = meanComparison(negated.map((c) => c.cmp))!;
    assert.ok(mean.negateError < MAX_NEGATE_ERROR, `negation error ${mean.negateError.toFixed(2)} < ${MAX_NEGATE_ERROR}`);
    assert.ok(mean.identityError > MIN_NEGATE_IDENTITY_ERROR, `identity error ${mean.identityError.toFixed(2)} > ${MIN_NEGATE_IDENTITY_ERROR}`);
    const worst = Math.max(...negated.map((c) => c.cmp.negateError));
    process.stdout.write(`# negate: ${negated.length} frames, mean negation error ${mean.negateError.toFixed(2)} (worst frame ${worst.toFixed(2)}), identity error ${mean.identityError.toFixed(2)}\n`);

    // Update mid-stream: the output turns grey (not inverted, no chroma, the input's luma).
    const before = watch.segments.length;
    const updatedAtMs = Date.now();
    const updated = await updateLive(gateway.httpUrl, STREAM, { filter: 'grayscale' });
    assert.equal(updated.status, 200, updated.text);
    const greySegment = await waitFor('a grey output segment', async () => {
      const s = watch.decoded().slice(before).find((x) => x.frames!.some((f) => !f.inverted));
      return s && watch.decoded().indexOf(s) + 2 < watch.decoded().length ? s : undefined;
    }, 40_000);
    process.stdout.write(`# update → first grey segment listed after ${((greySegment.seenAtMs - updatedAtMs) / 1000).toFixed(2)} s\n`);
    const after = watch.decoded().slice(watch.decoded().indexOf(greySegment) + 1);
    const grey = comparisons(after);
    assert.ok(grey.length >= 24, `${grey.length} grey frames compared`);
    assert.ok(grey.every((c) => !c.frame.inverted), 'no negated frame after the change');
    const g = meanComparison(grey.map((c) => c.cmp))!;
    assert.ok(g.outChroma < MAX_GREY_CHROMA, `output chroma ${g.outChroma.toFixed(2)} < ${MAX_GREY_CHROMA} (input ${g.inChroma.toFixed(2)})`);
    assert.ok(g.inChroma > 3 * MAX_GREY_CHROMA, 'the input frames have colour');
    assert.ok(g.lumaError < MAX_GREY_LUMA_ERROR, `luma error ${g.lumaError.toFixed(2)} < ${MAX_GREY_LUMA_ERROR}`);
    process.stdout.write(`# greyscale: ${grey.length} frames, chroma ${g.outChroma.toFixed(2)} (input ${g.inChroma.toFixed(2)}), luma error ${g.lumaError.toFixed(2)}\n`);
    assert.ok(watch.segments.every((s) => s.decodeError === undefined), `every output segment decodes: ${watch.segments.map((s) => s.decodeError).filter(Boolean).join('; ')}`);
  } finally {
    publisher.stop();
    await publisher.exited;
    await watch.stop();
  }
});
