/**
 * Livepeer's transcode configuration object: the JSON body of an auth-webhook reply and
 * the value of the `Livepeer-Transcode-Configuration` push header share one shape
 * (docs/wire-contract.md §4 and §6; go-livepeer `server/auth.go`, `authWebhookResponse`):
 *
 * ```
 * { manifestID?: string, streamKey?: string, presets?: string[], profiles?: JsonProfile[],
 *   record?: boolean, objectStore?: string, recordObjectStore?: string, ...others }
 * ```
 *
 * mediagate honours `manifestID`, `presets`, `profiles` and `record` (Livepeer's per-stream
 * recording switch: keep the session as a recording), and its own `watermark`; every other field is reported
 * back in `ignoredFields` for the caller to log, never refused. Pure: no I/O.
 */
import { parseProfile, presetsByName, type VideoProfile } from '../domain/profile.ts';
import { isValidStreamName } from '../domain/stream-name.ts';
import { parseWatermarkRequest, type WatermarkRequest } from '../domain/watermark.ts';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';

/** Where the configuration came from; every error message starts with it. */
export type TranscodeConfigSource = 'auth webhook' | 'Livepeer-Transcode-Configuration header';

export const TRANSCODE_CONFIG_HEADER = 'Livepeer-Transcode-Configuration';

/** At most this many renditions (presets + profiles) per stream, as `parseLadder` allows. */
export const MAX_LADDER_PROFILES = 16;

/** At most this many ignored field names are reported (a hostile object may have thousands). */
const MAX_IGNORED_FIELDS_LISTED = 32;

/** Fields this parser interprets; everything else is ignored. */
const HONOURED_FIELDS = new Set(['manifestID', 'presets', 'profiles', 'record']);
/** `watermark` is honoured from the auth webhook only: the push header's other fields set the ladder, a watermark there is reported as ignored. */
const WEBHOOK_ONLY_FIELDS = new Set(['watermark']);

/** The part of a transcode configuration mediagate acts on. */
export interface TranscodeConfiguration {
  /** Manifest ID chosen by the configuration, validated as `[A-Za-z0-9_-]{1,64}`; absent when unset (missing, `null` or `""`). */
  readonly manifestID?: string;
  /**
   * The ladder: `presets` (in order) followed by `profiles` (in order), as go-livepeer
   * combines them. `undefined` when both are absent or empty: the caller keeps its default ladder.
   */
  readonly profiles?: VideoProfile[];
  /** `record`: true keeps the session as a recording, false does not; absent (or `null`) leaves the gateway's default. */
  readonly record?: boolean;
  /**
   * `watermark` (a mediagate field, auth webhook only, docs/wire-contract.md §6): the stream's watermark as
   * requested (its image, an object-store key, not yet read: ingest/watermark-resolver.ts does),
   * or `false` for none; absent (or `null`) leaves the gateway's default. A local `image` path
   * is refused: the configuration comes from outside the gateway.
   */
  readonly watermark?: WatermarkRequest | false;
  /**
   * Names of fields that were set but are not implemented by mediagate (e.g. `objectStore`,
   * `recordObjectStore`, `streamKey`, `detection`), in object order, at most 32, each cut to
   * 64 characters. Fields holding a Go zero value (`null`, `""`, `0`, `false`, `[]`, `{}`) are
   * not listed: in Livepeer's Go structs those mean "unset", so nothing is being ignored.
   */
  readonly ignoredFields: string[];
}

