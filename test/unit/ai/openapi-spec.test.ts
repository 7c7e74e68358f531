/**
 * The OpenAPI specs (openapi/ai.yaml, openapi/control.yaml) against the code: one POST
 * path per pipeline with the right encoding and default model, the shared error shape, and the specs loading and validating in express-openapi-validator
 * configured as the AI routes need it (multipart coerced, JSON strict).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { OpenAPIFramework } from 'express-openapi-validator/dist/framework/index.js';
import { parse } from 'yaml';
import { DEFAULT_MODEL_ID, MULTIPART_FILE_FIELD, PIPELINES, type Pipeline } from '../../../src/domain/pipelines.ts';

type Json = Record<string, any>;


const AI_SPEC = fileURLToPath(new URL('../../../openapi/ai.yaml', import.meta.url));
const CONTROL_SPEC = fileURLToPath(new URL('../../../openapi/control.yaml', import.meta.url));
const ERROR_SCHEMA_REF = '#/components/schemas/Error';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

async function loadYaml(path: string): Promise<Json> {
  return parse(await readFile(path, 'utf8')) as Json;
}

/** Follows local `$ref`s (`#/a/b`) until a non-reference node. */
function deref(doc: Json, node: Json): Json {
  let current = node;
  for (let hops = 0; typeof current['$ref'] === 'string'; hops++) {
    assert.ok(hops < 16, `reference cycle at ${String(current['$ref'])}`);
    const ref = current['$ref'] as string;
    assert.ok(ref.startsWith('#/'), `only local references are expected, got ${ref}`);
    current = ref.slice(2).split('/').reduce<Json>((at, key) => at?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.ok(current, `unresolved reference ${ref}`);
  }
  return current;
}

function operations(doc: Json): Array<{ name: string; operation: Json }> {
  const found = [];
  for (const [path, item] of Object.entries<Json>(doc['paths'] ?? {})) {
    for (const method of HTTP_METHODS) {
      if (item[method]) found.push({ name: `${method.toUpperCase()} ${path}`, operation: item[method] as Json });
    }
  }
  return found;
}

/** The property naming the model: `model_id`, except llm's OpenAI-style `model`. */
function modelField(pipeline: Pipeline): string {
  return pipeline === 'llm' ? 'model' : 'model_id';
}

test('every pipeline has a POST path taking JSON or multipart with its file field as binary', async () => {
  const doc = await loadYaml(AI_SPEC);
  for (const pipeline of PIPELINES) {
    const operation = doc['paths']?.[`/${pipeline}`]?.post as Json | undefined;
    assert.ok(operation, `POST /${pipeline} missing`);
    const content = deref(doc, operation['requestBody'] as Json)['content'] as Json;
    const fileField = MULTIPART_FILE_FIELD[pipeline];
    const mediaType = fileField ? 'multipart/form-data' : 'application/json';
    assert.deepEqual(Object.keys(content), [mediaType], `/${pipeline} request content type`);
    const schema = deref(doc, content[mediaType]['schema'] as Json);
    assert.equal(schema['additionalProperties'], false, `/${pipeline} refuses unknown fields`);
    if (fileField) {
      const file = schema['properties'][fileField] as Json | undefined;
      assert.deepEqual([file?.['type'], file?.['format']], ['string', 'binary'], `/${pipeline} file field ${fileField}`);
      assert.ok((schema['required'] as string[]).includes(fileField), `/${pipeline} requires ${fileField}`);
      const otherFiles = Object.entries<Json>(schema['properties']).filter(([k, p]) => k !== fileField && p['format'] === 'binary');
      assert.deepEqual(otherFiles.map(([k]) => k), [], `/${pipeline} has one file field`);
    }
  }
});

test('every pipeline documents its default model ID as the default of its model field', async () => {
  const doc = await loadYaml(AI_SPEC);
  for (const pipeline of PIPELINES) {
    const content = deref(doc, doc['paths'][`/${pipeline}`].post['requestBody'] as Json)['content'] as Json;
    const schema = deref(doc, (Object.values(content)[0] as Json)['schema'] as Json);
    const field = schema['properties'][modelField(pipeline)] as Json | undefined;
    assert.ok(field, `/${pipeline} has no ${modelField(pipeline)}`);
    assert.equal(field['default'], DEFAULT_MODEL_ID[pipeline], `/${pipeline} ${modelField(pipeline)} default`);
    assert.match(DEFAULT_MODEL_ID[pipeline], new RegExp(field['pattern'] as string), `/${pipeline} default fits the pattern`);
    assert.ok(!(schema['required'] as string[]).includes(modelField(pipeline)), `/${pipeline} ${modelField(pipeline)} is optional`);
  }
});

test('the worker API offers exactly the pipelines the router knows and never returns a token', async () => {
  const doc = await loadYaml(AI_SPEC);
  assert.deepEqual(doc['components']['schemas']['Pipeline']['enum'], [...PIPELINES]);
  const worker = doc['components']['schemas']['Worker'] as Json;
  assert.equal(worker['additionalProperties'], false);
  assert.ok(!('token' in worker['properties']));
});

test('every error response of every operation uses the shared Error schema', async () => {
  for (const spec of [AI_SPEC, CONTROL_SPEC]) {
    const doc = await loadYaml(spec);
    for (const { name, operation } of operations(doc)) {
      const statuses = Object.keys(operation['responses'] as Json);
      assert.ok(statuses.some((s) => Number(s) >= 400), `${name} documents no error`);
      for (const status of statuses.filter((s) => Number(s) >= 400 || s === 'default')) {
        const response = deref(doc, operation['responses'][status] as Json);
        assert.deepEqual(Object.keys(response['content'] ?? {}), ['application/json'], `${name} ${status} content type`);
        assert.equal(response['content']['application/json']['schema']?.['$ref'], ERROR_SCHEMA_REF, `${name} ${status} schema`);
      }
    }
  }
});

test('every AI operation documents 503 with a Retry-After header and 402 for insufficient balance', async () => {
  const doc = await loadYaml(AI_SPEC);
  for (const pipeline of PIPELINES) {
    const responses = doc['paths'][`/${pipeline}`].post['responses'] as Json;
    const unavailable = deref(doc, responses['503'] as Json);
    assert.ok(deref(doc, unavailable['headers']?.['Retry-After'] ?? {})['required'], `/${pipeline} 503 Retry-After`);
    assert.ok(responses['402'], `/${pipeline} 402`);
  }
});

test('both spec files load and pass express-openapi-validator\'s OpenAPI 3.1 document check', async () => {
  for (const spec of [AI_SPEC, CONTROL_SPEC]) {
    const { apiDoc } = await new OpenAPIFramework({ apiDoc: spec, validateApiSpec: true }).initialize({});
    assert.equal(apiDoc.openapi, '3.1.0', spec);
  }
});

/** Minimal valid request per pipeline: JSON body, or multipart text fields beside the file. */
const MINIMAL_REQUEST: Record<Pipeline, Record<string, unknown>> = {
  'text-to-image': { prompt: 'a lighthouse at dusk' },
  'image-to-image': { prompt: 'in watercolour' },
  'image-to-video': {},
  upscale: { prompt: 'sharp' },
  'audio-to-text': {},
  llm: { messages: [{ role: 'user', content: 'hello' }] },
  'segment-anything-2': {},
  'image-to-text': {},
  'text-to-speech': { text: 'hello' },
};

const SAMPLE_IMAGES = { images: [{ url: '/stream/req-1/0.png', seed: 42, nsfw: false }] };

/** A valid 200 body per pipeline, answered through response validation. */
const SAMPLE_RESPONSE: Record<Pipeline, unknown> = {
  'text-to-image': SAMPLE_IMAGES,
  'image-to-image': SAMPLE_IMAGES,
  'image-to-video': { images: [{ url: '/stream/req-1/0.mp4', seed: 42, nsfw: false }] },
  upscale: SAMPLE_IMAGES,
  'audio-to-text': { text: 'hello world', chunks: [{ timestamp: [0, 0.5], text: 'hello' }, { timestamp: [0.5, null], text: ' world' }] },
  llm: {
    id: 'chatcmpl-1', model: 'meta-llama/llama-3.1-8B-Instruct', created: 1767225600,
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  },
  'segment-anything-2': { masks: '[[[0]]]', scores: '[0.9]', logits: '[[[0.1]]]' },
  'image-to-text': { text: 'a cat' },
  'text-to-speech': { audio: { url: '/stream/req-1/speech.wav' } },
};

const MULTIPART_PATHS = new Set(PIPELINES.filter((p) => MULTIPART_FILE_FIELD[p]).map((p) => `/${p}`));

/**
 * The AI routes' validator set-up: multipart paths validated with type coercion (form fields
 * are text), JSON paths without (a JSON string is not a number), responses validated.
 * Each handler records the validated body and answers the pipeline's sample response.
 */
async function withValidatedApp(run: (baseUrl: string, seen: Map<string, Json>) => Promise<void>): Promise<void> {
  const seen = new Map<string, Json>();
  const app = express();
  app.use(express.json());
  app.use(OpenApiValidator.middleware({
    apiSpec: AI_SPEC, validateRequests: { coerceTypes: false }, validateResponses: true, validateSecurity: false,
    ignorePaths: (path: string) => MULTIPART_PATHS.has(path),
  }));
  app.use(OpenApiValidator.middleware({
    apiSpec: AI_SPEC, validateRequests: { coerceTypes: true }, validateResponses: true, validateSecurity: false,
    ignorePaths: (path: string) => !MULTIPART_PATHS.has(path),
    fileUploader: { limits: { fileSize: 1 << 20, files: 1 } },
  }));
  for (const pipeline of PIPELINES) {
    app.post(`/${pipeline}`, (req: Request, res: Response) => {
      seen.set(pipeline, { ...(req.body as Json), files: ((req.files ?? []) as Array<{ fieldname: string }>).map((f) => f.fieldname) });
      res.json(SAMPLE_RESPONSE[pipeline]);
    });
  }
  app.use((err: { status?: number; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 500).json({ detail: { msg: err.message ?? 'error' } });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function pipelineRequest(pipeline: Pipeline, fields: Record<string, unknown>): RequestInit {
  const fileField = MULTIPART_FILE_FIELD[pipeline];
  if (!fileField) return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) };
  const form = new FormData();
  form.append(fileField, new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47])]), fileField === 'audio' ? 'a.wav' : 'a.png');
  for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
  return { method: 'POST', body: form };
}

