/**
 * The error-code registry (src/errors/gateway-error.ts) against where its codes are
 * documented. The rule:
 *  - docs/wire-contract.md §12 has one table row per registry code, no more: code, the
 *    registry's HTTP status, where it is returned ("returned by"), and a meaning;
 *  - each OpenAPI spec (openapi/<api>.yaml) names, in the description of its
 *    `Error.detail.code` schema, exactly the codes whose row lists `<api>` or `all`, each
 *    written as "`CODE` (status)" with the registry's status.
 * Adding a code to the registry without a docs row, or listing it for an API without naming
 * it in that API's spec (or the other way round), fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { ERROR_CODES, type ErrorCode } from '../../../src/errors/gateway-error.ts';
import { fileURLToPath } from 'node:url';
import { boundPort, closeServer, listenEarly } from '../../../src/http/http-app.ts';

/** Where a code can come from (docs/wire-contract.md §12, "returned by"). */
/** Absolute path of a repository-relative path. */
const repoPath = (relative: string): string => fileURLToPath(new URL(`../../../${relative}`, import.meta.url));

const SCOPES = ['all', 'push', 'playback', 'rtmp', 'ai', 'control', 'payments', 'startup'] as const;
type Scope = (typeof SCOPES)[number];
const SPEC_APIS = ['ai', 'control', 'payments'] as const;

interface DocRow { readonly status: number; readonly scopes: readonly Scope[]; readonly meaning: string }

/** Rows of the §12 table: `| \`CODE\` | status | scopes | meaning |`. */
export function parseErrorTable(markdown: string): Map<string, DocRow> {
  const section = /^## \d+\. Errors$([\s\S]*?)(?=^## |$(?![\s\S]))/m.exec(markdown);
  assert.ok(section, 'docs/wire-contract.md has an "Errors" section');
  const rows = new Map<string, DocRow>();
  for (const line of section[1]!.split('\n')) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|\s*([^|]*?)\s*\|$/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(m[1]!), `${m[1]} has one row in docs/wire-contract.md`);
    const scopes = m[3]!.split(',').map((s) => s.trim());
    for (const s of scopes) assert.ok((SCOPES as readonly string[]).includes(s), `${m[1]}: unknown "returned by" value "${s}"`);
    rows.set(m[1]!, { status: Number(m[2]), scopes: scopes as Scope[], meaning: m[4]! });
  }
  return rows;
}

/** "`CODE` (status)" pairs named in a description. */
export function namedCodes(description: string): Map<string, number> {
  const named = new Map<string, number>();
  for (const m of description.matchAll(/`([A-Z][A-Z0-9_]*)`\s*\((\d{3})\)/g)) named.set(m[1]!, Number(m[2]));
  return named;
}

async function specCodeDescription(api: string): Promise<string> {
  const spec = parse(await readFile(repoPath(`openapi/${api}.yaml`), 'utf8')) as {
    components?: { schemas?: { Error?: { properties?: { detail?: { properties?: { code?: { description?: string } } } } } } };
  };
  const description = spec.components?.schemas?.Error?.properties?.detail?.properties?.code?.description;
  assert.equal(typeof description, 'string', `openapi/${api}.yaml: components.schemas.Error.properties.detail.properties.code has a description`);
  return description!;
}

const docsRows = async (): Promise<Map<string, DocRow>> => parseErrorTable(await readFile(repoPath('docs/wire-contract.md'), 'utf8'));

test('every registry code has exactly one row in docs/wire-contract.md with its status and a meaning, and no row names an unknown code', async () => {
  const rows = await docsRows();
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const row = rows.get(code);
    assert.ok(row, `${code} is documented in docs/wire-contract.md §12`);
    assert.equal(row.status, spec.status, `${code}: docs status matches the registry`);
    assert.ok(row.meaning.length >= 10, `${code}: docs give a meaning`);
  }
  for (const code of rows.keys()) assert.ok(code in ERROR_CODES, `docs/wire-contract.md lists ${code}, which is not in the registry`);
});

for (const api of SPEC_APIS) {
  test(`openapi/${api}.yaml names exactly the codes the docs list for it, with the registry's status`, async () => {
    const rows = await docsRows();
    const expected = [...rows].filter(([, r]) => r.scopes.includes(api) || r.scopes.includes('all')).map(([c]) => c).sort();
    const named = namedCodes(await specCodeDescription(api));
    assert.deepEqual([...named.keys()].sort(), expected, `openapi/${api}.yaml Error.detail.code description vs docs/wire-contract.md §12`);
    for (const [code, status] of named) assert.equal(status, ERROR_CODES[code as ErrorCode].status, `openapi/${api}.yaml: ${code} status`);
  });
}

test('the rule catches a code added to the registry without docs, and a spec naming a wrong status', () => {
  const rows = parseErrorTable('## 12. Errors\n\n| code | HTTP | returned by | meaning |\n|---|---|---|---|\n| `NOT_FOUND` | 404 | all | no such thing here |\n');
  const missing = Object.keys(ERROR_CODES).filter((c) => !rows.has(c));
  assert.ok(missing.includes('STARTING') && !missing.includes('NOT_FOUND'));
  assert.deepEqual([...namedCodes('`NOT_FOUND` (404), `STARTING` (500)')], [['NOT_FOUND', 404], ['STARTING', 500]]);
  assert.notEqual(namedCodes('`STARTING` (500)').get('STARTING'), ERROR_CODES.STARTING.status);
});

test('a request before the application is installed gets 503 STARTING (its own code) with Retry-After', async () => {
  assert.deepEqual(ERROR_CODES.STARTING, { status: 503, retryable: true, message: 'the gateway is starting' });
  const early = await listenEarly('127.0.0.1', 0);
  try {
    const res = await fetch(`http://127.0.0.1:${boundPort(early.server)}/healthz`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = await res.json() as { detail: { msg: string; code: string } };
    assert.equal(body.detail.code, 'STARTING');
    assert.match(body.detail.msg, /starting/);
  } finally {
    await closeServer(early.server);
  }
});
