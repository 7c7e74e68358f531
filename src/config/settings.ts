/**
 * The mechanism behind every mediagate configuration (the gateway's, src/config/config-schema.ts, and
 * the reference AI worker's, src/ai-worker/config.ts): one TypeBox declaration per program
 * (https://github.com/sinclairzx81/typebox) gives the TypeScript type (`Static<typeof Schema>`),
 * the defaults (each field's `default`, filled by `Value.Default`; a nested object has
 * `default: {}` so its fields are filled too), the JSON Schema that Ajv checks, the
 * environment variable names, and the generated reference (docs/config.md, written by
 * scripts/gen-config-doc.ts). Each field's `description` is its documentation.
 *
 * Environment names are derived from the field path: each camelCase segment becomes
 * SCREAMING_SNAKE, joined with `_`, after the program's prefix, e.g. `http.port` →
 * `MEDIAGATE_HTTP_PORT`. A nested object's fields are separate variables; an array is one
 * variable (JSON, or a comma-separated list).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Type, type SchemaOptions, type Static, type TObject, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { GatewayError } from '../errors/gateway-error.ts';

/**
 * A string that is one of `values`, as the JSON Schema `enum` keyword (so a violation reads
 * "must be one of a, b, c"); TypeBox's own unions of literals would emit `anyOf`.
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, enum: [...values] });
}

/** pino log levels, most verbose first (https://getpino.io/#/docs/api?id=level-string). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** Log output formats. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** The declaration's defaults: a fresh object (arrays and objects are copies) on every call. */
export function defaultsOf<T extends TObject>(schema: T): Static<T> {
  return Value.Default(schema, {}) as Static<T>;
}

/** One setting reachable through the environment: a leaf of the declaration (nested objects are walked). */
export interface Setting {
  /** Environment variable, e.g. `MEDIAGATE_HTTP_PORT`. */
  readonly name: string;
  /** Field path, e.g. `['http', 'port']`. */
  readonly path: string[];
  /** The field's schema (type, bounds, default, description). */
  readonly schema: TSchema;
}

/** `x264Preset` → `X264_PRESET`, `segmentTargetMs` → `SEGMENT_TARGET_MS`. */
function toEnvSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function isObjectSchema(schema: TSchema): schema is TObject {
  return schema['type'] === 'object' && typeof schema['properties'] === 'object' && schema['properties'] !== null;
}

/** Every setting of `schema` in declaration order, with its environment variable `prefix` + path in SCREAMING_SNAKE. */
export function settingsOf(schema: TObject, prefix: string): Setting[] {
  const out: Setting[] = [];
  const walk = (node: TObject, path: string[]): void => {
    for (const [key, child] of Object.entries(node.properties)) {
      const next = [...path, key];
      if (isObjectSchema(child)) walk(child, next);
      else out.push({ name: `${prefix}${next.map(toEnvSegment).join('_')}`, path: next, schema: child });
    }
  };
  walk(schema, []);
  return out;
}

/**
 * Parses one setting given as text (an environment variable or a flag) into the type its
 * schema declares: integers (underscores allowed as separators), numbers (decimals, e.g. `0.15`), booleans (1/0, true/false,
 * yes/no, on/off), arrays (JSON, or a comma-separated list), anything else as the text.
 * @throws GatewayError CONFIG_INVALID naming the variable and the expected type.
 */
export function parseSettingValue(name: string, raw: string, schema: TSchema): unknown {
  const bad = (what: string): never => {
    throw new GatewayError('CONFIG_INVALID', `${name}=${JSON.stringify(raw.slice(0, 80))}: expected ${what}`);
  };
  const type = schema['type'];
  if (type === 'integer') {
    const text = raw.trim().replace(/_/g, '');
    if (!/^-?\d+$/.test(text)) bad('an integer');
    return Number(text);
  }
  if (type === 'number') {
    const text = raw.trim().replace(/_/g, '');
    if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(text)) bad('a number');
    return Number(text);
  }
  if (type === 'boolean') {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return bad('true or false');
  }
  if (type === 'array') {
    const text = raw.trim();
    if (text.startsWith('[')) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return bad('a JSON array');
      }
    }
    return text === '' ? [] : text.split(',').map((s) => s.trim()).filter(Boolean);
  }
  return raw;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep-merges `source` into `target`: objects field by field, anything else (arrays too) replaced. */
export function mergeSettings(target: JsonObject, source: JsonObject): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (isObject(value) && isObject(current)) mergeSettings(current, value);
    else target[key] = value;
  }
}

export interface EnvironmentOptions {
  /** Only variables starting with this are read, e.g. `MEDIAGATE_`. */
  readonly prefix: string;
  /** Variables read elsewhere (the config file's own variable, another program's prefix). */
  readonly ignore: (name: string) => boolean;
}

/**
 * Sets every `prefix` variable of `env` into `config` at its field path.
 * @throws GatewayError CONFIG_INVALID for an unknown variable (listing the known ones) or a
 *   value that does not parse as its field's type.
 */
