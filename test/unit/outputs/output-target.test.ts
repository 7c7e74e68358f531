/**
 * Restream target URLs (domain/output-target.ts): which are accepted, how a refusal names the
 * problem without repeating the URL, and how a URL is shown (its secrets redacted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOutputUrl, checkRenditionName, MAX_OUTPUT_SECRET_CHARS, parseOutputRequests, redactOutputUrl, splitOutputSecrets } from '../../../src/domain/output-target.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';
import { outputInvocation, urlSecrets } from '../../../src/outputs/output-runner.ts';

const refused = (code: string, pattern: RegExp, secret?: string) => (err: unknown): boolean => {
  assert.ok(err instanceof GatewayError, String(err));
  assert.equal(err.code, code);
  assert.match(err.message, pattern);
  if (secret) assert.ok(!err.message.includes(secret), 'the message does not repeat the URL');
  return true;
};

test('rtmp, rtmps and srt targets are accepted with their muxer', () => {
  assert.equal(checkOutputUrl('rtmp://a.rtmp.youtube.com/live2/abcd-1234').muxer, 'flv');
  assert.equal(checkOutputUrl('RTMPS://x.livekit.cloud/x/key').muxer, 'flv');
  assert.equal(checkOutputUrl('srt://127.0.0.1:9000?streamid=k&passphrase=0123456789').muxer, 'mpegts');
});

test('an unsupported scheme or a malformed URL is refused with INVALID_OUTPUT_URL naming the problem, never the URL', () => {
  assert.throws(() => checkOutputUrl('http://example.com/live/sekrit1'), refused('INVALID_OUTPUT_URL', /"http:" is not supported/, 'sekrit1'));
  assert.throws(() => checkOutputUrl('file:///etc/passwd'), refused('INVALID_OUTPUT_URL', /"file:" is not supported/));
  assert.throws(() => checkOutputUrl('rtmp//host/live/sekrit1'), refused('INVALID_OUTPUT_URL', /malformed: not an absolute URL/, 'sekrit1'));
  assert.throws(() => checkOutputUrl('rtmp://host/live/a b'), refused('INVALID_OUTPUT_URL', /whitespace or control/));
  assert.throws(() => checkOutputUrl('rtmp://host'), refused('INVALID_OUTPUT_URL', /needs an application path/));
  assert.throws(() => checkOutputUrl('srt://host?streamid=sekrit1'), refused('INVALID_OUTPUT_URL', /needs a port/, 'sekrit1'));
  assert.throws(() => checkOutputUrl(''), refused('INVALID_OUTPUT_URL', /missing/));
  assert.throws(() => checkOutputUrl(42), refused('INVALID_OUTPUT_URL', /missing/));
  assert.throws(() => checkOutputUrl(`rtmp://h/live/${'k'.repeat(3000)}`), refused('INVALID_OUTPUT_URL', /longer than 2048/));
});

test('a shown URL keeps scheme, host and port and redacts the stream key, userinfo and every query value', () => {
  assert.equal(redactOutputUrl('rtmp://a.rtmp.youtube.com/live2/abcd-1234'), 'rtmp://a.rtmp.youtube.com/live2/[redacted]');
  assert.equal(redactOutputUrl('rtmp://127.0.0.1:1935/live/key/'), 'rtmp://127.0.0.1:1935/live/[redacted]/');
  assert.equal(redactOutputUrl('rtmps://user:pass@x.livekit.cloud:443/x/sk_1?token=t#frag'), 'rtmps://[redacted]@x.livekit.cloud:443/x/[redacted]?token=[redacted]');
  assert.equal(redactOutputUrl('srt://10.0.0.2:9000?streamid=%23!::r=live/key,m=publish&passphrase=0123456789'), 'srt://10.0.0.2:9000?streamid=[redacted]&passphrase=[redacted]');
  // An unencoded `#` starts the fragment (WHATWG URL): what follows is not shown at all.
  assert.equal(redactOutputUrl('srt://10.0.0.2:9000?streamid=#!::r=live/key&passphrase=0123456789'), 'srt://10.0.0.2:9000?streamid=[redacted]');
  assert.equal(redactOutputUrl('not a url sekrit'), '[redacted]');
});

test('the secrets removed from ffmpeg stderr cover the URL, the key, userinfo and query values', () => {
  const secrets = urlSecrets('srt://u:pw@h:9000/app/the-key?streamid=sid1&passphrase=pp1234567890');
  for (const s of ['the-key', 'sid1', 'pp1234567890', 'u', 'pw']) assert.ok(secrets.includes(s), s);
  assert.equal(secrets[0], 'srt://u:pw@h:9000/app/the-key?streamid=sid1&passphrase=pp1234567890', 'longest first');
});

test('ffmpeg copies MPEG-TS from stdin to FLV for rtmp/rtmps and to MPEG-TS for srt', () => {
  const rtmp = outputInvocation('rtmp://h/live/k').args.join(' ');
  assert.ok(rtmp.includes('-f mpegts -analyzeduration 1000000 -probesize 1000000 -i pipe:0 -c copy -f flv'));
  assert.ok(rtmp.endsWith('-f flv -flvflags no_duration_filesize -rw_timeout 10000000 -fpre /dev/fd/3 rtmp://h/live/'), rtmp);
  assert.ok(outputInvocation('srt://h:9000?streamid=x').args.join(' ').endsWith('-c copy -f mpegts -fpre /dev/fd/3 srt://h:9000'));
});

test('the target\'s secrets go to ffmpeg as preset options on fd 3, never as arguments', () => {
  const rtmp = outputInvocation('rtmp://a.rtmp.youtube.com/live2/abcd-1234?bandwidthtest=true');
  assert.equal(rtmp.secretOptions, 'rtmp_playpath=abcd-1234?bandwidthtest=true\n');
  assert.equal(rtmp.args.at(-1), 'rtmp://a.rtmp.youtube.com/live2/');
  assert.ok(!rtmp.args.join(' ').includes('abcd-1234'));
  // An application with an instance keeps both path segments; only the last one is the key.
  assert.deepEqual(splitOutputSecrets('rtmps://x.example:443/app/inst/key-1'), { publicUrl: 'rtmps://x.example:443/app/inst/', options: [['rtmp_playpath', 'key-1']] });
  // No key: nothing to hide, no preset.
  const bare = outputInvocation('rtmp://h/live/');
  assert.equal(bare.secretOptions, '');
  assert.ok(!bare.args.includes('-fpre'));
  // SRT: streamid (unencoded `#` kept, as ffmpeg reads the URL) and passphrase leave the URL; other parameters stay.
  const srt = outputInvocation('srt://10.0.0.2:9000?mode=caller&streamid=#!::r=live/key,m=publish&latency=200000&passphrase=0123+456789');
  assert.equal(srt.secretOptions, 'streamid=#!::r=live/key,m=publish\npassphrase=0123 456789\n');
  assert.equal(srt.args.at(-1), 'srt://10.0.0.2:9000?mode=caller&latency=200000');
  assert.equal(outputInvocation('srt://h:9000?streamid=a&streamid=b').secretOptions, 'streamid=a\n', 'the first occurrence wins, as in ffmpeg');
  // A secret longer than ffmpeg's preset line is refused when the output is configured.
  assert.throws(() => checkOutputUrl(`rtmp://h/live/${'k'.repeat(MAX_OUTPUT_SECRET_CHARS + 1)}`), (err: GatewayError) => err.code === 'INVALID_OUTPUT_URL' && /stream key is longer than 900/.test(err.message) && !err.message.includes('kkk'));
});

test('rendition names and configured lists: default source, named entries in the errors', () => {
  assert.equal(checkRenditionName(undefined), 'source');
  assert.equal(checkRenditionName('P240p30fps16x9'), 'P240p30fps16x9');
  assert.throws(() => checkRenditionName('../x'), refused('UNKNOWN_RENDITION', /profile name/));
  assert.deepEqual(parseOutputRequests([{ url: 'rtmp://h/live/k' }, { url: 'srt://h:1', rendition: 'P240p30fps16x9' }], 'auth webhook'),
    [{ url: 'rtmp://h/live/k', rendition: 'source' }, { url: 'srt://h:1', rendition: 'P240p30fps16x9' }]);
  assert.throws(() => parseOutputRequests([{ url: 'rtmp://h/live/k' }, { url: 'udp://h:1/sekrit' }], 'auth webhook'),
    refused('INVALID_OUTPUT_URL', /^auth webhook: outputs\[1\]: output url scheme "udp:"/, 'sekrit'));
  assert.throws(() => parseOutputRequests({}, 'auth webhook'), refused('INVALID_REQUEST', /must be an array/));
  assert.throws(() => parseOutputRequests(['rtmp://h/live/k'], 'auth webhook'), refused('INVALID_REQUEST', /outputs\[0\] must be an object/));
});

test('configured outputs are checked at startup: a bad target in outputs.defaults or a stream key refuses the configuration naming the setting, never the URL', async () => {
  const { loadConfig } = await import('../../../src/config/config.ts');
  const { StaticKeyAuthorizer } = await import('../../../src/ingest/authorizers.ts');
  const ok = loadConfig({ env: { MEDIAGATE_OUTPUTS_DEFAULTS: '[{"url":"rtmp://127.0.0.1/live/cfg-key"}]' } });
  assert.deepEqual(ok.outputs.defaults, [{ url: 'rtmp://127.0.0.1/live/cfg-key' }]);
  assert.throws(() => loadConfig({ env: { MEDIAGATE_OUTPUTS_DEFAULTS: '[{"url":"udp://127.0.0.1:9/cfg-key"}]' } }),
    refused('CONFIG_INVALID', /outputs\.defaults: outputs\[0\]: output url scheme "udp:" is not supported/, 'cfg-key'));
  assert.throws(() => loadConfig({ env: { MEDIAGATE_STREAM_KEYS: '[{"streamKey":"sk1","manifestID":"m1","outputs":[{"url":"rtmp:/x"}]}]' } }),
    refused('CONFIG_INVALID', /streamKeys\[0\]\.outputs: outputs\[0\]/));
  assert.throws(() => loadConfig({ env: { MEDIAGATE_OUTPUTS_BACKOFF_INITIAL_MS: '5000', MEDIAGATE_OUTPUTS_BACKOFF_MAX_MS: '1000' } }),
    refused('CONFIG_INVALID', /outputs\.backoffMaxMs \(1000\) must be at least outputs\.backoffInitialMs \(5000\)/));
  const grant = await new StaticKeyAuthorizer([{ streamKey: 'sk1', manifestID: 'm1', outputs: [{ url: 'srt://h:9000?streamid=x' }] }], [])
    .authorize({ streamKey: 'sk1', url: 'rtmp://127.0.0.1/live/sk1', protocol: 'rtmp' });
  assert.deepEqual(grant.outputs, [{ url: 'srt://h:9000?streamid=x', rendition: 'source' }]);
});
