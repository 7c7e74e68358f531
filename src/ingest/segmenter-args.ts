/**
 * The segmenter's side of ffmpeg (segmenter.ts), pure: the command line of one source
 * segmenter ({@link buildSegmenterArgs}: `-c copy` into the segment muxer, MPEG-TS files,
 * csv segment list on stdout) and the lines of that list ({@link parseSegmentListLine}).
 */
import path from 'node:path';

/** Inputs of {@link buildSegmenterArgs}. */
export interface SegmenterArgsInput {
  readonly inputUrl: string;
  readonly workDir: string;
  readonly segmentTargetMs: number;
  readonly rwTimeoutMs: number;
  readonly probeDurationMs: number;
}

/**
 * ffmpeg arguments of the segmenter (pure).
 *
 * - `-rw_timeout` (µs) bounds connect and read stalls. NOT `-timeout`: on an rtmp input it
 *   means "listen for an incoming connection" (ffmpeg 5.1 opens `tcp://...?listen`).
 * - `-c copy` with the segment muxer cuts at video keyframes only, at the first keyframe
 *   at or after `segmentTargetMs × (n+1)` of the stream timeline: a long GOP makes a long
 *   segment, then cuts at every keyframe until the timeline catches up.
 * - Timestamps: no `-copyts` (ffmpeg rebases the input to start at 0, so the cut grid
 *   lines up even when we join mid-stream from NMS's GOP cache) and `-reset_timestamps 0`
 *   (the default, explicit here): each segment continues the previous one's timestamps.
 * - `-segment_list pipe:1` csv: ffmpeg writes `<file>,<start s>,<end s>` to stdout after
 *   the segment's trailer is written and flushed, then closes the file.
 * - The first video and the first audio stream, each optional (`0:v:0?`, `0:a:0?`): an
 *   audio-only publish is cut too (the segment muxer then cuts at audio packets, all of them
 *   key frames, on the target grid) and served as audio-only HLS; with neither, ffmpeg fails
 *   ("Output file #0 does not contain any stream") and the segmenter ends `failed`.
 */
export function buildSegmenterArgs(input: SegmenterArgsInput): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    '-rw_timeout', String(Math.round(input.rwTimeoutMs * 1000)),
    '-analyzeduration', String(Math.round(input.probeDurationMs * 1000)),
    '-i', input.inputUrl,
    '-map', '0:v:0?', '-map', '0:a:0?',
    '-c', 'copy',
    '-f', 'segment',
    '-segment_format', 'mpegts',
    '-segment_time', (input.segmentTargetMs / 1000).toString(),
    '-reset_timestamps', '0',
    '-segment_start_number', '0',
    '-segment_list', 'pipe:1',
    '-segment_list_type', 'csv',
    path.join(input.workDir, '%d.ts'),
  ];
}

/** One parsed line of the csv segment list. */
export interface SegmentListEntry {
  readonly file: string;
  readonly startMs: number;
  readonly endMs: number;
}

/**
 * Parses one csv segment-list line `<file>,<start s>,<end s>` (ffmpeg quotes the file name
 * with `"` when it holds `,` `"` or a newline).
 * @returns undefined for anything else
 */
export function parseSegmentListLine(line: string): SegmentListEntry | undefined {
  const m = /^(.*),(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$/.exec(line.trim());
  if (!m) return undefined;
  let file = m[1] ?? '';
  if (file.startsWith('"') && file.endsWith('"') && file.length >= 2) file = file.slice(1, -1).replace(/""/g, '"');
  if (file === '') return undefined;
  return { file, startMs: Math.round(Number(m[2]) * 1000), endMs: Math.round(Number(m[3]) * 1000) };
}
