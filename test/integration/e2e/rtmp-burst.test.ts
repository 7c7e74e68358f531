/**
 * A start burst on one gateway process (issue 14): 32 RTMP publishers of the clip (`-re -c copy`,
 * each to its own stream key) started within 1 s, ladder `[]` (source only). Every stream's
 * seq 0 must start at its publisher's first keyframe (no GOP lost while the gateway was busy
 * accepting the others), and the gateway must run no ffmpeg or ffprobe for any of them.
 *
 * The clip is published with a 2 s GOP, so a segmenter that starts reading more than 2 s late
 * (node-media-server's GOP cache then begins at the second keyframe) would make a seq 0 that
 * starts at the 2 s keyframe. Which keyframe seq 0 starts at is told by decoding its first
 * picture and comparing it with the clip's first picture (timestamps cannot tell: the segmenter
 * rebases them to the first packet it gets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { childProcesses } from '../../helpers/gateway-process.ts';
import { fetchMedia, fetchText, probeSegment, seqOf } from '../../helpers/hls.ts';
import { clipWith2sGop } from '../../helpers/media.ts';

const run = promisify(execFile);
const STREAMS = 32;
/** Seconds each publisher sends: 4 segments of 2 s. */
const PUBLISH_S = 8;
const keyOf = (i: number): string => `burst-key-${i}-x7Qp`;
const manifestOf = (i: number): string => `burst${i}`;

const gateway = gatewayForSuite({
  MEDIAGATE_LADDER: '[]',
  MEDIAGATE_LOG_LEVEL: 'info',
  MEDIAGATE_STREAM_KEYS: JSON.stringify(Array.from({ length: STREAMS }, (_, i) => ({ streamKey: keyOf(i), manifestID: manifestOf(i) }))),
});

/**
 * Starts the {@link STREAMS} publishers (`ffmpeg -re -i <clip> -c copy -f flv`, one
 * stream key each) from one shell, which forks them far faster than this loaded Node process
 * could spawn them one by one; resolves once all exited.
 * @returns how long the launches took (first to last), each publisher's exit code, and stderr
 */
function publishBurst(clip: string): Promise<{ launchedWithinMs: number; codes: number[]; stderr: string }> {
  const urls = Array.from({ length: STREAMS }, (_, i) => gateway.rtmpUrl(keyOf(i)));
  const script = [
    'start=$(date +%s%N); i=0',
    'for url in "$@"; do (ffmpeg -nostdin -v error -re -i "$CLIP" -c copy -f flv "$url"; echo "exit $i $?") & i=$((i+1)); done',
    'echo "launched $(( ($(date +%s%N) - start) / 1000000 ))"',
    'wait',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const sh = spawn('sh', ['-c', script, 'burst', ...urls], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', CLIP: clip },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    sh.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    sh.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    sh.once('error', reject);
    sh.once('exit', () => {
      const launched = /launched (\d+)/.exec(out);
      const codes = Array.from({ length: STREAMS }, (_, i) => Number(new RegExp(`^exit ${i} (\\d+)$`, 'm').exec(out)?.[1] ?? -1));
      if (!launched) reject(new Error(`burst launcher failed: ${out} ${stderr}`));
      else resolve({ launchedWithinMs: Number(launched[1]), codes, stderr });
    });
  });
}

/** MD5 of a decoded video picture (the first, or number `index` in decode order) of a file or URL (ffmpeg's md5 muxer over the raw frame). */
async function pictureMd5(input: string, index = 0): Promise<string> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', input, '-map', '0:v:0', '-vf', `select=eq(n\\,${index})`, '-frames:v', '1', '-f', 'md5', '-']);
  return stdout.trim();
}

test('32 publishers started within 1 s: every seq 0 starts at its publisher\'s first keyframe, and the gateway starts no ffmpeg', { timeout: 120_000 }, async () => {
  const clip = await clipWith2sGop(PUBLISH_S);
  const firstPicture = await pictureMd5(clip);
  // The comparison below can fail: the clip's second GOP (its 49th picture, at 2 s) starts with another picture.
  assert.notEqual(await pictureMd5(clip, 48), firstPicture);

  const children = new Set<string>();
  const sampler = setInterval(() => { for (const c of childProcesses(gateway.proc.child.pid!)) children.add(c); }, 200);
  let burst: { launchedWithinMs: number; codes: number[]; stderr: string };
  try {
    burst = await publishBurst(clip);
  } finally {
    clearInterval(sampler);
  }
  assert.ok(burst.launchedWithinMs < 1000, `publishers started within ${burst.launchedWithinMs} ms`);
  assert.deepEqual(burst.codes, burst.codes.map(() => 0), `every publisher ran to the end: ${burst.stderr}`);
  const ffmpegChildren = [...children].filter((c) => /ffmpeg|ffprobe/.test(c));
  assert.deepEqual(ffmpegChildren, [], 'no ffmpeg or ffprobe child of the gateway during the burst');

  // Every stream ends with its seq 0 starting at the publisher's first keyframe.
  for (let i = 0; i < STREAMS; i += 1) {
    const playlistUrl = `${gateway.httpUrl}/stream/${manifestOf(i)}/source.m3u8`;
    const deadline = Date.now() + 30_000;
    let media = (await fetchText(playlistUrl)).status === 200 ? await fetchMedia(playlistUrl) : undefined;
    while (!media?.endlist && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      media = (await fetchText(playlistUrl)).status === 200 ? await fetchMedia(playlistUrl) : undefined;
    }
    assert.ok(media?.endlist, `stream ${i}: its playlist ended`);
    const seqs = media.segments.map((s) => seqOf(s.uri));
    assert.equal(seqs[0], 0, `stream ${i}: seq 0 is listed`);
    assert.deepEqual(seqs, seqs.map((_, k) => k), `stream ${i}: every seq listed`);
    assert.equal(seqs.length, PUBLISH_S / 2, `stream ${i}: ${PUBLISH_S / 2} segments of 2 s`);
    const seg0Url = `${gateway.httpUrl}/stream/${manifestOf(i)}/source/0.ts`;
    assert.equal(await pictureMd5(seg0Url), firstPicture, `stream ${i}: seq 0 starts with the clip's first keyframe`);
    assert.equal((await probeSegment(seg0Url)).frames, 48, `stream ${i}: seq 0 holds the whole first GOP`);
  }
  process.stdout.write(`# burst: ${STREAMS} publishers started within ${burst.launchedWithinMs} ms; gateway children seen: ${JSON.stringify([...children])}\n`);
});
