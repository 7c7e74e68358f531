/**
 * MPEG-TS segments → one MP4, streamed: the segments are written one after another to
 * ffmpeg's stdin (MPEG-TS is a stream format: concatenated segments cut from one stream are one
 * valid stream) and the MP4 comes out of its stdout as it is muxed, so nothing is buffered
 * whole and no temporary file is written. Stream copy only (`-c copy`): no re-encode.
 *
 * The MP4 is fragmented (`-movflags frag_keyframe+empty_moov+default_base_moof`: a `moov`
 * with no samples first, then one `moof`+`mdat` per keyframe; ISO/IEC 14496-12 §8.8), the
 * layout that can be written front to back into a pipe; browsers, VLC and ffmpeg play it, and
 * its duration is the media's. AAC in MPEG-TS is ADTS-framed; MP4 wants the raw frames, hence
 * `aac_adtstoasc` (ffmpeg 5.1 does not insert it for a stream-copied ADTS input).
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ChildSupervisor } from './child-supervisor.ts';

/** ffmpeg arguments of the export (stdin MPEG-TS → stdout fragmented MP4). */
export const MP4_EXPORT_ARGS: readonly string[] = [
  '-hide_banner', '-nostdin', '-loglevel', 'error',
  '-f', 'mpegts', '-i', 'pipe:0',
  '-map', '0:v?', '-map', '0:a?', '-c', 'copy', '-bsf:a', 'aac_adtstoasc',
  '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', 'pipe:1',
];

/** A running export; see {@link exportMp4}. */
export interface Mp4Export {
  /** The MP4 bytes as ffmpeg writes them. */
  readonly output: Readable;
  /**
   * Settles once ffmpeg exited and every segment was fed: resolves on success; rejects with
   * an Error naming the failure (a segment that could not be read, ffmpeg's exit code and last
   * error line). The output ends either way.
   */
  readonly done: Promise<void>;
  /** Stops ffmpeg (the reader went away). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts ffmpeg under `supervisor` and feeds it `segments` in order.
 * @param segments each yields one MPEG-TS segment's bytes as a stream, opened when needed.
 */
export function exportMp4(supervisor: ChildSupervisor, segments: AsyncIterable<Readable>): Mp4Export {
  let lastError = '';
  const child = supervisor.spawn('ffmpeg', MP4_EXPORT_ARGS, {
    name: 'mp4-export', stdio: ['pipe', 'pipe', 'pipe'], onStderrLine: (line) => { lastError = line; },
  });
  const stdin = child.process.stdin as Writable;
  // ffmpeg may exit (stop, bad input) while segments are still being written: not a crash of ours.
  stdin.on('error', () => undefined);
  let stopped = false;
  const feeding = (async (): Promise<void> => {
    try {
      for await (const segment of segments) {
        if (stopped) {
          segment.destroy();
          break;
        }
        await pipeline(segment, stdin, { end: false });
      }
    } finally {
      stdin.end();
    }
  })();
  const done = (async (): Promise<void> => {
    const [fed, exit] = await Promise.all([feeding.then(() => undefined, (err: Error) => err), child.exited]);
    if (stopped) return;
    if (fed) {
      await child.stop();
      throw new Error(`mp4 export: cannot read a segment: ${fed.message}`);
    }
    if (exit.spawnError) throw new Error(`mp4 export: cannot start ffmpeg: ${exit.spawnError.message}`);
    if (exit.code !== 0) throw new Error(`mp4 export: ffmpeg exited with ${exit.code ?? exit.signal}${lastError ? `: ${lastError}` : ''}`);
  })();
  return {
    output: child.process.stdout as Readable,
    done,
    stop: async () => {
      stopped = true;
      await child.stop();
    },
  };
}
