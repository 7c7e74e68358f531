/**
 * Renditions of a live session are aligned with the source: an RTMP publish of the clip to a
 * gateway with its embedded transcoder (a live transcoding session: one ffmpeg for the whole
 * stream); for every seq N the first video PTS of segment N of every rendition equals source
 * segment N's within one frame, so a player switching renditions at a segment boundary
 * neither repeats nor skips a picture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gatewayForSuite } from '../../helpers/suite-setup.ts';
import { publish } from '../../helpers/gateway-process.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { seqOf, waitForEndedPlaylists } from '../../helpers/hls.ts';

const run = promisify(execFile);
// Two renditions smaller than the clip (640x360): a rendition of its own size is left out (src/domain/ladder-fit.ts).
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
const MANIFEST = 'aligned';
/** One frame of the 24 fps clip, in 90 kHz ticks. */
const FRAME_90K = 90_000 / 24;

const gateway = gatewayForSuite({ MEDIAGATE_LADDER: LADDER.join(','), MEDIAGATE_HLS_WINDOW_SEGMENTS: '50', MEDIAGATE_TRANSCODE_LIVE_SESSIONS: 'true' });

/** The lowest video PTS among a segment's first packets (its keyframe's: closed GOPs), 90 kHz. */
async function firstVideoPts(url: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts', '-read_intervals', '%+#8', '-of', 'csv=p=0', url]);
  const pts = stdout.split('\n').map((l) => l.trim()).filter(Boolean).map(Number);
  assert.ok(pts.length > 0, `no video packet in ${url}`);
  return Math.min(...pts);
}

test('the first PTS of segment N of every rendition equals source segment N\'s within one frame', { timeout: 80_000 }, async () => {
  const publisher = publish(await clipWith2sGop(12), gateway.rtmpUrl(MANIFEST));
  assert.equal(await publisher.exited, 0, publisher.stderr());
  const lists = await waitForEndedPlaylists(gateway.httpUrl, MANIFEST, LADDER.length + 1, 40_000);
  assert.ok(gateway.proc.lines.some((l) => l.includes('"msg":"live session claimed"')), 'made by a live session');
  const sourceSeqs = lists[0]!.segments.map((s) => seqOf(s.uri));
  assert.ok(sourceSeqs.length >= 5, `about 6 segments, got ${sourceSeqs.length}`);
  const offBy: string[] = [];
  for (const seq of sourceSeqs) {
    const source = await firstVideoPts(`${gateway.httpUrl}/stream/${MANIFEST}/source/${seq}.ts`);
    for (const rendition of LADDER) {
      const pts = await firstVideoPts(`${gateway.httpUrl}/stream/${MANIFEST}/${rendition}/${seq}.ts`);
      if (Math.abs(pts - source) > FRAME_90K) offBy.push(`${rendition}/${seq}: ${pts} against ${source}`);
    }
  }
  assert.deepEqual(offBy, [], 'rendition segments whose first PTS is more than one frame from the source segment\'s');
  for (const list of lists.slice(1)) assert.deepEqual(list.segments.map((s) => seqOf(s.uri)), sourceSeqs);
});
