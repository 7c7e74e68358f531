/**
 * Upscale throughput and memory of the reference AI worker on this machine.
 *
 * Each run starts a real worker process (`cmd/ai-worker.ts`, port 0, JSON logs) and sends
 * real frames of the test/fixtures clip over HTTP, like the gateway does:
 *   (a) per model (x2, x3, x4), 1 slot, default tiles: `--reps` sequential upscales of a
 *       WxH frame after one small warm-up request; megapixels per second *in* = input
 *       pixels / HTTP round-trip time (decode + inference + PNG encode + base64), and the
 *       same for the inference alone (the worker's own `inferMs`);
 *   (b) x2 with 2 slots (one inference thread per core) and 2 requests at once: aggregate;
 *   (c) x4 with tile sizes 96 / 192 / 384 on a smaller frame: memory against speed.
 * Memory: the worker process's resident-set high-water mark (VmHWM in /proc/<pid>/status),
 * once after the models loaded and once at the end of the run.
 *
 * Usage: node --import tsx bench/upscale.ts [--size 640x360] [--reps 2] [--sweep-size 480x270]
 *          [--models esrgan-slim-x2,esrgan-slim-x3,esrgan-slim-x4] [--runs a,b,c]
 * Results: a Markdown table on stdout, JSON in bench/results/.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import sharp from 'sharp';
import { CLIP } from '../test/helpers/media.ts';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '640x360' }, reps: { type: 'string', default: '2' }, 'sweep-size': { type: 'string', default: '480x270' },
    models: { type: 'string', default: 'esrgan-slim-x2,esrgan-slim-x3,esrgan-slim-x4' }, runs: { type: 'string', default: 'a,b,c' },
  },
});
const runs = new Set(values.runs!.split(','));
const [width, height] = values.size!.split('x').map(Number) as [number, number];
const [sweepWidth, sweepHeight] = values['sweep-size']!.split('x').map(Number) as [number, number];
const reps = Number(values.reps);

async function frame(w: number, h: number, atSeconds = 20): Promise<Buffer> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-ss', String(atSeconds), '-i', CLIP, '-frames:v', '1',
    '-vf', `scale=${w}:${h}:flags=lanczos`, '-f', 'image2pipe', '-c:v', 'png', '-'], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

interface WorkerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** `upscale done` log lines, in order. */
  readonly done: { inferMs: number; totalMs: number; tiles: number }[];
}

