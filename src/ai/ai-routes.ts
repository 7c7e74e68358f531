/**
 * The AI API's router (openapi/ai.yaml, docs/wire-contract.md §7): one POST route per batch
 * pipeline, validated by express-openapi-validator (uploads parsed by multer to disk first,
 * one file per upload in one private directory: upload-scope.ts), authorized by a pluggable API-key
 * authorizer (api-key-authorizers.ts), routed by the session manager to an ai-runner worker, with
 * result media re-hosted in the gateway's own storage (`/stream/<requestID>/<file>`,
 * result-media.ts). Also the worker-management API (`/api/workers`).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { pathValidators, specValidator } from '../http/scoped-validator.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { adminGuard } from '../http/admin-guard.ts';
import { lingerAfterRefusal } from '../http/refused-body.ts';
import type { Logger } from '../log/logger.ts';
import { DEFAULT_MODEL_ID, MULTIPART_FILE_FIELD, PIPELINES, isPipeline, type Pipeline } from '../domain/pipelines.ts';
import { readFileHead, sniffAudio, sniffImage } from '../media/media-sniff.ts';
import { workUnits } from './work-units.ts';
import { actualUnits, estimateUnits } from '../domain/billing-units.ts';
import type { SessionManager } from './session-manager.ts';
import type { ResultMedia } from './media-fetch.ts';
import type { WorkerReply } from './worker-reply.ts';
import type { AiRequest } from './worker-request.ts';
import type { WorkerRegistry } from './worker-registry.ts';
import { aiErrorKindOf, type AiRecorder } from './ai-recorder.ts';
import { onResponseDone, setRouteTemplate } from '../http/response-outcome.ts';
import type { AiErrorKind } from '../domain/failure-kinds.ts';
import type { AiCaller, AiRequestAuthorizer } from './api-key-authorizers.ts';
import { UPLOAD_SCOPE, UploadDir, UploadScope, type UploadRequest } from './upload-scope.ts';
import { collectMedia, resultMediaHandler, shape, type ResultStorage } from './result-media.ts';
import { StageTimes } from './stage-times.ts';

export const AI_SPEC_PATH = fileURLToPath(new URL('../../openapi/ai.yaml', import.meta.url));

/** What AI routes need from billing (payments/billing.ts). */
export interface AiBilling {
  /** @throws GatewayError INSUFFICIENT_BALANCE (402) */
  reserveAi(r: { requestID: string; accountID: string; pipeline: string; modelID: string; units: bigint }): Promise<void>;
  settleAi(r: { requestID: string; pipeline: string; modelID: string; units: bigint }): Promise<void>;
  releaseAi(requestID: string): Promise<void>;
}

/** The AI results' expiry index (result-index-store.ts). */
export interface ResultIndexing {
  /** Notes result keys stored at `storedAtMs` (epoch ms); sends its command before it first awaits. */
  add(keys: readonly string[], storedAtMs: number): Promise<void>;
}

export interface AiRoutesOptions {
  sessions: SessionManager<AiRequest, WorkerReply>;
  registry: WorkerRegistry;
  authorizer: AiRequestAuthorizer;
  results: ResultStorage;
  /**
   * Where each request's stored result keys are noted for their expiry (the retention sweep
   * reads it instead of listing `results`); absent (`ai.resultTtlS` 0: results are kept) =
   * not noted. A note that fails is logged and the result still served: the sweep's full
   * listing deletes it in time.
   */
  resultIndex?: ResultIndexing;
  /**
   * Downloads a result URL (data:, or http(s) from the worker's own origin: media-fetch.ts)
   * a worker answered with, within `timeoutMs` and until `signal` aborts.
   * @throws ResultMediaError (a WorkerCallError of kind `server`) when refused or failed
   */
  fetchMedia(url: string, worker: { url: string; token?: string }, limits: { timeoutMs: number; signal: AbortSignal }): Promise<ResultMedia>;
  /** Assembles image frames into an H.264 MP4 file. */
  framesToMp4(frames: Buffer[], fps: number, outputPath: string): Promise<void>;
  /** Metering; absent = nothing is charged. */
  billing?: AiBilling;
  /** Duration in ms of the uploaded audio file at `path` (ffprobe), for audio-to-text billing. */
  probeAudioMs(path: string): Promise<number>;
  /**
   * Directory for uploads in flight, private (0700), made on the first upload: each uploaded
   * file is one uniquely named file in it (upload-scope.ts UploadDir), removed when its
   * request is over; no directory per request. image-to-video assembles its MP4 files there
   * too (`<name>.mp4`, removed once stored).
   */
  uploadDir: string;
  /**
   * Name prefix of each upload file (default `upload-`). The gateway adds the process's pid
   * (`upload-<pid>-`) so its startup sweep can tell the uploads of a dead process from those
   * of a live one.
   */
  uploadPrefix?: string;
  publicUrl: string;
  /** Admin-token rule for /api/workers (http/admin-guard.ts). */
  adminToken: string;
  loopbackOnly: boolean;
  /** Largest `image` upload, bytes; bigger is refused with 413 while it arrives. */
  maxImageBytes: number;
  /** Largest `audio` upload, bytes; bigger is refused with 413 while it arrives. */
  maxAudioBytes: number;
  /**
   * Adds a `Server-Timing` header to each pipeline response: ms spent in each stage from the
   * request's arrival at this router (stage-times.ts; `ai.serverTiming`). Default false.
   */
  serverTiming?: boolean;
  /** Told about every pipeline request once its response is over (metrics); absent = not recorded. */
  recorder?: AiRecorder;
  logger: Logger;
}

