/**
 * `make run-ai-worker` beside `make run` joins the local gateway with no settings: the
 * Makefile recipe defaults MEDIAGATE_AI_WORKER_GATEWAY_URL to the gateway's default address.
 * The recipe's command is run through bash with `node` swapped for `printenv`, so nothing is
 * started (make itself is not run: it would check the installed packages).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { defaultConfig } from '../../../src/config/config.ts';

const makefile = readFileSync(new URL('../../../Makefile', import.meta.url), 'utf8');

/** The recipe line of `run-ai-worker`, with make's `$$` unescaped and the node command replaced. */
function recipeCommand(): string {
  const block = /^run-ai-worker:.*\n((?:\t.*\n)+)/m.exec(makefile);
  assert.ok(block, 'Makefile has a run-ai-worker target with a recipe');
  const line = block[1]!.split('\n').map((l) => l.trim()).find((l) => l.includes('cmd/ai-worker.ts'));
  assert.ok(line, 'the recipe runs cmd/ai-worker.ts');
  return line.replace(/\$\$/g, '$').replace('$(NODE_RUN) cmd/ai-worker.ts', 'printenv MEDIAGATE_AI_WORKER_GATEWAY_URL || true');
}

function gatewayUrlSeen(env: Record<string, string>): string {
  return execFileSync('bash', ['-c', recipeCommand()], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } }).toString().trim();
}

test('make run-ai-worker registers with the local gateway default address when nothing is set', () => {
  const { host, port } = defaultConfig().http;
  assert.equal(gatewayUrlSeen({}), `http://${host}:${port}`);
});

test('make run-ai-worker keeps a gateway URL that is set, and an empty one (do not register)', () => {
  assert.equal(gatewayUrlSeen({ MEDIAGATE_AI_WORKER_GATEWAY_URL: 'http://10.0.0.5:9935' }), 'http://10.0.0.5:9935');
  assert.equal(gatewayUrlSeen({ MEDIAGATE_AI_WORKER_GATEWAY_URL: '' }), '');
});