async function startWorker(args: string[]): Promise<WorkerProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MEDIAGATE_AI_WORKER_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'cmd/ai-worker.ts', '--port', '0', '--log-format', 'json', '--max-input-pixels', String(4096 * 4096), ...args], {
    cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const done: WorkerProcess['done'] = [];
  let resolveUrl!: (url: string) => void;
  const urlKnown = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: { msg?: string; url?: string; inferMs?: number; totalMs?: number; tiles?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if (entry.msg === 'AI worker listening' && entry.url) resolveUrl(entry.url);
    if (entry.msg === 'upscale done') done.push({ inferMs: entry.inferMs!, totalMs: entry.totalMs!, tiles: entry.tiles! });
  });
  const url = await urlKnown;
  for (const deadline = Date.now() + 30_000; ;) {
    const status = await fetch(`${url}/health`).then(async (r) => ((await r.json()) as { status: string }).status, () => 'DOWN');
    if (status === 'IDLE') break;
    if (status === 'ERROR' || Date.now() > deadline) throw new Error(`worker health ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url, done };
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    w.child.once('exit', () => resolve());
    w.child.kill('SIGTERM');
  });
}

/** Resident-set high-water mark of a process, MiB (Linux). */
function peakRssMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function upscale(url: string, png: Buffer, modelID: string): Promise<number> {
  const form = new FormData();
  form.append('prompt', '');
  form.append('model_id', modelID);
  form.append('image', new Blob([png], { type: 'image/png' }), 'frame.png');
  const started = performance.now();
  const res = await fetch(`${url}/upscale`, { method: 'POST', body: form });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`upscale answered ${res.status}: ${body.slice(0, 200)}`);
  return performance.now() - started;
}

interface Row {
  run: string; model: string; slots: number; tileSize: number; input: string; requests: number;
  wallMs: number; mpPerS: number; inferMpPerS: number; tiles: number; rssAfterLoadMiB: number; rssPeakMiB: number;
}
const rows: Row[] = [];
const started = performance.now();
const loadAtStart = loadavg()[0]!;
const big = await frame(width, height);
const sweep = runs.has('c') ? await frame(sweepWidth, sweepHeight) : Buffer.alloc(0);
const warm = await frame(64, 36);

async function measure(runName: string, model: string, slots: number, tileSize: number, png: Buffer, w: number, h: number, count: number, parallel: number): Promise<void> {
  const worker = await startWorker(['--models', model, '--capacity', String(slots), '--tile-size', String(tileSize), '--alias-default-model', 'false']);
  try {
    const rssAfterLoadMiB = peakRssMiB(worker.child.pid!);
    await upscale(worker.url, warm, model);
    const t0 = performance.now();
    for (let i = 0; i < count; i += parallel) {
      await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, () => upscale(worker.url, png, model)));
    }
    const wallMs = performance.now() - t0;
    // The worker logs after answering: wait for every line, then drop the warm-up's.
    for (const deadline = Date.now() + 5000; worker.done.length < count + 1 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    const measured = worker.done.slice(1);
    if (measured.length !== count) throw new Error(`expected ${count} upscale log lines, got ${measured.length}`);
    const megapixels = (w * h * count) / 1e6;
    const inferMs = measured.reduce((s, d) => s + d.inferMs, 0);
    rows.push({
      run: runName, model, slots, tileSize, input: `${w}x${h}`, requests: count, wallMs: Math.round(wallMs),
      mpPerS: megapixels / (wallMs / 1000),
      // Inference alone, per slot, times the slots that ran at once.
      inferMpPerS: (megapixels / (inferMs / 1000)) * parallel,
      tiles: measured[0]!.tiles, rssAfterLoadMiB, rssPeakMiB: peakRssMiB(worker.child.pid!),
    });
    const r = rows[rows.length - 1]!;
    process.stderr.write(`${r.run} ${r.model} slots=${r.slots} tile=${r.tileSize} ${r.input}: ${r.mpPerS.toFixed(3)} MP/s in (inference ${r.inferMpPerS.toFixed(3)}), peak RSS ${r.rssPeakMiB.toFixed(0)} MiB\n`);
  } finally {
    await stopWorker(worker);
  }
}

if (runs.has('a')) for (const model of values.models!.split(',')) await measure('(a) per model', model, 1, 192, big, width, height, reps, 1);
if (runs.has('b')) await measure('(b) 2 slots, 2 at once', 'esrgan-slim-x2', 2, 192, big, width, height, 2, 2);
if (runs.has('c')) for (const tileSize of [96, 192, 384]) await measure('(c) tile size', 'esrgan-slim-x4', 1, tileSize, sweep, sweepWidth, sweepHeight, 1, 1);

const versions = {
  node: process.version,
  tfjs: (JSON.parse(readFileSync(join(root, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8')) as { version: string }).version,
  tfjsBackendWasm: (JSON.parse(readFileSync(join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/package.json'), 'utf8')) as { version: string }).version,
  esrganSlim: (JSON.parse(readFileSync(join(root, 'node_modules/@upscalerjs/esrgan-slim/package.json'), 'utf8')) as { version: string }).version,
  sharp: sharp.versions.sharp, vips: sharp.versions.vips,
};
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
console.log(`\nRun on ${new Date().toISOString().slice(0, 10)}, ${machine}, Node ${versions.node}, tfjs ${versions.tfjs} + tfjs-backend-wasm ${versions.tfjsBackendWasm}, @upscalerjs/esrgan-slim ${versions.esrganSlim}, sharp ${versions.sharp} (libvips ${versions.vips}); ${((performance.now() - started) / 1000).toFixed(0)} s in all; 1-min load average ${loadAtStart.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after:\n`);
console.log('| run | model | slots | tile | input | requests | wall s | MP/s in (HTTP) | MP/s in (inference) | tiles | RSS after load MiB | RSS peak MiB |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.run} | ${r.model} | ${r.slots} | ${r.tileSize} | ${r.input} | ${r.requests} | ${(r.wallMs / 1000).toFixed(2)} | ${r.mpPerS.toFixed(3)} | ${r.inferMpPerS.toFixed(3)} | ${r.tiles} | ${r.rssAfterLoadMiB.toFixed(0)} | ${r.rssPeakMiB.toFixed(0)} |`);
}
mkdirSync(join(root, 'bench/results'), { recursive: true });
const out = join(root, 'bench/results', `upscale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ machine, versions, width, height, reps, loadAverage: { before: loadAtStart, after: loadavg()[0] }, rows }, null, 2));
console.log(`\nJSON: ${out}`);