export function applyEnvironment(config: JsonObject, env: Record<string, string | undefined>, settings: readonly Setting[], options: EnvironmentOptions): void {
  const known = new Map(settings.map((s) => [s.name, s]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(options.prefix) || raw === undefined || options.ignore(name)) continue;
    const setting = known.get(name);
    if (!setting) throw new GatewayError('CONFIG_INVALID', `unknown environment variable ${name}; known: ${[...known.keys()].join(', ')}`);
    let node = config;
    for (const key of setting.path.slice(0, -1)) {
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as JsonObject;
    }
    node[setting.path[setting.path.length - 1]!] = parseSettingValue(name, raw, setting.schema);
  }
}

const ajv = new Ajv({ allErrors: true, strict: true });

/** Ajv (strict, all errors) validator of a declaration; the declaration uses no `format`. */
export function compileSettings<T extends TObject>(schema: T): ValidateFunction<Static<T>> {
  return ajv.compile<Static<T>>(schema);
}

/** One line naming every schema violation (field path and problem) and where the values came from. */
export function describeErrors(errors: ErrorObject[] | null | undefined, origin: string): string {
  return (errors ?? []).map((e) => {
    const where = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    if (e.keyword === 'additionalProperties') return `${where}: unknown field "${String(e.params['additionalProperty'])}"`;
    if (e.keyword === 'enum') return `${where}: must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}`;
    return `${where}: ${e.message ?? 'invalid'}`;
  }).join('; ') + ` (from ${origin})`;
}

/**
 * Reads a YAML (or JSON) config file holding a mapping; an empty file is an empty mapping.
 * @throws GatewayError CONFIG_INVALID naming the file and the problem.
 */
export function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) throw new GatewayError('CONFIG_INVALID', `config file ${path} must contain a mapping at the top level`);
  return parsed;
}

// ---------------------------------------------------------------- reference (docs/config.md)

function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

/** Short human type of a field: `integer 1–65535`, `one of a, b`, `array of string`. */
function typeOf(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s['enum'])) return `one of ${(s['enum'] as unknown[]).map((v) => `\`${String(v)}\``).join(', ')}`;
  if (Array.isArray(s['anyOf'])) return (s['anyOf'] as TSchema[]).map(typeOf).join(' or ');
  const type = s['type'];
  if (type === 'integer' || type === 'number') {
    const min = s['minimum'] as number | undefined;
    const max = s['maximum'] as number | undefined;
    const range = min !== undefined && max !== undefined ? ` ${min}–${max}` : min !== undefined ? ` ≥ ${min}` : max !== undefined ? ` ≤ ${max}` : '';
    return `${String(type)}${range}`;
  }
  if (type === 'array') {
    const items = s['items'] as TSchema | undefined;
    if (!items || Object.keys(items).length === 0) return 'array';
    return `array of ${isObjectSchema(items) ? 'objects' : typeOf(items)}`;
  }
  if (type === 'string' && typeof s['pattern'] === 'string') return `string matching \`${String(s['pattern'])}\``;
  return typeof type === 'string' ? type : 'any';
}

/**
 * Markdown reference of a declaration: one row per setting (path, environment variable, type,
 * default, description), then one table per array of objects listing the fields of its items.
 */
export function settingsReference(schema: TObject, prefix: string): string {
  const defaults = defaultsOf(schema) as JsonObject;
  const valueAt = (path: string[]): unknown => path.reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), defaults);
  const lines = ['| Setting | Environment variable | Type | Default | Description |', '|---|---|---|---|---|'];
  const itemTables: string[] = [];
  for (const setting of settingsOf(schema, prefix)) {
    const path = setting.path.join('.');
    const description = String(setting.schema['description'] ?? '');
    lines.push(`| \`${path}\` | \`${setting.name}\` | ${cell(typeOf(setting.schema))} | \`${cell(JSON.stringify(valueAt(setting.path)))}\` | ${cell(description)} |`);
    const items = setting.schema['items'] as TSchema | undefined;
    if (setting.schema['type'] === 'array' && items && isObjectSchema(items)) itemTables.push(itemTable(`${path}[]`, items));
  }
  return [lines.join('\n'), ...itemTables].join('\n\n') + '\n';
}

/** The fields of one array item (and of arrays nested in it), set inside the array's JSON. */
function itemTable(path: string, schema: TObject): string {
  const required = new Set(schema.required ?? []);
  const lines = [`Each item of \`${path.slice(0, -2)}\`:`, '', '| Field | Type | Required | Description |', '|---|---|---|---|'];
  const nested: string[] = [];
  for (const [key, child] of Object.entries(schema.properties)) {
    lines.push(`| \`${path}.${key}\` | ${cell(typeOf(child))} | ${required.has(key) ? 'yes' : 'no'} | ${cell(String(child['description'] ?? ''))} |`);
    const items = child['items'] as TSchema | undefined;
    if (child['type'] === 'array' && items && isObjectSchema(items)) nested.push(itemTable(`${path}.${key}[]`, items));
  }
  return [lines.join('\n'), ...nested].join('\n\n');
}
