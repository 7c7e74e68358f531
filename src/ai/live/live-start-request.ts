/**
 * What `POST /live/video-to-video/<stream>/start` asks for, read from either of its two
 * forms (docs/wire-contract.md, "Live video-to-video"):
 *
 * - Livepeer's, as MediaMTX's `runOnReady` hook posts it (go-livepeer
 *   server/ai_mediaserver.go StartLiveVideo): form fields `source_id` (required),
 *   `source_type` (required, `rtmpconn` or `webrtcsession`, any case), `query` (the query
 *   string of the publisher's URL: `pipeline` = the model ID, `params` = JSON object of the
 *   pipeline's parameters, 400 "Invalid model params" otherwise; `streamId`, `orchestrator`,
 *   `rtmpOutput` are read but not used by mediagate), optional `rtmp_url` (where MediaMTX
 *   serves the stream; mediagate reads the input from its own ingest and ignores it).
 * - mediagate's JSON body `{"model_id": "...", "params": {...}}` for a stream that already
 *   publishes to this gateway.
 */
import { GatewayError } from '../../errors/gateway-error.ts';

/** MediaMTX source types Livepeer accepts (compared lower-cased: MediaMTX changed the casing between versions). */
export const LIVE_SOURCE_TYPES = ['rtmpconn', 'webrtcsession'] as const;

/** Largest params object accepted, in bytes of JSON (Livepeer caps control updates at about 100 KB). */
export const MAX_PARAMS_BYTES = 100 * 1024;

export interface LiveStartRequest {
  /** How it came: Livepeer's form (answered with an empty 200) or mediagate's JSON body. */
  readonly form: boolean;
  /** The model asked for; undefined = the default live model. */
  readonly modelID: string | undefined;
  /** The pipeline's parameters (the first control message the worker gets). */
  readonly params: Readonly<Record<string, unknown>>;
  /** MediaMTX's source, for the form (logged only). */
  readonly source?: { readonly id: string; readonly type: (typeof LIVE_SOURCE_TYPES)[number] };
  /** The `streamId` of the form's query (reported in status events as Livepeer does). */
  readonly streamID?: string;
}

const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

function text(fields: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new GatewayError('INVALID_REQUEST', `${name}: must be a text field`);
  return v;
}

function modelIDOf(value: string | undefined, field: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (value.length > 256 || !MODEL_ID_PATTERN.test(value)) throw new GatewayError('INVALID_REQUEST', `${field}: not a model ID (name or org/name of [A-Za-z0-9._-])`);
  return value;
}

/** A params value: absent → {}; else a JSON object of at most {@link MAX_PARAMS_BYTES}. */
function paramsOf(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new GatewayError('INVALID_REQUEST', 'Invalid model params');
  if (JSON.stringify(value).length > MAX_PARAMS_BYTES) throw new GatewayError('INVALID_REQUEST', `Invalid model params: larger than ${MAX_PARAMS_BYTES} bytes of JSON`);
  return value as Record<string, unknown>;
}

/**
 * Reads Livepeer's start form (multipart or URL-encoded text fields).
 * @throws GatewayError INVALID_REQUEST (400): "Missing source_id", "Missing source_type",
 *   "Invalid source type <type>", "query: ..." for an unreadable query, "Invalid model params"
 *   when `params` is not a JSON object, or a bad `pipeline` model ID
 */
export function parseStartForm(fields: Readonly<Record<string, unknown>>): LiveStartRequest {
  const sourceID = text(fields, 'source_id');
  if (!sourceID) throw new GatewayError('INVALID_REQUEST', 'Missing source_id');
  const rawType = text(fields, 'source_type');
  if (!rawType) throw new GatewayError('INVALID_REQUEST', 'Missing source_type');
  const sourceType = rawType.toLowerCase();
  if (!(LIVE_SOURCE_TYPES as readonly string[]).includes(sourceType)) {
    throw new GatewayError('INVALID_REQUEST', `Invalid source type ${rawType.slice(0, 40)}; expected rtmpconn or webrtcsession`);
  }
  const query = new URLSearchParams(text(fields, 'query') ?? '');
  const rawParams = query.get('params');
  let params: Record<string, unknown> = {};
  if (rawParams !== null && rawParams !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawParams);
    } catch {
      throw new GatewayError('INVALID_REQUEST', 'Invalid model params');
    }
    params = paramsOf(parsed);
  }
  const streamID = query.get('streamId');
  return {
    form: true,
    modelID: modelIDOf(query.get('pipeline') ?? undefined, 'query pipeline'),
    params,
    source: { id: sourceID.slice(0, 128), type: sourceType as (typeof LIVE_SOURCE_TYPES)[number] },
    ...(streamID ? { streamID: streamID.slice(0, 128) } : {}),
  };
}

/**
 * Reads mediagate's JSON start body `{"model_id"?, "params"?}` (an empty body is `{}`).
 * @throws GatewayError INVALID_REQUEST (400) naming the field
 */
export function parseStartJson(body: unknown): LiveStartRequest {
  const o = body === undefined || body === null ? {} : body;
  if (typeof o !== 'object' || Array.isArray(o)) throw new GatewayError('INVALID_REQUEST', 'body: expected a JSON object {"model_id", "params"}');
  const fields = o as Record<string, unknown>;
  const unknownField = Object.keys(fields).find((k) => k !== 'model_id' && k !== 'params');
  if (unknownField !== undefined) throw new GatewayError('INVALID_REQUEST', `${unknownField.slice(0, 40)}: unknown field; the JSON start body takes model_id and params`);
  if (fields['model_id'] !== undefined && typeof fields['model_id'] !== 'string') throw new GatewayError('INVALID_REQUEST', 'model_id: must be a string');
  return { form: false, modelID: modelIDOf(fields['model_id'] as string | undefined, 'model_id'), params: paramsOf(fields['params']) };
}

/**
 * Reads an update body: the raw JSON params Livepeer's `…/update` takes (any JSON object; the
 * worker treats it as the complete new params).
 * @throws GatewayError INVALID_REQUEST (400) when it is not a JSON object or too large
 */
export function parseUpdateBody(raw: Buffer): Buffer {
  if (raw.length > MAX_PARAMS_BYTES) throw new GatewayError('INVALID_REQUEST', `params: larger than ${MAX_PARAMS_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new GatewayError('INVALID_REQUEST', 'Invalid model params: the body is not JSON');
  }
  paramsOf(parsed);
  if (parsed === null) throw new GatewayError('INVALID_REQUEST', 'Invalid model params: expected a JSON object');
  return raw;
}
