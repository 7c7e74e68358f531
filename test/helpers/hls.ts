/**
 * HLS checks for tests: fetch and parse playlists with hls-parser in strict mode, probe
 * segments with ffprobe, decode with ffmpeg.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parse, setOptions, types } from 'hls-parser';

const run = promisify(execFile);
setOptions({ strictMode: true });

export type MasterPlaylist = types.MasterPlaylist;
export type MediaPlaylist = types.MediaPlaylist;

export async function fetchText(url: string): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

export async function fetchMaster(url: string): Promise<MasterPlaylist | undefined> {
  const res = await fetchText(url);
  if (res.status !== 200) return undefined;
  const parsed = parse(res.text);
  if (!parsed.isMasterPlaylist) throw new Error(`${url} is not a master playlist`);
  return parsed as MasterPlaylist;
}

export async function fetchMedia(url: string): Promise<MediaPlaylist> {
  const res = await fetchText(url);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${res.text}`);
  const parsed = parse(res.text);
  if (parsed.isMasterPlaylist) throw new Error(`${url} is not a media playlist`);
  return parsed as MediaPlaylist;
}

/** Sequence number from a segment URI `<rendition>/<seq>.ts`. */
export function seqOf(uri: string): number {
  const m = /\/(\d+)\.ts$/.exec(uri);
  if (!m) throw new Error(`unexpected segment URI ${uri}`);
  return Number(m[1]);
}

export interface SegmentProbe {
  width: number;
  height: number;
  /** Video frame PTS in seconds, presentation order. */
  firstPtsS: number;
  lastPtsS: number;
  frameDurationS: number;
  frames: number;
}

/** ffprobe of one segment (file path or URL): size, video PTS range and frame count. */
export async function probeSegment(url: string): Promise<SegmentProbe> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,r_frame_rate:packet=pts_time',
    '-of', 'json', url], { maxBuffer: 16 * 1024 * 1024 });
  const json = JSON.parse(stdout) as { streams: { width: number; height: number; r_frame_rate: string }[]; packets: { pts_time: string }[] };
  const s = json.streams[0];
  if (!s) throw new Error(`${url}: no video stream`);
  const pts = json.packets.map((p) => Number(p.pts_time)).sort((a, b) => a - b);
  const [num, den] = s.r_frame_rate.split('/').map(Number) as [number, number];
  return { width: s.width, height: s.height, firstPtsS: pts[0]!, lastPtsS: pts[pts.length - 1]!, frameDurationS: den / num, frames: pts.length };
}

/** Decodes a URL fully with ffmpeg; returns whatever ffmpeg printed at level error (empty = clean). */
export async function decodeErrors(url: string): Promise<string> {
  try {
    const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', url, '-f', 'null', '-'], { maxBuffer: 16 * 1024 * 1024 });
    return stderr.trim();
  } catch (err) {
    return `ffmpeg failed: ${(err as Error & { stderr?: string }).stderr ?? (err as Error).message}`;
  }
}

/**
 * Polls a stream's master and media playlists until it lists `variants` renditions and every
 * media playlist carries ENDLIST; returns the media playlists in master order.
 * @throws when that does not happen within `timeoutMs`.
 */
export async function waitForEndedPlaylists(httpUrl: string, manifestID: string, variants: number, timeoutMs: number): Promise<MediaPlaylist[]> {
  const deadline = Date.now() + timeoutMs;
  let lists: MediaPlaylist[] = [];
  while (Date.now() < deadline) {
    const master = await fetchMaster(`${httpUrl}/stream/${manifestID}.m3u8`);
    if (master && master.variants.length === variants) {
      lists = await Promise.all(master.variants.map((v) => fetchMedia(`${httpUrl}/stream/${v.uri}`)));
      if (lists.every((m) => m.endlist)) return lists;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${manifestID}: ${variants} ended playlists not seen within ${timeoutMs} ms (saw ${lists.length}, ended: ${lists.map((m) => m.endlist).join(',')})`);
}
