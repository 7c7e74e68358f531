/**
 * One inference thread (node:worker_threads): TensorFlow.js on its WebAssembly backend
 * (XNNPACK, SIMD, one thread) running the ESRGAN slim layers models, one job at a time.
 * Started by InferencePool; never imported by the main thread.
 *
 * Protocol (structured-clone messages, see {@link ThreadRequest} / {@link ThreadReply}):
 * `load` → `loaded` | `load-failed`; then `upscale` → `upscaled` | `upscale-failed`.
 * A job's `abort` flag (Int32Array over a SharedArrayBuffer, set to 1 by the main thread)
 * is checked before each tile, so an abandoned request stops within one tile's time.
 */
import { parentPort } from 'node:worker_threads';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readLayersModel, type EsrganScale, type LayersModelArtifacts } from './models.ts';
import { planTiles, upscaleByTiles, TilingAborted } from './tiling.ts';

export type ThreadRequest =
  | { readonly type: 'load'; readonly modelsDir: string; readonly scales: readonly EsrganScale[] }
  | {
    readonly type: 'upscale';
    readonly id: number;
    readonly scale: EsrganScale;
    readonly width: number;
    readonly height: number;
    /** width × height × 3 bytes (transferred). */
    readonly rgb: ArrayBuffer;
    readonly tileSize: number;
    readonly tileOverlap: number;
    /** Int32Array(1) over a SharedArrayBuffer: 1 = stop. */
    readonly abort: SharedArrayBuffer;
  };

export type ThreadReply =
  | { readonly type: 'loaded'; readonly loadMs: number; readonly backend: string }
  | { readonly type: 'load-failed'; readonly message: string }
  | { readonly type: 'upscaled'; readonly id: number; readonly rgb: ArrayBuffer; readonly tiles: number; readonly inferMs: number; readonly wasmHeapBytes: number }
  | { readonly type: 'upscale-failed'; readonly id: number; readonly message: string; readonly aborted: boolean };

const port = parentPort;
if (port === null) throw new Error('inference-thread.ts runs only as a worker thread');

const models = new Map<EsrganScale, tf.LayersModel>();

function reply(message: ThreadReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

async function load(modelsDir: string, scales: readonly EsrganScale[]): Promise<void> {
  const started = performance.now();
  try {
    if (!(await tf.setBackend('wasm'))) throw new Error('the TensorFlow.js wasm backend did not initialize');
    await tf.ready();
    for (const scale of scales) {
      const artifacts: LayersModelArtifacts = await readLayersModel(join(modelsDir, `x${scale}`));
      const model = await tf.loadLayersModel({ load: async () => artifacts });
      // One tiny pass compiles the kernels so the first request does not pay for it.
      tf.tidy(() => (model.predict(tf.zeros([1, 8, 8, 3])) as tf.Tensor).dataSync());
      models.set(scale, model);
    }
    reply({ type: 'loaded', loadMs: Math.round(performance.now() - started), backend: tf.getBackend() });
  } catch (err) {
    reply({ type: 'load-failed', message: err instanceof Error ? err.message : String(err) });
  }
}

function upscale(job: Extract<ThreadRequest, { type: 'upscale' }>): void {
  const started = performance.now();
  const abort = new Int32Array(job.abort);
  try {
    const model = models.get(job.scale);
    if (model === undefined) throw new Error(`model x${job.scale} is not loaded`);
    const tiles = planTiles(job.width, job.height, job.tileSize, job.tileOverlap);
    const run = (input: Float32Array, width: number, height: number): Float32Array =>
      tf.tidy(() => (model.predict(tf.tensor4d(input, [1, height, width, 3])) as tf.Tensor).dataSync() as Float32Array);
    const out = upscaleByTiles(new Uint8Array(job.rgb), job.width, job.height, job.scale, tiles, run, () => Atomics.load(abort, 0) === 1);
    const buffer = out.buffer as ArrayBuffer;
    reply({
      type: 'upscaled', id: job.id, rgb: buffer, tiles: tiles.length, inferMs: Math.round(performance.now() - started),
      wasmHeapBytes: wasmHeapBytes(),
    }, [buffer]);
  } catch (err) {
    reply({ type: 'upscale-failed', id: job.id, message: err instanceof Error ? err.message : String(err), aborted: err instanceof TilingAborted });
  }
}

/** Size of the wasm backend's linear memory: it grows to the largest tile's needs and never shrinks. */
function wasmHeapBytes(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength ?? 0;
}

port.on('message', (message: ThreadRequest) => {
  if (message.type === 'load') void load(message.modelsDir, message.scales);
  else upscale(message);
});