function isZeroValue(value: unknown): boolean {
  if (value === null || value === undefined || value === '' || value === 0 || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 66 ? `${text.slice(0, 64)}…` : text;
}

/**
 * Parses a transcode configuration object.
 *
 * Rules: `manifestID` (when set) must match `[A-Za-z0-9_-]{1,64}`; `presets` is an array of
 * Livepeer preset names; `profiles` an array of Livepeer JSON profiles (see `parseProfile`);
 * the ladder is presets then profiles, at most 16 entries, with unique rendition names.
 * Unknown presets are refused (go-livepeer silently drops them).
 *
 * @param raw the decoded JSON value
 * @param source where it came from; prefixes every error message, e.g.
 *   `auth webhook: profiles[1].width: must be an integer, got 1.5`
 * @throws GatewayError INVALID_REQUEST (not an object), INVALID_NAME (bad manifestID),
 *   INVALID_PROFILE (bad presets/profiles, duplicates, more than 16), INVALID_WATERMARK (bad `watermark`).
 */
export function parseTranscodeConfiguration(raw: unknown, source: TranscodeConfigSource): TranscodeConfiguration {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new GatewayError('INVALID_REQUEST', `${source}: must be a JSON object, got ${Array.isArray(raw) ? 'an array' : describe(raw)}`);
  }
  const obj = raw as Record<string, unknown>;

  let manifestID: string | undefined;
  const rawManifestID = obj['manifestID'];
  if (rawManifestID !== undefined && rawManifestID !== null && rawManifestID !== '') {
    if (!isValidStreamName(rawManifestID)) {
      throw new GatewayError('INVALID_NAME', `${source}: manifestID: must be 1-64 characters of [A-Za-z0-9_-], got ${describe(rawManifestID)}`);
    }
    manifestID = rawManifestID;
  }

  const presets = arrayField(obj, 'presets', source);
  const jsonProfiles = arrayField(obj, 'profiles', source);
  const total = presets.length + jsonProfiles.length;
  if (total > MAX_LADDER_PROFILES) {
    throw new GatewayError('INVALID_PROFILE', `${source}: at most ${MAX_LADDER_PROFILES} renditions per stream (presets + profiles), got ${total}`);
  }

  let profiles: VideoProfile[] | undefined;
  if (total > 0) {
    profiles = [];
    const origin = new Map<string, string>();
    const add = (profile: VideoProfile, where: string): void => {
      const first = origin.get(profile.name);
      if (first !== undefined) {
        throw new GatewayError('INVALID_PROFILE', `${source}: ${where}: duplicate rendition name "${profile.name}" (already used by ${first})`);
      }
      origin.set(profile.name, where);
      profiles!.push(profile);
    };
    presets.forEach((name, i) => {
      if (typeof name !== 'string') {
        throw new GatewayError('INVALID_PROFILE', `${source}: presets[${i}]: must be a preset name string, got ${describe(name)}`);
      }
      add(prefixed(source, `presets[${i}]: `, () => presetsByName([name])[0]!), `presets[${i}]`);
    });
    jsonProfiles.forEach((item, i) => {
      add(prefixed(source, '', () => parseProfile(item, i)), `profiles[${i}]`);
    });
  }

  const ignoredFields = Object.keys(obj)
    .filter((key) => !HONOURED_FIELDS.has(key) && !(source === 'auth webhook' && WEBHOOK_ONLY_FIELDS.has(key)) && !isZeroValue(obj[key]))
    .slice(0, MAX_IGNORED_FIELDS_LISTED)
    .map((key) => key.slice(0, 64));

  const rawRecord = obj['record'];
  if (rawRecord !== undefined && rawRecord !== null && typeof rawRecord !== 'boolean') {
    throw new GatewayError('INVALID_REQUEST', `${source}: record must be true or false, got ${describe(rawRecord)}`);
  }
  const rawWatermark = source === 'auth webhook' ? obj['watermark'] : undefined;
  const watermark = rawWatermark === undefined || rawWatermark === null ? undefined
    : rawWatermark === false ? false as const : parseWatermarkRequest(rawWatermark, `${source}: watermark`, { allowPath: false });
  return {
    ...(manifestID === undefined ? {} : { manifestID }), ...(profiles === undefined ? {} : { profiles }),
    ...(typeof rawRecord === 'boolean' ? { record: rawRecord } : {}), ...(watermark !== undefined ? { watermark } : {}), ignoredFields,
  };
}

/**
 * Parses the `Livepeer-Transcode-Configuration` header value (inline JSON). An empty or
 * blank value is treated as an absent header (go-livepeer does the same).
 * @throws GatewayError INVALID_REQUEST naming the header when the value is not JSON or not an
 *   object; otherwise as {@link parseTranscodeConfiguration}.
 */
export function parseTranscodeConfigurationHeader(text: string): TranscodeConfiguration {
  const source: TranscodeConfigSource = 'Livepeer-Transcode-Configuration header';
  if (text.trim() === '') return { ignoredFields: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GatewayError('INVALID_REQUEST', `${source}: not valid JSON (${(err as Error).message.slice(0, 120)})`);
  }
  return parseTranscodeConfiguration(raw, source);
}

/** An optional array field: absent or `null` → `[]`; anything else but an array is refused. */
function arrayField(obj: Record<string, unknown>, field: 'presets' | 'profiles', source: TranscodeConfigSource): unknown[] {
  const value = obj[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    const what = field === 'presets' ? 'an array of preset names' : 'an array of profile objects';
    throw new GatewayError('INVALID_PROFILE', `${source}: ${field}: must be ${what}, got ${describe(value)}`);
  }
  return value;
}

/** Runs a domain parser and prefixes its GatewayError message with the source (and a location). */
function prefixed<T>(source: TranscodeConfigSource, where: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (isGatewayError(err)) throw new GatewayError(err.code, `${source}: ${where}${err.message}`, { cause: err });
    throw err;
  }
}
