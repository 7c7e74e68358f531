/**
 * Measures an uploaded audio file's duration with ffprobe (for audio-to-text billing: the
 * client's word is never used).
 */
import { spawn } from 'node:child_process';
import { GatewayError } from '../errors/gateway-error.ts';

/**
 * Duration in ms of the audio in `data`.
 * @throws GatewayError UNDECODABLE_MEDIA when ffprobe finds no audio stream or no duration.
 */
export function probeAudioDurationMs(data: Buffer, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_type:format=duration', '-of', 'json', 'pipe:0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stdin.on('error', () => undefined); // ffprobe may stop reading early
    child.on('error', (err) => { clearTimeout(timer); reject(new GatewayError('INTERNAL', `cannot run ffprobe: ${err.message}`)); });
    child.on('close', () => {
      clearTimeout(timer);
      try {
        const json = JSON.parse(out) as { streams?: { codec_type?: string }[]; format?: { duration?: string } };
        const seconds = Number(json.format?.duration);
        if (!json.streams?.some((s) => s.codec_type === 'audio') || !Number.isFinite(seconds) || seconds <= 0) throw new Error('no audio');
        resolve(Math.round(seconds * 1000));
      } catch {
        reject(new GatewayError('UNDECODABLE_MEDIA', 'audio: no decodable audio stream with a duration'));
      }
    });
    child.stdin.end(data);
  });
}