/**
 * Bytes read from the start of an uploaded image to recognize it and read its size: PNG,
 * GIF and WebP need 30, a JPEG's SOF marker follows its APPn segments (EXIF ≤ 64 KiB each,
 * ITU T.81 B.1.1.3 / CIPA DC-008); a JPEG whose SOF lies beyond this is refused as unknown.
 */
const IMAGE_SNIFF_BYTES = 1024 * 1024;
/** Bytes read from the start of an uploaded audio file to recognize its container. */
const AUDIO_SNIFF_BYTES = 64 * 1024;

const REFUSE_OVERSIZE = Symbol('refuseOversize');
/** A multipart request whose file may be refused as soon as it passes its field's limit (createUploadMiddleware). */
type RefusableUpload = Request & { [REFUSE_OVERSIZE]?: () => void };

/**
 * multer, before the multipart validator, for the pipelines that take a file: the file of
 * the pipeline's field (MULTIPART_FILE_FIELD) streams to one new file in `uploadDir`; one
 * that passes that field's limit (`image` → maxImageBytes, `audio` → maxAudioBytes) is cut
 * off there and removed, and refused with 413 naming the field at once, while the rest of
 * the body is read and dropped (src/http/refused-body.ts: a client still writing reads the
 * 413, not a reset, and one that never stops is cut off 2 s after the answer;
 * test/integration/ai/upload-body-limit.test.ts). multer alone answers only once the body
 * has ended, i.e. never to a client that keeps writing. A file in any other field is refused
 * with 400.
 * Sets `req.body.<field> = ''` for the received file so the schema's `required` passes
 * (the validator's own uploader is off).
 */
