import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAiWorkerConfig, defaultAiWorkerConfig, derivePublicUrl, aiWorkerEnvironmentVariables, envName } from '../../../src/ai-worker/config.ts';
import { isGatewayError } from '../../../src/errors/gateway-error.ts';

test('defaults: loopback, ai-runner port 8000, all three models, one slot, 512 Ki pixels, 192 px tiles with 12 px overlap', () => {
  const config = loadAiWorkerConfig();
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8000);
  assert.deepEqual(config.models, ['esrgan-slim-x2', 'esrgan-slim-x3', 'esrgan-slim-x4']);
  assert.equal(config.capacity, 1);
  assert.equal(config.maxInputPixels, 524_288);
  assert.equal(config.tileSize, 192);
  assert.equal(config.tileOverlap, 12);
  assert.equal(config.aliasDefaultModel, true);
  assert.equal(derivePublicUrl(config, 8000), 'http://127.0.0.1:8000');
});

test('MEDIAGATE_AI_WORKER_ variables override the defaults, with typed parsing', () => {
  const config = loadAiWorkerConfig({
    env: {
      MEDIAGATE_AI_WORKER_PORT: '8123', MEDIAGATE_AI_WORKER_GATEWAY_URL: 'http://127.0.0.1:9935/', MEDIAGATE_AI_WORKER_GATEWAY_ADMIN_TOKEN: 'admin',
      MEDIAGATE_AI_WORKER_PUBLIC_URL: 'http://10.0.0.5:8123', MEDIAGATE_AI_WORKER_MAX_INPUT_PIXELS: '250_000', MEDIAGATE_AI_WORKER_TILE_SIZE: '128',
      MEDIAGATE_AI_WORKER_CAPACITY: '2', MEDIAGATE_AI_WORKER_MODELS: 'esrgan-slim-x2, esrgan-slim-x4', MEDIAGATE_AI_WORKER_ALIAS_DEFAULT_MODEL: 'false',
      MEDIAGATE_AI_WORKER_TOKEN: 'secret', MEDIAGATE_HTTP_PORT: '1', // the gateway's variables are not the worker's business
    },
  });
  assert.equal(config.port, 8123);
  assert.equal(config.gatewayUrl, 'http://127.0.0.1:9935');
  assert.equal(config.gatewayAdminToken, 'admin');
  assert.equal(derivePublicUrl(config, 8123), 'http://10.0.0.5:8123');
  assert.equal(config.maxInputPixels, 250_000);
  assert.equal(config.tileSize, 128);
  assert.equal(config.capacity, 2);
  assert.deepEqual(config.models, ['esrgan-slim-x2', 'esrgan-slim-x4']);
  assert.equal(config.aliasDefaultModel, false);
  assert.equal(config.token, 'secret');
});

test('flags override the environment, which overrides the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-aiw-cfg-'));
  try {
    const file = join(dir, 'worker.yaml');
    writeFileSync(file, 'port: 8001\ncapacity: 2\ntileSize: 96\n');
    const config = loadAiWorkerConfig({ file, env: { MEDIAGATE_AI_WORKER_CAPACITY: '3', MEDIAGATE_AI_WORKER_TILE_SIZE: '100' }, overrides: { tileSize: 64 } });
    assert.equal(config.port, 8001);
    assert.equal(config.capacity, 3);
    assert.equal(config.tileSize, 64);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isGatewayError(err) && err.code === 'CONFIG_INVALID', String(err));
    return err.message;
  }
  return assert.fail('expected a CONFIG_INVALID error');
}

test('an unknown MEDIAGATE_AI_WORKER_ variable is refused with the list of known ones', () => {
  assert.match(configError(() => loadAiWorkerConfig({ env: { MEDIAGATE_AI_WORKER_PROT: '1' } })), /unknown environment variable MEDIAGATE_AI_WORKER_PROT; known: .*MEDIAGATE_AI_WORKER_PORT/);
});

test('bad values name the setting and where they came from', () => {
  assert.match(configError(() => loadAiWorkerConfig({ env: { MEDIAGATE_AI_WORKER_PORT: 'eighty' } })), /MEDIAGATE_AI_WORKER_PORT="eighty": expected an integer/);
  assert.match(configError(() => loadAiWorkerConfig({ env: { MEDIAGATE_AI_WORKER_MODELS: 'esrgan-slim-x8' } })), /models\.0: must be one of esrgan-slim-x2, esrgan-slim-x3, esrgan-slim-x4 \(from defaults → environment\)/);
  assert.match(configError(() => loadAiWorkerConfig({ overrides: { capacity: 0 } })), /capacity: must be >= 1/);
  assert.match(configError(() => loadAiWorkerConfig({ overrides: { tileSize: 32, tileOverlap: 13 } })), /tileOverlap 13 is too large for tileSize 32 \(at most 12\)/);
  assert.match(configError(() => loadAiWorkerConfig({ overrides: { gatewayUrl: 'ftp://x' } })), /gatewayUrl/);
});

test('a public bind without a token is refused unless anonymous access is allowed explicitly', () => {
  assert.match(configError(() => loadAiWorkerConfig({ overrides: { host: '0.0.0.0' } })), /refusing to bind 0\.0\.0\.0 without a bearer token: set MEDIAGATE_AI_WORKER_TOKEN/);
  assert.equal(loadAiWorkerConfig({ overrides: { host: '0.0.0.0', token: 't' } }).host, '0.0.0.0');
  assert.equal(derivePublicUrl(loadAiWorkerConfig({ overrides: { host: '0.0.0.0', allowAnonymous: true } }), 8000), 'http://127.0.0.1:8000');
});

test('every setting has an environment variable named after it', () => {
  const names = aiWorkerEnvironmentVariables().map((v) => v.name);
  assert.equal(names.length, Object.keys(defaultAiWorkerConfig()).length);
  assert.ok(names.includes('MEDIAGATE_AI_WORKER_GATEWAY_ADMIN_TOKEN'));
  assert.equal(envName('maxInputPixels'), 'MEDIAGATE_AI_WORKER_MAX_INPUT_PIXELS');
});
