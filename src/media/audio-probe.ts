/**
 * Measures an uploaded audio file's duration with ffprobe (for audio-to-text billing: the
 * client's word is never used). ffprobe reads the upload from its file on disk: through a
 * pipe it cannot seek and reports no duration for WAV and many other containers.
 * ffprobe reads the file with the demuxer its first bytes name (media-sniff.ts) and opens
 * nothing else (media-input.ts): an ID3 tag followed by an HLS playlist or concat script
 * would otherwise be probed as that playlist and make ffprobe open the files it lists.
 */
import { readFileHead, sniffAudioDemuxer } from './media-sniff.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { oneRunSupervisor, type ChildSupervisor } from './child-supervisor.ts';
import { demuxerInputArgs } from './media-input.ts';

/** ffprobe's JSON answer is small; more than this (node:child_process execFile's default maxBuffer) is refused. */
const MAX_OUTPUT_BYTES = 1024 * 1024;

/** Bytes the container is recognized by (media-sniff.ts reads at most the first 12). */
const SNIFF_BYTES = 16;

/**
 * Duration in ms of the audio in the file at `path` (an upload already on disk).
 * @throws GatewayError UNDECODABLE_MEDIA when the file is not a supported audio container,
 *   or ffprobe finds no audio stream or no duration in it.
 */
export async function probeAudioDurationMs(path: string, timeoutMs = 10_000, supervisor: ChildSupervisor = oneRunSupervisor()): Promise<number> {
  const demuxer = sniffAudioDemuxer(await readFileHead(path, SNIFF_BYTES));
  if (demuxer === undefined) throw new GatewayError('UNDECODABLE_MEDIA', 'audio: not a WAV, MP3, AAC, FLAC, Ogg, MP4/M4A or WebM audio file');
  try {
    const stdout = await runFfprobe(supervisor, ['-v', 'error', ...demuxerInputArgs(demuxer), '-select_streams', 'a:0', '-show_entries', 'stream=codec_type,duration:format=duration', '-of', 'json', path], timeoutMs);
    const json = JSON.parse(stdout) as { streams?: { codec_type?: string; duration?: string }[]; format?: { duration?: string } };
    const stream = json.streams?.find((s) => s.codec_type === 'audio');
    const seconds = Number(stream?.duration ?? json.format?.duration);
    if (!stream || !Number.isFinite(seconds) || seconds <= 0) throw new Error('no audio duration');
    return Math.round(seconds * 1000);
  } catch {
    throw new GatewayError('UNDECODABLE_MEDIA', `audio: no decodable audio stream with a duration (read as ${demuxer})`);
  }
}

/**
 * Runs ffprobe and returns its stdout; on timeout or too much output the child is stopped
 * (SIGTERM, SIGKILL after the supervisor's grace), as execFile's `timeout`/`maxBuffer` did.
 * @throws Error when ffprobe cannot start, exits non-zero, times out or writes too much.
 */
async function runFfprobe(supervisor: ChildSupervisor, args: readonly string[], timeoutMs: number): Promise<string> {
  const child = supervisor.spawn('ffprobe', args, { name: 'ffprobe' });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let failure: string | undefined;
  const timer = setTimeout(() => {
    failure ??= `ffprobe timed out after ${timeoutMs} ms`;
    void child.stop();
  }, timeoutMs);
  child.process.stdout!.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_OUTPUT_BYTES) {
      failure ??= 'ffprobe output too large';
      void child.stop();
      return;
    }
    chunks.push(chunk);
  });
  const exit = await child.exited;
  clearTimeout(timer);
  if (exit.spawnError) throw exit.spawnError;
  if (failure !== undefined) throw new Error(failure);
  if (exit.code !== 0) throw new Error(`ffprobe exited with code ${String(exit.code)}`);
  return Buffer.concat(chunks).toString('utf8');
}
