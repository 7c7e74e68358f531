import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactSecrets, redactStreamPaths } from '../../../src/log/redact.ts';

test('NMS publish, busy and play messages lose the stream name but keep the app', () => {
  assert.equal(redactStreamPaths('RTMP session a1 127.0.0.1:5000 start push /live/sk_123'), 'RTMP session a1 127.0.0.1:5000 start push /live/[redacted]');
  assert.equal(
    redactStreamPaths('RTMP session a1 127.0.0.1:5000 push /live/sk_123 error, streamPath=/live/sk_123 already has a publisher'),
    'RTMP session a1 127.0.0.1:5000 push /live/[redacted] error, streamPath=/live/[redacted] already has a publisher',
  );
});

test('NMS invalid-path dumps lose both app and name', () => {
  const out = redactStreamPaths('RTMP session a1 ::ffff:127.0.0.1:5000 invalid stream path characters: app=sk_123, name=x.y');
  assert.equal(out, 'RTMP session a1 ::ffff:127.0.0.1:5000 invalid stream path characters: app=[redacted]');
  assert.equal(redactStreamPaths('bad name=sk_123'), 'bad name=[redacted]');
});

test('RTMP URLs in ffmpeg output keep scheme, host and app only', () => {
  assert.equal(redactStreamPaths("Input #0, flv, from 'rtmp://127.0.0.1:1935/live/sk_123':"), "Input #0, flv, from 'rtmp://127.0.0.1:1935/live/[redacted]':");
  assert.equal(redactStreamPaths('rtmp://[::1]:1935/sk_123?sign=1 x'), 'rtmp://[::1]:1935/[redacted] x');
  assert.equal(redactStreamPaths('RTMPS://h/app/sk_123/more'), 'RTMPS://h/app/[redacted]');
});

test('long file paths and messages without paths are left alone', () => {
  for (const text of ["Opening '/tmp/mg/segments/0.ts' for writing", 'RTMP session x close', 'Store ready at /var/lib/mg/nms-store', 'time=00:00:02.00 speed=1x']) {
    assert.equal(redactStreamPaths(text), text);
  }
});

test('redactSecrets removes every literal occurrence of the secrets, then stream paths', () => {
  assert.equal(redactSecrets("Opening '/tmp/sk_123/0.ts' rtmp://h/live/sk_123 sk_123", ['sk_123', '']), "Opening '/tmp/[redacted]/0.ts' rtmp://h/live/[redacted] [redacted]");
});
