import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTranscodeConfiguration, parseTranscodeConfigurationHeader } from '../../../src/ingest/transcode-config.ts';
import { PRESETS } from '../../../src/domain/profile.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

const tiny = { name: 'tiny', width: 160, height: 90, bitrate: 100_000 };

function refuses(fn: () => unknown, code: GatewayError['code'], message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GatewayError, `expected a GatewayError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

test('the ladder is the presets in order followed by the profiles in order', () => {
  const config = parseTranscodeConfiguration({
    manifestID: 'show-1',
    presets: ['P360p30fps16x9', 'P240p30fps16x9'],
    profiles: [tiny, { width: 800, height: 450, bitrate: 900_000, fps: 25 }],
  }, 'auth webhook');
  assert.equal(config.manifestID, 'show-1');
  assert.deepEqual(config.profiles?.map((p) => p.name), ['P360p30fps16x9', 'P240p30fps16x9', 'tiny', 'custom_800x450_900000']);
  assert.deepEqual(config.profiles?.[0], PRESETS['P360p30fps16x9']);
  assert.equal(config.profiles?.[2]?.bitrateBps, 100_000);
  assert.equal(config.profiles?.[3]?.fps, 25);
  assert.deepEqual(config.ignoredFields, []);
});

test('presets alone or profiles alone each make the whole ladder', () => {
  assert.deepEqual(parseTranscodeConfiguration({ presets: ['P144p30fps16x9'] }, 'auth webhook').profiles?.map((p) => p.name), ['P144p30fps16x9']);
  assert.deepEqual(parseTranscodeConfiguration({ profiles: [tiny] }, 'auth webhook').profiles?.map((p) => p.name), ['tiny']);
});

test('absent, null or empty presets and profiles leave the ladder undefined so the caller keeps its default', () => {
  for (const raw of [{}, { manifestID: 'a' }, { presets: [], profiles: [] }, { presets: null, profiles: null }]) {
    const config = parseTranscodeConfiguration(raw, 'auth webhook');
    assert.equal(config.profiles, undefined, JSON.stringify(raw));
    assert.equal('profiles' in config, false);
  }
});

test('an absent, null or empty manifestID is reported as unset', () => {
  for (const manifestID of [undefined, null, '']) {
    const config = parseTranscodeConfiguration({ manifestID }, 'Livepeer-Transcode-Configuration header');
    assert.equal(config.manifestID, undefined);
    assert.equal('manifestID' in config, false);
  }
});

test('a manifestID outside [A-Za-z0-9_-]{1,64} is refused as INVALID_NAME naming the source', () => {
  refuses(() => parseTranscodeConfiguration({ manifestID: '../etc' }, 'auth webhook'), 'INVALID_NAME', /^auth webhook: manifestID: must be 1-64 characters/);
  refuses(() => parseTranscodeConfiguration({ manifestID: 'x'.repeat(65) }, 'auth webhook'), 'INVALID_NAME', /manifestID/);
  refuses(() => parseTranscodeConfiguration({ manifestID: 42 }, 'Livepeer-Transcode-Configuration header'), 'INVALID_NAME',
    /^Livepeer-Transcode-Configuration header: manifestID: .*got 42$/);
});

test('a bad profile is refused naming the source, its index and its field', () => {
  refuses(() => parseTranscodeConfiguration({ profiles: [tiny, { width: 1.5, height: 90, bitrate: 100_000 }] }, 'auth webhook'),
    'INVALID_PROFILE', /^auth webhook: profiles\[1\]\.width: must be an integer, got 1\.5$/);
  refuses(() => parseTranscodeConfiguration({ profiles: [{ width: 640, height: 360 }] }, 'Livepeer-Transcode-Configuration header'),
    'INVALID_PROFILE', /^Livepeer-Transcode-Configuration header: profiles\[0\]\.bitrate: is required$/);
  refuses(() => parseTranscodeConfiguration({ profiles: [{ ...tiny, encoder: 'VP8' }] }, 'auth webhook'), 'INVALID_PROFILE', /profiles\[0\]\.encoder: VP8/);
});

test('an unknown or non-string preset is refused naming its index', () => {
  refuses(() => parseTranscodeConfiguration({ presets: ['P360p30fps16x9', 'P1080p'] }, 'auth webhook'), 'INVALID_PROFILE',
    /^auth webhook: presets\[1\]: unknown preset "P1080p"; known presets: P720p60fps16x9/);
  refuses(() => parseTranscodeConfiguration({ presets: [7] }, 'auth webhook'), 'INVALID_PROFILE', /^auth webhook: presets\[0\]: must be a preset name string, got 7$/);
});

test('presets or profiles that are not arrays are refused naming the field', () => {
  refuses(() => parseTranscodeConfiguration({ presets: 'P360p30fps16x9' }, 'auth webhook'), 'INVALID_PROFILE', /^auth webhook: presets: must be an array of preset names/);
  refuses(() => parseTranscodeConfiguration({ profiles: tiny }, 'auth webhook'), 'INVALID_PROFILE', /^auth webhook: profiles: must be an array of profile objects/);
});

test('duplicate rendition names are refused, across presets and profiles too', () => {
  refuses(() => parseTranscodeConfiguration({ profiles: [tiny, { ...tiny, width: 320 }] }, 'auth webhook'), 'INVALID_PROFILE',
    /^auth webhook: profiles\[1\]: duplicate rendition name "tiny" \(already used by profiles\[0\]\)$/);
  refuses(() => parseTranscodeConfiguration({ presets: ['P240p30fps4x3'], profiles: [{ ...tiny, name: 'P240p30fps4x3' }] }, 'auth webhook'), 'INVALID_PROFILE',
    /profiles\[0\]: duplicate rendition name "P240p30fps4x3" \(already used by presets\[0\]\)/);
  refuses(() => parseTranscodeConfiguration({ presets: ['P240p30fps4x3', 'P240p30fps4x3'] }, 'auth webhook'), 'INVALID_PROFILE', /presets\[1\]: duplicate/);
});

test('more than 16 renditions (presets + profiles) are refused before any is parsed', () => {
  const profiles = Array.from({ length: 10 }, (_, i) => ({ ...tiny, name: `r${i}` }));
  const presets = Object.keys(PRESETS).slice(0, 7);
  refuses(() => parseTranscodeConfiguration({ presets, profiles }, 'auth webhook'), 'INVALID_PROFILE', /at most 16 renditions per stream \(presets \+ profiles\), got 17/);
  refuses(() => parseTranscodeConfiguration({ profiles: Array.from({ length: 1000 }, () => 'junk') }, 'auth webhook'), 'INVALID_PROFILE', /got 1000/);
  assert.equal(parseTranscodeConfiguration({ presets, profiles: profiles.slice(0, 9) }, 'auth webhook').profiles?.length, 16);
});

test('fields mediagate does not implement are listed in ignoredFields, never refused', () => {
  const config = parseTranscodeConfiguration({
    manifestID: 'show-1', streamKey: 'abc', objectStore: 's3+https://k:s@host/bucket', recordObjectStore: 'x',
    detection: { freq: 4 }, previewImage: true, verificationFreq: 3, profiles: [tiny],
  }, 'auth webhook');
  assert.deepEqual(config.ignoredFields, ['streamKey', 'objectStore', 'recordObjectStore', 'detection', 'previewImage', 'verificationFreq']);
  assert.deepEqual(config.profiles?.map((p) => p.name), ['tiny']);
});

test('fields holding Go zero values are unset, not ignored', () => {
  const config = parseTranscodeConfiguration({
    manifestID: 'a', streamKey: '', objectStore: '', recordObjectStore: null, verificationFreq: 0, forceSessionReinit: false, previousSessions: [], detection: {},
  }, 'auth webhook');
  assert.deepEqual(config.ignoredFields, []);
});

test('at most 32 ignored field names are listed, each cut to 64 characters', () => {
  const raw: Record<string, unknown> = { ['k'.repeat(100)]: 1 };
  for (let i = 0; i < 100; i += 1) raw[`f${i}`] = 'x';
  const config = parseTranscodeConfiguration(raw, 'auth webhook');
  assert.equal(config.ignoredFields.length, 32);
  assert.equal(config.ignoredFields[0], 'k'.repeat(64));
});

test('a value that is not a JSON object is refused as INVALID_REQUEST', () => {
  for (const raw of [null, [], 'text', 3]) {
    refuses(() => parseTranscodeConfiguration(raw, 'auth webhook'), 'INVALID_REQUEST', /^auth webhook: must be a JSON object/);
  }
});

test('the header value is parsed as JSON with the same rules', () => {
  const config = parseTranscodeConfigurationHeader(JSON.stringify({ manifestID: 'm1', presets: ['P144p30fps16x9'], objectStore: 'x' }));
  assert.equal(config.manifestID, 'm1');
  assert.deepEqual(config.profiles?.map((p) => p.name), ['P144p30fps16x9']);
  assert.deepEqual(config.ignoredFields, ['objectStore']);
  refuses(() => parseTranscodeConfigurationHeader('{"profiles":[{"width":"wide"}]}'), 'INVALID_PROFILE',
    /^Livepeer-Transcode-Configuration header: profiles\[0\]\.width: must be an integer/);
});

test('a header that is not JSON is refused as INVALID_REQUEST naming the header', () => {
  for (const text of ['{"presets":', 'P360p30fps16x9', "{'a':1}"]) {
    refuses(() => parseTranscodeConfigurationHeader(text), 'INVALID_REQUEST', /^Livepeer-Transcode-Configuration header: not valid JSON \(/);
  }
  refuses(() => parseTranscodeConfigurationHeader('["P360p30fps16x9"]'), 'INVALID_REQUEST', /^Livepeer-Transcode-Configuration header: must be a JSON object, got an array$/);
});

test('an empty or blank header is treated as absent', () => {
  assert.deepEqual(parseTranscodeConfigurationHeader(''), { ignoredFields: [] });
  assert.deepEqual(parseTranscodeConfigurationHeader('  '), { ignoredFields: [] });
});

test('record (Livepeer\'s per-stream recording switch) is honoured as a boolean; null leaves the default, anything else is refused', () => {
  assert.equal(parseTranscodeConfiguration({ manifestID: 'a', record: true }, 'auth webhook').record, true);
  assert.equal(parseTranscodeConfiguration({ manifestID: 'a', record: false }, 'auth webhook').record, false);
  assert.equal(parseTranscodeConfiguration({ manifestID: 'a', record: null }, 'auth webhook').record, undefined);
  assert.deepEqual(parseTranscodeConfiguration({ manifestID: 'a', record: true }, 'auth webhook').ignoredFields, []);
  assert.throws(() => parseTranscodeConfiguration({ manifestID: 'a', record: 'yes' }, 'auth webhook'),
    (e: GatewayError) => e.code === 'INVALID_REQUEST' && /record must be true or false/.test(e.message));
});

test('a watermark is honoured from the auth webhook (false turns it off) and reported as ignored in the push header', () => {
  const webhook = parseTranscodeConfiguration({ manifestID: 'm', watermark: { imageKey: 'marks/a.png' } }, 'auth webhook');
  assert.deepEqual(webhook.watermark, { kind: 'image', image: { key: 'marks/a.png' }, widthFraction: 0.15, position: 'bottom-right', margin: { fraction: 0.02 }, opacity: 0.8 });
  assert.deepEqual(webhook.ignoredFields, []);
  assert.equal(parseTranscodeConfiguration({ manifestID: 'm', watermark: false }, 'auth webhook').watermark, false);
  assert.throws(() => parseTranscodeConfiguration({ watermark: { image: '/etc/a.png' } }, 'auth webhook'),
    (e: unknown) => e instanceof GatewayError && e.code === 'INVALID_WATERMARK' && /^auth webhook: watermark\.image: a local path is not accepted/.test(e.message));
  const header = parseTranscodeConfigurationHeader(JSON.stringify({ watermark: { image: '/etc/a.png' } }));
  assert.equal(header.watermark, undefined);
  assert.deepEqual(header.ignoredFields, ['watermark']);
});
