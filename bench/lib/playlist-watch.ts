/**
 * Watches HLS media playlists from the outside, as a player would: polls the playlist URL
 * and records when each segment URI was first listed. Works the same against mediagate and
 * nginx-rtmp, so both are timed by one observer.
 */
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'node:http';

export interface SeenSegment {
  uri: string;
  /** Index of the segment in order of appearance (0 = first listed). */
  index: number;
  /** performance.now() of the poll that first saw it (an upper bound on when it was listed). */
  firstSeenMs: number;
  /** Its #EXTINF duration, seconds. */
  durationS: number;
  /** Sum of the #EXTINF durations of the segments listed before it in this run, seconds. */
  startS: number;
}

export interface PlaylistWatch {
  readonly segments: readonly SeenSegment[];
  /** Whether #EXT-X-ENDLIST has been seen. */
  readonly ended: boolean;
  stop(): void;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls `url` every `intervalMs` (404 and connection errors count as "nothing yet"). Segments
 * are recorded in the order they first appear; the playlist's sliding window is fine as
 * long as it holds more than one poll's worth of new segments.
 * @param onSegment called once per newly listed segment.
 */
export function watchPlaylist(url: string, intervalMs: number, onSegment?: (s: SeenSegment) => void): PlaylistWatch {
  const segments: SeenSegment[] = [];
  const known = new Set<string>();
  let ended = false;
  let stopped = false;
  let nextStartS = 0;
  const poll = async (): Promise<void> => {
    while (!stopped) {
      const started = performance.now();
      try {
        const res = await get(url);
        const now = performance.now();
        if (res.status === 200) {
          const lines = res.body.split('\n');
          let duration = 0;
          for (const raw of lines) {
            const line = raw.trim();
            if (line.startsWith('#EXTINF:')) duration = Number.parseFloat(line.slice(8));
            else if (line === '#EXT-X-ENDLIST') ended = true;
            else if (line && !line.startsWith('#') && !known.has(line)) {
              known.add(line);
              const seg = { uri: line, index: segments.length, firstSeenMs: now, durationS: duration, startS: nextStartS };
              nextStartS += duration;
              segments.push(seg);
              onSegment?.(seg);
            }
          }
        }
      } catch { /* not up yet */ }
      const wait = intervalMs - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };
  void poll();
  return { segments, get ended() { return ended; }, stop: () => { stopped = true; } };
}
