/**
 * Real receivers for what mediagate restreams (issue 16's outputs), besides nginx-rtmp
 * (nginx-rtmp.ts) and a second gateway (gateway-process.ts): an SRT listener (ffmpeg in
 * listener mode writing what it receives to an MPEG-TS file), a TCP port that refuses
 * connections, ffprobe of what a receiver got, and the processes of a gateway's tree
 * (to find an output's ffmpeg and see it go).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';
import { stopChild } from './redis-server.ts';

const run = promisify(execFile);

/** A UDP port that was free a moment ago on 127.0.0.1 (bind port 0, read it, release it). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

export interface SrtListener {
  readonly port: number;
  /** `srt://127.0.0.1:<port>` (what a caller connects to; add `?streamid=…` as needed). */
  readonly url: string;
  /** The MPEG-TS file ffmpeg writes what it receives to (stream copy). */
  readonly file: string;
  /** Bytes written to `file` so far (0 before the first packet). */
  bytesReceived(): number;
  /** ffmpeg's stderr so far. */
  stderr(): string;
  /** Resolves with ffmpeg's exit code (it exits when the caller disconnects). */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * An SRT listener: `ffmpeg -i 'srt://127.0.0.1:P?mode=listener' -c copy -f mpegts <file>` on a
 * free UDP port. It accepts one caller and exits when that caller disconnects.
 * @param file where to write what it receives
 */
export async function startSrtListener(file: string, opts: { passphrase?: string } = {}): Promise<SrtListener> {
  const port = await freeUdpPort();
  const passphrase = opts.passphrase === undefined ? '' : `&passphrase=${opts.passphrase}`;
  const child: ChildProcess = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', `srt://127.0.0.1:${port}?mode=listener${passphrase}`, '-c', 'copy', '-f', 'mpegts', file],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run ffmpeg (${err.message}); install it with apt-get install -y ffmpeg`)));
    child.once('exit', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  // The listener binds its UDP port when ffmpeg opens the input: wait until the port shows in /proc/net/udp.
  const deadline = Date.now() + 10_000;
  while (!udpPortBound(port)) {
    if (child.exitCode !== null) throw new Error(`SRT listener ffmpeg exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`SRT listener did not bind 127.0.0.1:${port} within 10 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port, url: `srt://127.0.0.1:${port}`, file, exited,
    bytesReceived: () => (existsSync(file) ? statSync(file).size : 0),
    stderr: () => stderr,
    stop: () => stopChild(child, 3000),
  };
}

/** Whether some socket is bound to UDP `port` (from /proc/net/udp, IPv4). */
function udpPortBound(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1).some((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`));
}

/**
 * A TCP port on 127.0.0.1 that refuses connections: a port that was free a moment ago and that
 * nothing listens on (a connect gets RST, "Connection refused"). Checked once before returning.
 */
export async function refusingPort(): Promise<number> {
  const port = await freePort();
  const refused = await new Promise<boolean>((resolve) => {
    execFile('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], (err) => resolve(err !== null));
  });
  if (!refused) throw new Error(`port ${port} accepted a connection`);
  return port;
}

export interface StreamProbe {
  video?: { codec: string; width: number; height: number; /** r_frame_rate as a number, e.g. 24 */ fps: number; avgFps: number };
  audio?: { codec: string; sampleRate: number; channels: number };
  /** Container duration, seconds (0 when ffprobe gives none). */
  durationS: number;
  /** Video packets counted (`-count_packets`). */
  videoPackets: number;
}

const rate = (r: string | undefined): number => {
  const [num, den] = (r ?? '0/1').split('/').map(Number) as [number, number];
  return den ? num / den : 0;
};

/**
 * ffprobe of a file or URL (what a receiver got): video codec, size and frame rate, audio codec,
 * duration and the number of video packets.
 * @throws when ffprobe fails (no such file, nothing decodable)
 */
export async function probeStream(input: string): Promise<StreamProbe> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries',
    'stream=codec_type,codec_name,width,height,r_frame_rate,avg_frame_rate,sample_rate,channels,nb_read_packets:format=duration', '-of', 'json', input],
  { maxBuffer: 16 * 1024 * 1024, timeout: 30_000 });
  const json = JSON.parse(stdout) as { streams: Record<string, string | number>[]; format?: { duration?: string } };
  const v = json.streams.find((s) => s['codec_type'] === 'video');
  const a = json.streams.find((s) => s['codec_type'] === 'audio');
  return {
    ...(v ? { video: { codec: String(v['codec_name']), width: Number(v['width']), height: Number(v['height']), fps: rate(String(v['r_frame_rate'])), avgFps: rate(String(v['avg_frame_rate'])) } } : {}),
    ...(a ? { audio: { codec: String(a['codec_name']), sampleRate: Number(a['sample_rate']), channels: Number(a['channels']) } } : {}),
    durationS: Number(json.format?.duration ?? 0) || 0,
    videoPackets: Number(v?.['nb_read_packets'] ?? 0),
  };
}

/** One process of a tree: pid, command name, full command line (NUL separators as spaces), state letter. */
export interface TreeProcess { pid: number; comm: string; cmdline: string; state: string }

function readProc(pid: number): (TreeProcess & { ppid: number }) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { pid, ppid: Number(rest[1]), comm: stat.slice(stat.indexOf('(') + 1, close), cmdline, state: rest[0]! };
  } catch {
    return undefined;
  }
}

/** Every live descendant of `pid` (not `pid` itself), from /proc. */
export function descendants(pid: number): TreeProcess[] {
  const all = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map((n) => readProc(Number(n))).filter((p) => p !== undefined);
  const out: TreeProcess[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const parent = stack.pop()!;
    for (const p of all) {
      if (p.ppid !== parent) continue;
      out.push({ pid: p.pid, comm: p.comm, cmdline: p.cmdline, state: p.state });
      stack.push(p.pid);
    }
  }
  return out;
}

/** The ffmpeg processes (not zombies) under `pid` now. */
export function ffmpegsUnder(pid: number): TreeProcess[] {
  return descendants(pid).filter((p) => p.comm === 'ffmpeg' && p.state !== 'Z');
}

/**
 * The ffmpeg processes started under `pid` since `before` (an {@link ffmpegsUnder} snapshot) that
 * are still there 600 ms later: an output's long-running ffmpeg, not a short-lived one (a
 * thumbnail's, a probe).
 */
export async function newLongLivedFfmpegs(pid: number, before: readonly TreeProcess[]): Promise<TreeProcess[]> {
  const known = new Set(before.map((p) => p.pid));
  const first = ffmpegsUnder(pid).filter((p) => !known.has(p.pid));
  await new Promise((r) => setTimeout(r, 600));
  const still = new Set(ffmpegsUnder(pid).map((p) => p.pid));
  return first.filter((p) => still.has(p.pid));
}

/** Whether `pid` has exited (no /proc entry, or a zombie not yet reaped by its parent). */
export function processGone(pid: number): boolean {
  const p = readProc(pid);
  return p === undefined || p.state === 'Z';
}

/** Command lines of every process on the machine that contain `text` (e.g. a secret that must not show in `ps`). */
export function commandLinesContaining(text: string): string[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map((n) => readProc(Number(n))).filter((p) => p !== undefined && p.cmdline.includes(text)).map((p) => `${p!.pid} ${p!.cmdline}`);
}
