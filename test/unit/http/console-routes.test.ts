import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { consolePolicy, importMapJson, vendorFiles } from '../../../src/http/console-routes.ts';

const CONSOLE_DIR = fileURLToPath(new URL('../../../src/console/', import.meta.url));

test('the import map maps every bare specifier the console imports to a served vendor file', () => {
  const { imports } = JSON.parse(importMapJson()) as { imports: Record<string, string> };
  const served = vendorFiles();
  for (const path of Object.values(served)) assert.ok(existsSync(path), path);
  const used = new Set<string>();
  for (const file of readdirSync(CONSOLE_DIR).filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(`${CONSOLE_DIR}${file}`, 'utf8');
    for (const m of source.matchAll(/(?:from|import)\s*\(?\s*'([^'.][^']*)'/g)) used.add(m[1]!);
  }
  assert.ok(used.has('preact') && used.has('hls.js'), [...used].join());
  for (const specifier of used) {
    const url = imports[specifier];
    assert.ok(url, `${specifier} is in the import map`);
    assert.ok(served[url.replace('/console/vendor/', '')], `${url} is served`);
  }
});

test('the page policy allows scripts from the gateway and the import map by its hash only', () => {
  const map = importMapJson();
  const policy = consolePolicy(map, ['https://media.example.com/bucket/', 'not a url']);
  const hash = createHash('sha256').update(map).digest('base64');
  const directives = Object.fromEntries(policy.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
  assert.deepEqual(directives['script-src'], ["'self'", `'sha256-${hash}'`]);
  assert.deepEqual(directives['connect-src'], ["'self'", 'https://media.example.com']);
  assert.ok(directives['media-src']!.includes('https://media.example.com'));
  assert.deepEqual(directives['frame-ancestors'], ["'none'"]);
  assert.deepEqual(directives['object-src'], ["'none'"]);
});
