/**
 * openapi/payments.yaml against the code's rules: a valid OpenAPI 3.1 document; every
 * operation documents the admin-token errors in the shared error shape; every money field
 * is an integer string, never a JSON number; response objects admit no undeclared field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { OpenAPIFramework } from 'express-openapi-validator/dist/framework/index.js';
import { parse } from 'yaml';
import { PAYMENTS_SPEC_PATH } from '../../../src/payments/payments-routes.ts';

type Json = Record<string, any>;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const MONEY_FIELDS = new Set(['balance', 'amount', 'credits', 'requestedAmount', 'shortfall']);

async function spec(): Promise<Json> {
  return parse(await readFile(PAYMENTS_SPEC_PATH, 'utf8')) as Json;
}

function deref(doc: Json, node: Json): Json {
  let current = node;
  for (let hops = 0; typeof current['$ref'] === 'string'; hops++) {
    assert.ok(hops < 16, 'reference cycle');
    current = (current['$ref'] as string).slice(2).split('/').reduce<Json>((at, key) => at?.[key], doc);
    assert.ok(current, `unresolved reference ${String(node['$ref'])}`);
  }
  return current;
}

/** Calls `visit(name, schema)` for every property of every object schema reachable from `node`. */
function walk(doc: Json, node: unknown, visit: (name: string, schema: Json, parent: Json) => void, seen = new Set<unknown>()): void {
  if (!node || typeof node !== 'object' || seen.has(node)) return;
  seen.add(node);
  const n = node as Json;
  if (typeof n['$ref'] === 'string') {
    walk(doc, deref(doc, n), visit, seen);
    return;
  }
  if (n['properties']) for (const [name, prop] of Object.entries<Json>(n['properties'])) visit(name, deref(doc, prop), n);
  for (const value of Object.values(n)) walk(doc, value, visit, seen);
}

test('the payments spec is a valid OpenAPI 3.1 document', async () => {
  const { apiDoc } = await new OpenAPIFramework({ apiDoc: PAYMENTS_SPEC_PATH, validateApiSpec: true }).initialize({});
  assert.equal(apiDoc.openapi, '3.1.0');
});

test('every operation documents 401 and 403 in the shared error shape', async () => {
  const doc = await spec();
  for (const [path, item] of Object.entries<Json>(doc['paths'])) {
    for (const method of HTTP_METHODS.filter((m) => item[m])) {
      const responses = item[method]['responses'] as Json;
      for (const status of ['401', '403']) {
        assert.ok(responses[status], `${method.toUpperCase()} ${path} lacks ${status}`);
      }
      for (const status of Object.keys(responses).filter((s) => Number(s) >= 400)) {
        const schema = deref(doc, deref(doc, responses[status])['content']['application/json']['schema']);
        assert.deepEqual(schema, deref(doc, { $ref: '#/components/schemas/Error' }), `${method.toUpperCase()} ${path} ${status}`);
      }
    }
  }
});

test('money is an integer string everywhere, and response objects are closed', async () => {
  const doc = await spec();
  let moneyFields = 0;
  walk(doc, doc['paths'], (name, schema) => {
    if (!MONEY_FIELDS.has(name)) return;
    moneyFields++;
    assert.equal(schema['type'], 'string', `${name} must be a string`);
    assert.match(String(schema['pattern']), /^\^\(?(0\|)?\[1-9\]\[0-9\]/, `${name} must be a decimal integer pattern`);
  });
  assert.ok(moneyFields >= 10, `found ${moneyFields} money fields`);
  for (const [name, schema] of Object.entries<Json>(doc['components']['schemas'])) {
    if (schema['type'] === 'object' && name !== 'Error') assert.equal(schema['additionalProperties'], false, `${name} must not admit undeclared fields`);
  }
});
