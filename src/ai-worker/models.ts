/**
 * The models the reference AI worker serves: the ESRGAN "slim" super-resolution networks
 * shipped inside the npm package `@upscalerjs/esrgan-slim` (MIT; RDN architecture C1 D2 G4
 * G0 64, trained on DIV2K; TensorFlow.js layers models, ~0.9 MB of float32 weights each),
 * and how their files are read from disk. Nothing is fetched from a network.
 *
 * Model IDs name the scale (each side of the output is `scale` × the input's):
 *
 * | model_id | scale | package files |
 * |---|---|---|
 * | `esrgan-slim-x2` | 2 | `models/x2/model.json` + `group1-shard1of1.bin` |
 * | `esrgan-slim-x3` | 3 | `models/x3/...` |
 * | `esrgan-slim-x4` | 4 | `models/x4/...` |
 *
 * Alias: the gateway's default upscale model, `stabilityai/stable-diffusion-x4-upscaler`
 * (docs/wire-contract.md §7), is accepted as `esrgan-slim-x4` when the worker is configured with
 * `aliasDefaultModel` (on by default), so a plain `/upscale` without `model_id` works end to
 * end. The scale matches (×4) and so does the gateway's pricing, which counts upscale output
 * as 16 × the input pixels (src/ai/work-units.ts). The result is ESRGAN's, not Stable
 * Diffusion's; turn the alias off in a fleet that has real SD x4 upscalers.
 *
 * The package also ships `models/x8`; it is not served (64× the pixels out, and slower still
 * on CPU).
 */
import { readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_ID } from '../domain/pipelines.ts';

export type EsrganScale = 2 | 3 | 4;

export interface EsrganModel {
  readonly id: string;
  readonly scale: EsrganScale;
}

/** Every model this worker can serve, in registration order. */
export const ESRGAN_MODELS: readonly EsrganModel[] = [
  { id: 'esrgan-slim-x2', scale: 2 },
  { id: 'esrgan-slim-x3', scale: 3 },
  { id: 'esrgan-slim-x4', scale: 4 },
];

export const ESRGAN_MODEL_IDS: readonly string[] = ESRGAN_MODELS.map((m) => m.id);

/** The gateway's default upscale model ID, served as `esrgan-slim-x4` when aliased. */
export const DEFAULT_UPSCALE_ALIAS = DEFAULT_MODEL_ID.upscale;
export const DEFAULT_UPSCALE_ALIAS_TARGET = 'esrgan-slim-x4';

/** The model IDs a worker offers (served models, plus the alias when x4 is served and aliasing is on). */
export function offeredModelIDs(served: readonly string[], aliasDefaultModel: boolean): string[] {
  const ids = ESRGAN_MODEL_IDS.filter((id) => served.includes(id));
  if (aliasDefaultModel && ids.includes(DEFAULT_UPSCALE_ALIAS_TARGET)) ids.push(DEFAULT_UPSCALE_ALIAS);
  return ids;
}

/**
 * The model a request names (pure).
 * @param requested the request's `model_id`; `""`/absent means the default (x4 when served, else the first served)
 * @param served model IDs this worker serves (subset of ESRGAN_MODEL_IDS)
 * @returns the model, or undefined when this worker does not serve it
 */
export function resolveModel(requested: string | undefined, served: readonly string[], aliasDefaultModel: boolean): EsrganModel | undefined {
  let id = requested ?? '';
  if (id === '') id = served.includes(DEFAULT_UPSCALE_ALIAS_TARGET) ? DEFAULT_UPSCALE_ALIAS_TARGET : served[0] ?? '';
  else if (aliasDefaultModel && id === DEFAULT_UPSCALE_ALIAS) id = DEFAULT_UPSCALE_ALIAS_TARGET;
  if (!served.includes(id)) return undefined;
  return ESRGAN_MODELS.find((m) => m.id === id);
}

const PACKAGE_NAME = '@upscalerjs/esrgan-slim';

/**
 * The `models/` folder of the installed `@upscalerjs/esrgan-slim` package (its exports map
 * hides package.json, so this walks up from the resolved entry point).
 * @throws Error when the package is not installed.
 */
export function esrganModelsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.resolve(PACKAGE_NAME)));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME) return join(dir, 'models');
      } catch {
        // not the package's manifest; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package folder (run npm ci)`);
    dir = parent;
  }
}

/** One weight tensor of a layers model's manifest. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  quantization?: { scale?: number; min?: number; dtype: 'uint8' | 'uint16' | 'float16' };
}

/** What `tf.loadLayersModel` needs from an IOHandler (tfjs `io.ModelArtifacts`). */
export interface LayersModelArtifacts {
  modelTopology: object;
  weightSpecs: WeightSpec[];
  weightData: ArrayBuffer;
  format: string;
  generatedBy?: string;
  convertedBy?: string;
}

const BYTES_PER_ELEMENT: Partial<Record<WeightSpec['dtype'], number>> = { float32: 4, int32: 4, bool: 1 };

/**
 * Reads a TensorFlow.js layers model (model.json and its weight shards) from a folder on
 * disk, checking the manifest against the shards' sizes.
 * @param dir folder holding `model.json`, e.g. `<esrgan-slim>/models/x2`
 * @throws Error naming the file and the problem (missing, not a layers model, shard path
 *   outside the folder, weight bytes not matching the manifest).
 */
export async function readLayersModel(dir: string): Promise<LayersModelArtifacts> {
  const jsonPath = join(dir, 'model.json');
  let json: { format?: unknown; modelTopology?: unknown; weightsManifest?: unknown; generatedBy?: unknown; convertedBy?: unknown };
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as typeof json;
  } catch (err) {
    throw new Error(`cannot read ${jsonPath}: ${(err as Error).message}`);
  }
  if (json.format !== 'layers-model' || typeof json.modelTopology !== 'object' || json.modelTopology === null || !Array.isArray(json.weightsManifest)) {
    throw new Error(`${jsonPath} is not a TensorFlow.js layers model`);
  }
  const shards: Buffer[] = [];
  const weightSpecs: WeightSpec[] = [];
  for (const group of json.weightsManifest as { paths?: unknown; weights?: unknown }[]) {
    if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new Error(`${jsonPath}: malformed weightsManifest`);
    for (const path of group.paths) {
      if (typeof path !== 'string' || !/^[A-Za-z0-9._-]+$/.test(path) || path.startsWith('.')) throw new Error(`${jsonPath}: weight shard path ${JSON.stringify(path)} is not a plain file name`);
      shards.push(await readFile(join(dir, path)));
    }
    weightSpecs.push(...(group.weights as WeightSpec[]));
  }
  const data = Buffer.concat(shards);
  if (weightSpecs.every((w) => w.quantization === undefined)) {
    const expected = weightSpecs.reduce((sum, w) => sum + w.shape.reduce((n, d) => n * d, 1) * (BYTES_PER_ELEMENT[w.dtype] ?? Number.NaN), 0);
    if (expected !== data.length) throw new Error(`${jsonPath}: weight shards hold ${data.length} bytes, the manifest expects ${expected}`);
  }
  return {
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
    format: json.format,
    ...(typeof json.generatedBy === 'string' ? { generatedBy: json.generatedBy } : {}),
    ...(typeof json.convertedBy === 'string' ? { convertedBy: json.convertedBy } : {}),
  };
}
