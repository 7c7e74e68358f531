/**
 * Measures an uploaded audio file's duration with ffprobe (for audio-to-text billing: the
 * client's word is never used). ffprobe reads the upload from its file on disk: through a
 * pipe it cannot seek and reports no duration for WAV and many other containers.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GatewayError } from '../errors/gateway-error.ts';

const run = promisify(execFile);

/**
 * Duration in ms of the audio in the file at `path` (an upload already on disk).
 * @throws GatewayError UNDECODABLE_MEDIA when ffprobe finds no audio stream or no duration.
 */
export async function probeAudioDurationMs(path: string, timeoutMs = 10_000): Promise<number> {
  try {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_type,duration:format=duration', '-of', 'json', path], { timeout: timeoutMs });
    const json = JSON.parse(stdout) as { streams?: { codec_type?: string; duration?: string }[]; format?: { duration?: string } };
    const stream = json.streams?.find((s) => s.codec_type === 'audio');
    const seconds = Number(stream?.duration ?? json.format?.duration);
    if (!stream || !Number.isFinite(seconds) || seconds <= 0) throw new Error('no audio duration');
    return Math.round(seconds * 1000);
  } catch {
    throw new GatewayError('UNDECODABLE_MEDIA', 'audio: no decodable audio stream with a duration');
  }
}
