/**
 * Pieces of the stream ownership scenarios (a second publisher refused while another gateway
 * holds the manifest ID; a publisher reconnecting to another gateway after its gateway died),
 * shared by the loopback test (test/integration/fault/stream-takeover.test.ts) and any harness
 * that runs the same scenarios across hosts: each takes URLs and processes, nothing loopback-bound.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { publish, type MediagateProcess } from './gateway-process.ts';
import { fetchText } from './hls.ts';

/** One RTMP publisher (ffmpeg) as `publish()` gives it. */
export type Publisher = ReturnType<typeof publish>;

/**
 * Publishes `file` to `rtmpUrl` and waits for the gateway to refuse it: resolves with the
 * publisher's exit code (non-zero when refused), or `undefined` when it was still publishing
 * after `timeoutMs` (then it is killed).
 */
export async function publishExpectingRefusal(file: string, rtmpUrl: string, timeoutMs = 15_000): Promise<number | null | undefined> {
  const p = publish(file, rtmpUrl);
  let timedOut = false;
  const killer = setTimeout(() => { timedOut = true; p.child.kill('SIGKILL'); }, timeoutMs);
  const code = await p.exited;
  clearTimeout(killer);
  return timedOut ? undefined : code;
}

/**
 * An encoder's reconnect loop: publishes `file` to `rtmpUrl` again and again (a refused try
 * ends within a second) until `accepted()` is true (e.g. the gateway logged the stream), up to
 * `timeoutMs`. Each try waits `retryDelayMs` after a refusal, as OBS waits between tries.
 * @returns the publisher that got in, how many tries it took, and when it started (epoch ms)
 * @throws Error when no try was accepted in time
 */
export async function publishUntilAccepted(file: string, rtmpUrl: string, accepted: () => boolean,
  options: { timeoutMs?: number; retryDelayMs?: number } = {}): Promise<{ publisher: Publisher; tries: number; startedAtMs: number }> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (let tries = 1; Date.now() < deadline; tries++) {
    const startedAtMs = Date.now();
    const publisher = publish(file, rtmpUrl);
    let exited = false;
    void publisher.exited.then(() => { exited = true; }, () => { exited = true; });
    while (!exited && !accepted() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (accepted() && !exited) return { publisher, tries, startedAtMs };
    publisher.child.kill('SIGKILL');
    await publisher.exited.catch(() => undefined);
    await new Promise((r) => setTimeout(r, options.retryDelayMs ?? 1000));
  }
  throw new Error(`no publish to ${rtmpUrl.replace(/\/live\/.*/, '/live/<key>')} accepted within the deadline`);
}

/** One media playlist as raw lines: segment seqs in order and which of them follow EXT-X-DISCONTINUITY. */
export interface PlaylistLines {
  readonly mediaSequence: number;
  readonly seqs: number[];
  /** Seqs listed right after an EXT-X-DISCONTINUITY tag. */
  readonly discontinuityBefore: number[];
  readonly endlist: boolean;
}

/** Fetches a media playlist and reads its seqs (from `<seq>.ts` URIs) and discontinuities. */
export async function readPlaylist(url: string): Promise<PlaylistLines> {
  const { status, text } = await fetchText(url);
  if (status !== 200) throw new Error(`${url}: ${status}`);
  const seqs: number[] = [];
  const discontinuityBefore: number[] = [];
  let disc = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-DISCONTINUITY') && !line.startsWith('#EXT-X-DISCONTINUITY-SEQUENCE')) disc = true;
    const m = /(\d+)\.ts(\?.*)?$/.exec(line);
    if (m && !line.startsWith('#')) {
      const seq = Number(m[1]);
      seqs.push(seq);
      if (disc) discontinuityBefore.push(seq);
      disc = false;
    }
  }
  const ms = /#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text);
  return { mediaSequence: ms ? Number(ms[1]) : 0, seqs, discontinuityBefore, endlist: text.includes('#EXT-X-ENDLIST') };
}

/**
 * Polls a media playlist every 200 ms until `until(playlist)` holds.
 * @throws Error naming what was last seen (and the process's last log lines) after `timeoutMs`
 */
export async function pollPlaylist(url: string, until: (p: PlaylistLines) => boolean, timeoutMs: number, proc?: MediagateProcess): Promise<PlaylistLines> {
  const deadline = Date.now() + timeoutMs;
  let last: PlaylistLines | undefined;
  for (;;) {
    try { last = await readPlaylist(url); } catch { /* not there yet */ }
    if (last && until(last)) return last;
    if (Date.now() > deadline) throw new Error(`${url}: condition not met; last ${JSON.stringify(last)}\n${proc?.lines.slice(-15).join('\n') ?? ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The session directories of `manifestID` in a filesystem object store (`storage.dir`). */
export function sessionDirs(storageDir: string, manifestID: string): string[] {
  try {
    return readdirSync(join(storageDir, manifestID));
  } catch {
    return [];
  }
}