function createUploadMiddleware(options: AiRoutesOptions, uploadDir: UploadDir, multipartPipelines: ReadonlyMap<string, 'image' | 'audio'>): (req: Request, res: Response, next: NextFunction) => void {
  const limitOf = (field: 'image' | 'audio'): number => (field === 'image' ? options.maxImageBytes : options.maxAudioBytes);
  const disk = multer.diskStorage({
    destination: (_req, _file, cb) => {
      uploadDir.ready().then((dir) => cb(null, dir), (err: Error) => cb(err, uploadDir.dir));
    },
    // Named (and noted in the request's scope) before multer creates the file.
    filename: (req, _file, cb) => {
      const name = uploadDir.newName();
      (req as UploadRequest)[UPLOAD_SCOPE]!.add(join(uploadDir.dir, name));
      cb(null, name);
    },
  });
  const upload = multer({
    // The disk storage, and the request's refusal as soon as the file passes its limit
    // (busboy's `limit` on the file stream; multer's own error waits for the body's end).
    storage: {
      _handleFile(req, file, cb) {
        file.stream.once('limit', () => (req as RefusableUpload)[REFUSE_OVERSIZE]?.());
        disk._handleFile(req, file, cb);
      },
      _removeFile: (req, file, cb) => disk._removeFile(req, file, cb),
    } satisfies multer.StorageEngine,
    limits: (req: Request) => ({
      fileSize: limitOf(multipartPipelines.get(req.path)!), files: 1, fields: 64, parts: 65, fieldSize: 1024 * 1024,
    }),
    fileFilter: (req: Request, file: Express.Multer.File, cb: multer.FileFilterCallback) => {
      const expected = multipartPipelines.get(req.path)!;
      if (file.fieldname === expected) cb(null, true);
      else cb(new GatewayError('INVALID_REQUEST', `${file.fieldname.slice(0, 64)}: unexpected file field; ${req.path.slice(1)} takes one file in "${expected}"`));
    },
    defParamCharset: 'utf8',
  } as unknown as multer.Options).any();

  return (req: Request, res: Response, next: NextFunction) => {
    const field = req.method === 'POST' ? multipartPipelines.get(req.path) : undefined;
    if (field === undefined || !req.is('multipart/form-data')) {
      next();
      return;
    }
    const scope = new UploadScope(options.logger);
    (req as UploadRequest)[UPLOAD_SCOPE] = scope;
    res.once('close', () => scope.release());
    let refused = false;
    const refuseOversize = (): void => {
      if (refused) return;
      refused = true;
      scope.release();
      lingerAfterRefusal(req, res);
      next(new GatewayError('PAYLOAD_TOO_LARGE', `${field}: the upload exceeds the limit of ${limitOf(field)} bytes (ai.${field === 'image' ? 'maxImageBytes' : 'maxAudioBytes'})`));
    };
    (req as RefusableUpload)[REFUSE_OVERSIZE] = refuseOversize;
    upload(req, res, (err?: unknown) => {
      // multer's own error for a refused file comes once the body has ended (or the connection closed): answered already.
      if (refused) return;
      const e = (err ?? {}) as { name?: string; code?: string };
      if (e.name === 'MulterError' && e.code === 'LIMIT_FILE_SIZE') {
        refuseOversize();
        return;
      }
      scope.release();
      if (err) {
        if (e.code === 'ENOENT') uploadDir.forget();
        next(err);
        return;
      }
      for (const file of (req.files as Express.Multer.File[] | undefined) ?? []) (req.body as Record<string, unknown>)[file.fieldname] = '';
      next();
    });
  };
}

/**
 * The model a pipeline request names (`model` for llm, as OpenAI and ai-runner; `model_id`
 * otherwise), else `unnamed(pipeline)`: the pipeline's default, or the served model the worker
 * registry picks when no worker serves the default (worker-registry.ts `modelFor`).
 */
function modelIdOf(pipeline: Pipeline, body: unknown, unnamed: (pipeline: Pipeline) => string = (p) => DEFAULT_MODEL_ID[p]): string {
  const named = namedModel(pipeline, body);
  return named !== undefined ? named : unnamed(pipeline);
}

function namedModel(pipeline: Pipeline, body: unknown): string | undefined {
  const named = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[pipeline === 'llm' ? 'model' : 'model_id'] : undefined;
  return typeof named === 'string' && named !== '' ? named : undefined;
}

const MODEL_NAMED = Symbol('modelNamed');
/**
 * Whether the client named a model, noted as the body arrives: the OpenAPI validators fill in
 * the spec's default `model_id` afterwards, and an unnamed model may go elsewhere (`modelFor`).
 */
type ModelNotedRequest = Request & { [MODEL_NAMED]?: boolean };

const STAGES = Symbol('stages');
/** A pipeline request timed for the Server-Timing header (`ai.serverTiming`). */
type TimedRequest = Request & { [STAGES]?: StageTimes };

const AI_MEASURE = Symbol('aiMeasure');
/** A pipeline request being measured: the error kind classified on its way to the error handler. */
type MeasuredRequest = Request & { [AI_MEASURE]?: { errorKind: AiErrorKind | undefined } };

/**
 * A new request ID, `ai-<24 hex>`: the 96 random bits of a version 4 UUID outside its version
 * field (RFC 9562 §5.4; Node's randomUUID draws them from a cached block of random bytes,
 * cheaper per request than randomBytes).
 */
export function newRequestID(): string {
  const u = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx
  return `ai-${u.slice(0, 8)}${u.slice(9, 13)}${u.slice(24)}`;
}

function bearer(req: Request): string | undefined {
  return /^Bearer (.+)$/i.exec(req.header('authorization') ?? '')?.[1];
}

const PIPELINE_PATHS: ReadonlySet<string> = new Set(PIPELINES.map((p) => `/${p}`));

/**
 * Whether a request is a pipeline request (`POST /<pipeline>`): the AI router's hot path, which
 * no router mounted before it serves (gateway-role.ts passes those over for it, http-app.ts
 * `skipping`).
 */
