import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, environmentVariables } from '../../../src/config/config.ts';
import { DEFAULT_LADDER } from '../../../src/config/config-schema.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

test('defaults bind loopback on the Livepeer ports with the measured default ladder', () => {
  const c = loadConfig({ cwd: '/srv/mg' });
  assert.equal(c.http.host, '127.0.0.1');
  assert.equal(c.http.port, 9935);
  assert.equal(c.rtmp.port, 1935);
  assert.equal(c.http.publicUrl, 'http://127.0.0.1:9935');
  assert.deepEqual(c.ladder, DEFAULT_LADDER);
  assert.equal(c.storage.dir, '/srv/mg/data/objects');
  assert.equal(c.hls.windowSegments, 6);
});

test('a YAML file overrides defaults and the environment overrides the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-config-'));
  try {
    const file = join(dir, 'mediagate.yaml');
    writeFileSync(file, 'http:\n  port: 8000\ntranscode:\n  x264Preset: superfast\nladder: [P240p30fps16x9]\n');
    const c = loadConfig({ file, env: { MEDIAGATE_HTTP_PORT: '9000', MEDIAGATE_TRANSCODE_CONCURRENCY: '2', MEDIAGATE_LADDER: 'P360p30fps16x9,P144p30fps16x9' }, cwd: dir });
    assert.equal(c.http.port, 9000);
    assert.equal(c.transcode.x264Preset, 'superfast');
    assert.equal(c.transcode.concurrency, 2);
    assert.deepEqual(c.ladder, ['P360p30fps16x9', 'P144p30fps16x9']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('environment names are derived from field paths in SCREAMING_SNAKE', () => {
  const names = environmentVariables().map((v) => v.name);
  for (const n of ['MEDIAGATE_HTTP_PORT', 'MEDIAGATE_TRANSCODE_X264_PRESET', 'MEDIAGATE_SEGMENT_TARGET_MS', 'MEDIAGATE_REDIS_URL', 'MEDIAGATE_STREAM_KEYS']) {
    assert.ok(names.includes(n), n);
  }
});

test('invalid values are refused naming the field and the source', () => {
  assert.throws(() => loadConfig({ env: { MEDIAGATE_HTTP_PORT: 'eighty' } }), (e: GatewayError) => e.code === 'CONFIG_INVALID' && /MEDIAGATE_HTTP_PORT/.test(e.message));
  assert.throws(() => loadConfig({ env: { MEDIAGATE_HTTP_PORT: '70000' } }), /http\.port: must be <= 65535 \(from defaults → environment\)/);
  assert.throws(() => loadConfig({ env: { MEDIAGATE_TRANSCODE_X264_PRESET: 'turbo' } }), /transcode\.x264Preset: must be one of ultrafast/);
  assert.throws(() => loadConfig({ env: { MEDIAGATE_NO_SUCH: '1' } }), /unknown environment variable MEDIAGATE_NO_SUCH/);
  assert.throws(() => loadConfig({ overrides: { http: { prot: 1 } } }), /http: unknown field "prot"/);
  assert.throws(() => loadConfig({ overrides: { streamKeys: [{ streamKey: 'a/b', manifestID: 'x' }] } }), /streamKeys\.0\.streamKey/);
});

test('a public bind with anonymous publishing refuses to start unless allowed', () => {
  assert.throws(() => loadConfig({ env: { MEDIAGATE_HTTP_HOST: '0.0.0.0' } }), /refusing to bind 0\.0\.0\.0 with anonymous publishing.*allowAnonymous/);
  const allowed = loadConfig({ env: { MEDIAGATE_HTTP_HOST: '0.0.0.0', MEDIAGATE_RTMP_HOST: '0.0.0.0', MEDIAGATE_ALLOW_ANONYMOUS: 'true' } });
  assert.equal(allowed.http.publicUrl, 'http://127.0.0.1:9935');
  const keyed = loadConfig({ env: { MEDIAGATE_HTTP_HOST: '0.0.0.0', MEDIAGATE_STREAM_KEYS: '[{"streamKey":"s3cret","manifestID":"show"}]' } });
  assert.equal(keyed.streamKeys[0]!.manifestID, 'show');
});

test('stream heartbeat and segment-wait settings: defaults, environment names, and a TTL that must outlive its renewal', () => {
  const defaults = loadConfig({ env: {} });
  assert.deepEqual(defaults.hls, { windowSegments: 6, maxSegmentWaitMs: 10_000, heartbeatIntervalMs: 2000, heartbeatTtlMs: 10_000, sweepIntervalMs: 1000 });
  const set = loadConfig({ env: { MEDIAGATE_HLS_MAX_SEGMENT_WAIT_MS: '4000', MEDIAGATE_HLS_HEARTBEAT_TTL_MS: '6000', MEDIAGATE_HLS_SWEEP_INTERVAL_MS: '500' } });
  assert.equal(set.hls.maxSegmentWaitMs, 4000);
  assert.equal(set.hls.heartbeatTtlMs, 6000);
  assert.equal(set.hls.sweepIntervalMs, 500);
  assert.throws(() => loadConfig({ env: { MEDIAGATE_HLS_HEARTBEAT_TTL_MS: '2000' } }), /hls\.heartbeatTtlMs \(2000\) must exceed hls\.heartbeatIntervalMs \(2000\)/);
});

test('a transcoder on its own host binds a non-loopback address for /metrics without publishing auth; a gateway there still needs it', () => {
  const env = { MEDIAGATE_HTTP_HOST: '10.20.30.40' };
  assert.throws(() => loadConfig({ env }), /refusing to bind 10\.20\.30\.40 with anonymous publishing/);
  assert.throws(() => loadConfig({ env, role: 'gateway' }), /refusing to bind 10\.20\.30\.40 with anonymous publishing/);
  assert.equal(loadConfig({ env, role: 'transcoder' }).http.host, '10.20.30.40');
  assert.throws(() => loadConfig({ env: { ...env, MEDIAGATE_AUTH_MODE: 'webhook' }, role: 'transcoder' }), /auth\.webhookUrl is empty/);
});

test('the WebRTC UDP port range is both ends or neither, in order; ICE servers are STUN/TURN URLs', () => {
  const c = loadConfig({ env: { MEDIAGATE_WEBRTC_PORT_RANGE_BEGIN: '50000', MEDIAGATE_WEBRTC_PORT_RANGE_END: '50100', MEDIAGATE_WEBRTC_ICE_SERVERS: 'stun:stun.example.net:3478,turn:u:p@turn.example.net:3478' } });
  assert.deepEqual([c.webrtc.portRangeBegin, c.webrtc.portRangeEnd, c.webrtc.iceServers.length], [50000, 50100, 2]);
  const invalid = (env: Record<string, string>, what: RegExp): void => {
    assert.throws(() => loadConfig({ env }), (e: GatewayError) => e.code === 'CONFIG_INVALID' && what.test(e.message));
  };
  invalid({ MEDIAGATE_WEBRTC_PORT_RANGE_BEGIN: '50000' }, /webrtc\.portRangeBegin \(50000\) and webrtc\.portRangeEnd \(0\)/);
  invalid({ MEDIAGATE_WEBRTC_PORT_RANGE_BEGIN: '50100', MEDIAGATE_WEBRTC_PORT_RANGE_END: '50000' }, /begin <= end/);
  invalid({ MEDIAGATE_WEBRTC_ICE_SERVERS: 'http://stun.example.net' }, /ICE_SERVERS|iceServers/);
});
