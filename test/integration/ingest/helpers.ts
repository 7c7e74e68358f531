/**
 * Shared helpers of the ingest integration tests: real ffmpeg/ffprobe, free ports,
 * test clips derived from the Big Buck Bunny clip in test/fixtures, a capturing pino logger.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../../src/log/logger.ts';
import { REDACT_PATHS } from '../../../src/log/logger.ts';
import { RtmpServer } from '../../../src/ingest/rtmp/rtmp-server.ts';
import type { RtmpServerOptions } from '../../../src/ingest/rtmp/rtmp-options.ts';
import { CLIP } from '../../helpers/media.ts';

export const SOURCE_CLIP = CLIP;

/** Throws (the test fails, never skips) when ffmpeg/ffprobe or the test clip are missing. */
export function requireMediaTools(): void {
  for (const tool of ['ffmpeg', 'ffprobe']) {
    const r = spawnSync(tool, ['-version'], { stdio: 'ignore' });
    if (r.error || r.status !== 0) throw new Error(`${tool} is required for the ingest integration tests`);
  }
  if (!existsSync(SOURCE_CLIP)) throw new Error(`test clip missing: ${SOURCE_CLIP}`);
}

/** A port that was free a moment ago (bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `mediagate-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs ffmpeg to completion; rejects with its stderr tail on failure. */
function runFfmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err.slice(-500)}`))));
  });
}

/** Derives a clip once per machine into os.tmpdir() (atomic rename: test files run in parallel processes). */
async function derivedClip(name: string, args: string[]): Promise<string> {
  const out = path.join(os.tmpdir(), `mediagate-test-${name}.mp4`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp.mp4`;
  await runFfmpeg(['-i', SOURCE_CLIP, ...args, tmp]);
  renameSync(tmp, out);
  return out;
}

/** 8 s of the clip re-encoded with a 2 s GOP (keyframes at 0, 2, 4, 6 s), audio copied. */
export function gop2Clip(): Promise<string> {
  return derivedClip('bbb-8s-gop2', ['-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '48', '-keyint_min', '48', '-sc_threshold', '0', '-c:a', 'copy']);
}

export interface Publisher {
  readonly child: ChildProcess;
  /** Resolves when ffmpeg exited, with the wall time since spawn. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
  kill(): void;
}

/** `ffmpeg -re -i <file> -c copy -f flv rtmp://127.0.0.1:<port>/<app>/<name>` (what OBS sends, as a process). */
export function publish(port: number, name: string, file: string, opts: { app?: string; inputArgs?: string[]; outputArgs?: string[] } = {}): Publisher {
  const url = `rtmp://127.0.0.1:${port}/${opts.app ?? 'live'}/${name}`;
  const child = spawn('ffmpeg', [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-re', ...(opts.inputArgs ?? []), '-i', file,
    ...(opts.outputArgs ?? []), '-c', 'copy', '-f', 'flv', url,
  ], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, atMs: Date.now() }));
  });
  return { child, exited, kill: () => child.kill('SIGKILL') };
}

/** First PTS (seconds) per stream type in a media file, via ffprobe. */
export function firstPts(file: string): { video?: number; audio?: number } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,start_time', '-of', 'json', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffprobe failed on ${file}: ${r.stderr}`);
  const streams = (JSON.parse(r.stdout) as { streams: { codec_type: string; start_time?: string }[] }).streams;
  const out: { video?: number; audio?: number } = {};
  for (const s of streams) {
    if ((s.codec_type === 'video' || s.codec_type === 'audio') && s.start_time !== undefined && out[s.codec_type] === undefined) {
      out[s.codec_type] = Number(s.start_time);
    }
  }
  return out;
}

/** Stream types present in a media file. */
export function streamTypes(file: string): string[] {
  // JSON: with csv, MPEG-TS streams are printed twice (program section + streams section)
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'json', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffprobe failed on ${file}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { streams: { codec_type: string }[] }).streams.map((s) => s.codec_type);
}

/**
 * A pino logger at trace that keeps every line (as text), with the app's redaction config.
 * Set MEDIAGATE_TEST_LOG=<file> to also append the lines to a file for debugging.
 */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const copyTo = process.env['MEDIAGATE_TEST_LOG'];
  const logger = pino({ level: 'trace', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, {
    write: (s: string) => {
      lines.push(s);
      if (copyTo) appendFileSync(copyTo, s);
    },
  });
  return { logger, lines };
}

export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a process with that pid still exists. */
export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A random, valid, distinctive stream key (so a leak into logs is unmistakable). */
export function secretKey(tag: string): string {
  return `${tag}-SeCrEt${Math.random().toString(36).slice(2, 10)}`;
}

/** A running {@link RtmpServer} of one test file, from {@link useRtmpServer}. */
export interface RtmpServerFixture {
  /** The server; set once the file's `before` hook has run. */
  readonly server: RtmpServer;
  /** Its port on 127.0.0.1; set once the file's `before` hook has run. */
  readonly port: number;
  /** The file's temporary directory (node-media-server's store is `<dir>/nms-store`); removed by `after`. */
  readonly dir: string;
}

/**
 * Registers `before`/`after` hooks that start one RtmpServer on a free port for the test file
 * and close it (and remove its temporary directory) at the end. Media tools are required first,
 * so a machine without ffmpeg fails the file instead of skipping it.
 *
 * @param prefix names the temporary directory (`mediagate-<prefix>-*` in the OS temp dir)
 * @param options the server's options except port and store path (logger, publish handlers, timeouts)
 */
export function useRtmpServer(prefix: string, options: Omit<RtmpServerOptions, 'port' | 'storePath'>): RtmpServerFixture {
  const dir = tempDir(prefix);
  let server: RtmpServer | undefined;
  let port = 0;
  before(async () => {
    requireMediaTools();
    port = await freePort();
    server = new RtmpServer({ ...options, port, storePath: path.join(dir, 'nms-store') });
    await server.start();
  });
  after(async () => {
    await server?.close();
    removeDir(dir);
  });
  return {
    get server(): RtmpServer {
      if (!server) throw new Error('the RTMP server starts in the before hook');
      return server;
    },
    get port(): number {
      return port;
    },
    dir,
  };
}