test('a minimal request to every pipeline validates, gets its defaults filled in, and a sample answer validates', async () => {
  await withValidatedApp(async (baseUrl, seen) => {
    for (const pipeline of PIPELINES) {
      const res = await fetch(`${baseUrl}/${pipeline}`, pipelineRequest(pipeline, MINIMAL_REQUEST[pipeline]));
      const body = await res.text();
      assert.equal(res.status, 200, `/${pipeline}: ${body}`);
      assert.deepEqual(JSON.parse(body), SAMPLE_RESPONSE[pipeline]);
      assert.equal(seen.get(pipeline)?.[modelField(pipeline)], DEFAULT_MODEL_ID[pipeline], `/${pipeline} default model filled in`);
      const fileField = MULTIPART_FILE_FIELD[pipeline];
      if (fileField) assert.deepEqual(seen.get(pipeline)?.['files'], [fileField]);
    }
    assert.deepEqual(
      [seen.get('text-to-image')?.['height'], seen.get('text-to-image')?.['width'], seen.get('text-to-image')?.['num_images_per_prompt']],
      [512, 512, 1], 'text-to-image is priced on what the worker receives');
  });
});

test('multipart number and boolean fields are coerced from text; the same strings in JSON are refused', async () => {
  await withValidatedApp(async (baseUrl, seen) => {
    let res = await fetch(`${baseUrl}/image-to-video`, pipelineRequest('image-to-video', { height: '320', fps: '8', noise_aug_strength: '0.1', safety_check: 'false' }));
    assert.equal(res.status, 200, await res.text());
    const body = seen.get('image-to-video')!;
    assert.deepEqual([body['height'], body['fps'], body['noise_aug_strength'], body['safety_check']], [320, 8, 0.1, false]);

    res = await fetch(`${baseUrl}/image-to-video`, pipelineRequest('image-to-video', { height: 'tall' }));
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as Json)['detail']['msg'], /height/);

    res = await fetch(`${baseUrl}/text-to-image`, pipelineRequest('text-to-image', { prompt: 'x', height: '512' }));
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as Json)['detail']['msg'], /height must be integer/);
  });
});