export function isPipelinePost(req: { readonly method: string; readonly path: string }): boolean {
  return req.method === 'POST' && PIPELINE_PATHS.has(req.path);
}

export function createAiRouter(options: AiRoutesOptions): Router {
  const router = Router();
  const log = options.logger;
  // Uploads, and the MP4 files image-to-video assembles, are scratch files in one private directory.
  const uploadDir = new UploadDir(options.uploadDir, options.uploadPrefix ?? 'upload-');
  const hosting = {
    results: options.results, framesToMp4: options.framesToMp4, publicUrl: options.publicUrl,
    scratchFile: async (ext: string) => join(await uploadDir.ready(), `${uploadDir.newName()}${ext}`),
  };
  // Result media: /stream/<requestID>/<n>.<ext> (the HLS router passes these through).
  router.get('/stream/:requestID/:file', resultMediaHandler(options.results));

  // Every pipeline path is measured under its own route template, whatever refuses it; each
  // POST is recorded once its response is over (the model read from the body as parsed by then).
  const pipelineByPath = new Map<string, Pipeline>(PIPELINES.map((p) => [`/${p}`, p]));
  router.use((req: Request, res: Response, next: NextFunction) => {
    const pipeline = pipelineByPath.get(req.path);
    if (pipeline === undefined) {
      next();
      return;
    }
    setRouteTemplate(res, `/${pipeline}`);
    if (options.serverTiming && req.method === 'POST') (req as TimedRequest)[STAGES] = new StageTimes();
    const recorder = options.recorder;
    if (req.method === 'POST' && recorder) {
      const measure = { errorKind: undefined as AiErrorKind | undefined };
      (req as MeasuredRequest)[AI_MEASURE] = measure;
      onResponseDone(res, ({ statusCode, durationMs }) => {
        const errorKind = statusCode === 'aborted' ? 'aborted' : measure.errorKind;
        recorder.recordAiRequest({ pipeline, modelID: modelIdOf(pipeline, req.body), statusCode, durationMs, ...(errorKind ? { errorKind } : {}) });
      });
    }
    next();
  });

  // API key first, so an unauthenticated caller learns nothing about validation.
  const pipelinePaths = new Set(pipelineByPath.keys());
  router.use((req: Request, _res: Response, next: NextFunction) => {
    if (req.method !== 'POST' || !pipelinePaths.has(req.path)) {
      next();
      return;
    }
    options.authorizer.authorize(bearer(req)).then((caller) => {
      (req as TimedRequest)[STAGES]?.mark('auth');
      (req as Request & { caller?: AiCaller }).caller = caller;
      next();
    }, next);
  });
  router.use('/api/workers', adminGuard({ adminToken: options.adminToken, loopbackOnly: options.loopbackOnly, apiName: 'worker API' }));
  router.use(express.json({ limit: '1mb' }));
  const noteNamedModel = (stage: string) => (req: Request, _res: Response, next: NextFunction): void => {
    const pipeline = req.method === 'POST' ? pipelineByPath.get(req.path) : undefined;
    if (stage === 'body' || multipartPipelines.has(req.path)) (req as TimedRequest)[STAGES]?.mark(stage);
    const noted = req as ModelNotedRequest;
    if (pipeline !== undefined && noted[MODEL_NAMED] === undefined && typeof req.body === 'object' && req.body !== null) {
      noted[MODEL_NAMED] = namedModel(pipeline, req.body) !== undefined;
    }
    next();
  };
  router.use(noteNamedModel('body'));
  // Two validators over one spec: JSON bodies are validated as sent (no type coercion, so
  // "512" is not silently a number); multipart text fields arrive as strings and are coerced.
  const multipartPipelines = new Map(Object.entries(MULTIPART_FILE_FIELD).map(([p, field]) => [`/${p}`, field]));
  const multipartPaths = new Set(multipartPipelines.keys());
  // Each validator only sees its own paths (http/scoped-validator.ts); each pipeline path has a
  // validator of its own, so finding its route compiles one route, not every route of the spec.
  const jsonPipelinePaths = [...pipelinePaths].filter((path) => !multipartPaths.has(path));
  const jsonOptions = { validateRequests: { coerceTypes: false }, validateResponses: false } as const;
  router.use(pathValidators(AI_SPEC_PATH, jsonPipelinePaths, jsonOptions));
  router.use(specValidator(AI_SPEC_PATH, (path) => path.startsWith('/api/workers'), jsonOptions));
  router.use(createUploadMiddleware(options, uploadDir, multipartPipelines));
  router.use(noteNamedModel('upload'));
  router.use(pathValidators(AI_SPEC_PATH, [...multipartPaths], {
    validateRequests: { coerceTypes: true },
    validateResponses: false,
    fileUploader: false,
  }));

  for (const pipeline of PIPELINES) {
    router.post(`/${pipeline}`, async (req: Request, res: Response) => {
      await handle(pipeline, req, res);
    });
  }

  // A POST to a single path segment that is not a pipeline.
  router.post('/:name', (req: Request, _res: Response, next: NextFunction) => {
    const name = String(req.params['name']);
    if (!/^[a-z0-9-]{1,64}$/.test(name)) {
      next();
      return;
    }
    throw new GatewayError('INVALID_REQUEST', `unknown pipeline "${name}"; known pipelines: ${PIPELINES.join(', ')}`);
  });

  async function handle(pipeline: Pipeline, req: Request, res: Response): Promise<void> {
    const scope = (req as UploadRequest)[UPLOAD_SCOPE];
    const release = scope?.hold();
    // The client left while the upload was being validated: its files are already gone.
    if (scope && !release) throw new Error('Request closed');
    try {
      await handleHeld(pipeline, req, res);
    } finally {
      release?.();
    }
  }

  async function handleHeld(pipeline: Pipeline, req: Request, res: Response): Promise<void> {
    const stages = (req as TimedRequest)[STAGES];
    stages?.mark('validate');
    const body = { ...(req.body as Record<string, unknown>) };
    const fileField = MULTIPART_FILE_FIELD[pipeline];
    let files: AiRequest['files'];
    let inputPixels: number | undefined;
    let audioPath: string | undefined;
    if (fileField) {
      const uploaded = ((req.files as Express.Multer.File[] | undefined) ?? []).filter((f) => f.fieldname === fileField);
      const file = uploaded[0];
      if (!file) throw new GatewayError('INVALID_REQUEST', `${fileField}: a file upload is required (multipart/form-data field "${fileField}")`);
      delete body[fileField];
      if (file.size === 0) throw new GatewayError('INVALID_REQUEST', `${fileField}: the uploaded file is empty`);
      if (fileField === 'image') {
        const info = sniffImage(await readFileHead(file.path, IMAGE_SNIFF_BYTES));
        if (!info) throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'image: not a PNG, JPEG, WebP or GIF image');
        inputPixels = info.width * info.height;
      } else {
        if (!sniffAudio(await readFileHead(file.path, AUDIO_SNIFF_BYTES))) throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'audio: not a WAV, MP3, FLAC, Ogg, MP4/M4A or WebM audio file');
        audioPath = file.path;
      }
      files = [{ field: fileField, filename: file.originalname || fileField, contentType: file.mimetype || 'application/octet-stream', path: file.path, sizeBytes: file.size }];
    }
    // The llm pipeline names its model `model` (OpenAI and ai-runner); the others `model_id`.
    const modelField = pipeline === 'llm' ? 'model' : 'model_id';
    const modelID = (req as ModelNotedRequest)[MODEL_NAMED] === false ? options.registry.modelFor(pipeline) : modelIdOf(pipeline, body);
    const requestID = newRequestID();
    const audioMs = pipeline === 'audio-to-text' && audioPath !== undefined ? await options.probeAudioMs(audioPath) : undefined;
    const units = workUnits(pipeline, { body, ...(inputPixels !== undefined ? { inputPixels } : {}), ...(audioMs !== undefined ? { audioSeconds: audioMs / 1000 } : {}) });
    const caller = (req as Request & { caller?: AiCaller }).caller!;
    // A caller without an account is not metered: no hold, no charge.
    const billing = caller.accountID === undefined ? undefined : options.billing;
    const billedUnits = estimateUnits(pipeline, body, { ...(inputPixels !== undefined ? { inputPixels } : {}), ...(audioMs !== undefined ? { audioMs } : {}) });
    // The credit hold and the worker slot are taken concurrently (two Redis round trips at
    // once, not one after the other); the worker is called only once the hold is in place
    // (`before`), so a short balance still answers 402 with no worker called. A refused hold
    // decides the answer even when routing failed too (402 before 503, as when they ran in
    // turn), and a hold that was taken is released by the `finally` below, once its script
    // has answered, whenever the request is not charged.
    const held = billing?.reserveAi({ requestID, accountID: caller.accountID!, pipeline, modelID, units: billedUnits });
    // Observed at once, so a refused hold is never an unhandled rejection: undefined = held.
    const holdOutcome = held?.then(() => undefined, (err: unknown) => err ?? new Error('hold refused'));
    let charged = false;
    try {
      await routeAndAnswer();
      charged = true;
    } catch (err) {
      throw (await holdOutcome) ?? err;
    } finally {
      if (!charged && held !== undefined && (await holdOutcome) === undefined) {
        await billing!.releaseAi(requestID).catch((err: Error) => log.error({ requestID, err: err.message }, 'cannot release AI hold'));
      }
    }

    async function routeAndAnswer(): Promise<void> {
    // The result media are fetched inside the worker's attempt, so a refused or failed fetch
    // counts against that worker (suspended, failed over) like a failed call.
    const routed = await options.sessions.route({
      pipeline, modelID, requestID, workUnits: units,
      ...(held !== undefined ? { before: held } : {}), ...(stages ? { stages } : {}),
      request: { pipeline, modelID, fields: { ...body, [modelField]: modelID }, ...(files ? { files } : {}) },
    }, async (reply, worker) => ({
      reply,
      media: reply.kind === 'json' ? await collectMedia(options.fetchMedia, pipeline, reply.body, worker.endpoint, worker.timeoutMs) : [],
    }));
    try {
      const { reply, media } = routed.reply;
      if (reply.kind === 'stream') {
        res.status(200);
        res.setHeader('Content-Type', 'text/event-stream');
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('X-Request-ID', requestID);
        if (stages) res.setHeader('Server-Timing', stages.header());
        res.flushHeaders();
        let lastUsage: unknown;
        try {
          for await (const chunk of reply.chunks) {
            res.write(`data: ${chunk}\n\n`);
            if (chunk.includes('"usage"')) {
              try { lastUsage = JSON.parse(chunk); } catch { /* not JSON */ }
            }
          }
        } catch (err) {
          log.warn({ requestID, err: (err as Error).message }, 'LLM stream broke off');
          res.write(`data: ${JSON.stringify({ error: { message: 'the worker stream broke off' } })}\n\n`);
          res.end();
          throw err;
        }
        res.end();
        await billing?.settleAi({ requestID, pipeline, modelID, units: actualUnits(pipeline, billedUnits, lastUsage) });
        return;
      }
      const shaped = await shape(hosting, pipeline, requestID, reply.body, media, body);
      stages?.mark('store');
      // The results' index note and the settle are sent in the same turn: one socket write
      // and one round trip for both (redis/connections.ts CoalescingRedis).
      const indexed = shaped.keys.length > 0 ? options.resultIndex?.add(shaped.keys, Date.now())
        .catch((err: Error) => log.warn({ requestID, err: err.message }, 'cannot note AI results for expiry')) : undefined;
      await Promise.all([indexed, billing?.settleAi({ requestID, pipeline, modelID, units: actualUnits(pipeline, billedUnits, reply.body) })]);
      if (stages) {
        stages.mark('settle');
        res.setHeader('Server-Timing', stages.header());
      }
      res.setHeader('X-Request-ID', requestID);
      res.status(200).json(shaped.body);
    } finally {
      routed.done();
    }
    }
  }

  // Worker management (validated against openapi/ai.yaml; admin token checked by the /api/workers guard above).
  router.post('/api/workers', async (req: Request, res: Response) => {
    const view = await options.registry.register(req.body as Parameters<WorkerRegistry['register']>[0], 'api');
    res.status(201).json(view);
  });
  router.get('/api/workers', (_req: Request, res: Response) => {
    res.json({ workers: options.registry.list() });
  });
  router.delete('/api/workers/:id', async (req: Request, res: Response) => {
    const id = String(req.params['id']);
    if (!(await options.registry.remove(id))) throw new GatewayError('NOT_FOUND', `worker ${id} not found`);
    res.status(204).end();
  });

  // Last: the kind of a pipeline request's failure, classified before the error handler renders it.
  router.use((err: unknown, req: Request, _res: Response, next: NextFunction) => {
    const measure = (req as MeasuredRequest)[AI_MEASURE];
    if (measure) measure.errorKind = aiErrorKindOf(err);
    next(err);
  });

  return router;
}

export { isPipeline };
