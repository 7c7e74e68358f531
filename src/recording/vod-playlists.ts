/**
 * The playlists of a finished recording (pure): one VOD media playlist per rendition
 * (`EXT-X-PLAYLIST-TYPE:VOD`, every kept segment from the first, `EXT-X-ENDLIST`; RFC 8216
 * §4.3.3.5) and a master listing them, rendered by domain/playlist-writer.ts. Segment URIs are
 * relative to the session's folder: `<rendition>/<seq>.ts`, the object key below
 * `<manifestID>/<session>/` (domain/segment.ts), so the same files serve the store's public
 * URL and the gateway's `/recordings/<manifestID>/<session>/` routes (docs/wire-contract.md).
 */
import { renderMasterPlaylist, renderMediaPlaylist, type VariantStream } from '../domain/playlist-writer.ts';
import type { KeptSegment, RecordedRendition } from './recording-store.ts';

/** The object a recording's playlists are written to, relative to `<manifestID>/<session>/`. */
export const MASTER_NAME = 'index.m3u8';

/** A recording's playlists: file name (relative to the session folder) → text. */
export interface VodPlaylists {
  readonly files: ReadonlyMap<string, string>;
  /** Renditions that have at least one segment, in master order. */
  readonly renditions: readonly RecordedRendition[];
  /** Sum of the first rendition's EXTINF, ms (the recording's duration). */
  readonly durationMs: number;
}

/**
 * Renders the playlists of a recording.
 * @param order rendition names in master order (`source` first); renditions with no kept
 *   segment are left out, as are kept renditions not named here (they are appended in name order).
 * @param segments kept segments per rendition, in seq order.
 * @param minTargetDurationS floor of EXT-X-TARGETDURATION (the segment target, s).
 * @returns `undefined` when no rendition has a segment (nothing was recorded).
 */
export function renderVodPlaylists(order: readonly string[], segments: ReadonlyMap<string, readonly KeptSegment[]>, minTargetDurationS: number): VodPlaylists | undefined {
  const names = [...order, ...[...segments.keys()].filter((r) => !order.includes(r)).sort()]
    .filter((r) => (segments.get(r)?.length ?? 0) > 0);
  if (names.length === 0) return undefined;
  const files = new Map<string, string>();
  const renditions: RecordedRendition[] = [];
  const variants: VariantStream[] = [];
  for (const name of names) {
    const list = segments.get(name)!;
    files.set(`${name}.m3u8`, renderMediaPlaylist({
      mediaSequence: 0, discontinuitySequence: 0, ended: true, playlistType: 'VOD', minTargetDurationS,
      segments: list.map((s, i) => ({
        uri: `${name}/${s.seq}.ts`, durationMs: s.durationMs,
        // A skipped seq (failed or lost) or a jump the live playlist marked.
        discontinuity: i > 0 && (s.discontinuity || s.seq !== list[i - 1]!.seq + 1),
      })),
    }));
    const rendition = summarize(name, list);
    renditions.push(rendition);
    variants.push({
      uri: `${name}.m3u8`, name, bandwidthBps: Math.max(rendition.peakBps, 1), averageBandwidthBps: Math.max(rendition.averageBps, 1),
      ...(rendition.width > 0 && rendition.height > 0 ? { width: rendition.width, height: rendition.height } : {}),
      ...(rendition.codecs ? { codecs: rendition.codecs } : {}),
      ...(rendition.frameRate > 0 ? { frameRate: rendition.frameRate } : {}),
    });
  }
  files.set(MASTER_NAME, renderMasterPlaylist(variants));
  return { files, renditions, durationMs: renditions[0]!.durationMs };
}

/** Segment count, duration, last measured picture and codecs, peak and average bit rate of one rendition. */
function summarize(name: string, list: readonly KeptSegment[]): RecordedRendition {
  let durationMs = 0;
  let bytes = 0;
  let peakBps = 0;
  for (const s of list) {
    durationMs += s.durationMs;
    bytes += s.bytes;
    if (s.durationMs > 0) peakBps = Math.max(peakBps, Math.floor((s.bytes * 8000) / s.durationMs));
  }
  const last = list[list.length - 1]!;
  return {
    name, segments: list.length, durationMs, width: last.width, height: last.height, codecs: last.codecs, frameRate: last.frameRate,
    peakBps, averageBps: durationMs > 0 ? Math.min(Math.floor((bytes * 8000) / durationMs), peakBps) : 0,
  };
}

/**
 * The segment URIs of a VOD media playlist written by {@link renderVodPlaylists}, in order
 * (every non-empty line that is not a tag).
 */
export function segmentUris(playlist: string): string[] {
  return playlist.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

/**
 * A session's master playlist served from the manifest's folder (the latest recording at
 * `/recordings/<manifestID>/index.m3u8`): each URI line gets the `<session>/` prefix.
 */
export function masterForLatest(master: string, session: string): string {
  return master.split('\n').map((line) => (line === '' || line.startsWith('#') ? line : `${session}/${line}`)).join('\n');
}

/** The thumbnail index of a recording, relative to `<manifestID>/<session>/`. */
export const THUMBNAILS_VTT_NAME = 'thumbnails.vtt';

/**
 * The WebVTT thumbnail index of a recording (the "thumbnail track" players such as Video.js,
 * JW Player and Shaka read for seek previews): one cue per source segment, from the segment's
 * start to its end on the recording's timeline (the sum of the `#EXTINF` before it in the
 * source's VOD playlist, which {@link renderVodPlaylists} wrote from the segment index), whose
 * payload is the segment's thumbnail `thumbnails/<seq>.jpg` (relative to the VTT file; one whole
 * image per cue, no `#xywh` sprite). Timestamps are `hh:mm:ss.mmm` (W3C WebVTT §4.2).
 * @param sourcePlaylist the `source.m3u8` text of the recording
 */
export function thumbnailsVtt(sourcePlaylist: string): string {
  const lines = ['WEBVTT', ''];
  let startMs = 0;
  let durationMs: number | undefined;
  for (const line of sourcePlaylist.split('\n')) {
    const extinf = /^#EXTINF:([0-9.]+)/.exec(line);
    if (extinf) {
      durationMs = Math.round(Number(extinf[1]) * 1000);
      continue;
    }
    const seq = /^[^#].*\/(\d+)\.ts$/.exec(line)?.[1];
    if (seq === undefined || durationMs === undefined) continue;
    lines.push(`${vttTime(startMs)} --> ${vttTime(startMs + durationMs)}`, `thumbnails/${seq}.jpg`, '');
    startMs += durationMs;
    durationMs = undefined;
  }
  return lines.join('\n');
}

/** `hh:mm:ss.mmm` of a time in ms (WebVTT timestamps). */
function vttTime(ms: number): string {
  const pad = (n: number, width: number): string => String(n).padStart(width, '0');
  return `${pad(Math.floor(ms / 3_600_000), 2)}:${pad(Math.floor(ms / 60_000) % 60, 2)}:${pad(Math.floor(ms / 1000) % 60, 2)}.${pad(ms % 1000, 3)}`;
}