test('limits and unknown fields are refused with 400 naming the field', async () => {
  await withValidatedApp(async (baseUrl) => {
    const cases: Array<[Pipeline, Record<string, unknown>, RegExp]> = [
      ['text-to-image', { prompt: 'x', width: 1004 }, /width must be multiple of 8/],
      ['text-to-image', { prompt: 'x', height: 4096 }, /height must be <= 2048/],
      ['text-to-image', { prompt: 'x', num_images_per_prompt: 9 }, /num_images_per_prompt/],
      ['text-to-image', { prompt: 'x', seed: 2 ** 32 }, /seed/],
      ['text-to-image', { prompt: 'x', steps: 10 }, /additional properties/],
      ['text-to-image', { prompt: 'x', model_id: '../../etc/passwd' }, /model_id/],
      ['text-to-image', { height: 512 }, /prompt/],
      ['image-to-image', { prompt: 'x', strength: '1.5' }, /strength/],
      ['image-to-image', { prompt: 'x', colour: 'red' }, /additional properties/],
      ['llm', { messages: [] }, /messages/],
      ['llm', { messages: [{ role: 'tool', content: 'x' }] }, /role/],
      ['llm', { messages: [{ role: 'user', content: 'x' }], temperature: 3 }, /temperature/],
      ['llm', { messages: [{ role: 'user', content: 'x' }], max_tokens: 8193 }, /max_tokens/],
      ['text-to-speech', { text: 'x'.repeat(5001) }, /text/],
    ];
    for (const [pipeline, fields, message] of cases) {
      const res = await fetch(`${baseUrl}/${pipeline}`, pipelineRequest(pipeline, fields));
      const body = await res.text();
      assert.equal(res.status, 400, `/${pipeline} ${JSON.stringify(fields).slice(0, 80)}: ${body}`);
      assert.match(body, message);
    }
  });
});
